package reader

import (
	"math/big"
	"time"

	"github.com/kappa-lake/kappa/txlog"
)

// three-valued results of row evaluation.
const (
	triFalse int8 = 0
	triTrue  int8 = 1
	triNull  int8 = 2
)

// scalarAt returns the canonical scalar of row i of vector v (nil if null).
func scalarAt(v Vector, i int) any {
	if v.IsNull(i) {
		return nil
	}
	switch v := v.(type) {
	case *Int64Vector:
		return v.Values[i]
	case *Float64Vector:
		return v.Values[i]
	case *BytesVector:
		return v.String(i)
	case *BoolVector:
		return v.Values[i]
	case *DateVector:
		return int64(v.Days[i])
	case *TimestampVector:
		return v.Micros[i]
	case *DecimalVector:
		return v.Decimal(i).Rat()
	case *AnyVector:
		return goScalar(v.Values[i])
	}
	return nil
}

// goScalar converts a Go value (as produced by Batch.Value) to a scalar.
func goScalar(x any) any {
	switch x := x.(type) {
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case int64:
		return x
	case float32:
		return float64(x)
	case float64:
		return x
	case string:
		return x
	case []byte:
		return string(x)
	case bool:
		return x
	case Decimal:
		return x.Rat()
	case time.Time:
		return x.UnixMicro()
	}
	return nil
}

// columnGetter returns a function giving the scalar of column c at row i.
func columnGetter(b *Batch, colIdx map[string]int, c *bcol) func(i int) any {
	v := b.cols[colIdx[c.path[0]]]
	if len(c.path) == 1 {
		return func(i int) any { return scalarAt(v, i) }
	}
	isDate := false
	if p, ok := c.typ.(*txlog.PrimitiveType); ok && p.Name == txlog.TypeDate {
		isDate = true
	}
	return func(i int) any {
		x := v.Value(i)
		for _, p := range c.path[1:] {
			m, ok := x.(map[string]any)
			if !ok {
				return nil
			}
			x = m[p]
		}
		if t, ok := x.(time.Time); ok && isDate {
			return t.Unix() / 86400
		}
		return goScalar(x)
	}
}

// evalRows evaluates e for every row of b.
func evalRows(e bexpr, b *Batch, colIdx map[string]int) []int8 {
	n := b.n
	out := make([]int8, n)
	switch e := e.(type) {
	case bconst:
		r := triNull
		switch e.v {
		case true:
			r = triTrue
		case false:
			r = triFalse
		}
		for i := range out {
			out[i] = r
		}
	case band:
		l := evalRows(e.l, b, colIdx)
		r := evalRows(e.r, b, colIdx)
		for i := range out {
			switch {
			case l[i] == triFalse || r[i] == triFalse:
				out[i] = triFalse
			case l[i] == triTrue && r[i] == triTrue:
				out[i] = triTrue
			default:
				out[i] = triNull
			}
		}
	case bor:
		l := evalRows(e.l, b, colIdx)
		r := evalRows(e.r, b, colIdx)
		for i := range out {
			switch {
			case l[i] == triTrue || r[i] == triTrue:
				out[i] = triTrue
			case l[i] == triFalse && r[i] == triFalse:
				out[i] = triFalse
			default:
				out[i] = triNull
			}
		}
	case bnot:
		x := evalRows(e.e, b, colIdx)
		for i := range out {
			switch x[i] {
			case triTrue:
				out[i] = triFalse
			case triFalse:
				out[i] = triTrue
			default:
				out[i] = triNull
			}
		}
	case bisnull:
		get := columnGetter(b, colIdx, e.col)
		for i := range out {
			if (get(i) == nil) != e.not {
				out[i] = triTrue
			}
		}
	case bcmp:
		if e.col2 == nil && e.lit == nil {
			for i := range out {
				out[i] = triNull
			}
			return out
		}
		if e.col2 == nil && len(e.col.path) == 1 && fastCompare(e, b.cols[colIdx[e.col.path[0]]], out) {
			return out
		}
		get := columnGetter(b, colIdx, e.col)
		var get2 func(int) any
		if e.col2 != nil {
			get2 = columnGetter(b, colIdx, e.col2)
		}
		for i := range out {
			x := get(i)
			y := e.lit
			if get2 != nil {
				y = get2(i)
			}
			if x == nil || y == nil {
				out[i] = triNull
				continue
			}
			c, ok := cmpScalar(x, y)
			if !ok {
				out[i] = triNull
				continue
			}
			if e.op.holds(c) {
				out[i] = triTrue
			}
		}
	}
	return out
}

// fastCompare handles column-vs-literal comparisons on typed vectors.
func fastCompare(e bcmp, v Vector, out []int8) bool {
	switch v := v.(type) {
	case *Int64Vector:
		lit, ok := e.lit.(int64)
		if !ok {
			return false
		}
		cmpInts(e.op, v.Values, lit, &v.vecBase, out)
		return true
	case *TimestampVector:
		lit, ok := e.lit.(int64)
		if !ok {
			return false
		}
		cmpInts(e.op, v.Micros, lit, &v.vecBase, out)
		return true
	case *Float64Vector:
		lit, ok := e.lit.(float64)
		if !ok {
			return false
		}
		for i, x := range v.Values {
			if v.IsNull(i) {
				out[i] = triNull
				continue
			}
			c, _ := cmpFloat(x, lit)
			if e.op.holds(c) {
				out[i] = triTrue
			}
		}
		return true
	case *BytesVector:
		lit, ok := e.lit.(string)
		if !ok {
			return false
		}
		for i := 0; i < v.n; i++ {
			if v.IsNull(i) {
				out[i] = triNull
				continue
			}
			s := v.String(i)
			var c int
			switch {
			case s < lit:
				c = -1
			case s > lit:
				c = 1
			}
			if e.op.holds(c) {
				out[i] = triTrue
			}
		}
		return true
	case *DecimalVector:
		lit, ok := e.lit.(*big.Rat)
		if !ok || !v.IsSmall() {
			return false
		}
		// Compare unscaled values when the literal is exact at this scale.
		scaled := new(big.Rat).Mul(lit, new(big.Rat).SetInt(pow10(v.Scale)))
		if !scaled.IsInt() || !scaled.Num().IsInt64() {
			return false
		}
		cmpInts(e.op, v.Small, scaled.Num().Int64(), &v.vecBase, out)
		return true
	}
	return false
}

func cmpInts(op cmpOp, vals []int64, lit int64, vb *vecBase, out []int8) {
	for i, x := range vals {
		var c int
		switch {
		case x < lit:
			c = -1
		case x > lit:
			c = 1
		}
		if op.holds(c) {
			out[i] = triTrue
		}
	}
	if vb.valid.HasNulls() {
		for i := range vals {
			if vb.IsNull(i) {
				out[i] = triNull
			}
		}
	}
}
