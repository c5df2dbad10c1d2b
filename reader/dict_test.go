package reader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/kappa-lake/kappa/internal/store"
	"github.com/kappa-lake/kappa/txlog"
)

type dictRow struct {
	ID    int64    `parquet:"id"`
	Key   *string  `parquet:"key,optional,dict"`
	Value *float64 `parquet:"value,optional"`
}

// dictKey is row i's key: nil every 9th row; in each row group the first
// rows cycle through a few values (dictionary pages), the later ones of odd
// row groups are all distinct so the writer's dictionary overflows and it
// falls back to plain pages inside the same column chunk. Row groups use
// different value sets, hence different dictionaries.
func dictKey(i, perGroup int) *string {
	if i%9 == 4 {
		return nil
	}
	rg, j := i/perGroup, i%perGroup
	var s string
	if rg%2 == 1 && j >= perGroup/2 {
		s = fmt.Sprintf("unique-%d-%d", rg, j)
	} else {
		s = fmt.Sprintf("g%d-k%d", rg%3, j%(5+rg))
	}
	return &s
}

// writeDictTable writes a one-file table of n rows in row groups of
// perGroup rows with small pages and a small dictionary limit.
func writeDictTable(t *testing.T, n, perGroup int) (source, []dictRow) {
	t.Helper()
	dir := t.TempDir()
	rows := make([]dictRow, n)
	for i := range rows {
		rows[i] = dictRow{ID: int64(i), Key: dictKey(i, perGroup)}
		if i%5 != 2 {
			v := float64(i%100) / 4
			rows[i].Value = &v
		}
	}
	path := filepath.Join(dir, "part-0.parquet")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := parquet.NewGenericWriter[dictRow](out, parquet.MaxRowsPerRowGroup(int64(perGroup)),
		parquet.PageBufferSize(512), parquet.DictionaryMaxBytes(600))
	for i := 0; i < n; i += 100 { // several writes: the writer checks the dictionary size between them
		if _, err := w.Write(rows[i:min(n, i+100)]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	info, err := out.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := store.NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	prim := func(name string) *txlog.PrimitiveType { return &txlog.PrimitiveType{Name: name} }
	schema := &txlog.StructType{Fields: []*txlog.StructField{
		{Name: "id", Type: prim(txlog.TypeLong)},
		{Name: "key", Type: prim(txlog.TypeString), Nullable: true},
		{Name: "value", Type: prim(txlog.TypeDouble), Nullable: true},
	}}
	add := &txlog.Add{Path: "part-0.parquet", PartitionValues: map[string]*string{}, Size: info.Size(), DataChange: true}
	return source{st: st, schema: schema, files: []*txlog.Add{add}, config: map[string]string{}}, rows
}

// keyPages returns, per row group, how many of the key column chunk's
// data pages are dictionary-encoded and how many are plain.
func keyPages(t *testing.T, path string) (dict, plain []int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(f, info.Size())
	if err != nil {
		t.Fatal(err)
	}
	for _, rg := range pf.RowGroups() {
		pages := rg.ColumnChunks()[1].Pages()
		d, p := 0, 0
		for {
			pg, err := pages.ReadPage()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if pg.Dictionary() != nil {
				d++
			} else {
				p++
			}
			parquet.Release(pg)
		}
		pages.Close()
		dict, plain = append(dict, d), append(plain, p)
	}
	return dict, plain
}

// TestDictionaryVectors checks the dictionary form of string vectors: the
// file really mixes dictionary and plain pages in one column chunk, the
// decoded rows equal what was written and the generic decoder's output,
// dictionary chunks decode to the dictionary form (sharing one Dict per
// chunk across batches), and predicates that drop rows keep it correct.
func TestDictionaryVectors(t *testing.T) {
	const n, per = 6000, 1000
	src, rows := writeDictTable(t, n, per)

	mixed, dictOnly := 0, 0
	dp, pp := keyPages(t, filepath.Join(src.st.(*store.FileStore).Root(), "part-0.parquet"))
	for i := range dp {
		switch {
		case dp[i] > 0 && pp[i] > 0:
			mixed++
		case dp[i] > 0:
			dictOnly++
		}
	}
	if mixed == 0 || dictOnly < 2 {
		t.Fatalf("key chunks: %d mixing dictionary and plain pages, %d dictionary-only; want both shapes (pages %v / %v)", mixed, dictOnly, dp, pp)
	}

	want := func(keep func(dictRow) bool) []string {
		var out []string
		for _, r := range rows {
			if keep != nil && !keep(r) {
				continue
			}
			var k, v any
			if r.Key != nil {
				k = *r.Key
			}
			if r.Value != nil {
				v = *r.Value
			}
			out = append(out, fmt.Sprintf("id=%s | key=%s | value=%s", canon(r.ID), canon(k), canon(v)))
		}
		return out
	}
	for _, tc := range []struct {
		name string
		pred Expr
		keep func(dictRow) bool
	}{
		{"all", nil, nil},
		{"id-filter", Or(Lt(Col("id"), Lit(int64(700))), Gt(Col("id"), Lit(int64(3700)))), func(r dictRow) bool { return r.ID < 700 || r.ID > 3700 }},
		{"key-filter", Gt(Col("key"), Lit("g1")), func(r dictRow) bool { return r.Key != nil && *r.Key > "g1" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, workers := range []int{1, 3} {
				opts := []ScanOption{WithWorkers(workers), WithBatchSize(333)}
				if tc.pred != nil {
					opts = append(opts, WithPredicate(tc.pred))
				}
				got := orderedRows(t, newScan(src, opts))
				if w := want(tc.keep); !slices.Equal(got, w) {
					t.Fatalf("workers %d: %d rows differ from the %d written", workers, len(got), len(w))
				}
				var generic []string
				withGenericPath(t, func() { generic = orderedRows(t, newScan(src, opts)) })
				if !slices.Equal(got, generic) {
					t.Fatalf("workers %d: fast path differs from the generic path", workers)
				}
			}
		})
	}

	// Vector forms: dictionary chunks come out in dictionary form, batches
	// of one chunk share its Dict, plain fallback chunks are plain.
	dicts := map[*BytesVector]bool{}
	dictRows, plainRows := 0, 0
	for b, err := range newScan(src, []ScanOption{WithWorkers(1), WithBatchSize(250), WithColumns("key")}).Batches(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		v := b.Column(0).(*BytesVector)
		if v.IsDict() {
			dicts[v.Dict] = true
			dictRows += v.Len()
			if v.Dict.Validity().HasNulls() {
				t.Fatal("dictionary with nulls")
			}
			for i := range v.Len() {
				if int(v.Codes[i]) >= v.Dict.Len() {
					t.Fatalf("code %d out of dictionary of %d", v.Codes[i], v.Dict.Len())
				}
			}
		} else {
			plainRows += v.Len()
		}
	}
	if dictRows == 0 || len(dicts) < 2 {
		t.Fatalf("dictionary form: %d rows over %d dictionaries, want rows over several", dictRows, len(dicts))
	}
	if plainRows == 0 {
		t.Fatal("chunks mixing dictionary and plain pages did not decode to the plain form")
	}
	t.Logf("key chunks: %d mixed, %d dictionary-only; rows: %d dictionary form, %d plain", mixed, dictOnly, dictRows, plainRows)
}

// TestDictionaryGroupBy runs GROUP BY over dictionary-encoded keys (several
// row groups with different dictionaries, nulls, plain fallback pages,
// WHERE clauses dropping rows, parallel workers) and checks the groups
// against a direct computation.
func TestDictionaryGroupBy(t *testing.T) {
	const n, per = 6000, 1000
	src, rows := writeDictTable(t, n, per)
	root := src.st.(*store.FileStore).Root()
	dir := filepath.Join(t.TempDir(), "t")
	if err := os.MkdirAll(filepath.Join(dir, "_delta_log"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "part-0.parquet"), filepath.Join(dir, "part-0.parquet")); err != nil {
		t.Fatal(err)
	}
	ss, err := txlog.MarshalSchema(src.schema)
	if err != nil {
		t.Fatal(err)
	}
	commit, err := txlog.EncodeCommit([]txlog.Action{
		{Protocol: &txlog.Protocol{MinReaderVersion: 1, MinWriterVersion: 2}},
		{MetaData: &txlog.Metadata{ID: "dict", Format: txlog.Format{Provider: "parquet", Options: map[string]string{}}, SchemaString: ss, PartitionColumns: []string{}, Configuration: map[string]string{}}},
		{Add: src.files[0]},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "_delta_log", "00000000000000000000.json"), commit, 0o644); err != nil {
		t.Fatal(err)
	}

	type acc struct {
		cnt, cntV int64
		sum       float64
		maxID     int64
		minKey    string
	}
	for _, tc := range []struct {
		where string
		keep  func(dictRow) bool
	}{
		{"", func(dictRow) bool { return true }},
		{"WHERE id % 3 = 1", func(r dictRow) bool { return r.ID%3 == 1 }},
		{"WHERE key <> 'g0-k1' AND id < 4500", func(r dictRow) bool { return r.Key != nil && *r.Key != "g0-k1" && r.ID < 4500 }},
		{"WHERE value > 10", func(r dictRow) bool { return r.Value != nil && *r.Value > 10 }},
	} {
		want := map[string]*acc{}
		for _, r := range rows {
			if !tc.keep(r) {
				continue
			}
			k := "<null>"
			if r.Key != nil {
				k = *r.Key
			}
			a := want[k]
			if a == nil {
				a = &acc{maxID: -1, minKey: k}
				want[k] = a
			}
			a.cnt++
			if r.Value != nil {
				a.cntV++
				a.sum += *r.Value
			}
			a.maxID = max(a.maxID, r.ID)
		}
		sql := "SELECT key, count(*) AS n, count(value) AS nv, sum(value) AS s, max(id) AS m, min(key) AS mk FROM t " + tc.where + " GROUP BY key"
		for _, workers := range []int{1, 2} {
			res, err := Query(context.Background(), sql, WithTable("t", dir), WithQueryWorkers(workers))
			if err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
			if len(res.Rows) != len(want) {
				t.Fatalf("%s (workers %d): %d groups, want %d", sql, workers, len(res.Rows), len(want))
			}
			var keys []string
			for _, row := range res.Rows {
				k := "<null>"
				if row[0] != nil {
					k = row[0].(string)
				}
				keys = append(keys, k)
				a := want[k]
				if a == nil {
					t.Fatalf("%s: unexpected group %q", sql, k)
				}
				var s any
				if a.cntV > 0 {
					s = a.sum
				}
				var mk any
				if row[0] != nil {
					mk = a.minKey
				}
				if row[1] != a.cnt || row[2] != a.cntV || !floatEq(row[3], s) || row[4] != a.maxID || row[5] != mk {
					t.Fatalf("%s (workers %d): group %q = %v, want count %d/%d sum %v max %d min %v", sql, workers, k, row, a.cnt, a.cntV, s, a.maxID, mk)
				}
			}
			sort.Strings(keys)
			if len(slices.Compact(keys)) != len(want) {
				t.Fatalf("%s: duplicate groups", sql)
			}
		}
	}
}

func floatEq(got, want any) bool {
	if got == nil || want == nil {
		return got == want
	}
	g, ok1 := got.(float64)
	w, ok2 := want.(float64)
	if !ok1 || !ok2 {
		return false
	}
	d := g - w
	return d < 1e-6*max(1, w) && -d < 1e-6*max(1, w)
}

// TestBytesVectorDictForm exercises the dictionary form's accessors and
// operations directly: Value, String, Bytes, take, slice, conversion to
// the plain form on append, and the query column conversion.
func TestBytesVectorDictForm(t *testing.T) {
	typ := &txlog.PrimitiveType{Name: txlog.TypeString}
	dict, err := newBytesDict(typ, []byte("xxapplebananacherry"), []uint32{2, 7, 13, 19})
	if err != nil {
		t.Fatal(err)
	}
	v := &BytesVector{vecBase: vecBase{typ: typ, n: 6}, Dict: dict, Codes: []int32{2, 0, 0, 1, 0, 2}}
	v.valid.set(0, true)
	v.valid.set(2, false) // row 2 null (code 0)
	for i := 1; i < 6; i++ {
		if i != 2 {
			v.valid.set(i, true)
		}
	}
	want := []any{"cherry", "apple", nil, "banana", "apple", "cherry"}
	check := func(name string, x Vector, want []any) {
		t.Helper()
		if x.Len() != len(want) {
			t.Fatalf("%s: %d rows, want %d", name, x.Len(), len(want))
		}
		for i, w := range want {
			if got := x.Value(i); got != w {
				t.Fatalf("%s: row %d = %v, want %v", name, i, got, w)
			}
		}
	}
	check("dict", v, want)
	if v.String(3) != "banana" || string(v.Bytes(5)) != "cherry" {
		t.Fatal("String/Bytes")
	}
	tk := v.take([]int32{5, 2, 1})
	setType(tk, typ)
	check("take", tk, []any{"cherry", nil, "apple"})
	if !tk.(*BytesVector).IsDict() || tk.(*BytesVector).Dict != dict {
		t.Fatal("take lost the dictionary form")
	}
	check("slice", sliceVector(v, 1, 5), want[1:5])
	c := vectorCol(v)
	lazy := vectorColLazy(v)
	if c.codes == nil || lazy.s != nil || lazy.str(3) != "banana" {
		t.Fatal("query column conversion")
	}
	for i, w := range want {
		if got := c.value(i); got != w {
			t.Fatalf("col row %d = %v, want %v", i, got, w)
		}
	}
	ct := lazy.take([]int32{3, 0})
	if ct.s != nil || ct.str(0) != "banana" || ct.strs().s[1] != "cherry" {
		t.Fatal("lazy take")
	}
	v.append([]byte("date"))
	v.appendNull()
	if v.IsDict() {
		t.Fatal("append kept the dictionary form")
	}
	check("appended", v, append(slices.Clone(want), "date", nil))
	if _, err := newBytesDict(typ, []byte("abc"), []uint32{0, 2, 1}); err == nil {
		t.Fatal("decreasing dictionary offsets accepted")
	}
	if _, err := newBytesDict(typ, []byte("abc"), []uint32{0, 9}); err == nil {
		t.Fatal("dictionary offsets past the data accepted")
	}
}
