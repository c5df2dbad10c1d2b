package txlog

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ParseDDL parses a table schema written as a Spark-style column list, e.g.
//
//	id long NOT NULL, ts timestamp, device string, amount decimal(10,2),
//	tags array<string>, attrs map<string,string>, loc struct<lat:double,lon:double>
//
// Each column is `name type [NOT NULL] [COMMENT 'text']`; names may be quoted
// with backticks (`my col`; a doubled backtick is a literal one). Types are
// the Delta primitive names (string, long, integer, short, byte, float,
// double, boolean, binary, date, timestamp, timestamp_ntz, decimal(p,s)), the
// common SQL aliases (bigint, int, smallint, tinyint, bool, real, dec,
// numeric), and array<T>, map<K,V>, struct<name[:] T [NOT NULL], ...>. Type
// names and keywords are case-insensitive; column names keep their case but
// must be unique ignoring case, as Delta requires. Columns, struct fields,
// array elements and map values are nullable unless NOT NULL is given.
//
// Errors wrap ErrInvalidSchema and give the 1-based character position of
// the problem.
func ParseDDL(s string) (*StructType, error) {
	p := &ddlParser{src: s}
	p.next()
	if p.tok.kind == tokEOF {
		return nil, fmt.Errorf("%w: empty schema: expected a column list such as 'id long, name string'", ErrInvalidSchema)
	}
	st, err := p.fields(false)
	if err != nil {
		return nil, err
	}
	return st, nil
}

type tokKind int

const (
	tokEOF tokKind = iota
	tokIdent
	tokQuoted // `quoted identifier`
	tokNumber
	tokString // 'string literal'
	tokPunct  // one of , : < > ( )
	tokError
)

type token struct {
	kind tokKind
	text string // identifier/number/string value, or the punctuation character
	pos  int    // 1-based character position of the token's start
}

func (t token) describe() string {
	switch t.kind {
	case tokEOF:
		return "end of schema"
	case tokQuoted:
		return "`" + t.text + "`"
	case tokString:
		return "'" + t.text + "'"
	}
	return strconv.Quote(t.text)
}

type ddlParser struct {
	src string
	off int // byte offset of the next unread character
	tok token
}

// charPos converts a byte offset into a 1-based character position.
func (p *ddlParser) charPos(off int) int { return utf8.RuneCountInString(p.src[:off]) + 1 }

func (p *ddlParser) errorf(pos int, format string, args ...any) error {
	return fmt.Errorf("%w: at position %d: %s", ErrInvalidSchema, pos, fmt.Sprintf(format, args...))
}

// next scans the next token into p.tok.
func (p *ddlParser) next() {
	for p.off < len(p.src) {
		r, n := utf8.DecodeRuneInString(p.src[p.off:])
		if !unicode.IsSpace(r) {
			break
		}
		p.off += n
	}
	start := p.off
	pos := p.charPos(start)
	if p.off >= len(p.src) {
		p.tok = token{kind: tokEOF, pos: pos}
		return
	}
	r, n := utf8.DecodeRuneInString(p.src[p.off:])
	switch {
	case strings.ContainsRune(",:<>()", r):
		p.off += n
		p.tok = token{kind: tokPunct, text: string(r), pos: pos}
	case r == '`':
		p.off += n
		var b strings.Builder
		for {
			if p.off >= len(p.src) {
				p.tok = token{kind: tokError, text: "unterminated `quoted name`", pos: pos}
				return
			}
			c, m := utf8.DecodeRuneInString(p.src[p.off:])
			p.off += m
			if c == '`' {
				if strings.HasPrefix(p.src[p.off:], "`") { // `` is a literal backtick
					b.WriteRune('`')
					p.off++
					continue
				}
				break
			}
			b.WriteRune(c)
		}
		p.tok = token{kind: tokQuoted, text: b.String(), pos: pos}
	case r == '\'' || r == '"':
		quote := r
		p.off += n
		var b strings.Builder
		for {
			if p.off >= len(p.src) {
				p.tok = token{kind: tokError, text: "unterminated string literal", pos: pos}
				return
			}
			c, m := utf8.DecodeRuneInString(p.src[p.off:])
			p.off += m
			if c == '\\' && p.off < len(p.src) {
				e, k := utf8.DecodeRuneInString(p.src[p.off:])
				p.off += k
				b.WriteRune(e)
				continue
			}
			if c == quote {
				break
			}
			b.WriteRune(c)
		}
		p.tok = token{kind: tokString, text: b.String(), pos: pos}
	case unicode.IsDigit(r):
		for p.off < len(p.src) && p.src[p.off] >= '0' && p.src[p.off] <= '9' {
			p.off++
		}
		p.tok = token{kind: tokNumber, text: p.src[start:p.off], pos: pos}
	case r == '_' || unicode.IsLetter(r):
		for p.off < len(p.src) {
			c, m := utf8.DecodeRuneInString(p.src[p.off:])
			if c != '_' && !unicode.IsLetter(c) && !unicode.IsDigit(c) {
				break
			}
			p.off += m
		}
		p.tok = token{kind: tokIdent, text: p.src[start:p.off], pos: pos}
	default:
		p.tok = token{kind: tokError, text: fmt.Sprintf("unexpected character %q", r), pos: pos}
	}
}

