package reader

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/format"

	"github.com/kappa-lake/kappa/txlog"
)

// pqNode is one element of a Parquet file schema, rebuilt as a tree from the
// footer's flattened SchemaElement list (so LIST/MAP annotations, field ids
// and logical types are all at hand).
type pqNode struct {
	el       *format.SchemaElement
	name     string
	children []*pqNode
	leaf     int // leaf column index, -1 for groups
	def, rep int // max definition / repetition level at this node
}

func (n *pqNode) isLeaf() bool { return n.leaf >= 0 }

func (n *pqNode) repetition() format.FieldRepetitionType {
	if r, ok := n.el.RepetitionType.Get(); ok {
		return r
	}
	return format.Required
}

func (n *pqNode) converted() (deprecated.ConvertedType, bool) { return n.el.ConvertedType.Get() }

func (n *pqNode) child(name string) *pqNode {
	for _, c := range n.children {
		if c.name == name {
			return c
		}
	}
	return nil
}

// buildPQTree rebuilds the schema tree of a Parquet footer.
func buildPQTree(md *format.FileMetaData) (*pqNode, error) {
	els := md.Schema
	if len(els) == 0 {
		return nil, errors.New("parquet footer has no schema")
	}
	pos, leaf := 0, 0
	var build func(def, rep int, root bool) (*pqNode, error)
	build = func(def, rep int, root bool) (*pqNode, error) {
		if pos >= len(els) {
			return nil, errors.New("parquet schema truncated")
		}
		el := &els[pos]
		pos++
		n := &pqNode{el: el, name: el.Name, leaf: -1}
		if !root {
			switch n.repetition() {
			case format.Optional:
				def++
			case format.Repeated:
				def++
				rep++
			}
		}
		n.def, n.rep = def, rep
		nc, hasChildren := el.NumChildren.Get()
		if !hasChildren || (nc == 0 && el.Type.Valid) {
			n.leaf = leaf
			leaf++
			return n, nil
		}
		for range int(nc) {
			c, err := build(def, rep, false)
			if err != nil {
				return nil, err
			}
			n.children = append(n.children, c)
		}
		return n, nil
	}
	return build(0, 0, true)
}

// column mapping modes.
type mappingMode int

const (
	mappingNone mappingMode = iota
	mappingName
	mappingID
)

const (
	physicalNameKey = "delta.columnMapping.physicalName"
	fieldIDKey      = "delta.columnMapping.id"
)

func physicalName(f *txlog.StructField, mode mappingMode) string {
	if mode == mappingNone {
		return f.Name
	}
	if raw, ok := f.Metadata[physicalNameKey]; ok {
		var s string
		if json.Unmarshal(raw, &s) == nil && s != "" {
			return s
		}
	}
	return f.Name
}

func fieldID(f *txlog.StructField) (int32, bool) {
	raw, ok := f.Metadata[fieldIDKey]
	if !ok {
		return 0, false
	}
	var id int64
	if err := json.Unmarshal(raw, &id); err != nil {
		return 0, false
	}
	return int32(id), true
}

// findField finds the Parquet child of group g holding the Delta field f.
func findField(g *pqNode, f *txlog.StructField, mode mappingMode) *pqNode {
	if mode == mappingID {
		if id, ok := fieldID(f); ok {
			for _, c := range g.children {
				if c.el.FieldID == id && id != 0 {
					return c
				}
			}
		}
	}
	return g.child(physicalName(f, mode))
}

// leafKind says how Parquet values of a leaf convert to the Delta type.
type leafConv struct {
	typ       txlog.DataType
	tsFactor  int64 // timestamp INT64: multiply (>0) or divide (<0) to get micros
	fileScale int   // decimal scale in the file
	dateToTS  bool  // date stored, timestamp_ntz wanted (type widening)
}

