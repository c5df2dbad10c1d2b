package txlog

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"github.com/kappa-lake/kappa/internal/jsonstr"
)

// This file is the fast path of ParseCommit: add and remove lines (nearly
// every line of a large log) are decoded by a hand-written scanner instead
// of encoding/json's reflection. The fast path only accepts input whose
// meaning is obvious: a line holding exactly one "add" or "remove" key
// whose object has exact-case field names, no duplicate fields, and values
// of the expected JSON types. Everything else (a null action, a
// case-folded or escaped field name, a number that is not a plain
// integer, a nesting deeper than fastMaxDepth, any syntax error, ...) makes
// it give up, and the line is decoded by encoding/json, which also produces
// the error for malformed lines. The result of the fast path is identical
// to encoding/json's; FuzzFastActionDifferential checks that.

// fastMaxDepth bounds the nesting of values the fast path skips.
const fastMaxDepth = 64

// fastAction decodes line (trimmed, non-empty) when it is a plain add or
// remove action. ok is false when the caller must use encoding/json.
func fastAction(line []byte) (a Action, ok bool) {
	s := fastScanner{b: line}
	if !s.consume('{') {
		return Action{}, false
	}
	key, ok := s.key()
	if !ok || !s.consume(':') {
		return Action{}, false
	}
	switch string(key) {
	case "add":
		add := new(Add)
		if !s.structObject(addFieldNames, func(k []byte) bool { return s.addField(add, k) }) {
			return Action{}, false
		}
		a.Add = add
	case "remove":
		rm := new(Remove)
		if !s.structObject(removeFieldNames, func(k []byte) bool { return s.removeField(rm, k) }) {
			return Action{}, false
		}
		a.Remove = rm
	default:
		return Action{}, false
	}
	if !s.consume('}') {
		return Action{}, false
	}
	s.ws()
	return a, s.i == len(s.b)
}

// JSON names of the fields of the structs the fast path decodes; an unknown
// key that equals one of them case-insensitively is left to encoding/json
// (which matches names case-insensitively).
var (
	addFieldNames = []string{
		"path", "partitionValues", "size", "modificationTime", "dataChange",
		"stats", "tags", "deletionVector", "baseRowId", "defaultRowCommitVersion", "clusteringProvider",
	}
	removeFieldNames = []string{
		"path", "deletionTimestamp", "dataChange", "extendedFileMetadata",
		"partitionValues", "size", "stats", "tags", "deletionVector", "baseRowId", "defaultRowCommitVersion",
	}
	dvFieldNames = []string{"storageType", "pathOrInlineDv", "offset", "sizeInBytes", "cardinality", "maxRowIndex"}
)

func (s *fastScanner) addField(a *Add, k []byte) bool {
	switch string(k) {
	case "path":
		return s.stringValue(&a.Path)
	case "partitionValues":
		return s.nullableStringMap(&a.PartitionValues)
	case "size":
		return s.int64Value(&a.Size)
	case "modificationTime":
		return s.int64Value(&a.ModificationTime)
	case "dataChange":
		return s.boolValue(&a.DataChange)
	case "stats":
		return s.stringValue(&a.Stats)
	case "tags":
		return s.stringMap(&a.Tags)
	case "deletionVector":
		return s.deletionVector(&a.DeletionVector)
	case "baseRowId":
		return s.int64Ptr(&a.BaseRowID)
	case "defaultRowCommitVersion":
		return s.int64Ptr(&a.DefaultRowCommitVersion)
	case "clusteringProvider":
		return s.stringPtr(&a.ClusteringProvider)
	}
	return s.unknownField(k, addFieldNames)
}

func (s *fastScanner) removeField(r *Remove, k []byte) bool {
	switch string(k) {
	case "path":
		return s.stringValue(&r.Path)
	case "deletionTimestamp":
		return s.int64Ptr(&r.DeletionTimestamp)
	case "dataChange":
		return s.boolValue(&r.DataChange)
	case "extendedFileMetadata":
		return s.boolPtr(&r.ExtendedFileMetadata)
	case "partitionValues":
		return s.nullableStringMap(&r.PartitionValues)
	case "size":
		return s.int64Ptr(&r.Size)
	case "stats":
		return s.stringValue(&r.Stats)
	case "tags":
		return s.stringMap(&r.Tags)
	case "deletionVector":
		return s.deletionVector(&r.DeletionVector)
	case "baseRowId":
		return s.int64Ptr(&r.BaseRowID)
	case "defaultRowCommitVersion":
		return s.int64Ptr(&r.DefaultRowCommitVersion)
	}
	return s.unknownField(k, removeFieldNames)
}

