package table

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/kappa-lake/kappa/internal/store"
	"github.com/kappa-lake/kappa/txlog"
)

// Table is a Delta table at one location. It is safe for concurrent use.
type Table struct {
	st     store.Store
	cfg    tableConfig
	closer bool // Close closes st

	mu sync.Mutex
	// latest is the cached newest snapshot for transactions, loaded
	// WithoutFiles so a writer's memory does not grow with the table.
	latest *Snapshot
}

// Open opens the table at url (a plain path, file://, mem://, s3://, gs://,
// azblob://) and loads its latest state (WithoutFiles: protocol, metadata,
// txns), so a missing or unreadable log fails here: ErrTableNotFound (from
// txlog) when there is no log, ErrCorruptLog or ErrUnsupportedFeature when
// it cannot be read. The file list is read by Snapshot.
func Open(ctx context.Context, rawURL string, opts ...Option) (*Table, error) {
	st, err := store.Open(ctx, rawURL)
	if err != nil {
		return nil, fmt.Errorf("open table %s: %w", store.Redact(rawURL), err)
	}
	t, err := OpenStore(ctx, st, opts...)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	t.closer = true
	return t, nil
}

// OpenStore is Open on an already opened store (which the caller closes).
func OpenStore(ctx context.Context, st store.Store, opts ...Option) (*Table, error) {
	t := newTable(st, opts)
	s, err := t.loadSnapshot(ctx, -1, true)
	if err != nil {
		return nil, err
	}
	t.latest = s
	return t, nil
}

func newTable(st store.Store, opts []Option) *Table {
	t := &Table{st: st, cfg: defaultTableConfig()}
	for _, o := range opts {
		if o != nil {
			o(&t.cfg)
		}
	}
	return t
}

// Store is the object store under the table root.
func (t *Table) Store() store.Store { return t.st }

// URL is the table root URL (credentials redacted).
func (t *Table) URL() string { return t.st.URL() }

// Close releases the store when the Table opened it.
func (t *Table) Close() error {
	if t.closer {
		return t.st.Close()
	}
	return nil
}

// Snapshot loads a snapshot: the latest (default), AtVersion(v) or AsOf(t),
// with its file list unless WithoutFiles. The returned Snapshot belongs to
// the caller.
func (t *Table) Snapshot(ctx context.Context, opts ...SnapshotOption) (*Snapshot, error) {
	spec, err := buildSnapshotSpec(opts)
	if err != nil {
		return nil, err
	}
	switch {
	case spec.version != nil:
		return t.loadSnapshot(ctx, *spec.version, spec.noFiles)
	case spec.asOf != nil:
		v, err := t.VersionAsOf(ctx, *spec.asOf)
		if err != nil {
			return nil, err
		}
		return t.loadSnapshot(ctx, v, spec.noFiles)
	}
	if spec.noFiles {
		// Hand out the cached state (brought up to date) if there is one:
		// the table loads a new one for its next transaction.
		t.mu.Lock()
		s := t.latest
		t.latest = nil
		t.mu.Unlock()
		if s != nil {
			if _, err := s.Update(ctx); err == nil {
				return s, nil
			}
		}
	}
	return t.loadSnapshot(ctx, -1, spec.noFiles)
}

// cachedLatest returns the table's cached snapshot brought up to date, with
// t.mu held by the caller.
func (t *Table) cachedLatestLocked(ctx context.Context) (*Snapshot, error) {
	if t.latest != nil {
		if _, err := t.latest.Update(ctx); err == nil {
			return t.latest, nil
		}
		t.latest = nil
	}
	s, err := t.loadSnapshot(ctx, -1, true)
	if err != nil {
		return nil, err
	}
	t.latest = s
	return s, nil
}

// Create creates a new table at url with the given schema, writing version 0
// (protocol, metaData, commitInfo "CREATE TABLE"). The protocol is the lowest
// that covers the features the schema and properties use; in-commit
// timestamps are enabled unless WithoutInCommitTimestamps. A location that
// already holds a table gives ErrTableExists.
func Create(ctx context.Context, rawURL string, schema *txlog.StructType, opts ...CreateOption) (*Table, error) {
	st, err := store.Open(ctx, rawURL)
	if err != nil {
		return nil, fmt.Errorf("create table %s: %w", store.Redact(rawURL), err)
	}
	t, err := CreateInStore(ctx, st, schema, opts...)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	t.closer = true
	return t, nil
}

