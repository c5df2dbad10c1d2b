package ingest

import (
	"encoding/json"
	"fmt"
	"unsafe"

	"github.com/kappa-lake/kappa/internal/jsonstr"
)

// parseJSON parses one JSON value into the shapes encoding/json produces with
// UseNumber (map[string]any, []any, string, json.Number, bool, nil), about
// four times faster than encoding/json for small messages, which decoding
// is the cost of ingest. Input must be exactly one value (whitespace
// around it allowed). Invalid UTF-8 in strings is kept as is (the writer
// rejects it for string columns).
func parseJSON(data []byte) (any, error) {
	return parseJSONKeys(data, nil)
}

// parseJSONKeys is parseJSON reusing the strings of keys (read-only) for
// top-level object keys, saving an allocation per known column.
func parseJSONKeys(data []byte, keys map[string]string) (any, error) {
	v, _, err := parseJSONInto(data, keys, nil)
	return v, err
}

// parseJSONInto is parseJSONKeys filling top (when not nil and the value is
// an object) instead of a new map for the top-level object. unknown counts
// the top-level keys that are not in keys.
func parseJSONInto(data []byte, keys map[string]string, top map[string]any) (v any, unknown int, err error) {
	p := jsonParser{data: data, keys: keys, top: top}
	return p.parse()
}

// parse parses the whole input as one JSON value.
func (p *jsonParser) parse() (v any, unknown int, err error) {
	p.skipSpace()
	v, err = p.value(0)
	if err != nil {
		return nil, 0, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return nil, 0, p.errorf("trailing data after the value")
	}
	return v, p.unknown, nil
}

const maxJSONDepth = 1000

type jsonParser struct {
	data []byte
	pos  int
	keys map[string]string
	top  map[string]any // the map to fill for the top-level object (nil: a new one)

	unknown int // top-level keys not in keys (or slotIdx)

	// slot mode: top-level object fields go to slots[slotIdx[key]] (other
	// keys are parsed and dropped) and the object is returned as slotRow{}.
	slotIdx map[string]int
	slots   []any
	names   []string  // slot names (by index), for order
	order   *keyOrder // guesses of the slot of each key position (nil: none)

	// alias makes strings without escapes and numbers share data's memory
	// instead of copying it (data must not change while they are used).
	alias bool
}

// slotRow is what parseJSONSlots returns for a top-level object.
type slotRow struct{}

// keyOrder remembers the slot of the key at each position of the last
// object parsed (-1: unknown key), so that messages with their keys in the
// same order as the previous one skip the map lookups. Not safe for
// concurrent use: one per reading goroutine.
type keyOrder struct{ slots []int }

// parseJSONSlots parses one JSON value like parseJSON, but a top-level
// object's fields go to slots (slots[idx[key]]; a repeated key keeps its
// last value), returning slotRow{} for it; unknown counts the keys not in
// idx, which are dropped. Strings and numbers may share data's memory:
// data must not change while the values are used.
func parseJSONSlots(data []byte, idx map[string]int, names []string, order *keyOrder, slots []any) (v any, unknown int, err error) {
	p := jsonParser{data: data, slotIdx: idx, names: names, order: order, slots: slots, alias: true}
	return p.parse()
}

func (p *jsonParser) errorf(format string, args ...any) error {
	return fmt.Errorf("offset %d: %s", p.pos, fmt.Sprintf(format, args...))
}

func (p *jsonParser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jsonParser) value(depth int) (any, error) {
	if p.pos >= len(p.data) {
		return nil, p.errorf("unexpected end of input")
	}
	if depth > maxJSONDepth {
		return nil, p.errorf("nested too deeply")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		return p.str()
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case c == 't':
		return true, p.literal("true")
	case c == 'f':
		return false, p.literal("false")
	case c == 'n':
		return nil, p.literal("null")
	default:
		return nil, p.errorf("invalid character %q looking for a value", c)
	}
}

func (p *jsonParser) literal(lit string) error {
	if len(p.data)-p.pos < len(lit) || string(p.data[p.pos:p.pos+len(lit)]) != lit {
		return p.errorf("invalid literal, want %s", lit)
	}
	p.pos += len(lit)
	return nil
}

func (p *jsonParser) object(depth int) (any, error) {
	if depth == 0 && p.slotIdx != nil {
		return p.slotObject()
	}
	p.pos++ // {
	var m map[string]any
	if depth == 0 && p.top != nil {
		m = p.top
	} else {
		m = make(map[string]any, 12)
	}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return m, nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, p.errorf("want a string object key")
		}
		var k string
		haveKey := false
		if depth == 0 && p.keys != nil {
			if end := p.plainStringEnd(); end > 0 {
				raw := p.data[p.pos+1 : end]
				if known, ok := p.keys[string(raw)]; ok {
					k, haveKey = known, true
					p.pos = end + 1
				}
			}
		}
		if !haveKey {
			var err error
			if k, err = p.str(); err != nil {
				return nil, err
			}
			if depth == 0 && p.keys != nil {
				if _, ok := p.keys[k]; !ok {
					p.unknown++
				}
			}
		}
		if err := p.colon(); err != nil {
			return nil, err
		}
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		m[k] = v
		if more, err := p.objectNext(); err != nil || !more {
			return m, err
		}
	}
}