func (p *ddlParser) isPunct(c string) bool { return p.tok.kind == tokPunct && p.tok.text == c }

func (p *ddlParser) isKeyword(kw string) bool {
	return p.tok.kind == tokIdent && strings.EqualFold(p.tok.text, kw)
}

// expect consumes the punctuation c or fails naming what was found instead.
func (p *ddlParser) expect(c, context string) error {
	if !p.isPunct(c) {
		return p.unexpected("%q %s", c, context)
	}
	p.next()
	return nil
}

// unexpected reports the current token as not what the grammar wanted.
func (p *ddlParser) unexpected(wantFormat string, args ...any) error {
	if p.tok.kind == tokError {
		return p.errorf(p.tok.pos, "%s", p.tok.text)
	}
	return p.errorf(p.tok.pos, "expected %s, found %s", fmt.Sprintf(wantFormat, args...), p.tok.describe())
}

// fields parses `field (, field)*` up to (not including) the end of the
// schema, or inside a struct<...> up to the closing '>'.
func (p *ddlParser) fields(inStruct bool) (*StructType, error) {
	st := &StructType{}
	seen := map[string]int{} // lower-cased name -> position of first use
	for {
		namePos := p.tok.pos
		if p.tok.kind != tokIdent && p.tok.kind != tokQuoted {
			if inStruct {
				return nil, p.unexpected("a struct field name")
			}
			return nil, p.unexpected("a column name")
		}
		name := p.tok.text
		if name == "" {
			return nil, p.errorf(namePos, "empty column name")
		}
		if first, dup := seen[strings.ToLower(name)]; dup {
			return nil, p.errorf(namePos, "duplicate column name %q (first at position %d; names are case-insensitive)", name, first)
		}
		seen[strings.ToLower(name)] = namePos
		p.next()
		if p.isPunct(":") { // struct<a:int> style, also accepted at top level
			p.next()
		}
		if p.tok.kind == tokEOF || p.isPunct(",") || p.isPunct(">") {
			return nil, p.unexpected("a type for column %q", name)
		}
		typ, err := p.dataType()
		if err != nil {
			return nil, err
		}
		f := &StructField{Name: name, Type: typ, Nullable: true}
		if err := p.fieldModifiers(f); err != nil {
			return nil, err
		}
		st.Fields = append(st.Fields, f)

		switch {
		case p.isPunct(","):
			p.next()
		case !inStruct && p.tok.kind == tokEOF:
			return st, nil
		case inStruct && p.isPunct(">"):
			return st, nil
		case inStruct:
			return nil, p.unexpected("\",\" or \">\" after struct field %q", name)
		default:
			return nil, p.unexpected("\",\" or end of schema after column %q", name)
		}
	}
}

// fieldModifiers parses the optional NOT NULL / NULL and COMMENT 'text' after a type.
func (p *ddlParser) fieldModifiers(f *StructField) error {
	for {
		switch {
		case p.isKeyword("not"):
			p.next()
			if !p.isKeyword("null") {
				return p.unexpected("NULL after NOT")
			}
			p.next()
			f.Nullable = false
		case p.isKeyword("null"):
			p.next()
			f.Nullable = true
		case p.isKeyword("comment"):
			p.next()
			if p.tok.kind != tokString {
				return p.unexpected("a quoted comment after COMMENT")
			}
			c, err := json.Marshal(p.tok.text)
			if err != nil {
				return p.errorf(p.tok.pos, "comment: %v", err)
			}
			if f.Metadata == nil {
				f.Metadata = map[string]json.RawMessage{}
			}
			f.Metadata["comment"] = c
			p.next()
		default:
			return nil
		}
	}
}

