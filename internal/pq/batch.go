package pq

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"
	"unicode/utf8"
	"unsafe"
)

// Column-wise encoding of flat Go structs.
//
// When every column of an unpartitioned table is a top-level primitive whose
// Go field has a plain type (integers, floats, bool, string, time.Time),
// WriteStructs encodes a batch of rows column by column: one tight typed
// loop per column over the rows of the batch, instead of one encoder call
// per field per row. A value that does not fit (an invalid UTF-8 string, an
// integer out of range) ends the batch at its row: the columns are cut back
// to the rows before it, so the result and the error are those of the
// row-at-a-time path.

// batchFn appends the values of field p, p+stride, ... (n rows) to c (values
// only: the caller adds the levels). It returns how many rows it appended: n,
// or the index of the first row that failed, with the error.
type batchFn func(c *colBuf, p unsafe.Pointer, stride uintptr, n int) (int, error)

type batchCol struct {
	n   *node
	off uintptr
	fn  batchFn // nil: column without a Go field (always null)
}

// batchEncoder writes batches of rows of one flat struct type.
type batchEncoder struct {
	cols []batchCol
}

// newBatchEncoder returns the column-wise encoder of t, or nil when a column
// does not qualify (nested types, pointers, slices, conversions that the
// row-at-a-time encoders handle).
func (w *FileWriter) newBatchEncoder(t reflect.Type) *batchEncoder {
	if len(w.partNames) > 0 {
		return nil
	}
	fields := goFields(t)
	be := &batchEncoder{}
	for _, c := range w.plan.root.children {
		if c.kind != nLeaf {
			return nil
		}
		i := matchField(fields, c.logical)
		if i < 0 {
			if !c.nullable {
				return nil
			}
			be.cols = append(be.cols, batchCol{n: c})
			continue
		}
		fn := leafBatchFn(c, fields[i].sf.Type)
		if fn == nil {
			return nil
		}
		be.cols = append(be.cols, batchCol{n: c, off: fields[i].sf.Offset, fn: fn})
	}
	return be
}

// write encodes n rows at base (stride bytes apart) into cs. It returns the
// number of rows written; with an error, the next row is the one that failed.
func (be *batchEncoder) write(cs *colSet, base unsafe.Pointer, stride uintptr, n int) (int, error) {
	limit := n
	var ferr error
	for j := range be.cols {
		bc := &be.cols[j]
		c := &cs.cols[bc.n.leaf]
		k := limit
		if bc.fn != nil {
			var err error
			k, err = bc.fn(c, unsafe.Add(base, bc.off), stride, limit)
			if err != nil {
				// an earlier row than any failure seen so far (later columns
				// only see the rows before the last failure): cut back the
				// columns done so far
				for _, prev := range be.cols[:j] {
					pc := &cs.cols[prev.n.leaf]
					pc.rollback(pc.markAt(cs.rows + k))
				}
				limit, ferr = k, inField(bc.n.logical, err)
			}
		}
		// levels: top-level leaves have no repetition; a nullable one gets
		// a definition level per row (all defined, or all null without a field)
		switch {
		case c.leaf.def == 0:
			c.n += k
		case bc.fn == nil:
			c.def = appendN(c.def, c.leaf.def-1, k)
		default:
			c.def = appendN(c.def, c.leaf.def, k)
		}
	}
	cs.rows += limit
	return limit, ferr
}

func appendN(s []uint8, v uint8, n int) []uint8 {
	s = slices.Grow(s, n)
	for range n {
		s = append(s, v)
	}
	return s
}

func at[T any](p unsafe.Pointer, i int, stride uintptr) T {
	return *(*T)(unsafe.Add(p, uintptr(i)*stride))
}

