package reader

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
	"time"

	"github.com/kappa-lake/kappa/txlog"
)

// ErrInvalidPredicate reports a predicate that cannot be bound to the table
// schema (unknown column, literal of the wrong type).
var ErrInvalidPredicate = errors.New("invalid predicate")

// Expr is a predicate expression tree. Build it with Col, Lit and the
// comparison and logical constructors. Evaluation follows SQL three-valued
// logic: a row is kept only when the predicate is true (not null).
type Expr interface {
	String() string
	isExpr()
}

type (
	colExpr struct{ name string }
	litExpr struct{ v any }
)

type cmpOp int

const (
	opEq cmpOp = iota
	opNe
	opLt
	opLe
	opGt
	opGe
)

var opNames = [...]string{"=", "!=", "<", "<=", ">", ">="}

type cmpExpr struct {
	op   cmpOp
	l, r Expr
}
type (
	andExpr struct{ l, r Expr }
	orExpr  struct{ l, r Expr }
	notExpr struct{ e Expr }
	inExpr  struct {
		e    Expr
		list []Expr
	}
)

type isNullExpr struct {
	e   Expr
	not bool
}

func (colExpr) isExpr()    {}
func (litExpr) isExpr()    {}
func (cmpExpr) isExpr()    {}
func (andExpr) isExpr()    {}
func (orExpr) isExpr()     {}
func (notExpr) isExpr()    {}
func (inExpr) isExpr()     {}
func (isNullExpr) isExpr() {}

func (e colExpr) String() string { return e.name }
func (e litExpr) String() string { return fmt.Sprintf("%#v", e.v) }
func (e cmpExpr) String() string {
	return "(" + e.l.String() + " " + opNames[e.op] + " " + e.r.String() + ")"
}
func (e andExpr) String() string { return "(" + e.l.String() + " AND " + e.r.String() + ")" }
func (e orExpr) String() string  { return "(" + e.l.String() + " OR " + e.r.String() + ")" }
func (e notExpr) String() string { return "(NOT " + e.e.String() + ")" }
func (e isNullExpr) String() string {
	return "(" + e.e.String() + map[bool]string{false: " IS NULL)", true: " IS NOT NULL)"}[e.not]
}

func (e inExpr) String() string {
	parts := make([]string, len(e.list))
	for i, x := range e.list {
		parts[i] = x.String()
	}
	return "(" + e.e.String() + " IN (" + strings.Join(parts, ", ") + "))"
}

// Col references a column by name; a dotted name that is not a top-level
// column refers to a nested struct field ("a.b").
func Col(name string) Expr { return colExpr{name} }

// Lit is a literal: nil, bool, integers, floats, string, []byte, time.Time,
// Decimal, *big.Rat. Strings are parsed when compared with date, timestamp
// and decimal columns ("2024-01-31", "2024-01-31 10:00:00", "12.50").
func Lit(v any) Expr { return litExpr{v} }

// Eq is l = r.
func Eq(l, r Expr) Expr { return cmpExpr{opEq, l, r} }

// Ne is l != r.
func Ne(l, r Expr) Expr { return cmpExpr{opNe, l, r} }

// Lt is l < r.
func Lt(l, r Expr) Expr { return cmpExpr{opLt, l, r} }

// Le is l <= r.
func Le(l, r Expr) Expr { return cmpExpr{opLe, l, r} }

// Gt is l > r.
func Gt(l, r Expr) Expr { return cmpExpr{opGt, l, r} }

// Ge is l >= r.
func Ge(l, r Expr) Expr { return cmpExpr{opGe, l, r} }

// And is the conjunction of its operands (true when there are none).
func And(es ...Expr) Expr {
	if len(es) == 0 {
		return Eq(Lit(true), Lit(true))
	}
	e := es[0]
	for _, x := range es[1:] {
		e = andExpr{e, x}
	}
	return e
}

