package pq

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// flatRow takes the column-wise (batch) path of WriteStructs; the same rows
// given as pointers take the row-at-a-time path.
type flatRow struct {
	ID    int64     `delta:"id"`
	Small int32     `delta:"small"`
	S     string    `delta:"s"`
	F     float64   `delta:"f"`
	B     bool      `delta:"b"`
	TS    time.Time `delta:"ts"`
	NTZ   time.Time `delta:"ntz"`
	Day   time.Time `delta:"day"`
	U     uint16    `delta:"u"`
}

const flatSchema = `{"type":"struct","fields":[
	{"name":"id","type":"long","nullable":false,"metadata":{}},
	{"name":"small","type":"short","nullable":true,"metadata":{}},
	{"name":"s","type":"string","nullable":true,"metadata":{}},
	{"name":"f","type":"double","nullable":false,"metadata":{}},
	{"name":"b","type":"boolean","nullable":true,"metadata":{}},
	{"name":"ts","type":"timestamp","nullable":true,"metadata":{}},
	{"name":"ntz","type":"timestamp_ntz","nullable":false,"metadata":{}},
	{"name":"day","type":"date","nullable":true,"metadata":{}},
	{"name":"u","type":"integer","nullable":false,"metadata":{}},
	{"name":"absent","type":"string","nullable":true,"metadata":{}}]}`

func flatRows(n int) []flatRow {
	r := rand.New(rand.NewPCG(3, 4))
	base := time.Date(2024, 3, 1, 12, 0, 0, 0, time.FixedZone("x", 3600))
	rows := make([]flatRow, n)
	for i := range rows {
		rows[i] = flatRow{
			ID:    r.Int64() - r.Int64(),
			Small: int32(r.IntN(60000) - 30000),
			S:     fmt.Sprintf("s-%d-%s", r.IntN(5000), strings.Repeat("é", r.IntN(3))),
			F:     r.NormFloat64() * 1e6,
			B:     r.IntN(2) == 0,
			TS:    base.Add(time.Duration(r.Int64N(1e15))),
			NTZ:   base.Add(-time.Duration(r.Int64N(1e15))),
			Day:   base.AddDate(0, 0, r.IntN(20000)-10000),
			U:     uint16(r.Uint32()),
		}
	}
	return rows
}

type flatResult struct {
	err   error
	stats string
	cols  [][]any
}

func writeFlat[T any](t *testing.T, st *txlogStruct, rows []T, opts Options) flatResult {
	t.Helper()
	mp := newMemPut()
	opts.Schema = st
	w, err := NewFileWriter(mp, opts)
	if err != nil {
		t.Fatal(err)
	}
	var res flatResult
	res.err = WriteStructs(context.Background(), w, rows)
	adds, err := w.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range adds {
		res.stats += a.Stats + "\n"
		cols := readFileColumns(t, w.plan, mp.m[a.Path])
		if res.cols == nil {
			res.cols = make([][]any, len(cols))
		}
		for i := range cols {
			res.cols[i] = append(res.cols[i], cols[i]...)
		}
	}
	return res
}

func ptrs[T any](rows []T) []*T {
	out := make([]*T, len(rows))
	for i := range rows {
		out[i] = &rows[i]
	}
	return out
}

// TestStructBatchMatchesRowPath checks that the column-wise struct encoder
// writes exactly what the row-at-a-time encoder writes, across chunk and row
// group boundaries, and fails on the same row and column.
func TestStructBatchMatchesRowPath(t *testing.T) {
	st := mustSchema(t, flatSchema)
	w, err := NewFileWriter(newMemPut(), Options{Schema: st})
	if err != nil {
		t.Fatal(err)
	}
	if enc, err := w.encoderFor(reflect.TypeFor[flatRow]()); err != nil || enc.batch == nil {
		t.Fatalf("flatRow does not take the batch path (%v)", err)
	}
	rows := flatRows(5000)
	bad := func(mod func([]flatRow)) []flatRow {
		r := append([]flatRow(nil), rows...)
		mod(r)
		return r
	}
	cases := []struct {
		name string
		rows []flatRow
		want string // error; "" for none
	}{
		{"ok", rows, ""},
		{"utf8", bad(func(r []flatRow) { r[3000].S = "\xff" }), "row 3000: column s: string is not valid UTF-8"},
		{"range", bad(func(r []flatRow) { r[2047].Small = 40000 }), "row 2047: column small: 40000 out of range for short"},
		// an earlier row failing in a later column wins
		{"two", bad(func(r []flatRow) { r[2600].S = "\xff"; r[2590].Small = -40000 }), "row 2590: column small: -40000 out of range for short"},
		{"first", bad(func(r []flatRow) { r[0].S = "\xc0" }), "row 0: column s: string is not valid UTF-8"},
	}
	for _, opts := range []Options{{}, {MaxRowsPerRowGroup: 700}, {MaxRowsPerRowGroup: 1}} {
		if opts.MaxRowsPerRowGroup == 1 {
			rows = rows[:50]
			cases = cases[:1]
		}
		for _, tc := range cases {
			batch := writeFlat(t, st, tc.rows, opts)
			row := writeFlat(t, st, ptrs(tc.rows), opts)
			for _, r := range []flatResult{batch, row} {
				got := ""
				if r.err != nil {
					got = r.err.Error()
					if !errors.Is(r.err, ErrSchemaMismatch) {
						t.Errorf("%s: %v does not match ErrSchemaMismatch", tc.name, r.err)
					}
				}
				if got != tc.want {
					t.Errorf("%s (%d rows/group): error %q, want %q", tc.name, opts.MaxRowsPerRowGroup, got, tc.want)
				}
			}
			if batch.stats != row.stats {
				t.Errorf("%s: stats differ:\nbatch %s\nrows  %s", tc.name, batch.stats, row.stats)
			}
			if !reflect.DeepEqual(batch.cols, row.cols) {
				t.Errorf("%s: columns differ", tc.name)
			}
			// the rows before the failed one are all there
			wantRows := len(tc.rows)
			if tc.want != "" {
				if _, err := fmt.Sscanf(tc.want, "row %d:", &wantRows); err != nil {
					t.Fatal(err)
				}
			}
			if wantRows == 0 {
				if batch.cols != nil {
					t.Errorf("%s: a file was written", tc.name)
				}
				continue
			}
			if len(batch.cols[0]) != wantRows {
				t.Errorf("%s: %d rows written, want %d", tc.name, len(batch.cols[0]), wantRows)
			}
			for i := 0; i < wantRows; i += 997 {
				if batch.cols[0][i] != tc.rows[i].ID || batch.cols[2][i] != tc.rows[i].S {
					t.Fatalf("%s row %d: got %v %v", tc.name, i, batch.cols[0][i], batch.cols[2][i])
				}
			}
		}
	}
}

