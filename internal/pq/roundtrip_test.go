package pq

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"math/rand/v2"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/kappa-lake/kappa/txlog"
)

// decStr is the canonical form of a decimal: its text with exactly scale
// fractional digits.
type decStr string

type mapSize int

type gen struct{ r *rand.Rand }

var primNames = []string{"string", "long", "integer", "short", "byte", "float", "double", "boolean", "binary", "date", "timestamp", "timestamp_ntz"}

func (g *gen) typ(depth int) txlog.DataType {
	k := g.r.IntN(10)
	if depth >= 3 {
		k = 9
	}
	switch k {
	case 0:
		return g.structType(depth + 1)
	case 1:
		return &txlog.ArrayType{ElementType: g.typ(depth + 1), ContainsNull: g.r.IntN(2) == 0}
	case 2:
		var kt txlog.DataType = &txlog.PrimitiveType{Name: "string"}
		if g.r.IntN(2) == 0 {
			kt = &txlog.PrimitiveType{Name: "long"}
		}
		return &txlog.MapType{KeyType: kt, ValueType: g.typ(depth + 1), ValueContainsNull: g.r.IntN(2) == 0}
	case 3:
		p := []int{1, 5, 9, 10, 18, 19, 38}[g.r.IntN(7)]
		return &txlog.DecimalType{Precision: p, Scale: g.r.IntN(p + 1)}
	}
	return &txlog.PrimitiveType{Name: primNames[g.r.IntN(len(primNames))]}
}

func (g *gen) structType(depth int) *txlog.StructType {
	st := &txlog.StructType{}
	n := 1 + g.r.IntN(4)
	for i := range n {
		st.Fields = append(st.Fields, &txlog.StructField{Name: fmt.Sprintf("f%d_%d", depth, i), Type: g.typ(depth), Nullable: g.r.IntN(3) > 0})
	}
	return st
}

var sampleStrings = []string{"", "a", "héllo wörld", "日本語テキスト", "emoji 😀 x", strings.Repeat("long string ", 6), "\x00nul", "zzz"}

