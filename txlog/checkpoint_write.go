package txlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"math/big"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/kappa-lake/kappa/internal/store"
)

// CheckpointData is the reconciled state of a table at a version: what a
// checkpoint holds.
type CheckpointData struct {
	Protocol       *Protocol
	Metadata       *Metadata
	Txns           []*Txn
	DomainMetadata []*DomainMetadata
	// Files yields the add actions and the tombstones (remove actions) to
	// write, in any order; nil means none. An error stops the write.
	// Tombstones are those still within their retention period; they are
	// written with their deletionTimestamp so VACUUM can honour it. Files is
	// iterated once, while the checkpoint is being written.
	Files iter.Seq2[Action, error]
}

// ErrNotFileAction is returned by WriteCheckpoint when CheckpointData.Files
// yields an action that is neither an add nor a remove.
var ErrNotFileAction = errors.New("checkpoint file action is neither add nor remove")

// CheckpointRowGroupRows bounds the rows of one row group of a written
// checkpoint so readers can stream it; it is also what the writer holds in
// memory.
const CheckpointRowGroupRows = 20000

// checkpointRowGroupRows is CheckpointRowGroupRows; tests lower it.
var checkpointRowGroupRows int64 = CheckpointRowGroupRows

// WriteCheckpoint writes the classic V1 single-file checkpoint
// _delta_log/<version>.checkpoint.parquet of d (atomically, overwriting an
// existing one) and then _last_checkpoint (unless that names a newer
// checkpoint already); it returns the _last_checkpoint content of this one.
//
// The file is streamed to the store (Store.PutStream) one row group of
// CheckpointRowGroupRows rows at a time, so memory does not grow with the
// number of files: d.Files is consumed as it is written. Rows come in the
// order protocol, metaData, txns, domainMetadata, then the file actions as
// Files yields them. If Files yields an error, or ctx ends, nothing is
// published.
//
// The file follows Spark's checkpoint schema, so Spark, delta-rs and DuckDB
// read it: optional struct columns txn, add, remove, metaData, protocol (and
// domainMetadata when d has any). add carries the stats JSON string and,
// unless the table sets delta.checkpoint.writeStatsAsStruct=false, the typed
// add.stats_parsed (numRecords, minValues, maxValues, nullCount,
// tightBounds, mirroring the table schema by physical column name; null for
// adds without stats) and add.partitionValues_parsed.
// delta.checkpoint.writeStatsAsJson=false drops the stats string column.
func WriteCheckpoint(ctx context.Context, st store.Store, version int64, d CheckpointData) (*LastCheckpoint, error) {
	if version < 0 {
		return nil, fmt.Errorf("write checkpoint %d: negative version", version)
	}
	if d.Protocol == nil || d.Metadata == nil {
		return nil, fmt.Errorf("write checkpoint %d: protocol and metadata are required", version)
	}
	enc, err := newCheckpointEncoder(d)
	if err != nil {
		return nil, fmt.Errorf("write checkpoint %d: %w", version, err)
	}
	var res encodeResult
	err = st.PutStream(ctx, CheckpointKey(version), func(w io.Writer) error {
		cw := &countingWriter{w: w}
		var encErr error
		res, encErr = enc.encode(ctx, cw, d)
		res.bytes = cw.n
		return encErr
	})
	if err != nil {
		return nil, fmt.Errorf("write checkpoint %d: %w", version, err)
	}
	lc := &LastCheckpoint{Version: version, Size: res.rows, SizeInBytes: &res.bytes, NumOfAddFiles: &res.adds}
	if old, err := ReadLastCheckpoint(ctx, st); err == nil && old != nil && old.Version > version {
		return lc, nil // the hint names a newer checkpoint: keep it
	}
	if err := WriteLastCheckpoint(ctx, st, lc); err != nil {
		return nil, fmt.Errorf("write checkpoint %d: %w", version, err)
	}
	return lc, nil
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// cpRow is one row of a checkpoint: exactly one field is set.
type cpRow struct {
	txn      *Txn
	add      *Add
	addStats map[string]any // add.stats decoded for stats_parsed
	remove   *Remove
	meta     *Metadata
	protocol *Protocol
	domain   *DomainMetadata
}

// checkpointEncoder renders checkpoint rows into Parquet for one table
// schema and configuration.
type checkpointEncoder struct {
	root        *wnode
	schema      *parquet.Schema
	statsStruct bool // decode add stats for add.stats_parsed
}

type encodeResult struct {
	rows, adds, bytes int64
}

func newCheckpointEncoder(d CheckpointData) (*checkpointEncoder, error) {
	schema, err := ParseSchema(d.Metadata.SchemaString)
	if err != nil {
		return nil, err
	}
	conf := d.Metadata.Configuration
	opts := cpSchemaOptions{
		statsJSON:   conf["delta.checkpoint.writeStatsAsJson"] != "false",
		statsStruct: conf["delta.checkpoint.writeStatsAsStruct"] != "false",
		statsCols:   statsColumnsLimit(conf),
		domains:     len(d.DomainMetadata) > 0,
		mapping:     conf["delta.columnMapping.mode"] == "name" || conf["delta.columnMapping.mode"] == "id",
	}
	root := checkpointSchema(schema, d.Metadata.PartitionColumns, opts)
	pschema := parquet.NewSchema("spark_schema", root.parquetNode())
	for _, c := range root.children { // the root has no name in column paths
		if err := c.assignColumns(pschema, nil); err != nil {
			return nil, err
		}
	}
	return &checkpointEncoder{root: root, schema: pschema, statsStruct: opts.statsStruct}, nil
}

// encode writes the checkpoint of d to w as a Parquet file. Rows are handed
// to the Parquet writer in small batches and flushed as a row group every
// checkpointRowGroupRows rows, so memory is bounded by one row group.
func (e *checkpointEncoder) encode(ctx context.Context, out io.Writer, d CheckpointData) (encodeResult, error) {
	var res encodeResult
	w := parquet.NewWriter(out, e.schema,
		parquet.Compression(&parquet.Snappy),
		parquet.MaxRowsPerRowGroup(checkpointRowGroupRows),
		parquet.CreatedBy("kappa", "0", ""),
	)
	// Rows are reused across batches: WriteRows copies the values.
	rows := make([]parquet.Row, 256)
	n := 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		if _, err := w.WriteRows(rows[:n]); err != nil {
			return err
		}
		n = 0
		return ctx.Err()
	}
	add := func(r *cpRow) error {
		rows[n] = e.root.emit(rows[n][:0], r, 0, 0)
		n++
		res.rows++
		if n == len(rows) {
			return flush()
		}
		return nil
	}
	if err := add(&cpRow{protocol: d.Protocol}); err != nil {
		return res, err
	}
	if err := add(&cpRow{meta: d.Metadata}); err != nil {
		return res, err
	}
	for _, t := range d.Txns {
		if err := add(&cpRow{txn: t}); err != nil {
			return res, err
		}
	}
	for _, dm := range d.DomainMetadata {
		if err := add(&cpRow{domain: dm}); err != nil {
			return res, err
		}
	}
	if d.Files != nil {
		var row cpRow // one row at a time: emit copies what it needs
		i := int64(0)
		for a, err := range d.Files {
			if err != nil {
				return res, fmt.Errorf("checkpoint files: %w", err)
			}
			switch {
			case a.Add != nil && a.Remove == nil:
				row = cpRow{add: a.Add}
				if e.statsStruct {
					row.addStats = decodeStatsForStruct(a.Add)
				}
				res.adds++
			case a.Remove != nil && a.Add == nil:
				row = cpRow{remove: a.Remove}
			default:
				return res, fmt.Errorf("checkpoint file action %d: %w", i, ErrNotFileAction)
			}
			i++
			if err := add(&row); err != nil {
				return res, err
			}
		}
	}
	if err := flush(); err != nil {
		return res, err
	}
	if err := w.Close(); err != nil {
		return res, err
	}
	return res, nil
}

