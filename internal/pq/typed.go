package pq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/kappa-lake/kappa/txlog"
)

// Go struct rows.
//
// A struct type is compiled once into a tree of encoders that read fields
// through their offsets and append typed values to the column buffers, so
// the common field types (integers, floats, strings, bools, []byte,
// time.Time and pointers to them) are never boxed. Fields map to columns by
// the `delta:"name"` tag, else by exact name, else case-insensitively; a tag
// "-" skips the field. Other field types (slices, maps, json.Number, ...)
// go through the dynamic conversion of map rows.

// encFn appends the non-nil value at p to the columns under one node.
type encFn func(cs *colSet, p unsafe.Pointer, rep uint8) error

// structEncoder writes rows of one Go struct type.
type structEncoder struct {
	root encFn
	// partition columns: field index paths (nil when the struct lacks it)
	part []partField
	// batch encodes rows column-wise (flat structs, no partitions); nil
	// when the type does not qualify
	batch *batchEncoder
}

type partField struct {
	index []int
}

var timeType = reflect.TypeFor[time.Time]()

type goField struct {
	sf   reflect.StructField
	name string // column name from tag or Go name
	typ  string // type= tag option
}

func goFields(t reflect.Type) []goField {
	var out []goField
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		tag := sf.Tag.Get("delta")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		f := goField{sf: sf, name: name}
		for _, o := range strings.Split(opts, ",") {
			if v, ok := strings.CutPrefix(o, "type="); ok {
				f.typ = v
			}
		}
		out = append(out, f)
	}
	return out
}

// matchField finds the Go field for a column name.
func matchField(fields []goField, name string) int {
	for i, f := range fields {
		if f.name == name {
			return i
		}
	}
	for i, f := range fields {
		if f.name == "" && f.sf.Name == name {
			return i
		}
	}
	for i, f := range fields {
		if f.name == "" && strings.EqualFold(f.sf.Name, name) {
			return i
		}
	}
	return -1
}

// encoderFor compiles (and caches) the encoder of a struct type.
func (w *FileWriter) encoderFor(t reflect.Type) (*structEncoder, error) {
	if e, ok := w.encoders[t]; ok {
		return e, nil
	}
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("%w: rows of type %s: want a struct", ErrSchemaMismatch, t)
	}
	fields := goFields(t)
	used := make([]bool, len(fields))
	e := &structEncoder{}
	for _, name := range w.partNames {
		i := matchField(fields, name)
		if i < 0 {
			e.part = append(e.part, partField{})
			continue
		}
		used[i] = true
		e.part = append(e.part, partField{index: fields[i].sf.Index})
	}
	root, err := w.structEnc(w.plan.root, t, fields, used)
	if err != nil {
		return nil, err
	}
	e.root = root
	e.batch = w.newBatchEncoder(t)
	if w.encoders == nil {
		w.encoders = map[reflect.Type]*structEncoder{}
	}
	w.encoders[t] = e
	return e, nil
}

func (w *FileWriter) structEnc(n *node, t reflect.Type, fields []goField, used []bool) (encFn, error) {
	if fields == nil {
		fields = goFields(t)
	}
	if used == nil {
		used = make([]bool, len(fields))
	}
	type child struct {
		n      *node
		off    uintptr
		fn     encFn
		absent bool
	}
	children := make([]child, len(n.children))
	for ci, c := range n.children {
		i := matchField(fields, c.logical)
		if i < 0 {
			if !c.nullable {
				return nil, fmt.Errorf("%w: %s has no field for non-nullable column %s", ErrSchemaMismatch, t, strings.Join(c.lpath, "."))
			}
			children[ci] = child{n: c, absent: true}
			continue
		}
		used[i] = true
		fn, err := w.valueEnc(c, fields[i].sf.Type)
		if err != nil {
			return nil, err
		}
		children[ci] = child{n: c, off: fields[i].sf.Offset, fn: fn}
	}
	if !w.cfg.ignoreUnknown {
		for i, u := range used {
			if !u {
				return nil, fmt.Errorf("%w: field %s.%s matches no column of %s", ErrSchemaMismatch, t, fields[i].sf.Name, strings.Join(n.lpath, "."))
			}
		}
	}
	return func(cs *colSet, p unsafe.Pointer, rep uint8) error {
		for i := range children {
			c := &children[i]
			if c.absent {
				cs.emitNulls(c.n, rep, c.n.def-1)
				continue
			}
			if err := c.fn(cs, unsafe.Add(p, c.off), rep); err != nil {
				return inField(c.n.logical, err)
			}
		}
		return nil
	}, nil
}