// leafBatchFn returns the column-wise encoder of Go type t for leaf n, or
// nil. It mirrors leafEnc for the common plain types.
func leafBatchFn(n *node, t reflect.Type) batchFn {
	lt := n.lt
	if t == timeType {
		switch lt {
		case lTS:
			return func(c *colBuf, p unsafe.Pointer, stride uintptr, k int) (int, error) {
				c.i64 = slices.Grow(c.i64, k)
				for i := range k {
					c.i64 = append(c.i64, microsOf(at[time.Time](p, i, stride)))
				}
				return k, nil
			}
		case lTSNTZ:
			return func(c *colBuf, p unsafe.Pointer, stride uintptr, k int) (int, error) {
				c.i64 = slices.Grow(c.i64, k)
				for i := range k {
					c.i64 = append(c.i64, ntzMicros(at[time.Time](p, i, stride)))
				}
				return k, nil
			}
		case lDate:
			return func(c *colBuf, p unsafe.Pointer, stride uintptr, k int) (int, error) {
				c.i32 = slices.Grow(c.i32, k)
				for i := range k {
					d, err := daysOf(at[time.Time](p, i, stride).Date())
					if err != nil {
						return i, err
					}
					c.i32 = append(c.i32, d)
				}
				return k, nil
			}
		}
		return nil
	}
	if t.PkgPath() != "" && t.Kind() == reflect.String {
		return nil // json.Number and other named strings: row path
	}
	switch t.Kind() {
	case reflect.Int:
		return intBatch[int](n)
	case reflect.Int8:
		return intBatch[int8](n)
	case reflect.Int16:
		return intBatch[int16](n)
	case reflect.Int32:
		return intBatch[int32](n)
	case reflect.Int64:
		return intBatch[int64](n)
	case reflect.Uint8:
		return intBatch[uint8](n)
	case reflect.Uint16:
		return intBatch[uint16](n)
	case reflect.Uint32:
		return intBatch[uint32](n)
	case reflect.Float64:
		if lt == lDouble {
			return func(c *colBuf, p unsafe.Pointer, stride uintptr, k int) (int, error) {
				c.f64 = slices.Grow(c.f64, k)
				for i := range k {
					c.f64 = append(c.f64, at[float64](p, i, stride))
				}
				return k, nil
			}
		}
	case reflect.Float32:
		if lt == lFloat {
			return func(c *colBuf, p unsafe.Pointer, stride uintptr, k int) (int, error) {
				c.f32 = slices.Grow(c.f32, k)
				for i := range k {
					c.f32 = append(c.f32, at[float32](p, i, stride))
				}
				return k, nil
			}
		}
	case reflect.Bool:
		if lt == lBool {
			return func(c *colBuf, p unsafe.Pointer, stride uintptr, k int) (int, error) {
				c.bools = slices.Grow(c.bools, k)
				for i := range k {
					c.bools = append(c.bools, at[bool](p, i, stride))
				}
				return k, nil
			}
		}
	case reflect.String:
		if lt == lString {
			return func(c *colBuf, p unsafe.Pointer, stride uintptr, k int) (int, error) {
				c.offs = slices.Grow(c.offs, k)
				for i := range k {
					s := at[string](p, i, stride)
					if !utf8.ValidString(s) {
						return i, errInvalidUTF8
					}
					c.bytes = append(c.bytes, s...)
					c.offs = append(c.offs, uint32(len(c.bytes)))
				}
				return k, nil
			}
		}
	}
	return nil
}

type batchInt interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 | ~uint8 | ~uint16 | ~uint32
}

// intBatch encodes Go integers of type T into a long, integer, short or
// byte column (range-checked), or returns nil for other column types.
func intBatch[T batchInt](n *node) batchFn {
	switch n.lt {
	case lLong:
		return func(c *colBuf, p unsafe.Pointer, stride uintptr, k int) (int, error) {
			c.i64 = slices.Grow(c.i64, k)
			for i := range k {
				c.i64 = append(c.i64, int64(at[T](p, i, stride)))
			}
			return k, nil
		}
	case lInt, lShort, lByte:
		lo, hi := intRange(n.lt)
		return func(c *colBuf, p unsafe.Pointer, stride uintptr, k int) (int, error) {
			c.i32 = slices.Grow(c.i32, k)
			for i := range k {
				v := int64(at[T](p, i, stride))
				if v < lo || v > hi {
					return i, fmt.Errorf("%d out of range for %s", v, n.typ)
				}
				c.i32 = append(c.i32, int32(v))
			}
			return k, nil
		}
	}
	return nil
}

var errInvalidUTF8 = errors.New("string is not valid UTF-8")

// ntzMicros is the wall clock of t as microseconds since the epoch.
func ntzMicros(t time.Time) int64 {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	return microsOf(time.Date(y, mo, d, h, mi, s, t.Nanosecond(), time.UTC))
}
