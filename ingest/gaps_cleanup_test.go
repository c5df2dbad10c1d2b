package ingest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kappa-lake/kappa/table"
	"github.com/kappa-lake/kappa/txlog"
)

// logFiles lists the table's _delta_log commits and checkpoints by version.
func logFiles(t testing.TB, url string) (commits, checkpoints []int64) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(url, "_delta_log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		f, ok := txlog.ParseLogFile("_delta_log/" + e.Name())
		if !ok {
			continue
		}
		switch f.Kind {
		case txlog.KindCommit:
			commits = append(commits, f.Version)
		case txlog.KindCheckpoint, txlog.KindMultiPartCheckpoint, txlog.KindV2Checkpoint:
			checkpoints = append(checkpoints, f.Version)
		}
	}
	slices.Sort(commits)
	slices.Sort(checkpoints)
	return commits, slices.Compact(checkpoints)
}

// TestGapsCleanupLog: with CleanupLog, a checkpoint interval of 2 and a
// one-day log retention, commit files older than the retention are removed
// after the daemon's checkpoints, the table stays readable, and a restart
// still resumes exactly once from the offsets kept in the checkpoint.
//
// The daemon opens its tables itself (no clock option reaches them), so the
// log is aged for real: between runs the modification times of the existing
// log files are set three days back, which is what CleanupLog reads.
func TestGapsCleanupLog(t *testing.T) {
	brokers := startBroker(t, 2, "aged")
	url := filepath.Join(t.TempDir(), "aged")
	w := newProducer(brokers, "aged")
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	base := testOptions(t, brokers, url, "aged")
	schema := &txlog.StructType{Fields: append(testSchema().Fields, metadataFields(base.Metadata, nil)...)}
	tbl, err := table.Create(ctx, url, schema, table.WithProperties(map[string]string{
		table.PropCheckpointInterval:   "2",
		table.PropLogRetentionDuration: "interval 1 day",
	}))
	if err != nil {
		t.Fatal(err)
	}
	_ = tbl.Close()

	run := func(n int) {
		t.Helper()
		o := testOptions(t, brokers, url, "aged")
		o.Create = false
		o.CleanupLog = true
		o.UntilEnd = true
		o.FlushRows = 40
		o.FlushInterval = time.Hour // commit by rows (and at the end) only
		rctx, rcancel := context.WithTimeout(ctx, 15*time.Second)
		defer rcancel()
		if err := Run(rctx, o); err != nil {
			t.Fatalf("run %d: %v", n, err)
		}
	}

	// Run 1: fresh log, nothing is old enough to go.
	produceJSON(t, w, 0, 200)
	run(1)
	commits, ckpts := logFiles(t, url)
	if len(commits) < 5 || commits[0] != 0 || len(ckpts) < 2 {
		t.Fatalf("after run 1: commits %v, checkpoints %v; want >= 5 commits from 0 and >= 2 checkpoints", commits, ckpts)
	}
	lastOld := commits[len(commits)-1]
	keep := int64(-1) // newest checkpoint among the files about to expire
	for _, v := range ckpts {
		if v <= lastOld {
			keep = v
		}
	}
	checkExactlyOnce(t, url, 200, "test", "aged")

	// Age every log file written so far beyond the retention.
	old := time.Now().Add(-72 * time.Hour)
	ents, err := os.ReadDir(filepath.Join(url, "_delta_log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if err := os.Chtimes(filepath.Join(url, "_delta_log", e.Name()), old, old); err != nil {
			t.Fatal(err)
		}
	}

	// Run 2: its commits at checkpoint versions trigger the cleanup.
	produceJSON(t, w, 200, 400)
	run(2)
	commits, ckpts = logFiles(t, url)
	t.Logf("after run 2: commits %d..%d, checkpoints %v (expired up to v%d, kept checkpoint v%d)", commits[0], commits[len(commits)-1], ckpts, lastOld, keep)
	if commits[0] != keep {
		t.Errorf("log starts at commit %d, want %d (the newest checkpoint at or before the last expired commit %d)", commits[0], keep, lastOld)
	}
	if ckpts[0] != keep {
		t.Errorf("oldest checkpoint %d, want %d", ckpts[0], keep)
	}
	for i := 1; i < len(commits); i++ {
		if commits[i] != commits[i-1]+1 {
			t.Fatalf("commits not contiguous: %v", commits)
		}
	}
	checkExactlyOnce(t, url, 400, "test", "aged")

	// Versions before the kept checkpoint are gone; the kept one is readable.
	tbl, err = table.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Close()
	if _, err := tbl.Snapshot(ctx, table.AtVersion(keep-1)); !errors.Is(err, txlog.ErrVersionNotFound) {
		t.Errorf("snapshot at cleaned version %d: err = %v, want ErrVersionNotFound", keep-1, err)
	}
	if _, err := tbl.Snapshot(ctx, table.AtVersion(keep)); err != nil {
		t.Errorf("snapshot at kept checkpoint %d: %v", keep, err)
	}

	// Run 3 after the cleanup: offsets come from the checkpoint and the
	// commits after it.
	produceJSON(t, w, 400, 500)
	run(3)
	checkExactlyOnce(t, url, 500, "test", "aged")
}