// decodeStatsForStruct decodes an add's stats JSON (numbers kept exact).
func decodeStatsForStruct(a *Add) map[string]any {
	if a.Stats == "" {
		if a.StatsParsed == nil {
			return nil
		}
		b, err := json.Marshal(a.StatsParsed)
		if err != nil {
			return nil
		}
		return decodeJSONObject(b)
	}
	return decodeJSONObject([]byte(a.Stats))
}

func decodeJSONObject(b []byte) map[string]any {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil
	}
	return m
}

type wkind int

const (
	wLeaf wkind = iota
	wStruct
	wList
	wMap
)

// wnode describes one node of the checkpoint schema together with how to
// extract its value from the parent's value and how to stripe it into
// Parquet values (definition/repetition levels).
type wnode struct {
	name     string
	kind     wkind
	optional bool
	children []*wnode // struct fields; list: element; map: key, value
	get      func(parent any) any
	conv     func(v any) (parquet.Value, bool) // leaves
	leafType parquet.Node                      // leaves, unwrapped
	col      int                               // leaves: column index
	repLevel int                               // lists and maps: level of the repeated group
}

func leaf(name string, t parquet.Node, get func(any) any, conv func(any) (parquet.Value, bool)) *wnode {
	return &wnode{name: name, kind: wLeaf, optional: true, leafType: t, get: get, conv: conv}
}

func group(name string, get func(any) any, children ...*wnode) *wnode {
	return &wnode{name: name, kind: wStruct, optional: true, get: get, children: children}
}

