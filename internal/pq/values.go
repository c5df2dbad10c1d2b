package pq

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kappa-lake/kappa/txlog"
)

// TimeUnit says how a number given for a timestamp column is read.
type TimeUnit uint8

const (
	// Millis reads numbers as milliseconds since the Unix epoch (the default).
	Millis TimeUnit = iota
	// Micros reads numbers as microseconds since the Unix epoch.
	Micros
)

// RowError is a row that does not fit the schema. It matches
// ErrSchemaMismatch with errors.Is.
type RowError struct {
	Row    int    // index of the row in the write (0-based)
	Column string // Delta column path, with [i] / [key] steps
	Err    error
}

func (e *RowError) Error() string {
	if e.Column == "" {
		return fmt.Sprintf("row %d: %v", e.Row, e.Err)
	}
	return fmt.Sprintf("row %d: column %s: %v", e.Row, e.Column, e.Err)
}

// Unwrap returns ErrSchemaMismatch and the cause.
func (e *RowError) Unwrap() []error { return []error{ErrSchemaMismatch, e.Err} }

// colErr carries the column path while a value error unwinds.
type colErr struct {
	path string
	err  error
}

func (e *colErr) Error() string { return e.path + ": " + e.err.Error() }
func (e *colErr) Unwrap() error { return e.err }

// inField prefixes err's column path with a field name or an index step.
func inField(step string, err error) error {
	var ce *colErr
	if errors.As(err, &ce) {
		if strings.HasPrefix(ce.path, "[") || ce.path == "" {
			ce.path = step + ce.path
		} else {
			ce.path = step + "." + ce.path
		}
		return ce
	}
	return &colErr{path: step, err: err}
}

func typeErr(want string, v any) error {
	return fmt.Errorf("cannot use %s as %s", describe(v), want)
}

func describe(v any) string {
	s := fmt.Sprintf("%v", v)
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	switch v.(type) {
	case string, json.Number:
		return fmt.Sprintf("%T %q", v, s)
	}
	return fmt.Sprintf("%T %s", v, s)
}

// leaf type codes.
type ltype uint8

const (
	lString ltype = iota
	lBinary
	lLong
	lInt
	lShort
	lByte
	lFloat
	lDouble
	lBool
	lDate
	lTS
	lTSNTZ
	lDec
)

func leafType(t txlog.DataType) ltype {
	if _, ok := t.(*txlog.DecimalType); ok {
		return lDec
	}
	switch t.String() {
	case txlog.TypeString:
		return lString
	case txlog.TypeBinary:
		return lBinary
	case txlog.TypeLong:
		return lLong
	case txlog.TypeInteger:
		return lInt
	case txlog.TypeShort:
		return lShort
	case txlog.TypeByte:
		return lByte
	case txlog.TypeFloat:
		return lFloat
	case txlog.TypeDouble:
		return lDouble
	case txlog.TypeBoolean:
		return lBool
	case txlog.TypeDate:
		return lDate
	case txlog.TypeTimestamp:
		return lTS
	default:
		return lTSNTZ
	}
}

func intRange(lt ltype) (int64, int64) {
	switch lt {
	case lInt:
		return math.MinInt32, math.MaxInt32
	case lShort:
		return math.MinInt16, math.MaxInt16
	case lByte:
		return math.MinInt8, math.MaxInt8
	}
	return math.MinInt64, math.MaxInt64
}

func deref(v any) any {
	if v == nil {
		return nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer {
		return v
	}
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return nil
		}
		rv = rv.Elem()
	}
	return rv.Interface()
}

// toInt64 coerces v to an integer in [lo, hi].
func toInt64(v any, lo, hi int64, want string) (int64, error) {
	var n int64
	switch x := v.(type) {
	case int64:
		n = x
	case int:
		n = int64(x)
	case int32:
		n = int64(x)
	case int16:
		n = int64(x)
	case int8:
		n = int64(x)
	case uint8:
		n = int64(x)
	case uint16:
		n = int64(x)
	case uint32:
		n = int64(x)
	case uint:
		if uint64(x) > math.MaxInt64 {
			return 0, fmt.Errorf("%d out of range for %s", x, want)
		}
		n = int64(x)
	case uint64:
		if x > math.MaxInt64 {
			return 0, fmt.Errorf("%d out of range for %s", x, want)
		}
		n = int64(x)
	case float64:
		return floatToInt(x, lo, hi, want)
	case float32:
		return floatToInt(float64(x), lo, hi, want)
	case json.Number:
		i, err := strconv.ParseInt(string(x), 10, 64)
		if err != nil {
			// 1e3 or 12.0: accept exact integers only
			r, ok := new(big.Rat).SetString(string(x))
			if !ok || !r.IsInt() || !r.Num().IsInt64() {
				return 0, fmt.Errorf("%s is not a %s", x, want)
			}
			i = r.Num().Int64()
		}
		n = i
	default:
		if v != nil && reflect.TypeOf(v).Kind() == reflect.Pointer {
			return toInt64(deref(v), lo, hi, want)
		}
		return 0, typeErr(want, v)
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%d out of range for %s", n, want)
	}
	return n, nil
}

