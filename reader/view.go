package reader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/kappa-lake/kappa/internal/pq"
	"github.com/kappa-lake/kappa/table"
	"github.com/kappa-lake/kappa/txlog"
)

// Batch views.
//
// A view is a Delta table holding the partial aggregate state of an
// aggregate query over a source table, one row per group: the group keys
// (columns k0, k1, ...) and per aggregate j the state columns a<j>_<part>
// (see agg.go: counts, sum+count for SUM and AVG, the value for MIN/MAX,
// the exact value set for COUNT(DISTINCT), a HyperLogLog sketch for
// approx_count_distinct; decimals are stored unscaled as long). The
// definition lives in metaData.configuration (kappa.view.source,
// kappa.view.sql) and the source version the state covers in a txn action
// with appId "kappa-view".
//
// A refresh reads the files added to the source since the covered version
// (Changes), aggregates only them, merges that partial state into the
// stored state, and rewrites the whole view table in ONE commit that
// removes the old state files, adds the new ones and sets the txn to the
// new covered version. A crash before that commit leaves the previous view
// intact (the orphan files are never referenced); a repeated refresh finds
// nothing new. Concurrent refreshes conflict on the txn and the removed
// files, so one of them fails rather than double counting.
//
// A refresh falls back to a full recompute (RefreshResult.Mode "full",
// with the reason) when the source commits in between removed data
// (remove actions with dataChange=true: deletes, overwrites, merges) or
// changed the schema, or when the covered version is no longer in the log.
//
// Only aggregate queries (GROUP BY and/or aggregate functions) make views:
// a plain SELECT view would copy the source table, which time travel
// queries already serve; CreateView refuses it.

// View definition keys in the view table's metaData.configuration.
const (
	ViewAppID      = "kappa-view"
	PropViewSource = "kappa.view.source"
	PropViewSQL    = "kappa.view.sql"
	PropViewFormat = "kappa.view.format"
	viewFormatV1   = "1"
)

// ErrNotAView reports a table without a view definition.
var ErrNotAView = errors.New("not a kappa view")

// RefreshOptions configures RefreshView.
type RefreshOptions struct {
	// Full recomputes from a source snapshot instead of merging.
	Full bool
	// Version (with Full) recomputes at this source version (-1 or nil: latest).
	Version *int64
	// AsOf (with Full) recomputes at the source version as of this time.
	AsOf *time.Time
	// Logger receives progress (full recomputes log at Info).
	Logger *slog.Logger
	// Workers bounds the aggregation workers (0 = default).
	Workers int

	beforeCommit func(ctx context.Context) error // tests: crash injection
}

// RefreshResult describes what a refresh did.
type RefreshResult struct {
	Mode        string // "incremental", "full" or "up-to-date"
	Reason      string // why a full recompute happened
	FromVersion int64  // covered source version before (-1: none)
	ToVersion   int64  // covered source version after
	FilesRead   int64  // source files scanned
	RowsRead    int64  // source rows decoded
	Groups      int    // groups in the view
	ViewVersion int64  // view table version written (or current)
}

// viewDef is a compiled view.
type viewDef struct {
	source, sql string
	stmt        *selectStmt
}

func compileView(sql string) (*selectStmt, error) {
	st, err := parseSQL(sql)
	if err != nil {
		return nil, err
	}
	if st.from.version != nil || st.from.timestamp != nil {
		return nil, sqlErrorf(st.from.pos, "a view reads the latest source: remove VERSION/TIMESTAMP AS OF (use refresh --full --version N)")
	}
	return st, nil
}

func planView(st *selectStmt, schema *txlog.StructType) (*queryPlan, error) {
	pl, err := planQuery(st, schema)
	if err != nil {
		return nil, err
	}
	if !pl.agg {
		return nil, sqlErrorf(st.items[0].pos, "a view must aggregate (GROUP BY and/or aggregate functions); query the source with time travel for plain SELECTs")
	}
	return pl, nil
}

