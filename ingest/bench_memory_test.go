package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kappa-lake/kappa/internal/store"
	"github.com/kappa-lake/kappa/table"
	"github.com/kappa-lake/kappa/txlog"
)

// memBenchFiles is the number of live files in the large table of
// BenchmarkIngestMemoryVsTableSize (KAPPA_INGEST_MEM_BENCH_FILES overrides).
func memBenchFiles() int {
	if n, err := strconv.Atoi(os.Getenv("KAPPA_INGEST_MEM_BENCH_FILES")); err == nil && n > 0 {
		return n
	}
	return 500_000
}

// BenchmarkIngestMemoryVsTableSize checks the issue's "memory bounded by the
// flush settings, not by run time or table history": the same 200k messages
// are ingested (2,000-row flushes: 100 commits and, with
// delta.checkpointInterval 10, 10 checkpoints) by a daemon child process into
// an empty table and into tables that already have memBenchFiles/10 and
// memBenchFiles live files (synthetic checkpoints). It reports the peak RSS
// of each and the ratios; large/medium near 1.0 means memory does not grow
// with the table's size (a table of a few files checkpoints in less memory
// than one of a full checkpoint row group, hence the separate baseline).
func BenchmarkIngestMemoryVsTableSize(b *testing.B) {
	const partitions = 4
	const n = 200_000
	brokers := startBroker(b, partitions, "mem")
	preProduce(b, brokers, "mem", n)
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	run := func(url, group string) float64 {
		cfg, _ := json.Marshal(childConfig{Brokers: brokers, Topic: "mem", Table: url, Group: group, UntilEnd: true, Bench: true, FlushRows: 2000})
		cmd := exec.CommandContext(context.Background(), exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+string(cfg))
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("ingest into %s: %v", url, err)
		}
		var kb float64
		if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "VmHWM: %f kB", &kb); err != nil {
			b.Fatalf("no VmHWM in %q", out)
		}
		return kb / 1024
	}
	sizes := []int{0, memBenchFiles() / 10, memBenchFiles()}
	rss := make([]float64, len(sizes))
	iter := 0
	for b.Loop() {
		iter++
		for i, files := range sizes {
			url := filepath.Join(b.TempDir(), fmt.Sprintf("t%d", files))
			t0 := time.Now()
			seedTable(b, url, files)
			seeded := time.Since(t0)
			t0 = time.Now()
			rss[i] = max(rss[i], run(url, fmt.Sprintf("g%d-%d", iter, files)))
			b.Logf("%d files: seeded in %v, ingest took %v, peak RSS %.1f MiB", files, seeded.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond), rss[i])
			if got := committedRecords(b, url); got != n {
				b.Fatalf("%s: %d records committed; want %d", url, got, n)
			}
		}
	}
	b.ReportMetric(rss[0], "rss_empty_MiB")
	b.ReportMetric(rss[1], "rss_medium_MiB")
	b.ReportMetric(rss[2], "rss_large_MiB")
	b.ReportMetric(rss[2]/rss[1], "large/medium")
	b.ReportMetric(rss[2]/rss[0], "large/empty")
	b.ReportMetric(float64(sizes[2]), "large_table_files")
}

// seedTable creates a table with the bench schema and a version 1 whose
// checkpoint lists files live files (synthetic entries with stats; the
// daemon never reads them).
func seedTable(b *testing.B, dir string, files int) {
	b.Helper()
	ctx := context.Background()
	tbl, err := table.Create(ctx, dir, benchSchema(), table.WithProperties(map[string]string{"delta.checkpointInterval": "10"}))
	if err != nil {
		b.Fatal(err)
	}
	defer tbl.Close()
	snap, err := tbl.Snapshot(ctx, table.WithoutFiles())
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UnixMilli()
	ict := max(now, snap.Timestamp().UnixMilli()+1)
	commit := fmt.Sprintf(`{"commitInfo":{"timestamp":%d,"inCommitTimestamp":%d,"operation":"WRITE","isBlindAppend":true,"engineInfo":"kappa-bench"}}`+"\n", now, ict)
	if err := tbl.Store().PutIfAbsent(ctx, txlog.CommitKey(1), []byte(commit)); err != nil {
		b.Fatal(err)
	}
	p, m := snap.Protocol(), snap.Metadata()
	d := txlog.CheckpointData{Protocol: &p, Metadata: &m}
	d.Files = func(yield func(txlog.Action, error) bool) {
		for i := range files {
			a := &txlog.Add{
				Path:             fmt.Sprintf("part-%08d-5f2c7a9e-1b3d-4e8f-9a6b-0c1d2e3f4a5b-c000.snappy.parquet", i),
				PartitionValues:  map[string]*string{},
				Size:             int64(40_000 + i%1000),
				ModificationTime: now - int64(i),
				Stats:            fmt.Sprintf(`{"numRecords":2000,"minValues":{"seq":%d,"device":"device-00000","ts":"2026-11-20T10:00:00.000Z"},"maxValues":{"seq":%d,"device":"device-04999","ts":"2026-11-20T10:05:00.000Z"},"nullCount":{"seq":0,"device":0,"ts":0}}`, i*2000, i*2000+1999),
			}
			if !yield(txlog.Action{Add: a}, nil) {
				return
			}
		}
	}
	if _, err := txlog.WriteCheckpoint(ctx, tbl.Store(), 1, d); err != nil {
		b.Fatal(err)
	}
}

// committedRecords sums numRecords of the files the daemon committed (the
// commits after the seed versions).
func committedRecords(b *testing.B, url string) int {
	b.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	commits, err := txlog.ListCommits(ctx, st, 2, -1)
	if err != nil {
		b.Fatal(err)
	}
	total := 0
	for _, c := range commits {
		data, err := st.Get(ctx, c.Key)
		if err != nil {
			b.Fatal(err)
		}
		actions, err := txlog.ParseCommit(data)
		if err != nil {
			b.Fatal(err)
		}
		for _, a := range actions {
			if a.Add != nil {
				s, err := a.Add.ParsedStats()
				if err != nil || s == nil || s.NumRecords == nil {
					b.Fatalf("%s: add without numRecords", c.Key)
				}
				total += int(*s.NumRecords)
			}
		}
	}
	return total
}
