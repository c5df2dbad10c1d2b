package reader

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/kappa-lake/kappa/table"
)

// benchSource makes a modifiable table over the cached bench table's files
// (symlinked data files, copied log) in a temp dir.
func benchSource(b *testing.B, n int64) string {
	b.Helper()
	dir, adds, _ := benchTable(b, n)
	dst := filepath.Join(b.TempDir(), "src")
	if err := os.MkdirAll(filepath.Join(dst, "_delta_log"), 0o755); err != nil {
		b.Fatal(err)
	}
	for _, a := range adds {
		if err := os.Symlink(filepath.Join(dir, a.Path), filepath.Join(dst, a.Path)); err != nil {
			b.Fatal(err)
		}
	}
	log := filepath.Join("_delta_log", "00000000000000000000.json")
	data, err := os.ReadFile(filepath.Join(dir, log))
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, log), data, 0o644); err != nil {
		b.Fatal(err)
	}
	return dst
}

const benchGroupSQL = "SELECT key, count(*) AS n, sum(value) AS s, avg(value) AS a, max(id) AS m FROM t GROUP BY key"

// BenchmarkQuery: GROUP BY over the cached 10M-row bench table (full
// recompute), and a view's incremental refresh after +1% rows compared with
// its full recompute.
func BenchmarkQuery(b *testing.B) {
	n := benchRows()
	ctx := context.Background()
	b.Run("groupby-full", func(b *testing.B) {
		dir, _, _ := benchTable(b, n)
		b.ReportAllocs()
		for b.Loop() {
			res, err := Query(ctx, benchGroupSQL, WithTable("t", dir))
			if err != nil {
				b.Fatal(err)
			}
			if len(res.Rows) != 100 {
				b.Fatalf("%d groups", len(res.Rows))
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	src := benchSource(b, n)
	tbl, err := table.Open(ctx, src)
	if err != nil {
		b.Fatal(err)
	}
	extra := make([]map[string]any, n/100)
	for i := range extra {
		id := n + int64(i)
		extra[i] = map[string]any{"id": id, "key": "group-" + strconv.Itoa(int(id*7919%100)), "value": float64(id%1000) / 10}
	}
	if _, err := tbl.Append(ctx, extra); err != nil {
		b.Fatal(err)
	}
	view := filepath.Join(b.TempDir(), "view")
	v0 := int64(0)
	if _, err := CreateView(ctx, view, src, benchGroupSQL, RefreshOptions{}); err != nil {
		b.Fatal(err)
	}
	b.Run("view-refresh-full", func(b *testing.B) {
		for b.Loop() {
			if _, err := RefreshView(ctx, view, RefreshOptions{Full: true}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n+n/100)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("view-refresh-incremental-1pct", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			if _, err := RefreshView(ctx, view, RefreshOptions{Full: true, Version: &v0}); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			res, err := RefreshView(ctx, view, RefreshOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if res.Mode != "incremental" || res.RowsRead != n/100 {
				b.Fatalf("%+v", res)
			}
		}
	})
}
