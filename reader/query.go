package reader

import (
	"context"
	"fmt"
	"math/big"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kappa-lake/kappa/table"
	"github.com/kappa-lake/kappa/txlog"
)

// QueryOption configures Query.
type QueryOption func(*queryConfig)

type queryConfig struct {
	tables  map[string]string
	snaps   map[string]*table.Snapshot
	workers int
	tblOpts []table.Option
}

// WithTable binds a table name usable in FROM to a table URL.
func WithTable(name, url string) QueryOption {
	return func(c *queryConfig) { c.tables[strings.ToLower(name)] = url }
}

// WithTableSnapshot binds a table name to an already loaded snapshot (a
// VERSION/TIMESTAMP AS OF clause then loads another version of its table).
func WithTableSnapshot(name string, snap *table.Snapshot) QueryOption {
	return func(c *queryConfig) { c.snaps[strings.ToLower(name)] = snap }
}

// WithQueryWorkers sets the number of aggregation workers (default
// GOMAXPROCS, at most 8).
func WithQueryWorkers(n int) QueryOption { return func(c *queryConfig) { c.workers = n } }

// WithTableOptions passes options to table.Open for tables the query opens.
func WithTableOptions(opts ...table.Option) QueryOption {
	return func(c *queryConfig) { c.tblOpts = append(c.tblOpts, opts...) }
}

// Column is a result column.
type Column struct {
	Name string
	Type txlog.DataType
}

// Result is the answer of a query.
type Result struct {
	Columns []Column
	// Rows holds the values: nil, bool, int64 (every integer type),
	// float64, Decimal, string, []byte (binary), time.Time (UTC; dates at
	// midnight), and nested values as in Batch.Value.
	Rows [][]any
	// Version is the table version the query read.
	Version int64
	// Stats are the scan's counters (pruning and bytes read).
	Stats ScanStats
}

// Query runs one SQL SELECT over a Delta table. FROM names the table as
// delta.`URL` or as a name bound with WithTable / WithTableSnapshot, with
// optional VERSION AS OF n or TIMESTAMP AS OF 'ts'. Errors in the query
// text wrap ErrSQL and carry the position (*SQLError).
func Query(ctx context.Context, sql string, opts ...QueryOption) (*Result, error) {
	cfg := queryConfig{tables: map[string]string{}, snaps: map[string]*table.Snapshot{}}
	for _, o := range opts {
		o(&cfg)
	}
	st, err := parseSQL(sql)
	if err != nil {
		return nil, err
	}
	snap, err := resolveFrom(ctx, &st.from, &cfg)
	if err != nil {
		return nil, err
	}
	pl, err := planQuery(st, snap.Schema())
	if err != nil {
		return nil, err
	}
	scan := NewScan(snap, pl.scanOptions()...)
	res, err := pl.run(ctx, scan, cfg.workers)
	if err != nil {
		return nil, err
	}
	res.Version = snap.Version()
	return res, nil
}

// resolveFrom loads the snapshot the FROM clause names.
func resolveFrom(ctx context.Context, f *fromClause, cfg *queryConfig) (*table.Snapshot, error) {
	var tbl *table.Table
	var snap *table.Snapshot
	if f.delta {
		t, err := table.Open(ctx, f.path, cfg.tblOpts...)
		if err != nil {
			return nil, fmt.Errorf("open table %s: %w", f.path, err)
		}
		tbl = t
	} else if s, ok := cfg.snaps[strings.ToLower(f.path)]; ok {
		snap, tbl = s, s.Table()
	} else if u, ok := cfg.tables[strings.ToLower(f.path)]; ok {
		t, err := table.Open(ctx, u, cfg.tblOpts...)
		if err != nil {
			return nil, fmt.Errorf("open table %s (%s): %w", f.path, u, err)
		}
		tbl = t
	} else {
		return nil, sqlErrorf(f.pos, "unknown table %s: use delta.`URL` or bind the name (--table %s=URL)", f.path, f.path)
	}
	var sopt []table.SnapshotOption
	switch {
	case f.version != nil:
		sopt = append(sopt, table.AtVersion(*f.version))
	case f.timestamp != nil:
		us, err := parseTimestamp(*f.timestamp)
		if err != nil {
			return nil, sqlErrorf(f.pos, "TIMESTAMP AS OF: cannot parse %q as a timestamp", *f.timestamp)
		}
		sopt = append(sopt, table.AsOf(time.UnixMicro(us).UTC()))
	case snap != nil:
		return snap, nil
	}
	s, err := tbl.Snapshot(ctx, sopt...)
	if err != nil {
		return nil, fmt.Errorf("load snapshot of %s: %w", f.path, err)
	}
	return s, nil
}

