package reader

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/kappa-lake/kappa/internal/pqopen"
	"github.com/kappa-lake/kappa/internal/store"
	"github.com/kappa-lake/kappa/txlog"
)

// ErrUnknownColumn reports a projected column that is not in the schema.
var ErrUnknownColumn = errors.New("unknown column")

// ScanOption configures a Scan.
type ScanOption func(*scanConfig)

type scanConfig struct {
	columns   []string
	pred      Expr
	workers   int
	batchSize int
}

// WithColumns projects the scan onto the named top-level columns, in that
// order (default: every column of the schema).
func WithColumns(names ...string) ScanOption {
	return func(c *scanConfig) { c.columns = append([]string(nil), names...) }
}

// WithPredicate keeps only the rows for which e is true. e also prunes
// partitions, skips files by their stats and row groups by Parquet
// statistics.
func WithPredicate(e Expr) ScanOption { return func(c *scanConfig) { c.pred = e } }

// WithWorkers sets how many files are decoded in parallel (default
// GOMAXPROCS). Memory is bounded by about workers x (row group + 2 batches).
func WithWorkers(n int) ScanOption { return func(c *scanConfig) { c.workers = n } }

// WithBatchSize sets the maximum rows per batch (default 65536).
func WithBatchSize(n int) ScanOption { return func(c *scanConfig) { c.batchSize = n } }

// source is what a scan reads: a schema and a list of files in a store.
type source struct {
	st       store.Store
	schema   *txlog.StructType
	partCols []string
	config   map[string]string
	files    []*txlog.Add
}

// Scan reads the rows of a snapshot. Create it with NewScan; it may be
// iterated several times.
type Scan struct {
	src   source
	cfg   scanConfig
	stats scanCounters
}

type scanCounters struct {
	filesTotal, filesPruned, rowGroups, rowGroupsSkipped, rowsRead, bytesRead atomic.Int64
}

// ScanStats reports what the last iterations of a Scan did.
type ScanStats struct {
	FilesTotal       int64 // live files in the snapshot
	FilesPruned      int64 // skipped by partition values or file stats
	RowGroups        int64 // row groups considered in the files read
	RowGroupsSkipped int64 // skipped by Parquet statistics
	RowsRead         int64 // rows decoded (before filtering)
	BytesRead        int64 // bytes read from data files
}

// Stats returns counters accumulated by all iterations of the scan.
func (s *Scan) Stats() ScanStats {
	return ScanStats{
		FilesTotal: s.stats.filesTotal.Load(), FilesPruned: s.stats.filesPruned.Load(),
		RowGroups: s.stats.rowGroups.Load(), RowGroupsSkipped: s.stats.rowGroupsSkipped.Load(),
		RowsRead: s.stats.rowsRead.Load(), BytesRead: s.stats.bytesRead.Load(),
	}
}

func newScan(src source, opts []ScanOption) *Scan {
	cfg := scanConfig{workers: runtime.GOMAXPROCS(0), batchSize: 65536}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.workers < 1 {
		cfg.workers = 1
	}
	if cfg.batchSize < 1 {
		cfg.batchSize = 65536
	}
	return &Scan{src: src, cfg: cfg}
}

// Schema returns the schema of the batches the scan yields.
func (s *Scan) Schema() (*txlog.StructType, error) {
	p, err := s.plan()
	if err != nil {
		return nil, err
	}
	return p.out, nil
}

// scanPlan is the resolved form of a scan.
type scanPlan struct {
	out      *txlog.StructType // output schema
	read     *txlog.StructType // columns decoded: output + predicate columns
	colIdx   map[string]int    // read column name -> index
	pred     bexpr             // nil = all rows
	partCols map[string]bool
	mode     mappingMode
}

