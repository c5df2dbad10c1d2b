package reader

import (
	"encoding/binary"
	"slices"
	"strings"
	"unsafe"
)

// Hash aggregation. A grouper maps key tuples to dense group ids with
// typed hash maps (int64 keys and string keys get their own maps; other
// shapes use a canonical byte encoding); every aggregate keeps its state in
// slices indexed by group id and updates them in typed loops.
//
// # Partial state
//
// Every aggregate can export its state as typed columns and merge such
// columns back (mergeState). The same code merges the partial aggregates
// of parallel workers, loads a batch view's stored state, and merges
// the state of newly added source files into it:
//   COUNT(*), COUNT(x)         count (long)
//   SUM(x)                     sum (long, double, or long unscaled decimal) + count of non-null inputs (long)
//   AVG(x)                     sum + count, as SUM
//   MIN(x), MAX(x)             the value (typed; decimals as long unscaled)
//   COUNT(DISTINCT x)          the exact set of distinct values (binary, see encodeSet)
//   approx_count_distinct(x)   a HyperLogLog sketch (binary, see hll.go)

type grouper struct {
	types []vtype
	keys  []*col // key values per group
	n     int
	mInt  map[int64]int32
	mStr  map[string]int32
	mBuf  map[string]int32
	nullG int32
	buf   []byte
	// Per-dictionary code -> group id maps (-1 = not seen yet) of the
	// most recently used string dictionaries.
	remaps []dictRemap
}

type dictRemap struct {
	dict *string // identity: the dictionary's backing array
	gids []int32
}

// maxRemaps bounds the dictionaries remembered at once (one per row group
// in flight per worker is typical).
const maxRemaps = 8

// remapFor returns the code -> group id map of dictionary dict.
func (g *grouper) remapFor(dict []string) []int32 {
	key := unsafe.SliceData(dict)
	for i, r := range g.remaps {
		if r.dict == key {
			if i > 0 { // move to front
				copy(g.remaps[1:i+1], g.remaps[:i])
				g.remaps[0] = r
			}
			return r.gids
		}
	}
	var gids []int32
	if len(g.remaps) == maxRemaps {
		gids = g.remaps[maxRemaps-1].gids
		g.remaps = g.remaps[:maxRemaps-1]
	}
	gids = slices.Grow(gids[:0], len(dict))[:len(dict)]
	for i := range gids {
		gids[i] = -1
	}
	g.remaps = slices.Insert(g.remaps, 0, dictRemap{dict: key, gids: gids})
	return gids
}

// lookupStr returns the group id of string key s (row i of keys),
// creating the group when new.
func (g *grouper) lookupStr(keys []*col, i int, s string) int32 {
	id, ok := g.mStr[s]
	if !ok {
		id = g.newGroup(keys, i)
		g.mStr[g.keys[0].s[id]] = id // the cloned string
	}
	return id
}

func newGrouper(types []vtype) *grouper {
	g := &grouper{types: types, nullG: -1}
	for _, t := range types {
		c := newCol(vtype{k: t.k, scale: t.scale, dt: t.dt}, 0)
		g.keys = append(g.keys, c)
	}
	switch {
	case len(types) == 0:
		g.n = 1 // the single group of a global aggregate exists even with no input
	case len(types) == 1 && (types[0].k == vInt || types[0].k == vDate || types[0].k == vTS || types[0].k == vDec):
		g.mInt = map[int64]int32{}
	case len(types) == 1 && types[0].k == vStr:
		g.mStr = map[string]int32{}
	default:
		g.mBuf = map[string]int32{}
	}
	return g
}

func (g *grouper) newGroup(keys []*col, i int) int32 {
	for k, c := range g.keys {
		c.appendFrom(keys[k], i)
	}
	g.n++
	return int32(g.n - 1)
}

