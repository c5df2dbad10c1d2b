package pq

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding"

	"github.com/kappa-lake/kappa/txlog"
)

// ErrSchemaMismatch reports a row value that does not fit the table schema.
var ErrSchemaMismatch = errors.New("row does not match the table schema")

// ErrUnsupportedType reports a Delta type this package cannot write (variant).
var ErrUnsupportedType = errors.New("unsupported delta type")

// Column mapping metadata keys of a Delta field.
const (
	MetaPhysicalName = "delta.columnMapping.physicalName"
	MetaFieldID      = "delta.columnMapping.id"
)

// Column mapping modes (table property delta.columnMapping.mode).
const (
	MappingNone = "none"
	MappingName = "name"
	MappingID   = "id"
)

// Physical kinds of leaf columns.
type kind uint8

const (
	kBool kind = iota
	kInt32
	kInt64
	kFloat
	kDouble
	kBytes
	kFixed
)

type nodeKind uint8

const (
	nLeaf nodeKind = iota
	nStruct
	nList
	nMap
)

// node is one field of the write plan: the Delta schema annotated with
// physical names and Dremel levels.
type node struct {
	kind     nodeKind
	name     string // physical (Parquet) name
	logical  string // Delta name
	typ      txlog.DataType
	nullable bool
	fieldID  int
	// def is the definition level reached when this node's value is present
	// (not null); rep is the repetition level of values inside this node for
	// lists/maps (the level of the repeated group), else the parent's.
	def, rep uint8
	children []*node // struct fields; list: [element]; map: [key, value]
	// leaf data
	leaf      int // column index (leaves only)
	pkind     kind
	fixedLen  int
	firstLeaf int
	numLeaves int
	path      []string // physical path from the root (leaves: full parquet path)
	lpath     []string // logical Delta path (for messages)
	root      bool
	lt        ltype
	byName    map[string]*node // struct children by Delta name
}

func joinPath(base []string, elem ...string) []string {
	out := make([]string, 0, len(base)+len(elem))
	return append(append(out, base...), elem...)
}

// Column describes one leaf column of the Parquet schema built for a Delta
// schema: the reverse mapping a reader needs.
type Column struct {
	Index int
	// Path is the physical Parquet column path, e.g. ["arr","list","element"].
	Path []string
	// FieldPath is the Delta (logical) path of the field holding the column,
	// with "element", "key" or "value" steps inside arrays and maps.
	FieldPath []string
	// Type is the Delta type of the leaf.
	Type txlog.DataType
	// MaxDefinitionLevel and MaxRepetitionLevel are the Dremel levels.
	MaxDefinitionLevel, MaxRepetitionLevel int
}

// SchemaOptions control the Delta to Parquet mapping.
type SchemaOptions struct {
	// ColumnMapping is the table's delta.columnMapping.mode: "", "none",
	// "name" or "id". With name/id, physical names and field ids are used.
	ColumnMapping string
}

// plan is the compiled form of a (data) schema.
type plan struct {
	root   *node
	leaves []*node
	schema *parquet.Schema
}

func mappingOn(mode string) bool {
	m := strings.ToLower(mode)
	return m == MappingName || m == MappingID
}

// PhysicalName returns the name a field has in Parquet files and stats under
// the given column mapping mode.
func PhysicalName(f *txlog.StructField, mode string) string {
	if mappingOn(mode) {
		if raw, ok := f.Metadata[MetaPhysicalName]; ok {
			var s string
			if json.Unmarshal(raw, &s) == nil && s != "" {
				return s
			}
		}
	}
	return f.Name
}

func fieldID(f *txlog.StructField, mode string) int {
	if !mappingOn(mode) {
		return 0
	}
	raw, ok := f.Metadata[MetaFieldID]
	if !ok {
		return 0
	}
	id, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		return 0
	}
	return id
}

// ParquetSchema returns the Parquet schema Kappa writes for a Delta schema
// (partition columns must already be removed by the caller).
func ParquetSchema(st *txlog.StructType, opts SchemaOptions) (*parquet.Schema, error) {
	p, err := compile(st, opts)
	if err != nil {
		return nil, err
	}
	return p.schema, nil
}

// Columns lists the leaf columns of [ParquetSchema]'s result in file order.
func Columns(st *txlog.StructType, opts SchemaOptions) ([]Column, error) {
	p, err := compile(st, opts)
	if err != nil {
		return nil, err
	}
	cols := make([]Column, len(p.leaves))
	for i, l := range p.leaves {
		cols[i] = Column{
			Index:              i,
			Path:               append([]string(nil), l.path...),
			FieldPath:          append([]string(nil), l.lpath...),
			Type:               l.typ,
			MaxDefinitionLevel: int(l.def),
			MaxRepetitionLevel: int(l.rep),
		}
	}
	return cols, nil
}

