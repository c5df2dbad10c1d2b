package reader

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/kappa-lake/kappa/internal/store"
	"github.com/kappa-lake/kappa/internal/testutil"
	"github.com/kappa-lake/kappa/txlog"
)

func scanRows(t *testing.T, s *Scan) []Row {
	t.Helper()
	var out []Row
	for r, err := range s.Rows(context.Background()) {
		if err != nil {
			t.Fatalf("scan: %v", err)
		}
		out = append(out, r)
	}
	return out
}

func TestPartitionValuesDeltaRS(t *testing.T) {
	cases := []struct {
		table string
		cols  []string
		want  []string // distinct canonical tuples
	}{
		{"delta-0.8.0-null-partition", []string{"k"}, []string{`"A"`, `null`}},
		{"delta-0.8.0-special-partition", []string{"x"}, []string{`"A/A"`, `"B B"`}},
		{"delta-0.8.0-numeric-partition", []string{"x", "y"}, []string{`10,f10`, `9,f9.9`}},
		{"delta-0.8.0-partitioned", []string{"year", "month", "day"}, []string{
			`"2020","1","1"`, `"2020","2","3"`, `"2020","2","5"`, `"2021","12","20"`, `"2021","12","4"`, `"2021","4","5"`,
		}},
		{"delta-2.2.0-partitioned-types", []string{"c1", "c2"}, []string{`4,"c"`, `5,"b"`, `6,"a"`}},
		{"partition-type-primitives", []string{"year", "is_active", "event_date", "category"}, nil},
	}
	for _, c := range cases {
		t.Run(c.table, func(t *testing.T) {
			src := openGoldenSource(t, testutil.Testdata(t, "delta-rs", c.table), -1)
			rows := scanRows(t, newScan(src, []ScanOption{WithColumns(c.cols...)}))
			if len(rows) == 0 {
				t.Fatal("no rows")
			}
			seen := map[string]bool{}
			for _, r := range rows {
				s := ""
				for i, v := range r.Values {
					if i > 0 {
						s += ","
					}
					s += canon(v)
				}
				seen[s] = true
			}
			var got []string
			for k := range seen {
				got = append(got, k)
			}
			sort.Strings(got)
			if c.want != nil && !slices.Equal(got, c.want) {
				t.Errorf("partition tuples = %v, want %v", got, c.want)
			}
			t.Logf("%d rows, tuples %v", len(rows), got)
		})
	}
}

func TestPartitionTypedValues(t *testing.T) {
	// Integer partition values are typed, not strings.
	src := openGoldenSource(t, testutil.Testdata(t, "delta-rs", "delta-0.8.0-numeric-partition"), -1)
	b := firstBatch(t, newScan(src, []ScanOption{WithColumns("x", "y")}))
	if _, ok := b.Column(0).(*Int64Vector); !ok {
		t.Errorf("x is %T, want *Int64Vector", b.Column(0))
	}
	if _, ok := b.Column(1).(*Float64Vector); !ok {
		t.Errorf("y is %T, want *Float64Vector", b.Column(1))
	}
}

func firstBatch(t *testing.T, s *Scan) *Batch {
	t.Helper()
	for b, err := range s.Batches(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		if b.NumRows() > 0 {
			return b
		}
	}
	t.Fatal("no batch")
	return nil
}

