package reader

import (
	"math"
	"math/big"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kappa-lake/kappa/txlog"
)

// Scalar functions of the SQL front end.

var doubleType = &txlog.PrimitiveType{Name: txlog.TypeDouble}

func bigInt(x int64) *big.Int { return big.NewInt(x) }

// scalarFunc is a bound scalar function: the argument types it wants (the
// binder casts to them) and its kernel.
type scalarFunc struct {
	args []vtype // wanted argument kinds; len must match
	out  vtype
	eval func(args []*col, n int) *col
}

// truncUnits for date_trunc, in Spark's spelling.
var truncUnits = map[string]string{
	"year": "year", "yyyy": "year", "yy": "year",
	"quarter": "quarter",
	"month":   "month", "mon": "month", "mm": "month",
	"week": "week",
	"day":  "day", "dd": "day",
	"hour":        "hour",
	"minute":      "minute",
	"second":      "second",
	"millisecond": "millisecond",
	"microsecond": "microsecond",
}

func truncMicros(us int64, unit string) int64 {
	switch unit {
	case "microsecond":
		return us
	case "millisecond":
		return floorDiv(us, 1000) * 1000
	case "second":
		return floorDiv(us, 1_000_000) * 1_000_000
	case "minute":
		return floorDiv(us, 60_000_000) * 60_000_000
	case "hour":
		return floorDiv(us, 3_600_000_000) * 3_600_000_000
	case "day":
		return floorDiv(us, 86_400_000_000) * 86_400_000_000
	}
	t := time.UnixMicro(us).UTC()
	switch unit {
	case "week":
		d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
		wd := (int(d.Weekday()) + 6) % 7 // Monday = 0
		return d.AddDate(0, 0, -wd).UnixMicro()
	case "month":
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	case "quarter":
		m := (int(t.Month())-1)/3*3 + 1
		return time.Date(t.Year(), time.Month(m), 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	}
	return time.Date(t.Year(), 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
}

// mapInt applies f to the int64 values of c (nulls propagate).
func mapInt(c *col, out vtype, n int, f func(int64) int64) *col {
	o := newCol(out, n)
	for i := 0; i < n; i++ {
		if c.null(i) {
			o.setNull(i)
			continue
		}
		o.i[i] = f(c.i[c.idx(i)])
	}
	return o
}

func tsField(name string) func(int64) int64 {
	return func(us int64) int64 {
		t := time.UnixMicro(us).UTC()
		switch name {
		case "year":
			return int64(t.Year())
		case "quarter":
			return int64((t.Month()-1)/3 + 1)
		case "month":
			return int64(t.Month())
		case "day":
			return int64(t.Day())
		case "dayofweek":
			return int64(t.Weekday()) + 1 // Sunday = 1 as in Spark
		case "dayofyear":
			return int64(t.YearDay())
		case "hour":
			return int64(t.Hour())
		case "minute":
			return int64(t.Minute())
		}
		return int64(t.Second())
	}
}

// lookupFunc binds a scalar function by name for the argument types. ok is
// false for an unknown name; err describes bad arguments.
func lookupFunc(e *astExpr, argTypes []vtype, args []*astExpr) (*scalarFunc, error) {
	name := e.name
	n := len(argTypes)
	want := func(k int) error {
		if n != k {
			return sqlErrorf(e.pos, "%s takes %d argument(s), got %d", name, k, n)
		}
		return nil
	}
	tsT := vtype{k: vTS}
	intT := vtype{k: vInt}
	strT := vtype{k: vStr}
	switch name {
	case "year", "quarter", "month", "day", "dayofmonth", "dayofweek", "dayofyear", "hour", "minute", "second":
		if err := want(1); err != nil {
			return nil, err
		}
		field := name
		if field == "dayofmonth" {
			field = "day"
		}
		f := tsField(field)
		return &scalarFunc{args: []vtype{tsT}, out: intT, eval: func(a []*col, n int) *col {
			return mapInt(a[0], intT, n, f)
		}}, nil
	case "date_trunc":
		if err := want(2); err != nil {
			return nil, err
		}
		unit := ""
		if args[0].kind == aLit && args[0].lit.kind == lStr {
			unit = truncUnits[strings.ToLower(args[0].lit.s)]
		}
		if unit == "" {
			return nil, sqlErrorf(args[0].pos, "date_trunc needs a unit literal: year, quarter, month, week, day, hour, minute, second")
		}
		return &scalarFunc{args: []vtype{strT, tsT}, out: tsT, eval: func(a []*col, n int) *col {
			return mapInt(a[1], tsT, n, func(us int64) int64 { return truncMicros(us, unit) })
		}}, nil
	case "trunc":
		// trunc(date, 'unit')
		if err := want(2); err != nil {
			return nil, err
		}
		unit := ""
		if args[1].kind == aLit && args[1].lit.kind == lStr {
			unit = truncUnits[strings.ToLower(args[1].lit.s)]
		}
		if unit == "" {
			return nil, sqlErrorf(args[1].pos, "trunc needs a unit literal: year, quarter, month, week")
		}
		dT := vtype{k: vDate}
		return &scalarFunc{args: []vtype{dT, strT}, out: dT, eval: func(a []*col, n int) *col {
			return mapInt(a[0], dT, n, func(d int64) int64 { return floorDiv(truncMicros(d*86400_000_000, unit), 86400_000_000) })
		}}, nil
	case "to_date", "date":
		if n == 2 {
			return nil, sqlErrorf(e.pos, "to_date with a format is not supported; use to_date(expr) on ISO dates")
		}
		if err := want(1); err != nil {
			return nil, err
		}
		dT := vtype{k: vDate}
		src := argTypes[0]
		if src.k != vStr && src.k != vDate {
			src = tsT
		}
		return &scalarFunc{args: []vtype{src}, out: dT, eval: func(a []*col, n int) *col { return castCol(a[0].expand(n), dT) }}, nil
	case "to_timestamp":
		if err := want(1); err != nil {
			return nil, err
		}
		return &scalarFunc{args: []vtype{argTypes[0]}, out: tsT, eval: func(a []*col, n int) *col { return castCol(a[0].expand(n), tsT) }}, nil
	case "abs":
		if err := want(1); err != nil {
			return nil, err
		}
		t := numericArg(argTypes[0])
		return &scalarFunc{args: []vtype{t}, out: t, eval: func(a []*col, n int) *col {
			c := a[0]
			o := newCol(t, n)
			for i := 0; i < n; i++ {
				if c.null(i) {
					o.setNull(i)
					continue
				}
				if t.k == vFloat {
					o.f[i] = math.Abs(c.f[c.idx(i)])
				} else {
					x := c.i[c.idx(i)]
					if x < 0 {
						x = -x
					}
					o.i[i] = x
				}
			}
			return o
		}}, nil
	case "round", "bround":
		if n != 1 && n != 2 {
			return nil, sqlErrorf(e.pos, "%s takes 1 or 2 arguments, got %d", name, n)
		}
		d := int64(0)
		if n == 2 {
			if args[1].kind != aLit || args[1].lit.kind != lInt {
				return nil, sqlErrorf(args[1].pos, "%s needs an integer literal scale", name)
			}
			d = args[1].lit.i
		}
		t := numericArg(argTypes[0])
		out := t
		if t.k == vDec {
			ns := int(d)
			if ns < 0 {
				ns = 0
			}
			if ns > t.scale {
				ns = t.scale
			}
			out = vtype{k: vDec, scale: ns}
		}
		at := []vtype{t}
		if n == 2 {
			at = append(at, intT)
		}
		half := name == "bround"
		return &scalarFunc{args: at, out: out, eval: func(a []*col, n int) *col {
			c := a[0]
			o := newCol(out, n)
			for i := 0; i < n; i++ {
				if c.null(i) {
					o.setNull(i)
					continue
				}
				j := c.idx(i)
				switch t.k {
				case vFloat:
					o.f[i] = roundFloat(c.f[j], int(d), half)
				case vDec:
					if d >= 0 {
						o.i[i] = rescale(c.i[j], t.scale, out.scale)
					} else {
						o.i[i] = roundInt(rescale(c.i[j], t.scale, 0), int(d))
					}
				default:
					o.i[i] = roundInt(c.i[j], int(d))
				}
			}
			return o
		}}, nil
	case "lower", "upper", "lcase", "ucase", "trim", "ltrim", "rtrim":
		if err := want(1); err != nil {
			return nil, err
		}
		var f func(string) string
		switch name {
		case "lower", "lcase":
			f = strings.ToLower
		case "upper", "ucase":
			f = strings.ToUpper
		case "trim":
			f = func(s string) string { return strings.Trim(s, " ") }
		case "ltrim":
			f = func(s string) string { return strings.TrimLeft(s, " ") }
		default:
			f = func(s string) string { return strings.TrimRight(s, " ") }
		}
		return &scalarFunc{args: []vtype{strT}, out: strT, eval: func(a []*col, n int) *col {
			c := a[0]
			o := newCol(strT, n)
			for i := 0; i < n; i++ {
				if c.null(i) {
					o.setNull(i)
					continue
				}
				o.s[i] = f(c.s[c.idx(i)])
			}
			return o
		}}, nil
	case "length", "char_length", "character_length":
		if err := want(1); err != nil {
			return nil, err
		}
		return &scalarFunc{args: []vtype{strT}, out: intT, eval: func(a []*col, n int) *col {
			c := a[0]
			o := newCol(intT, n)
			for i := 0; i < n; i++ {
				if c.null(i) {
					o.setNull(i)
					continue
				}
				o.i[i] = int64(utf8.RuneCountInString(c.s[c.idx(i)]))
			}
			return o
		}}, nil
	case "concat":
		at := make([]vtype, n)
		for i := range at {
			at[i] = strT
		}
		return &scalarFunc{args: at, out: strT, eval: func(a []*col, n int) *col { return concatCols(a, n) }}, nil
	case "coalesce", "ifnull", "nvl":
		if n == 0 {
			return nil, sqlErrorf(e.pos, "%s needs at least one argument", name)
		}
		t, err := commonType(argTypes, e.pos, name)
		if err != nil {
			return nil, err
		}
		at := make([]vtype, n)
		for i := range at {
			at[i] = t
		}
		return &scalarFunc{args: at, out: t, eval: func(a []*col, n int) *col {
			o := newCol(t, n)
			for i := 0; i < n; i++ {
				done := false
				for _, c := range a {
					if !c.null(i) {
						o.copyFrom(i, c, i)
						done = true
						break
					}
				}
				if !done {
					o.setNull(i)
				}
			}
			return o
		}}, nil
	}
	return nil, nil
}

func concatCols(a []*col, n int) *col {
	o := newCol(vtype{k: vStr}, n)
	for i := 0; i < n; i++ {
		var b strings.Builder
		null := false
		for _, c := range a {
			if c.null(i) {
				null = true
				break
			}
			b.WriteString(c.s[c.idx(i)])
		}
		if null {
			o.setNull(i)
		} else {
			o.s[i] = b.String()
		}
	}
	return o
}

func numericArg(t vtype) vtype {
	switch t.k {
	case vInt, vDec:
		return vtype{k: t.k, scale: t.scale}
	}
	return vtype{k: vFloat}
}

func roundFloat(x float64, d int, halfEven bool) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return x
	}
	p := math.Pow(10, float64(d))
	y := x * p
	if halfEven {
		return math.RoundToEven(y) / p
	}
	// Spark rounds HALF_UP on the decimal representation: use the
	// shortest decimal form to avoid 2.675 -> 2.67 surprises.
	r, ok := new(big.Rat).SetString(formatDouble(x))
	if ok && d >= 0 && d <= 15 {
		r.Mul(r, new(big.Rat).SetInt(pow10(d)))
		num, den := r.Num(), r.Denom()
		q, m := new(big.Int).QuoRem(num, den, new(big.Int))
		m2 := new(big.Int).Mul(new(big.Int).Abs(m), big.NewInt(2))
		if m2.Cmp(den) >= 0 {
			if num.Sign() < 0 {
				q.Sub(q, big.NewInt(1))
			} else {
				q.Add(q, big.NewInt(1))
			}
		}
		f, _ := new(big.Rat).SetFrac(q, pow10(d)).Float64()
		return f
	}
	return math.Round(y) / p
}