type orderKey struct {
	idx        int // column of the output+hidden columns
	desc       bool
	nullsFirst bool
}

// queryPlan is a bound query.
type queryPlan struct {
	scanCols []string
	where    *bexp
	pushed   Expr
	agg      bool
	keys     []*bexp
	post     *postScope
	outNames []string
	outs     []*bexp // output then hidden order columns
	nOut     int
	having   *bexp
	order    []orderKey
	limit    int64
}

func outputName(it selectItem) string {
	if it.alias != "" {
		return it.alias
	}
	if it.expr.kind == aIdent {
		parts := strings.Split(it.expr.name, ".")
		return parts[len(parts)-1]
	}
	s := it.expr.String()
	if strings.HasPrefix(s, "(") && strings.HasSuffix(s, ")") {
		s = s[1 : len(s)-1]
	}
	return s
}

func planQuery(st *selectStmt, schema *txlog.StructType) (*queryPlan, error) {
	pl := &queryPlan{limit: -1}
	if st.limit != nil {
		pl.limit = *st.limit
	}
	src := &srcScope{schema: schema, idx: map[string]int{}}
	src.quals = []string{st.from.path, st.from.alias}
	if st.from.delta {
		src.quals = []string{"delta", st.from.alias}
	}
	// expand *
	var items []selectItem
	for _, it := range st.items {
		if !it.star {
			items = append(items, it)
			continue
		}
		for _, f := range schema.Fields {
			items = append(items, selectItem{expr: &astExpr{kind: aIdent, pos: it.pos, name: f.Name}, pos: it.pos})
		}
	}
	pre := &sqlBinder{src: src, clause: "WHERE"}
	if st.where != nil {
		w, err := pre.bind(st.where)
		if err != nil {
			return nil, err
		}
		if w, err = pre.boolArg(w, st.where); err != nil {
			return nil, err
		}
		pl.where = w
		pl.pushed = pushdown(st.where, src)
	}
	groupBy := st.groupBy
	anyAgg := st.having != nil
	for _, it := range items {
		anyAgg = anyAgg || hasAgg(it.expr)
	}
	for _, o := range st.orderBy {
		anyAgg = anyAgg || hasAgg(o.expr)
	}
	if st.distinct {
		if len(groupBy) > 0 || anyAgg {
			return nil, sqlErrorf(items[0].pos, "SELECT DISTINCT with GROUP BY or aggregates is not supported")
		}
		for _, it := range items {
			groupBy = append(groupBy, it.expr)
		}
	}
	pl.agg = len(groupBy) > 0 || anyAgg
	aliasOf := func(e *astExpr) *astExpr {
		if e.kind != aIdent {
			return nil
		}
		for _, it := range items {
			if it.alias != "" && strings.EqualFold(it.alias, e.name) {
				return it.expr
			}
		}
		return nil
	}
	var outBinder *sqlBinder
	if pl.agg {
		post := &postScope{pre: &sqlBinder{src: src, clause: "GROUP BY"}}
		for _, g := range groupBy {
			ge := g
			if g.kind == aLit && g.lit.kind == lInt {
				k := g.lit.i
				if k < 1 || int(k) > len(items) {
					return nil, sqlErrorf(g.pos, "GROUP BY position %d is not in the select list (1..%d)", k, len(items))
				}
				ge = items[k-1].expr
			} else if a := aliasOf(g); a != nil && src.findField(g.name) == nil {
				ge = a
			}
			if hasAgg(ge) {
				return nil, sqlErrorf(g.pos, "aggregate functions are not allowed in GROUP BY")
			}
			k, err := post.pre.bind(ge)
			if err != nil {
				return nil, err
			}
			if k.t.k == vAny {
				return nil, sqlErrorf(g.pos, "cannot group by a nested value")
			}
			pl.keys = append(pl.keys, k)
			post.keyStr = append(post.keyStr, ge.String())
			post.keyTypes = append(post.keyTypes, k.t)
		}
		post.pre.clause = "an aggregate argument"
		pl.post = post
		outBinder = &sqlBinder{src: src, post: post, clause: "SELECT"}
		if st.having != nil {
			h := substituteAliases(st.having, func(e *astExpr) *astExpr {
				for _, k := range post.keyStr {
					if k == e.String() {
						return nil
					}
				}
				return aliasOf(e)
			})
			hb := &sqlBinder{src: src, post: post, clause: "HAVING"}
			x, err := hb.bind(h)
			if err != nil {
				return nil, err
			}
			if x, err = hb.boolArg(x, st.having); err != nil {
				return nil, err
			}
			pl.having = x
		}
	} else {
		outBinder = &sqlBinder{src: src, clause: "SELECT"}
	}
	for _, it := range items {
		x, err := outBinder.bind(it.expr)
		if err != nil {
			return nil, err
		}
		pl.outs = append(pl.outs, x)
		pl.outNames = append(pl.outNames, outputName(it))
	}
	pl.nOut = len(pl.outs)
	for _, o := range st.orderBy {
		k := orderKey{desc: o.desc, nullsFirst: !o.desc}
		if o.nullsFirst != nil {
			k.nullsFirst = *o.nullsFirst
		}
		k.idx = -1
		switch {
		case o.expr.kind == aLit && o.expr.lit.kind == lInt:
			n := o.expr.lit.i
			if n < 1 || int(n) > pl.nOut {
				return nil, sqlErrorf(o.expr.pos, "ORDER BY position %d is not in the select list (1..%d)", n, pl.nOut)
			}
			k.idx = int(n - 1)
		case o.expr.kind == aIdent:
			for i, it := range items {
				if it.alias != "" && strings.EqualFold(it.alias, o.expr.name) {
					k.idx = i
					break
				}
			}
		}
		if k.idx < 0 {
			for i, it := range items {
				if it.expr.String() == o.expr.String() {
					k.idx = i
					break
				}
			}
		}
		if k.idx < 0 {
			ob := &sqlBinder{src: src, post: outBinder.post, clause: "ORDER BY"}
			x, err := ob.bind(o.expr)
			if err != nil {
				return nil, err
			}
			k.idx = len(pl.outs)
			pl.outs = append(pl.outs, x)
		}
		pl.order = append(pl.order, k)
	}
	pl.scanCols = src.used
	if len(pl.scanCols) == 0 && len(schema.Fields) > 0 {
		// COUNT(*) and constant queries still need row counts: read the
		// cheapest column.
		best := schema.Fields[0].Name
		for _, f := range schema.Fields {
			if _, ok := f.Type.(*txlog.PrimitiveType); ok {
				best = f.Name
				break
			}
		}
		pl.scanCols = []string{best}
	}
	return pl, nil
}

