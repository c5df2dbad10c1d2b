package txlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/url"
	"strings"

	"github.com/parquet-go/parquet-go"

	"github.com/kappa-lake/kappa/internal/store"
)

// wholeFileLimit is the size up to which ReadCheckpoint reads a checkpoint
// Parquet file with one request into memory; larger files are read through
// the store's ReaderAt with large buffered reads, so memory stays bounded.
const wholeFileLimit = 64 << 20

// remoteReadBuffer is the read buffer size for checkpoint files read through
// a ReaderAt (one range request per buffer fill and column).
const remoteReadBuffer = 1 << 20

// stateReadBuffer is the read buffer size of ReadCheckpointState: it reads a
// few small columns, never the whole file.
const stateReadBuffer = 64 << 10

// ReadCheckpoint yields the actions of a checkpoint: every part of a classic
// (single-file or multi-part) V1 checkpoint in order, or a V2 checkpoint
// (.json or .parquet) followed by the actions of the sidecar files its
// sidecar actions name (under _delta_log/_sidecars/). The checkpointMetadata
// and sidecar actions themselves are yielded too.
//
// Parquet checkpoints are read by column name, so files of any writer
// (Spark, delta-rs, kernel) with any subset of columns work: a missing column
// reads as null. Only the columns the actions need are decoded. When an add
// has no stats JSON but the file has add.stats_parsed, the stats are
// rendered from it into Add.Stats (and Add.StatsParsed), so callers see a
// single form; likewise partitionValues_parsed fills a missing
// partitionValues. schema (may be nil; called at most once, only when typed
// stats must be rendered) gives the table schema; it is a type hint for
// typed columns whose Parquet annotations are missing (e.g. a timestamp
// stored as plain INT64). Without it the metaData seen so far in the
// checkpoint is used.
//
// Errors from malformed files wrap ErrCorruptLog and name the file; the
// iteration stops at the first error.
func ReadCheckpoint(ctx context.Context, st store.Store, parts []LogFile, schema func() *StructType) iter.Seq2[Action, error] {
	return readCheckpoint(ctx, st, parts, schema, false)
}

// ReadCheckpointState yields only the protocol, metaData, txn and
// domainMetadata actions of a checkpoint (and checkpointMetadata), never its
// file actions, in file order: the table state a writer needs. It does not
// read sidecars, skips row groups whose footer statistics show those
// columns all null, and reads only those columns, through the store's
// ReaderAt with a small buffer, so memory and I/O do not grow with the
// number of files in the table. A V2 JSON checkpoint is read whole (its
// file actions, if any, are parsed and dropped). Errors are those of
// ReadCheckpoint.
func ReadCheckpointState(ctx context.Context, st store.Store, parts []LogFile) iter.Seq2[Action, error] {
	return readCheckpoint(ctx, st, parts, nil, true)
}

// isStateAction reports whether a is one of the actions ReadCheckpointState
// yields.
func isStateAction(a Action) bool {
	return a.Protocol != nil || a.MetaData != nil || a.Txn != nil ||
		a.DomainMetadata != nil || a.CheckpointMetadata != nil
}

