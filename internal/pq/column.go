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

// markAt is the mark of a column without repetition levels before row
// `rows` of the buffer: such a column holds exactly one entry per row, so a
// failed row is rolled back without marking every column before every row.
func (c *colBuf) markAt(rows int) mark {
	m := mark{}
	if c.leaf.def > 0 {
		m.def = rows
		for _, d := range c.def[:rows] {
			if d == c.leaf.def {
				m.vals++
			}
		}
	} else {
		m.n, m.vals = rows, rows
	}
	switch c.leaf.pkind {
	case kBytes:
		if m.vals > 0 {
			m.bytes = int(c.offs[m.vals-1])
		}
	case kFixed:
		m.bytes = m.vals * c.leaf.fixedLen
	}
	return m
}

// rowsPerWrite bounds the rows handed to a ColumnWriter at once so that pages
// stay near the writer's page buffer size.
const rowsPerWrite = 1024

// writeTo hands the buffered column (whole rows) to a parquet column writer.
// The parquet.Values are built kind by kind in typed loops (no per-value
// type switch); levels are set only on columns that have them. vals is a
// scratch buffer; the grown buffer is returned.
func (c *colBuf) writeTo(cw *parquet.ColumnWriter, vals []parquet.Value) ([]parquet.Value, error) {
	total := c.entries()
	if total == 0 {
		return vals, nil
	}
	if cap(vals) < total {
		vals = make([]parquet.Value, total, total+total/4)
	}
	vals = vals[:total]
	nv := c.numValues()
	c.fillValues(vals[:nv])
	if maxDef := c.leaf.def; maxDef > 0 {
		// spread the non-null values to their entries, back to front (in
		// place: the i-th value never moves left), and set the levels
		col := c.leaf.leaf
		vi := nv
		for e := total - 1; e >= 0; e-- {
			d := c.def[e]
			r := 0
			if c.rep != nil {
				r = int(c.rep[e])
			}
			if d == maxDef {
				vi--
				vals[e] = vals[vi].Level(r, int(d), col)
			} else {
				vals[e] = parquet.Value{}.Level(r, int(d), col)
			}
		}
	}
	// Required columns keep the zero levels the constructors set; the column
	// writer does not look at the column index of the values it is given.
	if c.leaf.rep == 0 {
		for i := 0; i < total; i += rowsPerWrite {
			if _, err := cw.WriteRowValues(vals[i:min(i+rowsPerWrite, total)]); err != nil {
				return vals, err
			}
		}
		return vals, nil
	}
	start, rows := 0, 0
	for e, r := range c.rep {
		if r == 0 {
			if rows == rowsPerWrite {
				if _, err := cw.WriteRowValues(vals[start:e]); err != nil {
					return vals, err
				}
				start, rows = e, 0
			}
			rows++
		}
	}
	_, err := cw.WriteRowValues(vals[start:])
	return vals, err
}

// fillValues sets vals[i] to the i-th non-null value (len(vals) values).
func (c *colBuf) fillValues(vals []parquet.Value) {
	switch c.leaf.pkind {
	case kBool:
		for i, v := range c.bools[:len(vals)] {
			vals[i] = parquet.BooleanValue(v)
		}
	case kInt32:
		for i, v := range c.i32[:len(vals)] {
			vals[i] = parquet.Int32Value(v)
		}
	case kInt64:
		for i, v := range c.i64[:len(vals)] {
			vals[i] = parquet.Int64Value(v)
		}
	case kFloat:
		for i, v := range c.f32[:len(vals)] {
			vals[i] = parquet.FloatValue(v)
		}
	case kDouble:
		for i, v := range c.f64[:len(vals)] {
			vals[i] = parquet.DoubleValue(v)
		}
	case kBytes:
		start := uint32(0)
		for i, end := range c.offs[:len(vals)] {
			vals[i] = parquet.ByteArrayValue(c.bytes[start:end:end])
			start = end
		}
	default:
		n := c.leaf.fixedLen
		for i := range vals {
			vals[i] = parquet.FixedLenByteArrayValue(c.bytes[i*n : (i+1)*n : (i+1)*n])
		}
	}
}
