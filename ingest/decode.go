package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kappa-lake/kappa/internal/pq"
	"github.com/kappa-lake/kappa/txlog"
)

// Dead-letter reasons: every dead letter's error wraps one of these.
var (
	// ErrDecode: the message is not one JSON object.
	ErrDecode = errors.New("message is not a JSON object")
	// ErrSchemaMismatch: the message does not fit the table schema.
	ErrSchemaMismatch = errors.New("message does not fit the table schema")
)

// decoder turns one Kafka message into a table row. It is immutable; the
// daemon swaps in a new one when the schema evolves.
type decoder struct {
	schema  *txlog.StructType
	fields  map[string]*txlog.StructField
	meta    MetadataColumns
	derived []DerivedColumn
	evolve  bool
	keys    map[string]string // column names, for key interning
	// added is true when every metadata and derived column is in the
	// schema: then a row has unknown fields only if the message has.
	added bool

	// Slot rows (decodeFast): names are the schema's top-level fields in
	// order, slot their indexes; slots is false when a derived column reads
	// a field outside the schema (then rows are maps).
	names []string
	slot  map[string]int
	slots bool
}

// slotPool recycles the value slices of slot rows.
var slotPool = sync.Pool{New: func() any { return new([]any) }}

// rowMaps recycles the top-level maps of decoded rows (see recycle).
var rowMaps = sync.Pool{New: func() any { return make(map[string]any, 16) }}

// maxRecycledKeys bounds the maps kept for reuse, so one huge message does
// not pin a huge map.
const maxRecycledKeys = 64

// recycle hands the row map of a decoded message back for reuse, once
// nothing refers to it any more (the data writer copies the values).
func (dec *decoded) recycle() {
	if m := dec.row; m != nil && len(m) <= maxRecycledKeys {
		clear(m)
		rowMaps.Put(m)
	}
	if m := dec.raw; m != nil && len(m) <= maxRecycledKeys {
		clear(m)
		rowMaps.Put(m)
	}
	dec.row, dec.raw = nil, nil
	if dec.vp != nil {
		clear(dec.vals)
		*dec.vp = dec.vals
		slotPool.Put(dec.vp)
		dec.vals, dec.vp = nil, nil
	}
}

func newDecoder(schema *txlog.StructType, o *Options) *decoder {
	d := &decoder{schema: schema, fields: map[string]*txlog.StructField{}, meta: o.Metadata, derived: o.Derived, evolve: o.SchemaEvolution}
	d.keys = map[string]string{}
	for _, f := range schema.Fields {
		d.fields[f.Name] = f
		d.keys[f.Name] = f.Name
	}
	d.slot = make(map[string]int, len(schema.Fields))
	for i, f := range schema.Fields {
		d.names = append(d.names, f.Name)
		d.slot[f.Name] = i
	}
	d.added = true
	for _, f := range metadataFields(o.Metadata, o.Derived) {
		if d.fields[f.Name] == nil {
			d.added = false
		}
	}
	d.slots = d.added && len(d.slot) == len(d.names)
	for _, dc := range o.Derived {
		if d.fields[dc.Source] == nil {
			d.slots = false
		}
	}
	return d
}

// decoded is the result of decoding one message.
type decoded struct {
	row map[string]any // the row (coerced to the schema when written), nil on error
	// vals is the row as slots (decodeFast): vals[i] is the value of
	// column names[i] (pq.Missing when absent); then row is nil.
	vals  []any
	names []string
	vp    *[]any // vals' pool entry
	err   error  // why the message is a dead letter
	// raw and newFields are set when schema evolution is on and the message
	// has top-level fields the schema lacks.
	raw       map[string]any
	newFields []string
}