func compile(st *txlog.StructType, opts SchemaOptions) (*plan, error) {
	p := &plan{}
	root := &node{kind: nStruct, typ: st, root: true}
	for _, f := range st.Fields {
		c, err := p.build(f.Name, PhysicalName(f, opts.ColumnMapping), fieldID(f, opts.ColumnMapping), f.Type, f.Nullable, 0, 0, nil, nil, opts)
		if err != nil {
			return nil, err
		}
		root.children = append(root.children, c)
	}
	root.numLeaves = len(p.leaves)
	root.index()
	p.root = root
	pn, err := parquetNode(root)
	if err != nil {
		return nil, err
	}
	p.schema = parquet.NewSchema("spark_schema", pn)
	return p, nil
}

func (p *plan) build(logical, name string, id int, t txlog.DataType, nullable bool, def, rep uint8, path, lpath []string, opts SchemaOptions) (*node, error) {
	n := &node{name: name, logical: logical, typ: t, nullable: nullable, fieldID: id}
	if nullable {
		def++
	}
	n.def, n.rep = def, rep
	n.path = joinPath(path, name)
	n.lpath = joinPath(lpath, logical)
	n.firstLeaf = len(p.leaves)
	switch t := t.(type) {
	case *txlog.StructType:
		n.kind = nStruct
		if len(t.Fields) == 0 {
			return nil, fmt.Errorf("%w: struct %s has no fields", ErrUnsupportedType, strings.Join(n.lpath, "."))
		}
		for _, f := range t.Fields {
			c, err := p.build(f.Name, PhysicalName(f, opts.ColumnMapping), fieldID(f, opts.ColumnMapping), f.Type, f.Nullable, def, rep, n.path, n.lpath, opts)
			if err != nil {
				return nil, err
			}
			n.children = append(n.children, c)
		}
	case *txlog.ArrayType:
		n.kind = nList
		n.rep = rep + 1
		// the repeated group adds one definition level
		e, err := p.build("element", "element", 0, t.ElementType, t.ContainsNull, def+1, rep+1, joinPath(n.path, "list"), n.lpath, opts)
		if err != nil {
			return nil, err
		}
		n.children = []*node{e}
	case *txlog.MapType:
		n.kind = nMap
		n.rep = rep + 1
		kp := joinPath(n.path, "key_value")
		k, err := p.build("key", "key", 0, t.KeyType, false, def+1, rep+1, kp, n.lpath, opts)
		if err != nil {
			return nil, err
		}
		v, err := p.build("value", "value", 0, t.ValueType, t.ValueContainsNull, def+1, rep+1, kp, n.lpath, opts)
		if err != nil {
			return nil, err
		}
		n.children = []*node{k, v}
	case *txlog.DecimalType:
		n.kind = nLeaf
		switch {
		case t.Precision <= 9:
			n.pkind = kInt32
		case t.Precision <= 18:
			n.pkind = kInt64
		default:
			n.pkind = kFixed
			n.fixedLen = decimalBytes(t.Precision)
		}
	case *txlog.PrimitiveType:
		n.kind = nLeaf
		switch t.Name {
		case txlog.TypeString, txlog.TypeBinary:
			n.pkind = kBytes
		case txlog.TypeLong, txlog.TypeTimestamp, txlog.TypeTimestampNTZ:
			n.pkind = kInt64
		case txlog.TypeInteger, txlog.TypeShort, txlog.TypeByte, txlog.TypeDate:
			n.pkind = kInt32
		case txlog.TypeFloat:
			n.pkind = kFloat
		case txlog.TypeDouble:
			n.pkind = kDouble
		case txlog.TypeBoolean:
			n.pkind = kBool
		default:
			return nil, fmt.Errorf("%w: %s (column %s)", ErrUnsupportedType, t.Name, strings.Join(n.lpath, "."))
		}
	default:
		return nil, fmt.Errorf("%w: %T (column %s)", ErrUnsupportedType, t, strings.Join(n.lpath, "."))
	}
	if n.kind == nLeaf {
		n.lt = leafType(t)
		n.leaf = len(p.leaves)
		p.leaves = append(p.leaves, n)
	}
	n.numLeaves = len(p.leaves) - n.firstLeaf
	n.index()
	return n, nil
}

// decimalBytes is the minimal FIXED_LEN_BYTE_ARRAY size holding precision
// decimal digits in two's complement (what Spark uses).
func decimalBytes(precision int) int {
	for n := 1; ; n++ {
		// max value 2^(8n-1)-1 >= 10^precision - 1
		if float64(8*n-1)*0.30102999566398120 >= float64(precision) {
			return n
		}
	}
}

