package reader

import (
	"strconv"
	"strings"

	"github.com/kappa-lake/kappa/txlog"
)

// Binding: AST expressions become typed evaluators over a frame of
// columns. Phase 1 frames hold table columns (as read by the scan); phase 2
// frames (aggregate queries) hold the group keys followed by the aggregate
// results.

type frame struct {
	cols []*col
	n    int
}

type bexp struct {
	t     vtype
	konst bool
	eval  func(fr *frame) *col
	src   int // 1 + frame index of a plain phase-1 column reference, else 0
}

// srcScope resolves column names against the table schema and records the
// columns the query reads, in frame order.
type srcScope struct {
	schema *txlog.StructType
	quals  []string // table name / alias accepted as a qualifier
	used   []string
	idx    map[string]int
}

func (s *srcScope) column(e *astExpr) (*bexp, error) {
	parts := strings.Split(e.name, ".")
	if len(parts) > 1 && s.schema.Field(e.name) == nil && s.findField(parts[0]) == nil {
		for _, q := range s.quals {
			if strings.EqualFold(q, parts[0]) {
				parts = parts[1:]
				break
			}
		}
	}
	var f *txlog.StructField
	if g := s.findField(strings.Join(parts, ".")); g != nil {
		f, parts = g, nil
	} else {
		f = s.findField(parts[0])
		parts = parts[1:]
	}
	if f == nil {
		return nil, sqlErrorf(e.pos, "unknown column %s", e.name)
	}
	i, ok := s.idx[f.Name]
	if !ok {
		i = len(s.used)
		s.idx[f.Name] = i
		s.used = append(s.used, f.Name)
	}
	if len(parts) == 0 {
		t := kindOf(f.Type)
		return &bexp{t: t, src: i + 1, eval: func(fr *frame) *col { return fr.cols[i].strs() }}, nil
	}
	// nested struct field access
	typ := f.Type
	path := make([]string, 0, len(parts))
	for _, p := range parts {
		st, ok := typ.(*txlog.StructType)
		if !ok {
			return nil, sqlErrorf(e.pos, "%s: %s is not a struct", e.name, p)
		}
		var g *txlog.StructField
		for _, h := range st.Fields {
			if strings.EqualFold(h.Name, p) {
				g = h
				break
			}
		}
		if g == nil {
			return nil, sqlErrorf(e.pos, "unknown field %s in %s", p, e.name)
		}
		path = append(path, g.Name)
		typ = g.Type
	}
	t := kindOf(typ)
	return &bexp{t: t, eval: func(fr *frame) *col {
		src := fr.cols[i]
		vals := make([]any, fr.n)
		for r := 0; r < fr.n; r++ {
			if src.null(r) {
				continue
			}
			x := src.a[src.idx(r)]
			for _, p := range path {
				m, ok := x.(map[string]any)
				if !ok {
					x = nil
					break
				}
				x = m[p]
			}
			vals[r] = x
		}
		return goValueCol(t, vals)
	}}, nil
}

func (s *srcScope) findField(name string) *txlog.StructField {
	if f := s.schema.Field(name); f != nil {
		return f
	}
	for _, f := range s.schema.Fields {
		if strings.EqualFold(f.Name, name) {
			return f
		}
	}
	return nil
}

// aggSpec is one aggregate call of a query.
type aggSpec struct {
	fn  string // count, count_star, sum, avg, min, max, count_distinct, approx_count_distinct
	arg *bexp  // nil for count_star
	out vtype
	key string // canonical text (deduplication)
}

// postScope resolves phase-2 expressions: group keys and aggregates.
type postScope struct {
	keyStr   []string
	keyTypes []vtype
	aggs     []*aggSpec
	pre      *sqlBinder
}

type sqlBinder struct {
	src    *srcScope
	post   *postScope
	clause string
}

var aggNames = map[string]bool{
	"count": true, "sum": true, "avg": true, "mean": true, "min": true, "max": true,
	"approx_count_distinct": true, "count_if": false,
}

func isAggCall(e *astExpr) bool { return e.kind == aFunc && aggNames[e.name] }

// hasAgg reports whether e contains an aggregate call.
func hasAgg(e *astExpr) bool {
	if e == nil {
		return false
	}
	if isAggCall(e) {
		return true
	}
	for _, a := range e.args {
		if hasAgg(a) {
			return true
		}
	}
	return hasAgg(e.els)
}

