package reader

// SQL front end: a hand-written lexer and recursive-descent parser for the
// query subset Kappa supports.
//
// Why not a library: the maintained Go SQL parsers (vitess sqlparser and
// its forks, pingcap/tidb's parser, CockroachDB's parser, pg_query_go) parse
// MySQL or PostgreSQL dialects. None accepts Spark's time-travel clauses
// (`FROM delta.`/path` VERSION AS OF 3`, `TIMESTAMP AS OF '...'`) or
// `NULLS FIRST/LAST` together with backquoted table paths, pg_query_go needs
// cgo, and the TiDB and CockroachDB parsers pull in hundreds of thousands of
// lines for a grammar we would use a few percent of. The only parser with
// Spark/Databricks time travel is Rust (datafusion-sqlparser-rs). The subset
// here is small (one SELECT over one table), so a hand-written parser
// keeps exact line:column positions in every error and adds no dependency.

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrSQL reports a query that cannot be parsed or planned. The concrete
// error is a *SQLError carrying the position.
var ErrSQL = errors.New("sql error")

// Pos is a position in the SQL text (1-based line and column, in runes).
type Pos struct {
	Line, Col int
}

func (p Pos) String() string { return fmt.Sprintf("%d:%d", p.Line, p.Col) }

// SQLError is a syntax or planning error at a position of the query.
type SQLError struct {
	Pos Pos
	Msg string
}

func (e *SQLError) Error() string {
	if e.Pos.Line == 0 {
		return "sql: " + e.Msg
	}
	return fmt.Sprintf("sql: line %s: %s", e.Pos, e.Msg)
}

// Unwrap makes errors.Is(err, ErrSQL) hold.
func (e *SQLError) Unwrap() error { return ErrSQL }

func sqlErrorf(p Pos, format string, args ...any) error {
	return &SQLError{Pos: p, Msg: fmt.Sprintf(format, args...)}
}

type tokKind uint8

const (
	tEOF tokKind = iota
	tIdent
	tQIdent // `quoted`
	tString
	tNumber
	tOp
)

type token struct {
	kind tokKind
	text string // identifier / op text, string contents (unescaped), number text
	pos  Pos
}

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "end of input"
	case tString:
		return "'" + t.text + "'"
	case tQIdent:
		return "`" + t.text + "`"
	}
	return fmt.Sprintf("%q", t.text)
}

// is reports whether t is the keyword kw (case-insensitive, unquoted).
func (t token) is(kw string) bool { return t.kind == tIdent && strings.EqualFold(t.text, kw) }

func (t token) isOp(op string) bool { return t.kind == tOp && t.text == op }

func lex(src string) ([]token, error) {
	var toks []token
	line, col := 1, 1
	i := 0
	adv := func(n int) {
		for k := 0; k < n && i < len(src); {
			r, sz := utf8.DecodeRuneInString(src[i:])
			if r == '\n' {
				line++
				col = 1
			} else {
				col++
			}
			i += sz
			k += sz
		}
	}
	for i < len(src) {
		c := src[i]
		start := Pos{line, col}
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			adv(1)
		case c == '-' && i+1 < len(src) && src[i+1] == '-':
			for i < len(src) && src[i] != '\n' {
				adv(1)
			}
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return nil, sqlErrorf(start, "unterminated comment")
			}
			adv(end + 4)
		case c == '\'' || c == '"':
			// '...' is a string; "..." is a string too (Spark's default).
			q := c
			var b strings.Builder
			adv(1)
			closed := false
			for i < len(src) {
				if src[i] == q {
					if i+1 < len(src) && src[i+1] == q {
						b.WriteByte(q)
						adv(2)
						continue
					}
					adv(1)
					closed = true
					break
				}
				if src[i] == '\\' && i+1 < len(src) {
					switch src[i+1] {
					case 'n':
						b.WriteByte('\n')
					case 't':
						b.WriteByte('\t')
					case '\\', '\'', '"':
						b.WriteByte(src[i+1])
					case '%', '_':
						// keep the escape for LIKE patterns
						b.WriteByte('\\')
						b.WriteByte(src[i+1])
					default:
						b.WriteByte(src[i+1])
					}
					adv(2)
					continue
				}
				b.WriteByte(src[i])
				adv(1)
			}
			if !closed {
				return nil, sqlErrorf(start, "unterminated string literal")
			}
			toks = append(toks, token{tString, b.String(), start})
		case c == '`':
			adv(1)
			var b strings.Builder
			closed := false
			for i < len(src) {
				if src[i] == '`' {
					if i+1 < len(src) && src[i+1] == '`' {
						b.WriteByte('`')
						adv(2)
						continue
					}
					adv(1)
					closed = true
					break
				}
				b.WriteByte(src[i])
				adv(1)
			}
			if !closed {
				return nil, sqlErrorf(start, "unterminated quoted identifier")
			}
			toks = append(toks, token{tQIdent, b.String(), start})
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(src) && src[i+1] >= '0' && src[i+1] <= '9':
			j := i
			for j < len(src) && (src[j] >= '0' && src[j] <= '9' || src[j] == '.') {
				j++
			}
			if j < len(src) && (src[j] == 'e' || src[j] == 'E') {
				k := j + 1
				if k < len(src) && (src[k] == '+' || src[k] == '-') {
					k++
				}
				if k < len(src) && src[k] >= '0' && src[k] <= '9' {
					j = k
					for j < len(src) && src[j] >= '0' && src[j] <= '9' {
						j++
					}
				}
			}
			if j < len(src) && isIdentByte(src[j]) {
				// Spark's typed suffixes (10L, 1.5D) are not supported.
				return nil, sqlErrorf(start, "malformed number %q", src[i:j+1])
			}
			toks = append(toks, token{tNumber, src[i:j], start})
			adv(j - i)
		case isIdentStart(src[i:]):
			j := i
			for j < len(src) {
				r, sz := utf8.DecodeRuneInString(src[j:])
				if !(r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r)) {
					break
				}
				j += sz
			}
			toks = append(toks, token{tIdent, src[i:j], start})
			adv(j - i)
		default:
			op := ""
			for _, o := range []string{"<=>", "<=", ">=", "<>", "!=", "==", "||"} {
				if strings.HasPrefix(src[i:], o) {
					op = o
					break
				}
			}
			if op == "" {
				if strings.ContainsRune("=<>+-*/%(),.;", rune(c)) {
					op = string(c)
				} else {
					r, _ := utf8.DecodeRuneInString(src[i:])
					return nil, sqlErrorf(start, "unexpected character %q", r)
				}
			}
			toks = append(toks, token{tOp, op, start})
			adv(len(op))
		}
	}
	toks = append(toks, token{tEOF, "", Pos{line, col}})
	return toks, nil
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

func isIdentStart(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return r == '_' || unicode.IsLetter(r)
}
