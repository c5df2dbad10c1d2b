package pq

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/kappa-lake/kappa/txlog"
)

// HiveDefaultPartition is the directory value of a null partition value.
const HiveDefaultPartition = "__HIVE_DEFAULT_PARTITION__"

// PartitionValue coerces v (as in a row) to the partition column type t and
// renders it as a Delta partition value: nil for null (and, like Spark, for
// the empty string).
func PartitionValue(v any, t txlog.DataType, unit TimeUnit) (*string, error) {
	v = deref(v)
	if v == nil {
		return nil, nil
	}
	var s string
	switch t := t.(type) {
	case *txlog.DecimalType:
		u, err := toDecimal(v, t)
		if err != nil {
			return nil, err
		}
		s = formatDecimal(u, t.Scale)
	default:
		switch lt := leafType(t); lt {
		case lString:
			str, err := toStringValue(v)
			if err != nil {
				return nil, err
			}
			s = str
		case lBinary:
			b, err := toBinary(v)
			if err != nil {
				return nil, err
			}
			s = string(b)
		case lLong, lInt, lShort, lByte:
			lo, hi := intRange(lt)
			i, err := toInt64(v, lo, hi, t.String())
			if err != nil {
				return nil, err
			}
			s = strconv.FormatInt(i, 10)
		case lFloat, lDouble:
			f, err := toFloat64(v, t.String())
			if err != nil {
				return nil, err
			}
			bits := 64
			if lt == lFloat {
				bits = 32
			}
			s = javaFloat(f, bits)
		case lBool:
			b, err := toBool(v)
			if err != nil {
				return nil, err
			}
			s = strconv.FormatBool(b)
		case lDate:
			d, err := toDate(v)
			if err != nil {
				return nil, err
			}
			s = unixEpochDay.AddDate(0, 0, int(d)).Format("2006-01-02")
		case lTS, lTSNTZ:
			us, err := toMicros(v, lt == lTSNTZ, unit)
			if err != nil {
				return nil, err
			}
			s = FormatPartitionTimestamp(us)
		}
	}
	if s == "" {
		return nil, nil
	}
	return &s, nil
}

// FormatPartitionTimestamp renders microseconds since the epoch as the Delta
// partition value "yyyy-MM-dd HH:mm:ss.SSSSSS" (UTC for timestamp, the wall
// clock for timestamp_ntz).
func FormatPartitionTimestamp(us int64) string {
	t := time.UnixMicro(us).UTC()
	return t.Format("2006-01-02 15:04:05.000000")
}

// javaFloat renders a float like Java's Float/Double.toString, which is what
// Spark writes for float partition values ("1.0", "1.5E10", "NaN").
func javaFloat(f float64, bits int) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	a := math.Abs(f)
	if a == 0 || (a >= 1e-3 && a < 1e7) {
		s := strconv.FormatFloat(f, 'f', -1, bits)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	s := strconv.FormatFloat(f, 'E', -1, bits) // 1.5E+10
	mant, exp, _ := strings.Cut(s, "E")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	exp = strings.TrimPrefix(exp, "+")
	neg := strings.HasPrefix(exp, "-")
	exp = strings.TrimLeft(strings.TrimPrefix(exp, "-"), "0")
	if exp == "" {
		exp = "0"
	}
	if neg {
		exp = "-" + exp
	}
	return mant + "E" + exp
}

// EscapePartitionName escapes a partition directory component the way Hive
// and Spark do (ExternalCatalogUtils.escapePathName): control characters and
// "#%'*/:=?\\{[]^ and DEL become %XX.
func EscapePartitionName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if needsHiveEscape(c) {
			b.WriteByte('%')
			b.WriteByte(hexUpper[c>>4])
			b.WriteByte(hexUpper[c&15])
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

const hexUpper = "0123456789ABCDEF"

func needsHiveEscape(c byte) bool {
	if c < 0x20 || c == 0x7f {
		return true
	}
	switch c {
	case '"', '#', '%', '\'', '*', '/', ':', '=', '?', '\\', '{', '[', ']', '^':
		return true
	}
	return false
}

// PartitionDir is the Hive-style directory "a=1/b=x/" for the partition
// columns (physical names) and their values, in order.
func PartitionDir(names []string, values []*string) string {
	var b strings.Builder
	for i, n := range names {
		b.WriteString(EscapePartitionName(n))
		b.WriteByte('=')
		if values[i] == nil {
			b.WriteString(HiveDefaultPartition)
		} else {
			b.WriteString(EscapePartitionName(*values[i]))
		}
		b.WriteByte('/')
	}
	return b.String()
}

// EscapePath renders a relative file key as the URI path Delta stores in
// add.path: every byte outside the URI unreserved/sub-delim set (notably
// '%' and ' ') is percent-encoded; '/' is kept.
func EscapePath(key string) string {
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		if uriKeep(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexUpper[c>>4])
		b.WriteByte(hexUpper[c&15])
	}
	return b.String()
}

func uriKeep(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', '~', '/', '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', '@':
		return true
	}
	return false
}