func (s *Scan) plan() (*scanPlan, error) {
	p := &scanPlan{partCols: map[string]bool{}, colIdx: map[string]int{}}
	for _, c := range s.src.partCols {
		p.partCols[c] = true
	}
	switch strings.ToLower(s.src.config["delta.columnMapping.mode"]) {
	case "name":
		p.mode = mappingName
	case "id":
		p.mode = mappingID
	}
	p.out = &txlog.StructType{}
	if s.cfg.columns == nil {
		p.out.Fields = append(p.out.Fields, s.src.schema.Fields...)
	} else {
		for _, name := range s.cfg.columns {
			f := s.src.schema.Field(name)
			if f == nil {
				for _, g := range s.src.schema.Fields {
					if strings.EqualFold(g.Name, name) {
						f = g
						break
					}
				}
			}
			if f == nil {
				return nil, fmt.Errorf("%w: %q", ErrUnknownColumn, name)
			}
			p.out.Fields = append(p.out.Fields, f)
		}
	}
	p.read = &txlog.StructType{Fields: append([]*txlog.StructField(nil), p.out.Fields...)}
	for i, f := range p.read.Fields {
		p.colIdx[f.Name] = i
	}
	if s.cfg.pred != nil {
		b := &binder{schema: s.src.schema, partCols: p.partCols, mode: p.mode, cols: map[string]*bcol{}}
		e, err := b.bind(s.cfg.pred)
		if err != nil {
			return nil, err
		}
		p.pred = e
		for _, c := range b.cols {
			top := s.src.schema.Fields[c.top]
			if _, ok := p.colIdx[top.Name]; !ok {
				p.colIdx[top.Name] = len(p.read.Fields)
				p.read.Fields = append(p.read.Fields, top)
			}
		}
	}
	return p, nil
}

// fileRange gives the stats range of a column for one file.
func (s *Scan) fileRange(p *scanPlan, add *txlog.Add, st *txlog.Stats, pvals map[string]partitionValue) rangeFunc {
	return func(c *bcol) colRange {
		if c.part {
			pv, ok := pvals[c.path[0]]
			if !ok {
				return colRange{nullCount: -1, numRecords: -1}
			}
			if pv.null {
				return colRange{nullCount: 1, numRecords: 1}
			}
			return colRange{min: pv.scalar, max: pv.scalar, nullCount: 0, numRecords: 1}
		}
		r := colRange{nullCount: -1, numRecords: -1}
		if st == nil {
			return r
		}
		if st.NumRecords != nil {
			r.numRecords = *st.NumRecords
		}
		paths := [][]string{c.phys}
		if p.mode != mappingNone {
			paths = append(paths, c.path)
		}
		for _, path := range paths {
			if raw := lookupStat(st.NullCount, path); raw != nil {
				var n int64
				if _, err := fmt.Sscan(string(raw), &n); err == nil {
					r.nullCount = n
				}
			}
			if r.min == nil {
				r.min = statScalar(c.typ, lookupStat(st.MinValues, path))
			}
			if r.max == nil {
				if m := statScalar(c.typ, lookupStat(st.MaxValues, path)); m != nil {
					r.max = widenMax(c.typ, m)
				}
			}
		}
		return r
	}
}

// fileTask is one file to read, after pruning.
type fileTask struct {
	add   *txlog.Add
	key   string
	pvals map[string]partitionValue
}

// prune resolves paths and partition values and drops the files that
// provably hold no matching row.
func (s *Scan) prune(p *scanPlan) ([]fileTask, error) {
	var tasks []fileTask
	for _, add := range s.src.files {
		s.stats.filesTotal.Add(1)
		key, err := resolvePath(s.src.st, add.Path)
		if err != nil {
			return nil, err
		}
		pvals := map[string]partitionValue{}
		for _, name := range s.src.partCols {
			f := s.src.schema.Field(name)
			if f == nil {
				return nil, fmt.Errorf("partition column %q is not in the schema", name)
			}
			raw, ok := add.PartitionValues[physicalName(f, p.mode)]
			if !ok {
				raw = add.PartitionValues[f.Name]
			}
			pv, err := parsePartitionValue(f.Type, raw)
			if err != nil {
				return nil, fmt.Errorf("file %s: partition column %q: %w", add.Path, name, err)
			}
			pvals[name] = pv
		}
		if p.pred != nil {
			st, _ := add.ParsedStats()
			if !mayMatch(p.pred, s.fileRange(p, add, st, pvals)) {
				s.stats.filesPruned.Add(1)
				continue
			}
		}
		tasks = append(tasks, fileTask{add: add, key: key, pvals: pvals})
	}
	return tasks, nil
}

type batchItem struct {
	b   *Batch
	err error
}

