package reader

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/kappa-lake/kappa/internal/store"
	"github.com/kappa-lake/kappa/internal/testutil"
	"github.com/kappa-lake/kappa/txlog"
)

// orderedRows renders every row of a scan canonically, in scan order.
func orderedRows(t *testing.T, s *Scan) []string {
	t.Helper()
	var out []string
	for r, err := range s.Rows(context.Background()) {
		if err != nil {
			t.Fatalf("scan: %v", err)
		}
		parts := make([]string, len(r.Values))
		for i, v := range r.Values {
			parts[i] = r.Names[i] + "=" + canon(v)
		}
		out = append(out, strings.Join(parts, " | "))
	}
	return out
}

func withGenericPath(t *testing.T, f func()) {
	t.Helper()
	fastPath = false
	defer func() { fastPath = true }()
	f()
}

// TestFastPathMatchesGeneric decodes every positive golden table (data and
// expected files: Spark's INT96, millis/micros timestamps, dates, decimals,
// dictionary and plain pages, nulls) through the typed page decoder and
// through the generic per-value path, and requires identical rows in
// identical order.
func TestFastPathMatchesGeneric(t *testing.T) {
	root := testutil.Testdata(t, "delta-golden")
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	compared := 0
	for _, e := range ents {
		name := e.Name()
		if _, err := os.Stat(filepath.Join(root, name, "expected")); err != nil || goldenNegative[name] {
			continue
		}
		t.Run(name, func(t *testing.T) {
			src := openGoldenSource(t, filepath.Join(root, name, "delta"), -1)
			for _, s := range []source{src, expectedSource(t, filepath.Join(root, name, "expected"), src.schema)} {
				fast := orderedRows(t, newScan(s, []ScanOption{WithWorkers(1)}))
				var generic []string
				withGenericPath(t, func() { generic = orderedRows(t, newScan(s, []ScanOption{WithWorkers(1)})) })
				if !slices.Equal(fast, generic) {
					for i := range min(len(fast), len(generic)) {
						if fast[i] != generic[i] {
							t.Fatalf("row %d differs:\nfast:    %s\ngeneric: %s", i, fast[i], generic[i])
						}
					}
					t.Fatalf("fast path: %d rows, generic: %d", len(fast), len(generic))
				}
				compared++
			}
		})
	}
	if compared == 0 {
		t.Fatal("no golden table compared")
	}
}

type rgRow struct {
	ID    int64    `parquet:"id"`
	Key   *string  `parquet:"key,optional,dict"`
	Name  *string  `parquet:"name,optional"`
	Value *float64 `parquet:"value,optional"`
	Small *int32   `parquet:"small,optional"`
	Day   *int32   `parquet:"day,optional,date"`
}

// writeRowGroupTable writes a one-file table whose file has many small row
// groups and nullable columns (dictionary and plain strings, doubles, ints,
// dates), returning the source and the rows written.
func writeRowGroupTable(t *testing.T, n, perGroup int) (source, []rgRow) {
	t.Helper()
	dir := t.TempDir()
	rows := make([]rgRow, n)
	for i := range rows {
		r := rgRow{ID: int64(i)}
		if i%7 != 0 {
			k := fmt.Sprintf("k%02d", i%13)
			r.Key = &k
		}
		if i%5 != 1 {
			s := strings.Repeat("é", i%4) + fmt.Sprint(i*31%1000)
			r.Name = &s
		}
		if i%3 != 2 {
			v := float64(i) / 4
			r.Value = &v
		}
		if i%11 != 3 {
			x := int32(i%200 - 100)
			r.Small = &x
		}
		if i%6 != 4 {
			d := int32(18000 + i%400)
			r.Day = &d
		}
		rows[i] = r
	}
	out, err := os.Create(filepath.Join(dir, "part-0.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	w := parquet.NewGenericWriter[rgRow](out, parquet.Compression(&zstd.Codec{}), parquet.MaxRowsPerRowGroup(int64(perGroup)), parquet.PageBufferSize(2048))
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
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
		{Name: "name", Type: prim(txlog.TypeString), Nullable: true},
		{Name: "value", Type: prim(txlog.TypeDouble), Nullable: true},
		{Name: "small", Type: prim(txlog.TypeInteger), Nullable: true},
		{Name: "day", Type: prim(txlog.TypeDate), Nullable: true},
	}}
	add := &txlog.Add{Path: "part-0.parquet", PartitionValues: map[string]*string{}, Size: info.Size(), DataChange: true}
	return source{st: st, schema: schema, files: []*txlog.Add{add}, config: map[string]string{}}, rows
}