func (s *fastScanner) deletionVector(dst **DeletionVector) bool {
	if s.null() {
		return true
	}
	dv := new(DeletionVector)
	ok := s.structObject(dvFieldNames, func(k []byte) bool {
		switch string(k) {
		case "storageType":
			return s.stringValue(&dv.StorageType)
		case "pathOrInlineDv":
			return s.stringValue(&dv.PathOrInlineDv)
		case "offset":
			if s.null() {
				return true
			}
			var v int32
			if !s.int32Value(&v) {
				return false
			}
			dv.Offset = &v
			return true
		case "sizeInBytes":
			return s.int32Value(&dv.SizeInBytes)
		case "cardinality":
			return s.int64Value(&dv.Cardinality)
		case "maxRowIndex":
			return s.int64Ptr(&dv.MaxRowIndex)
		}
		return s.unknownField(k, dvFieldNames)
	})
	if ok {
		*dst = dv
	}
	return ok
}

// unknownField skips the value of a key that names no field, unless
// encoding/json would match it to a field case-insensitively.
func (s *fastScanner) unknownField(k []byte, names []string) bool {
	for _, n := range names {
		if len(n) == len(k) && bytes.EqualFold([]byte(n), k) {
			return false
		}
	}
	return s.skip(0)
}

// fastScanner walks one JSON line. Every method returns false on anything
// the fast path does not handle; the scanner is then abandoned.
type fastScanner struct {
	b []byte
	i int
}

func (s *fastScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// consume skips white space and then the byte c.
func (s *fastScanner) consume(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// null consumes a null literal if one is next.
func (s *fastScanner) null() bool {
	s.ws()
	if bytes.HasPrefix(s.b[s.i:], []byte("null")) {
		s.i += 4
		return true
	}
	return false
}

// key reads an object key that is plain printable ASCII without escapes
// (struct field names; anything else goes to encoding/json).
func (s *fastScanner) key() ([]byte, bool) {
	if !s.consume('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		if c == '"' {
			k := s.b[start:s.i]
			s.i++
			return k, true
		}
		if c < 0x20 || c >= 0x7f || c == '\\' {
			return nil, false
		}
		s.i++
	}
	return nil, false
}

// structObject reads an object, calling field for each key with the
// scanner positioned at the value. A duplicated known field is left to
// encoding/json (which merges some kinds of values).
func (s *fastScanner) structObject(names []string, field func(k []byte) bool) bool {
	if !s.consume('{') {
		return false
	}
	if s.consume('}') {
		return true
	}
	var seen uint64
	for {
		k, ok := s.key()
		if !ok || !s.consume(':') {
			return false
		}
		for i, n := range names {
			if n == string(k) {
				if seen&(1<<i) != 0 {
					return false
				}
				seen |= 1 << i
				break
			}
		}
		if !field(k) {
			return false
		}
		if s.consume(',') {
			continue
		}
		return s.consume('}')
	}
}

// mapObject reads an object with arbitrary keys; value reads one value.
func (s *fastScanner) mapObject(value func(k string) bool) bool {
	if !s.consume('{') {
		return false
	}
	if s.consume('}') {
		return true
	}
	for {
		s.ws()
		k, ok := s.str()
		if !ok || !s.consume(':') {
			return false
		}
		if !value(k) {
			return false
		}
		if s.consume(',') {
			continue
		}
		return s.consume('}')
	}
}

// nullableStringMap decodes a map[string]*string (partition values: null
// values are kept as nil entries).
func (s *fastScanner) nullableStringMap(dst *map[string]*string) bool {
	if s.null() {
		return true
	}
	m := make(map[string]*string)
	ok := s.mapObject(func(k string) bool {
		if s.null() {
			m[k] = nil
			return true
		}
		v, ok := s.str()
		if !ok {
			return false
		}
		m[k] = &v
		return true
	})
	if ok {
		*dst = m
	}
	return ok
}

// stringMap decodes a map[string]string; null values are left to
// encoding/json.
func (s *fastScanner) stringMap(dst *map[string]string) bool {
	if s.null() {
		return true
	}
	m := make(map[string]string)
	ok := s.mapObject(func(k string) bool {
		v, ok := s.str()
		if !ok {
			return false
		}
		m[k] = v
		return true
	})
	if ok {
		*dst = m
	}
	return ok
}

func (s *fastScanner) stringValue(dst *string) bool {
	if s.null() {
		return true
	}
	v, ok := s.str()
	*dst = v
	return ok
}

func (s *fastScanner) stringPtr(dst **string) bool {
	if s.null() {
		return true
	}
	v, ok := s.str()
	if ok {
		*dst = &v
	}
	return ok
}

func (s *fastScanner) boolValue(dst *bool) bool {
	s.ws()
	rest := s.b[s.i:]
	switch {
	case bytes.HasPrefix(rest, []byte("true")):
		*dst = true
		s.i += 4
	case bytes.HasPrefix(rest, []byte("false")):
		*dst = false
		s.i += 5
	case bytes.HasPrefix(rest, []byte("null")):
		s.i += 4
	default:
		return false
	}
	return s.delimited()
}

func (s *fastScanner) boolPtr(dst **bool) bool {
	if s.null() {
		return s.delimited()
	}
	var v bool
	if !s.boolValue(&v) {
		return false
	}
	*dst = &v
	return true
}

// delimited reports whether the token just read ends properly (a literal
// like "truex" is a syntax error).
func (s *fastScanner) delimited() bool {
	if s.i == len(s.b) {
		return true
	}
	switch s.b[s.i] {
	case ' ', '\t', '\n', '\r', ',', '}', ']':
		return true
	}
	return false
}

func (s *fastScanner) int64Value(dst *int64) bool {
	if s.null() {
		return s.delimited()
	}
	v, ok := s.integer()
	*dst = v
	return ok
}

func (s *fastScanner) int64Ptr(dst **int64) bool {
	if s.null() {
		return s.delimited()
	}
	v, ok := s.integer()
	if ok {
		*dst = &v
	}
	return ok
}

func (s *fastScanner) int32Value(dst *int32) bool {
	if s.null() {
		return s.delimited()
	}
	v, ok := s.integer()
	if !ok || v != int64(int32(v)) {
		return false
	}
	*dst = int32(v)
	return true
}

// integer reads a JSON number that is a plain integer of at most 18
// digits (so it cannot overflow); fractions, exponents and longer numbers
// are left to encoding/json.
func (s *fastScanner) integer() (int64, bool) {
	s.ws()
	neg := false
	if s.i < len(s.b) && s.b[s.i] == '-' {
		neg = true
		s.i++
	}
	start := s.i
	var v int64
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		v = v*10 + int64(s.b[s.i]-'0')
		s.i++
	}
	n := s.i - start
	if n == 0 || n > 18 || (n > 1 && s.b[start] == '0') || !s.delimited() {
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}

// str reads a JSON string value (the scanner must be at its opening
// quote, after white space) and returns it unescaped.
func (s *fastScanner) str() (string, bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return "", false
	}
	start := s.i
	end, esc, nonASCII, ok := s.scanString()
	if !ok {
		return "", false
	}
	body := s.b[start+1 : end-1]
	switch {
	case nonASCII && !utf8.Valid(body):
		// invalid UTF-8: encoding/json's own unquoting, which replaces
		// invalid bytes with U+FFFD
		var v string
		if err := json.Unmarshal(s.b[start:end], &v); err != nil {
			return "", false
		}
		return v, true
	case esc:
		return string(jsonstr.AppendUnescaped(make([]byte, 0, len(body)), body)), true
	}
	return string(body), true
}