// stateSchema is the view table schema for a plan.
func stateSchema(pl *queryPlan) (*txlog.StructType, [][]stateCol) {
	st := &txlog.StructType{}
	typ := func(t vtype, binary bool) txlog.DataType {
		if binary {
			return &txlog.PrimitiveType{Name: txlog.TypeBinary}
		}
		switch t.k {
		case vDec:
			return &txlog.PrimitiveType{Name: txlog.TypeLong}
		case vNull:
			return &txlog.PrimitiveType{Name: txlog.TypeString}
		case vStr:
			if p, ok := t.dt.(*txlog.PrimitiveType); ok && p.Name == txlog.TypeBinary {
				return p
			}
			return &txlog.PrimitiveType{Name: txlog.TypeString}
		}
		return vtype{k: t.k}.deltaType()
	}
	for i, k := range pl.keys {
		st.Fields = append(st.Fields, &txlog.StructField{Name: fmt.Sprintf("k%d", i), Type: typ(k.t, false), Nullable: true})
	}
	var cols [][]stateCol
	for j, s := range pl.post.aggs {
		sc := newAggState(s).stateTypes()
		cols = append(cols, sc)
		for _, c := range sc {
			st.Fields = append(st.Fields, &txlog.StructField{Name: fmt.Sprintf("a%d_%s", j, c.suffix), Type: typ(c.t, c.binary), Nullable: true})
		}
	}
	return st, cols
}

// CreateView creates the view table at viewURL for an aggregate query over
// the source table and computes it at the source's latest version.
func CreateView(ctx context.Context, viewURL, sourceURL, sql string, opts RefreshOptions) (*RefreshResult, error) {
	st, err := compileView(sql)
	if err != nil {
		return nil, err
	}
	src, err := table.Open(ctx, sourceURL)
	if err != nil {
		return nil, fmt.Errorf("create view: open source %s: %w", sourceURL, err)
	}
	snap, err := src.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("create view: source snapshot: %w", err)
	}
	pl, err := planView(st, snap.Schema())
	if err != nil {
		return nil, err
	}
	schema, _ := stateSchema(pl)
	props := map[string]string{PropViewSource: sourceURL, PropViewSQL: sql, PropViewFormat: viewFormatV1}
	if _, err := table.Create(ctx, viewURL, schema, table.WithProperties(props), table.WithDescription("kappa batch view")); err != nil {
		return nil, fmt.Errorf("create view %s: %w", viewURL, err)
	}
	opts.Full = true
	return RefreshView(ctx, viewURL, opts)
}

// openView loads the view table, its definition and the source table.
func openView(ctx context.Context, viewURL string, asOf *time.Time) (*table.Snapshot, *viewDef, *table.Table, error) {
	vt, err := table.Open(ctx, viewURL)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("open view %s: %w", viewURL, err)
	}
	var sopts []table.SnapshotOption
	if asOf != nil {
		sopts = append(sopts, table.AsOf(*asOf))
	}
	vsnap, err := vt.Snapshot(ctx, sopts...)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("view snapshot: %w", err)
	}
	cfg := vsnap.Metadata().Configuration
	def := &viewDef{source: cfg[PropViewSource], sql: cfg[PropViewSQL]}
	if def.source == "" || def.sql == "" {
		return nil, nil, nil, fmt.Errorf("%s: %w (no %s / %s in the table configuration)", viewURL, ErrNotAView, PropViewSource, PropViewSQL)
	}
	if f := cfg[PropViewFormat]; f != viewFormatV1 {
		return nil, nil, nil, fmt.Errorf("%s: %w: unknown view format %q", viewURL, ErrNotAView, f)
	}
	if def.stmt, err = compileView(def.sql); err != nil {
		return nil, nil, nil, fmt.Errorf("view %s definition: %w", viewURL, err)
	}
	src, err := table.Open(ctx, def.source)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("open view source %s: %w", def.source, err)
	}
	return vsnap, def, src, nil
}

// loadState reads the stored state of the view into a new aggregation.
func loadState(ctx context.Context, vsnap *table.Snapshot, pl *queryPlan) (*hashAgg, error) {
	schema, cols := stateSchema(pl)
	if vsnap.Schema().String() != schema.String() {
		return nil, fmt.Errorf("view state schema %s does not match the query's %s", vsnap.Schema(), schema)
	}
	a := newHashAgg(pl.keys, pl.post.aggs)
	for b, err := range NewScan(vsnap).Batches(ctx) {
		if err != nil {
			return nil, fmt.Errorf("read view state: %w", err)
		}
		n := b.NumRows()
		c := 0
		keys := make([]*col, len(pl.keys))
		for i, k := range pl.keys {
			keys[i] = relabel(vectorCol(b.Column(c)), k.t)
			c++
		}
		states := make([][]*col, len(cols))
		for j, sc := range cols {
			for range sc {
				states[j] = append(states[j], vectorCol(b.Column(c)))
				c++
			}
		}
		a.mergeColumns(keys, states, n)
	}
	return a, nil
}

