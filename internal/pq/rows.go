package pq

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/kappa-lake/kappa/txlog"
)

// writeCfg is how values are coerced.
type writeCfg struct {
	ignoreUnknown bool
	unit          TimeUnit
	// partition holds the top-level names that are partition columns: they are
	// allowed in rows but not stored in data files.
	partition map[string]bool
}

// colSet buffers a chunk of rows of one output file, column by column,
// until they are handed to the file's parquet column writers.
type colSet struct {
	plan    *plan
	cfg     *writeCfg
	cols    []colBuf
	rows    int
	repCols []int  // columns with repetition levels: marked before each row
	marks   []mark // by column; set for repCols only
	scratch []byte
}

func newColSet(p *plan, cfg *writeCfg) *colSet {
	cs := &colSet{plan: p, cfg: cfg, cols: make([]colBuf, len(p.leaves)), marks: make([]mark, len(p.leaves))}
	for i, l := range p.leaves {
		cs.cols[i].leaf = l
		if l.rep > 0 {
			cs.repCols = append(cs.repCols, i)
		}
	}
	return cs
}

// begin marks the start of a row. Only repeated columns need a mark: the
// others hold one entry per row (see markAt).
func (cs *colSet) begin() {
	for _, i := range cs.repCols {
		cs.marks[i] = cs.cols[i].mark()
	}
}

// rollback drops the entries of the row begun last.
func (cs *colSet) rollback() {
	for i := range cs.cols {
		c := &cs.cols[i]
		if c.leaf.rep > 0 {
			c.rollback(cs.marks[i])
		} else {
			c.rollback(c.markAt(cs.rows))
		}
	}
}

func (cs *colSet) reset() {
	for i := range cs.cols {
		cs.cols[i].reset()
	}
	cs.rows = 0
}

func (cs *colSet) approxBytes() int {
	n := 0
	for i := range cs.cols {
		n += cs.cols[i].approxBytes()
	}
	return n
}

// writeMap appends one row given as a map keyed by Delta column names. On
// error the row is rolled back.
func (cs *colSet) writeMap(row map[string]any) error {
	cs.begin()
	if err := cs.writeStruct(cs.plan.root, row, 0, true); err != nil {
		cs.rollback()
		return err
	}
	cs.rows++
	return nil
}

// emitNulls records a null (or empty) at every leaf under n.
func (cs *colSet) emitNulls(n *node, rep, def uint8) {
	for i := n.firstLeaf; i < n.firstLeaf+n.numLeaves; i++ {
		cs.cols[i].null(rep, def)
	}
}

// writeField writes the value v of struct field c (present: the field was
// in the row, so a nil v is an explicit null).
func (cs *colSet) writeField(c *node, v any, present bool, rep uint8) error {
	var err error
	switch {
	case v != nil:
		err = cs.write(c, v, rep)
	case !c.nullable && present:
		err = errNull
	case !c.nullable:
		err = errMissing
	default:
		cs.emitNulls(c, rep, c.def-1)
	}
	if err != nil {
		return inField(c.logical, err)
	}
	return nil
}

var (
	errNull    = errors.New("null value in a non-nullable column")
	errMissing = errors.New("missing value for a non-nullable column")
)

func (cs *colSet) null(n *node, rep uint8) error {
	if !n.nullable {
		return errNull
	}
	cs.emitNulls(n, rep, n.def-1)
	return nil
}

func (cs *colSet) writeStruct(n *node, m map[string]any, rep uint8, top bool) error {
	found := 0
	for _, c := range n.children {
		v, ok := m[c.logical]
		if ok {
			found++
		}
		if err := cs.writeField(c, v, ok, rep); err != nil {
			return err
		}
	}
	if found < len(m) && !cs.cfg.ignoreUnknown {
		keys := make([]string, 0, len(m))
		for k := range m {
			if n.byName[k] == nil && !(top && cs.cfg.partition[k]) {
				keys = append(keys, k)
			}
		}
		if len(keys) > 0 {
			slices.Sort(keys)
			return &colErr{path: keys[0], err: errors.New("unknown column (not in the table schema)")}
		}
	}
	return nil
}

