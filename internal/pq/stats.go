package pq

import (
	"bytes"
	"encoding/json"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kappa-lake/kappa/txlog"
)

// StringPrefixLength is how many characters of a string min/max are kept.
const StringPrefixLength = 32

// Table properties that shape stats.
const (
	PropNumIndexedCols = "delta.dataSkippingNumIndexedCols"
	PropStatsColumns   = "delta.dataSkippingStatsColumns"
	DefaultIndexedCols = 32
)

// colStats accumulates one leaf's stats over a file.
type colStats struct {
	nulls      int64
	has        bool // at least one non-null value seen
	noMinMax   bool // NaN/Inf seen or unrepresentable: omit min/max
	minI, maxI int64
	minF, maxF float64
	minB, maxB []byte // strings; FIXED_LEN_BYTE_ARRAY decimals (two's complement)
}

// statsTarget is one entry of the stats tree: a leaf with min/max/nullCount or
// a list/map with a whole-value nullCount.
type statsTarget struct {
	n       *node
	minMax  bool
	include bool
}

// statsPlan decides which columns get stats (delta.dataSkippingNumIndexedCols
// / delta.dataSkippingStatsColumns).
type statsPlan struct {
	targets map[*node]*statsTarget
	list    []*statsTarget // the included targets, in schema order
}

func minMaxEligible(lt ltype) bool {
	switch lt {
	case lBool, lBinary:
		return false
	}
	return true
}

func newStatsPlan(p *plan, props map[string]string) *statsPlan {
	sp := &statsPlan{targets: map[*node]*statsTarget{}}
	limit := DefaultIndexedCols
	if v, ok := props[PropNumIndexedCols]; ok {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
			limit = n
		}
	}
	var cols map[string]bool
	if v := strings.TrimSpace(props[PropStatsColumns]); v != "" {
		cols = map[string]bool{}
		for _, c := range strings.Split(v, ",") {
			c = strings.TrimSpace(c)
			c = strings.ReplaceAll(c, "`", "")
			if c != "" {
				cols[strings.ToLower(c)] = true
			}
		}
	}
	count := 0
	var walk func(n *node, selected bool)
	walk = func(n *node, selected bool) {
		if cols != nil && cols[strings.ToLower(strings.Join(n.lpath, "."))] {
			selected = true
		}
		switch n.kind {
		case nStruct:
			for _, c := range n.children {
				walk(c, selected)
			}
			return
		case nList, nMap:
			// whole-value null count only
		}
		inc := count < limit || limit < 0
		if cols != nil {
			inc = selected
		}
		count++
		t := &statsTarget{n: n, minMax: n.kind == nLeaf && minMaxEligible(n.lt), include: inc}
		sp.targets[n] = t
		if inc {
			sp.list = append(sp.list, t)
		}
	}
	for _, c := range p.root.children {
		walk(c, false)
	}
	return sp
}

// accumulate folds a buffered row group into the file stats.
func (sp *statsPlan) accumulate(cs *colSet, st []colStats) {
	for _, t := range sp.list {
		n := t.n
		if n.kind != nLeaf {
			// null count of the list/map itself: rows of its first leaf
			// whose definition level stops before the value is present.
			c := &cs.cols[n.firstLeaf]
			s := &st[n.firstLeaf]
			for e, d := range c.def {
				if (c.rep == nil || c.rep[e] == 0) && d < n.def {
					s.nulls++
				}
			}
			continue
		}
		c := &cs.cols[n.leaf]
		s := &st[n.leaf]
		for _, d := range c.def {
			if d < n.def {
				s.nulls++
			}
		}
		if t.minMax {
			s.fold(c)
		}
	}
}

func (s *colStats) fold(c *colBuf) {
	switch c.leaf.pkind {
	case kInt32:
		if len(c.i32) == 0 {
			return
		}
		lo, hi := c.i32[0], c.i32[0]
		for _, v := range c.i32[1:] {
			lo = min(lo, v)
			hi = max(hi, v)
		}
		s.int(int64(lo))
		s.int(int64(hi))
	case kInt64:
		if len(c.i64) == 0 {
			return
		}
		lo, hi := c.i64[0], c.i64[0]
		for _, v := range c.i64[1:] {
			lo = min(lo, v)
			hi = max(hi, v)
		}
		s.int(lo)
		s.int(hi)
	case kFloat:
		for _, v := range c.f32 {
			s.float(float64(v))
		}
	case kDouble:
		for _, v := range c.f64 {
			s.float(v)
		}
	case kBytes:
		if len(c.offs) == 0 {
			return
		}
		// bounds of the chunk by reference, then one copy each
		lo := c.bytes[:c.offs[0]]
		hi := lo
		start := c.offs[0]
		for _, end := range c.offs[1:] {
			v := c.bytes[start:end]
			if bytes.Compare(v, lo) < 0 {
				lo = v
			} else if bytes.Compare(v, hi) > 0 {
				hi = v
			}
			start = end
		}
		s.bytes(lo, bytes.Compare)
		s.bytes(hi, bytes.Compare)
	case kFixed:
		w := c.leaf.fixedLen
		for i := 0; i+w <= len(c.bytes); i += w {
			s.bytes(c.bytes[i:i+w], compareFixed)
		}
	}
}

func (s *colStats) int(v int64) {
	if !s.has {
		s.minI, s.maxI, s.has = v, v, true
		return
	}
	s.minI = min(s.minI, v)
	s.maxI = max(s.maxI, v)
}

func (s *colStats) float(v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		s.noMinMax = true
		return
	}
	if !s.has {
		s.minF, s.maxF, s.has = v, v, true
		return
	}
	if v < s.minF || (v == 0 && s.minF == 0 && math.Signbit(v)) {
		s.minF = v
	}
	if v > s.maxF || (v == 0 && s.maxF == 0 && !math.Signbit(v)) {
		s.maxF = v
	}
}