// valueEnc returns the encoder of a Go value of type t at node n; it handles
// nil pointers (null) itself.
func (w *FileWriter) valueEnc(n *node, t reflect.Type) (encFn, error) {
	if t.Kind() == reflect.Pointer {
		inner, err := w.valueEnc(n, t.Elem())
		if err != nil {
			return nil, err
		}
		return func(cs *colSet, p unsafe.Pointer, rep uint8) error {
			q := *(*unsafe.Pointer)(p)
			if q == nil {
				return cs.null(n, rep)
			}
			return inner(cs, q, rep)
		}, nil
	}
	if n.kind == nStruct && t.Kind() == reflect.Struct && t != timeType {
		return w.structEnc(n, t, nil, nil)
	}
	if n.kind == nLeaf {
		if fn := leafEnc(n, t); fn != nil {
			return fn, nil
		}
	}
	// generic: box the value and use the dynamic conversion
	return func(cs *colSet, p unsafe.Pointer, rep uint8) error {
		rv := reflect.NewAt(t, p).Elem()
		switch rv.Kind() {
		case reflect.Slice, reflect.Map, reflect.Interface:
			if rv.IsNil() {
				return cs.null(n, rep)
			}
		}
		return cs.write(n, rv.Interface(), rep)
	}, nil
}

