package reader

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/encoding"

	"github.com/kappa-lake/kappa/txlog"
)

// ErrCorruptData reports a data file whose pages contradict its own
// metadata (more values than rows, dictionary indexes out of range, ...).
var ErrCorruptData = errors.New("corrupt data file")

// The fast path decodes a flat (non-repeated) leaf column page by page from
// parquet-go's typed page buffers (Page.Data, Page.DefinitionLevels and the
// dictionary page) straight into a pre-sized typed vector: no per-value
// parquet.Value, no per-row validity bookkeeping. Nested and repeated
// columns, booleans, fixed-length byte arrays and decimals that need
// rescaling or big integers keep the generic path (readFlat / assembler).

// fastPath enables the typed page decoder (tests turn it off to compare
// with the generic path).
var fastPath = true

// fastOK reports whether leaf n with physical type kind can be decoded by
// the fast path.
func fastOK(n *colNode, kind parquet.Kind) bool {
	if n.kind != kindLeaf || n.rep != 0 {
		return false
	}
	switch t := n.typ.(type) {
	case *txlog.DecimalType:
		return t.Precision <= 18 && n.conv.fileScale == t.Scale && (kind == parquet.Int32 || kind == parquet.Int64)
	case *txlog.PrimitiveType:
		switch t.Name {
		case txlog.TypeByte, txlog.TypeShort, txlog.TypeInteger, txlog.TypeLong:
			return kind == parquet.Int32 || kind == parquet.Int64
		case txlog.TypeFloat, txlog.TypeDouble:
			return kind == parquet.Float || kind == parquet.Double || kind == parquet.Int32 || kind == parquet.Int64
		case txlog.TypeString, txlog.TypeBinary:
			return kind == parquet.ByteArray
		case txlog.TypeDate:
			return kind == parquet.Int32
		case txlog.TypeTimestamp, txlog.TypeTimestampNTZ:
			return kind == parquet.Int64 || kind == parquet.Int32 || kind == parquet.Int96
		}
	}
	return false
}

// fastScratch holds per-worker buffers reused across pages, columns and
// row groups (dense values of pages that have nulls).
type fastScratch struct {
	i64 []int64
	f64 []float64
	i32 []int32
}

var scratchPool = sync.Pool{New: func() any { return new(fastScratch) }}