func roundInt(x int64, d int) int64 {
	if d >= 0 {
		return x
	}
	if -d > 18 {
		return 0
	}
	return rescale(x, -d, 0) * pow10i[-d]
}

// commonType is the type values of all ts can be converted to (COALESCE,
// CASE, IN lists, comparisons).
func commonType(ts []vtype, pos Pos, what string) (vtype, error) {
	var out vtype
	for _, t := range ts {
		if t.k == vNull {
			continue
		}
		if out.k == vNull {
			out = vtype{k: t.k, scale: t.scale}
			continue
		}
		u, ok := unify(out, t)
		if !ok {
			return vtype{}, sqlErrorf(pos, "%s: incompatible types %s and %s", what, out, t)
		}
		out = u
	}
	return out, nil
}

// unify returns the common type of two kinds.
func unify(a, b vtype) (vtype, bool) {
	if a.k == vNull {
		return vtype{k: b.k, scale: b.scale}, true
	}
	if b.k == vNull {
		return vtype{k: a.k, scale: a.scale}, true
	}
	if a.k == b.k {
		if a.k == vDec {
			return vtype{k: vDec, scale: max(a.scale, b.scale)}, true
		}
		return vtype{k: a.k}, true
	}
	if a.numeric() && b.numeric() {
		if a.k == vFloat || b.k == vFloat {
			return vtype{k: vFloat}, true
		}
		return vtype{k: vDec, scale: max(a.scale, b.scale)}, true // int + dec
	}
	if a.k == vDate && b.k == vTS || a.k == vTS && b.k == vDate {
		return vtype{k: vTS}, true
	}
	// a string against a typed value: the string is converted.
	if a.k == vStr && b.k != vAny {
		return vtype{k: b.k, scale: b.scale}, true
	}
	if b.k == vStr && a.k != vAny {
		return vtype{k: a.k, scale: a.scale}, true
	}
	return vtype{}, false
}
