// Package jsonstr scans and decodes JSON strings for the two hand-written
// JSON parsers of the tree: the ingest decoder of Kafka messages and the
// transaction log's action scanner. Both are checked against encoding/json
// by fuzzing; this package is where they agree on what a string is.
package jsonstr

import (
	"errors"
	"unicode/utf16"
	"unicode/utf8"
)

// Errors of Scan.
var (
	ErrControl      = errors.New("control character in a string")
	ErrEscape       = errors.New("invalid escape in a string")
	ErrUnterminated = errors.New("unterminated string")
)

// Scan checks the JSON string whose opening quote is data[start] (or the
// rest of one from data[start+1], when the bytes before are known to hold
// no escape, quote or control byte). It
// returns the index just past the closing quote, whether the string has
// escapes, and whether it has bytes of 0x80 and above (which Scan does not
// validate as UTF-8). On error, end is the index of the offending byte
// (len(data) for an unterminated string).
func Scan(data []byte, start int) (end int, esc, nonASCII bool, err error) {
	i := start + 1
	for i < len(data) {
		switch c := data[i]; {
		case c == '"':
			return i + 1, esc, nonASCII, nil
		case c == '\\':
			esc = true
			if i+1 >= len(data) {
				return len(data), esc, nonASCII, ErrUnterminated
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if _, ok := hex4(data[i+2:]); !ok {
					return i, esc, nonASCII, ErrEscape
				}
				i += 6
			default:
				return i, esc, nonASCII, ErrEscape
			}
		case c < 0x20:
			return i, esc, nonASCII, ErrControl
		default:
			if c >= 0x80 {
				nonASCII = true
			}
			i++
		}
	}
	return len(data), esc, nonASCII, ErrUnterminated
}

// AppendUnescaped appends body, the bytes between the quotes of a string
// Scan accepted, to dst with its escapes decoded as encoding/json decodes
// them: a \u escape of a high surrogate followed by one of a low surrogate
// is one character, and any other surrogate escape is U+FFFD. Other bytes
// are copied as they are.
func AppendUnescaped(dst, body []byte) []byte {
	for i := 0; i < len(body); {
		c := body[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		e := body[i+1]
		i += 2
		switch e {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, _ := hex4(body[i:])
			i += 4
			if utf16.IsSurrogate(r) {
				dec := utf8.RuneError
				if len(body) >= i+6 && body[i] == '\\' && body[i+1] == 'u' {
					r2, _ := hex4(body[i+2:])
					if dec = utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						i += 6
					}
				}
				r = dec
			}
			dst = utf8.AppendRune(dst, r)
		default: // '"', '\\', '/'
			dst = append(dst, e)
		}
	}
	return dst
}

// hex4 decodes the four hex digits at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