// write appends the non-nil value v at node n.
func (cs *colSet) write(n *node, v any, rep uint8) error {
	switch n.kind {
	case nLeaf:
		return cs.writeLeaf(n, v, rep)
	case nStruct:
		m, ok := v.(map[string]any)
		if !ok {
			var err error
			if m, err = asStringMap(v); err != nil {
				return err
			}
			if m == nil {
				return cs.null(n, rep)
			}
		}
		return cs.writeStruct(n, m, rep, false)
	case nList:
		items, ok := v.([]any)
		if !ok {
			rv := reflect.ValueOf(v)
			for rv.Kind() == reflect.Pointer && !rv.IsNil() {
				rv = rv.Elem()
			}
			switch {
			case (rv.Kind() == reflect.Slice || rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Map) && rv.IsNil():
				return cs.null(n, rep)
			case rv.Kind() == reflect.Slice || rv.Kind() == reflect.Array:
				return cs.writeListReflect(n, rv, rep)
			}
			return typeErr(n.typ.String(), v)
		}
		if items == nil {
			return cs.null(n, rep)
		}
		if len(items) == 0 {
			cs.emitNulls(n, rep, n.def)
			return nil
		}
		e := n.children[0]
		for i, it := range items {
			r := rep
			if i > 0 {
				r = n.rep
			}
			if err := cs.writeElem(e, it, r); err != nil {
				return inField("["+strconv.Itoa(i)+"]", err)
			}
		}
		return nil
	default:
		return cs.writeMapValue(n, v, rep)
	}
}

func (cs *colSet) writeElem(e *node, v any, rep uint8) error {
	if v == nil {
		return cs.null(e, rep)
	}
	return cs.write(e, v, rep)
}

func (cs *colSet) writeListReflect(n *node, rv reflect.Value, rep uint8) error {
	if rv.Len() == 0 {
		cs.emitNulls(n, rep, n.def)
		return nil
	}
	e := n.children[0]
	for i := 0; i < rv.Len(); i++ {
		r := rep
		if i > 0 {
			r = n.rep
		}
		it := rv.Index(i)
		var v any
		if !((it.Kind() == reflect.Pointer || it.Kind() == reflect.Interface || it.Kind() == reflect.Map || it.Kind() == reflect.Slice) && it.IsNil()) {
			v = it.Interface()
		}
		if err := cs.writeElem(e, v, r); err != nil {
			return inField("["+strconv.Itoa(i)+"]", err)
		}
	}
	return nil
}

type mapEntry struct {
	sort string
	key  any
	val  any
}

func (cs *colSet) writeMapValue(n *node, v any, rep uint8) error {
	var entries []mapEntry
	kn, vn := n.children[0], n.children[1]
	if m, ok := v.(map[string]any); ok {
		if m == nil {
			return cs.null(n, rep)
		}
		entries = make([]mapEntry, 0, len(m))
		for k, val := range m {
			entries = append(entries, mapEntry{sort: k, key: mapKey(kn, k), val: val})
		}
	} else {
		rv := reflect.ValueOf(v)
		for rv.Kind() == reflect.Pointer && !rv.IsNil() {
			rv = rv.Elem()
		}
		if rv.Kind() != reflect.Map {
			return typeErr(n.typ.String(), v)
		}
		if rv.IsNil() {
			return cs.null(n, rep)
		}
		it := rv.MapRange()
		for it.Next() {
			k, val := it.Key(), it.Value()
			var kv, vv any
			kv = k.Interface()
			if !((val.Kind() == reflect.Pointer || val.Kind() == reflect.Interface || val.Kind() == reflect.Map || val.Kind() == reflect.Slice) && val.IsNil()) {
				vv = val.Interface()
			}
			if s, ok := kv.(string); ok {
				kv = mapKey(kn, s)
			}
			entries = append(entries, mapEntry{sort: fmt.Sprint(k.Interface()), key: kv, val: vv})
		}
	}
	if len(entries) == 0 {
		cs.emitNulls(n, rep, n.def)
		return nil
	}
	slices.SortFunc(entries, func(a, b mapEntry) int { return strings.Compare(a.sort, b.sort) })
	for i, e := range entries {
		r := rep
		if i > 0 {
			r = n.rep
		}
		if e.key == nil {
			return inField("["+e.sort+"]", errors.New("null map key"))
		}
		if err := cs.write(kn, e.key, r); err != nil {
			return inField("["+e.sort+"]", err)
		}
		if err := cs.writeElem(vn, e.val, r); err != nil {
			return inField("["+e.sort+"]", err)
		}
	}
	return nil
}