func growScratch[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// number is the set of physical numeric types converted by the fast path.
type number interface {
	~int32 | ~int64 | ~float32 | ~float64
}

// convert writes len(out) dense values: src[k], or src[idx[k]] for
// dictionary-encoded pages (idx non-nil).
func convert[S, D number](out []D, src []S, idx []int32) error {
	if idx == nil {
		if len(src) < len(out) {
			return fmt.Errorf("%w: page has %d values, want %d", ErrCorruptData, len(src), len(out))
		}
		for k := range out {
			out[k] = D(src[k])
		}
		return nil
	}
	if len(idx) < len(out) {
		return fmt.Errorf("%w: page has %d indexes, want %d", ErrCorruptData, len(idx), len(out))
	}
	for k := range out {
		i := idx[k]
		if uint32(i) >= uint32(len(src)) {
			return errDictIndex(i, len(src))
		}
		out[k] = D(src[i])
	}
	return nil
}

func errDictIndex(i int32, n int) error {
	return fmt.Errorf("%w: dictionary index %d out of range [0, %d)", ErrCorruptData, i, n)
}

// pageSource is the dense (non-null) values of one page: the page's own
// values, or a dictionary's values and the page's indexes.
type pageSource struct {
	vals encoding.Values
	idx  []int32 // nil unless dictionary-encoded
}

// flatDecoder decodes the pages of one column chunk into one vector.
type flatDecoder struct {
	n       *colNode
	def     byte
	rows    int
	pos     int
	valid   []uint64 // nil until the first null
	scratch *fastScratch

	dict     parquet.Dictionary
	dictVals encoding.Values

	bytesDict parquet.Dictionary // the dictionary of a dictionary-form BytesVector
}

func (d *flatDecoder) source(p parquet.Page) pageSource {
	data := p.Data()
	dict := p.Dictionary()
	if dict == nil {
		return pageSource{vals: data}
	}
	if dict != d.dict {
		d.dict = dict
		d.dictVals = dict.Page().Data()
	}
	return pageSource{vals: d.dictVals, idx: data.Int32()}
}

// markNulls records the nulls of a page of cnt rows starting at row d.pos
// and returns how many there are.
func (d *flatDecoder) markNulls(defs []byte, cnt int) int {
	if d.valid != nil {
		d.growValid(d.pos + cnt)
	}
	nulls := 0
	for i, l := range defs {
		if l < d.def {
			if d.valid == nil {
				// First null: every row so far is valid.
				d.valid = make([]uint64, 0, (min(d.rows, preallocRows)+63)/64)
				d.growValid(d.pos + cnt)
			}
			j := d.pos + i
			d.valid[j>>6] &^= 1 << (uint(j) & 63)
			nulls++
		}
	}
	return nulls
}

// growValid extends the validity bitmap to cover n rows (new rows valid).
func (d *flatDecoder) growValid(n int) {
	for len(d.valid) < (n+63)/64 {
		d.valid = append(d.valid, ^uint64(0))
	}
}

// preallocRows caps what is allocated up front from the row count a file's
// footer claims; larger row groups grow as their pages actually decode
// (a variable so tests can exercise the growth).
var preallocRows = 1 << 22

// fit returns s resized to n elements, growing it geometrically (up to
// limit elements at a time) when needed.
func fit[T any](s []T, n, limit int) []T {
	if n <= cap(s) {
		return s[:n]
	}
	ns := make([]T, n, min(max(n, 2*cap(s)), max(n, limit)))
	copy(ns, s)
	return ns
}

// scatter spreads dense values over the rows of a page that has nulls.
func scatter[T any](dst []T, dense []T, defs []byte, def byte) {
	k := 0
	for i, l := range defs {
		if l >= def {
			dst[i] = dense[k]
			k++
		}
	}
}

// readFast decodes column chunk cc of a row group with rows rows into a new
// vector of n's type.
func readFast(cc parquet.ColumnChunk, n *colNode, rows int) (Vector, error) {
	sc := scratchPool.Get().(*fastScratch)
	defer scratchPool.Put(sc)
	d := &flatDecoder{n: n, def: byte(n.def), rows: rows, scratch: sc}
	vec := newVector(n.typ)
	pre := min(rows, preallocRows)
	var page func(parquet.Page, []byte, int) error
	switch v := vec.(type) {
	case *Int64Vector:
		v.Values = make([]int64, 0, pre)
		page = func(p parquet.Page, defs []byte, cnt int) error {
			v.Values = fit(v.Values, d.pos+cnt, rows)
			return d.int64Page(p, defs, cnt, v.Values)
		}
	case *TimestampVector:
		v.Micros = make([]int64, 0, pre)
		page = func(p parquet.Page, defs []byte, cnt int) error {
			v.Micros = fit(v.Micros, d.pos+cnt, rows)
			return d.int64Page(p, defs, cnt, v.Micros)
		}
	case *DecimalVector:
		v.Small = make([]int64, 0, pre)
		page = func(p parquet.Page, defs []byte, cnt int) error {
			v.Small = fit(v.Small, d.pos+cnt, rows)
			return d.int64Page(p, defs, cnt, v.Small)
		}
	case *Float64Vector:
		v.Values = make([]float64, 0, pre)
		page = func(p parquet.Page, defs []byte, cnt int) error {
			v.Values = fit(v.Values, d.pos+cnt, rows)
			return d.float64Page(p, defs, cnt, v.Values)
		}
	case *DateVector:
		v.Days = make([]int32, 0, pre)
		page = func(p parquet.Page, defs []byte, cnt int) error {
			v.Days = fit(v.Days, d.pos+cnt, rows)
			return d.int32Page(p, defs, cnt, v.Days)
		}
	case *BytesVector:
		v.Offsets = nil // plain or dictionary form: decided by the first page
		page = func(p parquet.Page, defs []byte, cnt int) error {
			return d.bytesPage(p, defs, cnt, v)
		}
	default:
		return nil, fmt.Errorf("fast path: unsupported vector %T", vec)
	}
	pages := cc.Pages()
	defer pages.Close()
	for {
		p, err := pages.ReadPage()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, err
		}
		defs := p.DefinitionLevels()
		cnt := int(p.NumValues())
		if len(defs) > 0 {
			cnt = len(defs)
		}
		if d.pos+cnt > rows {
			parquet.Release(p)
			return nil, fmt.Errorf("%w: column has more than %d values", ErrCorruptData, rows)
		}
		err = page(p, defs, cnt)
		parquet.Release(p)
		if err != nil {
			return nil, err
		}
		d.pos += cnt
	}
	if d.pos != rows {
		return nil, fmt.Errorf("%w: column has %d values for %d rows", ErrCorruptData, d.pos, rows)
	}
	if d.valid != nil {
		d.growValid(rows)
		if r := rows & 63; r != 0 {
			d.valid[len(d.valid)-1] &= 1<<uint(r) - 1
		}
	}
	if v, ok := vec.(*BytesVector); ok && v.Codes == nil && v.Offsets == nil {
		v.Offsets = make([]int64, rows+1) // no pages: rows == 0
	}
	base := vecBase{typ: n.typ, n: rows}
	base.valid.bits = d.valid
	switch v := vec.(type) {
	case *Int64Vector:
		v.vecBase = base
	case *TimestampVector:
		v.vecBase = base
	case *DecimalVector:
		v.vecBase = base
	case *Float64Vector:
		v.vecBase = base
	case *DateVector:
		v.vecBase = base
	case *BytesVector:
		v.vecBase = base
	}
	return vec, nil
}