func floatToInt(f float64, lo, hi int64, want string) (int64, error) {
	if f != math.Trunc(f) || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("%v is not a %s", f, want)
	}
	if f < float64(lo) || f >= -float64(math.MinInt64) || f > float64(hi) {
		return 0, fmt.Errorf("%v out of range for %s", f, want)
	}
	return int64(f), nil
}

func toFloat64(v any, want string) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case float32:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case int:
		return float64(x), nil
	case int32:
		return float64(x), nil
	case int16:
		return float64(x), nil
	case int8:
		return float64(x), nil
	case uint8:
		return float64(x), nil
	case uint16:
		return float64(x), nil
	case uint32:
		return float64(x), nil
	case uint64:
		return float64(x), nil
	case uint:
		return float64(x), nil
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return 0, fmt.Errorf("%s is not a %s", x, want)
		}
		return f, nil
	case string:
		switch x {
		case "NaN":
			return math.NaN(), nil
		case "Infinity", "+Infinity", "Inf", "+Inf":
			return math.Inf(1), nil
		case "-Infinity", "-Inf":
			return math.Inf(-1), nil
		}
		return 0, typeErr(want, v)
	}
	if v != nil && reflect.TypeOf(v).Kind() == reflect.Pointer {
		return toFloat64(deref(v), want)
	}
	return 0, typeErr(want, v)
}

func toBool(v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case *bool:
		if x != nil {
			return *x, nil
		}
	}
	return false, typeErr("boolean", v)
}

func toStringValue(v any) (string, error) {
	switch x := v.(type) {
	case string:
		if !utf8.ValidString(x) {
			return "", errors.New("string is not valid UTF-8")
		}
		return x, nil
	case []byte:
		if !utf8.Valid(x) {
			return "", errors.New("string is not valid UTF-8")
		}
		return string(x), nil
	case *string:
		if x != nil {
			return toStringValue(*x)
		}
	}
	return "", typeErr("string", v)
}

// toBinary accepts []byte, or a string holding standard base64 (what
// encoding/json produces for []byte).
func toBinary(v any) ([]byte, error) {
	switch x := v.(type) {
	case []byte:
		return x, nil
	case string:
		b, err := base64.StdEncoding.DecodeString(x)
		if err != nil {
			return nil, errors.New("binary given as a string must be standard base64")
		}
		return b, nil
	}
	return nil, typeErr("binary", v)
}

var unixEpochDay = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)

func daysOf(y int, m time.Month, d int) (int32, error) {
	s := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix()
	days := s / 86400
	if s%86400 != 0 && s < 0 {
		days--
	}
	if days < math.MinInt32 || days > math.MaxInt32 {
		return 0, errors.New("date out of range")
	}
	return int32(days), nil
}

// toDate coerces v to days since 1970-01-01.
func toDate(v any) (int32, error) {
	switch x := v.(type) {
	case time.Time:
		return daysOf(x.Date())
	case string:
		t, err := time.Parse("2006-01-02", x)
		if err != nil {
			return 0, fmt.Errorf("%q is not a date (yyyy-MM-dd)", x)
		}
		return daysOf(t.Date())
	case *time.Time:
		if x != nil {
			return toDate(*x)
		}
	}
	if n, err := toInt64(v, math.MinInt32, math.MaxInt32, "date"); err == nil {
		return int32(n), nil
	}
	return 0, typeErr("date (yyyy-MM-dd)", v)
}

func microsOf(t time.Time) int64 {
	return t.Unix()*1_000_000 + int64(t.Nanosecond()/1000)
}

var tsLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02 15:04:05.999999999Z0700",
}

var ntzLayouts = []string{
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04",
	"2006-01-02 15:04",
	"2006-01-02",
}

