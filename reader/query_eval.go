package reader

import (
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Vectorised evaluation kernels. Errors on values never happen: as in
// Spark's default (non-ANSI) mode, invalid casts, division by zero and the
// like give NULL.

var pow10i = func() [19]int64 {
	var p [19]int64
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// castCol converts c to type to.
func castCol(c *col, to vtype) *col {
	from := c.t
	if from.k == to.k && (to.k != vDec || from.scale == to.scale) {
		if to.dt == nil && from.dt != nil {
			// drop the declared column type (e.g. integer -> bigint output)
			out := *c
			out.t = to
			return &out
		}
		return c
	}
	n := c.n
	out := newCol(to, n)
	out.konst = c.konst
	if from.k == vNull {
		out.nulls = make([]bool, n)
		for i := range out.nulls {
			out.nulls[i] = true
		}
		return out
	}
	if c.nulls != nil {
		out.nulls = append([]bool(nil), c.nulls...)
	}
	for i := 0; i < n; i++ {
		if out.nulls != nil && out.nulls[i] {
			continue
		}
		if !castOne(c, i, out, i) {
			out.setNull(i)
		}
	}
	return out
}

// castOne converts c[i] into out[j]; false means NULL.
func castOne(c *col, i int, out *col, j int) bool {
	to := out.t
	switch c.t.k {
	case vBool:
		x := c.b[i]
		switch to.k {
		case vInt:
			out.i[j] = b2i(x)
		case vFloat:
			out.f[j] = float64(b2i(x))
		case vDec:
			out.i[j] = b2i(x) * pow10i[to.scale]
		case vStr:
			out.s[j] = strconv.FormatBool(x)
		default:
			return false
		}
	case vInt:
		x := c.i[i]
		switch to.k {
		case vBool:
			out.b[j] = x != 0
		case vFloat:
			out.f[j] = float64(x)
		case vDec:
			out.i[j] = x * pow10i[to.scale]
		case vStr:
			out.s[j] = strconv.FormatInt(x, 10)
		case vTS:
			out.i[j] = x * 1_000_000
		default:
			return false
		}
	case vFloat:
		x := c.f[i]
		switch to.k {
		case vBool:
			out.b[j] = x != 0
		case vInt:
			if x != x || math.IsInf(x, 0) {
				return false
			}
			out.i[j] = int64(x)
		case vDec:
			if x != x || math.IsInf(x, 0) {
				return false
			}
			out.i[j] = int64(math.Round(x * float64(pow10i[to.scale])))
		case vStr:
			out.s[j] = formatDouble(x)
		case vTS:
			if x != x || math.IsInf(x, 0) {
				return false
			}
			out.i[j] = int64(x * 1e6)
		default:
			return false
		}
	case vDec:
		x := c.i[i]
		s := c.t.scale
		switch to.k {
		case vBool:
			out.b[j] = x != 0
		case vInt:
			out.i[j] = x / pow10i[s]
		case vFloat:
			out.f[j] = float64(x) / float64(pow10i[s])
		case vDec:
			out.i[j] = rescale(x, s, to.scale)
		case vStr:
			out.s[j] = formatUnscaled(x, s)
		default:
			return false
		}
	case vStr:
		x := strings.TrimSpace(c.s[i])
		switch to.k {
		case vBool:
			switch strings.ToLower(x) {
			case "true", "t", "yes", "y", "1":
				out.b[j] = true
			case "false", "f", "no", "n", "0":
				out.b[j] = false
			default:
				return false
			}
		case vInt:
			n, err := strconv.ParseInt(x, 10, 64)
			if err != nil {
				f, ferr := strconv.ParseFloat(x, 64)
				if ferr != nil || f != f || math.IsInf(f, 0) {
					return false
				}
				n = int64(f)
			}
			out.i[j] = n
		case vFloat:
			f, err := parseNumber(doubleType, x)
			if err != nil {
				return false
			}
			out.f[j] = toFloat(f)
		case vDec:
			u, ok := parseUnscaled(x, to.scale)
			if !ok {
				return false
			}
			out.i[j] = u
		case vDate:
			d, err := parseDate(x)
			if err != nil {
				return false
			}
			out.i[j] = d
		case vTS:
			us, err := parseTimestamp(x)
			if err != nil {
				return false
			}
			out.i[j] = us
		default:
			return false
		}
	case vDate:
		d := c.i[i]
		switch to.k {
		case vTS:
			out.i[j] = d * 86400_000_000
		case vStr:
			out.s[j] = time.Unix(d*86400, 0).UTC().Format("2006-01-02")
		default:
			return false
		}
	case vTS:
		us := c.i[i]
		switch to.k {
		case vDate:
			out.i[j] = floorDiv(us, 86400_000_000)
		case vInt:
			out.i[j] = floorDiv(us, 1_000_000)
		case vFloat:
			out.f[j] = float64(us) / 1e6
		case vStr:
			out.s[j] = formatTS(us)
		default:
			return false
		}
	case vAny:
		if to.k == vStr {
			out.s[j] = canonAny(c.a[i])
			return true
		}
		return false
	default:
		return false
	}
	return true
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func formatDouble(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEn") {
		s += ".0"
	}
	return s
}

func formatTS(us int64) string {
	t := time.UnixMicro(us).UTC()
	if us%1_000_000 == 0 {
		return t.Format("2006-01-02 15:04:05")
	}
	return strings.TrimRight(t.Format("2006-01-02 15:04:05.000000"), "0")
}

func formatUnscaled(x int64, scale int) string {
	return Decimal{Unscaled: bigInt(x), Scale: scale}.String()
}

// rescale changes the scale of an unscaled value (rounding half up).
func rescale(x int64, from, to int) int64 {
	switch {
	case to > from:
		return x * pow10i[to-from]
	case to < from:
		d := pow10i[from-to]
		q, r := x/d, x%d
		if r*2 >= d {
			q++
		} else if r*2 <= -d {
			q--
		}
		return q
	}
	return x
}

// parseUnscaled parses a decimal string at a scale (rounding half up).
func parseUnscaled(s string, scale int) (int64, bool) {
	neg := false
	if strings.HasPrefix(s, "-") {
		neg, s = true, s[1:]
	} else if strings.HasPrefix(s, "+") {
		s = s[1:]
	}
	ip, fp, _ := strings.Cut(s, ".")
	if ip == "" && fp == "" {
		return 0, false
	}
	for _, r := range ip + fp {
		if r < '0' || r > '9' {
			return 0, false
		}
	}
	round := false
	if len(fp) > scale {
		round = fp[scale] >= '5'
		fp = fp[:scale]
	}
	fp += strings.Repeat("0", scale-len(fp))
	if ip == "" {
		ip = "0"
	}
	u, err := strconv.ParseInt(ip+fp, 10, 64)
	if err != nil {
		return 0, false
	}
	if round {
		u++
	}
	if neg {
		u = -u
	}
	return u, true
}

// Comparisons. Both operands already have the same kind (the binder
// casts); the result is a vBool col.

type cmpKind uint8

const (
	cEq cmpKind = iota
	cNe
	cLt
	cLe
	cGt
	cGe
	cNullSafeEq
)

func (k cmpKind) holds(c int) bool {
	switch k {
	case cEq, cNullSafeEq:
		return c == 0
	case cNe:
		return c != 0
	case cLt:
		return c < 0
	case cLe:
		return c <= 0
	case cGt:
		return c > 0
	}
	return c >= 0
}

func compareCols(op cmpKind, l, r *col, n int) *col {
	out := newCol(vtype{k: vBool}, n)
	if l.konst && r.konst {
		out.konst = true
	}
	m := n
	if out.konst {
		m = 1
		out.b, out.n = out.b[:1], 1
	}
	hasNulls := l.nulls != nil || r.nulls != nil
	if hasNulls {
		out.nulls = make([]bool, m)
	}
	switch l.t.k {
	case vInt, vDec, vDate, vTS:
		switch {
		case !l.konst && r.konst && !r.null(0):
			y := r.i[0]
			li := l.i[:m]
			switch op {
			case cEq, cNullSafeEq:
				for i, x := range li {
					out.b[i] = x == y
				}
			case cNe:
				for i, x := range li {
					out.b[i] = x != y
				}
			case cLt:
				for i, x := range li {
					out.b[i] = x < y
				}
			case cLe:
				for i, x := range li {
					out.b[i] = x <= y
				}
			case cGt:
				for i, x := range li {
					out.b[i] = x > y
				}
			case cGe:
				for i, x := range li {
					out.b[i] = x >= y
				}
			}
		default:
			for i := 0; i < m; i++ {
				x, y := l.i[l.idx(i)], r.i[r.idx(i)]
				out.b[i] = op.holds(cmp3(x < y, x > y))
			}
		}
	case vFloat:
		for i := 0; i < m; i++ {
			c, _ := cmpFloat(l.f[l.idx(i)], r.f[r.idx(i)])
			out.b[i] = op.holds(c)
		}
	case vStr:
		if !l.konst && r.konst && !r.null(0) && (op == cEq || op == cNe) {
			y := r.s[0]
			eq := op == cEq
			for i := 0; i < m; i++ {
				out.b[i] = (l.s[i] == y) == eq
			}
		} else {
			for i := 0; i < m; i++ {
				out.b[i] = op.holds(strings.Compare(l.s[l.idx(i)], r.s[r.idx(i)]))
			}
		}
	case vBool:
		for i := 0; i < m; i++ {
			x, y := l.b[l.idx(i)], r.b[r.idx(i)]
			out.b[i] = op.holds(cmp3(!x && y, x && !y))
		}
	case vAny:
		for i := 0; i < m; i++ {
			out.b[i] = op.holds(strings.Compare(canonAny(l.a[l.idx(i)]), canonAny(r.a[r.idx(i)])))
		}
	case vNull:
		hasNulls = true
		if out.nulls == nil {
			out.nulls = make([]bool, m)
		}
	}
	if hasNulls {
		for i := 0; i < m; i++ {
			ln, rn := l.null(i), r.null(i)
			if op == cNullSafeEq {
				if ln || rn {
					out.b[i] = ln && rn
				}
				continue
			}
			if ln || rn {
				out.nulls[i] = true
				out.b[i] = false
			}
		}
		if op == cNullSafeEq {
			out.nulls = nil
		}
	}
	return out
}

// Three-valued logic.

func andCols(l, r *col, n int) *col {
	out := newCol(vtype{k: vBool}, n)
	for i := 0; i < n; i++ {
		ln, rn := l.null(i), r.null(i)
		lv := !ln && l.b[l.idx(i)]
		rv := !rn && r.b[r.idx(i)]
		switch {
		case !ln && !lv || !rn && !rv:
			out.b[i] = false
		case ln || rn:
			out.setNull(i)
		default:
			out.b[i] = true
		}
	}
	return out
}

func orCols(l, r *col, n int) *col {
	out := newCol(vtype{k: vBool}, n)
	for i := 0; i < n; i++ {
		ln, rn := l.null(i), r.null(i)
		lv := !ln && l.b[l.idx(i)]
		rv := !rn && r.b[r.idx(i)]
		switch {
		case lv || rv:
			out.b[i] = true
		case ln || rn:
			out.setNull(i)
		}
	}
	return out
}

func notCol(c *col, n int) *col {
	out := newCol(vtype{k: vBool}, n)
	for i := 0; i < n; i++ {
		if c.null(i) {
			out.setNull(i)
			continue
		}
		out.b[i] = !c.b[c.idx(i)]
	}
	return out
}

func isNullCol(c *col, not bool, n int) *col {
	out := newCol(vtype{k: vBool}, n)
	for i := 0; i < n; i++ {
		out.b[i] = c.null(i) != not
	}
	return out
}

// Arithmetic. Operands have the result kind already (the binder casts),
// except date +/- integer.

func arith(op byte, t vtype, l, r *col, n int) *col {
	out := newCol(t, n)
	for i := 0; i < n; i++ {
		if l.null(i) || r.null(i) {
			out.setNull(i)
			continue
		}
		li, ri := l.idx(i), r.idx(i)
		switch t.k {
		case vInt, vDate, vDec: // decimals: unscaled int64s; for *, operand scales add up to t.scale
			x, y := l.i[li], r.i[ri]
			switch op {
			case '+':
				out.i[i] = x + y
			case '-':
				out.i[i] = x - y
			case '*':
				out.i[i] = x * y
			case '%':
				if y == 0 {
					out.setNull(i)
				} else {
					out.i[i] = x % y
				}
			}
		case vFloat:
			x, y := l.f[li], r.f[ri]
			switch op {
			case '+':
				out.f[i] = x + y
			case '-':
				out.f[i] = x - y
			case '*':
				out.f[i] = x * y
			case '/':
				if y == 0 {
					out.setNull(i)
				} else {
					out.f[i] = x / y
				}
			case '%':
				if y == 0 {
					out.setNull(i)
				} else {
					out.f[i] = math.Mod(x, y)
				}
			}
		}
	}
	return out
}

func negate(c *col, n int) *col {
	out := newCol(c.t, n)
	out.t.dt = nil
	for i := 0; i < n; i++ {
		if c.null(i) {
			out.setNull(i)
			continue
		}
		switch c.t.k {
		case vInt, vDec:
			out.i[i] = -c.i[c.idx(i)]
		case vFloat:
			out.f[i] = -c.f[c.idx(i)]
		}
	}
	return out
}

// LIKE patterns: % any sequence, _ one character, \ escapes.

type likePattern struct {
	parts []likePart
}

type likePart struct {
	lit string
	any bool // %
	one bool // _
}

func compileLike(p string) *likePattern {
	lp := &likePattern{}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			lp.parts = append(lp.parts, likePart{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(p); {
		r, sz := utf8.DecodeRuneInString(p[i:])
		switch {
		case r == '\\' && i+sz < len(p):
			r2, sz2 := utf8.DecodeRuneInString(p[i+sz:])
			lit.WriteRune(r2)
			i += sz + sz2
			continue
		case r == '%':
			flush()
			lp.parts = append(lp.parts, likePart{any: true})
		case r == '_':
			flush()
			lp.parts = append(lp.parts, likePart{one: true})
		default:
			lit.WriteRune(r)
		}
		i += sz
	}
	flush()
	return lp
}

func (lp *likePattern) match(s string) bool { return likeMatch(lp.parts, s) }

func likeMatch(parts []likePart, s string) bool {
	for len(parts) > 0 {
		p := parts[0]
		switch {
		case p.lit != "":
			if !strings.HasPrefix(s, p.lit) {
				return false
			}
			s = s[len(p.lit):]
		case p.one:
			if s == "" {
				return false
			}
			_, sz := utf8.DecodeRuneInString(s)
			s = s[sz:]
		case p.any:
			rest := parts[1:]
			if len(rest) == 0 {
				return true
			}
			if rest[0].lit != "" && !hasWild(rest[1:]) {
				// common case: '%suffix' or '%mid%'
				if len(rest) == 1 {
					return strings.HasSuffix(s, rest[0].lit)
				}
			}
			for k := 0; k <= len(s); {
				if likeMatch(rest, s[k:]) {
					return true
				}
				if k == len(s) {
					break
				}
				_, sz := utf8.DecodeRuneInString(s[k:])
				k += sz
			}
			return false
		}
		parts = parts[1:]
	}
	return s == ""
}

func hasWild(parts []likePart) bool {
	for _, p := range parts {
		if p.any || p.one {
			return true
		}
	}
	return false
}

func likeCol(c *col, pat *col, not, fold bool, n int) *col {
	out := newCol(vtype{k: vBool}, n)
	var fixed *likePattern
	if pat.konst && !pat.null(0) {
		p := pat.s[0]
		if fold {
			p = strings.ToLower(p)
		}
		fixed = compileLike(p)
	}
	for i := 0; i < n; i++ {
		if c.null(i) || pat.null(i) {
			out.setNull(i)
			continue
		}
		lp := fixed
		if lp == nil {
			p := pat.s[pat.idx(i)]
			if fold {
				p = strings.ToLower(p)
			}
			lp = compileLike(p)
		}
		s := c.s[c.idx(i)]
		if fold {
			s = strings.ToLower(s)
		}
		out.b[i] = lp.match(s) != not
	}
	return out
}