// Batches yields the matching rows as columnar batches. Files are decoded
// by a bounded pool of workers; batches come out in file order (the
// snapshot's order), and within a file in row order.
func (s *Scan) Batches(ctx context.Context) iter.Seq2[*Batch, error] {
	return func(yield func(*Batch, error) bool) {
		p, err := s.plan()
		if err != nil {
			yield(nil, err)
			return
		}
		tasks, err := s.prune(p)
		if err != nil {
			yield(nil, err)
			return
		}
		ctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		defer func() {
			cancel()
			wg.Wait()
		}()
		type job struct {
			t  fileTask
			ch chan batchItem
		}
		// Fewer files than workers: the spare workers decode row groups
		// of the same file in parallel instead.
		par := max(1, s.cfg.workers/max(1, len(tasks)))
		order := make(chan chan batchItem, s.cfg.workers)
		jobs := make(chan job)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(order)
			defer close(jobs)
			for _, t := range tasks {
				ch := make(chan batchItem, 2)
				select {
				case order <- ch:
				case <-ctx.Done():
					return
				}
				select {
				case jobs <- job{t, ch}:
				case <-ctx.Done():
					return
				}
			}
		}()
		for range s.cfg.workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range jobs {
					send := func(b *Batch, err error) bool {
						select {
						case j.ch <- batchItem{b, err}:
							return true
						case <-ctx.Done():
							return false
						}
					}
					err := s.readFile(ctx, p, j.t, par, send)
					if err != nil {
						send(nil, fmt.Errorf("read %s: %w", j.t.key, err))
					}
					close(j.ch)
				}
			}()
		}
		for ch := range order {
			for it := range ch {
				if it.err != nil {
					yield(nil, it.err)
					return
				}
				if !yield(it.b, nil) {
					return
				}
			}
		}
		if err := ctx.Err(); err != nil {
			yield(nil, err)
		}
	}
}

// Rows yields the matching rows one by one.
func (s *Scan) Rows(ctx context.Context) iter.Seq2[Row, error] {
	return func(yield func(Row, error) bool) {
		for b, err := range s.Batches(ctx) {
			if err != nil {
				yield(Row{}, err)
				return
			}
			for i := range b.NumRows() {
				if !yield(b.Row(i), nil) {
					return
				}
			}
		}
	}
}

// countingReaderAt counts bytes read.
type countingReaderAt struct {
	r store.ReaderAt
	n *atomic.Int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

// footerReadSize is the tail of a data file read with one request when it
// is opened: the footer of a file with up to a few hundred row groups, or
// the whole of a small file (header magic included).
const footerReadSize = 64 << 10

// readFile decodes one data file and sends its batches. par > 1 decodes up
// to par row groups of the file at once (when the scan has fewer files than
// workers); batches are still sent in row order.
func (s *Scan) readFile(ctx context.Context, p *scanPlan, t fileTask, par int, send func(*Batch, error) bool) (err error) {
	defer recoverCorrupt(&err)
	r, err := s.src.st.Open(ctx, t.key)
	if err != nil {
		return err
	}
	defer r.Close()
	var deleted *rowSet
	if dv := t.add.DeletionVector; dv != nil {
		if deleted, err = loadDeletionVector(ctx, s.src.st, dv); err != nil {
			return err
		}
	}
	f, err := pqopen.OpenFile(&countingReaderAt{r, &s.stats.bytesRead}, r.Size(), footerReadSize,
		parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true), parquet.ReadBufferSize(1<<20))
	if err != nil {
		return fmt.Errorf("open parquet: %w", asCorrupt(ctx, err))
	}
	root, err := buildPQTree(f.Metadata())
	if err != nil {
		return asCorrupt(ctx, err)
	}
	pl := &planner{mode: p.mode}
	nodes := make([]*colNode, len(p.read.Fields))
	for i, fld := range p.read.Fields {
		if p.partCols[fld.Name] {
			continue
		}
		n, err := pl.plan(fld.Type, findField(root, fld, p.mode))
		if err != nil {
			return fmt.Errorf("column %q: %w", fld.Name, err)
		}
		nodes[i] = n
	}
	rgs := f.RowGroups()
	bases := make([]int64, len(rgs))
	var rowBase int64
	for i, rg := range rgs {
		bases[i] = rowBase
		rowBase += rg.NumRows()
	}
	rf := &rgReader{s: s, p: p, t: t, f: f, root: root, nodes: nodes, leafIdx: pl.leafIdx, deleted: deleted.rowsOrNil(), bases: bases}
	emit := func(b *Batch) bool {
		for i := 0; i < b.n; i += s.cfg.batchSize {
			if !send(b.slice(i, min(b.n, i+s.cfg.batchSize)), nil) {
				return false
			}
		}
		return true
	}
	par = min(par, len(rgs))
	if par <= 1 {
		for rgi := range rgs {
			if err := ctx.Err(); err != nil {
				return err
			}
			b, err := rf.read(rgi)
			if err != nil {
				return err
			}
			if b != nil && !emit(b) {
				return ctx.Err()
			}
		}
		return nil
	}
	return rf.readParallel(ctx, par, emit)
}

