package reader

import (
	"slices"
	"strconv"
	"strings"
)

// AST of the supported SELECT subset.

type astKind uint8

const (
	aIdent   astKind = iota // name (dotted parts joined by '.')
	aLit                    // lit
	aStar                   // * (only inside COUNT(*) and the select list)
	aUnary                  // op args[0]  ("-", "NOT")
	aBinary                 // args[0] op args[1]  (arith, comparison, AND, OR, ||)
	aFunc                   // name(args...) [distinct]
	aCast                   // CAST(args[0] AS typ)
	aIn                     // args[0] [NOT] IN (args[1:]...)
	aBetween                // args[0] [NOT] BETWEEN args[1] AND args[2]
	aIsNull                 // args[0] IS [NOT] NULL
	aLike                   // args[0] [NOT] LIKE args[1]
	aCase                   // CASE WHEN args[2k] THEN args[2k+1] ... [ELSE last]; else in els
)

type litKind uint8

const (
	lNull litKind = iota
	lBool
	lInt
	lDec // exact decimal text
	lFloat
	lStr
	lDate
	lTS
)

type astLit struct {
	kind litKind
	b    bool
	i    int64
	f    float64
	s    string // lDec text, lStr, lDate, lTS text
}

type astExpr struct {
	kind     astKind
	pos      Pos
	name     string // identifier, function name (lower case) or operator
	lit      astLit
	args     []*astExpr
	not      bool
	distinct bool
	typ      *sqlType
	els      *astExpr
}

// sqlType is a CAST target.
type sqlType struct {
	name        string // lower-case: long, integer, double, string, date, timestamp, boolean, decimal, ...
	prec, scale int
	text        string
}

// String renders a canonical form, used to match GROUP BY expressions with
// select-list expressions.
func (e *astExpr) String() string {
	var b strings.Builder
	e.render(&b)
	return b.String()
}

func (e *astExpr) render(b *strings.Builder) {
	switch e.kind {
	case aIdent:
		b.WriteString(strings.ToLower(e.name))
	case aLit:
		switch e.lit.kind {
		case lNull:
			b.WriteString("NULL")
		case lBool:
			b.WriteString(strconv.FormatBool(e.lit.b))
		case lInt:
			b.WriteString(strconv.FormatInt(e.lit.i, 10))
		case lDec:
			b.WriteString(e.lit.s)
		case lFloat:
			b.WriteString(strconv.FormatFloat(e.lit.f, 'g', -1, 64))
		case lStr:
			b.WriteString(strconv.Quote(e.lit.s))
		case lDate:
			b.WriteString("DATE " + strconv.Quote(e.lit.s))
		case lTS:
			b.WriteString("TIMESTAMP " + strconv.Quote(e.lit.s))
		}
	case aStar:
		b.WriteString("*")
	case aUnary:
		b.WriteString("(" + e.name + " ")
		e.args[0].render(b)
		b.WriteString(")")
	case aBinary:
		b.WriteString("(")
		e.args[0].render(b)
		b.WriteString(" " + e.name + " ")
		e.args[1].render(b)
		b.WriteString(")")
	case aFunc:
		b.WriteString(e.name + "(")
		if e.distinct {
			b.WriteString("DISTINCT ")
		}
		for i, a := range e.args {
			if i > 0 {
				b.WriteString(", ")
			}
			a.render(b)
		}
		b.WriteString(")")
	case aCast:
		b.WriteString("CAST(")
		e.args[0].render(b)
		b.WriteString(" AS " + e.typ.text + ")")
	case aIn:
		b.WriteString("(")
		e.args[0].render(b)
		if e.not {
			b.WriteString(" NOT")
		}
		b.WriteString(" IN (")
		for i, a := range e.args[1:] {
			if i > 0 {
				b.WriteString(", ")
			}
			a.render(b)
		}
		b.WriteString("))")
	case aBetween:
		b.WriteString("(")
		e.args[0].render(b)
		if e.not {
			b.WriteString(" NOT")
		}
		b.WriteString(" BETWEEN ")
		e.args[1].render(b)
		b.WriteString(" AND ")
		e.args[2].render(b)
		b.WriteString(")")
	case aIsNull:
		b.WriteString("(")
		e.args[0].render(b)
		if e.not {
			b.WriteString(" IS NOT NULL)")
		} else {
			b.WriteString(" IS NULL)")
		}
	case aLike:
		b.WriteString("(")
		e.args[0].render(b)
		if e.not {
			b.WriteString(" NOT")
		}
		b.WriteString(" LIKE ")
		e.args[1].render(b)
		b.WriteString(")")
	case aCase:
		b.WriteString("CASE")
		for i := 0; i+1 < len(e.args); i += 2 {
			b.WriteString(" WHEN ")
			e.args[i].render(b)
			b.WriteString(" THEN ")
			e.args[i+1].render(b)
		}
		if e.els != nil {
			b.WriteString(" ELSE ")
			e.els.render(b)
		}
		b.WriteString(" END")
	}
}

