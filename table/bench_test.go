package table_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kappa-lake/kappa/internal/store"
	"github.com/kappa-lake/kappa/internal/testutil"
	"github.com/kappa-lake/kappa/table"
	"github.com/kappa-lake/kappa/txlog"
)

func reportPeakRSS(b *testing.B) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MB")
	}
}

var (
	unpack300kOnce sync.Once
	unpack300kDir  string
	unpack300kErr  error
)

// table300k unpacks the 300k-add-file archive once, into a directory of the
// temp dir that later runs reuse.
func table300k(b *testing.B) string {
	archive := testutil.Testdata(b, "archives", "300k-add-files-100-col-partitioned.tar.zst")
	unpack300kOnce.Do(func() {
		dir := filepath.Join(os.TempDir(), "kappa-bench-300k-v1")
		unpack300kDir = filepath.Join(dir, "300k-add-files-100-col-partitioned")
		if _, err := os.Stat(filepath.Join(dir, "complete")); err == nil {
			return
		}
		_ = os.RemoveAll(dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			unpack300kErr = err
			return
		}
		out, err := exec.CommandContext(context.Background(), "tar", "--zstd", "-xf", archive, "-C", dir).CombinedOutput()
		if err != nil {
			unpack300kErr = fmt.Errorf("untar: %w: %s", err, out)
			return
		}
		unpack300kErr = os.WriteFile(filepath.Join(dir, "complete"), nil, 0o644)
	})
	if unpack300kErr != nil {
		b.Skipf("cannot unpack the 300k archive: %v", unpack300kErr)
	}
	return unpack300kDir
}

// BenchmarkLoad300kAddFiles loads the latest snapshot of a log with 300,000
// add actions (JSON commits only).
func BenchmarkLoad300kAddFiles(b *testing.B) {
	dir := table300k(b)
	ctx := context.Background()
	b.ReportAllocs()
	var snap *table.Snapshot
	for b.Loop() {
		snap = nil
		tbl, err := table.Open(ctx, dir)
		if err != nil {
			b.Fatal(err)
		}
		snap, err = tbl.Snapshot(ctx)
		if err != nil {
			b.Fatal(err)
		}
	}
	if snap.NumFiles() != 300_000 {
		b.Fatalf("loaded %d files; want 300000", snap.NumFiles())
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "live-heap-MB")
	runtime.KeepAlive(snap)
	reportPeakRSS(b)
}

const (
	synthCommits   = 100_000
	synthCkptEvery = 1_000
	synthLive      = 1_000
	synthT0        = 1_800_000_000_000 // ms; commit v has in-commit timestamp synthT0 + v*1000
)

var (
	synthOnce sync.Once
	synthDir  string
	synthErr  error
)

// synthTable builds (once, cached in the temp dir across runs) a table of
// 100k commits: commit v adds file v and removes file v-1000, with in-commit
// timestamps, and a checkpoint every 1000 versions.
func synthTable(b *testing.B) string {
	synthOnce.Do(func() {
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("kappa-bench-synth-%d-v1", synthCommits))
		if _, err := os.Stat(filepath.Join(dir, "complete")); err == nil {
			synthDir = dir
			return
		}
		_ = os.RemoveAll(dir)
		synthErr = buildSynth(dir)
		if synthErr == nil {
			synthErr = os.WriteFile(filepath.Join(dir, "complete"), nil, 0o644)
		}
		synthDir = dir
	})
	if synthErr != nil {
		b.Fatalf("build synthetic table: %v", synthErr)
	}
	return synthDir
}