// TestPredicateMatchesFilter checks that pruning never drops a matching
// row: a scan with a predicate equals the full scan filtered row by row, and
// selective predicates do prune.
func TestPredicateMatchesFilter(t *testing.T) {
	cases := []struct {
		dir       []string
		pred      Expr
		wantRows  int
		minPruned int64
	}{
		{[]string{"delta-rs", "delta-0.8.0-partitioned"}, Eq(Col("year"), Lit("2021")), -1, 1},
		{[]string{"delta-rs", "delta-0.8.0-partitioned"}, And(Eq(Col("year"), Lit("2020")), In(Col("day"), Lit("1"), Lit("5"))), -1, 2},
		{[]string{"delta-rs", "delta-0.8.0-null-partition"}, IsNull(Col("k")), -1, 1},
		{[]string{"delta-rs", "delta-0.8.0-null-partition"}, Not(IsNull(Col("k"))), -1, 1},
		{[]string{"delta-rs", "delta-0.8.0-numeric-partition"}, Gt(Col("y"), Lit(9.95)), -1, 1},
		{[]string{"delta-golden", "data-skipping-partition-and-data-column", "delta"}, Eq(Col("part"), Lit(0)), -1, 0},
		{[]string{"delta-golden", "data-skipping-partition-and-data-column", "delta"}, Gt(Col("id"), Lit(int64(1_000_000))), 0, 1},
		{[]string{"delta-golden", "data-skipping-basic-stats-all-types", "delta"}, Lt(Col("as_date"), Lit("1900-01-01")), 0, 1},
		{[]string{"delta-golden", "data-skipping-basic-stats-all-types", "delta"}, Between(Col("as_int"), Lit(0), Lit(100)), -1, 0},
		{[]string{"delta-golden", "data-skipping-basic-stats-all-types", "delta"}, Eq(Col("as_string"), Lit("zzz")), 0, 1},
		{[]string{"delta-golden", "data-skipping-basic-stats-all-types", "delta"}, Or(IsNull(Col("as_long")), Ne(Col("as_long"), Lit(0))), -1, 0},
	}
	for i, c := range cases {
		t.Run(fmt.Sprintf("%d_%s", i, c.pred), func(t *testing.T) {
			src := openGoldenSource(t, testutil.Testdata(t, c.dir...), -1)
			full := newScan(src, nil)
			p, err := full.plan()
			if err != nil {
				t.Fatal(err)
			}
			b := &binder{schema: src.schema, partCols: p.partCols, mode: p.mode, cols: map[string]*bcol{}}
			be, err := b.bind(c.pred)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for batch, err := range full.Batches(context.Background()) {
				if err != nil {
					t.Fatal(err)
				}
				res := evalRows(be, batch, p.colIdx)
				for i := range batch.NumRows() {
					if res[i] == triTrue {
						want = append(want, canon(batch.Row(i).Map()))
					}
				}
			}
			ps := newScan(src, []ScanOption{WithPredicate(c.pred)})
			var got []string
			for _, r := range scanRows(t, ps) {
				got = append(got, canon(r.Map()))
			}
			sort.Strings(got)
			sort.Strings(want)
			if !slices.Equal(got, want) {
				t.Errorf("predicate scan: %d rows %v, filtered full scan: %d rows %v", len(got), got, len(want), want)
			}
			if c.wantRows >= 0 && len(got) != c.wantRows {
				t.Errorf("rows = %d, want %d", len(got), c.wantRows)
			}
			st := ps.Stats()
			if st.FilesPruned < c.minPruned {
				t.Errorf("files pruned = %d, want >= %d (stats %+v)", st.FilesPruned, c.minPruned, st)
			}
			t.Logf("%d rows; %+v", len(got), st)
		})
	}
}

func TestBadPredicate(t *testing.T) {
	src := openGoldenSource(t, testutil.Testdata(t, "delta-rs", "delta-0.8.0-partitioned"), -1)
	for _, e := range []Expr{Eq(Col("nope"), Lit(1)), Eq(Col("year"), Lit(true))} {
		for _, err := range newScan(src, []ScanOption{WithPredicate(e)}).Batches(context.Background()) {
			if !errors.Is(err, ErrInvalidPredicate) {
				t.Errorf("%s: err = %v, want ErrInvalidPredicate", e, err)
			}
			break
		}
	}
	for _, err := range newScan(src, []ScanOption{WithColumns("nope")}).Batches(context.Background()) {
		if !errors.Is(err, ErrUnknownColumn) {
			t.Errorf("err = %v, want ErrUnknownColumn", err)
		}
		break
	}
}

func TestZ85(t *testing.T) {
	got, err := decodeZ85("HelloWorld")
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B}
	if !slices.Equal(got, want) {
		t.Errorf("z85 = %x, want %x", got, want)
	}
	if _, err := decodeZ85("Hell"); !errors.Is(err, ErrBadDeletionVector) {
		t.Errorf("short input: %v", err)
	}
}

// buildBitmapArray encodes rows the way Delta writers do (array and bitmap
// containers, no-run cookie), independently of the decoder.
func buildBitmapArray(rows []uint64) []byte {
	byHigh := map[uint32][]uint32{}
	var highs []uint32
	for _, r := range rows {
		h := uint32(r >> 32)
		if _, ok := byHigh[h]; !ok {
			highs = append(highs, h)
		}
		byHigh[h] = append(byHigh[h], uint32(r))
	}
	out := binary.LittleEndian.AppendUint32(nil, dvMagic)
	out = binary.LittleEndian.AppendUint64(out, uint64(len(highs)))
	for _, h := range highs {
		out = binary.LittleEndian.AppendUint32(out, h)
		conts := map[uint16][]uint16{}
		var keys []uint16
		for _, v := range byHigh[h] {
			k := uint16(v >> 16)
			if _, ok := conts[k]; !ok {
				keys = append(keys, k)
			}
			conts[k] = append(conts[k], uint16(v))
		}
		out = binary.LittleEndian.AppendUint32(out, roaringCookieNoRun)
		out = binary.LittleEndian.AppendUint32(out, uint32(len(keys)))
		for _, k := range keys {
			out = binary.LittleEndian.AppendUint16(out, k)
			out = binary.LittleEndian.AppendUint16(out, uint16(len(conts[k])-1))
		}
		off := 8 + 8*len(keys)
		var body []byte
		for _, k := range keys {
			out = binary.LittleEndian.AppendUint32(out, uint32(off+len(body)))
			if len(conts[k]) > 4096 {
				words := make([]uint64, 1024)
				for _, v := range conts[k] {
					words[v/64] |= 1 << (v % 64)
				}
				for _, w := range words {
					body = binary.LittleEndian.AppendUint64(body, w)
				}
			} else {
				for _, v := range conts[k] {
					body = binary.LittleEndian.AppendUint16(body, v)
				}
			}
		}
		out = append(out, body...)
	}
	return out
}