type selectItem struct {
	expr  *astExpr
	alias string
	star  bool
	pos   Pos
}

type orderItem struct {
	expr       *astExpr
	desc       bool
	nullsFirst *bool
}

type fromClause struct {
	delta     bool   // delta.`URL`
	path      string // URL for delta, else table name
	alias     string
	version   *int64
	timestamp *string
	pos       Pos
}

type selectStmt struct {
	distinct bool
	items    []selectItem
	from     fromClause
	where    *astExpr
	groupBy  []*astExpr
	having   *astExpr
	orderBy  []orderItem
	limit    *int64
}

// reserved words that end an expression or cannot be bare column names.
var reserved = map[string]bool{
	"select": true, "from": true, "where": true, "group": true, "by": true, "having": true,
	"order": true, "limit": true, "and": true, "or": true, "not": true, "as": true, "in": true,
	"is": true, "null": true, "between": true, "like": true, "true": true, "false": true,
	"asc": true, "desc": true, "nulls": true, "distinct": true, "case": true, "when": true,
	"then": true, "else": true, "end": true, "union": true, "join": true, "on": true,
}

type parser struct {
	toks []token
	p    int
}

func (p *parser) peek() token { return p.toks[p.p] }
func (p *parser) next() token {
	t := p.toks[p.p]
	if t.kind != tEOF {
		p.p++
	}
	return t
}

func (p *parser) accept(kw string) bool {
	if p.peek().is(kw) {
		p.p++
		return true
	}
	return false
}

func (p *parser) acceptOp(op string) bool {
	if p.peek().isOp(op) {
		p.p++
		return true
	}
	return false
}

func (p *parser) expect(kw string) error {
	if !p.accept(kw) {
		t := p.peek()
		return sqlErrorf(t.pos, "expected %s, found %s", strings.ToUpper(kw), t)
	}
	return nil
}

func (p *parser) expectOp(op string) error {
	if !p.acceptOp(op) {
		t := p.peek()
		return sqlErrorf(t.pos, "expected %q, found %s", op, t)
	}
	return nil
}

// parseSQL parses one SELECT statement.
func parseSQL(src string) (*selectStmt, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	st, err := p.selectStmt()
	if err != nil {
		return nil, err
	}
	p.acceptOp(";")
	if t := p.peek(); t.kind != tEOF {
		return nil, sqlErrorf(t.pos, "unexpected %s after the end of the query", t)
	}
	return st, nil
}