// TestRollbackAcrossChunks writes random nested schemas with enough rows to
// span several chunks and row groups, with failing rows in between: the
// failed rows leave nothing behind.
func TestRollbackAcrossChunks(t *testing.T) {
	ctx := context.Background()
	for seed := range uint64(6) {
		g := &gen{r: rand.New(rand.NewPCG(seed, 99))}
		st := g.structType(0)
		nrows := 2500 + g.r.IntN(1000)
		mp := newMemPut()
		w, err := NewFileWriter(mp, Options{Schema: st, MaxRowsPerRowGroup: 1500})
		if err != nil {
			t.Fatal(err)
		}
		var canon []map[string]any
		for i := range nrows {
			in, c := g.value(st, false)
			if i%701 == 700 {
				// fails after writing some columns: unknown keys are checked
				// after the known ones
				bad := map[string]any{"~unknown": 1}
				for k, v := range in.(map[string]any) {
					bad[k] = v
				}
				if err := w.WriteRow(ctx, bad); err == nil || !errors.Is(err, ErrSchemaMismatch) {
					t.Fatalf("seed %d row %d: got %v", seed, i, err)
				}
			}
			if err := w.WriteRow(ctx, in.(map[string]any)); err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			canon = append(canon, c.(map[string]any))
		}
		adds, err := w.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(adds) != 1 {
			t.Fatalf("%d adds", len(adds))
		}
		data := mp.m[adds[0].Path]
		f := openFile(t, data)
		if int(f.NumRows()) != nrows || len(f.RowGroups()) != (nrows+1499)/1500 {
			t.Fatalf("seed %d: %d rows in %d row groups, want %d", seed, f.NumRows(), len(f.RowGroups()), nrows)
		}
		want := leafValues(w.plan, canon)
		got := readFileColumns(t, w.plan, data)
		for c := range want {
			if !equalCanon(anySlice(want[c]), anySlice(got[c])) {
				t.Fatalf("seed %d column %s differs", seed, strings.Join(w.plan.leaves[c].path, "."))
			}
		}
		checkStats(t, seed, w.plan, w.stats, canon, adds[0].Stats)
	}
}

// TestRowGroupBytesBound checks that row groups are cut by their estimated
// uncompressed size and that the writer holds encoded data, not whole
// uncompressed row groups.
func TestRowGroupBytesBound(t *testing.T) {
	st := mustSchema(t, `{"type":"struct","fields":[
	{"name":"id","type":"long","nullable":false,"metadata":{}},
	{"name":"s","type":"string","nullable":true,"metadata":{}}]}`)
	mp := newMemPut()
	const limit = 1 << 20
	w, err := NewFileWriter(mp, Options{Schema: st, MaxRowGroupBytes: limit})
	if err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 200)
	n := 40000 // ~8.5 MB uncompressed
	var maxBuffered int64
	for i := range n {
		if err := w.WriteRow(context.Background(), map[string]any{"id": i, "s": fmt.Sprintf("%s%d", pad, i%100)}); err != nil {
			t.Fatal(err)
		}
		maxBuffered = max(maxBuffered, w.BufferedBytes())
	}
	adds, err := w.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if w.BufferedBytes() != 0 {
		t.Fatalf("%d bytes buffered after Close", w.BufferedBytes())
	}
	f := openFile(t, mp.m[adds[0].Path])
	rgs := f.RowGroups()
	if len(rgs) < 8 {
		t.Fatalf("%d row groups for ~8.5 MB with a 1 MiB bound", len(rgs))
	}
	for _, rg := range rgs[:len(rgs)-1] {
		// a row group ends at the first chunk that reaches the bound
		rows := rg.NumRows()
		if est := rows * (8 + 4 + 203); est < limit || est > limit+chunkRows*(8+4+203) {
			t.Fatalf("row group of %d rows (~%d bytes) for a %d bound", rows, est, limit)
		}
	}
	// compressible data: what stays in memory is far below the input size
	if maxBuffered > int64(len(mp.m[adds[0].Path]))+chunkBytes+limit/2 {
		t.Fatalf("buffered up to %d bytes for a %d-byte file", maxBuffered, len(mp.m[adds[0].Path]))
	}
}