// decode parses value as one JSON object (numbers kept exact), adds metadata
// and derived columns, and drops (or, with evolution, reports) unknown
// top-level fields. The table writer coerces the row to the schema.
func (d *decoder) decode(topic string, partition int, offset int64, key, value []byte, ts time.Time) decoded {
	top := rowMaps.Get().(map[string]any)
	obj, nunknown, err := parseObjectInto(value, d.keys, top)
	if err != nil {
		clear(top) // parsing may have filled it
		rowMaps.Put(top)
		return decoded{err: err}
	}
	get := func(name string) any {
		v, ok := obj[name]
		if !ok {
			return pq.Missing
		}
		return v
	}
	set := func(name string, v any) { obj[name] = v }
	if err := d.addColumns(get, set, topic, partition, offset, key, ts); err != nil {
		return decoded{err: err}
	}
	var unknown []string
	if nunknown > 0 || !d.added {
		for k := range obj {
			if _, ok := d.fields[k]; !ok {
				unknown = append(unknown, k)
			}
		}
	}
	if len(unknown) > 0 {
		if d.evolve {
			return decoded{raw: obj, newFields: unknown}
		}
		for _, k := range unknown {
			delete(obj, k)
		}
	}
	return decoded{row: obj}
}

// parseObjectInto parses value as one JSON object into top (which must be
// empty) and counts its keys not in keys.
func parseObjectInto(value []byte, keys map[string]string, top map[string]any) (map[string]any, int, error) {
	v, unknown, err := parseJSONInto(value, keys, top)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrDecode, err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, 0, fmt.Errorf("%w: got %s", ErrDecode, jsonKind(v))
	}
	return obj, unknown, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("%T", v)
}

// decodeFast is decode returning the row as slots when it can (see
// decoder.slots): same values, metadata and derived columns, dead letters
// and dropped unknown fields, without a map per row. Messages with new
// fields under schema evolution take decode's path.
//
// order (nil: none) speeds up messages whose keys come in the order of the
// previous message's; it must not be shared between goroutines.
func (d *decoder) decodeFast(order *keyOrder, topic string, partition int, offset int64, key, value []byte, ts time.Time) decoded {
	if !d.slots {
		return d.decode(topic, partition, offset, key, value, ts)
	}
	bp := slotPool.Get().(*[]any)
	vals := *bp
	if cap(vals) < len(d.names) {
		vals = make([]any, len(d.names))
	}
	vals = vals[:len(d.names)]
	for i := range vals {
		vals[i] = pq.Missing
	}
	drop := func() {
		clear(vals)
		*bp = vals
		slotPool.Put(bp)
	}
	v, unknown, err := parseJSONSlots(value, d.slot, d.names, order, vals)
	if err != nil {
		drop()
		return decoded{err: fmt.Errorf("%w: %w", ErrDecode, err)}
	}
	if _, ok := v.(slotRow); !ok {
		drop()
		return decoded{err: fmt.Errorf("%w: got %s", ErrDecode, jsonKind(v))}
	}
	if unknown > 0 && d.evolve {
		drop()
		return d.decode(topic, partition, offset, key, value, ts)
	}
	get := func(name string) any { return vals[d.slot[name]] }
	set := func(name string, v any) { vals[d.slot[name]] = v }
	if err := d.addColumns(get, set, topic, partition, offset, key, ts); err != nil {
		drop()
		return decoded{err: err}
	}
	return decoded{vals: vals, names: d.names, vp: bp}
}