func (p *parser) selectStmt() (*selectStmt, error) {
	if err := p.expect("select"); err != nil {
		return nil, err
	}
	st := &selectStmt{}
	if p.accept("distinct") {
		st.distinct = true
	} else {
		p.accept("all")
	}
	for {
		t := p.peek()
		if t.isOp("*") {
			p.next()
			st.items = append(st.items, selectItem{star: true, pos: t.pos})
		} else {
			e, err := p.expr()
			if err != nil {
				return nil, err
			}
			it := selectItem{expr: e, pos: t.pos}
			if p.accept("as") {
				a := p.next()
				if a.kind != tIdent && a.kind != tQIdent && a.kind != tString {
					return nil, sqlErrorf(a.pos, "expected an alias after AS, found %s", a)
				}
				it.alias = a.text
			} else if a := p.peek(); a.kind == tQIdent || a.kind == tIdent && !reserved[strings.ToLower(a.text)] {
				p.next()
				it.alias = a.text
			}
			st.items = append(st.items, it)
		}
		if !p.acceptOp(",") {
			break
		}
	}
	if err := p.expect("from"); err != nil {
		return nil, err
	}
	if err := p.from(&st.from); err != nil {
		return nil, err
	}
	var err error
	if st.where, err = p.clauseExpr("where"); err != nil {
		return nil, err
	}
	if p.accept("group") {
		if err := p.expect("by"); err != nil {
			return nil, err
		}
		if st.groupBy, err = p.exprList(nil); err != nil {
			return nil, err
		}
	}
	if st.having, err = p.clauseExpr("having"); err != nil {
		return nil, err
	}
	if p.accept("order") {
		if err := p.expect("by"); err != nil {
			return nil, err
		}
		for {
			e, err := p.expr()
			if err != nil {
				return nil, err
			}
			it := orderItem{expr: e}
			if p.accept("desc") {
				it.desc = true
			} else {
				p.accept("asc")
			}
			if p.accept("nulls") {
				switch {
				case p.accept("first"):
					it.nullsFirst = new(bool)
					*it.nullsFirst = true
				case p.accept("last"):
					it.nullsFirst = new(bool)
				default:
					t := p.peek()
					return nil, sqlErrorf(t.pos, "expected FIRST or LAST after NULLS, found %s", t)
				}
			}
			st.orderBy = append(st.orderBy, it)
			if !p.acceptOp(",") {
				break
			}
		}
	}
	if p.accept("limit") {
		t := p.next()
		n, err := strconv.ParseInt(t.text, 10, 64)
		if t.kind != tNumber || err != nil || n < 0 {
			return nil, sqlErrorf(t.pos, "LIMIT needs a non-negative integer, found %s", t)
		}
		st.limit = &n
	}
	return st, nil
}

