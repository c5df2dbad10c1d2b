package txlog

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"math/big"
	"strconv"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// This file renders the typed add.stats_parsed and add.partitionValues_parsed
// checkpoint columns back into the string forms of the JSON log (stats JSON,
// partition value strings), so that consumers of ReadCheckpoint only deal
// with one representation.

// leafKind says how a typed leaf value is rendered.
type leafKind int

const (
	lkPlain        leafKind = iota // numbers, booleans, strings as they are
	lkDate                         // INT32 days since epoch
	lkTimestamp                    // UTC-adjusted timestamp (unit in tsUnit)
	lkTimestampNTZ                 // timestamp without time zone
	lkDecimal                      // unscaled integer with scale
	lkInt96                        // legacy INT96 timestamp (UTC)
)

type parsedNode struct {
	name     string
	def      int // definition level at which the node is non-null
	cur      *colCursor
	kind     leafKind
	tsUnit   int64 // nanoseconds per unit of a timestamp
	scale    int
	children []*parsedNode
	// last value read, for rendering a row more than once
	lastRow int64
	lastVal parquet.Value
}

// parsedGroup is a lazily opened typed struct column (stats_parsed or
// partitionValues_parsed). Its cursors start at row 0 and are advanced to
// the requested row on demand.
type parsedGroup struct {
	root *parsedNode
	// probe is a leaf whose definition level tells whether the whole
	// struct is null in a row, so null rows cost one value read.
	probe *parsedNode
}

// null reports whether the struct is null in row.
func (g *parsedGroup) null(row int64) bool {
	if g.probe == nil {
		return true
	}
	return g.probe.value(row).DefinitionLevel() < g.root.def
}

func firstParsedLeaf(n *parsedNode) *parsedNode {
	if n.children == nil {
		if n.cur == nil {
			return nil
		}
		return n
	}
	for _, c := range n.children {
		if l := firstParsedLeaf(c); l != nil {
			return l
		}
	}
	return nil
}

// openParsed opens stats_parsed (stats true) or partitionValues_parsed.
// schema, when not nil, is the table schema used as a type hint.
func openParsed(r *rowGroupReader, c *parquet.Column, schema *StructType, stats bool) *parsedGroup {
	if !stats {
		var hint DataType
		if schema != nil {
			hint = schema
		}
		root := buildParsed(r, c, hint)
		return &parsedGroup{root: root, probe: firstParsedLeaf(root)}
	}
	root := &parsedNode{name: c.Name(), def: defLevel(c)}
	for _, ch := range c.Columns() {
		var hint DataType
		if schema != nil && (ch.Name() == "minValues" || ch.Name() == "maxValues") {
			hint = schema
		}
		root.children = append(root.children, buildParsed(r, ch, hint))
	}
	return &parsedGroup{root: root, probe: firstParsedLeaf(root)}
}

// buildParsed builds the node tree of column c. hint is the Delta type of the
// matching table column, when known (used when Parquet annotations are
// missing).
func buildParsed(r *rowGroupReader, c *parquet.Column, hint DataType) *parsedNode {
	n := &parsedNode{name: c.Name(), def: defLevel(c)}
	if !c.Leaf() {
		st, _ := hint.(*StructType)
		for _, ch := range c.Columns() {
			var h DataType
			if st != nil {
				if f := st.Field(ch.Name()); f != nil {
					h = f.Type
				}
			}
			n.children = append(n.children, buildParsed(r, ch, h))
		}
		return n
	}
	n.cur = r.open(c)
	if c.MaxRepetitionLevel() > 0 {
		n.cur = nil // repeated leaves have no stats; never read
	}
	t := c.Type()
	lt := t.LogicalType()
	switch {
	case t.Kind() == parquet.Int96:
		n.kind = lkInt96
	case lt != nil && lt.Value != nil:
		switch x := lt.Value.(type) {
		case *format.DateType:
			n.kind = lkDate
		case *format.TimestampType:
			n.kind = lkTimestamp
			if !x.IsAdjustedToUTC {
				n.kind = lkTimestampNTZ
			}
			switch x.Unit.Value.(type) {
			case *format.MilliSeconds:
				n.tsUnit = 1e6
			case *format.NanoSeconds:
				n.tsUnit = 1
			default:
				n.tsUnit = 1e3
			}
		case *format.DecimalType:
			n.kind = lkDecimal
			n.scale = int(x.Scale)
		}
	case hint != nil:
		switch h := hint.(type) {
		case *PrimitiveType:
			switch h.Name {
			case TypeDate:
				n.kind = lkDate
			case TypeTimestamp:
				n.kind, n.tsUnit = lkTimestamp, 1e3
			case TypeTimestampNTZ:
				n.kind, n.tsUnit = lkTimestampNTZ, 1e3
			}
		case *DecimalType:
			n.kind, n.scale = lkDecimal, h.Scale
		}
	}
	return n
}