// recoverCorrupt turns a panic of the Parquet decoder on a malformed file
// (parquet-go panics on some corrupt footers and pages) into an error
// wrapping ErrCorruptData: scans run in worker goroutines, where a panic
// would kill the process.
func recoverCorrupt(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: parquet decoder panic: %v", ErrCorruptData, r)
	}
}

// asCorrupt marks a decoding error as ErrCorruptData unless it is a
// transient store error (an injected fault, or a store operation error that
// store.IsRetryable accepts) or the scan was cancelled. The decoder's error
// is kept as text only: it often wraps io.ErrUnexpectedEOF, which
// store.IsRetryable would otherwise take for a truncated network response,
// making callers retry a corrupt file forever.
func asCorrupt(ctx context.Context, err error) error {
	if err == nil || errors.Is(err, ErrCorruptData) || ctx.Err() != nil ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var op *store.OpError
	if errors.Is(err, store.ErrTransient) || (errors.As(err, &op) && store.IsRetryable(err)) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrCorruptData, err) //nolint:errorlint // keep io.ErrUnexpectedEOF out of the chain (see above)
}

// rgReader decodes the row groups of one open data file.
type rgReader struct {
	s       *Scan
	p       *scanPlan
	t       fileTask
	f       *parquet.File
	root    *pqNode
	nodes   []*colNode
	leafIdx []int
	deleted []uint64 // deleted row positions in the file, ascending
	bases   []int64  // first row of each row group
}

// read decodes row group rgi, applies deletion vector and predicate, and
// returns the output batch, or nil when statistics skip the row group.
func (rf *rgReader) read(rgi int) (_ *Batch, err error) {
	defer recoverCorrupt(&err)
	s, p, t := rf.s, rf.p, rf.t
	rg := rf.f.RowGroups()[rgi]
	rows := rg.NumRows()
	base := rf.bases[rgi]
	s.stats.rowGroups.Add(1)
	if p.pred != nil && !mayMatch(p.pred, rowGroupRange(p, t, &rf.f.Metadata().RowGroups[rgi], rf.nodes, rf.leafIdx, rf.root)) {
		s.stats.rowGroupsSkipped.Add(1)
		return nil, nil
	}
	s.stats.rowsRead.Add(rows)
	cols := make([]Vector, len(p.read.Fields))
	for i, fld := range p.read.Fields {
		if rf.nodes[i] == nil {
			cols[i] = constantVector(t.pvals[fld.Name], int(rows))
			continue
		}
		v, err := readColumn(rg, rf.nodes[i], rf.leafIdx)
		if err != nil {
			return nil, fmt.Errorf("row group %d column %q: %w", rgi, fld.Name, asCorrupt(context.Background(), err))
		}
		cols[i] = v
	}
	b := &Batch{schema: p.read, cols: cols, n: int(rows)}
	// Selection: not deleted and predicate true.
	var res []int8
	if p.pred != nil {
		res = evalRows(p.pred, b, p.colIdx)
	}
	del := rf.deleted
	delPos := sort.Search(len(del), func(i int) bool { return del[i] >= uint64(base) })
	// keep stays nil while every row so far is kept (the common case).
	var keep []int32
	filter := res != nil || (delPos < len(del) && del[delPos] < uint64(base+rows))
	for i := int64(0); filter && i < rows; i++ {
		drop := false
		if delPos < len(del) && del[delPos] == uint64(base+i) {
			delPos++
			drop = true
		} else if res != nil && res[i] != triTrue {
			drop = true
		}
		if drop && keep == nil {
			keep = make([]int32, i, rows)
			for j := range keep {
				keep[j] = int32(j)
			}
		}
		if !drop && keep != nil {
			keep = append(keep, int32(i))
		}
	}
	if keep != nil {
		b = b.take(keep)
	}
	if len(p.read.Fields) != len(p.out.Fields) {
		b = &Batch{schema: p.out, cols: b.cols[:len(p.out.Fields)], n: b.n}
	}
	return b, nil
}