// substituteAliases replaces identifiers for which f returns an
// expression.
func substituteAliases(e *astExpr, f func(*astExpr) *astExpr) *astExpr {
	if e == nil {
		return nil
	}
	if e.kind == aIdent {
		if r := f(e); r != nil {
			return r
		}
		return e
	}
	if isAggCall(e) {
		return e
	}
	c := *e
	c.args = make([]*astExpr, len(e.args))
	for i, a := range e.args {
		c.args[i] = substituteAliases(a, f)
	}
	c.els = substituteAliases(e.els, f)
	return &c
}

func (pl *queryPlan) scanOptions() []ScanOption {
	opts := []ScanOption{WithColumns(pl.scanCols...)}
	if pl.pushed != nil {
		opts = append(opts, WithPredicate(pl.pushed))
	}
	return opts
}

// phase1 turns a scan batch into a filtered frame.
func (pl *queryPlan) phase1(b *Batch) *frame {
	fr := &frame{n: b.NumRows(), cols: make([]*col, len(pl.scanCols))}
	for i := range pl.scanCols {
		fr.cols[i] = vectorColLazy(b.Column(i)) // column references call strs()
	}
	if pl.where == nil || fr.n == 0 {
		return fr
	}
	return filterFrame(fr, pl.where.eval(fr))
}