// mapKey turns a JSON object key into a value for the key column's type.
func mapKey(kn *node, k string) any {
	switch kn.lt {
	case lLong, lInt, lShort, lByte, lFloat, lDouble, lDec:
		return json.Number(k)
	case lBool:
		if b, err := strconv.ParseBool(k); err == nil {
			return b
		}
	}
	return k
}

// asStringMap converts a map with string keys (any value type) to
// map[string]any; nil for a nil map.
func asStringMap(v any) (map[string]any, error) {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv = rv.Elem()
	}
	if rv.Kind() == reflect.Map && rv.Type().Key().Kind() == reflect.String {
		if rv.IsNil() {
			return nil, nil
		}
		m := make(map[string]any, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			val := it.Value()
			if (val.Kind() == reflect.Pointer || val.Kind() == reflect.Interface || val.Kind() == reflect.Map || val.Kind() == reflect.Slice) && val.IsNil() {
				m[it.Key().String()] = nil
				continue
			}
			m[it.Key().String()] = val.Interface()
		}
		return m, nil
	}
	return nil, typeErr("struct (a JSON object)", v)
}

func (cs *colSet) writeLeaf(n *node, v any, rep uint8) error {
	c := &cs.cols[n.leaf]
	switch n.lt {
	case lString:
		s, err := toStringValue(v)
		if err != nil {
			return err
		}
		c.putString(rep, s)
	case lBinary:
		b, err := toBinary(v)
		if err != nil {
			return err
		}
		c.putBytes(rep, b)
	case lLong:
		i, err := toInt64(v, intRangeLo(lLong), intRangeHi(lLong), "long")
		if err != nil {
			return err
		}
		c.putInt64(rep, i)
	case lInt, lShort, lByte:
		lo, hi := intRange(n.lt)
		i, err := toInt64(v, lo, hi, n.typ.String())
		if err != nil {
			return err
		}
		c.putInt32(rep, int32(i))
	case lFloat:
		f, err := toFloat64(v, "float")
		if err != nil {
			return err
		}
		c.putFloat(rep, float32(f))
	case lDouble:
		f, err := toFloat64(v, "double")
		if err != nil {
			return err
		}
		c.putDouble(rep, f)
	case lBool:
		b, err := toBool(v)
		if err != nil {
			return err
		}
		c.putBool(rep, b)
	case lDate:
		d, err := toDate(v)
		if err != nil {
			return err
		}
		c.putInt32(rep, d)
	case lTS, lTSNTZ:
		us, err := toMicros(v, n.lt == lTSNTZ, cs.cfg.unit)
		if err != nil {
			return err
		}
		c.putInt64(rep, us)
	case lDec:
		u, err := toDecimal(v, n.typ.(*txlog.DecimalType))
		if err != nil {
			return err
		}
		cs.putDecimal(c, rep, u)
	}
	return nil
}

func intRangeLo(lt ltype) int64 { lo, _ := intRange(lt); return lo }
func intRangeHi(lt ltype) int64 { _, hi := intRange(lt); return hi }