// readParallel decodes row groups with par goroutines and emits them in
// order. At most par row groups are decoded or waiting at any time, which
// bounds memory.
func (rf *rgReader) readParallel(ctx context.Context, par int, emit func(*Batch) bool) error {
	n := len(rf.bases)
	type result struct {
		b   *Batch
		err error
	}
	slots := make([]chan result, n)
	for i := range slots {
		slots[i] = make(chan result, 1)
	}
	tokens := make(chan struct{}, par)
	var next atomic.Int64
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case tokens <- struct{}{}:
				case <-ctx.Done():
					return
				}
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := ctx.Err(); err != nil {
					slots[i] <- result{err: err}
					return
				}
				b, err := rf.read(i)
				slots[i] <- result{b, err}
			}
		}()
	}
	for i := range n {
		var r result
		select {
		case r = <-slots[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		<-tokens
		if r.err != nil {
			return r.err
		}
		if r.b != nil && !emit(r.b) {
			return ctx.Err()
		}
	}
	return nil
}

func (r *rowSet) rowsOrNil() []uint64 {
	if r == nil {
		return nil
	}
	return r.rows
}

// rowGroupRange reads a column's range from the row group's column chunk
// statistics (top-level primitive columns only; others are unknown).
func rowGroupRange(p *scanPlan, t fileTask, rg *format.RowGroup, nodes []*colNode, leafIdx []int, root *pqNode) rangeFunc {
	fr := func(c *bcol) colRange {
		if c.part {
			pv := t.pvals[c.path[0]]
			if pv.null {
				return colRange{nullCount: 1, numRecords: 1}
			}
			return colRange{min: pv.scalar, max: pv.scalar, nullCount: 0, numRecords: 1}
		}
		unknown := colRange{nullCount: -1, numRecords: -1}
		if len(c.path) != 1 {
			return unknown
		}
		i, ok := p.colIdx[c.path[0]]
		if !ok || nodes[i] == nil {
			return unknown
		}
		n := nodes[i]
		if n.kind == kindMissing {
			return colRange{nullCount: rg.NumRows, numRecords: rg.NumRows}
		}
		if n.kind != kindLeaf {
			return unknown
		}
		leaf := leafIdx[n.leaf]
		if leaf >= len(rg.Columns) {
			return unknown
		}
		md := &rg.Columns[leaf].MetaData
		return chunkRange(c.typ, md, n, rg.NumRows)
	}
	return fr
}

func chunkRange(t txlog.DataType, md *format.ColumnMetaData, n *colNode, rows int64) colRange {
	r := colRange{nullCount: -1, numRecords: rows}
	st := &md.Statistics
	minB, maxB := st.MinValue, st.MaxValue
	if minB == nil && maxB == nil && md.Type != format.ByteArray {
		minB, maxB = st.Min, st.Max
	}
	if minB == nil || maxB == nil {
		return r
	}
	r.min = plainScalar(t, md.Type, minB, n)
	if mx := plainScalar(t, md.Type, maxB, n); mx != nil {
		r.max = widenMax(t, mx)
	} else {
		r.min = nil
	}
	return r
}

// plainScalar decodes a PLAIN-encoded statistics value.
func plainScalar(t txlog.DataType, pt format.Type, b []byte, n *colNode) any {
	p, ok := t.(*txlog.PrimitiveType)
	if !ok {
		return nil
	}
	var v parquet.Value
	switch pt {
	case format.Int32:
		if len(b) != 4 {
			return nil
		}
		v = parquet.Int32Value(int32(leUint32(b)))
	case format.Int64:
		if len(b) != 8 {
			return nil
		}
		v = parquet.Int64Value(int64(leUint64(b)))
	case format.Float:
		if len(b) != 4 {
			return nil
		}
		f := float64(float32frombits(leUint32(b)))
		if f != f {
			return nil
		}
		return f
	case format.Double:
		if len(b) != 8 {
			return nil
		}
		f := float64frombits(leUint64(b))
		if f != f {
			return nil
		}
		return f
	case format.ByteArray:
		if p.Name != txlog.TypeString {
			return nil
		}
		return string(b)
	default:
		return nil
	}
	switch p.Name {
	case txlog.TypeByte, txlog.TypeShort, txlog.TypeInteger, txlog.TypeLong:
		return intOf(v)
	case txlog.TypeDate:
		if pt != format.Int32 {
			return nil
		}
		return intOf(v)
	case txlog.TypeTimestamp, txlog.TypeTimestampNTZ:
		if pt != format.Int64 {
			return nil
		}
		return n.conv.tsMicros(v)
	}
	return nil
}