func newLeafConv(t txlog.DataType, n *pqNode) leafConv {
	c := leafConv{typ: t, tsFactor: 1}
	lt := n.el.LogicalType.Value
	switch t := t.(type) {
	case *txlog.DecimalType:
		c.fileScale = t.Scale
		if d, ok := lt.(*format.DecimalType); ok {
			c.fileScale = int(d.Scale)
		} else if s, ok := n.el.Scale.Get(); ok {
			c.fileScale = int(s)
		}
	case *txlog.PrimitiveType:
		if t.Name == txlog.TypeTimestamp || t.Name == txlog.TypeTimestampNTZ {
			if ts, ok := lt.(*format.TimestampType); ok {
				switch ts.Unit.Value.(type) {
				case *format.MilliSeconds:
					c.tsFactor = 1000
				case *format.NanoSeconds:
					c.tsFactor = -1000
				}
			} else if ct, ok := n.converted(); ok && ct == deprecated.TimestampMillis {
				c.tsFactor = 1000
			} else if _, ok := lt.(*format.DateType); ok {
				c.dateToTS = true
			} else if ct, ok := n.converted(); ok && ct == deprecated.Date {
				c.dateToTS = true
			}
		}
	}
	return c
}

func int96Micros(v parquet.Value) int64 {
	i := v.Int96()
	nanos := int64(uint64(i[1])<<32 | uint64(i[0]))
	julian := int64(i[2])
	return (julian-2440588)*86400_000_000 + nanos/1000
}

func (c *leafConv) tsMicros(v parquet.Value) int64 {
	switch v.Kind() {
	case parquet.Int96:
		return int96Micros(v)
	case parquet.Int32:
		if c.dateToTS {
			return int64(v.Int32()) * 86400_000_000
		}
		return int64(v.Int32())
	}
	x := v.Int64()
	if c.tsFactor > 0 {
		return x * c.tsFactor
	}
	return floorDiv(x, -c.tsFactor)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func intOf(v parquet.Value) int64 {
	switch v.Kind() {
	case parquet.Int32:
		return int64(v.Int32())
	case parquet.Int64:
		return v.Int64()
	case parquet.Boolean:
		if v.Boolean() {
			return 1
		}
		return 0
	}
	return 0
}

func floatOf(v parquet.Value) float64 {
	switch v.Kind() {
	case parquet.Float:
		return float64(v.Float())
	case parquet.Double:
		return v.Double()
	case parquet.Int32:
		return float64(v.Int32())
	case parquet.Int64:
		return float64(v.Int64())
	}
	return 0
}

// decimalUnscaled returns the unscaled value rescaled to the Delta scale.
func (c *leafConv) decimalUnscaled(v parquet.Value, scale int) (*big.Int, int64, bool) {
	var x *big.Int
	switch v.Kind() {
	case parquet.Int32:
		if c.fileScale == scale {
			return nil, int64(v.Int32()), true
		}
		x = big.NewInt(int64(v.Int32()))
	case parquet.Int64:
		if c.fileScale == scale {
			return nil, v.Int64(), true
		}
		x = big.NewInt(v.Int64())
	default:
		x = twosComplement(v.ByteArray())
	}
	if d := scale - c.fileScale; d > 0 {
		x.Mul(x, pow10(d))
	} else if d < 0 {
		x.Quo(x, pow10(-d))
	}
	return x, 0, false
}

// twosComplement decodes a big-endian two's complement integer.
func twosComplement(b []byte) *big.Int {
	x := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		x.Sub(x, new(big.Int).Lsh(big.NewInt(1), uint(len(b)*8)))
	}
	return x
}

// appendValue appends one (non-null) Parquet value to a typed vector.
func (c *leafConv) appendValue(vec Vector, v parquet.Value) {
	switch vec := vec.(type) {
	case *Int64Vector:
		vec.append(intOf(v))
	case *Float64Vector:
		vec.append(floatOf(v))
	case *BytesVector:
		vec.append(v.ByteArray())
	case *BoolVector:
		vec.append(v.Boolean())
	case *DateVector:
		vec.append(v.Int32())
	case *TimestampVector:
		vec.append(c.tsMicros(v))
	case *DecimalVector:
		b, s, small := c.decimalUnscaled(v, vec.Scale)
		if small {
			vec.appendInt64(s)
		} else {
			vec.appendBig(b)
		}
	case *AnyVector:
		vec.append(c.goValue(v))
	}
}