func konstCol(c *col) *bexp {
	c.konst = true
	return &bexp{t: c.t, konst: true, eval: func(*frame) *col { return c }}
}

func (b *sqlBinder) bind(e *astExpr) (*bexp, error) {
	if p := b.post; p != nil {
		s := e.String()
		for i, k := range p.keyStr {
			if k == s {
				t := p.keyTypes[i]
				return &bexp{t: t, eval: func(fr *frame) *col { return fr.cols[i] }}, nil
			}
		}
		if isAggCall(e) {
			return b.bindAgg(e)
		}
		if e.kind == aIdent {
			return nil, sqlErrorf(e.pos, "column %s must appear in GROUP BY or be used in an aggregate function", e.name)
		}
	}
	switch e.kind {
	case aIdent:
		return b.src.column(e)
	case aLit:
		return bindLit(e)
	case aStar:
		return nil, sqlErrorf(e.pos, "* is only allowed in the select list and in COUNT(*)")
	case aUnary:
		x, err := b.bind(e.args[0])
		if err != nil {
			return nil, err
		}
		if e.name == "NOT" {
			x, err = b.boolArg(x, e.args[0])
			if err != nil {
				return nil, err
			}
			return &bexp{t: vtype{k: vBool}, eval: func(fr *frame) *col { return notCol(x.eval(fr), fr.n) }}, nil
		}
		if x.t.k == vStr {
			x = coerce(x, vtype{k: vFloat})
		}
		if !x.t.numeric() && x.t.k != vNull {
			return nil, sqlErrorf(e.pos, "unary minus needs a number, got %s", x.t)
		}
		t := numericArg(x.t)
		x = coerce(x, t)
		return &bexp{t: t, eval: func(fr *frame) *col { return negate(x.eval(fr), fr.n) }}, nil
	case aBinary:
		return b.bindBinary(e)
	case aIn:
		var or *astExpr
		for _, v := range e.args[1:] {
			eq := &astExpr{kind: aBinary, pos: v.pos, name: "=", args: []*astExpr{e.args[0], v}}
			if or == nil {
				or = eq
			} else {
				or = &astExpr{kind: aBinary, pos: e.pos, name: "OR", args: []*astExpr{or, eq}}
			}
		}
		if e.not {
			or = &astExpr{kind: aUnary, pos: e.pos, name: "NOT", args: []*astExpr{or}}
		}
		return b.bind(or)
	case aBetween:
		x := &astExpr{kind: aBinary, pos: e.pos, name: "AND", args: []*astExpr{
			{kind: aBinary, pos: e.pos, name: ">=", args: []*astExpr{e.args[0], e.args[1]}},
			{kind: aBinary, pos: e.pos, name: "<=", args: []*astExpr{e.args[0], e.args[2]}},
		}}
		if e.not {
			x = &astExpr{kind: aUnary, pos: e.pos, name: "NOT", args: []*astExpr{x}}
		}
		return b.bind(x)
	case aIsNull:
		x, err := b.bind(e.args[0])
		if err != nil {
			return nil, err
		}
		not := e.not
		return &bexp{t: vtype{k: vBool}, eval: func(fr *frame) *col { return isNullCol(x.eval(fr), not, fr.n) }}, nil
	case aLike:
		x, err := b.bind(e.args[0])
		if err != nil {
			return nil, err
		}
		p, err := b.bind(e.args[1])
		if err != nil {
			return nil, err
		}
		x, p = coerce(x, vtype{k: vStr}), coerce(p, vtype{k: vStr})
		not, fold := e.not, e.name == "ILIKE"
		return &bexp{t: vtype{k: vBool}, eval: func(fr *frame) *col { return likeCol(x.eval(fr), p.eval(fr), not, fold, fr.n) }}, nil
	case aCast:
		x, err := b.bind(e.args[0])
		if err != nil {
			return nil, err
		}
		t, err := castTarget(e)
		if err != nil {
			return nil, err
		}
		if x.t.k == vAny && t.k != vStr {
			return nil, sqlErrorf(e.pos, "cannot cast a nested value to %s", e.typ.text)
		}
		if x.t.k == t.k && x.t.dt != nil && t.dt == nil {
			// Same value kind, other declared type (binary -> string): the
			// result must lose the column's type, or it prints as binary.
			return &bexp{t: t, konst: x.konst, eval: func(fr *frame) *col { return castCol(x.eval(fr), t) }}, nil
		}
		return coerce(x, t), nil
	case aCase:
		return b.bindCase(e)
	case aFunc:
		if isAggCall(e) {
			return nil, sqlErrorf(e.pos, "aggregate function %s is not allowed in %s", strings.ToUpper(e.name), b.clause)
		}
		args := make([]*bexp, len(e.args))
		types := make([]vtype, len(e.args))
		for i, a := range e.args {
			x, err := b.bind(a)
			if err != nil {
				return nil, err
			}
			args[i], types[i] = x, x.t
		}
		f, err := lookupFunc(e, types, e.args)
		if err != nil {
			return nil, err
		}
		if f == nil {
			return nil, sqlErrorf(e.pos, "unknown function %s", e.name)
		}
		for i := range args {
			if args[i].t.k == vAny {
				return nil, sqlErrorf(e.args[i].pos, "%s does not take nested values", e.name)
			}
			args[i] = coerce(args[i], f.args[i])
		}
		return &bexp{t: f.out, eval: func(fr *frame) *col {
			cols := make([]*col, len(args))
			for i, a := range args {
				cols[i] = a.eval(fr)
			}
			return f.eval(cols, fr.n)
		}}, nil
	}
	return nil, sqlErrorf(e.pos, "unsupported expression")
}