// CreateInStore is Create on an already opened store (which the caller
// closes).
func CreateInStore(ctx context.Context, st store.Store, schema *txlog.StructType, opts ...CreateOption) (*Table, error) {
	var cc createConfig
	cc.table = defaultTableConfig()
	for _, o := range opts {
		if o != nil {
			o.applyCreate(&cc)
		}
	}
	t := &Table{st: st, cfg: cc.table}
	protocol, meta, err := newTableActions(schema, &cc, t.cfg.now().UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("create table %s: %w", st.URL(), err)
	}
	if exists, err := logExists(ctx, st); err != nil {
		return nil, fmt.Errorf("create table %s: %w", st.URL(), err)
	} else if exists {
		return nil, fmt.Errorf("create table %s: %w", st.URL(), ErrTableExists)
	}
	params := map[string]any{
		"partitionBy": jsonString(meta.PartitionColumns),
		"properties":  jsonString(meta.Configuration),
		"isManaged":   "false",
	}
	if meta.Description != nil {
		params["description"] = *meta.Description
	}
	now := t.cfg.now().UnixMilli()
	ci := &txlog.CommitInfo{
		Timestamp:     &now,
		Operation:     "CREATE TABLE",
		IsBlindAppend: ptr(true),
		EngineInfo:    EngineInfo,
		TxnID:         uuid.NewString(),
	}
	ci.OperationParameters = encodeParams(params)
	cfg, _ := ParseConfig(meta.Configuration)
	if cfg.ictAt(0) {
		ci.InCommitTimestamp = &now
	}
	data, err := txlog.EncodeCommit([]txlog.Action{{CommitInfo: ci}, {Protocol: protocol}, {MetaData: meta}})
	if err != nil {
		return nil, fmt.Errorf("create table %s: %w", st.URL(), err)
	}
	if err := st.PutIfAbsent(ctx, txlog.CommitKey(0), data); err != nil {
		if errors.Is(err, store.ErrPreconditionFailed) {
			return nil, fmt.Errorf("create table %s: %w", st.URL(), ErrTableExists)
		}
		// A lost response: the commit may have landed.
		if got, gerr := st.Get(ctx, txlog.CommitKey(0)); gerr == nil {
			if ci2, perr := parseCommitInfo(0, got); perr == nil && ci2 != nil && ci2.TxnID == ci.TxnID {
				err = nil
			} else {
				return nil, fmt.Errorf("create table %s: %w", st.URL(), ErrTableExists)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("create table %s: write version 0: %w", st.URL(), err)
		}
	}
	s, err := t.loadSnapshot(ctx, -1, true)
	if err != nil {
		return nil, fmt.Errorf("create table %s: reload: %w", st.URL(), err)
	}
	t.latest = s
	return t, nil
}

// logExists reports whether the location already has commits or checkpoints.
func logExists(ctx context.Context, st store.Store) (bool, error) {
	for info, err := range st.List(ctx, txlog.LogDir, "") {
		if err != nil {
			return false, fmt.Errorf("list log: %w", err)
		}
		if f, ok := txlog.ParseLogFile(info.Key); ok && (f.Kind == txlog.KindCommit || f.Kind.IsCheckpoint()) {
			return true, nil
		}
	}
	return false, nil
}

// newTableActions validates the schema and options and builds version 0's
// protocol and metaData.
func newTableActions(schema *txlog.StructType, cc *createConfig, nowMs int64) (*txlog.Protocol, *txlog.Metadata, error) {
	if schema == nil || len(schema.Fields) == 0 {
		return nil, nil, fmt.Errorf("%w: the schema has no columns", ErrInvalidArgument)
	}
	if err := validateSchema(schema); err != nil {
		return nil, nil, err
	}
	seen := map[string]bool{}
	for _, pc := range cc.partition {
		f := schema.Field(pc)
		if f == nil {
			return nil, nil, fmt.Errorf("%w: partition column %q is not in the schema", ErrInvalidArgument, pc)
		}
		switch f.Type.(type) {
		case *txlog.StructType, *txlog.ArrayType, *txlog.MapType:
			return nil, nil, fmt.Errorf("%w: partition column %q has non-primitive type %s", ErrInvalidArgument, pc, f.Type)
		}
		if seen[pc] {
			return nil, nil, fmt.Errorf("%w: partition column %q listed twice", ErrInvalidArgument, pc)
		}
		seen[pc] = true
	}
	if len(cc.partition) == len(schema.Fields) {
		return nil, nil, fmt.Errorf("%w: every column is a partition column", ErrInvalidArgument)
	}
	props := maps.Clone(cc.props)
	if props == nil {
		props = map[string]string{}
	}
	if cc.noICT {
		if v, ok := props[PropEnableInCommitTimestamps]; ok && strings.EqualFold(v, "true") {
			return nil, nil, fmt.Errorf("%w: WithoutInCommitTimestamps conflicts with %s=true", ErrInvalidArgument, PropEnableInCommitTimestamps)
		}
	} else if _, ok := props[PropEnableInCommitTimestamps]; !ok {
		props[PropEnableInCommitTimestamps] = "true"
	}
	cfg, err := ParseConfig(props)
	if err != nil {
		return nil, nil, err
	}
	if m, ok := props[PropColumnMappingMode]; ok && !strings.EqualFold(m, "none") {
		return nil, nil, fmt.Errorf("%w: creating tables with column mapping mode %q is not supported", txlog.ErrUnsupportedFeature, m)
	}
	for k := range props {
		if strings.HasPrefix(k, PropConstraintPrefix) {
			return nil, nil, fmt.Errorf("%w: CHECK constraints (%s) are not supported", txlog.ErrUnsupportedFeature, k)
		}
	}
	if hasType(schema, txlog.TypeVariant) {
		return nil, nil, fmt.Errorf("%w: variant columns are not supported", txlog.ErrUnsupportedFeature)
	}
	features := append(slices.Clone(cc.extraFeats), requiredFeatures(schema, props, cfg)...)
	slices.Sort(features)
	features = slices.Compact(features)
	p := txlog.MinProtocolFor(features)
	id := uuid.NewString()
	created := nowMs
	meta := &txlog.Metadata{
		ID:               id,
		Name:             cc.name,
		Description:      cc.desc,
		Format:           txlog.Format{Provider: "parquet", Options: map[string]string{}},
		PartitionColumns: slices.Clone(cc.partition),
		CreatedTime:      &created,
		Configuration:    props,
	}
	if meta.PartitionColumns == nil {
		meta.PartitionColumns = []string{}
	}
	meta.SchemaString, err = txlog.MarshalSchema(schema)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", txlog.ErrInvalidSchema, err)
	}
	return &p, meta, nil
}