// lookup returns the group id of every row of the key columns, creating
// groups as needed.
func (g *grouper) lookup(keys []*col, n int, gids []int32) []int32 {
	gids = slices.Grow(gids[:0], n)[:n]
	switch {
	case len(g.types) == 0:
		clear(gids)
	case g.mInt != nil:
		k := keys[0]
		for i := 0; i < n; i++ {
			if k.null(i) {
				if g.nullG < 0 {
					g.nullG = g.newGroup(keys, i)
				}
				gids[i] = g.nullG
				continue
			}
			x := k.i[k.idx(i)]
			id, ok := g.mInt[x]
			if !ok {
				id = g.newGroup(keys, i)
				g.mInt[x] = id
			}
			gids[i] = id
		}
	case g.mStr != nil && keys[0].codes != nil && !keys[0].konst:
		// Dictionary-encoded keys: hash each distinct code once.
		k := keys[0]
		remap := g.remapFor(k.dict)
		codes := k.codes[:n]
		for i, c := range codes {
			if k.nulls != nil && k.nulls[i] {
				if g.nullG < 0 {
					g.nullG = g.newGroup(keys, i)
				}
				gids[i] = g.nullG
				continue
			}
			id := remap[c]
			if id < 0 {
				id = g.lookupStr(keys, i, k.dict[c])
				remap[c] = id
			}
			gids[i] = id
		}
	case g.mStr != nil:
		k := keys[0]
		for i := 0; i < n; i++ {
			if k.null(i) {
				if g.nullG < 0 {
					g.nullG = g.newGroup(keys, i)
				}
				gids[i] = g.nullG
				continue
			}
			gids[i] = g.lookupStr(keys, i, k.str(k.idx(i)))
		}
	default:
		for i := 0; i < n; i++ {
			b := g.buf[:0]
			for _, k := range keys {
				b = encodeValue(b, k, i)
			}
			g.buf = b
			id, ok := g.mBuf[string(b)]
			if !ok {
				id = g.newGroup(keys, i)
				g.mBuf[string(b)] = id
			}
			gids[i] = id
		}
	}
	return gids
}

// aggState is the state of one aggregate over all groups.
type aggState interface {
	// update folds the rows of arg (nil for COUNT(*)) into groups gids.
	update(gids []int32, arg *col, groups int)
	// stateTypes describes the exported columns (name suffixes and types).
	stateTypes() []stateCol
	// export returns the state of groups [0, n) as columns.
	export(n int) []*col
	// mergeState merges exported state rows into groups gids.
	mergeState(gids []int32, cols []*col, groups int)
	// final returns the aggregate results of groups [0, n).
	final(n int) *col
}

type stateCol struct {
	suffix string
	t      vtype
	binary bool
}

func newAggState(s *aggSpec) aggState {
	switch s.fn {
	case "count_star", "count":
		return &countState{}
	case "sum", "avg":
		return &sumState{t: s.arg.t, avg: s.fn == "avg"}
	case "min", "max":
		return &minMaxState{t: vtype{k: s.arg.t.k, scale: s.arg.t.scale, dt: s.arg.t.dt}, max: s.fn == "max"}
	case "count_distinct":
		return &distinctState{}
	case "approx_count_distinct":
		return &hllState{}
	}
	return &countState{}
}

func grow[T any](s []T, n int) []T {
	if len(s) >= n {
		return s
	}
	return append(s, make([]T, n-len(s))...)
}

// countState: COUNT(*) and COUNT(x).
type countState struct{ cnt []int64 }

func (s *countState) update(gids []int32, arg *col, groups int) {
	s.cnt = grow(s.cnt, groups)
	if arg == nil || arg.nulls == nil && !arg.konst {
		for _, g := range gids {
			s.cnt[g]++
		}
		return
	}
	for i, g := range gids {
		if !arg.null(i) {
			s.cnt[g]++
		}
	}
}
func (s *countState) stateTypes() []stateCol { return []stateCol{{"count", vtype{k: vInt}, false}} }
func (s *countState) export(n int) []*col {
	s.cnt = grow(s.cnt, n)
	return []*col{{t: vtype{k: vInt}, n: n, i: s.cnt[:n]}}
}

func (s *countState) mergeState(gids []int32, cols []*col, groups int) {
	s.cnt = grow(s.cnt, groups)
	c := cols[0]
	for i, g := range gids {
		if !c.null(i) {
			s.cnt[g] += c.i[c.idx(i)]
		}
	}
}

func (s *countState) final(n int) *col {
	s.cnt = grow(s.cnt, n)
	return &col{t: vtype{k: vInt}, n: n, i: slices.Clone(s.cnt[:n])}
}

