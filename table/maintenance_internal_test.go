package table

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/kappa-lake/kappa/internal/testutil"
)

// Every "u" deletion vector of a Spark table must map to a file that exists:
// Vacuum keeps exactly those paths.
func TestDVRelPathMatchesSparkFiles(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"dv-partitioned-with-checkpoint", "dv-with-columnmapping"} {
		dir := testutil.Testdata(t, "delta-golden", name, "delta")
		tbl, err := Open(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		s, err := tbl.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, a := range s.Files() {
			dv := a.DeletionVector
			if dv == nil || dv.StorageType != "u" {
				continue
			}
			rel, ok := dvRelPath(dv.PathOrInlineDv)
			if !ok {
				t.Fatalf("%s: cannot decode %q", name, dv.PathOrInlineDv)
			}
			if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(rel))); err != nil {
				t.Fatalf("%s: DV %q maps to missing file %s", name, dv.PathOrInlineDv, rel)
			}
			n++
		}
		if n == 0 {
			t.Fatalf("%s: no uuid deletion vectors among live files", name)
		}
	}
	if _, ok := dvRelPath("short"); ok {
		t.Fatal("decoded a short id")
	}
}

func TestHiddenKey(t *testing.T) {
	for key, want := range map[string]bool{
		"_delta_log/00000000000000000000.json": true,
		"part-0.parquet":                       false,
		"a=1/part-0.parquet":                   false,
		"_a=1/part-0.parquet":                  false,
		"_change_data/x.parquet":               true,
		"a/.hidden":                            true,
		".tmp/x":                               true,
		"_x":                                   true,
	} {
		if got := hiddenKey(key); got != want {
			t.Errorf("hiddenKey(%q) = %v; want %v", key, got, want)
		}
	}
}