// value returns the leaf value of row (null for missing or repeated leaves).
func (n *parsedNode) value(row int64) parquet.Value {
	if n.cur == nil {
		return parquet.Value{}
	}
	if n.cur.row == row+1 && n.lastRow == row {
		return n.lastVal
	}
	n.lastRow, n.lastVal = row, n.cur.at(row)
	return n.lastVal
}

// appendJSON renders the subtree of n for row as a JSON value, appending to
// dst; ok is false when it is null (or an empty struct).
func (n *parsedNode) appendJSON(dst []byte, row int64) ([]byte, bool) {
	if n.children == nil {
		v := n.value(row)
		if v.IsNull() {
			return dst, false
		}
		return appendLeafJSON(dst, v, n), true
	}
	start := len(dst)
	dst = append(dst, '{')
	any := false
	for _, ch := range n.children {
		mark := len(dst)
		if any {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, ch.name)
		dst = append(dst, ':')
		var ok bool
		dst, ok = ch.appendJSON(dst, row)
		if !ok {
			dst = dst[:mark]
			continue
		}
		any = true
	}
	if !any {
		return dst[:start], false
	}
	return append(dst, '}'), true
}

// stats renders stats_parsed of row; both results are zero when the row has
// no parsed stats.
func (g *parsedGroup) stats(row int64) (*Stats, string) {
	if g.null(row) {
		return nil, ""
	}
	var s Stats
	buf := []byte{'{'}
	any := false
	for _, ch := range g.root.children {
		mark := len(buf)
		if any {
			buf = append(buf, ',')
		}
		buf = appendJSONString(buf, ch.name)
		buf = append(buf, ':')
		valStart := len(buf)
		var ok bool
		buf, ok = ch.appendJSON(buf, row)
		if !ok {
			buf = buf[:mark]
			continue
		}
		any = true
		raw := buf[valStart:]
		switch ch.name {
		case "numRecords":
			if x, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
				s.NumRecords = &x
			}
		case "tightBounds":
			b := string(raw) == "true"
			s.TightBounds = &b
		case "minValues":
			s.MinValues = splitObject(ch, row)
		case "maxValues":
			s.MaxValues = splitObject(ch, row)
		case "nullCount":
			s.NullCount = splitObject(ch, row)
		}
	}
	if !any {
		return nil, ""
	}
	buf = append(buf, '}')
	return &s, string(buf)
}

// splitObject renders each non-null child of n as its own raw JSON value.
func splitObject(n *parsedNode, row int64) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(n.children))
	for _, ch := range n.children {
		b, ok := ch.appendJSON(nil, row)
		if ok {
			out[ch.name] = b
		}
	}
	return out
}

// partitionValues renders partitionValues_parsed of row as partition value
// strings; nil when the struct is null.
func (g *parsedGroup) partitionValues(row int64) map[string]*string {
	if g.null(row) {
		return nil
	}
	out := make(map[string]*string, len(g.root.children))
	for _, ch := range g.root.children {
		if ch.children != nil {
			continue
		}
		v := ch.value(row)
		if v.IsNull() {
			out[ch.name] = nil
			continue
		}
		s := partitionString(v, ch)
		out[ch.name] = &s
	}
	return out
}