func stringList(name string, get func(any) any) *wnode {
	return &wnode{
		name: name, kind: wList, optional: true, get: get,
		children: []*wnode{leaf("element", parquet.String(), nil, convString)},
	}
}

func stringMap(name string, get func(any) any) *wnode {
	k := leaf("key", parquet.String(), nil, convString)
	k.optional = false
	return &wnode{
		name: name, kind: wMap, optional: true, get: get,
		children: []*wnode{k, leaf("value", parquet.String(), nil, convString)},
	}
}

// parquetNode builds the parquet-go schema node of n (field order kept).
func (n *wnode) parquetNode() parquet.Node {
	var p parquet.Node
	switch n.kind {
	case wLeaf:
		p = n.leafType
	case wStruct:
		g := &orderedGroup{Group: parquet.Group{}}
		for _, c := range n.children {
			cn := c.parquetNode()
			g.Group[c.name] = cn
			g.fields = append(g.fields, namedField{Node: cn, name: c.name})
		}
		p = g
	case wList:
		p = parquet.List(n.children[0].parquetNode())
	case wMap:
		p = parquet.Map(n.children[0].leafType, n.children[1].parquetNode())
	}
	if n.optional {
		return parquet.Optional(p)
	}
	return parquet.Required(p)
}

// assignColumns looks up the column index of every leaf in the built schema
// and the repetition level of every list and map.
func (n *wnode) assignColumns(s *parquet.Schema, path []string) error {
	path = append(path[:len(path):len(path)], n.name)
	switch n.kind {
	case wLeaf:
		lc, ok := s.Lookup(path...)
		if !ok {
			return fmt.Errorf("checkpoint schema: no column %s", strings.Join(path, "."))
		}
		n.col = lc.ColumnIndex
	case wStruct:
		for _, c := range n.children {
			if err := c.assignColumns(s, path); err != nil {
				return err
			}
		}
	case wList:
		e := n.children[0]
		if err := e.assignColumns(s, append(path, "list")); err != nil {
			return err
		}
		lc, _ := s.Lookup(append(path, "list", "element")...)
		n.repLevel = lc.MaxRepetitionLevel
	case wMap:
		for _, c := range n.children {
			if err := c.assignColumns(s, append(path, "key_value")); err != nil {
				return err
			}
		}
		lc, _ := s.Lookup(append(path, "key_value", "key")...)
		n.repLevel = lc.MaxRepetitionLevel
	}
	return nil
}

// emit appends the Parquet values of v (the value of node n) at repetition
// level rep, given the definition level def of n's parent.
func (n *wnode) emit(row parquet.Row, v any, rep, def int) parquet.Row {
	d := def
	if n.optional {
		d++
	}
	switch n.kind {
	case wLeaf:
		if v != nil {
			if pv, ok := n.conv(v); ok {
				return append(row, pv.Level(rep, d, n.col))
			}
		}
		if !n.optional { // a required leaf (map key) must hold a value
			pv, _ := n.conv("")
			return append(row, pv.Level(rep, d, n.col))
		}
		return append(row, parquet.Value{}.Level(rep, def, n.col))
	case wStruct:
		if v == nil {
			return n.emitNulls(row, rep, def)
		}
		for _, c := range n.children {
			row = c.emit(row, c.get(v), rep, d)
		}
		return row
	case wList:
		items, _ := v.([]string)
		if v == nil {
			return n.emitNulls(row, rep, def)
		}
		if len(items) == 0 {
			return n.emitNulls(row, rep, d)
		}
		e := n.children[0]
		for i, s := range items {
			r := rep
			if i > 0 {
				r = n.repLevel
			}
			row = e.emit(row, s, r, d+1)
		}
		return row
	case wMap:
		keys, vals := mapEntries(v)
		if keys == nil {
			if v == nil || isNilMap(v) {
				return n.emitNulls(row, rep, def)
			}
			return n.emitNulls(row, rep, d)
		}
		// Values of one column must be contiguous in a row: keys first.
		for i, k := range keys {
			r := rep
			if i > 0 {
				r = n.repLevel
			}
			row = n.children[0].emit(row, k, r, d+1)
		}
		for i, val := range vals {
			r := rep
			if i > 0 {
				r = n.repLevel
			}
			row = n.children[1].emit(row, val, r, d+1)
		}
		return row
	}
	return row
}

// emitNulls appends a null at definition level def for every leaf under n.
func (n *wnode) emitNulls(row parquet.Row, rep, def int) parquet.Row {
	if n.kind == wLeaf {
		return append(row, parquet.Value{}.Level(rep, def, n.col))
	}
	for _, c := range n.children {
		row = c.emitNulls(row, rep, def)
	}
	return row
}