func (p *parser) from(f *fromClause) error {
	t := p.next()
	f.pos = t.pos
	switch {
	case t.kind == tIdent && strings.EqualFold(t.text, "delta") && p.peek().isOp("."):
		p.next()
		u := p.next()
		if u.kind != tQIdent && u.kind != tString {
			return sqlErrorf(u.pos, "expected a backquoted table URL after delta., found %s", u)
		}
		f.delta, f.path = true, u.text
	case t.kind == tQIdent || t.kind == tIdent && !reserved[strings.ToLower(t.text)]:
		name := t.text
		for p.peek().isOp(".") {
			p.next()
			n := p.next()
			if n.kind != tIdent && n.kind != tQIdent {
				return sqlErrorf(n.pos, "expected a name after '.', found %s", n)
			}
			name += "." + n.text
		}
		f.path = name
	case t.isOp("("):
		return sqlErrorf(t.pos, "subqueries are not supported: FROM takes one table")
	default:
		return sqlErrorf(t.pos, "expected a table after FROM, found %s", t)
	}
	for {
		switch {
		case p.peek().is("version") || p.peek().is("for") && (p.toks[p.p+1].is("version") || p.toks[p.p+1].is("system_version")) || p.peek().is("system_version"):
			at := p.peek()
			p.accept("for")
			if !p.accept("version") {
				p.accept("system_version")
			}
			if err := p.expect("as"); err != nil {
				return err
			}
			if err := p.expect("of"); err != nil {
				return err
			}
			n := p.next()
			txt := n.text
			if n.kind != tNumber && n.kind != tString {
				return sqlErrorf(n.pos, "VERSION AS OF needs a version number, found %s", n)
			}
			v, err := strconv.ParseInt(strings.TrimSpace(txt), 10, 64)
			if err != nil || v < 0 {
				return sqlErrorf(n.pos, "VERSION AS OF needs a non-negative integer, found %s", n)
			}
			if f.version != nil || f.timestamp != nil {
				return sqlErrorf(at.pos, "only one VERSION AS OF or TIMESTAMP AS OF is allowed")
			}
			f.version = &v
		case p.peek().is("timestamp") && p.toks[p.p+1].is("as") || p.peek().is("for") && (p.toks[p.p+1].is("timestamp") || p.toks[p.p+1].is("system_time")) || p.peek().is("system_time"):
			at := p.peek()
			p.accept("for")
			if !p.accept("timestamp") {
				p.accept("system_time")
			}
			if err := p.expect("as"); err != nil {
				return err
			}
			if err := p.expect("of"); err != nil {
				return err
			}
			// TIMESTAMP AS OF 'ts' or TIMESTAMP AS OF TIMESTAMP 'ts'
			p.accept("timestamp")
			s := p.next()
			if s.kind != tString {
				return sqlErrorf(s.pos, "TIMESTAMP AS OF needs a timestamp string, found %s", s)
			}
			if f.version != nil || f.timestamp != nil {
				return sqlErrorf(at.pos, "only one VERSION AS OF or TIMESTAMP AS OF is allowed")
			}
			ts := s.text
			f.timestamp = &ts
		case p.peek().is("as") && f.alias == "":
			p.next()
			a := p.next()
			if a.kind != tIdent && a.kind != tQIdent {
				return sqlErrorf(a.pos, "expected a table alias after AS, found %s", a)
			}
			f.alias = a.text
		case f.alias == "" && (p.peek().kind == tQIdent || p.peek().kind == tIdent && !reserved[strings.ToLower(p.peek().text)] &&
			!p.peek().is("version") && !p.peek().is("timestamp") && !p.peek().is("for")):
			f.alias = p.next().text
		default:
			if t := p.peek(); t.isOp(",") || t.is("join") {
				return sqlErrorf(t.pos, "joins are not supported: FROM takes one table")
			}
			return nil
		}
	}
}

// Expressions, lowest precedence first.

func (p *parser) expr() (*astExpr, error) { return p.orExpr() }

// exprList parses comma-separated expressions, appending them to list.
func (p *parser) exprList(list []*astExpr) ([]*astExpr, error) {
	for {
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		list = append(list, e)
		if !p.acceptOp(",") {
			return list, nil
		}
	}
}

// clauseExpr parses "keyword expr" when the next token is keyword (else nil).
func (p *parser) clauseExpr(keyword string) (*astExpr, error) {
	if !p.accept(keyword) {
		return nil, nil
	}
	return p.expr()
}

func (p *parser) orExpr() (*astExpr, error) { return p.leftAssoc(p.andExpr, keyword("or")) }

func (p *parser) andExpr() (*astExpr, error) { return p.leftAssoc(p.notExpr, keyword("and")) }

func (p *parser) notExpr() (*astExpr, error) {
	if t := p.peek(); t.is("not") {
		p.next()
		e, err := p.notExpr()
		if err != nil {
			return nil, err
		}
		return &astExpr{kind: aUnary, pos: t.pos, name: "NOT", args: []*astExpr{e}}, nil
	}
	return p.cmpExpr()
}