// readCheckpoint is ReadCheckpoint, or ReadCheckpointState when stateOnly.
func readCheckpoint(ctx context.Context, st store.Store, parts []LogFile, schema func() *StructType, stateOnly bool) iter.Seq2[Action, error] {
	return func(yield func(Action, error) bool) {
		var sidecars []*Sidecar
		var seenMeta *Metadata
		var tableSchema *StructType
		schemaDone := false
		schemaHint := func() *StructType {
			if !schemaDone {
				schemaDone = true
				if schema != nil {
					tableSchema = schema()
				}
				if tableSchema == nil && seenMeta != nil {
					tableSchema, _ = ParseSchema(seenMeta.SchemaString)
				}
			}
			return tableSchema
		}
		emit := func(a Action) bool {
			if stateOnly && !isStateAction(a) {
				return true // a JSON part's file and sidecar actions
			}
			if a.Sidecar != nil {
				sidecars = append(sidecars, a.Sidecar)
			}
			if a.MetaData != nil {
				seenMeta = a.MetaData
			}
			return yield(a, nil)
		}
		for _, p := range parts {
			if err := ctx.Err(); err != nil {
				yield(Action{}, err)
				return
			}
			var err error
			if strings.HasSuffix(p.Key, ".json") {
				err = readJSONCheckpoint(ctx, st, p.Key, emit)
			} else {
				err = readParquetCheckpoint(ctx, st, p.Key, schemaHint, stateOnly, emit)
			}
			if errors.Is(err, errStop) {
				return
			}
			if err != nil {
				yield(Action{}, err)
				return
			}
		}
		for _, sc := range sidecars { // none when stateOnly
			key, err := sidecarKey(sc.Path)
			if err != nil {
				err = fmt.Errorf("read checkpoint %s: %w", parts[len(parts)-1].Key, err)
			} else {
				err = readParquetCheckpoint(ctx, st, key, schemaHint, false, func(a Action) bool {
					if a.Sidecar != nil || a.CheckpointMetadata != nil {
						return true // sidecars hold file actions only
					}
					return yield(a, nil)
				})
			}
			if errors.Is(err, errStop) {
				return
			}
			if err != nil {
				yield(Action{}, err)
				return
			}
		}
	}
}

// errStop reports that the consumer stopped the iteration.
var errStop = errors.New("iteration stopped")

// sidecarKey maps a sidecar action's path to a store key. The protocol
// recommends a bare file name relative to _delta_log/_sidecars/; a full path
// or URI is accepted as long as it points into a _sidecars directory.
func sidecarKey(p string) (string, error) {
	if strings.Contains(p, "%") {
		if u, err := url.PathUnescape(p); err == nil {
			p = u
		}
	}
	if i := strings.LastIndex(p, "/_sidecars/"); i >= 0 {
		p = p[i+len("/_sidecars/"):]
	}
	if p == "" || strings.Contains(p, "/") || p == "." || p == ".." {
		return "", fmt.Errorf("%w: sidecar path %q is not in %s", ErrCorruptLog, p, SidecarDir)
	}
	return SidecarDir + p, nil
}

func readJSONCheckpoint(ctx context.Context, st store.Store, key string, emit func(Action) bool) error {
	data, err := st.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("read checkpoint %s: %w", key, err)
	}
	actions, err := ParseCommit(data)
	if err != nil {
		return fmt.Errorf("read checkpoint %s: %w", key, err)
	}
	for _, a := range actions {
		if a.CommitInfo != nil || a.CDC != nil || a.Unknown != "" {
			continue
		}
		if !emit(a) {
			return errStop
		}
	}
	return nil
}

// openParquet opens a checkpoint Parquet file from the store. A file of at
// most wholeFileLimit bytes (stateReadBuffer when small is set) is read into
// memory with one request; a larger one is read through the store's
// ReaderAt with a read buffer of remoteReadBuffer bytes (stateReadBuffer
// when small), the footer with one request from the end.
func openParquet(ctx context.Context, st store.Store, key string, small bool) (*parquet.File, func(), error) {
	r, err := st.Open(ctx, key)
	if err != nil {
		return nil, nil, fmt.Errorf("read checkpoint %s: %w", key, err)
	}
	size := r.Size()
	var ra io.ReaderAt = ctxReaderAt{ctx: ctx, r: r}
	opts := []parquet.FileOption{parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true)}
	closer := func() { _ = r.Close() }
	whole, buffer := int64(wholeFileLimit), remoteReadBuffer
	if small {
		whole, buffer = stateReadBuffer, stateReadBuffer
	}
	switch {
	case size <= whole:
		buf := make([]byte, size)
		if _, err := r.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
			_ = r.Close()
			return nil, nil, fmt.Errorf("read checkpoint %s: %w", key, err)
		}
		_ = r.Close()
		ra, closer = bytes.NewReader(buf), func() {}
	default:
		opts = append(opts, parquet.ReadBufferSize(buffer), parquet.OptimisticRead(true))
	}
	f, err := parquet.OpenFile(ra, size, opts...)
	if err != nil {
		closer()
		return nil, nil, corruptCheckpoint("read checkpoint "+key, err)
	}
	return f, closer, nil
}

