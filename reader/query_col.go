package reader

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/kappa-lake/kappa/txlog"
)

// Query engine values: a col is one typed column of an intermediate
// result. Representations share the reader's vectors when possible
// (Int64Vector.Values, Float64Vector.Values, TimestampVector.Micros and
// small DecimalVector.Small are used without copying).

type vkind uint8

const (
	vNull vkind = iota // the NULL literal's type
	vBool
	vInt // long (all integer widths)
	vFloat
	vDec // unscaled int64 at scale
	vStr
	vDate // days since epoch
	vTS   // microseconds since epoch
	vAny  // nested values as Go values
)

var vkindNames = [...]string{"null", "boolean", "bigint", "double", "decimal", "string", "date", "timestamp", "nested"}

type vtype struct {
	k     vkind
	scale int            // vDec
	dt    txlog.DataType // output type when known (plain column references)
}

func (t vtype) String() string {
	if t.k == vDec {
		return "decimal(18," + strconv.Itoa(t.scale) + ")"
	}
	return vkindNames[t.k]
}

func (t vtype) numeric() bool { return t.k == vInt || t.k == vFloat || t.k == vDec }

// deltaType is the Delta type of values of this kind.
func (t vtype) deltaType() txlog.DataType {
	if t.dt != nil {
		return t.dt
	}
	switch t.k {
	case vBool:
		return &txlog.PrimitiveType{Name: txlog.TypeBoolean}
	case vInt:
		return &txlog.PrimitiveType{Name: txlog.TypeLong}
	case vFloat:
		return &txlog.PrimitiveType{Name: txlog.TypeDouble}
	case vDec:
		return &txlog.DecimalType{Precision: 18, Scale: t.scale}
	case vDate:
		return &txlog.PrimitiveType{Name: txlog.TypeDate}
	case vTS:
		return &txlog.PrimitiveType{Name: txlog.TypeTimestamp}
	}
	return &txlog.PrimitiveType{Name: txlog.TypeString}
}

type col struct {
	t     vtype
	n     int
	konst bool   // a constant: row 0 stands for every row
	nulls []bool // nil = no nulls
	b     []bool
	i     []int64
	f     []float64
	s     []string
	a     []any
	// Dictionary-encoded strings (optional, vStr): when codes is non-nil,
	// row i is dict[codes[i]], and every column carrying the same dict
	// (same backing array) shares its codes. s may then be nil until
	// strs() materialises it (phase-1 frames decode lazily: a GROUP BY
	// key never needs per-row strings).
	dict  []string
	codes []int32
}

// str returns string row i (i already resolved with idx).
func (c *col) str(i int) string {
	if c.s == nil && c.codes != nil {
		return c.dict[c.codes[i]]
	}
	return c.s[i]
}

// strs materialises the per-row strings of a lazily decoded dictionary
// column and returns c.
func (c *col) strs() *col {
	if c.s == nil && c.codes != nil {
		s := make([]string, c.n)
		for i, code := range c.codes[:c.n] {
			s[i] = c.dict[code]
		}
		c.s = s
	}
	return c
}

func (c *col) null(i int) bool {
	if c.konst {
		i = 0
	}
	return c.nulls != nil && c.nulls[i]
}

func (c *col) idx(i int) int {
	if c.konst {
		return 0
	}
	return i
}

func (c *col) setNull(i int) {
	if c.nulls == nil {
		c.nulls = make([]bool, c.n)
	}
	c.nulls[i] = true
}

// newCol allocates a column of n rows of type t.
func newCol(t vtype, n int) *col {
	c := &col{t: t, n: n}
	switch t.k {
	case vBool:
		c.b = make([]bool, n)
	case vInt, vDec, vDate, vTS:
		c.i = make([]int64, n)
	case vFloat:
		c.f = make([]float64, n)
	case vStr:
		c.s = make([]string, n)
	case vAny:
		c.a = make([]any, n)
	case vNull:
		c.nulls = make([]bool, n)
		for j := range c.nulls {
			c.nulls[j] = true
		}
	}
	return c
}

// nullCol is a constant NULL of type t.
func nullCol(t vtype) *col {
	c := newCol(t, 1)
	c.konst = true
	c.nulls = []bool{true}
	return c
}

// expand materialises a constant to n rows.
func (c *col) expand(n int) *col {
	if !c.konst {
		return c
	}
	out := newCol(c.t, n)
	if c.null(0) {
		out.nulls = make([]bool, n)
		for j := range out.nulls {
			out.nulls[j] = true
		}
		return out
	}
	for j := 0; j < n; j++ {
		out.copyFrom(j, c, 0)
	}
	return out
}

// copyFrom sets row j to src row i (same kind).
func (c *col) copyFrom(j int, src *col, i int) {
	i = src.idx(i)
	if src.null(i) {
		c.setNull(j)
		return
	}
	switch c.t.k {
	case vBool:
		c.b[j] = src.b[i]
	case vInt, vDec, vDate, vTS:
		c.i[j] = src.i[i]
	case vFloat:
		c.f[j] = src.f[i]
	case vStr:
		c.s[j] = src.s[i]
	case vAny:
		c.a[j] = src.a[i]
	}
}