// Or is the disjunction of its operands (false when there are none).
func Or(es ...Expr) Expr {
	if len(es) == 0 {
		return Eq(Lit(true), Lit(false))
	}
	e := es[0]
	for _, x := range es[1:] {
		e = orExpr{e, x}
	}
	return e
}

// Not negates e.
func Not(e Expr) Expr { return notExpr{e} }

// In is e IN (list...).
func In(e Expr, list ...Expr) Expr { return inExpr{e, list} }

// IsNull is e IS NULL.
func IsNull(e Expr) Expr { return isNullExpr{e, false} }

// IsNotNull is e IS NOT NULL.
func IsNotNull(e Expr) Expr { return isNullExpr{e, true} }

// Between is lo <= e AND e <= hi.
func Between(e, lo, hi Expr) Expr { return And(Ge(e, lo), Le(e, hi)) }

// scalars: canonical comparable forms. int64 (integers, date days,
// timestamp micros), float64, string (string and binary), bool, *big.Rat
// (decimals). nil is null.

func cmpScalar(a, b any) (int, bool) {
	switch x := a.(type) {
	case int64:
		switch y := b.(type) {
		case int64:
			return cmp3(x < y, x > y), true
		case float64:
			return cmpFloat(float64(x), y)
		case *big.Rat:
			return new(big.Rat).SetInt64(x).Cmp(y), true
		}
	case float64:
		switch y := b.(type) {
		case float64:
			return cmpFloat(x, y)
		case int64:
			return cmpFloat(x, float64(y))
		case *big.Rat:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return cmpFloat(x, 0)
			}
			r, _ := new(big.Rat).SetString(fmt.Sprint(x))
			if r == nil {
				return 0, false
			}
			return r.Cmp(y), true
		}
	case string:
		if y, ok := b.(string); ok {
			return strings.Compare(x, y), true
		}
	case bool:
		if y, ok := b.(bool); ok {
			return cmp3(!x && y, x && !y), true
		}
	case *big.Rat:
		switch y := b.(type) {
		case *big.Rat:
			return x.Cmp(y), true
		case int64:
			return x.Cmp(new(big.Rat).SetInt64(y)), true
		case float64:
			c, ok := cmpScalar(y, x)
			return -c, ok
		}
	}
	return 0, false
}

func cmp3(lt, gt bool) int {
	switch {
	case lt:
		return -1
	case gt:
		return 1
	}
	return 0
}

func cmpFloat(x, y float64) (int, bool) {
	if math.IsNaN(x) || math.IsNaN(y) {
		// Spark orders NaN above every other value and equal to itself.
		switch {
		case math.IsNaN(x) && math.IsNaN(y):
			return 0, true
		case math.IsNaN(x):
			return 1, true
		default:
			return -1, true
		}
	}
	return cmp3(x < y, x > y), true
}

func (op cmpOp) holds(c int) bool {
	switch op {
	case opEq:
		return c == 0
	case opNe:
		return c != 0
	case opLt:
		return c < 0
	case opLe:
		return c <= 0
	case opGt:
		return c > 0
	default:
		return c >= 0
	}
}

func (op cmpOp) flip() cmpOp {
	switch op {
	case opLt:
		return opGt
	case opLe:
		return opGe
	case opGt:
		return opLt
	case opGe:
		return opLe
	}
	return op
}

func (op cmpOp) negate() cmpOp {
	return [...]cmpOp{opNe, opEq, opGe, opGt, opLe, opLt}[op]
}

