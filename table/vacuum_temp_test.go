package table_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kappa-lake/kappa/internal/store"
	"github.com/kappa-lake/kappa/table"
)

// TestVacuumSweepsTempFiles: temporary files a writer killed mid-publish
// left in the log and data directories (invisible to listings) are removed
// by vacuum once older than the retention; recent ones, which may belong to
// a running write, are kept; a dry run only lists them.
func TestVacuumSweepsTempFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tbl := newTable(t, dir)
	old := time.Now().Add(-30 * 24 * time.Hour)
	oldLog := "_delta_log/" + store.TempPrefix + "1a2b"
	oldData := "p=1/" + store.TempPrefix + "3c4d"
	recent := "p=2/" + store.TempPrefix + "5e6f"
	writeFile(t, dir, oldLog, old)
	writeFile(t, dir, oldData, old)
	writeFile(t, dir, recent, time.Now())

	dry, err := tbl.Vacuum(ctx, table.VacuumOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{oldLog, oldData}; !slices.Equal(dry.TempFiles, sorted(want)) {
		t.Fatalf("dry run temp files %v, want %v", dry.TempFiles, sorted(want))
	}
	if !exists(dir, oldLog) || !exists(dir, oldData) {
		t.Fatal("dry run deleted temporary files")
	}
	res, err := tbl.Vacuum(ctx, table.VacuumOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.TempFiles) != 2 || exists(dir, oldLog) || exists(dir, oldData) {
		t.Fatalf("vacuum removed %v; old temp files still there: log %v data %v", res.TempFiles, exists(dir, oldLog), exists(dir, oldData))
	}
	if !exists(dir, recent) {
		t.Fatal("vacuum removed a recent temporary file (a write may still be running)")
	}
	// The table is intact.
	if _, err := os.Stat(filepath.Join(dir, "_delta_log", "00000000000000000000.json")); err != nil {
		t.Fatal(err)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