// sumState: SUM and AVG over int64 (ints and unscaled decimals) or float64.
type sumState struct {
	t   vtype
	avg bool
	si  []int64
	sf  []float64
	cnt []int64
}

func (s *sumState) update(gids []int32, arg *col, groups int) {
	s.cnt = grow(s.cnt, groups)
	if s.t.k == vFloat {
		s.sf = grow(s.sf, groups)
		if arg.nulls == nil && !arg.konst {
			for i, g := range gids {
				s.sf[g] += arg.f[i]
				s.cnt[g]++
			}
			return
		}
		for i, g := range gids {
			if !arg.null(i) {
				s.sf[g] += arg.f[arg.idx(i)]
				s.cnt[g]++
			}
		}
		return
	}
	s.si = grow(s.si, groups)
	if arg.nulls == nil && !arg.konst {
		for i, g := range gids {
			s.si[g] += arg.i[i]
			s.cnt[g]++
		}
		return
	}
	for i, g := range gids {
		if !arg.null(i) {
			s.si[g] += arg.i[arg.idx(i)]
			s.cnt[g]++
		}
	}
}

func (s *sumState) sumType() vtype {
	if s.t.k == vFloat {
		return vtype{k: vFloat}
	}
	return vtype{k: vInt} // ints and unscaled decimals
}

func (s *sumState) stateTypes() []stateCol {
	return []stateCol{{"sum", s.sumType(), false}, {"count", vtype{k: vInt}, false}}
}

func (s *sumState) export(n int) []*col {
	s.cnt = grow(s.cnt, n)
	var sum *col
	if s.t.k == vFloat {
		s.sf = grow(s.sf, n)
		sum = &col{t: vtype{k: vFloat}, n: n, f: s.sf[:n]}
	} else {
		s.si = grow(s.si, n)
		sum = &col{t: vtype{k: vInt}, n: n, i: s.si[:n]}
	}
	return []*col{sum, {t: vtype{k: vInt}, n: n, i: s.cnt[:n]}}
}

func (s *sumState) mergeState(gids []int32, cols []*col, groups int) {
	s.cnt = grow(s.cnt, groups)
	sum, cnt := cols[0], cols[1]
	if s.t.k == vFloat {
		s.sf = grow(s.sf, groups)
	} else {
		s.si = grow(s.si, groups)
	}
	for i, g := range gids {
		if cnt.null(i) || cnt.i[cnt.idx(i)] == 0 {
			continue
		}
		s.cnt[g] += cnt.i[cnt.idx(i)]
		if sum.null(i) {
			continue
		}
		if s.t.k == vFloat {
			s.sf[g] += sum.f[sum.idx(i)]
		} else {
			s.si[g] += sum.i[sum.idx(i)]
		}
	}
}

func (s *sumState) final(n int) *col {
	s.cnt = grow(s.cnt, n)
	s.sf = grow(s.sf, n)
	s.si = grow(s.si, n)
	var out *col
	if s.avg {
		out = newCol(vtype{k: vFloat}, n)
		for g := 0; g < n; g++ {
			if s.cnt[g] == 0 {
				out.setNull(g)
				continue
			}
			switch s.t.k {
			case vFloat:
				out.f[g] = s.sf[g] / float64(s.cnt[g])
			case vDec:
				out.f[g] = float64(s.si[g]) / float64(pow10i[s.t.scale]) / float64(s.cnt[g])
			default:
				out.f[g] = float64(s.si[g]) / float64(s.cnt[g])
			}
		}
		return out
	}
	out = newCol(vtype{k: s.t.k, scale: s.t.scale}, n)
	for g := 0; g < n; g++ {
		if s.cnt[g] == 0 {
			out.setNull(g)
			continue
		}
		if s.t.k == vFloat {
			out.f[g] = s.sf[g]
		} else {
			out.i[g] = s.si[g]
		}
	}
	return out
}

// minMaxState: MIN and MAX of any orderable kind.
type minMaxState struct {
	t   vtype
	max bool
	has []bool
	v   *col
}