// leafEnc returns a boxing-free encoder for common Go kinds, or nil.
func leafEnc(n *node, t reflect.Type) encFn {
	col := n.leaf
	lt := n.lt
	switch {
	case t == timeType:
		switch lt {
		case lTS:
			return func(cs *colSet, p unsafe.Pointer, rep uint8) error {
				cs.cols[col].putInt64(rep, microsOf(*(*time.Time)(p)))
				return nil
			}
		case lTSNTZ:
			return func(cs *colSet, p unsafe.Pointer, rep uint8) error {
				cs.cols[col].putInt64(rep, ntzMicros(*(*time.Time)(p)))
				return nil
			}
		case lDate:
			return func(cs *colSet, p unsafe.Pointer, rep uint8) error {
				d, err := daysOf((*time.Time)(p).Date())
				if err != nil {
					return err
				}
				cs.cols[col].putInt32(rep, d)
				return nil
			}
		}
		return nil
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 && t.Elem().PkgPath() == "":
		switch lt {
		case lBinary:
			return func(cs *colSet, p unsafe.Pointer, rep uint8) error {
				b := *(*[]byte)(p)
				if b == nil {
					return cs.null(n, rep)
				}
				cs.cols[col].putBytes(rep, b)
				return nil
			}
		case lString:
			return func(cs *colSet, p unsafe.Pointer, rep uint8) error {
				b := *(*[]byte)(p)
				if b == nil {
					return cs.null(n, rep)
				}
				if !utf8.Valid(b) {
					return errors.New("string is not valid UTF-8")
				}
				cs.cols[col].putBytes(rep, b)
				return nil
			}
		}
		return nil
	}
	if t.PkgPath() != "" && t.Kind() != reflect.String {
		// named types (json.Number is a string; others like big.Int): keep
		// the generic path unless the kind is plainly numeric
		switch t.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
			reflect.Float32, reflect.Float64, reflect.Bool:
		default:
			return nil
		}
	}
	if t == reflect.TypeFor[json.Number]() {
		return nil
	}
	var getI func(p unsafe.Pointer) int64
	switch t.Kind() {
	case reflect.Int:
		getI = func(p unsafe.Pointer) int64 { return int64(*(*int)(p)) }
	case reflect.Int8:
		getI = func(p unsafe.Pointer) int64 { return int64(*(*int8)(p)) }
	case reflect.Int16:
		getI = func(p unsafe.Pointer) int64 { return int64(*(*int16)(p)) }
	case reflect.Int32:
		getI = func(p unsafe.Pointer) int64 { return int64(*(*int32)(p)) }
	case reflect.Int64:
		getI = func(p unsafe.Pointer) int64 { return *(*int64)(p) }
	case reflect.Uint8:
		getI = func(p unsafe.Pointer) int64 { return int64(*(*uint8)(p)) }
	case reflect.Uint16:
		getI = func(p unsafe.Pointer) int64 { return int64(*(*uint16)(p)) }
	case reflect.Uint32:
		getI = func(p unsafe.Pointer) int64 { return int64(*(*uint32)(p)) }
	case reflect.Uint, reflect.Uint64:
		// may exceed int64: generic path range-checks
		return nil
	}
	if getI != nil {
		switch lt {
		case lLong:
			return func(cs *colSet, p unsafe.Pointer, rep uint8) error {
				cs.cols[col].putInt64(rep, getI(p))
				return nil
			}
		case lInt, lShort, lByte:
			lo, hi := intRange(lt)
			return func(cs *colSet, p unsafe.Pointer, rep uint8) error {
				v := getI(p)
				if v < lo || v > hi {
					return fmt.Errorf("%d out of range for %s", v, n.typ)
				}
				cs.cols[col].putInt32(rep, int32(v))
				return nil
			}
		case lDouble:
			return func(cs *colSet, p unsafe.Pointer, rep uint8) error {
				cs.cols[col].putDouble(rep, float64(getI(p)))
				return nil
			}
		case lFloat:
			return func(cs *colSet, p unsafe.Pointer, rep uint8) error {
				cs.cols[col].putFloat(rep, float32(getI(p)))
				return nil
			}
		case lDec:
			dt := n.typ.(*txlog.DecimalType)
			return func(cs *colSet, p unsafe.Pointer, rep uint8) error {
				u := new(big.Int).Mul(big.NewInt(getI(p)), pow10(dt.Scale))
				if new(big.Int).Abs(u).Cmp(pow10(dt.Precision)) >= 0 {
					return fmt.Errorf("%d does not fit %s", getI(p), dt)
				}
				cs.putDecimal(&cs.cols[col], rep, u)
				return nil
			}
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Float32, reflect.Float64:
		get := func(p unsafe.Pointer) float64 { return *(*float64)(p) }
		if t.Kind() == reflect.Float32 {
			get = func(p unsafe.Pointer) float64 { return float64(*(*float32)(p)) }
		}
		switch lt {
		case lDouble:
			return func(cs *colSet, p unsafe.Pointer, rep uint8) error {
				cs.cols[col].putDouble(rep, get(p))
				return nil
			}
		case lFloat:
			return func(cs *colSet, p unsafe.Pointer, rep uint8) error {
				f := get(p)
				if !math.IsInf(f, 0) && !math.IsNaN(f) && math.Abs(f) > math.MaxFloat32 {
					return fmt.Errorf("%v out of range for float", f)
				}
				cs.cols[col].putFloat(rep, float32(f))
				return nil
			}
		}
	case reflect.Bool:
		if lt == lBool {
			return func(cs *colSet, p unsafe.Pointer, rep uint8) error {
				cs.cols[col].putBool(rep, *(*bool)(p))
				return nil
			}
		}
	case reflect.String:
		switch lt {
		case lString:
			return func(cs *colSet, p unsafe.Pointer, rep uint8) error {
				s := *(*string)(p)
				if !utf8.ValidString(s) {
					return errors.New("string is not valid UTF-8")
				}
				cs.cols[col].putString(rep, s)
				return nil
			}
		}
	}
	return nil
}