// coerceLit converts a Go literal to the canonical scalar of type t.
func coerceLit(t txlog.DataType, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch x := v.(type) {
	case int:
		v = int64(x)
	case int8:
		v = int64(x)
	case int16:
		v = int64(x)
	case int32:
		v = int64(x)
	case uint8:
		v = int64(x)
	case uint16:
		v = int64(x)
	case uint32:
		v = int64(x)
	case uint:
		v = int64(x)
	case uint64:
		v = int64(x)
	case float32:
		v = float64(x)
	case []byte:
		v = string(x)
	case Decimal:
		v = x.Rat()
	}
	name := ""
	if p, ok := t.(*txlog.PrimitiveType); ok {
		name = p.Name
	}
	if _, ok := t.(*txlog.DecimalType); ok {
		name = "decimal"
	}
	bad := func() (any, error) {
		return nil, fmt.Errorf("%w: literal %#v does not fit type %s", ErrInvalidPredicate, v, t)
	}
	switch name {
	case txlog.TypeByte, txlog.TypeShort, txlog.TypeInteger, txlog.TypeLong, txlog.TypeFloat, txlog.TypeDouble:
		switch x := v.(type) {
		case int64, float64:
			return x, nil
		case *big.Rat:
			f, _ := x.Float64()
			return f, nil
		case string:
			return parseNumber(t, x)
		}
		return bad()
	case "decimal":
		switch x := v.(type) {
		case int64:
			return new(big.Rat).SetInt64(x), nil
		case float64:
			return x, nil
		case *big.Rat:
			return x, nil
		case string:
			r, ok := new(big.Rat).SetString(strings.TrimSpace(x))
			if !ok {
				return bad()
			}
			return r, nil
		}
		return bad()
	case txlog.TypeString, txlog.TypeBinary:
		if s, ok := v.(string); ok {
			return s, nil
		}
		return bad()
	case txlog.TypeBoolean:
		if b, ok := v.(bool); ok {
			return b, nil
		}
		return bad()
	case txlog.TypeDate:
		switch x := v.(type) {
		case time.Time:
			y, m, d := x.Date()
			return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400, nil
		case string:
			d, err := parseDate(x)
			if err != nil {
				return bad()
			}
			return d, nil
		case int64:
			return x, nil
		}
		return bad()
	case txlog.TypeTimestamp, txlog.TypeTimestampNTZ:
		switch x := v.(type) {
		case time.Time:
			if name == txlog.TypeTimestampNTZ {
				// Wall clock of the given time, read as UTC.
				x = time.Date(x.Year(), x.Month(), x.Day(), x.Hour(), x.Minute(), x.Second(), x.Nanosecond(), time.UTC)
			}
			return x.UnixMicro(), nil
		case string:
			us, err := parseTimestamp(x)
			if err != nil {
				return bad()
			}
			return us, nil
		case int64:
			return x, nil
		}
		return bad()
	}
	return bad()
}

// bound expressions: columns resolved against the scan schema.

type bcol struct {
	name string   // as written in the predicate
	path []string // logical path (top-level field first)
	phys []string // physical path (stats and partition values keys)
	typ  txlog.DataType
	part bool // a partition column
	top  int  // index of the top-level field in the table schema
}

type bexpr interface{ isBound() }

type bcmp struct {
	op   cmpOp
	col  *bcol
	lit  any   // canonical scalar (nil = NULL literal)
	col2 *bcol // column-to-column comparison (row filtering only)
}
type (
	bconst  struct{ v any } // true, false or nil (unknown)
	band    struct{ l, r bexpr }
	bor     struct{ l, r bexpr }
	bnot    struct{ e bexpr }
	bisnull struct {
		col *bcol
		not bool
	}
)

func (bcmp) isBound()    {}
func (bconst) isBound()  {}
func (band) isBound()    {}
func (bor) isBound()     {}
func (bnot) isBound()    {}
func (bisnull) isBound() {}

type binder struct {
	schema   *txlog.StructType
	partCols map[string]bool
	mode     mappingMode
	cols     map[string]*bcol
}