// goValue converts one (non-null) Parquet value to the Go value documented on
// Batch.Value.
func (c *leafConv) goValue(v parquet.Value) any {
	switch t := c.typ.(type) {
	case *txlog.DecimalType:
		b, s, small := c.decimalUnscaled(v, t.Scale)
		if small {
			b = big.NewInt(s)
		}
		return Decimal{Unscaled: b, Scale: t.Scale}
	case *txlog.PrimitiveType:
		switch t.Name {
		case txlog.TypeBoolean:
			return v.Boolean()
		case txlog.TypeByte:
			return int8(intOf(v))
		case txlog.TypeShort:
			return int16(intOf(v))
		case txlog.TypeInteger:
			return int32(intOf(v))
		case txlog.TypeLong:
			return intOf(v)
		case txlog.TypeFloat:
			return float32(floatOf(v))
		case txlog.TypeDouble:
			return floatOf(v)
		case txlog.TypeString:
			return string(v.ByteArray())
		case txlog.TypeBinary:
			return append([]byte{}, v.ByteArray()...)
		case txlog.TypeDate:
			return (&DateVector{Days: []int32{v.Int32()}}).Value(0)
		case txlog.TypeTimestamp, txlog.TypeTimestampNTZ:
			return (&TimestampVector{Micros: []int64{c.tsMicros(v)}}).Value(0)
		}
	}
	return v.String()
}

// nodeKind is the shape of a column reader node.
type nodeKind int

const (
	kindLeaf nodeKind = iota
	kindStruct
	kindList
	kindMap
	kindMissing
)

// colNode reads one Delta-typed value out of the leaf value streams of a row
// group (Dremel record assembly over repetition/definition levels).
type colNode struct {
	kind     nodeKind
	typ      txlog.DataType
	def      int // definition level at which this node is non-null
	rep      int // leaf: max repetition level in the file (0 = flat)
	leaf     int // leaf: cursor index
	first    int // cursor index of the first leaf below (the "probe")
	leaves   []int
	conv     leafConv
	names    []string   // struct field names
	children []*colNode // struct fields (kindMissing for absent ones)
	repDef   int        // list/map: definition level of a non-empty list
	repLevel int        // list/map: repetition level of the repeated node
	elem     *colNode   // list element
	key, val *colNode   // map key and value
}

// planner maps Delta types onto a file's Parquet schema and assigns cursor
// slots to the leaf columns it needs.
type planner struct {
	mode    mappingMode
	leafIdx []int // cursor slot -> Parquet leaf column index
}

func (p *planner) slot(leaf int) int {
	p.leafIdx = append(p.leafIdx, leaf)
	return len(p.leafIdx) - 1
}

func missingNode(t txlog.DataType) *colNode { return &colNode{kind: kindMissing, typ: t} }

// plan builds the reader node for Delta type t stored at Parquet node n.
func (p *planner) plan(t txlog.DataType, n *pqNode) (*colNode, error) {
	if n == nil {
		return missingNode(t), nil
	}
	// A repeated node that is not a list in Delta is read as the element
	// itself only inside list planning; here it means a bare repeated field.
	if n.repetition() == format.Repeated {
		if _, ok := t.(*txlog.ArrayType); ok {
			return p.planList(t.(*txlog.ArrayType), n, n, n.def-1)
		}
	}
	switch t := t.(type) {
	case *txlog.StructType:
		if n.isLeaf() {
			return nil, fmt.Errorf("column %q: file has a primitive, schema wants %s", n.name, t)
		}
		cn := &colNode{kind: kindStruct, typ: t, def: n.def, first: -1}
		for _, f := range t.Fields {
			child, err := p.plan(f.Type, findField(n, f, p.mode))
			if err != nil {
				return nil, fmt.Errorf("field %q: %w", f.Name, err)
			}
			cn.names = append(cn.names, f.Name)
			cn.children = append(cn.children, child)
			cn.leaves = append(cn.leaves, child.leaves...)
		}
		if len(cn.leaves) == 0 {
			// No requested field exists in the file: read one of its leaves
			// just to learn whether the struct is null.
			probe := n
			for !probe.isLeaf() && len(probe.children) > 0 {
				probe = probe.children[0]
			}
			if !probe.isLeaf() {
				return missingNode(t), nil
			}
			cn.leaves = []int{p.slot(probe.leaf)}
		}
		cn.first = cn.leaves[0]
		return cn, nil
	case *txlog.ArrayType:
		if n.isLeaf() {
			return nil, fmt.Errorf("column %q: file has a primitive, schema wants %s", n.name, t)
		}
		if len(n.children) != 1 || n.children[0].repetition() != format.Repeated {
			return nil, fmt.Errorf("column %q: unsupported list layout", n.name)
		}
		r := n.children[0]
		elem := r
		if !r.isLeaf() && len(r.children) == 1 && r.name != "array" && r.name != n.name+"_tuple" {
			elem = r.children[0] // standard 3-level list
		}
		return p.planList(t, r, elem, n.def)
	case *txlog.MapType:
		if n.isLeaf() {
			return nil, fmt.Errorf("column %q: file has a primitive, schema wants %s", n.name, t)
		}
		r := n
		if n.repetition() != format.Repeated {
			if len(n.children) != 1 {
				return nil, fmt.Errorf("column %q: unsupported map layout", n.name)
			}
			r = n.children[0]
		}
		if r.isLeaf() || len(r.children) < 1 || len(r.children) > 2 {
			return nil, fmt.Errorf("column %q: unsupported map layout", n.name)
		}
		cn := &colNode{kind: kindMap, typ: t, def: n.def, repDef: r.def, repLevel: r.rep}
		if r == n {
			cn.def = n.def - 1
		}
		var err error
		if cn.key, err = p.plan(t.KeyType, r.children[0]); err != nil {
			return nil, err
		}
		if len(r.children) == 2 {
			if cn.val, err = p.plan(t.ValueType, r.children[1]); err != nil {
				return nil, err
			}
		} else {
			cn.val = missingNode(t.ValueType)
		}
		cn.leaves = append(append(cn.leaves, cn.key.leaves...), cn.val.leaves...)
		cn.first = cn.leaves[0]
		return cn, nil
	default:
		if !n.isLeaf() {
			return nil, fmt.Errorf("column %q: file has a group, schema wants %s", n.name, t)
		}
		s := p.slot(n.leaf)
		return &colNode{kind: kindLeaf, typ: t, def: n.def, rep: n.rep, leaf: s, first: s, leaves: []int{s}, conv: newLeafConv(t, n)}, nil
	}
}