// ctxReaderAt makes reads of a store ReaderAt fail once ctx is done.
type ctxReaderAt struct {
	ctx context.Context
	r   io.ReaderAt
}

func (c ctxReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.ReadAt(p, off)
}

// readParquetCheckpoint decodes the actions of one checkpoint Parquet file
// (only the table-state actions when stateOnly) and passes them to emit.
func readParquetCheckpoint(ctx context.Context, st store.Store, key string, schema func() *StructType, stateOnly bool, emit func(Action) bool) (err error) {
	defer func() {
		// parquet-go may panic on malformed input (also in OpenFile); never
		// let it escape.
		if r := recover(); r != nil {
			err = fmt.Errorf("read checkpoint %s: %w: %v", key, ErrCorruptLog, r)
		}
	}()
	f, closer, err := openParquet(ctx, st, key, stateOnly)
	if err != nil {
		return err
	}
	defer closer()
	root := f.Root()
	for gi, rg := range f.RowGroups() {
		if err := readRowGroup(ctx, root, rg, schema, stateOnly, emit); err != nil {
			if errors.Is(err, errStop) {
				return err
			}
			if ctx.Err() != nil {
				return fmt.Errorf("read checkpoint %s: %w", key, err)
			}
			return corruptCheckpoint(fmt.Sprintf("read checkpoint %s row group %d", key, gi), err)
		}
	}
	return nil
}

// corruptCheckpoint wraps a decoding error in ErrCorruptLog. A transient
// store error keeps its chain (store.IsRetryable stays true); any other
// error is kept as text only, because decoder errors often wrap
// io.ErrUnexpectedEOF, which store.IsRetryable takes for a truncated
// network response: a corrupt checkpoint must not look retryable.
func corruptCheckpoint(what string, err error) error {
	var op *store.OpError
	if errors.Is(err, store.ErrTransient) || (errors.As(err, &op) && store.IsRetryable(err)) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %w: %v", what, ErrCorruptLog, err) //nolint:errorlint // keep io.ErrUnexpectedEOF out of the chain (see above)
}

// rowGroupReader owns the cursors opened on one row group.
type rowGroupReader struct {
	rg       parquet.RowGroup
	cursors  []*colCursor
	scratch  []parquet.Value
	scratch2 []parquet.Value
	interned map[string]string
	pvCache  map[string]*string
	schema   func() *StructType // table schema hint, may return nil
}

func (r *rowGroupReader) open(c *parquet.Column) *colCursor {
	if c == nil || !c.Leaf() || c.Index() < 0 || c.Index() >= len(r.rg.ColumnChunks()) {
		return nil
	}
	cur := newCursor(c, r.rg)
	r.cursors = append(r.cursors, cur)
	return cur
}

func (r *rowGroupReader) err() error {
	for _, c := range r.cursors {
		if c.err != nil {
			return c.err
		}
	}
	return nil
}

func (r *rowGroupReader) close() {
	for _, c := range r.cursors {
		c.close()
	}
}

// allNull reports whether the footer statistics say leaf c holds only nulls
// in this row group (then the action kind it belongs to is absent).
func (r *rowGroupReader) allNull(c *parquet.Column) bool {
	if c == nil {
		return true
	}
	fc, ok := r.rg.ColumnChunks()[c.Index()].(*parquet.FileColumnChunk)
	n := r.rg.NumRows()
	return ok && n > 0 && fc.NullCount() == n && fc.NumValues() == n
}