// value returns a row input value for t and its canonical form.
func (g *gen) value(t txlog.DataType, nullable bool) (any, any) {
	if nullable && g.r.IntN(5) == 0 {
		return nil, nil
	}
	switch t := t.(type) {
	case *txlog.StructType:
		in, canon := map[string]any{}, map[string]any{}
		for _, f := range t.Fields {
			v, c := g.value(f.Type, f.Nullable)
			if v != nil || g.r.IntN(2) == 0 {
				in[f.Name] = v
			}
			canon[f.Name] = c
		}
		return in, canon
	case *txlog.ArrayType:
		n := g.r.IntN(4)
		in, canon := make([]any, n), make([]any, n)
		for i := range n {
			in[i], canon[i] = g.value(t.ElementType, t.ContainsNull)
		}
		return in, canon
	case *txlog.MapType:
		n := g.r.IntN(4)
		in, canon := map[string]any{}, map[string]any{}
		for range n {
			var k string
			if t.KeyType.String() == "long" {
				k = strconv.FormatInt(g.r.Int64N(2000)-1000, 10)
			} else {
				k = sampleStrings[g.r.IntN(len(sampleStrings))] + strconv.Itoa(g.r.IntN(9))
			}
			in[k], canon[k] = g.value(t.ValueType, t.ValueContainsNull)
		}
		return in, canon
	case *txlog.DecimalType:
		digits := g.r.IntN(t.Precision) + 1
		var sb strings.Builder
		if g.r.IntN(2) == 0 {
			sb.WriteByte('-')
		}
		for range digits {
			sb.WriteByte(byte('0' + g.r.IntN(10)))
		}
		if g.r.IntN(6) == 0 {
			sb.Reset()
			sb.WriteString(strings.Repeat("9", t.Precision)) // extreme
		}
		u, _ := new(big.Int).SetString(sb.String(), 10)
		text := formatDecimal(u, t.Scale)
		var in any = json.Number(text)
		if g.r.IntN(2) == 0 {
			in = text
		}
		return in, decStr(text)
	}
	switch t.String() {
	case "string":
		s := sampleStrings[g.r.IntN(len(sampleStrings))]
		return s, s
	case "binary":
		b := []byte(sampleStrings[g.r.IntN(len(sampleStrings))])
		return b, string(b)
	case "long":
		v := []int64{0, 1, -1, math.MaxInt64, math.MinInt64, g.r.Int64()}[g.r.IntN(6)]
		return json.Number(strconv.FormatInt(v, 10)), v
	case "integer", "short", "byte":
		lo, hi := intRange(leafType(t))
		v := []int64{0, lo, hi, lo + g.r.Int64N(hi-lo)}[g.r.IntN(4)]
		if g.r.IntN(2) == 0 {
			return int(v), v
		}
		return json.Number(strconv.FormatInt(v, 10)), v
	case "float":
		f := float32([]float64{0, -1.5, math.MaxFloat32, -math.SmallestNonzeroFloat32, g.r.NormFloat64() * 1e6}[g.r.IntN(5)])
		return float64(f), float64(f)
	case "double":
		f := []float64{0, math.MaxFloat64, -math.SmallestNonzeroFloat64, math.NaN(), math.Inf(-1), g.r.NormFloat64()}[g.r.IntN(6)]
		if math.IsNaN(f) {
			return "NaN", f
		}
		return f, f
	case "boolean":
		b := g.r.IntN(2) == 0
		return b, b
	case "date":
		d := g.r.Int64N(200000) - 100000 // ~ years 1696..2243
		day := unixEpochDay.AddDate(0, 0, int(d))
		if g.r.IntN(2) == 0 {
			return day, d
		}
		return day.Format("2006-01-02"), d
	case "timestamp":
		us := g.r.Int64N(4e15) - 2e15 // before and after 1970
		tm := time.UnixMicro(us).UTC()
		switch g.r.IntN(3) {
		case 0:
			return tm, us
		case 1:
			return tm.In(time.FixedZone("x", -7*3600)).Format(time.RFC3339Nano), us
		}
		ms := floorDiv(us, 1000)
		return json.Number(strconv.FormatInt(ms, 10)), ms * 1000
	case "timestamp_ntz":
		us := g.r.Int64N(4e15) - 2e15
		tm := time.UnixMicro(us).UTC()
		if g.r.IntN(2) == 0 {
			return tm, us
		}
		return tm.Format("2006-01-02T15:04:05.999999"), us
	}
	panic("unknown type " + t.String())
}

