package reader

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kappa-lake/kappa/internal/testutil"
	"github.com/kappa-lake/kappa/txlog"

	"github.com/kappa-lake/kappa/table"
)

// openGoldenSource loads a table's snapshot (version -1 = latest) through
// the table engine.
func openGoldenSource(t *testing.T, dir string, version int64) source {
	t.Helper()
	ctx := context.Background()
	tbl, err := table.Open(ctx, dir)
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	var opts []table.SnapshotOption
	if version >= 0 {
		opts = append(opts, table.AtVersion(version))
	}
	snap, err := tbl.Snapshot(ctx, opts...)
	if err != nil {
		t.Fatalf("snapshot %s: %v", dir, err)
	}
	return NewScan(snap).src
}

// statsRows is the row count the log claims for a snapshot: the sum of
// numRecords over live files minus deletion vector cardinalities.
func statsRows(t *testing.T, snap *table.Snapshot) (int64, bool) {
	var n int64
	for _, a := range snap.Files() {
		st, err := a.ParsedStats()
		if err != nil || st == nil || st.NumRecords == nil {
			return 0, false
		}
		n += *st.NumRecords
		if a.DeletionVector != nil {
			n -= a.DeletionVector.Cardinality
		}
	}
	return n, true
}

// TestTimeTravelVersions scans every reconstructable version of the
// time-travel-* and snapshot-data* tables: the latest matches expected/
// (TestGoldenTables); each older version must yield the row count its log
// records (numRecords of live files), and the changes between consecutive
// versions must add up.
func TestTimeTravelVersions(t *testing.T) {
	root := testutil.Testdata(t, "delta-golden")
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, "time-travel-") && !strings.HasPrefix(name, "snapshot-data") {
			continue
		}
		t.Run(name, func(t *testing.T) {
			tbl, err := table.Open(ctx, filepath.Join(root, name, "delta"))
			if err != nil {
				t.Fatal(err)
			}
			latest, err := tbl.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			prevRows := int64(-1)
			for v := int64(0); v <= latest.Version(); v++ {
				snap, err := tbl.Snapshot(ctx, table.AtVersion(v))
				if errors.Is(err, txlog.ErrVersionNotFound) {
					continue
				}
				if err != nil {
					t.Fatalf("version %d: %v", v, err)
				}
				rows := int64(len(scanRows(t, NewScan(snap))))
				if want, ok := statsRows(t, snap); ok && rows != want {
					t.Errorf("version %d: %d rows, log says %d", v, rows, want)
				}
				if prevRows >= 0 {
					cs, err := Changes(ctx, tbl, v-1, v)
					if err != nil {
						t.Fatalf("changes %d..%d: %v", v-1, v, err)
					}
					added := int64(len(scanRows(t, cs.Scan())))
					if len(cs.Removed) == 0 && prevRows+added != rows {
						t.Errorf("version %d: %d rows at v-1 + %d added != %d", v, prevRows, added, rows)
					}
				}
				prevRows = rows
				t.Logf("version %d: %d rows", v, rows)
			}
		})
	}
}

func TestChangesRange(t *testing.T) {
	ctx := context.Background()
	tbl, err := table.Open(ctx, testutil.Testdata(t, "delta-golden", "time-travel-start-start20-start40", "delta"))
	if err != nil {
		t.Fatal(err)
	}
	s0, err := tbl.Snapshot(ctx, table.AtVersion(0))
	if err != nil {
		t.Fatal(err)
	}
	s2, err := tbl.Snapshot(ctx, table.AtVersion(2))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := Changes(ctx, tbl, 0, 2, WithColumns(s2.Schema().Fields[0].Name))
	if err != nil {
		t.Fatal(err)
	}
	if cs.FromVersion != 0 || cs.ToVersion != 2 || len(cs.Added) != s2.NumFiles()-s0.NumFiles() {
		t.Errorf("changes: from %d to %d, %d added; files v0 %d v2 %d", cs.FromVersion, cs.ToVersion, len(cs.Added), s0.NumFiles(), s2.NumFiles())
	}
	got := len(scanRows(t, cs.Scan()))
	want := len(scanRows(t, NewScan(s2))) - len(scanRows(t, NewScan(s0)))
	if got != want {
		t.Errorf("changes scan: %d rows, want %d", got, want)
	}
	if _, err := Changes(ctx, tbl, 5, 2); err == nil {
		t.Error("from > to: want error")
	}
}