// filterFrame keeps the rows where mask is true.
func filterFrame(fr *frame, mask *col) *frame {
	sel := make([]int32, 0, fr.n)
	for i := 0; i < fr.n; i++ {
		if !mask.null(i) && mask.b[mask.idx(i)] {
			sel = append(sel, int32(i))
		}
	}
	if len(sel) == fr.n {
		return fr
	}
	out := &frame{n: len(sel), cols: make([]*col, len(fr.cols))}
	for i, c := range fr.cols {
		out.cols[i] = c.take(sel)
	}
	return out
}

func (pl *queryPlan) workers(n int) int {
	if n <= 0 {
		n = min(runtime.GOMAXPROCS(0), 8)
	}
	return n
}

// aggregateScan runs the phase-1 aggregation of the scan's batches with
// parallel partial aggregations merged at the end.
func (pl *queryPlan) aggregateScan(ctx context.Context, s *Scan, workers int) (*hashAgg, error) {
	workers = pl.workers(workers)
	if workers == 1 {
		a := newHashAgg(pl.keys, pl.post.aggs)
		for b, err := range s.Batches(ctx) {
			if err != nil {
				return nil, err
			}
			a.add(pl.phase1(b))
		}
		return a, nil
	}
	ch := make(chan *Batch, workers)
	aggs := make([]*hashAgg, workers)
	var wg sync.WaitGroup
	for w := range workers {
		aggs[w] = newHashAgg(pl.keys, pl.post.aggs)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range ch {
				aggs[w].add(pl.phase1(b))
			}
		}()
	}
	var scanErr error
	for b, err := range s.Batches(ctx) {
		if err != nil {
			scanErr = err
			break
		}
		ch <- b
	}
	close(ch)
	wg.Wait()
	if scanErr != nil {
		return nil, scanErr
	}
	for _, o := range aggs[1:] {
		aggs[0].merge(o)
	}
	return aggs[0], nil
}

// run executes the plan over a scan.
func (pl *queryPlan) run(ctx context.Context, s *Scan, workers int) (*Result, error) {
	var res *Result
	if pl.agg {
		a, err := pl.aggregateScan(ctx, s, workers)
		if err != nil {
			return nil, err
		}
		res = pl.finish(a)
	} else {
		acc := make([]*col, len(pl.outs))
		for i, x := range pl.outs {
			acc[i] = newCol(vtype{k: x.t.k, scale: x.t.scale, dt: x.t.dt}, 0)
		}
		rows := 0
		for b, err := range s.Batches(ctx) {
			if err != nil {
				return nil, err
			}
			fr := pl.phase1(b)
			cols := make([]*col, len(pl.outs))
			for i, x := range pl.outs {
				cols[i] = x.eval(fr)
			}
			n := fr.n
			if len(pl.order) == 0 && pl.limit >= 0 && int64(rows+n) > pl.limit {
				n = int(pl.limit) - rows
			}
			for r := 0; r < n; r++ {
				for i, c := range cols {
					acc[i].appendFrom(c, r)
				}
			}
			rows += n
			if len(pl.order) == 0 && pl.limit >= 0 && int64(rows) >= pl.limit {
				break
			}
		}
		res = pl.output(&frame{n: rows, cols: acc})
	}
	res.Stats = s.Stats()
	return res, nil
}