// relabel gives a stored column its query type (decimals are stored as
// unscaled longs).
func relabel(c *col, t vtype) *col {
	if c.t.k == vInt && t.k == vDec || c.t.k == t.k {
		out := *c
		out.t = t
		return &out
	}
	return castCol(c, t)
}

// stateRows renders the aggregation state as rows for the view table.
func stateRows(a *hashAgg, schema *txlog.StructType) []map[string]any {
	keys, states := a.stateColumns()
	var cols []*col
	cols = append(cols, keys...)
	for _, s := range states {
		cols = append(cols, s...)
	}
	rows := make([]map[string]any, a.g.n)
	for r := range rows {
		m := make(map[string]any, len(cols))
		for i, c := range cols {
			v := c.value(r)
			switch x := v.(type) {
			case Decimal:
				v = x.Unscaled.Int64()
			case string:
				if p, ok := schema.Fields[i].Type.(*txlog.PrimitiveType); ok && p.Name == txlog.TypeBinary {
					v = []byte(x)
				}
			}
			m[schema.Fields[i].Name] = v
		}
		rows[r] = m
	}
	return rows
}

// RefreshView brings the view up to the source's latest version:
// incrementally from the files added since the covered version, or in full
// (opts.Full, or when removes or a schema change make merging impossible).
func RefreshView(ctx context.Context, viewURL string, opts RefreshOptions) (*RefreshResult, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	vsnap, def, src, err := openView(ctx, viewURL, nil)
	if err != nil {
		return nil, err
	}
	var sopts []table.SnapshotOption
	if opts.Full && opts.Version != nil && *opts.Version >= 0 {
		sopts = append(sopts, table.AtVersion(*opts.Version))
	} else if opts.Full && opts.AsOf != nil {
		sopts = append(sopts, table.AsOf(*opts.AsOf))
	}
	target, err := src.Snapshot(ctx, sopts...)
	if err != nil {
		return nil, fmt.Errorf("refresh view: source snapshot: %w", err)
	}
	pl, err := planView(def.stmt, target.Schema())
	if err != nil {
		return nil, fmt.Errorf("refresh view: %w", err)
	}
	covered, hasCovered := vsnap.Txn(ViewAppID)
	res := &RefreshResult{FromVersion: -1, ToVersion: target.Version(), ViewVersion: vsnap.Version()}
	if hasCovered {
		res.FromVersion = covered
	}
	var state *hashAgg
	full, reason := opts.Full, "requested"
	if !full && !hasCovered {
		full, reason = true, "the view covers no source version yet"
	}
	if !full {
		if covered == target.Version() {
			res.Mode = "up-to-date"
			return res, nil
		}
		if covered > target.Version() {
			return nil, fmt.Errorf("refresh view: covered source version %d is after the source's latest %d", covered, target.Version())
		}
		var delta *ChangeSet
		state, delta, reason, err = incrementalState(ctx, vsnap, src, target, pl, covered)
		if err != nil {
			return nil, fmt.Errorf("refresh view: %w", err)
		}
		if state == nil {
			full = true
		} else {
			a, err := pl.aggregateScan(ctx, delta.Scan(), opts.Workers)
			if err != nil {
				return nil, fmt.Errorf("refresh view: aggregate source versions %d..%d: %w", covered+1, target.Version(), err)
			}
			state.merge(a)
			st := delta.Scan().Stats()
			res.Mode, res.FilesRead, res.RowsRead = "incremental", st.FilesTotal-st.FilesPruned, st.RowsRead
		}
	}
	if full {
		log.Info("view: full recompute", "view", viewURL, "source", def.source, "version", target.Version(), "reason", reason)
		scan := NewScan(target, pl.scanOptions()...)
		state, err = pl.aggregateScan(ctx, scan, opts.Workers)
		if err != nil {
			return nil, fmt.Errorf("refresh view: full recompute at source version %d: %w", target.Version(), err)
		}
		st := scan.Stats()
		res.Mode, res.Reason, res.FilesRead, res.RowsRead = "full", reason, st.FilesTotal-st.FilesPruned, st.RowsRead
		log.Info("view: full recompute done", "view", viewURL, "files", res.FilesRead, "rows", res.RowsRead, "groups", state.g.n)
	}
	res.Groups = state.g.n
	v, err := writeState(ctx, vsnap, state, pl, target.Version(), res, opts)
	if err != nil {
		return nil, err
	}
	res.ViewVersion = v
	log.Info("view refreshed", "view", viewURL, "mode", res.Mode, "from", res.FromVersion, "to", res.ToVersion, "viewVersion", v)
	return res, nil
}