// bytes folds a byte-array value; the bounds are copied.
func (s *colStats) bytes(v []byte, cmp func(a, b []byte) int) {
	if !s.has {
		s.minB, s.maxB, s.has = append(s.minB[:0], v...), append(s.maxB[:0], v...), true
		return
	}
	if cmp(v, s.minB) < 0 {
		s.minB = append(s.minB[:0], v...)
	} else if cmp(v, s.maxB) > 0 {
		s.maxB = append(s.maxB[:0], v...)
	}
}

// compareFixed orders equal-length big-endian two's complement integers.
func compareFixed(a, b []byte) int {
	if len(a) > 0 && (a[0]^b[0])&0x80 != 0 {
		if a[0]&0x80 != 0 {
			return -1 // a negative, b not
		}
		return 1
	}
	return bytes.Compare(a, b)
}

// statsJSON renders the Delta stats of a file.
func (sp *statsPlan) statsJSON(p *plan, st []colStats, numRecords int64) string {
	var b bytes.Buffer
	b.WriteString(`{"numRecords":`)
	b.WriteString(strconv.FormatInt(numRecords, 10))
	for _, section := range []string{"minValues", "maxValues", "nullCount"} {
		var sec bytes.Buffer
		if sp.object(&sec, p.root, st, section) {
			b.WriteString(`,"` + section + `":`)
			b.Write(sec.Bytes())
		}
	}
	b.WriteString("}")
	return b.String()
}

// object writes the stats object of struct n for one section; false when empty.
func (sp *statsPlan) object(b *bytes.Buffer, n *node, st []colStats, section string) bool {
	wrote := false
	b.WriteByte('{')
	for _, c := range n.children {
		var val []byte
		if c.kind == nStruct {
			var sub bytes.Buffer
			if !sp.object(&sub, c, st, section) {
				continue
			}
			val = sub.Bytes()
		} else {
			t := sp.targets[c]
			if t == nil || !t.include {
				continue
			}
			s := &st[c.firstLeaf]
			if section == "nullCount" {
				val = strconv.AppendInt(nil, s.nulls, 10)
			} else {
				if !t.minMax || !s.has || s.noMinMax {
					continue
				}
				var ok bool
				if val, ok = renderBound(c, s, section == "maxValues"); !ok {
					continue
				}
			}
		}
		if wrote {
			b.WriteByte(',')
		}
		name, _ := json.Marshal(c.name)
		b.Write(name)
		b.WriteByte(':')
		b.Write(val)
		wrote = true
	}
	b.WriteByte('}')
	return wrote
}

const (
	tsLayoutUTC = "2006-01-02T15:04:05.000Z07:00"
	tsLayoutNTZ = "2006-01-02T15:04:05.000"
)

// renderBound renders a min (or max) value as JSON.
func renderBound(n *node, s *colStats, isMax bool) ([]byte, bool) {
	pick := func(lo, hi int64) int64 {
		if isMax {
			return hi
		}
		return lo
	}
	switch n.lt {
	case lLong, lInt, lShort, lByte:
		return strconv.AppendInt(nil, pick(s.minI, s.maxI), 10), true
	case lFloat, lDouble:
		f := s.minF
		if isMax {
			f = s.maxF
		}
		// float32 values are rendered with their exact float64 digits so
		// that the bound holds whether a reader parses it as float or double
		out := strconv.AppendFloat(nil, f, 'g', -1, 64)
		if !bytes.ContainsAny(out, ".e") {
			out = append(out, ".0"...)
		}
		return out, true
	case lDate:
		t := unixEpochDay.AddDate(0, 0, int(pick(s.minI, s.maxI)))
		if t.Year() < 1 || t.Year() > 9999 {
			return nil, false
		}
		return jsonString(t.Format("2006-01-02")), true
	case lTS, lTSNTZ:
		us := pick(s.minI, s.maxI)
		ms := floorDiv(us, 1000)
		if isMax && us%1000 != 0 {
			ms++ // keep the max an upper bound after truncation
		}
		t := time.UnixMilli(ms).UTC()
		if t.Year() < 1 || t.Year() > 9999 {
			return nil, false
		}
		layout := tsLayoutUTC
		if n.lt == lTSNTZ {
			layout = tsLayoutNTZ
		}
		return jsonString(t.Format(layout)), true
	case lString:
		v := s.minB
		if isMax {
			v = s.maxB
		}
		str, ok := truncateString(string(v), isMax)
		if !ok {
			return nil, false
		}
		return jsonString(str), true
	case lDec:
		scale := n.typ.(*txlog.DecimalType).Scale
		var u *big.Int
		if n.pkind == kFixed {
			b := s.minB
			if isMax {
				b = s.maxB
			}
			u = fromFixed(b)
		} else {
			u = big.NewInt(pick(s.minI, s.maxI))
		}
		return []byte(formatDecimal(u, scale)), true
	}
	return nil, false
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// truncateString keeps StringPrefixLength characters. A truncated max is
// turned into an upper bound by incrementing its last incrementable
// character; false when no bound exists.
func truncateString(s string, isMax bool) (string, bool) {
	if utf8.RuneCountInString(s) <= StringPrefixLength {
		return s, true
	}
	runes := []rune(s)[:StringPrefixLength]
	if !isMax {
		return string(runes), true
	}
	for i := len(runes) - 1; i >= 0; i-- {
		r := runes[i] + 1
		if r >= 0xD800 && r <= 0xDFFF {
			r = 0xE000
		}
		if r <= utf8.MaxRune {
			runes[i] = r
			return string(runes[:i+1]), true
		}
	}
	return "", false
}

func jsonString(s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return b
}