func isNilMap(v any) bool {
	switch m := v.(type) {
	case map[string]string:
		return m == nil
	case map[string]*string:
		return m == nil
	}
	return true
}

// mapEntries returns the entries of a string map sorted by key; nil keys for
// a nil or empty map.
func mapEntries(v any) ([]string, []any) {
	var keys []string
	switch m := v.(type) {
	case map[string]string:
		if len(m) == 0 {
			return nil, nil
		}
		keys = make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		vals := make([]any, len(keys))
		for i, k := range keys {
			vals[i] = m[k]
		}
		return keys, vals
	case map[string]*string:
		if len(m) == 0 {
			return nil, nil
		}
		keys = make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		vals := make([]any, len(keys))
		for i, k := range keys {
			if p := m[k]; p != nil {
				vals[i] = *p
			}
		}
		return keys, vals
	}
	return nil, nil
}

// orderedGroup is a parquet group whose fields keep the given order
// (parquet.Group sorts them by name); Spark's checkpoint order is kept.
type orderedGroup struct {
	parquet.Group
	fields []parquet.Field
}

func (g *orderedGroup) Fields() []parquet.Field { return g.fields }

type namedField struct {
	parquet.Node
	name string
}

func (f namedField) Name() string { return f.name }

// Value is part of parquet.Field; rows are built as parquet.Row values, so
// no Go value is ever deconstructed through it.
func (f namedField) Value(base reflect.Value) reflect.Value {
	if base.Kind() == reflect.Map {
		return base.MapIndex(reflect.ValueOf(f.name))
	}
	return reflect.Value{}
}

// ---- checkpoint schema ----

type cpSchemaOptions struct {
	statsJSON, statsStruct, domains, mapping bool
	// statsCols selects the data columns with stats, as Spark does:
	// delta.dataSkippingStatsColumns (names) or the first
	// delta.dataSkippingNumIndexedCols leaf columns (default 32, -1 all).
	statsCols statsColumns
}

type statsColumns struct {
	names map[string]bool // when non-nil: these top-level or dotted names
	num   int             // else the first num leaves; < 0 means all
}

func statsColumnsLimit(conf map[string]string) statsColumns {
	if v := strings.TrimSpace(conf["delta.dataSkippingStatsColumns"]); v != "" {
		names := map[string]bool{}
		for _, n := range strings.Split(v, ",") {
			names[strings.Trim(strings.TrimSpace(n), "`")] = true
		}
		return statsColumns{names: names}
	}
	if v, err := strconv.Atoi(strings.TrimSpace(conf["delta.dataSkippingNumIndexedCols"])); err == nil {
		return statsColumns{num: v}
	}
	return statsColumns{num: 32}
}

// prune returns the part of the data schema st that has stats.
func (sc statsColumns) prune(st *StructType) *StructType {
	if sc.names != nil {
		return pruneNames(st, sc.names, "")
	}
	if sc.num < 0 {
		return st
	}
	left := sc.num
	return pruneLeaves(st, &left)
}

func pruneNames(st *StructType, names map[string]bool, prefix string) *StructType {
	out := &StructType{}
	for _, f := range st.Fields {
		full := prefix + f.Name
		if names[full] {
			out.Fields = append(out.Fields, f)
			continue
		}
		if ch, ok := f.Type.(*StructType); ok {
			if p := pruneNames(ch, names, full+"."); len(p.Fields) > 0 {
				out.Fields = append(out.Fields, &StructField{Name: f.Name, Type: p, Nullable: f.Nullable, Metadata: f.Metadata})
			}
		}
	}
	return out
}

func pruneLeaves(st *StructType, left *int) *StructType {
	out := &StructType{}
	for _, f := range st.Fields {
		if *left <= 0 {
			break
		}
		if ch, ok := f.Type.(*StructType); ok {
			if p := pruneLeaves(ch, left); len(p.Fields) > 0 {
				out.Fields = append(out.Fields, &StructField{Name: f.Name, Type: p, Nullable: f.Nullable, Metadata: f.Metadata})
			}
			continue
		}
		out.Fields = append(out.Fields, f)
		*left--
	}
	return out
}

// rowAdd hands the whole row to the add columns, which need both the add
// and its decoded stats.
func rowAdd(p any) any {
	if r := p.(*cpRow); r.add != nil {
		return r
	}
	return nil
}

func rowRemove(p any) any {
	if r := p.(*cpRow); r.remove != nil {
		return r.remove
	}
	return nil
}

func rowTxn(p any) any {
	if r := p.(*cpRow); r.txn != nil {
		return r.txn
	}
	return nil
}

func rowMeta(p any) any {
	if r := p.(*cpRow); r.meta != nil {
		return r.meta
	}
	return nil
}