func (s *minMaxState) ensure(groups int) {
	if s.v == nil {
		s.v = newCol(s.t, 0)
	}
	for s.v.n < groups {
		s.v.appendFrom(nullCol(s.t), 0)
	}
	s.has = grow(s.has, groups)
}

// better reports whether x (row i of c) should replace the group's value.
func (s *minMaxState) better(c *col, i int, g int32) bool {
	if !s.has[g] {
		return true
	}
	j := c.idx(i)
	var r int
	switch s.t.k {
	case vInt, vDec, vDate, vTS:
		x, y := c.i[j], s.v.i[g]
		r = cmp3(x < y, x > y)
	case vFloat:
		r, _ = cmpFloat(c.f[j], s.v.f[g])
	case vStr:
		r = strings.Compare(c.s[j], s.v.s[g])
	case vBool:
		x, y := c.b[j], s.v.b[g]
		r = cmp3(!x && y, x && !y)
	}
	if s.max {
		return r > 0
	}
	return r < 0
}

func (s *minMaxState) set(c *col, i int, g int32) {
	j := c.idx(i)
	s.has[g] = true
	if s.v.nulls != nil {
		s.v.nulls[g] = false
	}
	switch s.t.k {
	case vInt, vDec, vDate, vTS:
		s.v.i[g] = c.i[j]
	case vFloat:
		s.v.f[g] = c.f[j]
	case vStr:
		s.v.s[g] = strings.Clone(c.s[j])
	case vBool:
		s.v.b[g] = c.b[j]
	}
}

func (s *minMaxState) update(gids []int32, arg *col, groups int) {
	s.ensure(groups)
	if (s.t.k == vInt || s.t.k == vTS || s.t.k == vDate || s.t.k == vDec) && arg.nulls == nil && !arg.konst {
		vals, has, xs := s.v.i, s.has, arg.i[:len(gids)]
		if s.v.nulls != nil {
			for _, g := range gids {
				s.v.nulls[g] = false
			}
		}
		if s.max {
			for i, g := range gids {
				if x := xs[i]; !has[g] || x > vals[g] {
					vals[g], has[g] = x, true
				}
			}
		} else {
			for i, g := range gids {
				if x := xs[i]; !has[g] || x < vals[g] {
					vals[g], has[g] = x, true
				}
			}
		}
		return
	}
	for i, g := range gids {
		if !arg.null(i) && s.better(arg, i, g) {
			s.set(arg, i, g)
		}
	}
}

func (s *minMaxState) stateTypes() []stateCol {
	t := s.t
	if t.k == vDec {
		t = vtype{k: vInt}
	}
	return []stateCol{{"value", vtype{k: t.k}, false}}
}

func (s *minMaxState) export(n int) []*col {
	out := s.final(n)
	if out.t.k == vDec {
		out.t = vtype{k: vInt}
	}
	return []*col{out}
}

func (s *minMaxState) mergeState(gids []int32, cols []*col, groups int) {
	c := cols[0]
	if s.t.k == vDec && c.t.k == vInt {
		cc := *c
		cc.t = s.t
		c = &cc
	}
	s.ensure(groups)
	for i, g := range gids {
		if !c.null(i) && s.better(c, i, g) {
			s.set(c, i, g)
		}
	}
}

func (s *minMaxState) final(n int) *col {
	s.ensure(n)
	out := newCol(s.t, n)
	for g := 0; g < n; g++ {
		if !s.has[g] {
			out.setNull(g)
			continue
		}
		out.copyFrom(g, s.v, g)
	}
	return out
}

// distinctState: COUNT(DISTINCT x) with exact sets of canonical value
// encodings.
type distinctState struct {
	sets []map[string]struct{}
	buf  []byte
}

func (s *distinctState) add(g int32, v []byte) {
	m := s.sets[g]
	if m == nil {
		m = map[string]struct{}{}
		s.sets[g] = m
	}
	if _, ok := m[string(v)]; !ok {
		m[string(v)] = struct{}{}
	}
}

func (s *distinctState) update(gids []int32, arg *col, groups int) {
	s.sets = grow(s.sets, groups)
	for i, g := range gids {
		if arg.null(i) {
			continue
		}
		s.buf = encodeValue(s.buf[:0], arg, i)
		s.add(g, s.buf)
	}
}