func castTarget(e *astExpr) (vtype, error) {
	switch e.typ.name {
	case "integer", "long", "short", "byte":
		return vtype{k: vInt}, nil
	case "double", "float":
		return vtype{k: vFloat}, nil
	case "string":
		return vtype{k: vStr}, nil
	case "binary":
		return vtype{k: vStr, dt: &txlog.PrimitiveType{Name: txlog.TypeBinary}}, nil
	case "boolean":
		return vtype{k: vBool}, nil
	case "date":
		return vtype{k: vDate}, nil
	case "timestamp":
		return vtype{k: vTS}, nil
	case "decimal":
		if e.typ.prec > 18 {
			return vtype{k: vFloat}, nil
		}
		return vtype{k: vDec, scale: e.typ.scale}, nil
	}
	return vtype{}, sqlErrorf(e.pos, "unsupported type %s", e.typ.text)
}

func bindLit(e *astExpr) (*bexp, error) {
	l := e.lit
	switch l.kind {
	case lNull:
		return konstCol(nullCol(vtype{k: vNull})), nil
	case lBool:
		c := newCol(vtype{k: vBool}, 1)
		c.b[0] = l.b
		return konstCol(c), nil
	case lInt:
		c := newCol(vtype{k: vInt}, 1)
		c.i[0] = l.i
		return konstCol(c), nil
	case lFloat:
		c := newCol(vtype{k: vFloat}, 1)
		c.f[0] = l.f
		return konstCol(c), nil
	case lDec:
		scale := 0
		if _, frac, ok := strings.Cut(l.s, "."); ok {
			scale = len(frac)
		}
		if u, ok := parseUnscaled(l.s, scale); ok && scale <= 18 {
			c := newCol(vtype{k: vDec, scale: scale}, 1)
			c.i[0] = u
			return konstCol(c), nil
		}
		f, err := strconv.ParseFloat(l.s, 64)
		if err != nil {
			return nil, sqlErrorf(e.pos, "malformed number %s", l.s)
		}
		c := newCol(vtype{k: vFloat}, 1)
		c.f[0] = f
		return konstCol(c), nil
	case lStr:
		c := newCol(vtype{k: vStr}, 1)
		c.s[0] = l.s
		return konstCol(c), nil
	case lDate:
		d, err := parseDate(l.s)
		if err != nil {
			return nil, sqlErrorf(e.pos, "invalid date literal %q", l.s)
		}
		c := newCol(vtype{k: vDate}, 1)
		c.i[0] = d
		return konstCol(c), nil
	case lTS:
		us, err := parseTimestamp(l.s)
		if err != nil {
			return nil, sqlErrorf(e.pos, "invalid timestamp literal %q", l.s)
		}
		c := newCol(vtype{k: vTS}, 1)
		c.i[0] = us
		return konstCol(c), nil
	}
	return nil, sqlErrorf(e.pos, "unsupported literal")
}

// coerce converts x to type t (no-op when it already has it).
func coerce(x *bexp, t vtype) *bexp {
	if x.t.k == t.k && (t.k != vDec || x.t.scale == t.scale) {
		return x
	}
	if x.konst {
		c := castCol(x.eval(&frame{n: 1}), t)
		c.konst = true
		return &bexp{t: t, konst: true, eval: func(*frame) *col { return c }}
	}
	return &bexp{t: t, eval: func(fr *frame) *col { return castCol(x.eval(fr), t) }}
}

