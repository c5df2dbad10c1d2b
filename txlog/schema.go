package txlog

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrInvalidSchema reports a schema string or type that cannot be parsed.
var ErrInvalidSchema = errors.New("invalid delta schema")

// DataType is a Delta data type: *PrimitiveType, *DecimalType, *StructType,
// *ArrayType or *MapType.
type DataType interface {
	// String is the Delta type name ("long", "decimal(10,2)", "struct<...>").
	String() string
	isDataType()
}

// Primitive type names as they appear in Delta schemas.
const (
	TypeString       = "string"
	TypeLong         = "long"
	TypeInteger      = "integer"
	TypeShort        = "short"
	TypeByte         = "byte"
	TypeFloat        = "float"
	TypeDouble       = "double"
	TypeBoolean      = "boolean"
	TypeBinary       = "binary"
	TypeDate         = "date"
	TypeTimestamp    = "timestamp"
	TypeTimestampNTZ = "timestamp_ntz"
	TypeVariant      = "variant"
)

// PrimitiveType is a non-decimal primitive type.
type PrimitiveType struct{ Name string }

func (p *PrimitiveType) String() string { return p.Name }
func (*PrimitiveType) isDataType()      {}

// DecimalType is decimal(precision, scale).
type DecimalType struct{ Precision, Scale int }

func (d *DecimalType) String() string { return fmt.Sprintf("decimal(%d,%d)", d.Precision, d.Scale) }
func (*DecimalType) isDataType()      {}

// StructField is one field of a struct.
type StructField struct {
	Name     string
	Type     DataType
	Nullable bool
	Metadata map[string]json.RawMessage
}

// StructType is a struct (and the table schema itself).
type StructType struct{ Fields []*StructField }

func (s *StructType) String() string {
	parts := make([]string, len(s.Fields))
	for i, f := range s.Fields {
		parts[i] = f.Name + ":" + f.Type.String()
	}
	return "struct<" + strings.Join(parts, ",") + ">"
}
func (*StructType) isDataType() {}

// Field returns the field with the given name, or nil.
func (s *StructType) Field(name string) *StructField {
	for _, f := range s.Fields {
		if f.Name == name {
			return f
		}
	}
	return nil
}

// ArrayType is array<element>.
type ArrayType struct {
	ElementType  DataType
	ContainsNull bool
}

func (a *ArrayType) String() string { return "array<" + a.ElementType.String() + ">" }
func (*ArrayType) isDataType()      {}

// MapType is map<key, value>.
type MapType struct {
	KeyType           DataType
	ValueType         DataType
	ValueContainsNull bool
}

func (m *MapType) String() string {
	return "map<" + m.KeyType.String() + "," + m.ValueType.String() + ">"
}
func (*MapType) isDataType() {}

// ParseSchema parses a metaData.schemaString.
func ParseSchema(schemaString string) (*StructType, error) {
	raw := json.RawMessage(schemaString)
	t, err := decodeType(raw, 0)
	if err != nil {
		return nil, err
	}
	st, ok := t.(*StructType)
	if !ok {
		return nil, fmt.Errorf("%w: top level is %s, not a struct", ErrInvalidSchema, t)
	}
	return st, nil
}