// colon consumes the ':' after an object key and the space around it.
func (p *jsonParser) colon() error {
	p.skipSpace()
	if p.pos >= len(p.data) || p.data[p.pos] != ':' {
		return p.errorf("want ':' after an object key")
	}
	p.pos++
	p.skipSpace()
	return nil
}

// objectNext consumes what follows an object member: ',' (more members) or
// '}' (the end).
func (p *jsonParser) objectNext() (more bool, err error) {
	p.skipSpace()
	if p.pos >= len(p.data) {
		return false, p.errorf("unexpected end of input in an object")
	}
	switch p.data[p.pos] {
	case ',':
		p.pos++
		return true, nil
	case '}':
		p.pos++
		return false, nil
	}
	return false, p.errorf("want ',' or '}' in an object")
}

// slotObject parses the top-level object in slot mode.
func (p *jsonParser) slotObject() (any, error) {
	p.pos++ // {
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return slotRow{}, nil
	}
	for n := 0; ; n++ {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, p.errorf("want a string object key")
		}
		var idx int
		var found bool
		if end := p.plainStringEnd(); end > 0 {
			raw := p.data[p.pos+1 : end]
			if o := p.order; o != nil && n < len(o.slots) && o.slots[n] >= 0 && o.slots[n] < len(p.names) && p.names[o.slots[n]] == string(raw) {
				idx, found = o.slots[n], true
			} else {
				idx, found = p.slotIdx[string(raw)]
				if o != nil {
					guess := -1
					if found {
						guess = idx
					}
					if n < len(o.slots) {
						o.slots[n] = guess
					} else if n == len(o.slots) && n < maxJSONDepth {
						o.slots = append(o.slots, guess)
					}
				}
			}
			p.pos = end + 1
		} else {
			k, err := p.str()
			if err != nil {
				return nil, err
			}
			idx, found = p.slotIdx[k]
		}
		if !found {
			p.unknown++
		}
		if err := p.colon(); err != nil {
			return nil, err
		}
		v, err := p.value(1)
		if err != nil {
			return nil, err
		}
		if found {
			p.slots[idx] = v
		}
		if more, err := p.objectNext(); err != nil || !more {
			return slotRow{}, err
		}
	}
}

func (p *jsonParser) array(depth int) (any, error) {
	p.pos++ // [
	a := []any{}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return a, nil
	}
	for {
		p.skipSpace()
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, p.errorf("unexpected end of input in an array")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return a, nil
		default:
			return nil, p.errorf("want ',' or ']' in an array")
		}
	}
}

func (p *jsonParser) number() (any, error) {
	start := p.pos
	d := p.data
	if p.pos < len(d) && d[p.pos] == '-' {
		p.pos++
	}
	digits := func() int {
		n := 0
		for p.pos < len(d) && d[p.pos] >= '0' && d[p.pos] <= '9' {
			p.pos++
			n++
		}
		return n
	}
	if p.pos < len(d) && d[p.pos] == '0' {
		p.pos++
	} else if digits() == 0 {
		return nil, p.errorf("invalid number")
	}
	if p.pos < len(d) && d[p.pos] == '.' {
		p.pos++
		if digits() == 0 {
			return nil, p.errorf("invalid number: no digits after '.'")
		}
	}
	if p.pos < len(d) && (d[p.pos] == 'e' || d[p.pos] == 'E') {
		p.pos++
		if p.pos < len(d) && (d[p.pos] == '+' || d[p.pos] == '-') {
			p.pos++
		}
		if digits() == 0 {
			return nil, p.errorf("invalid number: no exponent digits")
		}
	}
	if p.alias {
		return json.Number(unsafe.String(&d[start], p.pos-start)), nil
	}
	return json.Number(d[start:p.pos]), nil
}

// plainStringEnd returns the index of the closing quote of the string at
// p.pos when it has no escapes or control characters, else -1.
func (p *jsonParser) plainStringEnd() int {
	for i := p.pos + 1; i < len(p.data); i++ {
		switch c := p.data[i]; {
		case c == '"':
			return i
		case c == '\\' || c < 0x20:
			return -1
		}
	}
	return -1
}

func (p *jsonParser) str() (string, error) {
	p.pos++ // "
	start := p.pos
	d := p.data
	for p.pos < len(d) {
		c := d[p.pos]
		if c == '"' {
			var s string
			if p.alias {
				s = unsafe.String(&d[start], p.pos-start) // d[start] exists: the quote at least
			} else {
				s = string(d[start:p.pos])
			}
			p.pos++
			return s, nil
		}
		if c == '\\' {
			return p.strSlow(start)
		}
		if c < 0x20 {
			return "", p.errorf("%v", jsonstr.ErrControl)
		}
		p.pos++
	}
	return "", p.errorf("%v", jsonstr.ErrUnterminated)
}

// strSlow decodes a string with escapes, from its first content byte; p.pos
// is at its first backslash.
func (p *jsonParser) strSlow(start int) (string, error) {
	// str has checked data[start:p.pos] (no escape, no control byte), so
	// the scan resumes at the backslash (Scan starts after the byte it is
	// given, which is the string's quote for a whole string).
	end, _, _, err := jsonstr.Scan(p.data, p.pos-1)
	if err != nil {
		p.pos = end
		return "", p.errorf("%v", err)
	}
	p.pos = end
	return string(jsonstr.AppendUnescaped(make([]byte, 0, end-start), p.data[start:end-1])), nil
}