// toMicros coerces v to microseconds since the epoch. For timestamp_ntz the
// wall clock is kept (as if it were UTC).
func toMicros(v any, ntz bool, unit TimeUnit) (int64, error) {
	want := "timestamp"
	if ntz {
		want = "timestamp_ntz"
	}
	switch x := v.(type) {
	case time.Time:
		if ntz {
			y, mo, d := x.Date()
			h, mi, s := x.Clock()
			return microsOf(time.Date(y, mo, d, h, mi, s, x.Nanosecond(), time.UTC)), nil
		}
		return microsOf(x), nil
	case *time.Time:
		if x != nil {
			return toMicros(*x, ntz, unit)
		}
	case string:
		if !ntz {
			for _, l := range tsLayouts {
				if t, err := time.Parse(l, x); err == nil {
					return microsOf(t), nil
				}
			}
		}
		// no zone: UTC for timestamp, wall clock for timestamp_ntz
		for _, l := range ntzLayouts {
			if t, err := time.Parse(l, x); err == nil {
				return microsOf(t), nil
			}
		}
		if ntz {
			return 0, fmt.Errorf("%q is not a timestamp without time zone (yyyy-MM-dd[THH:mm:ss[.ffffff]])", x)
		}
		return 0, fmt.Errorf("%q is not an RFC 3339 timestamp", x)
	}
	n, err := toInt64(v, math.MinInt64, math.MaxInt64, want)
	if err != nil {
		return 0, typeErr(want, v)
	}
	if unit == Millis {
		if n > math.MaxInt64/1000 || n < math.MinInt64/1000 {
			return 0, fmt.Errorf("%d milliseconds out of range", n)
		}
		n *= 1000
	}
	return n, nil
}

var bigTen = big.NewInt(10)

func pow10(n int) *big.Int { return new(big.Int).Exp(bigTen, big.NewInt(int64(n)), nil) }

// toDecimal coerces v to the unscaled value of decimal(p,s). It never rounds:
// a value with more fractional digits than the scale (other than trailing
// zeros) or more integer digits than p-s is an error.
func toDecimal(v any, t *txlog.DecimalType) (*big.Int, error) {
	var text string
	switch x := v.(type) {
	case json.Number:
		text = string(x)
	case string:
		text = strings.TrimSpace(x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("%v is not a %s", x, t)
		}
		text = strconv.FormatFloat(x, 'f', -1, 64)
	case float32:
		text = strconv.FormatFloat(float64(x), 'f', -1, 32)
	case *big.Int:
		text = x.String()
	case *big.Rat:
		text = x.RatString()
	case uint64:
		text = strconv.FormatUint(x, 10)
	case uint:
		text = strconv.FormatUint(uint64(x), 10)
	default:
		n, err := toInt64(v, math.MinInt64, math.MaxInt64, t.String())
		if err != nil {
			return nil, typeErr(t.String(), v)
		}
		text = strconv.FormatInt(n, 10)
	}
	r, ok := new(big.Rat).SetString(text)
	if !ok || strings.ContainsAny(text, "/") {
		return nil, fmt.Errorf("%q is not a decimal number", text)
	}
	r.Mul(r, new(big.Rat).SetInt(pow10(t.Scale)))
	if !r.IsInt() {
		return nil, fmt.Errorf("%s has more than %d fractional digits for %s", text, t.Scale, t)
	}
	u := new(big.Int).Set(r.Num())
	if new(big.Int).Abs(u).Cmp(pow10(t.Precision)) >= 0 {
		return nil, fmt.Errorf("%s does not fit %s", text, t)
	}
	return u, nil
}

// fixedBytes renders u in n-byte big-endian two's complement.
func fixedBytes(u *big.Int, n int, dst []byte) []byte {
	dst = dst[:n]
	if u.Sign() >= 0 {
		u.FillBytes(dst)
		return dst
	}
	// two's complement: 2^(8n) + u
	m := new(big.Int).Lsh(big.NewInt(1), uint(8*n))
	m.Add(m, u)
	m.FillBytes(dst)
	return dst
}

// fromFixed decodes n-byte big-endian two's complement.
func fromFixed(b []byte) *big.Int {
	u := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		u.Sub(u, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return u
}

// formatDecimal renders an unscaled value with the given scale ("-12.340").
func formatDecimal(u *big.Int, scale int) string {
	s := new(big.Int).Abs(u).String()
	neg := u.Sign() < 0
	if scale > 0 {
		if len(s) <= scale {
			s = strings.Repeat("0", scale-len(s)+1) + s
		}
		s = s[:len(s)-scale] + "." + s[len(s)-scale:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

func (cs *colSet) putDecimal(c *colBuf, rep uint8, u *big.Int) {
	switch c.leaf.pkind {
	case kInt32:
		c.putInt32(rep, int32(u.Int64()))
	case kInt64:
		c.putInt64(rep, u.Int64())
	default:
		if cap(cs.scratch) < c.leaf.fixedLen {
			cs.scratch = make([]byte, c.leaf.fixedLen)
		}
		c.putFixed(rep, fixedBytes(u, c.leaf.fixedLen, cs.scratch))
	}
}