// MarshalSchema renders a schema as a Delta schemaString.
func MarshalSchema(s *StructType) (string, error) {
	b, err := json.Marshal(encodeType(s))
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// ParsePrimitive parses a primitive type name such as "long" or "decimal(10,2)".
func ParsePrimitive(name string) (DataType, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	switch n {
	case TypeString, TypeLong, TypeInteger, TypeShort, TypeByte, TypeFloat, TypeDouble,
		TypeBoolean, TypeBinary, TypeDate, TypeTimestamp, TypeTimestampNTZ, TypeVariant:
		return &PrimitiveType{Name: n}, nil
	case "decimal":
		return &DecimalType{Precision: 10, Scale: 0}, nil
	}
	if strings.HasPrefix(n, "decimal(") && strings.HasSuffix(n, ")") {
		ps := strings.Split(n[len("decimal("):len(n)-1], ",")
		if len(ps) == 2 {
			p, err1 := strconv.Atoi(strings.TrimSpace(ps[0]))
			s, err2 := strconv.Atoi(strings.TrimSpace(ps[1]))
			if err1 == nil && err2 == nil && p >= 1 && p <= 38 && s >= 0 && s <= p {
				return &DecimalType{Precision: p, Scale: s}, nil
			}
		}
	}
	return nil, fmt.Errorf("%w: unknown type %q", ErrInvalidSchema, name)
}

type jsonField struct {
	Name     string                     `json:"name"`
	Type     json.RawMessage            `json:"type"`
	Nullable bool                       `json:"nullable"`
	Metadata map[string]json.RawMessage `json:"metadata"`
}

type jsonComplex struct {
	Type              string          `json:"type"`
	Fields            []jsonField     `json:"fields,omitempty"`
	ElementType       json.RawMessage `json:"elementType,omitempty"`
	ContainsNull      *bool           `json:"containsNull,omitempty"`
	KeyType           json.RawMessage `json:"keyType,omitempty"`
	ValueType         json.RawMessage `json:"valueType,omitempty"`
	ValueContainsNull *bool           `json:"valueContainsNull,omitempty"`
}

// maxSchemaDepth bounds how deeply struct, array and map types may nest in
// a schemaString. Every level re-decodes its raw JSON, so without a bound a
// hostile schema costs quadratic time (depth 2000 took seconds).
const maxSchemaDepth = 200

// errSchemaTooDeep is returned as is (not wrapped once per level).
var errSchemaTooDeep = fmt.Errorf("%w: types nested deeper than %d levels", ErrInvalidSchema, maxSchemaDepth)

func decodeType(raw json.RawMessage, depth int) (DataType, error) {
	if depth > maxSchemaDepth {
		return nil, errSchemaTooDeep
	}
	var name string
	if err := json.Unmarshal(raw, &name); err == nil {
		return ParsePrimitive(name)
	}
	var c jsonComplex
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSchema, err)
	}
	switch c.Type {
	case "struct":
		st := &StructType{Fields: make([]*StructField, 0, len(c.Fields))}
		for _, f := range c.Fields {
			t, err := decodeType(f.Type, depth+1)
			if errors.Is(err, errSchemaTooDeep) {
				return nil, err
			}
			if err != nil {
				return nil, fmt.Errorf("field %q: %w", f.Name, err)
			}
			st.Fields = append(st.Fields, &StructField{Name: f.Name, Type: t, Nullable: f.Nullable, Metadata: f.Metadata})
		}
		return st, nil
	case "array":
		et, err := decodeType(c.ElementType, depth+1)
		if errors.Is(err, errSchemaTooDeep) {
			return nil, err
		}
		if err != nil {
			return nil, fmt.Errorf("array element: %w", err)
		}
		return &ArrayType{ElementType: et, ContainsNull: c.ContainsNull == nil || *c.ContainsNull}, nil
	case "map":
		kt, err := decodeType(c.KeyType, depth+1)
		if err != nil {
			return nil, fmt.Errorf("map key: %w", err)
		}
		vt, err := decodeType(c.ValueType, depth+1)
		if errors.Is(err, errSchemaTooDeep) {
			return nil, err
		}
		if err != nil {
			return nil, fmt.Errorf("map value: %w", err)
		}
		return &MapType{KeyType: kt, ValueType: vt, ValueContainsNull: c.ValueContainsNull == nil || *c.ValueContainsNull}, nil
	}
	return nil, fmt.Errorf("%w: unknown complex type %q", ErrInvalidSchema, c.Type)
}

func encodeType(t DataType) any {
	switch t := t.(type) {
	case *StructType:
		fields := make([]map[string]any, len(t.Fields))
		for i, f := range t.Fields {
			md := f.Metadata
			if md == nil {
				md = map[string]json.RawMessage{}
			}
			fields[i] = map[string]any{"name": f.Name, "type": encodeType(f.Type), "nullable": f.Nullable, "metadata": md}
		}
		return map[string]any{"type": "struct", "fields": fields}
	case *ArrayType:
		return map[string]any{"type": "array", "elementType": encodeType(t.ElementType), "containsNull": t.ContainsNull}
	case *MapType:
		return map[string]any{"type": "map", "keyType": encodeType(t.KeyType), "valueType": encodeType(t.ValueType), "valueContainsNull": t.ValueContainsNull}
	default:
		return t.String()
	}
}