// normalize maps a value reconstructed by parquet-go to the canonical form
// (decimals are replaced by a marker: compared exactly by the column check).
func normalize(t txlog.DataType, v any) any {
	rv := reflect.ValueOf(v)
	for rv.IsValid() && rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return nil
		}
		rv = rv.Elem()
	}
	if !rv.IsValid() {
		return nil
	}
	v = rv.Interface()
	switch t := t.(type) {
	case *txlog.StructType:
		m := map[string]any{}
		for _, f := range t.Fields {
			var fv any
			switch rv.Kind() {
			case reflect.Map:
				if x := rv.MapIndex(reflect.ValueOf(f.Name)); x.IsValid() {
					fv = x.Interface()
				}
			case reflect.Struct: // a struct built from the node's GoType
				for i := 0; i < rv.NumField(); i++ {
					if rv.Type().Field(i).Tag.Get("parquet") == f.Name {
						fv = rv.Field(i).Interface()
					}
				}
			}
			m[f.Name] = normalize(f.Type, fv)
		}
		return m
	case *txlog.ArrayType:
		out := []any{}
		if rv.Kind() == reflect.Struct { // LIST group as a Go struct
			rv = tagged(rv, "list")
			for i := 0; i < rv.Len(); i++ {
				out = append(out, normalize(t.ElementType, tagged(rv.Index(i), "element").Interface()))
			}
			return out
		}
		for i := 0; i < rv.Len(); i++ {
			out = append(out, normalize(t.ElementType, rv.Index(i).Interface()))
		}
		return out
	case *txlog.MapType:
		if t.KeyType.String() != "string" {
			// parquet-go turns non-string keys into strings when reading
			// into map[string]any: only the size is compared here, the
			// column check compares keys and values exactly
			return mapSize(-1)
		}
		out := map[string]any{}
		if rv.Kind() == reflect.Struct { // MAP group as a Go struct
			kv := tagged(rv, "key_value")
			for i := 0; i < kv.Len(); i++ {
				e := kv.Index(i)
				out[fmt.Sprint(normalize(t.KeyType, tagged(e, "key").Interface()))] = normalize(t.ValueType, tagged(e, "value").Interface())
			}
			return out
		}
		it := rv.MapRange()
		for it.Next() {
			out[fmt.Sprint(normalize(t.KeyType, it.Key().Interface()))] = normalize(t.ValueType, it.Value().Interface())
		}
		return out
	case *txlog.DecimalType:
		return decStr("dec")
	}
	switch x := v.(type) {
	case int32:
		return int64(x)
	case float32:
		return float64(x)
	case []byte:
		return string(x)
	}
	return v
}

func tagged(rv reflect.Value, name string) reflect.Value {
	for i := 0; i < rv.NumField(); i++ {
		if rv.Type().Field(i).Tag.Get("parquet") == name {
			return rv.Field(i)
		}
	}
	panic("no field " + name)
}

func maskDecimals(t txlog.DataType, v any) any {
	if v == nil {
		return nil
	}
	switch t := t.(type) {
	case *txlog.StructType:
		m := map[string]any{}
		for _, f := range t.Fields {
			m[f.Name] = maskDecimals(f.Type, v.(map[string]any)[f.Name])
		}
		return m
	case *txlog.ArrayType:
		out := []any{}
		for _, e := range v.([]any) {
			out = append(out, maskDecimals(t.ElementType, e))
		}
		return out
	case *txlog.MapType:
		if t.KeyType.String() != "string" {
			return mapSize(-1)
		}
		out := map[string]any{}
		for k, e := range v.(map[string]any) {
			out[k] = maskDecimals(t.ValueType, e)
		}
		return out
	case *txlog.DecimalType:
		return decStr("dec")
	}
	return v
}