// dataType parses one type.
func (p *ddlParser) dataType() (DataType, error) {
	if p.tok.kind != tokIdent {
		return nil, p.unexpected("a type name")
	}
	pos := p.tok.pos
	name := strings.ToLower(p.tok.text)
	p.next()
	switch name {
	case "array":
		if err := p.expect("<", "after array"); err != nil {
			return nil, err
		}
		elem, err := p.dataType()
		if err != nil {
			return nil, err
		}
		containsNull := true
		if p.isKeyword("not") {
			p.next()
			if !p.isKeyword("null") {
				return nil, p.unexpected("NULL after NOT")
			}
			p.next()
			containsNull = false
		}
		if err := p.expect(">", "closing array<...>"); err != nil {
			return nil, err
		}
		return &ArrayType{ElementType: elem, ContainsNull: containsNull}, nil
	case "map":
		if err := p.expect("<", "after map"); err != nil {
			return nil, err
		}
		key, err := p.dataType()
		if err != nil {
			return nil, err
		}
		if err := p.expect(",", "between map key and value types"); err != nil {
			return nil, err
		}
		val, err := p.dataType()
		if err != nil {
			return nil, err
		}
		valueContainsNull := true
		if p.isKeyword("not") {
			p.next()
			if !p.isKeyword("null") {
				return nil, p.unexpected("NULL after NOT")
			}
			p.next()
			valueContainsNull = false
		}
		if err := p.expect(">", "closing map<...>"); err != nil {
			return nil, err
		}
		return &MapType{KeyType: key, ValueType: val, ValueContainsNull: valueContainsNull}, nil
	case "struct":
		if err := p.expect("<", "after struct"); err != nil {
			return nil, err
		}
		if p.isPunct(">") {
			return nil, p.errorf(p.tok.pos, "struct<> needs at least one field")
		}
		st, err := p.fields(true)
		if err != nil {
			return nil, err
		}
		if err := p.expect(">", "closing struct<...>"); err != nil {
			return nil, err
		}
		return st, nil
	case "decimal", "dec", "numeric":
		precision, scale := 10, 0
		if p.isPunct("(") {
			p.next()
			var err error
			if precision, err = p.number("decimal precision"); err != nil {
				return nil, err
			}
			if p.isPunct(",") {
				p.next()
				if scale, err = p.number("decimal scale"); err != nil {
					return nil, err
				}
			}
			if err := p.expect(")", "closing decimal(precision, scale)"); err != nil {
				return nil, err
			}
		}
		if precision < 1 || precision > 38 {
			return nil, p.errorf(pos, "decimal precision %d out of range 1..38", precision)
		}
		if scale > precision {
			return nil, p.errorf(pos, "decimal scale %d exceeds precision %d", scale, precision)
		}
		return &DecimalType{Precision: precision, Scale: scale}, nil
	}
	if canonical, ok := ddlTypeAliases[name]; ok {
		name = canonical
	}
	switch name {
	case TypeString, TypeLong, TypeInteger, TypeShort, TypeByte, TypeFloat, TypeDouble,
		TypeBoolean, TypeBinary, TypeDate, TypeTimestamp, TypeTimestampNTZ, TypeVariant:
		return &PrimitiveType{Name: name}, nil
	}
	return nil, p.errorf(pos, "unknown type %q (expected one of string, long, integer, short, byte, float, double, boolean, binary, date, timestamp, timestamp_ntz, decimal(p,s), array<T>, map<K,V>, struct<...>)", name)
}

// number parses a non-negative integer literal.
func (p *ddlParser) number(what string) (int, error) {
	if p.tok.kind != tokNumber {
		return 0, p.unexpected("%s (a number)", what)
	}
	n, err := strconv.Atoi(p.tok.text)
	if err != nil || n > 1000 {
		return 0, p.errorf(p.tok.pos, "%s %s out of range", what, p.tok.text)
	}
	p.next()
	return n, nil
}

// ddlTypeAliases maps SQL spellings to Delta type names.
var ddlTypeAliases = map[string]string{
	"bigint":        TypeLong,
	"int":           TypeInteger,
	"smallint":      TypeShort,
	"tinyint":       TypeByte,
	"bool":          TypeBoolean,
	"real":          TypeFloat,
	"timestampntz":  TypeTimestampNTZ,
	"timestamp_ltz": TypeTimestamp,
}
