package reader

import (
	"fmt"
	"math/big"
	"math/bits"
	"time"
	"unsafe"

	"github.com/kappa-lake/kappa/txlog"
)

// Validity is a validity bitmap: bit i set means row i is not null. A nil
// bitmap means every row is valid, so null-free columns cost nothing.
type Validity struct {
	bits []uint64
}

// Valid reports whether row i is not null.
func (v *Validity) Valid(i int) bool {
	if v.bits == nil {
		return true
	}
	return v.bits[i>>6]&(1<<(uint(i)&63)) != 0
}

// HasNulls reports whether any row may be null.
func (v *Validity) HasNulls() bool { return v.bits != nil }

// Words exposes the bitmap words (nil when every row is valid) for
// vectorised consumers.
func (v *Validity) Words() []uint64 { return v.bits }

// set records the validity of row i of a vector currently holding n rows.
func (v *Validity) set(i int, valid bool) {
	if valid && v.bits == nil {
		return
	}
	if v.bits == nil {
		// First null: materialise the all-valid prefix.
		v.bits = make([]uint64, (i>>6)+1)
		for j := 0; j < i; j++ {
			v.bits[j>>6] |= 1 << (uint(j) & 63)
		}
	}
	for len(v.bits) <= i>>6 {
		v.bits = append(v.bits, 0)
	}
	if valid {
		v.bits[i>>6] |= 1 << (uint(i) & 63)
	} else {
		v.bits[i>>6] &^= 1 << (uint(i) & 63)
	}
}

// nullCount counts nulls among the first n rows.
func (v *Validity) nullCount(n int) int {
	if v.bits == nil {
		return 0
	}
	valid := 0
	for i := 0; i < n>>6; i++ {
		valid += bits.OnesCount64(v.bits[i])
	}
	if r := n & 63; r != 0 {
		valid += bits.OnesCount64(v.bits[n>>6] & (1<<uint(r) - 1))
	}
	return n - valid
}

// Vector is one column of a Batch. The concrete types are *BoolVector,
// *Int64Vector, *Float64Vector, *BytesVector, *DecimalVector, *DateVector,
// *TimestampVector and *AnyVector (nested struct, array and map values);
// type-switch on them for fast typed access.
type Vector interface {
	// Type is the Delta type of the column.
	Type() txlog.DataType
	// Len is the number of rows.
	Len() int
	// IsNull reports whether row i is null.
	IsNull(i int) bool
	// Value returns row i as a Go value (see Batch.Value for the mapping).
	Value(i int) any
	// take returns a new vector holding the rows idx, in that order.
	take(idx []int32) Vector
	// appendNull appends a null row.
	appendNull()
}

type vecBase struct {
	typ   txlog.DataType
	valid Validity
	n     int
}

func (b *vecBase) Type() txlog.DataType { return b.typ }
func (b *vecBase) Len() int             { return b.n }
func (b *vecBase) IsNull(i int) bool    { return !b.valid.Valid(i) }

// Validity returns the column's validity bitmap.
func (b *vecBase) Validity() *Validity { return &b.valid }

// NullCount returns the number of null rows.
func (b *vecBase) NullCount() int { return b.valid.nullCount(b.n) }

func (b *vecBase) push(valid bool) {
	b.valid.set(b.n, valid)
	b.n++
}

// gather returns src[idx[0]], src[idx[1]], ...
func gather[T any](src []T, idx []int32) []T {
	out := make([]T, len(idx))
	for j, i := range idx {
		out[j] = src[i]
	}
	return out
}

func takeValidity(src *vecBase, dst *vecBase, idx []int32) {
	dst.typ = src.typ
	dst.n = len(idx)
	if src.valid.bits == nil {
		return
	}
	for j, i := range idx {
		dst.valid.set(j, src.valid.Valid(int(i)))
	}
	if dst.valid.bits != nil && len(dst.valid.bits) < (len(idx)+63)/64 {
		dst.valid.bits = append(dst.valid.bits, make([]uint64, (len(idx)+63)/64-len(dst.valid.bits))...)
	}
}

// BoolVector holds boolean values.
type BoolVector struct {
	vecBase
	Values []bool
}