// appendFrom appends src row i (same kind); strings are cloned so the
// result does not keep batch buffers alive.
func (c *col) appendFrom(src *col, i int) {
	i = src.idx(i)
	null := src.null(i)
	if null && c.nulls == nil {
		c.nulls = make([]bool, c.n, c.n+1)
	}
	if c.nulls != nil {
		c.nulls = append(c.nulls, null)
	}
	c.n++
	switch c.t.k {
	case vBool:
		c.b = append(c.b, !null && src.b[i])
	case vInt, vDec, vDate, vTS:
		var x int64
		if !null {
			x = src.i[i]
		}
		c.i = append(c.i, x)
	case vFloat:
		var x float64
		if !null {
			x = src.f[i]
		}
		c.f = append(c.f, x)
	case vStr:
		var x string
		if !null {
			x = strings.Clone(src.str(i))
		}
		c.s = append(c.s, x)
	case vAny:
		var x any
		if !null {
			x = src.a[i]
		}
		c.a = append(c.a, x)
	}
}

// take returns the rows idx.
func (c *col) take(idx []int32) *col {
	if c.konst {
		return c
	}
	if c.t.k == vNull {
		return newCol(c.t, len(idx))
	}
	out := &col{t: c.t, n: len(idx)}
	if c.nulls != nil {
		out.nulls = gather(c.nulls, idx)
	}
	switch c.t.k {
	case vBool:
		out.b = gather(c.b, idx)
	case vInt, vDec, vDate, vTS:
		out.i = gather(c.i, idx)
	case vFloat:
		out.f = gather(c.f, idx)
	case vStr:
		if c.s != nil || c.codes == nil { // dictionary strings stay lazy
			out.s = gather(c.s, idx)
		}
		if c.codes != nil {
			out.dict, out.codes = c.dict, gather(c.codes, idx)
		}
	case vAny:
		out.a = gather(c.a, idx)
	}
	return out
}

// value returns row i as a Go value (the Batch.Value mapping): bool, int64,
// float64, Decimal, string, time.Time (UTC), nested values, or nil.
func (c *col) value(i int) any {
	i = c.idx(i)
	if c.null(i) {
		return nil
	}
	switch c.t.k {
	case vBool:
		return c.b[i]
	case vInt:
		return c.i[i]
	case vFloat:
		return c.f[i]
	case vDec:
		return Decimal{Unscaled: big.NewInt(c.i[i]), Scale: c.t.scale}
	case vStr:
		if p, ok := c.t.dt.(*txlog.PrimitiveType); ok && p.Name == txlog.TypeBinary {
			return []byte(c.s[i])
		}
		return c.s[i]
	case vDate:
		return time.Unix(c.i[i]*86400, 0).UTC()
	case vTS:
		return time.UnixMicro(c.i[i]).UTC()
	case vAny:
		return c.a[i]
	}
	return nil
}

// vectorCol converts a reader vector to a col without copying the common
// fixed-width representations.
func vectorCol(v Vector) *col { return vectorColLazy(v).strs() }

// vectorColLazy is vectorCol leaving the per-row strings of a dictionary
// column unmaterialised (see col.strs).
func vectorColLazy(v Vector) *col {
	n := v.Len()
	var nulls []bool
	fill := func(vb *vecBase) {
		if vb.valid.HasNulls() {
			nulls = make([]bool, n)
			for i := range nulls {
				nulls[i] = !vb.valid.Valid(i)
			}
		}
	}
	switch v := v.(type) {
	case *Int64Vector:
		fill(&v.vecBase)
		return &col{t: vtype{k: vInt, dt: v.typ}, n: n, nulls: nulls, i: v.Values[:n]}
	case *Float64Vector:
		fill(&v.vecBase)
		return &col{t: vtype{k: vFloat, dt: v.typ}, n: n, nulls: nulls, f: v.Values[:n]}
	case *TimestampVector:
		fill(&v.vecBase)
		return &col{t: vtype{k: vTS, dt: v.typ}, n: n, nulls: nulls, i: v.Micros[:n]}
	case *DateVector:
		fill(&v.vecBase)
		c := &col{t: vtype{k: vDate, dt: v.typ}, n: n, nulls: nulls, i: make([]int64, n)}
		for i, d := range v.Days[:n] {
			c.i[i] = int64(d)
		}
		return c
	case *BoolVector:
		fill(&v.vecBase)
		return &col{t: vtype{k: vBool, dt: v.typ}, n: n, nulls: nulls, b: v.Values[:n]}
	case *BytesVector:
		fill(&v.vecBase)
		if v.Codes != nil {
			return &col{t: vtype{k: vStr, dt: v.typ}, n: n, nulls: nulls, dict: v.Dict.dictStrings(), codes: v.Codes[:n:n]}
		}
		c := &col{t: vtype{k: vStr, dt: v.typ}, n: n, nulls: nulls, s: make([]string, n)}
		for i := range c.s {
			c.s[i] = v.String(i)
		}
		return c
	case *DecimalVector:
		fill(&v.vecBase)
		if v.IsSmall() {
			return &col{t: vtype{k: vDec, scale: v.Scale, dt: v.typ}, n: n, nulls: nulls, i: v.Small[:n]}
		}
		// Wider than 18 digits: computed as double.
		c := &col{t: vtype{k: vFloat}, n: n, nulls: nulls, f: make([]float64, n)}
		for i := range c.f {
			if nulls == nil || !nulls[i] {
				c.f[i], _ = v.Decimal(i).Rat().Float64()
			}
		}
		return c
	case *AnyVector:
		fill(&v.vecBase)
		return &col{t: vtype{k: vAny, dt: v.typ}, n: n, nulls: nulls, a: v.Values[:n]}
	}
	c := newCol(vtype{k: vNull}, n)
	return c
}

