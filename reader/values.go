package reader

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/kappa-lake/kappa/txlog"
)

// ErrBadPartitionValue reports a partition value that does not parse as its
// column's type.
var ErrBadPartitionValue = errors.New("bad partition value")

// parseDate parses "yyyy-MM-dd" (also tolerating a time suffix) to days.
func parseDate(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if len(s) > 10 && (s[10] == ' ' || s[10] == 'T') {
		s = s[:10]
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return 0, err
	}
	return floorDiv(t.Unix(), 86400), nil
}

var tsLayouts = []string{
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04",
	"2006-01-02T15:04",
	"2006-01-02",
}

// parseTimestamp parses the timestamp forms found in partition values and
// stats: "yyyy-MM-dd HH:mm:ss[.S...]" (no zone: read as UTC), ISO 8601 with
// 'T', 'Z' or an offset. It returns microseconds since the epoch.
func parseTimestamp(s string) (int64, error) {
	s = strings.TrimSpace(s)
	for _, l := range tsLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UnixMicro(), nil
		}
	}
	return 0, fmt.Errorf("cannot parse timestamp %q", s)
}

func parseNumber(t txlog.DataType, s string) (any, error) {
	s = strings.TrimSpace(s)
	if p, ok := t.(*txlog.PrimitiveType); ok && (p.Name == txlog.TypeFloat || p.Name == txlog.TypeDouble) {
		switch strings.ToLower(s) {
		case "nan":
			return math.NaN(), nil
		case "infinity", "inf", "+infinity":
			return math.Inf(1), nil
		case "-infinity", "-inf":
			return math.Inf(-1), nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, err
		}
		return f, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// partitionValue is a typed partition value: scalar for predicates, and an
// appender for materialisation.
type partitionValue struct {
	null   bool
	scalar any
	typ    txlog.DataType
	raw    string
	dec    *big.Int // decimals: unscaled at the column's scale
}

// parsePartitionValue parses add.partitionValues[col] for type t. A missing
// or empty value is null (Delta writes null partitions as null or "").
func parsePartitionValue(t txlog.DataType, v *string) (partitionValue, error) {
	pv := partitionValue{typ: t}
	if v == nil {
		pv.null = true
		return pv, nil
	}
	s := *v
	pv.raw = s
	if s == "" || s == "__HIVE_DEFAULT_PARTITION__" {
		pv.null = true
		return pv, nil
	}
	fail := func(err error) (partitionValue, error) {
		return pv, fmt.Errorf("%w: %q as %s: %w", ErrBadPartitionValue, s, t, err)
	}
	switch t := t.(type) {
	case *txlog.DecimalType:
		r, ok := new(big.Rat).SetString(strings.TrimSpace(s))
		if !ok {
			return fail(errors.New("not a number"))
		}
		pv.scalar = r
		u := new(big.Rat).Mul(r, new(big.Rat).SetInt(pow10(t.Scale)))
		pv.dec = new(big.Int).Quo(u.Num(), u.Denom())
		return pv, nil
	case *txlog.PrimitiveType:
		switch t.Name {
		case txlog.TypeString, txlog.TypeBinary:
			pv.scalar = s
		case txlog.TypeBoolean:
			b, err := strconv.ParseBool(strings.TrimSpace(s))
			if err != nil {
				return fail(err)
			}
			pv.scalar = b
		case txlog.TypeByte, txlog.TypeShort, txlog.TypeInteger, txlog.TypeLong:
			n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
			if err != nil {
				// Some writers render integral partition values as "2021.0".
				f, ferr := strconv.ParseFloat(strings.TrimSpace(s), 64)
				if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
					return fail(err)
				}
				n = int64(f)
			}
			pv.scalar = n
		case txlog.TypeFloat, txlog.TypeDouble:
			f, err := parseNumber(t, s)
			if err != nil {
				return fail(err)
			}
			pv.scalar = toFloat(f)
		case txlog.TypeDate:
			d, err := parseDate(s)
			if err != nil {
				return fail(err)
			}
			pv.scalar = d
		case txlog.TypeTimestamp, txlog.TypeTimestampNTZ:
			us, err := parseTimestamp(s)
			if err != nil {
				return fail(err)
			}
			pv.scalar = us
		default:
			return fail(errors.New("unsupported partition column type"))
		}
		return pv, nil
	}
	return fail(errors.New("unsupported partition column type"))
}

func toFloat(x any) float64 {
	switch x := x.(type) {
	case float64:
		return x
	case int64:
		return float64(x)
	}
	return 0
}

// constantVector materialises a partition value for n rows.
func constantVector(pv partitionValue, n int) Vector {
	v := newVector(pv.typ)
	if pv.null {
		for range n {
			v.appendNull()
		}
		return v
	}
	switch v := v.(type) {
	case *Int64Vector:
		x := pv.scalar.(int64)
		v.Values = make([]int64, n)
		for i := range v.Values {
			v.Values[i] = x
		}
		v.n = n
	case *Float64Vector:
		x := pv.scalar.(float64)
		v.Values = make([]float64, n)
		for i := range v.Values {
			v.Values[i] = x
		}
		v.n = n
	case *BytesVector:
		v.Data = bytes.Repeat([]byte(pv.raw), n)
		v.Offsets = make([]int64, n+1)
		for i := range v.Offsets {
			v.Offsets[i] = int64(i * len(pv.raw))
		}
		v.n = n
	case *BoolVector:
		for range n {
			v.append(pv.scalar.(bool))
		}
	case *DateVector:
		for range n {
			v.append(int32(pv.scalar.(int64)))
		}
	case *TimestampVector:
		v.Micros = make([]int64, n)
		for i := range v.Micros {
			v.Micros[i] = pv.scalar.(int64)
		}
		v.n = n
	case *DecimalVector:
		for range n {
			v.appendBig(new(big.Int).Set(pv.dec))
		}
	case *AnyVector:
		for range n {
			v.appendNull()
		}
	}
	return v
}

// statScalar converts a stats JSON value (min or max) of type t to a scalar;
// nil when it cannot be used.
func statScalar(t txlog.DataType, raw json.RawMessage) any {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var s string
	isStr := json.Unmarshal(raw, &s) == nil
	switch t := t.(type) {
	case *txlog.DecimalType:
		txt := string(raw)
		if isStr {
			txt = s
		}
		r, ok := new(big.Rat).SetString(strings.TrimSpace(txt))
		if !ok {
			return nil
		}
		return r
	case *txlog.PrimitiveType:
		switch t.Name {
		case txlog.TypeString:
			if !isStr {
				return nil
			}
			return s
		case txlog.TypeByte, txlog.TypeShort, txlog.TypeInteger, txlog.TypeLong:
			txt := string(raw)
			if isStr {
				txt = s
			}
			v, err := parseNumber(t, txt)
			if err != nil {
				return nil
			}
			return v
		case txlog.TypeFloat, txlog.TypeDouble:
			txt := string(raw)
			if isStr {
				txt = s
			}
			v, err := parseNumber(t, txt)
			if err != nil {
				return nil
			}
			if f := toFloat(v); math.IsNaN(f) {
				return nil
			}
			return toFloat(v)
		case txlog.TypeDate:
			if !isStr {
				return nil
			}
			d, err := parseDate(s)
			if err != nil {
				return nil
			}
			return d
		case txlog.TypeTimestamp, txlog.TypeTimestampNTZ:
			if !isStr {
				return nil
			}
			us, err := parseTimestamp(s)
			if err != nil {
				return nil
			}
			return us
		}
	}
	return nil
}

// widenMax turns a stats max into a safe upper bound: string maxima may be
// truncated prefixes, timestamp maxima are truncated to milliseconds.
func widenMax(t txlog.DataType, v any) any {
	switch x := v.(type) {
	case string:
		return x + "\xff"
	case int64:
		if p, ok := t.(*txlog.PrimitiveType); ok && (p.Name == txlog.TypeTimestamp || p.Name == txlog.TypeTimestampNTZ) {
			return x + 999
		}
	}
	return v
}

// lookupStat walks a nested stats object along a physical path.
func lookupStat(m map[string]json.RawMessage, path []string) json.RawMessage {
	if m == nil {
		return nil
	}
	raw, ok := m[path[0]]
	if !ok {
		return nil
	}
	if len(path) == 1 {
		return raw
	}
	var sub map[string]json.RawMessage
	if json.Unmarshal(raw, &sub) != nil {
		return nil
	}
	return lookupStat(sub, path[1:])
}