// timeOf converts a timestamp leaf value to a time.Time in UTC.
func timeOf(v parquet.Value, n *parsedNode) time.Time {
	if n.kind == lkInt96 {
		b := v.Bytes() // 8 bytes nanos of day, 4 bytes julian day, little endian
		if len(b) != 12 {
			return time.Time{}
		}
		nanos := int64(binary.LittleEndian.Uint64(b[:8]))
		day := int64(binary.LittleEndian.Uint32(b[8:]))
		return time.Unix((day-2440588)*86400, nanos).UTC()
	}
	x := vInt64(v)
	unit := n.tsUnit
	if unit == 0 {
		unit = 1e3
	}
	sec := x / (1e9 / unit)
	rem := x % (1e9 / unit)
	if rem < 0 {
		sec--
		rem += 1e9 / unit
	}
	return time.Unix(sec, rem*unit).UTC()
}

// decimalString renders an unscaled decimal leaf value.
func decimalString(v parquet.Value, scale int) string {
	var unscaled *big.Int
	switch v.Kind() {
	case parquet.Int32, parquet.Int64:
		unscaled = big.NewInt(vInt64(v))
	default:
		b := v.ByteArray()
		unscaled = new(big.Int).SetBytes(b)
		if len(b) > 0 && b[0]&0x80 != 0 { // negative two's complement
			unscaled.Sub(unscaled, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
		}
	}
	s := unscaled.String()
	if scale <= 0 {
		return s
	}
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	for len(s) <= scale {
		s = "0" + s
	}
	s = s[:len(s)-scale] + "." + s[len(s)-scale:]
	if neg {
		s = "-" + s
	}
	return s
}

func appendLeafJSON(dst []byte, v parquet.Value, n *parsedNode) []byte {
	switch n.kind {
	case lkDate:
		return appendJSONString(dst, time.Unix(vInt64(v)*86400, 0).UTC().Format("2006-01-02"))
	case lkTimestamp, lkInt96:
		return appendJSONString(dst, timeOf(v, n).Format("2006-01-02T15:04:05.000Z07:00"))
	case lkTimestampNTZ:
		return appendJSONString(dst, timeOf(v, n).Format("2006-01-02T15:04:05.000"))
	case lkDecimal:
		return append(dst, decimalString(v, n.scale)...)
	}
	switch v.Kind() {
	case parquet.Boolean:
		return strconv.AppendBool(dst, v.Boolean())
	case parquet.Int32, parquet.Int64:
		return strconv.AppendInt(dst, vInt64(v), 10)
	case parquet.Float:
		return appendJSONFloat(dst, float64(v.Float()), 32)
	case parquet.Double:
		return appendJSONFloat(dst, v.Double(), 64)
	}
	return appendJSONString(dst, string(v.ByteArray()))
}

func appendJSONFloat(dst []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(dst, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(dst, `"-Infinity"`...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, bits)
}

func appendJSONString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // cannot fail for a string
	return append(dst, b...)
}

// partitionString renders a typed partition value in the string form used
// by add.partitionValues.
func partitionString(v parquet.Value, n *parsedNode) string {
	switch n.kind {
	case lkDate:
		return time.Unix(vInt64(v)*86400, 0).UTC().Format("2006-01-02")
	case lkTimestamp, lkInt96:
		return timeOf(v, n).Format("2006-01-02 15:04:05.999999")
	case lkTimestampNTZ:
		return timeOf(v, n).Format("2006-01-02 15:04:05.999999")
	case lkDecimal:
		return decimalString(v, n.scale)
	}
	switch v.Kind() {
	case parquet.Boolean:
		return strconv.FormatBool(v.Boolean())
	case parquet.Int32, parquet.Int64:
		return strconv.FormatInt(vInt64(v), 10)
	case parquet.Float:
		return strconv.FormatFloat(float64(v.Float()), 'g', -1, 32)
	case parquet.Double:
		return strconv.FormatFloat(v.Double(), 'g', -1, 64)
	}
	return string(v.ByteArray())
}