func rowProtocol(p any) any {
	if r := p.(*cpRow); r.protocol != nil {
		return r.protocol
	}
	return nil
}

func rowDomain(p any) any {
	if r := p.(*cpRow); r.domain != nil {
		return r.domain
	}
	return nil
}

func dvNode(get func(any) any) *wnode {
	dv := func(p any) *DeletionVector { return p.(*DeletionVector) }
	return group("deletionVector", get,
		leaf("storageType", parquet.String(), func(p any) any { return dv(p).StorageType }, convString),
		leaf("pathOrInlineDv", parquet.String(), func(p any) any { return dv(p).PathOrInlineDv }, convString),
		leaf("offset", parquet.Leaf(parquet.Int32Type), func(p any) any { return optI32(dv(p).Offset) }, convInt32),
		leaf("sizeInBytes", parquet.Leaf(parquet.Int32Type), func(p any) any { return dv(p).SizeInBytes }, convInt32),
		leaf("cardinality", parquet.Leaf(parquet.Int64Type), func(p any) any { return dv(p).Cardinality }, convInt64),
		leaf("maxRowIndex", parquet.Leaf(parquet.Int64Type), func(p any) any { return optI64(dv(p).MaxRowIndex) }, convInt64),
	)
}

func optI64(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

func optI32(p *int32) any {
	if p == nil {
		return nil
	}
	return *p
}

func optStr(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

func optBool(p *bool) any {
	if p == nil {
		return nil
	}
	return *p
}

func nonEmptyStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// checkpointSchema builds the checkpoint schema for a table schema.
func checkpointSchema(schema *StructType, partCols []string, o cpSchemaOptions) *wnode {
	add := func(p any) *Add { return p.(*cpRow).add }
	rm := func(p any) *Remove { return p.(*Remove) }
	md := func(p any) *Metadata { return p.(*Metadata) }
	pr := func(p any) *Protocol { return p.(*Protocol) }

	addFields := []*wnode{
		leaf("path", parquet.String(), func(p any) any { return add(p).Path }, convString),
		stringMap("partitionValues", func(p any) any { return add(p).PartitionValues }),
		leaf("size", parquet.Leaf(parquet.Int64Type), func(p any) any { return add(p).Size }, convInt64),
		leaf("modificationTime", parquet.Leaf(parquet.Int64Type), func(p any) any { return add(p).ModificationTime }, convInt64),
		leaf("dataChange", parquet.Leaf(parquet.BooleanType), func(p any) any { return add(p).DataChange }, convBool),
	}
	if o.statsJSON {
		addFields = append(addFields, leaf("stats", parquet.String(), func(p any) any {
			a := add(p)
			if a.Stats == "" && a.StatsParsed != nil {
				if b, err := json.Marshal(a.StatsParsed); err == nil {
					return string(b)
				}
			}
			return nonEmptyStr(a.Stats)
		}, convString))
	}
	addFields = append(addFields,
		stringMap("tags", func(p any) any { return add(p).Tags }),
		dvNode(func(p any) any {
			if dv := add(p).DeletionVector; dv != nil {
				return dv
			}
			return nil
		}),
		leaf("baseRowId", parquet.Leaf(parquet.Int64Type), func(p any) any { return optI64(add(p).BaseRowID) }, convInt64),
		leaf("defaultRowCommitVersion", parquet.Leaf(parquet.Int64Type), func(p any) any { return optI64(add(p).DefaultRowCommitVersion) }, convInt64),
		leaf("clusteringProvider", parquet.String(), func(p any) any { return optStr(add(p).ClusteringProvider) }, convString),
	)
	if o.statsStruct {
		if pv := partitionValuesParsed(schema, partCols, o.mapping); pv != nil {
			addFields = append(addFields, pv)
		}
		addFields = append(addFields, statsParsedNode(schema, partCols, o))
	}

	cols := []*wnode{
		group("txn", rowTxn,
			leaf("appId", parquet.String(), func(p any) any { return p.(*Txn).AppID }, convString),
			leaf("version", parquet.Leaf(parquet.Int64Type), func(p any) any { return p.(*Txn).Version }, convInt64),
			leaf("lastUpdated", parquet.Leaf(parquet.Int64Type), func(p any) any { return optI64(p.(*Txn).LastUpdated) }, convInt64),
		),
		group("add", rowAdd, addFields...),
		group("remove", rowRemove,
			leaf("path", parquet.String(), func(p any) any { return rm(p).Path }, convString),
			leaf("deletionTimestamp", parquet.Leaf(parquet.Int64Type), func(p any) any { return optI64(rm(p).DeletionTimestamp) }, convInt64),
			leaf("dataChange", parquet.Leaf(parquet.BooleanType), func(p any) any { return rm(p).DataChange }, convBool),
			leaf("extendedFileMetadata", parquet.Leaf(parquet.BooleanType), func(p any) any { return optBool(rm(p).ExtendedFileMetadata) }, convBool),
			stringMap("partitionValues", func(p any) any { return rm(p).PartitionValues }),
			leaf("size", parquet.Leaf(parquet.Int64Type), func(p any) any { return optI64(rm(p).Size) }, convInt64),
			leaf("stats", parquet.String(), func(p any) any { return nonEmptyStr(rm(p).Stats) }, convString),
			stringMap("tags", func(p any) any { return rm(p).Tags }),
			dvNode(func(p any) any {
				if dv := rm(p).DeletionVector; dv != nil {
					return dv
				}
				return nil
			}),
			leaf("baseRowId", parquet.Leaf(parquet.Int64Type), func(p any) any { return optI64(rm(p).BaseRowID) }, convInt64),
			leaf("defaultRowCommitVersion", parquet.Leaf(parquet.Int64Type), func(p any) any { return optI64(rm(p).DefaultRowCommitVersion) }, convInt64),
		),
		group("metaData", rowMeta,
			leaf("id", parquet.String(), func(p any) any { return md(p).ID }, convString),
			leaf("name", parquet.String(), func(p any) any { return optStr(md(p).Name) }, convString),
			leaf("description", parquet.String(), func(p any) any { return optStr(md(p).Description) }, convString),
			group("format", func(p any) any { return &md(p).Format },
				leaf("provider", parquet.String(), func(p any) any { return p.(*Format).Provider }, convString),
				stringMap("options", func(p any) any {
					if o := p.(*Format).Options; o != nil {
						return o
					}
					return map[string]string{}
				}),
			),
			leaf("schemaString", parquet.String(), func(p any) any { return md(p).SchemaString }, convString),
			stringList("partitionColumns", func(p any) any {
				if pc := md(p).PartitionColumns; pc != nil {
					return pc
				}
				return []string{}
			}),
			stringMap("configuration", func(p any) any {
				if c := md(p).Configuration; c != nil {
					return c
				}
				return map[string]string{}
			}),
			leaf("createdTime", parquet.Leaf(parquet.Int64Type), func(p any) any { return optI64(md(p).CreatedTime) }, convInt64),
		),
		group("protocol", rowProtocol,
			leaf("minReaderVersion", parquet.Leaf(parquet.Int32Type), func(p any) any { return pr(p).MinReaderVersion }, convInt32),
			leaf("minWriterVersion", parquet.Leaf(parquet.Int32Type), func(p any) any { return pr(p).MinWriterVersion }, convInt32),
			stringList("readerFeatures", func(p any) any {
				if f := pr(p).ReaderFeatures; f != nil {
					return f
				}
				return nil
			}),
			stringList("writerFeatures", func(p any) any {
				if f := pr(p).WriterFeatures; f != nil {
					return f
				}
				return nil
			}),
		),
	}
	if o.domains {
		cols = append(cols, group("domainMetadata", rowDomain,
			leaf("domain", parquet.String(), func(p any) any { return p.(*DomainMetadata).Domain }, convString),
			leaf("configuration", parquet.String(), func(p any) any { return p.(*DomainMetadata).Configuration }, convString),
			leaf("removed", parquet.Leaf(parquet.BooleanType), func(p any) any { return p.(*DomainMetadata).Removed }, convBool),
		))
	}
	root := group("spark_schema", nil, cols...)
	root.optional = false
	return root
}

// physicalName is the name of a column in data files and stats: the
// column-mapping physical name when mapping is on.
func physicalName(f *StructField, mapping bool) string {
	if mapping {
		if raw, ok := f.Metadata["delta.columnMapping.physicalName"]; ok {
			var s string
			if json.Unmarshal(raw, &s) == nil && s != "" {
				return s
			}
		}
	}
	return f.Name
}

// mapGet returns a getter of key in a decoded JSON object.
func mapGet(key string) func(any) any {
	return func(p any) any {
		m, _ := p.(map[string]any)
		if m == nil {
			return nil
		}
		v, ok := m[key]
		if !ok {
			return nil
		}
		return v
	}
}

func statsParsedNode(schema *StructType, partCols []string, o cpSchemaOptions) *wnode {
	mapping := o.mapping
	parts := map[string]bool{}
	for _, c := range partCols {
		parts[c] = true
	}
	var top []*StructField
	for _, f := range schema.Fields {
		if !parts[f.Name] {
			top = append(top, f)
		}
	}
	dataCols := o.statsCols.prune(&StructType{Fields: top})
	get := func(p any) any {
		if m := p.(*cpRow).addStats; m != nil {
			return m
		}
		return nil
	}
	children := []*wnode{leaf("numRecords", parquet.Leaf(parquet.Int64Type), mapGet("numRecords"), convInt64)}
	if mm := minMaxFields(dataCols, mapping); len(mm) > 0 {
		children = append(children, group("minValues", mapGet("minValues"), minMaxFields(dataCols, mapping)...))
		children = append(children, group("maxValues", mapGet("maxValues"), minMaxFields(dataCols, mapping)...))
	}
	if nc := nullCountFields(dataCols, mapping); len(nc) > 0 {
		children = append(children, group("nullCount", mapGet("nullCount"), nc...))
	}
	children = append(children, leaf("tightBounds", parquet.Leaf(parquet.BooleanType), mapGet("tightBounds"), convBool))
	return group("stats_parsed", get, children...)
}

// minMaxFields mirrors the stat-able columns of st (numbers, strings, dates,
// timestamps, decimals; nested structs recursively).
func minMaxFields(st *StructType, mapping bool) []*wnode {
	var out []*wnode
	for _, f := range st.Fields {
		name := physicalName(f, mapping)
		switch t := f.Type.(type) {
		case *StructType:
			if ch := minMaxFields(t, mapping); len(ch) > 0 {
				out = append(out, group(name, mapGet(name), ch...))
			}
		default:
			if pn, conv := typedLeaf(t); pn != nil {
				out = append(out, leaf(name, pn, mapGet(name), conv))
			}
		}
	}
	return out
}

func nullCountFields(st *StructType, mapping bool) []*wnode {
	var out []*wnode
	for _, f := range st.Fields {
		name := physicalName(f, mapping)
		if t, ok := f.Type.(*StructType); ok {
			if ch := nullCountFields(t, mapping); len(ch) > 0 {
				out = append(out, group(name, mapGet(name), ch...))
			}
			continue
		}
		out = append(out, leaf(name, parquet.Leaf(parquet.Int64Type), mapGet(name), convInt64))
	}
	return out
}

func partitionValuesParsed(schema *StructType, partCols []string, mapping bool) *wnode {
	var children []*wnode
	for _, c := range partCols {
		f := schema.Field(c)
		if f == nil {
			continue
		}
		pn, conv := typedLeaf(f.Type)
		if pn == nil {
			if pt, ok := f.Type.(*PrimitiveType); ok && pt.Name == TypeBoolean {
				pn, conv = parquet.Leaf(parquet.BooleanType), convBool
			} else {
				continue
			}
		}
		name := physicalName(f, mapping)
		// partitionValues is keyed by physical name when mapping is on.
		children = append(children, leaf(name, pn, pvGet(name, f.Name), conv))
	}
	if len(children) == 0 {
		return nil
	}
	return group("partitionValues_parsed", func(p any) any {
		if pv := p.(*cpRow).add.PartitionValues; pv != nil {
			return pv
		}
		return nil
	}, children...)
}

func pvGet(names ...string) func(any) any {
	return func(p any) any {
		m, _ := p.(map[string]*string)
		for _, n := range names {
			if v, ok := m[n]; ok {
				if v == nil {
					return nil
				}
				return *v
			}
		}
		return nil
	}
}

// typedLeaf returns the Parquet node and converter of a stat-able Delta
// type, or nil for types without min/max stats (boolean, binary, maps,
// arrays, variant).
func typedLeaf(t DataType) (parquet.Node, func(any) (parquet.Value, bool)) {
	switch t := t.(type) {
	case *DecimalType:
		switch {
		case t.Precision <= 9:
			return parquet.Decimal(t.Scale, t.Precision, parquet.Int32Type), convDecimal(t.Scale, 4)
		case t.Precision <= 18:
			return parquet.Decimal(t.Scale, t.Precision, parquet.Int64Type), convDecimal(t.Scale, 8)
		default:
			n := decimalBytes(t.Precision)
			return parquet.Decimal(t.Scale, t.Precision, parquet.FixedLenByteArrayType(n)), convDecimal(t.Scale, n)
		}
	case *PrimitiveType:
		switch t.Name {
		case TypeString:
			return parquet.String(), convString
		case TypeLong:
			return parquet.Leaf(parquet.Int64Type), convInt64
		case TypeInteger:
			return parquet.Leaf(parquet.Int32Type), convInt32
		case TypeShort:
			return parquet.Int(16), convInt32
		case TypeByte:
			return parquet.Int(8), convInt32
		case TypeFloat:
			return parquet.Leaf(parquet.FloatType), convFloat
		case TypeDouble:
			return parquet.Leaf(parquet.DoubleType), convDouble
		case TypeDate:
			return parquet.Date(), convDate
		case TypeTimestamp:
			return parquet.TimestampAdjusted(parquet.Microsecond, true), convTimestamp
		case TypeTimestampNTZ:
			return parquet.TimestampAdjusted(parquet.Microsecond, false), convTimestamp
		}
	}
	return nil, nil
}

// decimalBytes is the minimal FIXED_LEN_BYTE_ARRAY size for a precision.
func decimalBytes(precision int) int {
	for n := 1; ; n++ {
		if float64(8*n-1)*math.Log10(2) >= float64(precision) {
			return n
		}
	}
}

// ---- value converters (input: Go values of the actions, decoded JSON
// numbers/strings/bools from stats, or partition value strings) ----

func convString(v any) (parquet.Value, bool) {
	switch s := v.(type) {
	case string:
		return parquet.ByteArrayValue([]byte(s)), true
	case json.Number:
		return parquet.ByteArrayValue([]byte(s)), true
	}
	return parquet.Value{}, false
}

func toInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int32:
		return int64(x), true
	case int:
		return int64(x), true
	case json.Number:
		i, err := x.Int64()
		return i, err == nil
	case string:
		i, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		return i, err == nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<63 {
			return int64(x), true
		}
	}
	return 0, false
}

