package pq

import (
	"github.com/parquet-go/parquet-go"
)

// colBuf buffers one leaf column of a row group: typed values (non-null
// leaf values only) plus definition and repetition levels when the column
// has them.
type colBuf struct {
	leaf *node
	def  []uint8 // len = entries when leaf.def > 0
	rep  []uint8 // len = entries when leaf.rep > 0
	n    int     // entries when the column has no levels

	bools []bool
	i32   []int32
	i64   []int64
	f32   []float32
	f64   []float64
	bytes []byte   // kBytes: concatenated values; kFixed: fixed-size values
	offs  []uint32 // kBytes: end offset of each value
}

// mark is a column's lengths before a row, to roll a failed row back.
type mark struct{ def, rep, n, vals, bytes int }

func (c *colBuf) mark() mark {
	m := mark{def: len(c.def), rep: len(c.rep), n: c.n, bytes: len(c.bytes)}
	m.vals = c.numValues()
	return m
}

func (c *colBuf) numValues() int {
	switch c.leaf.pkind {
	case kBool:
		return len(c.bools)
	case kInt32:
		return len(c.i32)
	case kInt64:
		return len(c.i64)
	case kFloat:
		return len(c.f32)
	case kDouble:
		return len(c.f64)
	case kBytes:
		return len(c.offs)
	default:
		return len(c.bytes) / c.leaf.fixedLen
	}
}

func (c *colBuf) rollback(m mark) {
	c.def, c.rep, c.n = c.def[:m.def], c.rep[:m.rep], m.n
	c.bytes = c.bytes[:m.bytes]
	switch c.leaf.pkind {
	case kBool:
		c.bools = c.bools[:m.vals]
	case kInt32:
		c.i32 = c.i32[:m.vals]
	case kInt64:
		c.i64 = c.i64[:m.vals]
	case kFloat:
		c.f32 = c.f32[:m.vals]
	case kDouble:
		c.f64 = c.f64[:m.vals]
	case kBytes:
		c.offs = c.offs[:m.vals]
	}
}

func (c *colBuf) reset() { c.rollback(mark{}) }

// entries is the number of level entries (values + nulls) buffered.
func (c *colBuf) entries() int {
	if c.leaf.def > 0 {
		return len(c.def)
	}
	return c.n
}

// levels records one entry. def == leaf.def means a value follows.
func (c *colBuf) levels(rep, def uint8) {
	if c.leaf.def > 0 {
		c.def = append(c.def, def)
	} else {
		c.n++
	}
	if c.leaf.rep > 0 {
		c.rep = append(c.rep, rep)
	}
}

func (c *colBuf) null(rep, def uint8) { c.levels(rep, def) }

func (c *colBuf) putBool(rep uint8, v bool) {
	c.levels(rep, c.leaf.def)
	c.bools = append(c.bools, v)
}

func (c *colBuf) putInt32(rep uint8, v int32) {
	c.levels(rep, c.leaf.def)
	c.i32 = append(c.i32, v)
}

func (c *colBuf) putInt64(rep uint8, v int64) {
	c.levels(rep, c.leaf.def)
	c.i64 = append(c.i64, v)
}

func (c *colBuf) putFloat(rep uint8, v float32) {
	c.levels(rep, c.leaf.def)
	c.f32 = append(c.f32, v)
}

func (c *colBuf) putDouble(rep uint8, v float64) {
	c.levels(rep, c.leaf.def)
	c.f64 = append(c.f64, v)
}

func (c *colBuf) putBytes(rep uint8, v []byte) {
	c.levels(rep, c.leaf.def)
	c.bytes = append(c.bytes, v...)
	c.offs = append(c.offs, uint32(len(c.bytes)))
}

func (c *colBuf) putString(rep uint8, v string) {
	c.levels(rep, c.leaf.def)
	c.bytes = append(c.bytes, v...)
	c.offs = append(c.offs, uint32(len(c.bytes)))
}

// putFixed appends a fixed-size value (len must be leaf.fixedLen).
func (c *colBuf) putFixed(rep uint8, v []byte) {
	c.levels(rep, c.leaf.def)
	c.bytes = append(c.bytes, v...)
}

// approxBytes estimates the uncompressed size of the buffered data.
func (c *colBuf) approxBytes() int {
	return len(c.def) + len(c.rep) + len(c.bools) + 4*len(c.i32) + 8*len(c.i64) +
		4*len(c.f32) + 8*len(c.f64) + len(c.bytes) + 4*len(c.offs)
}

// bytesAt returns the i-th byte-array value.
func (c *colBuf) bytesAt(i int) []byte {
	start := uint32(0)
	if i > 0 {
		start = c.offs[i-1]
	}
	return c.bytes[start:c.offs[i]:c.offs[i]]
}

// value returns the i-th non-null value as a parquet.Value.
func (c *colBuf) value(i int) parquet.Value {
	switch c.leaf.pkind {
	case kBool:
		return parquet.BooleanValue(c.bools[i])
	case kInt32:
		return parquet.Int32Value(c.i32[i])
	case kInt64:
		return parquet.Int64Value(c.i64[i])
	case kFloat:
		return parquet.FloatValue(c.f32[i])
	case kDouble:
		return parquet.DoubleValue(c.f64[i])
	case kBytes:
		return parquet.ByteArrayValue(c.bytesAt(i))
	default:
		n := c.leaf.fixedLen
		return parquet.FixedLenByteArrayValue(c.bytes[i*n : (i+1)*n : (i+1)*n])
	}
}

// rowsPerWrite bounds the rows handed to a ColumnWriter at once so that pages
// stay near the writer's page buffer size.
const rowsPerWrite = 1024

// writeTo hands the buffered column to a parquet column writer, in chunks of
// whole rows. vals is a scratch buffer; the grown buffer is returned.
func (c *colBuf) writeTo(cw *parquet.ColumnWriter, vals []parquet.Value) ([]parquet.Value, error) {
	col := c.leaf.leaf
	maxDef := int(c.leaf.def)
	hasDef, hasRep := c.leaf.def > 0, c.leaf.rep > 0
	total := c.entries()
	vi := 0
	rows := 0
	vals = vals[:0]
	for e := 0; e < total; e++ {
		rep := 0
		if hasRep {
			rep = int(c.rep[e])
		}
		if rep == 0 {
			if rows == rowsPerWrite {
				if _, err := cw.WriteRowValues(vals); err != nil {
					return vals, err
				}
				vals, rows = vals[:0], 0
			}
			rows++
		}
		def := maxDef
		if hasDef {
			def = int(c.def[e])
		}
		if def == maxDef {
			vals = append(vals, c.value(vi).Level(rep, def, col))
			vi++
		} else {
			vals = append(vals, parquet.NullValue().Level(rep, def, col))
		}
	}
	if len(vals) > 0 {
		if _, err := cw.WriteRowValues(vals); err != nil {
			return vals, err
		}
	}
	return vals[:0], nil
}