// Value returns a bool or nil.
func (v *BoolVector) Value(i int) any {
	if v.IsNull(i) {
		return nil
	}
	return v.Values[i]
}
func (v *BoolVector) appendNull() { v.Values = append(v.Values, false); v.push(false) }
func (v *BoolVector) append(x bool) {
	v.Values = append(v.Values, x)
	v.push(true)
}

func (v *BoolVector) take(idx []int32) Vector {
	out := &BoolVector{Values: gather(v.Values, idx)}
	takeValidity(&v.vecBase, &out.vecBase, idx)
	return out
}

// Int64Vector holds byte, short, integer and long values widened to int64.
type Int64Vector struct {
	vecBase
	Values []int64
}

// Value returns int8/int16/int32/int64 per the column type, or nil.
func (v *Int64Vector) Value(i int) any {
	if v.IsNull(i) {
		return nil
	}
	x := v.Values[i]
	if p, ok := v.typ.(*txlog.PrimitiveType); ok {
		switch p.Name {
		case txlog.TypeByte:
			return int8(x)
		case txlog.TypeShort:
			return int16(x)
		case txlog.TypeInteger:
			return int32(x)
		}
	}
	return x
}
func (v *Int64Vector) appendNull() { v.Values = append(v.Values, 0); v.push(false) }
func (v *Int64Vector) append(x int64) {
	v.Values = append(v.Values, x)
	v.push(true)
}

func (v *Int64Vector) take(idx []int32) Vector {
	out := &Int64Vector{Values: gather(v.Values, idx)}
	takeValidity(&v.vecBase, &out.vecBase, idx)
	return out
}

// Float64Vector holds float and double values widened to float64.
type Float64Vector struct {
	vecBase
	Values []float64
}

// Value returns float32 (float columns) or float64, or nil.
func (v *Float64Vector) Value(i int) any {
	if v.IsNull(i) {
		return nil
	}
	if p, ok := v.typ.(*txlog.PrimitiveType); ok && p.Name == txlog.TypeFloat {
		return float32(v.Values[i])
	}
	return v.Values[i]
}
func (v *Float64Vector) appendNull() { v.Values = append(v.Values, 0); v.push(false) }
func (v *Float64Vector) append(x float64) {
	v.Values = append(v.Values, x)
	v.push(true)
}

func (v *Float64Vector) take(idx []int32) Vector {
	out := &Float64Vector{Values: gather(v.Values, idx)}
	takeValidity(&v.vecBase, &out.vecBase, idx)
	return out
}

// BytesVector holds string and binary values in one of two forms.
//
// Plain form (Codes == nil): one contiguous buffer, row i is
// Data[Offsets[i]:Offsets[i+1]].
//
// Dictionary form (Codes != nil), produced for dictionary-encoded column
// chunks: row i is row Codes[i] of Dict (a plain BytesVector without nulls);
// Offsets and Data are nil. Null rows carry a valid code (their value is
// still reported as null). Batches sliced from one column chunk share its
// Dict, so consumers can key per-dictionary state on the Dict pointer and
// aggregate by code.
//
// Bytes, String and Value work in both forms; the buffers are never
// modified once written, so String returns views without copying.
type BytesVector struct {
	vecBase
	Offsets []int64 // plain form: len = Len()+1
	Data    []byte

	Dict  *BytesVector // dictionary form: the distinct values
	Codes []int32      // dictionary form: per-row index into Dict

	strs []string // a dictionary's entries as string views (see newBytesDict)
}

// Bytes returns row i's bytes (a view; do not modify).
func (v *BytesVector) Bytes(i int) []byte {
	if v.Codes != nil {
		return v.Dict.Bytes(int(v.Codes[i]))
	}
	return v.Data[v.Offsets[i]:v.Offsets[i+1]:v.Offsets[i+1]]
}