func buildSynth(dir string) error {
	ctx := context.Background()
	now := time.UnixMilli(synthT0)
	tbl, err := table.Create(ctx, dir, testSchema(), table.WithClock(func() time.Time { return now }))
	if err != nil {
		return err
	}
	logDir := filepath.Join(dir, "_delta_log")
	var buf bytes.Buffer
	for v := int64(1); v <= synthCommits; v++ {
		buf.Reset()
		ts := synthT0 + v*1000
		fmt.Fprintf(&buf, `{"commitInfo":{"inCommitTimestamp":%d,"timestamp":%d,"operation":"WRITE","operationParameters":{"mode":"Append"},"isBlindAppend":false,"engineInfo":"kappa-bench"}}`+"\n", ts, ts)
		fmt.Fprintf(&buf, `{"add":{"path":"part-%07d.parquet","partitionValues":{},"size":%d,"modificationTime":%d,"dataChange":true,"stats":"{\"numRecords\":100}"}}`+"\n", v, 1000+v, ts)
		if v > synthLive {
			fmt.Fprintf(&buf, `{"remove":{"path":"part-%07d.parquet","deletionTimestamp":%d,"dataChange":true}}`+"\n", v-synthLive, ts)
		}
		fmt.Fprintf(&buf, `{"txn":{"appId":"bench","version":%d}}`+"\n", v)
		if err := os.WriteFile(filepath.Join(logDir, fmt.Sprintf("%020d.json", v)), buf.Bytes(), 0o644); err != nil {
			return err
		}
		if v%synthCkptEvery == 0 {
			now = time.UnixMilli(ts)
			if _, err := tbl.Checkpoint(ctx, v); err != nil {
				return fmt.Errorf("checkpoint %d: %w", v, err)
			}
		}
	}
	return nil
}

// BenchmarkSynthetic100k measures loads on a 100k-commit log with
// checkpoints, reporting store requests per operation.
func BenchmarkSynthetic100k(b *testing.B) {
	dir := synthTable(b)
	ctx := context.Background()
	base, err := store.Open(ctx, dir)
	if err != nil {
		b.Fatal(err)
	}
	cs := &countingStore{Store: base}
	run := func(b *testing.B, op func(*table.Table) (*table.Snapshot, error), wantVersion int64) {
		tbl, err := table.OpenStore(ctx, cs)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		cs.reset()
		n := 0
		for b.Loop() {
			snap, err := op(tbl)
			if err != nil {
				b.Fatal(err)
			}
			if snap.Version() != wantVersion || snap.NumFiles() != synthLive {
				b.Fatalf("version %d with %d files; want %d with %d", snap.Version(), snap.NumFiles(), wantVersion, synthLive)
			}
			n++
		}
		b.ReportMetric(float64(cs.total())/float64(n), "requests/op")
		b.ReportMetric(float64(cs.gets.Load()+cs.opens.Load())/float64(n), "reads/op")
		b.ReportMetric(float64(cs.lists.Load())/float64(n), "lists/op")
	}
	b.Run("Latest", func(b *testing.B) {
		run(b, func(*table.Table) (*table.Snapshot, error) {
			tbl, err := table.OpenStore(ctx, cs)
			if err != nil {
				return nil, err
			}
			return tbl.Snapshot(ctx)
		}, synthCommits)
	})
	b.Run("AtVersion", func(b *testing.B) {
		run(b, func(tbl *table.Table) (*table.Snapshot, error) {
			return tbl.Snapshot(ctx, table.AtVersion(50_500))
		}, 50_500)
	})
	b.Run("AsOf", func(b *testing.B) {
		at := time.UnixMilli(synthT0 + 75_250*1000 + 500)
		run(b, func(tbl *table.Table) (*table.Snapshot, error) {
			return tbl.Snapshot(ctx, table.AsOf(at))
		}, 75_250)
	})
}

// BenchmarkCommitFile measures single-writer commits per second on file://
// (one add per commit, automatic checkpoints every 10 commits).
func BenchmarkCommitFile(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	tbl, err := table.Create(ctx, dir, testSchema())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	start := time.Now()
	for b.Loop() {
		tx, err := tbl.NewTransaction(ctx)
		if err != nil {
			b.Fatal(err)
		}
		tx.AddFiles(&txlog.Add{Path: fmt.Sprintf("part-%d.parquet", i), Size: 1, DataChange: true, Stats: `{"numRecords":1}`})
		tx.SetTxn("bench", int64(i))
		if _, err := tx.Commit(ctx); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(i)/time.Since(start).Seconds(), "commits/s")
}