func parquetNode(n *node) (parquet.Node, error) {
	var pn parquet.Node
	switch n.kind {
	case nStruct:
		fields := make([]parquet.Field, len(n.children))
		for i, c := range n.children {
			cn, err := parquetNode(c)
			if err != nil {
				return nil, err
			}
			fields[i] = &orderedField{Node: cn, name: c.name}
		}
		pn = &orderedGroup{fields: fields}
	case nList:
		en, err := parquetNode(n.children[0])
		if err != nil {
			return nil, err
		}
		pn = parquet.List(en)
	case nMap:
		kn, err := parquetNode(n.children[0])
		if err != nil {
			return nil, err
		}
		vn, err := parquetNode(n.children[1])
		if err != nil {
			return nil, err
		}
		pn = parquet.Map(kn, vn)
	default:
		pn = leafNode(n)
	}
	if n.fieldID != 0 {
		pn = parquet.FieldID(pn, n.fieldID)
	}
	if n.root {
		return pn, nil
	}
	if n.nullable {
		return parquet.Optional(pn), nil
	}
	return parquet.Required(pn), nil
}

func leafNode(n *node) parquet.Node {
	switch t := n.typ.(type) {
	case *txlog.DecimalType:
		switch n.pkind {
		case kInt32:
			return parquet.Decimal(t.Scale, t.Precision, parquet.Int32Type)
		case kInt64:
			return parquet.Decimal(t.Scale, t.Precision, parquet.Int64Type)
		default:
			return parquet.Decimal(t.Scale, t.Precision, parquet.FixedLenByteArrayType(n.fixedLen))
		}
	case *txlog.PrimitiveType:
		switch t.Name {
		case txlog.TypeString:
			return parquet.Encoded(parquet.String(), &parquet.RLEDictionary)
		case txlog.TypeBinary:
			return parquet.Leaf(parquet.ByteArrayType)
		case txlog.TypeLong:
			return parquet.Leaf(parquet.Int64Type)
		case txlog.TypeInteger:
			return parquet.Leaf(parquet.Int32Type)
		case txlog.TypeShort:
			return parquet.Int(16)
		case txlog.TypeByte:
			return parquet.Int(8)
		case txlog.TypeDate:
			return parquet.Date()
		case txlog.TypeTimestamp:
			return parquet.TimestampAdjusted(parquet.Microsecond, true)
		case txlog.TypeTimestampNTZ:
			return parquet.TimestampAdjusted(parquet.Microsecond, false)
		case txlog.TypeFloat:
			return parquet.Leaf(parquet.FloatType)
		case txlog.TypeDouble:
			return parquet.Leaf(parquet.DoubleType)
		case txlog.TypeBoolean:
			return parquet.Leaf(parquet.BooleanType)
		}
	}
	// unreachable: compile validated the type
	return parquet.Leaf(parquet.ByteArrayType)
}

// orderedGroup is a Parquet group node whose fields keep their given order
// (parquet.Group is a map and sorts by name).
type orderedGroup struct{ fields []parquet.Field }

func (g *orderedGroup) ID() int                     { return 0 }
func (g *orderedGroup) String() string              { return parquet.NewSchema("", g).String() }
func (g *orderedGroup) Type() parquet.Type          { return parquet.Group{}.Type() }
func (g *orderedGroup) Optional() bool              { return false }
func (g *orderedGroup) Repeated() bool              { return false }
func (g *orderedGroup) Required() bool              { return true }
func (g *orderedGroup) Leaf() bool                  { return false }
func (g *orderedGroup) Fields() []parquet.Field     { return g.fields }
func (g *orderedGroup) Encoding() encoding.Encoding { return nil }
func (g *orderedGroup) Compression() compress.Codec { return nil }
func (g *orderedGroup) GoType() reflect.Type {
	sf := make([]reflect.StructField, len(g.fields))
	for i, f := range g.fields {
		sf[i] = reflect.StructField{
			Name: "F" + strconv.Itoa(i),
			Type: f.GoType(),
			Tag:  reflect.StructTag(`parquet:"` + strings.ReplaceAll(f.Name(), `"`, "") + `"`),
		}
	}
	return reflect.StructOf(sf)
}

type orderedField struct {
	parquet.Node
	name string
}

func (f *orderedField) Name() string { return f.name }

// Value returns the field of a Go map or struct value; parquet-go uses it only
// when (de)constructing Go values through the schema.
func (f *orderedField) Value(base reflect.Value) reflect.Value {
	for base.Kind() == reflect.Pointer || base.Kind() == reflect.Interface {
		if base.IsNil() {
			return reflect.Value{}
		}
		base = base.Elem()
	}
	switch base.Kind() {
	case reflect.Map:
		return base.MapIndex(reflect.ValueOf(f.name).Convert(base.Type().Key()))
	case reflect.Struct:
		return base.FieldByName(f.name)
	}
	return reflect.Value{}
}

func (n *node) index() {
	if n.kind != nStruct {
		return
	}
	n.byName = make(map[string]*node, len(n.children))
	for _, c := range n.children {
		n.byName[c.logical] = c
	}
}