func (p *parser) cmpExpr() (*astExpr, error) {
	l, err := p.addExpr()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		switch {
		case t.kind == tOp && (t.text == "=" || t.text == "==" || t.text == "!=" || t.text == "<>" || t.text == "<" || t.text == "<=" || t.text == ">" || t.text == ">=" || t.text == "<=>"):
			p.next()
			r, err := p.addExpr()
			if err != nil {
				return nil, err
			}
			op := t.text
			switch op {
			case "==":
				op = "="
			case "<>":
				op = "!="
			}
			l = &astExpr{kind: aBinary, pos: t.pos, name: op, args: []*astExpr{l, r}}
		case t.is("is"):
			p.next()
			not := p.accept("not")
			if err := p.expect("null"); err != nil {
				return nil, err
			}
			l = &astExpr{kind: aIsNull, pos: t.pos, not: not, args: []*astExpr{l}}
		case t.is("not") || t.is("in") || t.is("between") || t.is("like") || t.is("ilike"):
			not := false
			if t.is("not") {
				n := p.toks[p.p+1]
				if !n.is("in") && !n.is("between") && !n.is("like") && !n.is("ilike") {
					return l, nil
				}
				p.next()
				not = true
			}
			kw := p.next()
			switch {
			case kw.is("in"):
				if err := p.expectOp("("); err != nil {
					return nil, err
				}
				if p.peek().is("select") {
					return nil, sqlErrorf(p.peek().pos, "subqueries are not supported in IN")
				}
				e := &astExpr{kind: aIn, pos: kw.pos, not: not, args: []*astExpr{l}}
				var err error
				if e.args, err = p.exprList(e.args); err != nil {
					return nil, err
				}
				if err := p.expectOp(")"); err != nil {
					return nil, err
				}
				l = e
			case kw.is("between"):
				lo, err := p.addExpr()
				if err != nil {
					return nil, err
				}
				if err := p.expect("and"); err != nil {
					return nil, err
				}
				hi, err := p.addExpr()
				if err != nil {
					return nil, err
				}
				l = &astExpr{kind: aBetween, pos: kw.pos, not: not, args: []*astExpr{l, lo, hi}}
			default:
				r, err := p.addExpr()
				if err != nil {
					return nil, err
				}
				name := "LIKE"
				if kw.is("ilike") {
					name = "ILIKE"
				}
				l = &astExpr{kind: aLike, pos: kw.pos, name: name, not: not, args: []*astExpr{l, r}}
			}
		default:
			return l, nil
		}
	}
}

func (p *parser) addExpr() (*astExpr, error) {
	return p.leftAssoc(p.mulExpr, operators("+", "-", "||"))
}

func (p *parser) mulExpr() (*astExpr, error) { return p.leftAssoc(p.unary, operators("*", "/", "%")) }

// leftAssoc parses operand (op operand)... where match recognises an
// operator token and names it, grouping to the left: a - b - c is (a - b) - c.
func (p *parser) leftAssoc(operand func() (*astExpr, error), match func(token) (string, bool)) (*astExpr, error) {
	l, err := operand()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		name, ok := match(t)
		if !ok {
			return l, nil
		}
		p.next()
		r, err := operand()
		if err != nil {
			return nil, err
		}
		l = &astExpr{kind: aBinary, pos: t.pos, name: name, args: []*astExpr{l, r}}
	}
}

// keyword matches the keyword kw, named in upper case (AND, OR).
func keyword(kw string) func(token) (string, bool) {
	name := strings.ToUpper(kw)
	return func(t token) (string, bool) { return name, t.is(kw) }
}

// operators matches any of the operator tokens ops, named as written.
func operators(ops ...string) func(token) (string, bool) {
	return func(t token) (string, bool) { return t.text, slices.ContainsFunc(ops, t.isOp) }
}

func (p *parser) unary() (*astExpr, error) {
	t := p.peek()
	if t.isOp("-") || t.isOp("+") {
		p.next()
		e, err := p.unary()
		if err != nil {
			return nil, err
		}
		if t.text == "+" {
			return e, nil
		}
		if e.kind == aLit {
			switch e.lit.kind {
			case lInt:
				e.lit.i = -e.lit.i
				e.pos = t.pos
				return e, nil
			case lFloat:
				e.lit.f = -e.lit.f
				e.pos = t.pos
				return e, nil
			case lDec:
				e.lit.s = "-" + e.lit.s
				e.pos = t.pos
				return e, nil
			}
		}
		return &astExpr{kind: aUnary, pos: t.pos, name: "-", args: []*astExpr{e}}, nil
	}
	return p.primary()
}