// WriteStructs appends rows given as Go structs (or pointers to structs);
// see the package notes on field mapping. Errors are as for
// [FileWriter.Write].
func WriteStructs[T any](ctx context.Context, w *FileWriter, rows []T) error {
	if len(rows) == 0 {
		return nil
	}
	t := reflect.TypeFor[T]()
	ptr := t.Kind() == reflect.Pointer
	if ptr {
		t = t.Elem()
	}
	if w.closed {
		return fmt.Errorf("%w: writer closed", ErrInvalidOptions)
	}
	enc, err := w.encoderFor(t)
	if err != nil {
		return err
	}
	if enc.batch != nil && !ptr {
		return w.writeBatches(ctx, enc.batch, unsafe.Pointer(unsafe.SliceData(rows)), t.Size(), len(rows))
	}
	for i := range rows {
		if i&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		p := unsafe.Pointer(&rows[i])
		if ptr {
			p = *(*unsafe.Pointer)(p)
			if p == nil {
				return &RowError{Row: int(w.rows), Err: errors.New("nil row")}
			}
		}
		if err := w.writeStruct(ctx, enc, t, p); err != nil {
			return err
		}
	}
	return nil
}

// batchRows bounds the rows encoded column-wise at once, so that the chunk
// size (chunkBytes) is checked often enough.
const batchRows = 128