func TestRoaringBitmapArray(t *testing.T) {
	var rows []uint64
	rows = append(rows, 0, 3, 65535, 65536, 70000)
	for i := uint64(0); i < 5000; i++ {
		rows = append(rows, 1<<17+2*i) // a bitmap container
	}
	rows = append(rows, 1<<32+7, 5<<32+1)
	rs, err := decodeBitmapArray(buildBitmapArray(rows))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rs.rows, rows) {
		t.Errorf("decoded %d rows, want %d", len(rs.rows), len(rows))
	}
	// Run container: cookie 12347 with one container holding [10, 14].
	run := binary.LittleEndian.AppendUint32(nil, dvMagic)
	run = binary.LittleEndian.AppendUint64(run, 1)
	run = binary.LittleEndian.AppendUint32(run, 0)
	run = binary.LittleEndian.AppendUint32(run, roaringCookie) // 1 container
	run = append(run, 1)                                       // run flags
	run = binary.LittleEndian.AppendUint16(run, 0)
	run = binary.LittleEndian.AppendUint16(run, 4)
	run = binary.LittleEndian.AppendUint16(run, 1)  // one run
	run = binary.LittleEndian.AppendUint16(run, 10) // start
	run = binary.LittleEndian.AppendUint16(run, 4)  // length-1
	rs, err = decodeBitmapArray(run)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rs.rows, []uint64{10, 11, 12, 13, 14}) {
		t.Errorf("run container decoded %v", rs.rows)
	}
	if _, err := decodeBitmapArray([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}); !errors.Is(err, ErrBadDeletionVector) {
		t.Errorf("bad magic: %v", err)
	}
	if _, err := decodeBitmapArray(buildBitmapArray(rows)[:40]); !errors.Is(err, ErrBadDeletionVector) {
		t.Errorf("truncated: %v", err)
	}
}

func TestResolvePath(t *testing.T) {
	dir := t.TempDir()
	st, err := store.NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(dir)
	cases := []struct {
		in, want string
		bad      bool
	}{
		{in: "a=1/part-0.parquet", want: "a=1/part-0.parquet"},
		{in: "a=x%20y/b%3Dc.parquet", want: "a=x y/b=c.parquet"},
		{in: "bar%2Dbar.snappy.parquet", want: "bar-bar.snappy.parquet"},
		{in: "file://" + abs + "/x/y.parquet", want: "x/y.parquet"},
		{in: "file:" + abs + "/x/y.parquet", want: "x/y.parquet"},
		{in: abs + "/z.parquet", want: "z.parquet"},
		{in: "../escape.parquet", bad: true},
		{in: "a/../../escape.parquet", bad: true},
		{in: "..//Users/x/foo.snappy.parquet", bad: true},
		{in: "file:///elsewhere/foo.parquet", bad: true},
		{in: "s3://bucket/foo.parquet", bad: true},
		{in: "bad%zzescape", bad: true},
	}
	for _, c := range cases {
		got, err := resolvePath(st, c.in)
		if c.bad {
			if !errors.Is(err, ErrBadPath) {
				t.Errorf("resolvePath(%q) = %q, %v; want ErrBadPath", c.in, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("resolvePath(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestMissingColumnsReadAsNull(t *testing.T) {
	// Widen the schema of a real table with a column no file has.
	src := openGoldenSource(t, testutil.Testdata(t, "delta-rs", "delta-0.8.0-numeric-partition"), -1)
	src.schema = &txlog.StructType{Fields: append(append([]*txlog.StructField{}, src.schema.Fields...),
		&txlog.StructField{Name: "added_later", Type: &txlog.PrimitiveType{Name: txlog.TypeLong}, Nullable: true})}
	rows := scanRows(t, newScan(src, []ScanOption{WithColumns("z", "added_later"), WithPredicate(IsNull(Col("added_later")))}))
	if len(rows) == 0 {
		t.Fatal("no rows")
	}
	for _, r := range rows {
		if r.Values[1] != nil {
			t.Errorf("added_later = %v, want null", r.Values[1])
		}
	}
}