func (p *parser) primary() (*astExpr, error) {
	t := p.next()
	switch t.kind {
	case tNumber:
		return numberLit(t)
	case tString:
		return &astExpr{kind: aLit, pos: t.pos, lit: astLit{kind: lStr, s: t.text}}, nil
	case tOp:
		if t.text == "(" {
			if p.peek().is("select") {
				return nil, sqlErrorf(p.peek().pos, "subqueries are not supported")
			}
			e, err := p.expr()
			if err != nil {
				return nil, err
			}
			if err := p.expectOp(")"); err != nil {
				return nil, err
			}
			return e, nil
		}
		if t.text == "*" {
			return &astExpr{kind: aStar, pos: t.pos}, nil
		}
		return nil, sqlErrorf(t.pos, "unexpected %s", t)
	case tEOF:
		return nil, sqlErrorf(t.pos, "unexpected end of input: expected an expression")
	case tQIdent:
		return p.identRest(t)
	}
	// tIdent
	lower := strings.ToLower(t.text)
	switch lower {
	case "null":
		return &astExpr{kind: aLit, pos: t.pos, lit: astLit{kind: lNull}}, nil
	case "true", "false":
		return &astExpr{kind: aLit, pos: t.pos, lit: astLit{kind: lBool, b: lower == "true"}}, nil
	case "date", "timestamp", "timestamp_ntz", "timestamp_ltz":
		if s := p.peek(); s.kind == tString {
			p.next()
			k := lDate
			if lower != "date" {
				k = lTS
			}
			return &astExpr{kind: aLit, pos: t.pos, lit: astLit{kind: k, s: s.text}}, nil
		}
	case "cast", "try_cast":
		if err := p.expectOp("("); err != nil {
			return nil, err
		}
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		if err := p.expect("as"); err != nil {
			return nil, err
		}
		typ, err := p.typeName()
		if err != nil {
			return nil, err
		}
		if err := p.expectOp(")"); err != nil {
			return nil, err
		}
		return &astExpr{kind: aCast, pos: t.pos, args: []*astExpr{e}, typ: typ}, nil
	case "case":
		e := &astExpr{kind: aCase, pos: t.pos}
		var subject *astExpr
		if !p.peek().is("when") {
			s, err := p.expr()
			if err != nil {
				return nil, err
			}
			subject = s
		}
		for p.accept("when") {
			c, err := p.expr()
			if err != nil {
				return nil, err
			}
			if subject != nil {
				c = &astExpr{kind: aBinary, pos: c.pos, name: "=", args: []*astExpr{subject, c}}
			}
			if err := p.expect("then"); err != nil {
				return nil, err
			}
			v, err := p.expr()
			if err != nil {
				return nil, err
			}
			e.args = append(e.args, c, v)
		}
		if len(e.args) == 0 {
			return nil, sqlErrorf(p.peek().pos, "expected WHEN in CASE, found %s", p.peek())
		}
		if p.accept("else") {
			v, err := p.expr()
			if err != nil {
				return nil, err
			}
			e.els = v
		}
		if err := p.expect("end"); err != nil {
			return nil, err
		}
		return e, nil
	}
	if reserved[lower] {
		return nil, sqlErrorf(t.pos, "unexpected keyword %s", strings.ToUpper(t.text))
	}
	if p.peek().isOp("(") {
		p.next()
		f := &astExpr{kind: aFunc, pos: t.pos, name: lower}
		if p.acceptOp(")") {
			return f, nil
		}
		if p.accept("distinct") {
			f.distinct = true
		} else {
			p.accept("all")
		}
		for {
			if s := p.peek(); s.isOp("*") && len(f.args) == 0 {
				p.next()
				f.args = append(f.args, &astExpr{kind: aStar, pos: s.pos})
			} else {
				a, err := p.expr()
				if err != nil {
					return nil, err
				}
				f.args = append(f.args, a)
			}
			if !p.acceptOp(",") {
				break
			}
		}
		if err := p.expectOp(")"); err != nil {
			return nil, err
		}
		return f, nil
	}
	return p.identRest(t)
}

