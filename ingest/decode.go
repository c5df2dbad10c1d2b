package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

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
}

func newDecoder(schema *txlog.StructType, o *Options) *decoder {
	d := &decoder{schema: schema, fields: map[string]*txlog.StructField{}, meta: o.Metadata, derived: o.Derived, evolve: o.SchemaEvolution}
	d.keys = map[string]string{}
	for _, f := range schema.Fields {
		d.fields[f.Name] = f
		d.keys[f.Name] = f.Name
	}
	return d
}

// decoded is the result of decoding one message.
type decoded struct {
	row map[string]any // the row (coerced to the schema when written), nil on error
	err error          // why the message is a dead letter
	// raw and newFields are set when schema evolution is on and the message
	// has top-level fields the schema lacks.
	raw       map[string]any
	newFields []string
}

// decode parses value as one JSON object (numbers kept exact), adds metadata
// and derived columns, and drops (or, with evolution, reports) unknown
// top-level fields. The table writer coerces the row to the schema.
func (d *decoder) decode(topic string, partition int, offset int64, key, value []byte, ts time.Time) decoded {
	obj, err := parseObject(value, d.keys)
	if err != nil {
		return decoded{err: err}
	}
	if err := d.addColumns(obj, topic, partition, offset, key, ts); err != nil {
		return decoded{err: err}
	}
	var unknown []string
	for k := range obj {
		if _, ok := d.fields[k]; !ok {
			unknown = append(unknown, k)
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

func parseObject(value []byte, keys map[string]string) (map[string]any, error) {
	v, err := parseJSONKeys(value, keys)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDecode, err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: got %s", ErrDecode, jsonKind(v))
	}
	return obj, nil
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

func (d *decoder) addColumns(obj map[string]any, topic string, partition int, offset int64, key []byte, ts time.Time) error {
	m := d.meta
	if m.Topic != "" {
		obj[m.Topic] = topic
	}
	if m.Partition != "" {
		obj[m.Partition] = json.Number(strconv.Itoa(partition))
	}
	if m.Offset != "" {
		obj[m.Offset] = json.Number(strconv.FormatInt(offset, 10))
	}
	if m.Timestamp != "" {
		if ts.IsZero() {
			obj[m.Timestamp] = nil
		} else {
			obj[m.Timestamp] = ts.UTC().Format(time.RFC3339Nano)
		}
	}
	if m.Key != "" {
		if key == nil {
			obj[m.Key] = nil
		} else {
			obj[m.Key] = key
		}
	}
	for _, dc := range d.derived {
		src, ok := obj[dc.Source]
		if !ok || src == nil {
			obj[dc.Name] = nil
			continue
		}
		t, err := parseTime(src)
		if err != nil {
			return fmt.Errorf("derived column %q from %q: %w", dc.Name, dc.Source, err)
		}
		switch dc.Func {
		case DeriveDate:
			obj[dc.Name] = t.UTC().Format(time.DateOnly)
		case DeriveHour:
			obj[dc.Name] = json.Number(strconv.Itoa(t.UTC().Hour()))
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