// requiredFeatures are the table features a schema and its properties use.
func requiredFeatures(schema *txlog.StructType, props map[string]string, cfg Config) []string {
	var features []string
	if cfg.InCommitTimestamps {
		features = append(features, "inCommitTimestamp")
	}
	if cfg.AppendOnly {
		features = append(features, "appendOnly")
	}
	if b, _ := parseBoolProp(props, PropEnableChangeDataFeed); b {
		features = append(features, "changeDataFeed")
	}
	if b, _ := parseBoolProp(props, PropEnableDeletionVectors); b {
		features = append(features, "deletionVectors")
	}
	if hasType(schema, txlog.TypeTimestampNTZ) {
		features = append(features, "timestampNtz")
	}
	if hasNotNull(schema) {
		// Delta counts NOT NULL columns as invariants: with table features
		// (writer 7) Spark refuses a table whose protocol does not list them.
		features = append(features, "invariants")
	}
	return features
}

// upgradeProtocol returns the lowest protocol that supports everything p
// does plus features, or nil when p supports them all already.
func upgradeProtocol(p *txlog.Protocol, features []string) *txlog.Protocol {
	var missing []string
	for _, f := range features {
		if !p.SupportsWriterFeature(f) && !slices.Contains(missing, f) {
			missing = append(missing, f)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	all := append(p.WriterFeatureList(), p.ReaderFeatureList()...)
	up := txlog.MinProtocolFor(append(all, missing...))
	up.MinReaderVersion = max(up.MinReaderVersion, p.MinReaderVersion)
	up.MinWriterVersion = max(up.MinWriterVersion, p.MinWriterVersion)
	if up.MinReaderVersion >= txlog.TableFeaturesReaderVersion && up.ReaderFeatures == nil {
		up.ReaderFeatures = []string{}
	}
	if up.MinWriterVersion >= txlog.TableFeaturesWriterVersion && up.WriterFeatures == nil {
		up.WriterFeatures = []string{}
	}
	return &up
}

func parseBoolProp(props map[string]string, key string) (bool, bool) {
	v, ok := props[key]
	if !ok {
		return false, false
	}
	return strings.EqualFold(strings.TrimSpace(v), "true"), true
}

// validateSchema refuses empty or duplicate (case-insensitive) field names
// and columns we cannot write (invariants, generated and identity columns).
func validateSchema(s *txlog.StructType) error {
	seen := map[string]bool{}
	for _, f := range s.Fields {
		if f.Name == "" {
			return fmt.Errorf("%w: empty column name", txlog.ErrInvalidSchema)
		}
		low := strings.ToLower(f.Name)
		if seen[low] {
			return fmt.Errorf("%w: duplicate column %q", txlog.ErrInvalidSchema, f.Name)
		}
		seen[low] = true
		if err := unsupportedColumnMetadata(f); err != nil {
			return err
		}
		if err := validateType(f.Type); err != nil {
			return fmt.Errorf("column %q: %w", f.Name, err)
		}
	}
	return nil
}

func validateType(t txlog.DataType) error {
	switch t := t.(type) {
	case *txlog.StructType:
		return validateSchema(t)
	case *txlog.ArrayType:
		return validateType(t.ElementType)
	case *txlog.MapType:
		if err := validateType(t.KeyType); err != nil {
			return err
		}
		return validateType(t.ValueType)
	case nil:
		return fmt.Errorf("%w: missing type", txlog.ErrInvalidSchema)
	}
	return nil
}

// unsupportedColumnMetadata reports column metadata we cannot honour when
// writing: invariants, generated columns, identity columns.
func unsupportedColumnMetadata(f *txlog.StructField) error {
	for k := range f.Metadata {
		switch {
		case k == "delta.invariants":
			return fmt.Errorf("%w: column %q has invariants (delta.invariants)", txlog.ErrUnsupportedFeature, f.Name)
		case k == "delta.generationExpression":
			return fmt.Errorf("%w: column %q is a generated column", txlog.ErrUnsupportedFeature, f.Name)
		case strings.HasPrefix(k, "delta.identity."):
			return fmt.Errorf("%w: column %q is an identity column", txlog.ErrUnsupportedFeature, f.Name)
		}
	}
	return nil
}

// checkSchemaWritable walks the schema for column metadata we cannot honour.
func checkSchemaWritable(s *txlog.StructType) error {
	for _, f := range s.Fields {
		if err := unsupportedColumnMetadata(f); err != nil {
			return err
		}
		if err := walkNested(f.Type, checkSchemaWritable); err != nil {
			return err
		}
	}
	return nil
}

func walkNested(t txlog.DataType, fn func(*txlog.StructType) error) error {
	switch t := t.(type) {
	case *txlog.StructType:
		return fn(t)
	case *txlog.ArrayType:
		return walkNested(t.ElementType, fn)
	case *txlog.MapType:
		if err := walkNested(t.KeyType, fn); err != nil {
			return err
		}
		return walkNested(t.ValueType, fn)
	}
	return nil
}

// hasNotNull reports whether a column, or a field of a struct column at any
// depth, is NOT NULL (fields inside arrays and maps do not count, as in
// Delta's invariants).
func hasNotNull(st *txlog.StructType) bool {
	for _, f := range st.Fields {
		if !f.Nullable {
			return true
		}
		if inner, ok := f.Type.(*txlog.StructType); ok && hasNotNull(inner) {
			return true
		}
	}
	return false
}

func hasType(t txlog.DataType, name string) bool {
	switch t := t.(type) {
	case *txlog.PrimitiveType:
		return t.Name == name
	case *txlog.StructType:
		for _, f := range t.Fields {
			if hasType(f.Type, name) {
				return true
			}
		}
	case *txlog.ArrayType:
		return hasType(t.ElementType, name)
	case *txlog.MapType:
		return hasType(t.KeyType, name) || hasType(t.ValueType, name)
	}
	return false
}

func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

// encodeParams renders operationParameters values as JSON.
func encodeParams(params map[string]any) map[string]json.RawMessage {
	if len(params) == 0 {
		return nil
	}
	out := make(map[string]json.RawMessage, len(params))
	for k, v := range params {
		b, err := json.Marshal(v)
		if err != nil {
			b, _ = json.Marshal(fmt.Sprint(v))
		}
		out[k] = b
	}
	return out
}

func ptr[T any](v T) *T { return &v }