// addColumns sets the metadata and derived columns of a row; get returns
// pq.Missing for an absent field.
func (d *decoder) addColumns(get func(string) any, set func(string, any), topic string, partition int, offset int64, key []byte, ts time.Time) error {
	m := d.meta
	if m.Topic != "" {
		set(m.Topic, topic)
	}
	if m.Partition != "" {
		set(m.Partition, json.Number(strconv.Itoa(partition)))
	}
	if m.Offset != "" {
		set(m.Offset, json.Number(strconv.FormatInt(offset, 10)))
	}
	if m.Timestamp != "" {
		if ts.IsZero() {
			set(m.Timestamp, nil)
		} else {
			set(m.Timestamp, ts.UTC().Format(time.RFC3339Nano))
		}
	}
	if m.Key != "" {
		if key == nil {
			set(m.Key, nil)
		} else {
			set(m.Key, key)
		}
	}
	for _, dc := range d.derived {
		src := get(dc.Source)
		if src == pq.Missing || src == nil {
			set(dc.Name, nil)
			continue
		}
		t, err := parseTime(src)
		if err != nil {
			return fmt.Errorf("derived column %q from %q: %w", dc.Name, dc.Source, err)
		}
		switch dc.Func {
		case DeriveDate:
			set(dc.Name, t.UTC().Format(time.DateOnly))
		case DeriveHour:
			set(dc.Name, json.Number(strconv.Itoa(t.UTC().Hour())))
		}
	}
	return nil
}

// parseTime reads an RFC 3339 string, or epoch milliseconds (number or
// numeric string; values beyond year 3000 in ms are taken as microseconds).
func parseTime(v any) (time.Time, error) {
	var s string
	switch x := v.(type) {
	case string:
		s = strings.TrimSpace(x)
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t, nil
		}
		if t, err := time.Parse("2006-01-02 15:04:05.999999999", s); err == nil {
			return t, nil
		}
		if t, err := time.Parse(time.DateOnly, s); err == nil {
			return t, nil
		}
	case json.Number:
		s = x.String()
	default:
		return time.Time{}, fmt.Errorf("cannot read %s as a timestamp", jsonKind(v))
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil {
			return time.Time{}, fmt.Errorf("cannot read %q as a timestamp", s)
		}
		n = int64(f)
	}
	const msYear3000 = 32503680000000
	if n > msYear3000 || n < -msYear3000 {
		return time.UnixMicro(n), nil
	}
	return time.UnixMilli(n), nil
}

// inferType returns the Delta type of a decoded JSON value for schema
// evolution: string, long (integral numbers), double, boolean, struct
// (objects, recursively) and array; null infers string.
func inferType(v any) txlog.DataType {
	switch x := v.(type) {
	case bool:
		return &txlog.PrimitiveType{Name: txlog.TypeBoolean}
	case json.Number:
		if _, err := strconv.ParseInt(x.String(), 10, 64); err == nil {
			return &txlog.PrimitiveType{Name: txlog.TypeLong}
		}
		return &txlog.PrimitiveType{Name: txlog.TypeDouble}
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		st := &txlog.StructType{}
		for _, k := range keys {
			st.Fields = append(st.Fields, &txlog.StructField{Name: k, Type: inferType(x[k]), Nullable: true})
		}
		return st
	case []any:
		var et txlog.DataType = &txlog.PrimitiveType{Name: txlog.TypeString}
		for _, e := range x {
			if e != nil {
				et = inferType(e)
				break
			}
		}
		return &txlog.ArrayType{ElementType: et, ContainsNull: true}
	default:
		return &txlog.PrimitiveType{Name: txlog.TypeString}
	}
}

// metadataField returns the schema field added for a metadata column.
func metadataFields(m MetadataColumns, derived []DerivedColumn) []*txlog.StructField {
	var out []*txlog.StructField
	add := func(name, typ string) {
		if name != "" {
			out = append(out, &txlog.StructField{Name: name, Type: &txlog.PrimitiveType{Name: typ}, Nullable: true})
		}
	}
	add(m.Topic, txlog.TypeString)
	add(m.Partition, txlog.TypeInteger)
	add(m.Offset, txlog.TypeLong)
	add(m.Timestamp, txlog.TypeTimestamp)
	add(m.Key, txlog.TypeBinary)
	for _, d := range derived {
		switch d.Func {
		case DeriveDate:
			add(d.Name, txlog.TypeDate)
		case DeriveHour:
			add(d.Name, txlog.TypeInteger)
		}
	}
	return out
}