func (b *binder) col(name string) (*bcol, error) {
	if c, ok := b.cols[name]; ok {
		return c, nil
	}
	var path []string
	if b.schema.Field(name) != nil {
		path = []string{name}
	} else {
		path = strings.Split(name, ".")
	}
	c := &bcol{name: name, path: path}
	var t txlog.DataType = b.schema
	for i, p := range path {
		st, ok := t.(*txlog.StructType)
		if !ok {
			return nil, fmt.Errorf("%w: column %q: %q is not a struct", ErrInvalidPredicate, name, strings.Join(path[:i], "."))
		}
		f := st.Field(p)
		if f == nil {
			// Spark resolves column names case-insensitively.
			for _, g := range st.Fields {
				if strings.EqualFold(g.Name, p) {
					f = g
					break
				}
			}
		}
		if f == nil {
			return nil, fmt.Errorf("%w: unknown column %q", ErrInvalidPredicate, name)
		}
		if i == 0 {
			for j, g := range b.schema.Fields {
				if g == f {
					c.top = j
				}
			}
			c.part = b.partCols[f.Name]
		}
		c.path[i] = f.Name
		c.phys = append(c.phys, physicalName(f, b.mode))
		t = f.Type
	}
	c.typ = t
	b.cols[name] = c
	return c, nil
}

func (b *binder) bind(e Expr) (bexpr, error) {
	switch e := e.(type) {
	case cmpExpr:
		lc, lok := e.l.(colExpr)
		rc, rok := e.r.(colExpr)
		ll, llok := e.l.(litExpr)
		rl, rlok := e.r.(litExpr)
		switch {
		case lok && rlok:
			c, err := b.col(lc.name)
			if err != nil {
				return nil, err
			}
			v, err := coerceLit(c.typ, rl.v)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", e, err)
			}
			return bcmp{op: e.op, col: c, lit: v}, nil
		case llok && rok:
			return b.bind(cmpExpr{e.op.flip(), e.r, e.l})
		case lok && rok:
			c1, err := b.col(lc.name)
			if err != nil {
				return nil, err
			}
			c2, err := b.col(rc.name)
			if err != nil {
				return nil, err
			}
			return bcmp{op: e.op, col: c1, col2: c2}, nil
		case llok && rlok:
			if ll.v == nil || rl.v == nil {
				return bconst{nil}, nil
			}
			x, err1 := coerceLit(&txlog.PrimitiveType{Name: litTypeName(ll.v)}, ll.v)
			y, err2 := coerceLit(&txlog.PrimitiveType{Name: litTypeName(ll.v)}, rl.v)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("%w: cannot compare %s", ErrInvalidPredicate, e)
			}
			c, ok := cmpScalar(x, y)
			if !ok {
				return nil, fmt.Errorf("%w: cannot compare %s", ErrInvalidPredicate, e)
			}
			return bconst{e.op.holds(c)}, nil
		}
		return nil, fmt.Errorf("%w: comparison %s must be between columns and literals", ErrInvalidPredicate, e)
	case andExpr:
		l, err := b.bind(e.l)
		if err != nil {
			return nil, err
		}
		r, err := b.bind(e.r)
		if err != nil {
			return nil, err
		}
		return band{l, r}, nil
	case orExpr:
		l, err := b.bind(e.l)
		if err != nil {
			return nil, err
		}
		r, err := b.bind(e.r)
		if err != nil {
			return nil, err
		}
		return bor{l, r}, nil
	case notExpr:
		x, err := b.bind(e.e)
		if err != nil {
			return nil, err
		}
		return bnot{x}, nil
	case inExpr:
		if len(e.list) == 0 {
			return bconst{false}, nil
		}
		var out bexpr
		for _, x := range e.list {
			y, err := b.bind(Eq(e.e, x))
			if err != nil {
				return nil, err
			}
			if out == nil {
				out = y
			} else {
				out = bor{out, y}
			}
		}
		return out, nil
	case isNullExpr:
		c, ok := e.e.(colExpr)
		if !ok {
			if l, ok := e.e.(litExpr); ok {
				return bconst{(l.v == nil) != e.not}, nil
			}
			return nil, fmt.Errorf("%w: IS NULL needs a column: %s", ErrInvalidPredicate, e)
		}
		bc, err := b.col(c.name)
		if err != nil {
			return nil, err
		}
		return bisnull{bc, e.not}, nil
	case colExpr:
		c, err := b.col(e.name)
		if err != nil {
			return nil, err
		}
		if p, ok := c.typ.(*txlog.PrimitiveType); !ok || p.Name != txlog.TypeBoolean {
			return nil, fmt.Errorf("%w: column %q is not boolean", ErrInvalidPredicate, e.name)
		}
		return bcmp{op: opEq, col: c, lit: true}, nil
	case litExpr:
		if e.v == nil {
			return bconst{nil}, nil
		}
		if v, ok := e.v.(bool); ok {
			return bconst{v}, nil
		}
	}
	return nil, fmt.Errorf("%w: unsupported expression %v", ErrInvalidPredicate, e)
}

