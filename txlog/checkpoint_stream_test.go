package txlog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/kappa-lake/kappa/internal/store"
	"github.com/kappa-lake/kappa/internal/store/faultstore"
)

// checkNothingWritten fails t if the log directory holds anything but what
// was there before (no checkpoint, no _last_checkpoint, no temp file).
func checkNothingWritten(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "_delta_log"))
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("failed checkpoint left %s", e.Name())
	}
}

var errFilesBroken = errors.New("the file listing broke")

// TestWriteCheckpointFilesError: an error from Files, a non-file action, or
// a context canceled while the files stream, publish nothing.
func TestWriteCheckpointFilesError(t *testing.T) {
	defer func(old int64) { checkpointRowGroupRows = old }(checkpointRowGroupRows)
	checkpointRowGroupRows = 100 // some row groups are already written when it fails
	breakAfter := func(n int, last Action, err error) iter.Seq2[Action, error] {
		return func(yield func(Action, error) bool) {
			for a, e := range syntheticFiles(n) {
				if !yield(a, e) {
					return
				}
			}
			yield(last, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, c := range []struct {
		name  string
		files iter.Seq2[Action, error]
		ctx   context.Context
		want  error
	}{
		{"error", breakAfter(1000, Action{}, errFilesBroken), context.Background(), errFilesBroken},
		{"metadata among files", breakAfter(10, Action{MetaData: &Metadata{ID: "x"}}, nil), context.Background(), ErrNotFileAction},
		{"empty action", breakAfter(10, Action{}, nil), context.Background(), ErrNotFileAction},
		{"canceled", func(yield func(Action, error) bool) {
			for a, e := range syntheticFiles(2000) {
				if a.Add != nil && strings.Contains(a.Add.Path, "part-00001000-") {
					cancel()
				}
				if !yield(a, e) {
					return
				}
			}
		}, ctx, context.Canceled},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			d := syntheticData(0)
			d.Files = c.files
			lc, err := WriteCheckpoint(c.ctx, openTestStore(t, dir), 4, d)
			if !errors.Is(err, c.want) || lc != nil {
				t.Fatalf("WriteCheckpoint = %+v, %v; want an error wrapping %v", lc, err, c.want)
			}
			if !strings.Contains(err.Error(), "checkpoint 4") {
				t.Errorf("error %q does not name the checkpoint", err)
			}
			checkNothingWritten(t, dir)
		})
	}
}

// TestWriteCheckpointFaults: a store fault while streaming the checkpoint
// leaves no checkpoint behind.
func TestWriteCheckpointFaults(t *testing.T) {
	defer func(old int64) { checkpointRowGroupRows = old }(checkpointRowGroupRows)
	checkpointRowGroupRows = 50
	dir := t.TempDir()
	fs := faultstore.New(openTestStore(t, dir), faultstore.Options{Seed: 3})
	for i := range 8 { // before the stream or after a few writes
		fs.FailNext(faultstore.OpWrite, 1)
		_, err := WriteCheckpoint(context.Background(), fs, 9, syntheticData(500))
		if !faultstore.IsInjected(err) || !store.IsRetryable(err) {
			t.Fatalf("attempt %d: err = %v, want a retryable injected fault", i, err)
		}
		checkNothingWritten(t, dir)
	}
	lc, err := WriteCheckpoint(context.Background(), fs, 9, syntheticData(500))
	if err != nil || *lc.NumOfAddFiles != 500 {
		t.Fatalf("WriteCheckpoint without faults = %+v, %v", lc, err)
	}
}

// TestWriteCheckpointRowOrder: protocol, metaData, txns, domains, then the
// file actions in the order Files yields them (adds and removes mixed).
func TestWriteCheckpointRowOrder(t *testing.T) {
	defer func(old int64) { checkpointRowGroupRows = old }(checkpointRowGroupRows)
	checkpointRowGroupRows = 64
	dir := t.TempDir()
	d := syntheticData(300)
	var want []string
	for _, a := range stateActions(d) {
		want = append(want, stateKinds([]Action{a}))
	}
	for a, err := range syntheticFiles(300) {
		if err != nil {
			t.Fatal(err)
		}
		if a.Add != nil {
			want = append(want, "add:"+a.Add.Path)
		} else {
			want = append(want, "remove:"+a.Remove.Path)
		}
	}
	lc, err := WriteCheckpoint(context.Background(), openTestStore(t, dir), 1, d)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range readCheckpointActions(t, dir, 1) {
		switch {
		case a.Add != nil:
			got = append(got, "add:"+a.Add.Path)
		case a.Remove != nil:
			got = append(got, "remove:"+a.Remove.Path)
		default:
			got = append(got, stateKinds([]Action{a}))
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("row order differs: got %d rows, want %d; first rows %q", len(got), len(want), got[:min(8, len(got))])
	}
	if lc.Size != int64(len(want)) || *lc.NumOfAddFiles != 300 {
		t.Errorf("last checkpoint size %d adds %d, want %d and 300", lc.Size, *lc.NumOfAddFiles, len(want))
	}
}

// TestWriteCheckpointWithoutStats: tables whose schema has no column with
// min/max stats, or whose adds carry no stats, or no files at all, still
// produce a checkpoint that parquet-go reads row by row and our reader
// reads back, with add.stats_parsed present (all null where no stats).
func TestWriteCheckpointWithoutStats(t *testing.T) {
	schemas := map[string]string{
		"bool and binary only": `{"type":"struct","fields":[
			{"name":"flag","type":"boolean","nullable":true,"metadata":{}},
			{"name":"blob","type":"binary","nullable":true,"metadata":{}}]}`,
		"partition column only": `{"type":"struct","fields":[
			{"name":"p","type":"string","nullable":true,"metadata":{}}]}`,
		"no columns": `{"type":"struct","fields":[]}`,
		"nested and collections": `{"type":"struct","fields":[
			{"name":"arr","type":{"type":"array","elementType":"long","containsNull":true},"nullable":true,"metadata":{}},
			{"name":"m","type":{"type":"map","keyType":"string","valueType":"long","valueContainsNull":true},"nullable":true,"metadata":{}},
			{"name":"s","type":{"type":"struct","fields":[{"name":"b","type":"boolean","nullable":true,"metadata":{}}]},"nullable":true,"metadata":{}}]}`,
	}
	for name, schema := range schemas {
		for _, withStats := range []bool{false, true} {
			for _, nfiles := range []int{0, 3} {
				t.Run(fmt.Sprintf("%s/stats=%v/files=%d", name, withStats, nfiles), func(t *testing.T) {
					dir := t.TempDir()
					var parts []string
					if name == "partition column only" {
						parts = []string{"p"}
					}
					d := CheckpointData{
						Protocol: &Protocol{MinReaderVersion: 1, MinWriterVersion: 2},
						Metadata: &Metadata{ID: "id", Format: Format{Provider: "parquet"}, SchemaString: schema, PartitionColumns: parts},
					}
					var adds []*Add
					for i := range nfiles {
						a := &Add{Path: fmt.Sprintf("f%d.parquet", i), Size: 1, ModificationTime: 2, DataChange: true, PartitionValues: map[string]*string{}}
						if parts != nil {
							a.PartitionValues["p"] = ptr(fmt.Sprint(i))
						}
						if withStats {
							a.Stats = `{"numRecords":3,"minValues":{},"maxValues":{},"nullCount":{"flag":1,"blob":0}}`
						}
						adds = append(adds, a)
					}
					d.Files = filesOf(adds, nil)
					if _, err := WriteCheckpoint(context.Background(), openTestStore(t, dir), 2, d); err != nil {
						t.Fatal(err)
					}
					path := filepath.Join(dir, filepath.FromSlash(CheckpointKey(2)))
					if rows := readParquetRows(t, path); rows != int64(2+nfiles) {
						t.Errorf("parquet-go read %d rows, want %d", rows, 2+nfiles)
					}
					got := 0
					for _, a := range readCheckpointActions(t, dir, 2) {
						if a.Add == nil {
							continue
						}
						got++
						if (a.Add.Stats != "") != withStats {
							t.Errorf("add %s: stats %q", a.Add.Path, a.Add.Stats)
						}
						if withStats {
							if s, err := a.Add.ParsedStats(); err != nil || s.NumRecords == nil || *s.NumRecords != 3 {
								t.Errorf("add %s: parsed stats %+v, %v", a.Add.Path, s, err)
							}
						}
					}
					if got != nfiles {
						t.Errorf("read %d adds, want %d", got, nfiles)
					}
				})
			}
		}
	}
}

// readParquetRows reads every row of a Parquet file with parquet-go's
// generic row reader (all columns, all pages) and returns the row count.
func readParquetRows(t *testing.T, path string) int64 {
	t.Helper()
	pf := openLocalParquet(t, path)
	if _, ok := pf.Schema().Lookup("add", "stats_parsed", "numRecords"); !ok {
		t.Errorf("add.stats_parsed.numRecords missing")
	}
	var n int64
	buf := make([]parquet.Row, 16)
	for _, rg := range pf.RowGroups() {
		rows := rg.Rows()
		for {
			k, err := rows.ReadRows(buf)
			n += int64(k)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rows.Close()
				t.Fatalf("ReadRows: %v", err)
			}
		}
		rows.Close()
	}
	if n != pf.NumRows() {
		t.Errorf("read %d rows, footer says %d", n, pf.NumRows())
	}
	return n
}

// heapSampler records the peak of the heap (live and not yet collected
// objects) while it runs, sampling runtime/metrics every 2 ms.
type heapSampler struct {
	stop chan struct{}
	done sync.WaitGroup
	peak uint64
}

func startHeapSampler() *heapSampler {
	h := &heapSampler{stop: make(chan struct{})}
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() {
		metrics.Read(sample)
		h.peak = max(h.peak, sample[0].Value.Uint64())
	}
	read()
	h.done.Go(func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-h.stop:
				read()
				return
			case <-tick.C:
				read()
			}
		}
	})
	return h
}

// Stop ends sampling and returns the peak in bytes.
func (h *heapSampler) Stop() uint64 {
	close(h.stop)
	h.done.Wait()
	return h.peak
}

// BenchmarkWriteCheckpointStreaming writes checkpoints of 100,000 and
// 1,000,000 synthetic adds (stats JSON, two partition values, a remove
// every 50 adds), generated on the fly, to a file store, and reports the
// peak heap during the write: it must not grow with the number of adds.
// Run with -benchtime=1x: one write of a million adds takes a while.
func BenchmarkWriteCheckpointStreaming(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("adds=%d", n), func(b *testing.B) {
			st := openTestStore(b, b.TempDir())
			var peak uint64
			var size int64
			for b.Loop() {
				runtime.GC()
				h := startHeapSampler()
				lc, err := WriteCheckpoint(context.Background(), st, 1, syntheticData(n))
				peak = max(peak, h.Stop())
				if err != nil {
					b.Fatal(err)
				}
				size = *lc.SizeInBytes
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(size)/(1<<20), "file-MiB")
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "adds/s")
		})
	}
}