// planList builds a list node: r is the repeated node, elem the node holding
// each element (r itself for 2-level lists), listDef the level at which the
// list is non-null.
func (p *planner) planList(t *txlog.ArrayType, r, elem *pqNode, listDef int) (*colNode, error) {
	cn := &colNode{kind: kindList, typ: t, def: listDef, repDef: r.def, repLevel: r.rep}
	var err error
	if elem == r {
		// The repeated node is the element: plan it as a required value.
		cp := *r
		e := &cp
		e.el = &format.SchemaElement{}
		*e.el = *r.el
		e.el.RepetitionType.V, e.el.RepetitionType.Valid = format.Required, true
		cn.elem, err = p.plan(t.ElementType, e)
	} else {
		cn.elem, err = p.plan(t.ElementType, elem)
	}
	if err != nil {
		return nil, err
	}
	cn.leaves = cn.elem.leaves
	if len(cn.leaves) == 0 {
		return missingNode(t), nil
	}
	cn.first = cn.leaves[0]
	return cn, nil
}

// cursor walks the values of one leaf column of a row group.
type cursor struct {
	vals []parquet.Value
	pos  int
}

func (c *cursor) peek() (parquet.Value, bool) {
	if c.pos >= len(c.vals) {
		return parquet.Value{}, false
	}
	return c.vals[c.pos], true
}

type assembler struct {
	cur []cursor
}

func (a *assembler) skip(n *colNode) {
	for _, l := range n.leaves {
		a.cur[l].pos++
	}
}

// read assembles one value of node n.
func (a *assembler) read(n *colNode) any {
	switch n.kind {
	case kindMissing:
		return nil
	case kindLeaf:
		c := &a.cur[n.leaf]
		if c.pos >= len(c.vals) {
			return nil
		}
		v := c.vals[c.pos]
		c.pos++
		if v.DefinitionLevel() < n.def {
			return nil
		}
		return n.conv.goValue(v)
	case kindStruct:
		p, ok := a.cur[n.first].peek()
		if !ok {
			return nil
		}
		if p.DefinitionLevel() < n.def {
			a.skip(n)
			return nil
		}
		m := make(map[string]any, len(n.children))
		probeOnly := true
		for i, c := range n.children {
			m[n.names[i]] = a.read(c)
			if c.kind != kindMissing {
				probeOnly = false
			}
		}
		if probeOnly {
			a.skip(n)
		}
		return m
	case kindList, kindMap:
		p, ok := a.cur[n.first].peek()
		if !ok {
			return nil
		}
		if p.DefinitionLevel() < n.def {
			a.skip(n)
			return nil
		}
		if p.DefinitionLevel() < n.repDef {
			a.skip(n)
			if n.kind == kindMap {
				return []MapEntry{}
			}
			return []any{}
		}
		var list []any
		var entries []MapEntry
		for {
			if n.kind == kindList {
				list = append(list, a.read(n.elem))
			} else {
				k := a.read(n.key)
				v := a.read(n.val)
				entries = append(entries, MapEntry{Key: k, Value: v})
			}
			nx, ok := a.cur[n.first].peek()
			if !ok || nx.RepetitionLevel() != n.repLevel {
				break
			}
		}
		if n.kind == kindMap {
			return entries
		}
		return list
	}
	return nil
}