// kindOf maps a Delta type to a value kind.
func kindOf(t txlog.DataType) vtype {
	switch t := t.(type) {
	case *txlog.DecimalType:
		if t.Precision <= 18 {
			return vtype{k: vDec, scale: t.Scale, dt: t}
		}
		return vtype{k: vFloat}
	case *txlog.PrimitiveType:
		switch t.Name {
		case txlog.TypeBoolean:
			return vtype{k: vBool, dt: t}
		case txlog.TypeByte, txlog.TypeShort, txlog.TypeInteger, txlog.TypeLong:
			return vtype{k: vInt, dt: t}
		case txlog.TypeFloat, txlog.TypeDouble:
			return vtype{k: vFloat, dt: t}
		case txlog.TypeString, txlog.TypeBinary:
			return vtype{k: vStr, dt: t}
		case txlog.TypeDate:
			return vtype{k: vDate, dt: t}
		case txlog.TypeTimestamp, txlog.TypeTimestampNTZ:
			return vtype{k: vTS, dt: t}
		}
	}
	return vtype{k: vAny, dt: t}
}

// goValueCol builds a col of kind t from Go values (nested field access).
func goValueCol(t vtype, vals []any) *col {
	c := newCol(t, len(vals))
	for i, x := range vals {
		s := goScalar(x)
		if s == nil {
			c.setNull(i)
			continue
		}
		switch t.k {
		case vBool:
			c.b[i], _ = s.(bool)
		case vInt, vTS:
			c.i[i], _ = s.(int64)
		case vDate:
			if tm, ok := x.(time.Time); ok {
				c.i[i] = floorDiv(tm.Unix(), 86400)
			}
		case vFloat:
			c.f[i] = toFloat(s)
		case vDec:
			if r, ok := s.(*big.Rat); ok {
				u := new(big.Rat).Mul(r, new(big.Rat).SetInt(pow10(t.scale)))
				c.i[i] = new(big.Int).Quo(u.Num(), u.Denom()).Int64()
			}
		case vStr:
			c.s[i], _ = s.(string)
		case vAny:
			c.a[i] = x
		}
	}
	return c
}

// Canonical binary encoding of one value, for hashing (group keys,
// distinct sets, sketches). Equal values encode equally: -0 and 0, all NaNs.
func encodeValue(buf []byte, c *col, i int) []byte {
	i = c.idx(i)
	if c.null(i) {
		return append(buf, 0)
	}
	switch c.t.k {
	case vBool:
		if c.b[i] {
			return append(buf, 1, 1)
		}
		return append(buf, 1, 0)
	case vInt, vDec, vDate, vTS:
		buf = append(buf, 2)
		return binary.BigEndian.AppendUint64(buf, uint64(c.i[i]))
	case vFloat:
		f := c.f[i]
		if f == 0 {
			f = 0
		}
		if f != f {
			f = math.NaN()
		}
		buf = append(buf, 3)
		return binary.BigEndian.AppendUint64(buf, math.Float64bits(f))
	case vStr:
		buf = append(buf, 4)
		buf = binary.AppendUvarint(buf, uint64(len(c.s[i])))
		return append(buf, c.s[i]...)
	case vAny:
		buf = append(buf, 5)
		s := canonAny(c.a[i])
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		return append(buf, s...)
	}
	return append(buf, 0)
}

func canonAny(x any) string {
	var b strings.Builder
	writeCanon(&b, x)
	return b.String()
}

func writeCanon(b *strings.Builder, x any) {
	switch x := x.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sortStrings(keys)
		b.WriteByte('{')
		for _, k := range keys {
			b.WriteString(strconv.Quote(k) + ":")
			writeCanon(b, x[k])
			b.WriteByte(',')
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for _, v := range x {
			writeCanon(b, v)
			b.WriteByte(',')
		}
		b.WriteByte(']')
	case []MapEntry:
		b.WriteByte('<')
		for _, e := range x {
			writeCanon(b, e.Key)
			b.WriteByte('=')
			writeCanon(b, e.Value)
			b.WriteByte(',')
		}
		b.WriteByte('>')
	default:
		b.WriteString(strconv.Quote(formatAny(x)))
	}
}

func formatAny(x any) string {
	switch x := x.(type) {
	case nil:
		return "null"
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case []byte:
		return string(x)
	case Decimal:
		return x.String()
	}
	return fmt.Sprint(x)
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