func convInt64(v any) (parquet.Value, bool) {
	i, ok := toInt64(v)
	return parquet.Int64Value(i), ok
}

func convInt32(v any) (parquet.Value, bool) {
	i, ok := toInt64(v)
	if !ok || i < math.MinInt32 || i > math.MaxInt32 {
		return parquet.Value{}, false
	}
	return parquet.Int32Value(int32(i)), true
}

func convBool(v any) (parquet.Value, bool) {
	switch b := v.(type) {
	case bool:
		return parquet.BooleanValue(b), true
	case string:
		x, err := strconv.ParseBool(b)
		return parquet.BooleanValue(x), err == nil
	}
	return parquet.Value{}, false
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		return f, err == nil
	case string:
		switch x {
		case "NaN":
			return math.NaN(), true
		case "Infinity":
			return math.Inf(1), true
		case "-Infinity":
			return math.Inf(-1), true
		}
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	}
	return 0, false
}

func convDouble(v any) (parquet.Value, bool) {
	f, ok := toFloat(v)
	return parquet.DoubleValue(f), ok
}

func convFloat(v any) (parquet.Value, bool) {
	f, ok := toFloat(v)
	return parquet.FloatValue(float32(f)), ok
}

func convDate(v any) (parquet.Value, bool) {
	s, ok := v.(string)
	if !ok {
		return parquet.Value{}, false
	}
	t, err := time.Parse("2006-01-02", strings.TrimSpace(s))
	if err != nil {
		return parquet.Value{}, false
	}
	return parquet.Int32Value(int32(t.Unix() / 86400)), true
}

var timestampLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02",
}

// parseTimestamp parses the timestamp forms of stats JSON and partition
// values; a value without zone is taken as UTC.
func parseTimestamp(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, l := range timestampLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func convTimestamp(v any) (parquet.Value, bool) {
	s, ok := v.(string)
	if !ok {
		return parquet.Value{}, false
	}
	t, ok := parseTimestamp(s)
	if !ok {
		return parquet.Value{}, false
	}
	return parquet.Int64Value(t.UnixMicro()), true
}

// convDecimal converts a decimal (JSON number or string) to its unscaled
// integer: INT32 (size 4), INT64 (size 8) or a big-endian two's complement
// FIXED_LEN_BYTE_ARRAY of size bytes (any other size).
func convDecimal(scale, size int) func(any) (parquet.Value, bool) {
	return func(v any) (parquet.Value, bool) {
		var s string
		switch x := v.(type) {
		case json.Number:
			s = string(x)
		case string:
			s = x
		default:
			return parquet.Value{}, false
		}
		r, ok := new(big.Rat).SetString(strings.TrimSpace(s))
		if !ok {
			return parquet.Value{}, false
		}
		r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)))
		if !r.IsInt() {
			return parquet.Value{}, false
		}
		u := r.Num()
		switch size {
		case 4:
			if !u.IsInt64() || u.Int64() < math.MinInt32 || u.Int64() > math.MaxInt32 {
				return parquet.Value{}, false
			}
			return parquet.Int32Value(int32(u.Int64())), true
		case 8:
			if !u.IsInt64() {
				return parquet.Value{}, false
			}
			return parquet.Int64Value(u.Int64()), true
		}
		b, ok := twosComplement(u, size)
		if !ok {
			return parquet.Value{}, false
		}
		return parquet.FixedLenByteArrayValue(b), true
	}
}

func twosComplement(u *big.Int, size int) ([]byte, bool) {
	if u.BitLen() >= 8*size {
		return nil, false
	}
	b := make([]byte, size)
	if u.Sign() >= 0 {
		u.FillBytes(b)
		return b, true
	}
	m := new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), uint(8*size)), u)
	m.FillBytes(b)
	return b, true
}