func (s *distinctState) stateTypes() []stateCol {
	return []stateCol{{"set", vtype{k: vStr}, true}}
}

// encodeSet serialises a set: uvarint count, then per value (sorted) a
// uvarint length and the canonical value encoding.
func encodeSet(m map[string]struct{}) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b := binary.AppendUvarint(nil, uint64(len(keys)))
	for _, k := range keys {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
	}
	return string(b)
}

func (s *distinctState) export(n int) []*col {
	s.sets = grow(s.sets, n)
	out := newCol(vtype{k: vStr}, n)
	for g := 0; g < n; g++ {
		out.s[g] = encodeSet(s.sets[g])
	}
	return []*col{out}
}

func (s *distinctState) mergeState(gids []int32, cols []*col, groups int) {
	s.sets = grow(s.sets, groups)
	c := cols[0]
	for i, g := range gids {
		if c.null(i) {
			continue
		}
		b := []byte(c.s[c.idx(i)])
		cnt, k := binary.Uvarint(b)
		if k <= 0 {
			continue
		}
		b = b[k:]
		for ; cnt > 0; cnt-- {
			l, k := binary.Uvarint(b)
			if k <= 0 || uint64(len(b)-k) < l {
				break
			}
			s.add(g, b[k:k+int(l)])
			b = b[k+int(l):]
		}
	}
}

func (s *distinctState) final(n int) *col {
	s.sets = grow(s.sets, n)
	out := newCol(vtype{k: vInt}, n)
	for g := 0; g < n; g++ {
		out.i[g] = int64(len(s.sets[g]))
	}
	return out
}

// hashAgg is a complete aggregation: grouper + states.
type hashAgg struct {
	keys   []*bexp
	specs  []*aggSpec
	g      *grouper
	states []aggState
	gids   []int32
}

func newHashAgg(keys []*bexp, specs []*aggSpec) *hashAgg {
	types := make([]vtype, len(keys))
	for i, k := range keys {
		types[i] = k.t
	}
	a := &hashAgg{keys: keys, specs: specs, g: newGrouper(types)}
	for _, s := range specs {
		a.states = append(a.states, newAggState(s))
	}
	return a
}

// add folds a phase-1 frame into the aggregation.
func (a *hashAgg) add(fr *frame) {
	if fr.n == 0 {
		return
	}
	kc := make([]*col, len(a.keys))
	for i, k := range a.keys {
		if a.g.mStr != nil && k.src > 0 {
			// A string column key: the grouper reads dictionary codes
			// without per-row strings.
			kc[i] = fr.cols[k.src-1]
			continue
		}
		kc[i] = k.eval(fr)
	}
	a.gids = a.g.lookup(kc, fr.n, a.gids)
	for j, s := range a.specs {
		var arg *col
		if s.arg != nil {
			arg = s.arg.eval(fr)
		}
		a.states[j].update(a.gids, arg, a.g.n)
	}
}

// stateColumns exports keys and states.
func (a *hashAgg) stateColumns() (keys []*col, states [][]*col) {
	n := a.g.n
	keys = append(keys, a.g.keys...)
	if len(a.g.keys) == 0 {
		keys = nil
	}
	for _, s := range a.states {
		states = append(states, s.export(n))
	}
	return keys, states
}

// mergeColumns merges exported keys and states (n rows).
func (a *hashAgg) mergeColumns(keys []*col, states [][]*col, n int) {
	if n == 0 {
		return
	}
	a.gids = a.g.lookup(keys, n, a.gids)
	for j, s := range a.states {
		s.mergeState(a.gids, states[j], a.g.n)
	}
}

// merge folds another aggregation of the same query into a.
func (a *hashAgg) merge(o *hashAgg) {
	keys, states := o.stateColumns()
	a.mergeColumns(keys, states, o.g.n)
}

// result is the phase-2 frame: keys then aggregate results.
func (a *hashAgg) result() *frame {
	n := a.g.n
	fr := &frame{n: n}
	fr.cols = append(fr.cols, a.g.keys...)
	for _, s := range a.states {
		fr.cols = append(fr.cols, s.final(n))
	}
	return fr
}
