package table_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kappa-lake/kappa/table"
	"github.com/kappa-lake/kappa/txlog"
)

func writeFile(t *testing.T, dir, rel string, mtime time.Time) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func exists(dir, rel string) bool {
	_, err := os.Stat(filepath.Join(dir, filepath.FromSlash(rel)))
	return err == nil
}

func TestVacuum(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	now := time.Now()
	clock := &stepClock{now: now.Add(-30 * 24 * time.Hour)}
	tbl := newTable(t, dir, table.WithClock(clock.Now))
	old := now.Add(-20 * 24 * time.Hour)
	for _, f := range []string{
		"live.parquet", "removed-old.parquet", "removed-recent.parquet", "orphan-old.parquet",
		"sub/dir/orphan.parquet", "_hidden/x.parquet", ".tmp.parquet", "_underscore.parquet", "_p=1/orphan.parquet",
	} {
		writeFile(t, dir, f, old)
	}
	writeFile(t, dir, "orphan-new.parquet", now)
	commitAdds(t, tbl, "live.parquet", "removed-old.parquet", "removed-recent.parquet")
	tx, _ := tbl.NewTransaction(ctx)
	tx.RemoveFiles(&txlog.Remove{Path: "removed-old.parquet", DataChange: true, DeletionTimestamp: ptr(old.UnixMilli())})
	tx.RemoveFiles(&txlog.Remove{Path: "removed-recent.parquet", DataChange: true, DeletionTimestamp: ptr(now.Add(-time.Hour).UnixMilli())})
	if _, err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	clock.Set(now)

	if _, err := tbl.Vacuum(ctx, table.VacuumOptions{Retention: time.Hour}); !errors.Is(err, table.ErrInvalidArgument) {
		t.Fatalf("short retention: %v; want refusal", err)
	}
	var progress []table.VacuumProgress
	dry, err := tbl.Vacuum(ctx, table.VacuumOptions{DryRun: true, Progress: func(p table.VacuumProgress) { progress = append(progress, p) }})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"_p=1/orphan.parquet", "orphan-old.parquet", "removed-old.parquet", "sub/dir/orphan.parquet"}
	if !slices.Equal(dry.Files, want) {
		t.Fatalf("dry run would delete %v; want %v", dry.Files, want)
	}
	if len(progress) == 0 || !progress[len(progress)-1].Done {
		t.Fatalf("progress %v", progress)
	}
	if !exists(dir, "orphan-old.parquet") {
		t.Fatal("dry run deleted")
	}
	res, err := tbl.Vacuum(ctx, table.VacuumOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Files, want) {
		t.Fatalf("deleted %v; want %v", res.Files, want)
	}
	for _, f := range want {
		if exists(dir, f) {
			t.Fatalf("%s still there", f)
		}
	}
	for _, f := range []string{
		"live.parquet", "removed-recent.parquet", "orphan-new.parquet", "_hidden/x.parquet",
		".tmp.parquet", "_underscore.parquet", "_delta_log/00000000000000000000.json",
	} {
		if !exists(dir, f) {
			t.Fatalf("%s was deleted", f)
		}
	}
	// Force allows a short retention: the recent tombstone goes too.
	res, err = tbl.Vacuum(ctx, table.VacuumOptions{Retention: time.Minute, Force: true})
	if err != nil || !slices.Contains(res.Files, "removed-recent.parquet") {
		t.Fatalf("forced vacuum: %v %v", res.Files, err)
	}
}

func TestCleanupLog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tbl := newTable(t, dir)
	for i := range 24 {
		commitAdds(t, tbl, fmt.Sprintf("f%d.parquet", i))
	}
	now := time.Now()
	// Versions 0..15 are 40 days old, the rest recent.
	for v := range 25 {
		mt := now
		if v <= 15 {
			mt = now.Add(-40*24*time.Hour + time.Duration(v)*time.Minute)
		}
		p := filepath.Join(dir, "_delta_log", fmt.Sprintf("%020d.json", v))
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	res, err := tbl.CleanupLog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The newest expired commit is 15; the newest checkpoint at or before
	// it is 10: everything before 10 goes.
	if res.KeptCheckpoint != 10 || len(res.Deleted) != 10 {
		t.Fatalf("kept checkpoint %d, deleted %v", res.KeptCheckpoint, res.Deleted)
	}
	if exists(dir, "_delta_log/00000000000000000009.json") || !exists(dir, "_delta_log/00000000000000000010.json") ||
		!exists(dir, "_delta_log/00000000000000000010.checkpoint.parquet") {
		t.Fatal("wrong files deleted")
	}
	if _, err := tbl.Snapshot(ctx, table.AtVersion(9)); !errors.Is(err, txlog.ErrVersionNotFound) {
		t.Fatalf("version 9: %v", err)
	}
	for _, v := range []int64{10, 17, 24} {
		s, err := tbl.Snapshot(ctx, table.AtVersion(v))
		if err != nil || s.NumFiles() != int(v) {
			t.Fatalf("version %d: %v", v, err)
		}
	}
	fresh, err := table.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	snap, _ := fresh.Snapshot(ctx)
	if snap.Version() != 24 || snap.NumFiles() != 24 {
		t.Fatalf("after cleanup: version %d files %d", snap.Version(), snap.NumFiles())
	}
}

func TestParseInterval(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"interval 30 days":         30 * 24 * time.Hour,
		"interval 1 week":          7 * 24 * time.Hour,
		"INTERVAL 2 HOURS":         2 * time.Hour,
		"interval 1 day 12 hours":  36 * time.Hour,
		"interval 0 seconds":       0,
		"168h":                     168 * time.Hour,
		"interval 10 milliseconds": 10 * time.Millisecond,
	} {
		got, err := table.ParseInterval(in)
		if err != nil || got != want {
			t.Errorf("ParseInterval(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "interval", "interval x days", "interval 1 month", "interval -1 days", "30"} {
		if _, err := table.ParseInterval(in); !errors.Is(err, table.ErrInvalidArgument) {
			t.Errorf("ParseInterval(%q) accepted", in)
		}
	}
	cfg, err := table.ParseConfig(map[string]string{
		table.PropCheckpointInterval:           "5",
		table.PropDeletedFileRetentionDuration: "interval 2 days",
		table.PropEnableInCommitTimestamps:     "true",
		table.PropICTEnablementVersion:         "7",
	})
	if err != nil || cfg.CheckpointInterval != 5 || cfg.DeletedFileRetentionDuration != 48*time.Hour ||
		cfg.LogRetentionDuration != table.DefaultLogRetentionDuration || !cfg.InCommitTimestamps || cfg.ICTEnablementVersion != 7 {
		t.Fatalf("config %+v, %v", cfg, err)
	}
	if _, err := table.ParseConfig(map[string]string{table.PropAppendOnly: "maybe"}); !errors.Is(err, table.ErrInvalidArgument) {
		t.Fatalf("bad bool accepted: %v", err)
	}
}