// incrementalState loads the stored state and the changes since covered.
// A nil state (with the reason) means a full recompute is needed.
func incrementalState(ctx context.Context, vsnap *table.Snapshot, src *table.Table, target *table.Snapshot, pl *queryPlan, covered int64) (*hashAgg, *ChangeSet, string, error) {
	old, err := src.Snapshot(ctx, table.AtVersion(covered))
	if err != nil {
		if errors.Is(err, txlog.ErrVersionNotFound) {
			return nil, nil, fmt.Sprintf("covered source version %d is no longer in the log", covered), nil
		}
		return nil, nil, "", err
	}
	if old.Schema().String() != target.Schema().String() || !equalStrings(old.PartitionColumns(), target.PartitionColumns()) {
		return nil, nil, fmt.Sprintf("the source schema changed between versions %d and %d", covered, target.Version()), nil
	}
	cs, err := Changes(ctx, src, covered, target.Version(), pl.scanOptions()...)
	if err != nil {
		if errors.Is(err, txlog.ErrVersionNotFound) {
			return nil, nil, fmt.Sprintf("source changes since version %d are no longer in the log", covered), nil
		}
		return nil, nil, "", err
	}
	for _, r := range cs.Removed {
		if r.DataChange {
			return nil, nil, fmt.Sprintf("source commits between versions %d and %d removed data (%s)", covered, target.Version(), r.Path), nil
		}
	}
	state, err := loadState(ctx, vsnap, pl)
	if err != nil {
		return nil, nil, "stored state unusable: " + err.Error(), nil
	}
	return state, cs, "", nil
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// writeState rewrites the view table with the state and the covered
// version in one commit.
func writeState(ctx context.Context, vsnap *table.Snapshot, state *hashAgg, pl *queryPlan, covered int64, res *RefreshResult, opts RefreshOptions) (int64, error) {
	schema, _ := stateSchema(pl)
	meta := vsnap.Metadata()
	fw, err := pq.NewFileWriter(vsnap.Table().Store(), pq.Options{Schema: schema, Properties: meta.Configuration})
	if err != nil {
		return 0, fmt.Errorf("write view state: %w", err)
	}
	abort := func(err error) (int64, error) {
		if aerr := fw.Abort(context.WithoutCancel(ctx)); aerr != nil {
			err = errors.Join(err, fmt.Errorf("delete uncommitted view files: %w", aerr))
		}
		return 0, err
	}
	if err := fw.Write(ctx, stateRows(state, schema)); err != nil {
		return abort(fmt.Errorf("write view state: %w", err))
	}
	adds, err := fw.Close(ctx)
	if err != nil {
		return abort(fmt.Errorf("write view state: %w", err))
	}
	tx, err := vsnap.NewTransaction()
	if err != nil {
		return abort(fmt.Errorf("refresh view: %w", err))
	}
	tx.ReadTxn(ViewAppID)
	tx.ReadWholeTable()
	now := time.Now().UnixMilli()
	for _, f := range vsnap.Files() {
		tx.RemoveFiles(&txlog.Remove{
			Path: f.Path, DeletionTimestamp: &now, DataChange: true,
			ExtendedFileMetadata: ptrTo(true), PartitionValues: f.PartitionValues, Size: &f.Size, DeletionVector: f.DeletionVector,
		})
	}
	tx.AddFiles(adds...)
	tx.SetTxn(ViewAppID, covered)
	if meta.SchemaString != "" {
		if ss, err := txlog.MarshalSchema(schema); err == nil && ss != meta.SchemaString {
			meta.SchemaString = ss
			meta.PartitionColumns = []string{}
			tx.SetMetadata(meta)
		}
	}
	tx.SetOperation("VIEW REFRESH", map[string]any{"mode": res.Mode, "fromVersion": res.FromVersion, "toVersion": covered})
	if opts.beforeCommit != nil {
		if err := opts.beforeCommit(ctx); err != nil {
			return abort(err)
		}
	}
	v, err := tx.Commit(ctx)
	if err != nil {
		if errors.Is(err, table.ErrCommitUnknown) {
			return 0, fmt.Errorf("refresh view: %w", err)
		}
		return abort(fmt.Errorf("refresh view: commit: %w", err))
	}
	return v, nil
}

func ptrTo[T any](v T) *T { return &v }

// ShowView answers the view's query from its stored state; with fresh, the
// state is first merged (in memory, by the refresh code) with the source
// files added since the covered version, giving the answer as of the
// source's latest commit without writing. asOf reads the view table as of
// that time (and, with fresh, the source as of that time too).
// Result.Version is the source version the answer covers.
func ShowView(ctx context.Context, viewURL string, fresh bool, asOf *time.Time) (*Result, error) {
	vsnap, def, src, err := openView(ctx, viewURL, asOf)
	if err != nil {
		return nil, err
	}
	covered, ok := vsnap.Txn(ViewAppID)
	if !ok {
		return nil, fmt.Errorf("show view %s: the view covers no source version yet (run refresh)", viewURL)
	}
	var sopts []table.SnapshotOption
	if asOf != nil {
		sopts = append(sopts, table.AsOf(*asOf))
	} else if !fresh {
		sopts = append(sopts, table.AtVersion(covered))
	}
	target, err := src.Snapshot(ctx, sopts...)
	if err != nil {
		return nil, fmt.Errorf("show view: source snapshot: %w", err)
	}
	if !fresh || target.Version() <= covered {
		// The stored state's own schema version is the covered one.
		old, err := src.Snapshot(ctx, table.AtVersion(covered))
		if err == nil {
			target = old
		}
	}
	pl, err := planView(def.stmt, target.Schema())
	if err != nil {
		return nil, fmt.Errorf("show view: %w", err)
	}
	var state *hashAgg
	version := covered
	if fresh && target.Version() > covered {
		var delta *ChangeSet
		state, delta, _, err = incrementalState(ctx, vsnap, src, target, pl, covered)
		if err != nil {
			return nil, fmt.Errorf("show view: %w", err)
		}
		if state == nil {
			state, err = pl.aggregateScan(ctx, NewScan(target, pl.scanOptions()...), 0)
		} else {
			var a *hashAgg
			if a, err = pl.aggregateScan(ctx, delta.Scan(), 0); err == nil {
				state.merge(a)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("show view: %w", err)
		}
		version = target.Version()
	} else {
		if state, err = loadState(ctx, vsnap, pl); err != nil {
			return nil, fmt.Errorf("show view: %w", err)
		}
	}
	res := pl.finish(state)
	res.Version = version
	return res, nil
}

// ViewInfo is the status of a view.
type ViewInfo struct {
	View, Source, SQL string
	ViewVersion       int64
	CoveredVersion    int64 // -1 when never computed
	SourceVersion     int64 // the source's latest version
	LagVersions       int64 // commits the view is behind
	CoveredTime       time.Time
	SourceTime        time.Time
	Lag               time.Duration // commit-time distance between covered and latest
	Groups            int64
}

// ViewStatus reports the covered source version and how far behind the
// source's latest commit the view is.
func ViewStatus(ctx context.Context, viewURL string) (*ViewInfo, error) {
	vsnap, def, src, err := openView(ctx, viewURL, nil)
	if err != nil {
		return nil, err
	}
	latest, err := src.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("view status: source snapshot: %w", err)
	}
	info := &ViewInfo{
		View: viewURL, Source: def.source, SQL: strings.TrimSpace(def.sql), ViewVersion: vsnap.Version(),
		CoveredVersion: -1, SourceVersion: latest.Version(), SourceTime: latest.Timestamp(),
	}
	for _, f := range vsnap.Files() {
		if st, err := f.ParsedStats(); err == nil && st != nil && st.NumRecords != nil {
			info.Groups += *st.NumRecords
		}
	}
	info.LagVersions = latest.Version() + 1
	if v, ok := vsnap.Txn(ViewAppID); ok {
		info.CoveredVersion = v
		info.LagVersions = latest.Version() - v
		if old, err := src.Snapshot(ctx, table.AtVersion(v)); err == nil {
			info.CoveredTime = old.Timestamp()
			info.Lag = latest.Timestamp().Sub(info.CoveredTime)
		}
	}
	return info, nil
}