func equalCanon(a, b any) bool {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		return ok && (x == y || (math.IsNaN(x) && math.IsNaN(y))) && math.Signbit(x) == math.Signbit(y)
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !equalCanon(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalCanon(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

// leafValues collects the non-null leaf values of canonical rows per column,
// in the order the writer shreds them.
func leafValues(p *plan, rows []map[string]any) [][]any {
	out := make([][]any, len(p.leaves))
	var walk func(n *node, v any)
	walk = func(n *node, v any) {
		if v == nil {
			return
		}
		switch n.kind {
		case nLeaf:
			out[n.leaf] = append(out[n.leaf], v)
		case nStruct:
			for _, c := range n.children {
				walk(c, v.(map[string]any)[c.logical])
			}
		case nList:
			for _, e := range v.([]any) {
				walk(n.children[0], e)
			}
		case nMap:
			m := v.(map[string]any)
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				kv := any(k)
				if n.children[0].lt == lLong {
					i, _ := strconv.ParseInt(k, 10, 64)
					kv = i
				}
				walk(n.children[0], kv)
				walk(n.children[1], m[k])
			}
		}
	}
	for _, r := range rows {
		walk(p.root, r)
	}
	return out
}

func rawCanon(n *node, v parquet.Value) any {
	switch n.lt {
	case lString, lBinary:
		return string(v.ByteArray())
	case lLong, lTS, lTSNTZ:
		return v.Int64()
	case lInt, lShort, lByte, lDate:
		return int64(v.Int32())
	case lFloat:
		return float64(v.Float())
	case lDouble:
		return v.Double()
	case lBool:
		return v.Boolean()
	case lDec:
		scale := n.typ.(*txlog.DecimalType).Scale
		switch n.pkind {
		case kInt32:
			return decStr(formatDecimal(big.NewInt(int64(v.Int32())), scale))
		case kInt64:
			return decStr(formatDecimal(big.NewInt(v.Int64()), scale))
		}
		return decStr(formatDecimal(fromFixed(v.ByteArray()), scale))
	}
	return nil
}

// readFileColumns reads every non-null leaf value of a file per column.
func readFileColumns(t *testing.T, p *plan, data []byte) [][]any {
	t.Helper()
	out := make([][]any, len(p.leaves))
	r := parquet.NewReader(bytes.NewReader(data))
	defer r.Close()
	rows := make([]parquet.Row, 64)
	for {
		n, err := r.ReadRows(rows)
		for _, row := range rows[:n] {
			for _, v := range row {
				l := p.leaves[v.Column()]
				if v.DefinitionLevel() == int(l.def) {
					out[l.leaf] = append(out[l.leaf], rawCanon(l, v))
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func readFileMaps(t *testing.T, st *txlog.StructType, data []byte) []map[string]any {
	t.Helper()
	r := parquet.NewReader(bytes.NewReader(data))
	defer r.Close()
	var out []map[string]any
	for {
		m := map[string]any{}
		err := r.Read(&m)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, normalize(st, m).(map[string]any))
	}
}

func TestRoundTripRandomSchemas(t *testing.T) {
	ctx := context.Background()
	for seed := range uint64(40) {
		g := &gen{r: rand.New(rand.NewPCG(seed, 7))}
		st := g.structType(0)
		nrows := 1 + g.r.IntN(300)
		var in []map[string]any
		var canon []map[string]any
		for range nrows {
			i, c := g.value(st, false)
			in = append(in, i.(map[string]any))
			canon = append(canon, c.(map[string]any))
		}
		mp := newMemPut()
		w, err := NewFileWriter(mp, Options{Schema: st, MaxRowsPerRowGroup: 1 + g.r.IntN(100)})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if err := w.Write(ctx, in); err != nil {
			t.Fatalf("seed %d: schema %s: %v", seed, st, err)
		}
		adds, err := w.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(adds) != 1 {
			t.Fatalf("seed %d: %d adds", seed, len(adds))
		}
		data := mp.m[adds[0].Path]
		// column order of the file follows the Delta schema
		f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		for i, fld := range f.Schema().Fields() {
			if fld.Name() != st.Fields[i].Name {
				t.Fatalf("seed %d: field %d is %s, want %s", seed, i, fld.Name(), st.Fields[i].Name)
			}
		}
		if int(f.NumRows()) != nrows {
			t.Fatalf("seed %d: %d rows, want %d", seed, f.NumRows(), nrows)
		}
		// exact leaf values (decimals included)
		p := w.plan
		wantCols := leafValues(p, canon)
		gotCols := readFileColumns(t, p, data)
		for c := range wantCols {
			if !equalCanon(anySlice(wantCols[c]), anySlice(gotCols[c])) {
				t.Fatalf("seed %d column %s:\n got %v\nwant %v", seed, strings.Join(p.leaves[c].path, "."), gotCols[c], wantCols[c])
			}
		}
		// structure and values through parquet-go's own row reconstruction
		got := readFileMaps(t, st, data)
		for i := range canon {
			want := maskDecimals(st, canon[i])
			if !equalCanon(want, got[i]) {
				t.Fatalf("seed %d schema %s row %d:\n got %#v\nwant %#v", seed, st, i, got[i], want)
			}
		}
		checkStats(t, seed, p, w.stats, canon, adds[0].Stats)
	}
}

func anySlice(s []any) []any {
	if s == nil {
		return []any{}
	}
	return s
}