// int64Dense converts the dense values of a page to int64 (longs,
// timestamps in micros, small decimals).
func (d *flatDecoder) int64Dense(out []int64, src pageSource) error {
	c := &d.n.conv
	var err error
	switch src.vals.Kind() {
	case encoding.Int64:
		vals := src.vals.Int64()
		if src.idx == nil && len(vals) >= len(out) {
			copy(out, vals)
		} else {
			err = convert(out, vals, src.idx)
		}
	case encoding.Int32:
		err = convert(out, src.vals.Int32(), src.idx)
		if err == nil && c.dateToTS {
			for k := range out {
				out[k] *= 86400_000_000
			}
		}
		return err
	case encoding.Int96:
		return int96Dense(out, src.vals.Int96(), src.idx)
	default:
		return fmt.Errorf("%w: unexpected %s page", ErrCorruptData, src.vals.Kind())
	}
	if err != nil {
		return err
	}
	if c.tsFactor > 1 {
		for k := range out {
			out[k] *= c.tsFactor
		}
	} else if c.tsFactor < 0 {
		for k := range out {
			out[k] = floorDiv(out[k], -c.tsFactor)
		}
	}
	return nil
}

func int96Dense(out []int64, src []deprecated.Int96, idx []int32) error {
	if idx == nil && len(src) < len(out) {
		return fmt.Errorf("%w: page has %d values, want %d", ErrCorruptData, len(src), len(out))
	}
	if idx != nil && len(idx) < len(out) {
		return fmt.Errorf("%w: page has %d indexes, want %d", ErrCorruptData, len(idx), len(out))
	}
	for k := range out {
		j := int32(k)
		if idx != nil {
			j = idx[k]
			if uint32(j) >= uint32(len(src)) {
				return errDictIndex(j, len(src))
			}
		}
		out[k] = int96ToMicros(src[j])
	}
	return nil
}

func int96ToMicros(i deprecated.Int96) int64 {
	nanos := int64(uint64(i[1])<<32 | uint64(i[0]))
	return (int64(i[2])-2440588)*86400_000_000 + nanos/1000
}

func (d *flatDecoder) int64Page(p parquet.Page, defs []byte, cnt int, dst []int64) error {
	dst = dst[d.pos : d.pos+cnt]
	src := d.source(p)
	nulls := d.markNulls(defs, cnt)
	if nulls == 0 {
		return d.int64Dense(dst, src)
	}
	dense := growScratch(d.scratch.i64, cnt-nulls)
	d.scratch.i64 = dense
	if err := d.int64Dense(dense, src); err != nil {
		return err
	}
	scatter(dst, dense, defs, d.def)
	return nil
}

func (d *flatDecoder) float64Dense(out []float64, src pageSource) error {
	switch src.vals.Kind() {
	case encoding.Double:
		vals := src.vals.Double()
		if src.idx == nil && len(vals) >= len(out) {
			copy(out, vals)
			return nil
		}
		return convert(out, vals, src.idx)
	case encoding.Float:
		return convert(out, src.vals.Float(), src.idx)
	case encoding.Int32:
		return convert(out, src.vals.Int32(), src.idx)
	case encoding.Int64:
		return convert(out, src.vals.Int64(), src.idx)
	}
	return fmt.Errorf("%w: unexpected %s page", ErrCorruptData, src.vals.Kind())
}

func (d *flatDecoder) float64Page(p parquet.Page, defs []byte, cnt int, dst []float64) error {
	dst = dst[d.pos : d.pos+cnt]
	src := d.source(p)
	nulls := d.markNulls(defs, cnt)
	if nulls == 0 {
		return d.float64Dense(dst, src)
	}
	dense := growScratch(d.scratch.f64, cnt-nulls)
	d.scratch.f64 = dense
	if err := d.float64Dense(dense, src); err != nil {
		return err
	}
	scatter(dst, dense, defs, d.def)
	return nil
}

func (d *flatDecoder) int32Page(p parquet.Page, defs []byte, cnt int, dst []int32) error {
	dst = dst[d.pos : d.pos+cnt]
	src := d.source(p)
	if src.vals.Kind() != encoding.Int32 {
		return fmt.Errorf("%w: unexpected %s page", ErrCorruptData, src.vals.Kind())
	}
	nulls := d.markNulls(defs, cnt)
	if nulls == 0 {
		return convert(dst, src.vals.Int32(), src.idx)
	}
	dense := growScratch(d.scratch.i32, cnt-nulls)
	d.scratch.i32 = dense
	if err := convert(dense, src.vals.Int32(), src.idx); err != nil {
		return err
	}
	scatter(dst, dense, defs, d.def)
	return nil
}