// readLeafValues reads every value (with levels) of a column chunk; byte
// arrays are copied out of the page buffers.
func readLeafValues(cc parquet.ColumnChunk, out []parquet.Value) ([]parquet.Value, error) {
	pages := cc.Pages()
	defer pages.Close()
	buf := make([]parquet.Value, 1024)
	for {
		p, err := pages.ReadPage()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		vr := p.Values()
		for {
			n, err := vr.ReadValues(buf)
			for _, v := range buf[:n] {
				out = append(out, v.Clone())
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				parquet.Release(p)
				return nil, err
			}
			if n == 0 {
				break
			}
		}
		parquet.Release(p)
	}
}

// readFlat streams a non-repeated leaf column straight into a typed vector.
func readFlat(cc parquet.ColumnChunk, n *colNode, vec Vector) error {
	pages := cc.Pages()
	defer pages.Close()
	buf := make([]parquet.Value, 4096)
	conv := &n.conv
	for {
		p, err := pages.ReadPage()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		vr := p.Values()
		for {
			k, err := vr.ReadValues(buf)
			vals := buf[:k]
			switch vec := vec.(type) {
			case *Int64Vector:
				for _, v := range vals {
					if v.DefinitionLevel() < n.def {
						vec.appendNull()
					} else {
						vec.append(intOf(v))
					}
				}
			case *Float64Vector:
				for _, v := range vals {
					if v.DefinitionLevel() < n.def {
						vec.appendNull()
					} else {
						vec.append(floatOf(v))
					}
				}
			case *BytesVector:
				for _, v := range vals {
					if v.DefinitionLevel() < n.def {
						vec.appendNull()
					} else {
						vec.append(v.ByteArray())
					}
				}
			default:
				for _, v := range vals {
					if v.DefinitionLevel() < n.def {
						vec.appendNull()
					} else {
						conv.appendValue(vec, v)
					}
				}
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				parquet.Release(p)
				return err
			}
			if k == 0 {
				break
			}
		}
		parquet.Release(p)
	}
}

// readColumn decodes the Delta column planned as n from row group rg.
func readColumn(rg parquet.RowGroup, n *colNode, leafIdx []int) (Vector, error) {
	rows := int(rg.NumRows())
	chunks := rg.ColumnChunks()
	if n.kind == kindMissing {
		return nullVector(n.typ, rows), nil
	}
	if n.kind == kindLeaf {
		cc := chunks[leafIdx[n.leaf]]
		if fastPath && fastOK(n, cc.Type().Kind()) {
			return readFast(cc, n, rows)
		}
	}
	vec := newVector(n.typ)
	if n.kind == kindLeaf {
		if err := readFlat(chunks[leafIdx[n.leaf]], n, vec); err != nil {
			return nil, err
		}
		if vec.Len() != rows {
			return nil, fmt.Errorf("column has %d values for %d rows", vec.Len(), rows)
		}
		return vec, nil
	}
	a := &assembler{cur: make([]cursor, len(leafIdx))}
	for _, l := range n.leaves {
		vals, err := readLeafValues(chunks[leafIdx[l]], nil)
		if err != nil {
			return nil, err
		}
		a.cur[l].vals = vals
	}
	av := vec.(*AnyVector)
	for range rows {
		av.append(a.read(n))
	}
	return vec, nil
}

func leUint32(b []byte) uint32         { return binary.LittleEndian.Uint32(b) }
func leUint64(b []byte) uint64         { return binary.LittleEndian.Uint64(b) }
func float32frombits(u uint32) float32 { return math.Float32frombits(u) }
func float64frombits(u uint64) float64 { return math.Float64frombits(u) }
