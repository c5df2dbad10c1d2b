package txlog

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

// readModes are the ways openParquet can read a checkpoint file, forced
// through its tunables: "window" (the default: one request per row group
// into a reused buffer), "whole" (the whole file in memory with one
// request, how files up to 64 MiB were read before) and "columns" (every
// row group column by column through 1 MiB readahead buffers, how larger
// files were read before).
var readModes = []string{"window", "whole", "columns"}

// setReadMode forces a read mode until the end of tb.
func setReadMode(tb testing.TB, mode string) {
	tb.Helper()
	oldWhole, oldCap := wholeFileLimit, windowCap
	tb.Cleanup(func() { wholeFileLimit, windowCap = oldWhole, oldCap })
	switch mode {
	case "window":
	case "whole":
		wholeFileLimit = 1 << 40
	case "columns":
		windowCap = 0
	default:
		tb.Fatalf("unknown read mode %q", mode)
	}
}

// readPeak reads the checkpoint of version 1 in st with ReadCheckpoint,
// counting adds and keeping none, and returns the adds, the peak heap
// (sampled every 2 ms) above the heap before the read, and the time taken.
func readPeak(tb testing.TB, st *readCountingStore) (adds int, peak uint64, took time.Duration) {
	tb.Helper()
	f, _ := ParseLogFile(CheckpointKey(1))
	runtime.GC()
	base := heapObjects()
	h := startHeapSampler()
	start := time.Now()
	for a, err := range ReadCheckpoint(context.Background(), st, []LogFile{f}, nil) {
		if err != nil {
			tb.Fatal(err)
		}
		if a.Add != nil {
			adds++
		}
	}
	took = time.Since(start)
	return adds, h.Stop() - base, took
}

// heapObjects is the current size of heap objects (live and garbage).
func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// BenchmarkReadCheckpointWindow reads checkpoints of 100,000 and 1,000,000
// synthetic adds from a file store with ReadCheckpoint in each read mode
// and reports the peak heap while reading (sampled every 2 ms), the read
// requests and the largest single read. Run with -benchtime=1x.
func BenchmarkReadCheckpointWindow(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		dir := b.TempDir()
		st := openTestStore(b, dir)
		lc, err := WriteCheckpoint(context.Background(), st, 1, syntheticData(n))
		if err != nil {
			b.Fatal(err)
		}
		for _, mode := range readModes {
			b.Run(fmt.Sprintf("adds=%d/mode=%s", n, mode), func(b *testing.B) {
				setReadMode(b, mode)
				cs := newReadCountingStore(st)
				var peak uint64
				for b.Loop() {
					cs.reset()
					adds, p, _ := readPeak(b, cs)
					peak = max(peak, p)
					if adds != n {
						b.Fatalf("read %d adds, want %d", adds, n)
					}
				}
				reads, maxRead := cs.stats()
				b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
				b.ReportMetric(float64(*lc.SizeInBytes)/(1<<20), "file-MiB")
				b.ReportMetric(float64(reads), "reads")
				b.ReportMetric(float64(maxRead)/(1<<20), "max-read-MiB")
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "adds/s")
			})
		}
	}
}

// BenchmarkCheckpointRowGroupRows writes checkpoints of 100,000 and
// 1,000,000 synthetic adds with row groups of 20,000, 10,000 and 5,000
// rows and reports the write's peak heap, the file size, and the read's
// time, peak heap and requests (window mode). Run with -benchtime=1x.
func BenchmarkCheckpointRowGroupRows(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		for _, rows := range []int64{20_000, 10_000, 5_000} {
			b.Run(fmt.Sprintf("adds=%d/rows=%d", n, rows), func(b *testing.B) {
				defer func(old int64) { checkpointRowGroupRows = old }(checkpointRowGroupRows)
				checkpointRowGroupRows = rows
				st := openTestStore(b, b.TempDir())
				cs := newReadCountingStore(st)
				var wpeak, rpeak uint64
				var wtime, rtime time.Duration
				var size int64
				for b.Loop() {
					runtime.GC()
					h := startHeapSampler()
					start := time.Now()
					lc, err := WriteCheckpoint(context.Background(), st, 1, syntheticData(n))
					wtime += time.Since(start)
					wpeak = max(wpeak, h.Stop())
					if err != nil {
						b.Fatal(err)
					}
					size = *lc.SizeInBytes
					cs.reset()
					adds, p, took := readPeak(b, cs)
					rpeak, rtime = max(rpeak, p), rtime+took
					if adds != n {
						b.Fatalf("read %d adds, want %d", adds, n)
					}
				}
				reads, _ := cs.stats()
				b.ReportMetric(float64(wpeak)/(1<<20), "write-peak-MiB")
				b.ReportMetric(float64(rpeak)/(1<<20), "read-peak-MiB")
				b.ReportMetric(wtime.Seconds()/float64(b.N), "write-s")
				b.ReportMetric(rtime.Seconds()/float64(b.N), "read-s")
				b.ReportMetric(float64(size)/(1<<20), "file-MiB")
				b.ReportMetric(float64(reads), "reads")
			})
		}
	}
}