// writeBatches writes n struct rows at base (stride bytes apart) column-wise.
func (w *FileWriter) writeBatches(ctx context.Context, be *batchEncoder, base unsafe.Pointer, stride uintptr, n int) error {
	if w.single == nil {
		w.single = w.newPart("", nil)
		w.parts[""] = w.single
	}
	p := w.single
	for i, sinceCtx := 0, 1024; i < n; {
		if sinceCtx >= 1024 {
			if err := ctx.Err(); err != nil {
				return err
			}
			sinceCtx = 0
		}
		k := min(n-i, batchRows, chunkRows-p.cs.rows, w.opts.MaxRowsPerRowGroup-p.rgRows-p.cs.rows)
		done, err := be.write(p.cs, unsafe.Add(base, uintptr(i)*stride), stride, k)
		w.rows += int64(done)
		if err != nil {
			return w.rowErr(err)
		}
		i += done
		sinceCtx += done
		if err := w.chunkDone(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

func (w *FileWriter) writeStruct(ctx context.Context, enc *structEncoder, t reflect.Type, p unsafe.Pointer) error {
	var part *partFile
	if len(w.partNames) == 0 {
		if w.single == nil {
			w.single = w.newPart("", nil)
			w.parts[""] = w.single
		}
		part = w.single
	} else {
		rv := reflect.NewAt(t, p).Elem()
		for i, pf := range enc.part {
			var v any
			if pf.index != nil {
				v = rv.FieldByIndex(pf.index).Interface()
			}
			pv, err := PartitionValue(v, w.partTypes[i], w.opts.TimestampUnit)
			if err != nil {
				return &RowError{Row: int(w.rows), Column: w.partNames[i], Err: err}
			}
			w.pvs[i] = pv
		}
		var err error
		if part, err = w.partitionFor(w.pvs); err != nil {
			return err
		}
	}
	cs := part.cs
	cs.begin()
	if err := enc.root(cs, p, 0); err != nil {
		cs.rollback()
		return w.rowErr(err)
	}
	cs.rows++
	return w.rowDone(ctx, part)
}

// SchemaOf infers a Delta schema from a Go struct type: int64/int -> long,
// int32 -> integer, int16 -> short, int8 -> byte, uint8 -> short, uint16 ->
// integer, uint32 -> long, uint/uint64 -> decimal(20,0), float32 -> float, float64 -> double, string -> string,
// bool -> boolean, []byte -> binary, time.Time -> timestamp, structs ->
// struct, slices -> array, map[K]V -> map. Pointers, slices and maps are
// nullable, other fields not. The tag option type= overrides the type
// (`delta:"day,type=date"`).
func SchemaOf(t reflect.Type) (*txlog.StructType, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("%w: %s is not a struct", ErrUnsupportedType, t)
	}
	dt, err := structTypeOf(t, map[reflect.Type]bool{})
	if err != nil {
		return nil, err
	}
	return dt, nil
}

func structTypeOf(t reflect.Type, seen map[reflect.Type]bool) (*txlog.StructType, error) {
	if seen[t] {
		return nil, fmt.Errorf("%w: recursive type %s", ErrUnsupportedType, t)
	}
	seen[t] = true
	defer delete(seen, t)
	st := &txlog.StructType{}
	for _, f := range goFields(t) {
		name := f.name
		if name == "" {
			name = f.sf.Name
		}
		var dt txlog.DataType
		var nullable bool
		var err error
		if f.typ != "" {
			if dt, err = txlog.ParsePrimitive(f.typ); err != nil {
				return nil, fmt.Errorf("field %s: %w", f.sf.Name, err)
			}
			k := f.sf.Type.Kind()
			nullable = k == reflect.Pointer || k == reflect.Slice || k == reflect.Map || k == reflect.Interface
		} else if dt, nullable, err = goDeltaType(f.sf.Type, seen); err != nil {
			return nil, fmt.Errorf("field %s: %w", f.sf.Name, err)
		}
		st.Fields = append(st.Fields, &txlog.StructField{Name: name, Type: dt, Nullable: nullable, Metadata: map[string]json.RawMessage{}})
	}
	if len(st.Fields) == 0 {
		return nil, fmt.Errorf("%w: %s has no exported fields", ErrUnsupportedType, t)
	}
	return st, nil
}

func goDeltaType(t reflect.Type, seen map[reflect.Type]bool) (txlog.DataType, bool, error) {
	prim := func(name string) (txlog.DataType, bool, error) {
		return &txlog.PrimitiveType{Name: name}, false, nil
	}
	switch {
	case t == timeType:
		return prim(txlog.TypeTimestamp)
	case t == reflect.TypeFor[json.Number]():
		return &txlog.DecimalType{Precision: 38, Scale: 18}, false, nil
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		return &txlog.PrimitiveType{Name: txlog.TypeBinary}, true, nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		dt, _, err := goDeltaType(t.Elem(), seen)
		return dt, true, err
	case reflect.Int, reflect.Int64:
		return prim(txlog.TypeLong)
	case reflect.Int32, reflect.Uint16:
		return prim(txlog.TypeInteger)
	case reflect.Int16, reflect.Uint8:
		return prim(txlog.TypeShort)
	case reflect.Int8:
		return prim(txlog.TypeByte)
	case reflect.Uint32:
		return prim(txlog.TypeLong)
	case reflect.Uint, reflect.Uint64:
		return &txlog.DecimalType{Precision: 20, Scale: 0}, false, nil
	case reflect.Float32:
		return prim(txlog.TypeFloat)
	case reflect.Float64:
		return prim(txlog.TypeDouble)
	case reflect.String:
		return prim(txlog.TypeString)
	case reflect.Bool:
		return prim(txlog.TypeBoolean)
	case reflect.Struct:
		st, err := structTypeOf(t, seen)
		return st, false, err
	case reflect.Slice, reflect.Array:
		et, en, err := goDeltaType(t.Elem(), seen)
		if err != nil {
			return nil, false, err
		}
		return &txlog.ArrayType{ElementType: et, ContainsNull: en}, t.Kind() == reflect.Slice, nil
	case reflect.Map:
		kt, _, err := goDeltaType(t.Key(), seen)
		if err != nil {
			return nil, false, err
		}
		vt, vn, err := goDeltaType(t.Elem(), seen)
		if err != nil {
			return nil, false, err
		}
		return &txlog.MapType{KeyType: kt, ValueType: vt, ValueContainsNull: vn}, true, nil
	}
	return nil, false, fmt.Errorf("%w: Go type %s", ErrUnsupportedType, t)
}