func litTypeName(v any) string {
	switch v.(type) {
	case string, []byte:
		return txlog.TypeString
	case bool:
		return txlog.TypeBoolean
	case time.Time:
		return txlog.TypeTimestamp
	case Decimal, *big.Rat:
		return "decimal(38,18)"
	}
	return txlog.TypeDouble
}

// Range (stats) evaluation: can some row make the expression true / false?

// colRange is what is known about one column within a file or row group.
type colRange struct {
	min, max   any   // canonical scalars; nil = unknown
	nullCount  int64 // -1 = unknown
	numRecords int64 // -1 = unknown
}

type rangeFunc func(c *bcol) colRange

// mayMatch reports whether some row may satisfy e (false only when it is
// provable that no row does).
func mayMatch(e bexpr, rf rangeFunc) bool {
	t, _ := evalRange(e, rf)
	return t
}

func evalRange(e bexpr, rf rangeFunc) (canTrue, canFalse bool) {
	switch e := e.(type) {
	case bconst:
		switch e.v {
		case true:
			return true, false
		case false:
			return false, true
		}
		return false, false
	case band:
		lt, lf := evalRange(e.l, rf)
		rt, rf2 := evalRange(e.r, rf)
		return lt && rt, lf || rf2
	case bor:
		lt, lf := evalRange(e.l, rf)
		rt, rf2 := evalRange(e.r, rf)
		return lt || rt, lf && rf2
	case bnot:
		t, f := evalRange(e.e, rf)
		return f, t
	case bisnull:
		r := rf(e.col)
		hasNull := r.nullCount != 0
		hasValue := r.nullCount < 0 || r.numRecords < 0 || r.nullCount < r.numRecords
		if r.numRecords == 0 {
			return false, false
		}
		if e.not {
			return hasValue, hasNull
		}
		return hasNull, hasValue
	case bcmp:
		if e.col2 != nil {
			return true, true
		}
		if e.lit == nil {
			return false, false
		}
		r := rf(e.col)
		if r.numRecords == 0 || (r.nullCount >= 0 && r.numRecords >= 0 && r.nullCount >= r.numRecords) {
			return false, false
		}
		return rangeCan(e.op, r, e.lit), rangeCan(e.op.negate(), r, e.lit)
	}
	return true, true
}

// rangeCan: can some non-null value v in [min, max] satisfy v op lit?
func rangeCan(op cmpOp, r colRange, lit any) bool {
	cmpMin, okMin := 0, false
	cmpMax, okMax := 0, false
	if r.min != nil {
		cmpMin, okMin = cmpScalar(r.min, lit)
	}
	if r.max != nil {
		cmpMax, okMax = cmpScalar(r.max, lit)
	}
	switch op {
	case opEq:
		return (!okMin || cmpMin <= 0) && (!okMax || cmpMax >= 0)
	case opNe:
		return !(okMin && okMax && cmpMin == 0 && cmpMax == 0)
	case opLt:
		return !okMin || cmpMin < 0
	case opLe:
		return !okMin || cmpMin <= 0
	case opGt:
		return !okMax || cmpMax > 0
	default:
		return !okMax || cmpMax >= 0
	}
}