// bytesPage decodes the strings of a page into v. A column chunk whose
// pages are all dictionary-encoded (one dictionary) stays in dictionary
// form: per-row codes, no string copies. A plain page (a writer's
// dictionary fallback) converts what was decoded so far to the plain form.
func (d *flatDecoder) bytesPage(p parquet.Page, defs []byte, cnt int, v *BytesVector) error {
	src := d.source(p)
	if src.vals.Kind() != encoding.ByteArray {
		return fmt.Errorf("%w: unexpected %s page", ErrCorruptData, src.vals.Kind())
	}
	if src.idx != nil && d.pos == 0 && v.Codes == nil {
		data, offs := src.vals.ByteArray()
		dict, err := newBytesDict(d.n.typ, data, offs)
		if err != nil {
			return err
		}
		v.Dict, d.bytesDict = dict, d.dict
		v.Codes = make([]int32, 0, min(d.rows, preallocRows))
		v.Offsets = nil
	}
	if v.Codes != nil {
		if src.idx != nil && d.dict == d.bytesDict {
			return d.codesPage(src, defs, cnt, v)
		}
		v.valid.bits = d.valid
		v.materialize(d.pos)
		v.valid.bits = nil
	}
	if v.Offsets == nil {
		v.Offsets = make([]int64, 1, min(d.rows, preallocRows)+1)
	}
	v.Offsets = fit(v.Offsets, d.pos+cnt+1, d.rows+1)
	return d.plainBytesPage(src, defs, cnt, v)
}

// codesPage appends the dictionary codes of a page (nulls get code 0).
func (d *flatDecoder) codesPage(src pageSource, defs []byte, cnt int, v *BytesVector) error {
	v.Codes = fit(v.Codes, d.pos+cnt, d.rows)
	out := v.Codes[d.pos : d.pos+cnt]
	nd := uint32(v.Dict.n)
	if dense := cnt - d.markNulls(defs, cnt); len(src.idx) < dense {
		return fmt.Errorf("%w: page has %d indexes, want %d", ErrCorruptData, len(src.idx), dense)
	}
	if len(defs) == 0 {
		idx := src.idx[:cnt]
		for k, c := range idx {
			if uint32(c) >= nd {
				return errDictIndex(c, int(nd))
			}
			out[k] = c
		}
		return nil
	}
	k := 0
	for i, l := range defs {
		if l >= d.def {
			c := src.idx[k]
			if uint32(c) >= nd {
				return errDictIndex(c, int(nd))
			}
			out[i] = c
			k++
		} else {
			out[i] = 0
		}
	}
	return nil
}

// plainBytesPage appends the strings of a page to a plain-form v (nulls
// are empty).
func (d *flatDecoder) plainBytesPage(src pageSource, defs []byte, cnt int, v *BytesVector) error {
	data, offs := src.vals.ByteArray()
	nvals := max(len(offs)-1, 0)
	dense := cnt - d.markNulls(defs, cnt)
	// Bytes this page adds: exact for plain pages, the dictionary's mean
	// entry length for indexed ones.
	var need int
	if src.idx == nil {
		if nvals < dense {
			return fmt.Errorf("%w: page has %d values, want %d", ErrCorruptData, nvals, dense)
		}
		if dense > 0 {
			need = int(offs[dense]) - int(offs[0])
		}
	} else {
		if len(src.idx) < dense {
			return fmt.Errorf("%w: page has %d indexes, want %d", ErrCorruptData, len(src.idx), dense)
		}
		if nvals > 0 {
			need = dense * len(data) / nvals
		}
	}
	if len(v.Data)+need > cap(v.Data) {
		// Room for this page and the rest of the column, extrapolated
		// from what was read so far.
		done := d.pos + cnt
		target := min(d.rows, 2*done+preallocRows) // footers may lie: cap the guess
		est := int(float64(len(v.Data)+need) / float64(max(done, 1)) * float64(target))
		nd := make([]byte, len(v.Data), max(est+est/8, len(v.Data)+need))
		copy(nd, v.Data)
		v.Data = nd
	}
	buf := v.Data
	o := v.Offsets[d.pos+1 : d.pos+cnt+1]
	k := 0
	for i := range cnt {
		if len(defs) == 0 || defs[i] >= d.def {
			j := k
			if src.idx != nil {
				j = int(src.idx[k])
				if uint(j) >= uint(nvals) {
					return errDictIndex(int32(j), nvals)
				}
			}
			a, b := offs[j], offs[j+1]
			if a > b || int(b) > len(data) {
				return fmt.Errorf("%w: bad byte array offsets", ErrCorruptData)
			}
			buf = append(buf, data[a:b]...)
			k++
		}
		o[i] = int64(len(buf))
	}
	v.Data = buf
	return nil
}