// String returns row i as a string without copying.
func (v *BytesVector) String(i int) string {
	if v.Codes != nil {
		return v.Dict.String(int(v.Codes[i]))
	}
	b := v.Data[v.Offsets[i]:v.Offsets[i+1]]
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// IsDict reports whether the vector is in dictionary form.
func (v *BytesVector) IsDict() bool { return v.Codes != nil }

// dictStrings returns the entries of a dictionary vector as strings
// (views into its buffer), computed once when the dictionary was built.
func (v *BytesVector) dictStrings() []string {
	if v.strs == nil {
		s := make([]string, v.n)
		for i := range s {
			s[i] = v.String(i)
		}
		return s
	}
	return v.strs
}

// newBytesDict builds a dictionary vector from a dictionary page's values
// (copied) and checks its offsets. An empty dictionary gets one empty
// entry so that null rows always have a valid code.
func newBytesDict(typ txlog.DataType, data []byte, offs []uint32) (*BytesVector, error) {
	n := max(len(offs)-1, 0)
	d := &BytesVector{vecBase: vecBase{typ: typ, n: n}, Offsets: make([]int64, n+1)}
	if n > 0 {
		base := offs[0]
		if int(offs[n]) > len(data) || base > offs[n] {
			return nil, fmt.Errorf("%w: bad dictionary offsets", ErrCorruptData)
		}
		for i := 1; i <= n; i++ {
			if offs[i] < offs[i-1] {
				return nil, fmt.Errorf("%w: bad dictionary offsets", ErrCorruptData)
			}
			d.Offsets[i] = int64(offs[i] - base)
		}
		d.Data = append([]byte(nil), data[base:offs[n]]...)
	}
	if n == 0 {
		d.Offsets = append(d.Offsets, 0)
		d.n = 1
	}
	d.strs = make([]string, d.n)
	for i := range d.strs {
		d.strs[i] = d.String(i)
	}
	return d, nil
}

// materialize converts the first n rows of a dictionary-form vector to the
// plain form (null rows empty).
func (v *BytesVector) materialize(n int) {
	if v.Codes == nil {
		return
	}
	size := 0
	for i := 0; i < n; i++ {
		if v.valid.Valid(i) {
			c := v.Codes[i]
			size += int(v.Dict.Offsets[c+1] - v.Dict.Offsets[c])
		}
	}
	offs := make([]int64, n+1, max(n+1, cap(v.Codes)+1))
	data := make([]byte, 0, size)
	for i := 0; i < n; i++ {
		if v.valid.Valid(i) {
			data = append(data, v.Dict.Bytes(int(v.Codes[i]))...)
		}
		offs[i+1] = int64(len(data))
	}
	v.Offsets, v.Data, v.Dict, v.Codes = offs, data, nil, nil
}

// Value returns a string (string columns) or []byte (binary), or nil.
func (v *BytesVector) Value(i int) any {
	if v.IsNull(i) {
		return nil
	}
	if p, ok := v.typ.(*txlog.PrimitiveType); ok && p.Name == txlog.TypeBinary {
		return append([]byte{}, v.Bytes(i)...)
	}
	return v.String(i)
}

func (v *BytesVector) init() {
	v.materialize(v.n)
	if v.Offsets == nil {
		v.Offsets = []int64{0}
	}
}

func (v *BytesVector) appendNull() {
	v.init()
	v.Offsets = append(v.Offsets, int64(len(v.Data)))
	v.push(false)
}

func (v *BytesVector) append(b []byte) {
	v.init()
	v.Data = append(v.Data, b...)
	v.Offsets = append(v.Offsets, int64(len(v.Data)))
	v.push(true)
}

func (v *BytesVector) take(idx []int32) Vector {
	if v.Codes != nil {
		out := &BytesVector{Dict: v.Dict, Codes: gather(v.Codes, idx)}
		takeValidity(&v.vecBase, &out.vecBase, idx)
		return out
	}
	out := &BytesVector{Offsets: make([]int64, 1, len(idx)+1)}
	for _, i := range idx {
		out.Data = append(out.Data, v.Data[v.Offsets[i]:v.Offsets[i+1]]...)
		out.Offsets = append(out.Offsets, int64(len(out.Data)))
	}
	takeValidity(&v.vecBase, &out.vecBase, idx)
	return out
}

// Decimal is a decimal value: Unscaled * 10^-Scale.
type Decimal struct {
	Unscaled *big.Int
	Scale    int
}

// Rat returns the exact value as a rational.
func (d Decimal) Rat() *big.Rat {
	r := new(big.Rat).SetInt(d.Unscaled)
	if d.Scale > 0 {
		r.Quo(r, new(big.Rat).SetInt(pow10(d.Scale)))
	}
	return r
}

// String renders the decimal in plain notation ("-12.340").
func (d Decimal) String() string {
	s := new(big.Int).Abs(d.Unscaled).String()
	neg := d.Unscaled.Sign() < 0
	if d.Scale > 0 {
		for len(s) <= d.Scale {
			s = "0" + s
		}
		s = s[:len(s)-d.Scale] + "." + s[len(s)-d.Scale:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

func pow10(n int) *big.Int {
	return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
}

// DecimalVector holds decimal values. Precision <= 18 columns use Small
// (unscaled int64, fast for SUM); wider columns use Big.
type DecimalVector struct {
	vecBase
	Precision, Scale int
	Small            []int64
	Big              []*big.Int
}

func newDecimalVector(t *txlog.DecimalType) *DecimalVector {
	return &DecimalVector{vecBase: vecBase{typ: t}, Precision: t.Precision, Scale: t.Scale}
}

// IsSmall reports whether values are held in Small.
func (v *DecimalVector) IsSmall() bool { return v.Precision <= 18 }

// Decimal returns row i (ignoring validity).
func (v *DecimalVector) Decimal(i int) Decimal {
	if v.IsSmall() {
		return Decimal{Unscaled: big.NewInt(v.Small[i]), Scale: v.Scale}
	}
	return Decimal{Unscaled: new(big.Int).Set(v.Big[i]), Scale: v.Scale}
}

// Value returns a Decimal or nil.
func (v *DecimalVector) Value(i int) any {
	if v.IsNull(i) {
		return nil
	}
	return v.Decimal(i)
}

func (v *DecimalVector) appendNull() {
	if v.IsSmall() {
		v.Small = append(v.Small, 0)
	} else {
		v.Big = append(v.Big, new(big.Int))
	}
	v.push(false)
}

func (v *DecimalVector) appendBig(x *big.Int) {
	if v.IsSmall() {
		v.Small = append(v.Small, x.Int64())
	} else {
		v.Big = append(v.Big, x)
	}
	v.push(true)
}

func (v *DecimalVector) appendInt64(x int64) {
	if v.IsSmall() {
		v.Small = append(v.Small, x)
	} else {
		v.Big = append(v.Big, big.NewInt(x))
	}
	v.push(true)
}

func (v *DecimalVector) take(idx []int32) Vector {
	out := &DecimalVector{Precision: v.Precision, Scale: v.Scale}
	if v.IsSmall() {
		out.Small = gather(v.Small, idx)
	} else {
		out.Big = gather(v.Big, idx)
	}
	takeValidity(&v.vecBase, &out.vecBase, idx)
	return out
}

// DateVector holds dates as days since 1970-01-01.
type DateVector struct {
	vecBase
	Days []int32
}

// Value returns a time.Time at UTC midnight, or nil.
func (v *DateVector) Value(i int) any {
	if v.IsNull(i) {
		return nil
	}
	return time.Unix(int64(v.Days[i])*86400, 0).UTC()
}
func (v *DateVector) appendNull() { v.Days = append(v.Days, 0); v.push(false) }
func (v *DateVector) append(d int32) {
	v.Days = append(v.Days, d)
	v.push(true)
}

func (v *DateVector) take(idx []int32) Vector {
	out := &DateVector{Days: gather(v.Days, idx)}
	takeValidity(&v.vecBase, &out.vecBase, idx)
	return out
}

// TimestampVector holds timestamp (UTC instants) and timestamp_ntz (wall
// clock, no zone) values as microseconds since the epoch.
type TimestampVector struct {
	vecBase
	Micros []int64
}

// NTZ reports whether the column is timestamp_ntz.
func (v *TimestampVector) NTZ() bool {
	p, ok := v.typ.(*txlog.PrimitiveType)
	return ok && p.Name == txlog.TypeTimestampNTZ
}

// Value returns a time.Time in UTC (for timestamp_ntz: the wall clock
// expressed in UTC), or nil.
func (v *TimestampVector) Value(i int) any {
	if v.IsNull(i) {
		return nil
	}
	return time.UnixMicro(v.Micros[i]).UTC()
}
func (v *TimestampVector) appendNull() { v.Micros = append(v.Micros, 0); v.push(false) }
func (v *TimestampVector) append(us int64) {
	v.Micros = append(v.Micros, us)
	v.push(true)
}

func (v *TimestampVector) take(idx []int32) Vector {
	out := &TimestampVector{Micros: gather(v.Micros, idx)}
	takeValidity(&v.vecBase, &out.vecBase, idx)
	return out
}

// MapEntry is one key/value pair of a map value.
type MapEntry struct {
	Key, Value any
}

// AnyVector holds nested values (struct, array, map) as Go values:
// a struct is map[string]any keyed by logical field name, an array is
// []any, a map is []MapEntry in file order. Leaves use the same Go types as
// Batch.Value.
type AnyVector struct {
	vecBase
	Values []any
}

// Value returns the nested Go value or nil.
func (v *AnyVector) Value(i int) any {
	if v.IsNull(i) {
		return nil
	}
	return v.Values[i]
}
func (v *AnyVector) appendNull() { v.Values = append(v.Values, nil); v.push(false) }
func (v *AnyVector) append(x any) {
	v.Values = append(v.Values, x)
	v.push(x != nil)
}

func (v *AnyVector) take(idx []int32) Vector {
	out := &AnyVector{Values: gather(v.Values, idx)}
	takeValidity(&v.vecBase, &out.vecBase, idx)
	return out
}

// newVector returns an empty vector for a Delta type.
func newVector(t txlog.DataType) Vector {
	switch t := t.(type) {
	case *txlog.DecimalType:
		return newDecimalVector(t)
	case *txlog.PrimitiveType:
		b := vecBase{typ: t}
		switch t.Name {
		case txlog.TypeBoolean:
			return &BoolVector{vecBase: b}
		case txlog.TypeByte, txlog.TypeShort, txlog.TypeInteger, txlog.TypeLong:
			return &Int64Vector{vecBase: b}
		case txlog.TypeFloat, txlog.TypeDouble:
			return &Float64Vector{vecBase: b}
		case txlog.TypeString, txlog.TypeBinary:
			return &BytesVector{vecBase: b, Offsets: []int64{0}}
		case txlog.TypeDate:
			return &DateVector{vecBase: b}
		case txlog.TypeTimestamp, txlog.TypeTimestampNTZ:
			return &TimestampVector{vecBase: b}
		}
		return &AnyVector{vecBase: b}
	default:
		return &AnyVector{vecBase: vecBase{typ: t}}
	}
}

// nullVector returns a vector of n nulls.
func nullVector(t txlog.DataType, n int) Vector {
	v := newVector(t)
	for range n {
		v.appendNull()
	}
	return v
}

// Batch is a set of rows in columnar form. Columns follow Schema's field
// order; every column has Len() rows. A Batch is immutable once returned.
type Batch struct {
	schema *txlog.StructType
	cols   []Vector
	n      int
}

// NewBatch assembles a batch from vectors (all of the same length) matching
// schema's fields. It is used by engines that build batches themselves.
func NewBatch(schema *txlog.StructType, cols []Vector) (*Batch, error) {
	if len(cols) != len(schema.Fields) {
		return nil, fmt.Errorf("new batch: %d columns for %d fields", len(cols), len(schema.Fields))
	}
	n := 0
	for i, c := range cols {
		if i == 0 {
			n = c.Len()
		} else if c.Len() != n {
			return nil, fmt.Errorf("new batch: column %q has %d rows, want %d", schema.Fields[i].Name, c.Len(), n)
		}
	}
	return &Batch{schema: schema, cols: cols, n: n}, nil
}

// Schema is the schema of the batch (the projected columns).
func (b *Batch) Schema() *txlog.StructType { return b.schema }

// NumRows is the number of rows.
func (b *Batch) NumRows() int { return b.n }

// NumCols is the number of columns.
func (b *Batch) NumCols() int { return len(b.cols) }

// Column returns column i.
func (b *Batch) Column(i int) Vector { return b.cols[i] }

// ColumnByName returns the column with the given name, or nil.
func (b *Batch) ColumnByName(name string) Vector {
	for i, f := range b.schema.Fields {
		if f.Name == name {
			return b.cols[i]
		}
	}
	return nil
}

// Value returns the value at column col, row i as a Go value: nil for null;
// bool; int8/int16/int32/int64 for byte/short/integer/long; float32/float64;
// string; []byte for binary; Decimal; time.Time (UTC) for date (midnight),
// timestamp and timestamp_ntz (wall clock read as UTC); map[string]any for
// structs, []any for arrays, []MapEntry for maps.
func (b *Batch) Value(col, i int) any { return b.cols[col].Value(i) }

// Row returns row i.
func (b *Batch) Row(i int) Row {
	r := Row{Names: make([]string, len(b.cols)), Values: make([]any, len(b.cols))}
	for c, v := range b.cols {
		r.Names[c] = b.schema.Fields[c].Name
		r.Values[c] = v.Value(i)
	}
	return r
}

// take returns a batch holding only the rows idx.
func (b *Batch) take(idx []int32) *Batch {
	out := &Batch{schema: b.schema, cols: make([]Vector, len(b.cols)), n: len(idx)}
	for i, c := range b.cols {
		nc := c.take(idx)
		// take does not carry the type for some vectors: restore it.
		setType(nc, c.Type())
		out.cols[i] = nc
	}
	return out
}

// slice returns rows [i, j) of the batch.
func (b *Batch) slice(i, j int) *Batch {
	if i == 0 && j == b.n {
		return b
	}
	out := &Batch{schema: b.schema, cols: make([]Vector, len(b.cols)), n: j - i}
	for c, v := range b.cols {
		out.cols[c] = sliceVector(v, i, j)
	}
	return out
}

func setType(v Vector, t txlog.DataType) {
	switch v := v.(type) {
	case *BoolVector:
		v.typ = t
	case *Int64Vector:
		v.typ = t
	case *Float64Vector:
		v.typ = t
	case *BytesVector:
		v.typ = t
	case *DecimalVector:
		v.typ = t
	case *DateVector:
		v.typ = t
	case *TimestampVector:
		v.typ = t
	case *AnyVector:
		v.typ = t
	}
}

// Row is one row: column names in schema order with their values (Go types
// as documented on Batch.Value).
type Row struct {
	Names  []string
	Values []any
}

// Get returns the value of the named column.
func (r Row) Get(name string) (any, bool) {
	for i, n := range r.Names {
		if n == name {
			return r.Values[i], true
		}
	}
	return nil, false
}

// Map returns the row as a map from column name to value.
func (r Row) Map() map[string]any {
	m := make(map[string]any, len(r.Names))
	for i, n := range r.Names {
		m[n] = r.Values[i]
	}
	return m
}

// sliceVector returns rows [i, j) of v, sharing memory when v has no nulls.
func sliceVector(v Vector, i, j int) Vector {
	base := func(vb *vecBase) (vecBase, bool) {
		if vb.valid.HasNulls() {
			return vecBase{}, false
		}
		return vecBase{typ: vb.typ, n: j - i}, true
	}
	switch v := v.(type) {
	case *Int64Vector:
		if b, ok := base(&v.vecBase); ok {
			return &Int64Vector{vecBase: b, Values: v.Values[i:j:j]}
		}
	case *Float64Vector:
		if b, ok := base(&v.vecBase); ok {
			return &Float64Vector{vecBase: b, Values: v.Values[i:j:j]}
		}
	case *TimestampVector:
		if b, ok := base(&v.vecBase); ok {
			return &TimestampVector{vecBase: b, Micros: v.Micros[i:j:j]}
		}
	case *DateVector:
		if b, ok := base(&v.vecBase); ok {
			return &DateVector{vecBase: b, Days: v.Days[i:j:j]}
		}
	case *BytesVector:
		if b, ok := base(&v.vecBase); ok && v.Codes != nil {
			return &BytesVector{vecBase: b, Dict: v.Dict, Codes: v.Codes[i:j:j]}
		}
		if b, ok := base(&v.vecBase); ok {
			// Offsets stay absolute into the shared Data buffer.
			return &BytesVector{vecBase: b, Offsets: v.Offsets[i : j+1 : j+1], Data: v.Data[:v.Offsets[j]:v.Offsets[j]]}
		}
	}
	idx := make([]int32, j-i)
	for k := range idx {
		idx[k] = int32(i + k)
	}
	nv := v.take(idx)
	setType(nv, v.Type())
	return nv
}
