package pq

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"
)

type iotRow struct {
	ID     int64     `delta:"id" parquet:"id"`
	TS     time.Time `delta:"ts" parquet:"ts,timestamp(microsecond)"`
	Device string    `delta:"device" parquet:"device,dict"`
	Temp   float64   `delta:"temp" parquet:"temp"`
	Site   string    `delta:"site" parquet:"site,dict"`
}

func iotRows(n int) []iotRow {
	rows := make([]iotRow, n)
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range rows {
		rows[i] = iotRow{
			ID:     int64(i),
			TS:     base.Add(time.Duration(i) * 137 * time.Millisecond),
			Device: fmt.Sprintf("device-%04d", i%5000),
			Temp:   15 + float64(i%1000)/37,
			Site:   fmt.Sprintf("site-%02d", i%40),
		}
	}
	return rows
}

type countPut struct{ n int64 }

func (c *countPut) Put(_ context.Context, _ string, d []byte) error { c.n += int64(len(d)); return nil }
func (c *countPut) Delete(context.Context, string) error            { return nil }

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// BenchmarkWrite compares Kappa's writer (Go structs and JSON-like maps)
// with parquet-go's GenericWriter[T] on the same rows, zstd, 128Ki-row row
// groups. rows/s and MB/s (of Parquet output) are reported per sub-benchmark.
func BenchmarkWrite(b *testing.B) {
	n := 1 << 20
	if testing.Short() {
		n = 1 << 14
	}
	rows := iotRows(n)
	schema, err := SchemaOf(reflect.TypeFor[iotRow]())
	if err != nil {
		b.Fatal(err)
	}
	maps := make([]map[string]any, n)
	for i, r := range rows {
		maps[i] = map[string]any{"id": r.ID, "ts": r.TS, "device": r.Device, "temp": r.Temp, "site": r.Site}
	}
	ctx := context.Background()
	// cpu-ms/op (process CPU time, GC included) is the steadier figure on a
	// loaded machine, where wall-clock rows/s mostly measures the scheduler.
	var cpu0 int64
	start := func(b *testing.B) {
		runtime.GC()
		b.ResetTimer()
		cpu0 = processCPU()
	}
	report := func(b *testing.B, out int64) {
		el := b.Elapsed().Seconds()
		b.ReportMetric(float64(n)*float64(b.N)/el, "rows/s")
		b.ReportMetric(float64(out)/el/1e6, "MB/s")
		b.ReportMetric(float64(out)/float64(b.N), "file-bytes")
		if cpu0 >= 0 {
			b.ReportMetric(float64(processCPU()-cpu0)/1e6/float64(b.N), "cpu-ms/op")
		}
	}
	b.Run("kappa-structs", func(b *testing.B) {
		b.ReportAllocs()
		start(b)
		var out int64
		for b.Loop() {
			cp := &countPut{}
			w, err := NewFileWriter(cp, Options{Schema: schema})
			if err != nil {
				b.Fatal(err)
			}
			if err := WriteStructs(ctx, w, rows); err != nil {
				b.Fatal(err)
			}
			if _, err := w.Close(ctx); err != nil {
				b.Fatal(err)
			}
			out += cp.n
		}
		report(b, out)
	})
	b.Run("kappa-maps", func(b *testing.B) {
		b.ReportAllocs()
		start(b)
		var out int64
		for b.Loop() {
			cp := &countPut{}
			w, err := NewFileWriter(cp, Options{Schema: schema})
			if err != nil {
				b.Fatal(err)
			}
			if err := w.Write(ctx, maps); err != nil {
				b.Fatal(err)
			}
			if _, err := w.Close(ctx); err != nil {
				b.Fatal(err)
			}
			out += cp.n
		}
		report(b, out)
	})
	b.Run("parquet-go-generic", func(b *testing.B) {
		b.ReportAllocs()
		start(b)
		var out int64
		for b.Loop() {
			cw := &countWriter{}
			var buf bytes.Buffer
			w := parquet.NewGenericWriter[iotRow](io.MultiWriter(cw, &buf),
				parquet.Compression(&zstd.Codec{Level: zstd.SpeedDefault}),
				parquet.MaxRowsPerRowGroup(DefaultMaxRowsPerRowGroup))
			if _, err := w.Write(rows); err != nil {
				b.Fatal(err)
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
			out += cw.n
		}
		report(b, out)
	})
}