// scanString validates the string starting at s.i (a quote) and moves past
// it; end is the index after the closing quote.
func (s *fastScanner) scanString() (end int, esc, nonASCII, ok bool) {
	end, esc, nonASCII, err := jsonstr.Scan(s.b, s.i)
	if err != nil {
		return 0, false, false, false
	}
	s.i = end
	return end, esc, nonASCII, true
}

// skip validates and skips one JSON value of any kind.
func (s *fastScanner) skip(depth int) bool {
	if depth > fastMaxDepth {
		return false
	}
	s.ws()
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, _, _, ok := s.scanString()
		return ok
	case c == '{':
		s.i++
		if s.consume('}') {
			return true
		}
		for {
			s.ws()
			if s.i >= len(s.b) || s.b[s.i] != '"' {
				return false
			}
			if _, _, _, ok := s.scanString(); !ok || !s.consume(':') || !s.skip(depth+1) {
				return false
			}
			if s.consume(',') {
				continue
			}
			return s.consume('}')
		}
	case c == '[':
		s.i++
		if s.consume(']') {
			return true
		}
		for {
			if !s.skip(depth + 1) {
				return false
			}
			if s.consume(',') {
				continue
			}
			return s.consume(']')
		}
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	}
	return false
}

func (s *fastScanner) literal(lit string) bool {
	if !bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		return false
	}
	s.i += len(lit)
	return s.delimited()
}

// number skips a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *fastScanner) number() bool {
	b, i := s.b, s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	start := i
	n := digits()
	if n == 0 || (n > 1 && b[start] == '0') {
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	s.i = i
	return s.delimited()
}