func (b *sqlBinder) boolArg(x *bexp, e *astExpr) (*bexp, error) {
	switch x.t.k {
	case vBool:
		return x, nil
	case vNull:
		return coerce(x, vtype{k: vBool}), nil
	}
	return nil, sqlErrorf(e.pos, "expected a boolean expression, got %s", x.t)
}

func (b *sqlBinder) bindBinary(e *astExpr) (*bexp, error) {
	l, err := b.bind(e.args[0])
	if err != nil {
		return nil, err
	}
	r, err := b.bind(e.args[1])
	if err != nil {
		return nil, err
	}
	boolT := vtype{k: vBool}
	switch e.name {
	case "AND", "OR":
		if l, err = b.boolArg(l, e.args[0]); err != nil {
			return nil, err
		}
		if r, err = b.boolArg(r, e.args[1]); err != nil {
			return nil, err
		}
		if e.name == "AND" {
			return &bexp{t: boolT, eval: func(fr *frame) *col { return andCols(l.eval(fr), r.eval(fr), fr.n) }}, nil
		}
		return &bexp{t: boolT, eval: func(fr *frame) *col { return orCols(l.eval(fr), r.eval(fr), fr.n) }}, nil
	case "=", "!=", "<", "<=", ">", ">=", "<=>":
		t, ok := unify(l.t, r.t)
		if !ok || t.k == vAny && e.name != "=" && e.name != "!=" {
			return nil, sqlErrorf(e.pos, "cannot compare %s with %s", l.t, r.t)
		}
		op := map[string]cmpKind{"=": cEq, "!=": cNe, "<": cLt, "<=": cLe, ">": cGt, ">=": cGe, "<=>": cNullSafeEq}[e.name]
		l, r = coerce(l, t), coerce(r, t)
		if l.konst && !r.konst && op != cNullSafeEq {
			// keep the constant on the right for the fast kernels
			l, r = r, l
			op = map[cmpKind]cmpKind{cEq: cEq, cNe: cNe, cLt: cGt, cLe: cGe, cGt: cLt, cGe: cLe}[op]
		}
		return &bexp{t: boolT, eval: func(fr *frame) *col { return compareCols(op, l.eval(fr), r.eval(fr), fr.n) }}, nil
	case "||":
		l, r = coerce(l, vtype{k: vStr}), coerce(r, vtype{k: vStr})
		return &bexp{t: vtype{k: vStr}, eval: func(fr *frame) *col { return concatCols([]*col{l.eval(fr), r.eval(fr)}, fr.n) }}, nil
	}
	// arithmetic
	op := e.name[0]
	if (l.t.k == vDate || l.t.k == vNull) && r.t.k == vInt && (op == '+' || op == '-') && l.t.k == vDate {
		t := vtype{k: vDate}
		return &bexp{t: t, eval: func(fr *frame) *col { return arith(op, t, l.eval(fr), r.eval(fr), fr.n) }}, nil
	}
	for _, x := range []*bexp{l, r} {
		if !x.t.numeric() && x.t.k != vStr && x.t.k != vNull {
			return nil, sqlErrorf(e.pos, "operator %s needs numbers, got %s and %s", e.name, l.t, r.t)
		}
	}
	num := func(t vtype) vtype {
		switch t.k {
		case vStr:
			return vtype{k: vFloat}
		case vNull:
			return vtype{k: vInt}
		}
		return vtype{k: t.k, scale: t.scale}
	}
	lt, rt := num(l.t), num(r.t)
	t, _ := unify(lt, rt)
	switch op {
	case '/':
		t = vtype{k: vFloat}
	case '*':
		if t.k == vDec {
			ls, rs := lt.scale, rt.scale
			if ls+rs > 18 {
				t = vtype{k: vFloat}
				break
			}
			l, r = coerce(l, vtype{k: vDec, scale: ls}), coerce(r, vtype{k: vDec, scale: rs})
			t = vtype{k: vDec, scale: ls + rs}
			return &bexp{t: t, eval: func(fr *frame) *col { return arith(op, t, l.eval(fr), r.eval(fr), fr.n) }}, nil
		}
	}
	l, r = coerce(l, t), coerce(r, t)
	return &bexp{t: t, eval: func(fr *frame) *col { return arith(op, t, l.eval(fr), r.eval(fr), fr.n) }}, nil
}