// intern returns a string for b, sharing storage for repeated small values
// (map keys, partition values) to save allocations.
func (r *rowGroupReader) intern(b []byte) string {
	if s, ok := r.interned[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(r.interned) < 4096 && len(b) <= 256 {
		r.interned[s] = s
	}
	return s
}

// readRowGroup decodes the actions of one row group (only the table-state
// actions when stateOnly). Each action kind's decoder is built only if the
// footer statistics do not show its key column all null; a row group
// without any is skipped without reading anything.
func readRowGroup(ctx context.Context, root *parquet.Column, rg parquet.RowGroup, schema func() *StructType, stateOnly bool, emit func(Action) bool) error {
	r := &rowGroupReader{rg: rg, interned: map[string]string{}, pvCache: map[string]*string{}, schema: schema}
	defer r.close()
	var decs []actionDecoder
	if !stateOnly {
		if d := newAddDecoder(r, child(root, "add")); d != nil {
			decs = append(decs, d)
		}
		if d := newRemoveDecoder(r, child(root, "remove")); d != nil {
			decs = append(decs, d)
		}
	}
	if d := newTxnDecoder(r, child(root, "txn")); d != nil {
		decs = append(decs, d)
	}
	if d := newMetadataDecoder(r, child(root, "metaData")); d != nil {
		decs = append(decs, d)
	}
	if d := newProtocolDecoder(r, child(root, "protocol")); d != nil {
		decs = append(decs, d)
	}
	if d := newDomainMetadataDecoder(r, child(root, "domainMetadata")); d != nil {
		decs = append(decs, d)
	}
	if d := newCheckpointMetadataDecoder(r, child(root, "checkpointMetadata")); d != nil {
		decs = append(decs, d)
	}
	if !stateOnly {
		if d := newSidecarDecoder(r, child(root, "sidecar")); d != nil {
			decs = append(decs, d)
		}
	}
	if len(decs) == 0 {
		return nil
	}
	n := rg.NumRows()
	for row := int64(0); row < n; row++ {
		if row&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		for _, d := range decs {
			a, ok := d.decode(row)
			if !ok {
				continue
			}
			if err := r.err(); err != nil {
				return err
			}
			if !emit(a) {
				return errStop
			}
		}
	}
	return r.err()
}

// actionDecoder decodes one action kind from a row, if the row holds one.
type actionDecoder interface {
	decode(row int64) (Action, bool)
}

// present reports whether the group of definition level def is non-null in
// the row, judged from value v of one of its leaves.
func present(v parquet.Value, def int) bool { return v.DefinitionLevel() >= def }

func vString(v parquet.Value) string {
	if v.IsNull() {
		return ""
	}
	return string(v.ByteArray())
}

func vStringPtr(v parquet.Value) *string {
	if v.IsNull() {
		return nil
	}
	s := string(v.ByteArray())
	return &s
}

func vInt64(v parquet.Value) int64 {
	switch v.Kind() {
	case parquet.Int64:
		return v.Int64()
	case parquet.Int32:
		return int64(v.Int32())
	}
	return 0
}

func vInt64Ptr(v parquet.Value) *int64 {
	if v.IsNull() {
		return nil
	}
	x := vInt64(v)
	return &x
}

func vInt32Ptr(v parquet.Value) *int32 {
	if v.IsNull() {
		return nil
	}
	x := int32(vInt64(v))
	return &x
}

func vBool(v parquet.Value) bool {
	return !v.IsNull() && v.Kind() == parquet.Boolean && v.Boolean()
}

// mapCols reads a map<string,string> column (MAP group > repeated key_value >
// key, value).
type mapCols struct {
	def, kvDef int // levels at which the map / an entry is defined
	key, val   *colCursor
}

func openMap(r *rowGroupReader, c *parquet.Column) mapCols {
	if c == nil || c.Leaf() || len(c.Columns()) != 1 {
		return mapCols{}
	}
	kv := c.Columns()[0]
	if kv.Leaf() || len(kv.Columns()) == 0 {
		return mapCols{}
	}
	k := child(kv, "key")
	v := child(kv, "value")
	if k == nil {
		k = kv.Columns()[0]
	}
	if v == nil && len(kv.Columns()) > 1 {
		v = kv.Columns()[1]
	}
	return mapCols{def: defLevel(c), kvDef: defLevel(kv), key: r.open(k), val: r.open(v)}
}

// read returns the map of row, nil when the map is null or empty.
func (m *mapCols) read(r *rowGroupReader, row int64, fn func(k string, v parquet.Value)) {
	if m.key == nil {
		return
	}
	keys := m.key.rowAt(row, r.scratch[:0])
	vals := m.val.rowAt(row, r.scratch2[:0])
	r.scratch, r.scratch2 = keys, vals
	if len(keys) == 0 || keys[0].DefinitionLevel() < m.kvDef {
		return
	}
	for i, k := range keys {
		var v parquet.Value
		if i < len(vals) && m.val != nil {
			v = vals[i]
		}
		fn(r.intern(k.ByteArray()), v)
	}
}

func (m *mapCols) stringMap(r *rowGroupReader, row int64) map[string]string {
	var out map[string]string
	m.read(r, row, func(k string, v parquet.Value) {
		if out == nil {
			out = make(map[string]string)
		}
		out[k] = vString(v)
	})
	return out
}

// isNull reports whether the map of row is null (as opposed to empty); only
// valid right after read for the same row.
func (m *mapCols) wasNull(r *rowGroupReader) bool {
	return m.key == nil || len(r.scratch) == 0 || r.scratch[0].DefinitionLevel() < m.def
}

// listCols reads a list<string> column, 3-level (LIST > repeated list >
// element) or legacy 2-level (LIST > repeated element).
type listCols struct {
	repDef int
	elem   *colCursor
}

func openList(r *rowGroupReader, c *parquet.Column) listCols {
	if c == nil {
		return listCols{}
	}
	if c.Leaf() { // a bare repeated leaf
		return listCols{repDef: defLevel(c), elem: r.open(c)}
	}
	if len(c.Columns()) != 1 {
		return listCols{}
	}
	rep := c.Columns()[0]
	if rep.Leaf() {
		return listCols{repDef: defLevel(rep), elem: r.open(rep)}
	}
	return listCols{repDef: defLevel(rep), elem: r.open(firstLeaf(rep))}
}

func (l *listCols) strings(r *rowGroupReader, row int64) []string {
	if l.elem == nil {
		return nil
	}
	vals := l.elem.rowAt(row, r.scratch[:0])
	r.scratch = vals
	if len(vals) == 0 || vals[0].DefinitionLevel() < l.repDef {
		return nil
	}
	out := make([]string, 0, len(vals))
	for _, v := range vals {
		out = append(out, vString(v))
	}
	return out
}

// dvCols reads a deletionVector struct.
type dvCols struct {
	def                                 int
	storageType, pathOrInline, offset   *colCursor
	sizeInBytes, cardinality, maxRowIdx *colCursor
}

func openDV(r *rowGroupReader, c *parquet.Column) dvCols {
	if c == nil || c.Leaf() {
		return dvCols{}
	}
	return dvCols{
		def:          defLevel(c),
		storageType:  r.open(child(c, "storageType")),
		pathOrInline: r.open(child(c, "pathOrInlineDv")),
		offset:       r.open(child(c, "offset")),
		sizeInBytes:  r.open(child(c, "sizeInBytes")),
		cardinality:  r.open(child(c, "cardinality")),
		maxRowIdx:    r.open(child(c, "maxRowIndex")),
	}
}

func (d *dvCols) read(row int64) *DeletionVector {
	if d.storageType == nil {
		return nil
	}
	st := d.storageType.at(row)
	if !present(st, d.def) || st.IsNull() {
		return nil
	}
	return &DeletionVector{
		StorageType:    string(st.ByteArray()),
		PathOrInlineDv: vString(d.pathOrInline.at(row)),
		Offset:         vInt32Ptr(d.offset.at(row)),
		SizeInBytes:    int32(vInt64(d.sizeInBytes.at(row))),
		Cardinality:    vInt64(d.cardinality.at(row)),
		MaxRowIndex:    vInt64Ptr(d.maxRowIdx.at(row)),
	}
}

type addDecoder struct {
	r                               *rowGroupReader
	def                             int
	path, size, modTime, dataChange *colCursor
	stats, baseRowID, defaultRowCV  *colCursor
	clusteringProvider              *colCursor
	pv, tags                        mapCols
	dv                              dvCols
	statsParsed                     *parsedGroup // lazily read
	pvParsed                        *parsedGroup // lazily read
	pvParsedCol, statsParsedCol     *parquet.Column
}

func newAddDecoder(r *rowGroupReader, c *parquet.Column) *addDecoder {
	p := child(c, "path")
	if p == nil || r.allNull(p) {
		return nil
	}
	return &addDecoder{
		r:                  r,
		def:                defLevel(c),
		path:               r.open(p),
		size:               r.open(child(c, "size")),
		modTime:            r.open(child(c, "modificationTime")),
		dataChange:         r.open(child(c, "dataChange")),
		stats:              r.open(child(c, "stats")),
		baseRowID:          r.open(child(c, "baseRowId")),
		defaultRowCV:       r.open(child(c, "defaultRowCommitVersion")),
		clusteringProvider: r.open(child(c, "clusteringProvider")),
		pv:                 openMap(r, child(c, "partitionValues")),
		tags:               openMap(r, child(c, "tags")),
		dv:                 openDV(r, child(c, "deletionVector")),
		statsParsedCol:     child(c, "stats_parsed"),
		pvParsedCol:        child(c, "partitionValues_parsed"),
	}
}

func (d *addDecoder) decode(row int64) (Action, bool) {
	r := d.r
	pv := d.path.at(row)
	if !present(pv, d.def) || pv.IsNull() {
		return Action{}, false
	}
	a := &Add{
		Path:                    string(pv.ByteArray()),
		Size:                    vInt64(d.size.at(row)),
		ModificationTime:        vInt64(d.modTime.at(row)),
		DataChange:              vBool(d.dataChange.at(row)),
		Stats:                   vString(d.stats.at(row)),
		BaseRowID:               vInt64Ptr(d.baseRowID.at(row)),
		DefaultRowCommitVersion: vInt64Ptr(d.defaultRowCV.at(row)),
		ClusteringProvider:      vStringPtr(d.clusteringProvider.at(row)),
		Tags:                    d.tags.stringMap(r, row),
		DeletionVector:          d.dv.read(row),
	}
	d.pv.read(r, row, func(k string, v parquet.Value) {
		if a.PartitionValues == nil {
			a.PartitionValues = make(map[string]*string)
		}
		a.PartitionValues[k] = r.partitionValue(v)
	})
	if a.PartitionValues == nil {
		if d.pv.wasNull(r) && d.pvParsedCol != nil {
			if d.pvParsed == nil {
				d.pvParsed = openParsed(r, d.pvParsedCol, r.schema(), false)
			}
			a.PartitionValues = d.pvParsed.partitionValues(row)
		}
		if a.PartitionValues == nil {
			a.PartitionValues = map[string]*string{}
		}
	}
	if a.Stats == "" && d.statsParsedCol != nil {
		if d.statsParsed == nil {
			d.statsParsed = openParsed(r, d.statsParsedCol, r.schema(), true)
		}
		a.StatsParsed, a.Stats = d.statsParsed.stats(row)
	}
	return Action{Add: a}, true
}

// partitionValue returns a shared *string for a partition value.
func (r *rowGroupReader) partitionValue(v parquet.Value) *string {
	if v.IsNull() {
		return nil
	}
	b := v.ByteArray()
	if p, ok := r.pvCache[string(b)]; ok {
		return p
	}
	s := string(b)
	p := &s
	if len(r.pvCache) < 4096 && len(b) <= 256 {
		r.pvCache[s] = p
	}
	return p
}

type removeDecoder struct {
	r                                      *rowGroupReader
	def                                    int
	path, delTS, dataChange, extMeta, size *colCursor
	stats, baseRowID, defaultRowCV         *colCursor
	pv, tags                               mapCols
	dv                                     dvCols
}

func newRemoveDecoder(r *rowGroupReader, c *parquet.Column) *removeDecoder {
	p := child(c, "path")
	if p == nil || r.allNull(p) {
		return nil
	}
	return &removeDecoder{
		r:            r,
		def:          defLevel(c),
		path:         r.open(p),
		delTS:        r.open(child(c, "deletionTimestamp")),
		dataChange:   r.open(child(c, "dataChange")),
		extMeta:      r.open(child(c, "extendedFileMetadata")),
		size:         r.open(child(c, "size")),
		stats:        r.open(child(c, "stats")),
		baseRowID:    r.open(child(c, "baseRowId")),
		defaultRowCV: r.open(child(c, "defaultRowCommitVersion")),
		pv:           openMap(r, child(c, "partitionValues")),
		tags:         openMap(r, child(c, "tags")),
		dv:           openDV(r, child(c, "deletionVector")),
	}
}

func (d *removeDecoder) decode(row int64) (Action, bool) {
	r := d.r
	pv := d.path.at(row)
	if !present(pv, d.def) || pv.IsNull() {
		return Action{}, false
	}
	a := &Remove{
		Path:                    string(pv.ByteArray()),
		DeletionTimestamp:       vInt64Ptr(d.delTS.at(row)),
		DataChange:              vBool(d.dataChange.at(row)),
		Size:                    vInt64Ptr(d.size.at(row)),
		Stats:                   vString(d.stats.at(row)),
		BaseRowID:               vInt64Ptr(d.baseRowID.at(row)),
		DefaultRowCommitVersion: vInt64Ptr(d.defaultRowCV.at(row)),
		Tags:                    d.tags.stringMap(r, row),
		DeletionVector:          d.dv.read(row),
	}
	if v := d.extMeta.at(row); !v.IsNull() {
		b := vBool(v)
		a.ExtendedFileMetadata = &b
	}
	d.pv.read(r, row, func(k string, v parquet.Value) {
		if a.PartitionValues == nil {
			a.PartitionValues = make(map[string]*string)
		}
		a.PartitionValues[k] = r.partitionValue(v)
	})
	if a.PartitionValues == nil && !d.pv.wasNull(r) {
		a.PartitionValues = map[string]*string{}
	}
	return Action{Remove: a}, true
}

type txnDecoder struct {
	def                         int
	appID, version, lastUpdated *colCursor
}

func newTxnDecoder(r *rowGroupReader, c *parquet.Column) *txnDecoder {
	p := child(c, "appId")
	if p == nil || r.allNull(p) {
		return nil
	}
	return &txnDecoder{
		def: defLevel(c), appID: r.open(p), version: r.open(child(c, "version")),
		lastUpdated: r.open(child(c, "lastUpdated")),
	}
}

func (d *txnDecoder) decode(row int64) (Action, bool) {
	v := d.appID.at(row)
	if !present(v, d.def) || v.IsNull() {
		return Action{}, false
	}
	return Action{Txn: &Txn{
		AppID: string(v.ByteArray()), Version: vInt64(d.version.at(row)),
		LastUpdated: vInt64Ptr(d.lastUpdated.at(row)),
	}}, true
}

type metadataDecoder struct {
	r                                       *rowGroupReader
	def                                     int
	id, name, desc, provider, schema, ctime *colCursor
	options, conf                           mapCols
	partCols                                listCols
}

func newMetadataDecoder(r *rowGroupReader, c *parquet.Column) *metadataDecoder {
	p := child(c, "id")
	if p == nil || r.allNull(p) {
		return nil
	}
	f := child(c, "format")
	return &metadataDecoder{
		r: r, def: defLevel(c),
		id:       r.open(p),
		name:     r.open(child(c, "name")),
		desc:     r.open(child(c, "description")),
		provider: r.open(child(f, "provider")),
		options:  openMap(r, child(f, "options")),
		schema:   r.open(child(c, "schemaString")),
		partCols: openList(r, child(c, "partitionColumns")),
		conf:     openMap(r, child(c, "configuration")),
		ctime:    r.open(child(c, "createdTime")),
	}
}

func (d *metadataDecoder) decode(row int64) (Action, bool) {
	r := d.r
	v := d.id.at(row)
	if !present(v, d.def) || v.IsNull() {
		return Action{}, false
	}
	m := &Metadata{
		ID:               string(v.ByteArray()),
		Name:             vStringPtr(d.name.at(row)),
		Description:      vStringPtr(d.desc.at(row)),
		Format:           Format{Provider: vString(d.provider.at(row)), Options: d.options.stringMap(r, row)},
		SchemaString:     vString(d.schema.at(row)),
		PartitionColumns: d.partCols.strings(r, row),
		Configuration:    d.conf.stringMap(r, row),
		CreatedTime:      vInt64Ptr(d.ctime.at(row)),
	}
	if m.Format.Provider == "" {
		m.Format.Provider = "parquet"
	}
	if m.Format.Options == nil {
		m.Format.Options = map[string]string{}
	}
	if m.PartitionColumns == nil {
		m.PartitionColumns = []string{}
	}
	if m.Configuration == nil {
		m.Configuration = map[string]string{}
	}
	return Action{MetaData: m}, true
}

type protocolDecoder struct {
	r                        *rowGroupReader
	def                      int
	minReader, minWriter     *colCursor
	readerFeats, writerFeats listCols
}

func newProtocolDecoder(r *rowGroupReader, c *parquet.Column) *protocolDecoder {
	p := child(c, "minReaderVersion")
	if p == nil || r.allNull(p) {
		return nil
	}
	return &protocolDecoder{
		r: r, def: defLevel(c), minReader: r.open(p),
		minWriter:   r.open(child(c, "minWriterVersion")),
		readerFeats: openList(r, child(c, "readerFeatures")),
		writerFeats: openList(r, child(c, "writerFeatures")),
	}
}

func (d *protocolDecoder) decode(row int64) (Action, bool) {
	v := d.minReader.at(row)
	if !present(v, d.def) || v.IsNull() {
		return Action{}, false
	}
	return Action{Protocol: &Protocol{
		MinReaderVersion: int32(vInt64(v)),
		MinWriterVersion: int32(vInt64(d.minWriter.at(row))),
		ReaderFeatures:   d.readerFeats.strings(d.r, row),
		WriterFeatures:   d.writerFeats.strings(d.r, row),
	}}, true
}

type domainMetadataDecoder struct {
	def                   int
	domain, conf, removed *colCursor
}

func newDomainMetadataDecoder(r *rowGroupReader, c *parquet.Column) *domainMetadataDecoder {
	p := child(c, "domain")
	if p == nil || r.allNull(p) {
		return nil
	}
	return &domainMetadataDecoder{
		def: defLevel(c), domain: r.open(p),
		conf: r.open(child(c, "configuration")), removed: r.open(child(c, "removed")),
	}
}

func (d *domainMetadataDecoder) decode(row int64) (Action, bool) {
	v := d.domain.at(row)
	if !present(v, d.def) || v.IsNull() {
		return Action{}, false
	}
	return Action{DomainMetadata: &DomainMetadata{
		Domain:        string(v.ByteArray()),
		Configuration: vString(d.conf.at(row)), Removed: vBool(d.removed.at(row)),
	}}, true
}

type checkpointMetadataDecoder struct {
	r       *rowGroupReader
	def     int
	version *colCursor
	tags    mapCols
}

func newCheckpointMetadataDecoder(r *rowGroupReader, c *parquet.Column) *checkpointMetadataDecoder {
	p := child(c, "version")
	if p == nil || r.allNull(p) {
		return nil
	}
	return &checkpointMetadataDecoder{r: r, def: defLevel(c), version: r.open(p), tags: openMap(r, child(c, "tags"))}
}

func (d *checkpointMetadataDecoder) decode(row int64) (Action, bool) {
	v := d.version.at(row)
	if !present(v, d.def) || v.IsNull() {
		return Action{}, false
	}
	return Action{CheckpointMetadata: &CheckpointMetadata{Version: vInt64(v), Tags: d.tags.stringMap(d.r, row)}}, true
}

type sidecarDecoder struct {
	r                   *rowGroupReader
	def                 int
	path, size, modTime *colCursor
	tags                mapCols
}

func newSidecarDecoder(r *rowGroupReader, c *parquet.Column) *sidecarDecoder {
	p := child(c, "path")
	if p == nil || r.allNull(p) {
		return nil
	}
	return &sidecarDecoder{
		r: r, def: defLevel(c), path: r.open(p), size: r.open(child(c, "sizeInBytes")),
		modTime: r.open(child(c, "modificationTime")), tags: openMap(r, child(c, "tags")),
	}
}

func (d *sidecarDecoder) decode(row int64) (Action, bool) {
	v := d.path.at(row)
	if !present(v, d.def) || v.IsNull() {
		return Action{}, false
	}
	return Action{Sidecar: &Sidecar{
		Path: string(v.ByteArray()), SizeInBytes: vInt64(d.size.at(row)),
		ModificationTime: vInt64(d.modTime.at(row)), Tags: d.tags.stringMap(d.r, row),
	}}, true
}