// identRest reads .name parts after an identifier.
func (p *parser) identRest(t token) (*astExpr, error) {
	name := t.text
	for p.peek().isOp(".") {
		p.next()
		n := p.next()
		if n.kind != tIdent && n.kind != tQIdent {
			return nil, sqlErrorf(n.pos, "expected a field name after '.', found %s", n)
		}
		name += "." + n.text
	}
	return &astExpr{kind: aIdent, pos: t.pos, name: name}, nil
}

func numberLit(t token) (*astExpr, error) {
	s := t.text
	e := &astExpr{kind: aLit, pos: t.pos}
	if strings.Count(s, ".") > 1 {
		return nil, sqlErrorf(t.pos, "malformed number %q", s)
	}
	if !strings.ContainsAny(s, ".eE") {
		n, err := strconv.ParseInt(s, 10, 64)
		if err == nil {
			e.lit = astLit{kind: lInt, i: n}
			return e, nil
		}
		e.lit = astLit{kind: lDec, s: s}
		return e, nil
	}
	if strings.ContainsAny(s, "eE") {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, sqlErrorf(t.pos, "malformed number %q", s)
		}
		e.lit = astLit{kind: lFloat, f: f}
		return e, nil
	}
	e.lit = astLit{kind: lDec, s: s}
	return e, nil
}

func (p *parser) typeName() (*sqlType, error) {
	t := p.next()
	if t.kind != tIdent {
		return nil, sqlErrorf(t.pos, "expected a type name, found %s", t)
	}
	typ := &sqlType{name: strings.ToLower(t.text), text: strings.ToUpper(t.text)}
	switch typ.name {
	case "int", "integer":
		typ.name = "integer"
	case "bigint", "long":
		typ.name = "long"
	case "smallint", "short":
		typ.name = "short"
	case "tinyint", "byte":
		typ.name = "byte"
	case "double", "real":
		typ.name = "double"
	case "float":
		typ.name = "float"
	case "string", "varchar", "char", "text":
		typ.name = "string"
		if p.acceptOp("(") {
			n := p.next()
			if n.kind != tNumber {
				return nil, sqlErrorf(n.pos, "expected a length, found %s", n)
			}
			if err := p.expectOp(")"); err != nil {
				return nil, err
			}
		}
	case "boolean", "bool":
		typ.name = "boolean"
	case "date":
	case "timestamp", "timestamp_ltz", "timestamp_ntz":
		typ.name = "timestamp"
	case "binary":
	case "decimal", "dec", "numeric":
		typ.name = "decimal"
		typ.prec, typ.scale = 10, 0
		if p.acceptOp("(") {
			n := p.next()
			pr, err := strconv.Atoi(n.text)
			if n.kind != tNumber || err != nil || pr < 1 || pr > 38 {
				return nil, sqlErrorf(n.pos, "decimal precision must be 1..38, found %s", n)
			}
			typ.prec, typ.scale = pr, 0
			if p.acceptOp(",") {
				s := p.next()
				sc, err := strconv.Atoi(s.text)
				if s.kind != tNumber || err != nil || sc < 0 || sc > pr {
					return nil, sqlErrorf(s.pos, "decimal scale must be 0..%d, found %s", pr, s)
				}
				typ.scale = sc
			}
			if err := p.expectOp(")"); err != nil {
				return nil, err
			}
		}
		typ.text = "DECIMAL(" + strconv.Itoa(typ.prec) + "," + strconv.Itoa(typ.scale) + ")"
	default:
		return nil, sqlErrorf(t.pos, "unsupported type %s in CAST", t.text)
	}
	return typ, nil
}