func (b *sqlBinder) bindCase(e *astExpr) (*bexp, error) {
	var conds, vals []*bexp
	var types []vtype
	for i := 0; i+1 < len(e.args); i += 2 {
		c, err := b.bind(e.args[i])
		if err != nil {
			return nil, err
		}
		if c, err = b.boolArg(c, e.args[i]); err != nil {
			return nil, err
		}
		v, err := b.bind(e.args[i+1])
		if err != nil {
			return nil, err
		}
		conds, vals, types = append(conds, c), append(vals, v), append(types, v.t)
	}
	var els *bexp
	if e.els != nil {
		v, err := b.bind(e.els)
		if err != nil {
			return nil, err
		}
		els, types = v, append(types, v.t)
	}
	t, err := commonType(types, e.pos, "CASE")
	if err != nil {
		return nil, err
	}
	for i := range vals {
		vals[i] = coerce(vals[i], t)
	}
	if els != nil {
		els = coerce(els, t)
	}
	return &bexp{t: t, eval: func(fr *frame) *col {
		out := newCol(t, fr.n)
		done := make([]bool, fr.n)
		for k, c := range conds {
			cc, vc := c.eval(fr), vals[k].eval(fr)
			for i := 0; i < fr.n; i++ {
				if !done[i] && !cc.null(i) && cc.b[cc.idx(i)] {
					out.copyFrom(i, vc, i)
					done[i] = true
				}
			}
		}
		var ec *col
		if els != nil {
			ec = els.eval(fr)
		}
		for i := 0; i < fr.n; i++ {
			if !done[i] {
				if ec != nil {
					out.copyFrom(i, ec, i)
				} else {
					out.setNull(i)
				}
			}
		}
		return out
	}}, nil
}

// bindAgg registers an aggregate call (phase 2) and returns a reference to
// its result column.
func (b *sqlBinder) bindAgg(e *astExpr) (*bexp, error) {
	p := b.post
	key := e.String()
	for j, a := range p.aggs {
		if a.key == key {
			i := len(p.keyStr) + j
			return &bexp{t: a.out, eval: func(fr *frame) *col { return fr.cols[i] }}, nil
		}
	}
	name := e.name
	if name == "mean" {
		name = "avg"
	}
	spec := &aggSpec{fn: name, key: key}
	switch {
	case name == "count" && len(e.args) == 1 && e.args[0].kind == aStar:
		spec.fn = "count_star"
		spec.out = vtype{k: vInt}
	case len(e.args) != 1:
		return nil, sqlErrorf(e.pos, "%s takes one argument, got %d", strings.ToUpper(name), len(e.args))
	default:
		for _, a := range e.args {
			if hasAgg(a) {
				return nil, sqlErrorf(a.pos, "aggregate functions cannot be nested")
			}
		}
		arg, err := p.pre.bind(e.args[0])
		if err != nil {
			return nil, err
		}
		if e.distinct && name == "count" {
			spec.fn = "count_distinct"
		}
		switch spec.fn {
		case "count", "count_distinct", "approx_count_distinct":
			spec.out = vtype{k: vInt}
			if arg.t.k == vAny && spec.fn != "count" {
				return nil, sqlErrorf(e.pos, "%s does not take nested values", strings.ToUpper(name))
			}
		case "sum", "avg":
			if e.distinct {
				return nil, sqlErrorf(e.pos, "%s(DISTINCT ...) is not supported", strings.ToUpper(name))
			}
			switch arg.t.k {
			case vInt, vFloat, vDec:
			case vStr, vNull:
				arg = coerce(arg, vtype{k: vFloat})
			default:
				return nil, sqlErrorf(e.pos, "%s needs a number, got %s", strings.ToUpper(name), arg.t)
			}
			spec.out = vtype{k: arg.t.k, scale: arg.t.scale}
			if name == "avg" {
				spec.out = vtype{k: vFloat}
			}
		case "min", "max":
			if arg.t.k == vAny {
				return nil, sqlErrorf(e.pos, "%s does not take nested values", strings.ToUpper(name))
			}
			if arg.t.k == vNull {
				arg = coerce(arg, vtype{k: vInt})
			}
			spec.out = arg.t
		}
		spec.arg = arg
	}
	p.aggs = append(p.aggs, spec)
	i := len(p.keyStr) + len(p.aggs) - 1
	return &bexp{t: spec.out, eval: func(fr *frame) *col { return fr.cols[i] }}, nil
}