// finish runs phase 2 of an aggregate query.
func (pl *queryPlan) finish(a *hashAgg) *Result {
	fr := a.result()
	if pl.having != nil {
		fr = filterFrame(fr, pl.having.eval(fr))
	}
	cols := make([]*col, len(pl.outs))
	for i, x := range pl.outs {
		cols[i] = x.eval(fr).expand(fr.n)
	}
	return pl.output(&frame{n: fr.n, cols: cols})
}

// output sorts, limits and renders the output columns.
func (pl *queryPlan) output(fr *frame) *Result {
	perm := make([]int, fr.n)
	for i := range perm {
		perm[i] = i
	}
	if len(pl.order) > 0 {
		slices.SortStableFunc(perm, func(x, y int) int {
			for _, k := range pl.order {
				c := fr.cols[k.idx]
				xn, yn := c.null(x), c.null(y)
				switch {
				case xn && yn:
					continue
				case xn || yn:
					if xn == k.nullsFirst {
						return -1
					}
					return 1
				}
				r := cmpColRows(c, x, y)
				if r == 0 {
					continue
				}
				if k.desc {
					return -r
				}
				return r
			}
			return 0
		})
	}
	if pl.limit >= 0 && int64(len(perm)) > pl.limit {
		perm = perm[:pl.limit]
	}
	res := &Result{}
	for i := 0; i < pl.nOut; i++ {
		res.Columns = append(res.Columns, Column{Name: pl.outNames[i], Type: pl.outs[i].t.deltaType()})
	}
	res.Rows = make([][]any, len(perm))
	for r, i := range perm {
		row := make([]any, pl.nOut)
		for c := 0; c < pl.nOut; c++ {
			row[c] = fr.cols[c].value(i)
		}
		res.Rows[r] = row
	}
	return res
}

func cmpColRows(c *col, x, y int) int {
	x, y = c.idx(x), c.idx(y)
	switch c.t.k {
	case vInt, vDec, vDate, vTS:
		return cmp3(c.i[x] < c.i[y], c.i[x] > c.i[y])
	case vFloat:
		r, _ := cmpFloat(c.f[x], c.f[y])
		return r
	case vStr:
		return strings.Compare(c.s[x], c.s[y])
	case vBool:
		return cmp3(!c.b[x] && c.b[y], c.b[x] && !c.b[y])
	case vAny:
		return strings.Compare(canonAny(c.a[x]), canonAny(c.a[y]))
	}
	return 0
}

// Predicate pushdown: the conjuncts of WHERE that reader.Expr expresses
// with the same semantics (comparisons of a table column with a literal
// of a compatible type, IN lists, BETWEEN, IS [NOT] NULL, and AND/OR/NOT
// of those) go to the scan for partition pruning, file skipping and
// row-group skipping. WHERE is still evaluated in full on the rows the
// scan returns.

func pushdown(e *astExpr, src *srcScope) Expr {
	var conj []Expr
	var walk func(e *astExpr)
	walk = func(e *astExpr) {
		if e.kind == aBinary && e.name == "AND" {
			walk(e.args[0])
			walk(e.args[1])
			return
		}
		if x := pushExpr(e, src); x != nil {
			conj = append(conj, x)
		}
	}
	walk(e)
	if len(conj) == 0 {
		return nil
	}
	return And(conj...)
}