// TestParallelRowGroups scans a single file of many row groups with spare
// workers (row groups decoded in parallel) and checks the rows, their order
// and their nulls against what was written, with and without a predicate,
// and against the generic decoder.
func TestParallelRowGroups(t *testing.T) {
	src, rows := writeRowGroupTable(t, 20_000, 700)
	want := func(keep func(rgRow) bool) []string {
		var out []string
		for _, r := range rows {
			if !keep(r) {
				continue
			}
			vals := []any{r.ID, nil, nil, nil, nil, nil}
			if r.Key != nil {
				vals[1] = *r.Key
			}
			if r.Name != nil {
				vals[2] = *r.Name
			}
			if r.Value != nil {
				vals[3] = *r.Value
			}
			if r.Small != nil {
				vals[4] = *r.Small
			}
			if r.Day != nil {
				vals[5] = (&DateVector{Days: []int32{*r.Day}}).Value(0)
			}
			parts := make([]string, len(vals))
			for i, v := range vals {
				parts[i] = src.schema.Fields[i].Name + "=" + canon(v)
			}
			out = append(out, strings.Join(parts, " | "))
		}
		return out
	}
	all := want(func(rgRow) bool { return true })
	sel := want(func(r rgRow) bool { return r.ID >= 5000 && r.ID < 9000 && r.Value != nil })
	pred := And(Between(Col("id"), Lit(int64(5000)), Lit(int64(8999))), IsNotNull(Col("value")))
	for _, workers := range []int{1, 2, 4} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			for _, bs := range []int{1000, 65536} {
				s := newScan(src, []ScanOption{WithWorkers(workers), WithBatchSize(bs)})
				if got := orderedRows(t, s); !slices.Equal(got, all) {
					t.Fatalf("batch size %d: full scan differs (%d rows, want %d)", bs, len(got), len(all))
				}
				if st := s.Stats(); st.RowGroups != int64((len(rows)+699)/700) {
					t.Errorf("row groups %d", st.RowGroups)
				}
			}
			s := newScan(src, []ScanOption{WithWorkers(workers), WithPredicate(pred)})
			if got := orderedRows(t, s); !slices.Equal(got, sel) {
				t.Fatalf("selective scan differs (%d rows, want %d)", len(got), len(sel))
			}
			if st := s.Stats(); st.RowGroupsSkipped == 0 {
				t.Errorf("no row group skipped: %+v", st)
			}
		})
	}
	withGenericPath(t, func() {
		if got := orderedRows(t, newScan(src, []ScanOption{WithWorkers(4)})); !slices.Equal(got, all) {
			t.Fatal("generic path differs from what was written")
		}
	})
}

// TestScanCancel stops consuming early and cancels mid-scan: no goroutine
// may block and the error must be the context's.
func TestScanCancel(t *testing.T) {
	src, _ := writeRowGroupTable(t, 20_000, 500)
	s := newScan(src, []ScanOption{WithWorkers(4), WithBatchSize(100)})
	n := 0
	for _, err := range s.Batches(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 3 {
			break
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var last error
	n = 0
	for _, err := range s.Batches(ctx) {
		if err != nil {
			last = err
			break
		}
		if n++; n == 5 {
			cancel()
		}
	}
	cancel()
	if last == nil || !strings.Contains(last.Error(), "context canceled") {
		t.Fatalf("after cancel: %v", last)
	}
}

// TestFastPathGrowth decodes row groups larger than the up-front
// allocation (as for a footer claiming more rows than it holds), so vectors,
// validity bitmaps and string buffers grow page by page.
func TestFastPathGrowth(t *testing.T) {
	src, _ := writeRowGroupTable(t, 5000, 2500)
	var generic []string
	withGenericPath(t, func() { generic = orderedRows(t, newScan(src, []ScanOption{WithWorkers(1)})) })
	old := preallocRows
	preallocRows = 64
	defer func() { preallocRows = old }()
	if got := orderedRows(t, newScan(src, []ScanOption{WithWorkers(1)})); !slices.Equal(got, generic) {
		t.Fatalf("fast path with growth differs from the generic path (%d rows, want %d)", len(got), len(generic))
	}
}