func pushExpr(e *astExpr, src *srcScope) Expr {
	switch e.kind {
	case aBinary:
		switch e.name {
		case "AND", "OR":
			l, r := pushExpr(e.args[0], src), pushExpr(e.args[1], src)
			if l == nil || r == nil {
				return nil
			}
			if e.name == "AND" {
				return And(l, r)
			}
			return Or(l, r)
		case "=", "!=", "<", "<=", ">", ">=":
			c, l, op := e.args[0], e.args[1], e.name
			if c.kind != aIdent {
				c, l = e.args[1], e.args[0]
				op = map[string]string{"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}[op]
			}
			name, lit, ok := pushOperands(c, l, src)
			if !ok {
				return nil
			}
			col := Col(name)
			switch op {
			case "=":
				return Eq(col, lit)
			case "!=":
				return Ne(col, lit)
			case "<":
				return Lt(col, lit)
			case "<=":
				return Le(col, lit)
			case ">":
				return Gt(col, lit)
			}
			return Ge(col, lit)
		}
	case aUnary:
		if e.name == "NOT" {
			if x := pushExpr(e.args[0], src); x != nil {
				return Not(x)
			}
		}
	case aIn:
		var lits []Expr
		name := ""
		for _, v := range e.args[1:] {
			n, lit, ok := pushOperands(e.args[0], v, src)
			if !ok {
				return nil
			}
			name = n
			lits = append(lits, lit)
		}
		x := In(Col(name), lits...)
		if e.not {
			return Not(x)
		}
		return x
	case aBetween:
		n1, lo, ok1 := pushOperands(e.args[0], e.args[1], src)
		_, hi, ok2 := pushOperands(e.args[0], e.args[2], src)
		if !ok1 || !ok2 {
			return nil
		}
		x := Between(Col(n1), lo, hi)
		if e.not {
			return Not(x)
		}
		return x
	case aIsNull:
		if e.args[0].kind != aIdent {
			return nil
		}
		f := src.findField(e.args[0].name)
		if f == nil {
			return nil
		}
		if e.not {
			return IsNotNull(Col(f.Name))
		}
		return IsNull(Col(f.Name))
	}
	return nil
}

// pushOperands checks that c is a top-level primitive column and l a
// non-null literal whose comparison semantics in the scan equal ours.
func pushOperands(c, l *astExpr, src *srcScope) (string, Expr, bool) {
	if c.kind != aIdent || l.kind != aLit {
		return "", nil, false
	}
	f := src.findField(c.name)
	if f == nil {
		return "", nil, false
	}
	if d, ok := f.Type.(*txlog.DecimalType); ok && d.Precision > 18 {
		return "", nil, false // computed as double here, exactly in the scan
	}
	k := kindOf(f.Type).k
	lit := l.lit
	switch lit.kind {
	case lInt:
		if k == vInt || k == vFloat || k == vDec {
			return f.Name, Lit(lit.i), true
		}
	case lFloat:
		if k == vInt || k == vFloat || k == vDec {
			return f.Name, Lit(lit.f), true
		}
	case lDec:
		if k == vInt || k == vFloat || k == vDec {
			r, ok := new(big.Rat).SetString(lit.s)
			if ok {
				if k == vFloat {
					fl, _ := r.Float64()
					return f.Name, Lit(fl), true
				}
				return f.Name, Lit(r), true
			}
		}
	case lStr:
		switch k {
		case vStr:
			if p, ok := f.Type.(*txlog.PrimitiveType); ok && p.Name == txlog.TypeString {
				return f.Name, Lit(lit.s), true
			}
		case vDate:
			if _, err := parseDate(lit.s); err == nil {
				return f.Name, Lit(lit.s), true
			}
		case vTS:
			if _, err := parseTimestamp(lit.s); err == nil {
				return f.Name, Lit(lit.s), true
			}
		}
	case lBool:
		if k == vBool {
			return f.Name, Lit(lit.b), true
		}
	case lDate:
		if k == vDate || k == vTS {
			if _, err := parseDate(lit.s); err == nil {
				return f.Name, Lit(lit.s), true
			}
		}
	case lTS:
		if k == vTS {
			if _, err := parseTimestamp(lit.s); err == nil {
				return f.Name, Lit(lit.s), true
			}
		}
	}
	return "", nil, false
}
