package reader

import (
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kappa-lake/kappa/table"
	"github.com/kappa-lake/kappa/txlog"
)

const viewSQL = `SELECT user, date_trunc('day', ts) AS d, count(*) AS n, count(amount) AS na, sum(amount) AS total,
	avg(qty) AS avg_qty, sum(price) AS revenue, min(ts) AS first, max(price) AS top, count(DISTINCT kind) AS kinds,
	approx_count_distinct(id) AS ids
	FROM events WHERE kind IS NOT NULL OR amount > 50
	GROUP BY user, d HAVING count(*) > 0 ORDER BY n DESC, user NULLS FIRST, d`

func resultStrings(res *Result) []string {
	out := make([]string, len(res.Rows))
	for i, r := range res.Rows {
		out[i] = canonRow(r)
	}
	return out
}

// fullAt is the reference: the same SQL as a query on the source version.
func fullAt(t *testing.T, src string, v int64, sql string) []string {
	t.Helper()
	res, err := Query(context.Background(), sql, WithTable("events", src),
		WithTableOptions(), WithQueryWorkers(1), withVersion(v))
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != v {
		t.Fatalf("reference read version %d, want %d", res.Version, v)
	}
	return resultStrings(res)
}

// withVersion pins the bound table to a version (test helper).
func withVersion(v int64) QueryOption {
	return func(c *queryConfig) {
		u := c.tables["events"]
		tbl, err := table.Open(context.Background(), u)
		if err != nil {
			return
		}
		snap, err := tbl.Snapshot(context.Background(), table.AtVersion(v))
		if err != nil {
			return
		}
		c.snaps["events"] = snap
	}
}

func showStrings(t *testing.T, view string, fresh bool) ([]string, int64) {
	t.Helper()
	res, err := ShowView(context.Background(), view, fresh, nil)
	if err != nil {
		t.Fatal(err)
	}
	return resultStrings(res), res.Version
}

func TestViewIncrementalEqualsFull(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	src, view := filepath.Join(root, "events"), filepath.Join(root, "view")
	tbl := eventsTable(t, src, 11, 1, 50)
	res, err := CreateView(ctx, view, src, viewSQL, RefreshOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Mode != "full" || res.ToVersion != 1 {
		t.Fatalf("create: %+v", res)
	}
	r := rand.New(rand.NewPCG(5, 5))
	id := 1000
	for step := 0; step < 8; step++ {
		// 1-3 appends between refreshes, some with late events
		for k := 0; k <= r.IntN(3); k++ {
			rows := genEvents(r, id, 1+r.IntN(40), r.IntN(2) == 0)
			id += len(rows)
			if _, err := tbl.Append(ctx, rows, table.WithRowGroupRows(16)); err != nil {
				t.Fatal(err)
			}
		}
		snap, err := tbl.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		latest := snap.Version()
		want := fullAt(t, src, latest, viewSQL)
		if len(want) < 5 {
			t.Fatalf("reference has only %d groups", len(want))
		}
		// fresh serving before the refresh already gives the latest answer
		got, v := showStrings(t, view, true)
		if v != latest || !slices.Equal(got, want) {
			t.Fatalf("step %d: fresh show at %d differs from full recompute at %d:\n got  %q\n want %q", step, v, latest, got[:min(3, len(got))], want[:min(3, len(want))])
		}
		rr, err := RefreshView(ctx, view, RefreshOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if rr.Mode != "incremental" || rr.ToVersion != latest {
			t.Fatalf("step %d: refresh %+v", step, rr)
		}
		got, v = showStrings(t, view, false)
		if v != latest || !slices.Equal(got, want) {
			t.Fatalf("step %d: incremental view at %d differs from full recompute:\n got  %q\n want %q", step, v, got, want)
		}
		// and the view at each earlier covered version stays what it was
		st, err := ViewStatus(ctx, view)
		if err != nil {
			t.Fatal(err)
		}
		if st.CoveredVersion != latest || st.LagVersions != 0 {
			t.Fatalf("status %+v", st)
		}
	}
	// full recompute at an old version, then incremental catch-up
	v2 := int64(2)
	rr, err := RefreshView(ctx, view, RefreshOptions{Full: true, Version: &v2})
	if err != nil {
		t.Fatal(err)
	}
	if rr.Mode != "full" || rr.ToVersion != 2 {
		t.Fatalf("full at 2: %+v", rr)
	}
	if got, _ := showStrings(t, view, false); !slices.Equal(got, fullAt(t, src, 2, viewSQL)) {
		t.Fatal("full recompute at version 2 differs from the query at version 2")
	}
	st, err := ViewStatus(ctx, view)
	if err != nil {
		t.Fatal(err)
	}
	if st.CoveredVersion != 2 || st.LagVersions != st.SourceVersion-2 {
		t.Fatalf("status after replay: %+v", st)
	}
	rr, err = RefreshView(ctx, view, RefreshOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := showStrings(t, view, false)
	if rr.Mode != "incremental" || !slices.Equal(got, fullAt(t, src, rr.ToVersion, viewSQL)) {
		t.Fatalf("catch-up after replay: %+v", rr)
	}
}

func TestViewCrashAndRepeat(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	src, view := filepath.Join(root, "events"), filepath.Join(root, "view")
	tbl := eventsTable(t, src, 12, 2, 40)
	if _, err := CreateView(ctx, view, src, viewSQL, RefreshOptions{}); err != nil {
		t.Fatal(err)
	}
	before, _ := showStrings(t, view, false)
	if _, err := tbl.Append(ctx, genEvents(rand.New(rand.NewPCG(1, 2)), 5000, 30, true)); err != nil {
		t.Fatal(err)
	}
	// crash between writing the state files and committing
	cctx, cancel := context.WithCancel(ctx)
	_, err := RefreshView(cctx, view, RefreshOptions{beforeCommit: func(context.Context) error {
		cancel()
		return cctx.Err()
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("crashed refresh: %v", err)
	}
	if got, v := showStrings(t, view, false); !slices.Equal(got, before) || v != 2 {
		t.Fatalf("view changed by a crashed refresh (covers %d)", v)
	}
	rr, err := RefreshView(ctx, view, RefreshOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rr2, err := RefreshView(ctx, view, RefreshOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rr.Mode != "incremental" || rr2.Mode != "up-to-date" || rr2.ViewVersion != rr.ViewVersion {
		t.Fatalf("refresh then repeat: %+v / %+v", rr, rr2)
	}
	if got, _ := showStrings(t, view, false); !slices.Equal(got, fullAt(t, src, 3, viewSQL)) {
		t.Fatal("view after crash + refresh differs from the full recompute")
	}
}

func TestViewFallsBackOnRemoves(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	src, view := filepath.Join(root, "events"), filepath.Join(root, "view")
	tbl := eventsTable(t, src, 13, 3, 30)
	if _, err := CreateView(ctx, view, src, viewSQL, RefreshOptions{}); err != nil {
		t.Fatal(err)
	}
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := snap.NewTransaction()
	if err != nil {
		t.Fatal(err)
	}
	f := snap.Files()[0]
	now := time.Now().UnixMilli()
	tx.RemoveFiles(&txlog.Remove{Path: f.Path, DataChange: true, DeletionTimestamp: &now, PartitionValues: f.PartitionValues})
	tx.SetOperation("DELETE", nil)
	v, err := tx.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.Append(ctx, genEvents(rand.New(rand.NewPCG(3, 3)), 9000, 20, false)); err != nil {
		t.Fatal(err)
	}
	got, _ := showStrings(t, view, true)
	if want := fullAt(t, src, v+1, viewSQL); !slices.Equal(got, want) {
		t.Fatal("fresh show after a delete differs from the full recompute")
	}
	rr, err := RefreshView(ctx, view, RefreshOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rr.Mode != "full" || !strings.Contains(rr.Reason, "removed data") {
		t.Fatalf("refresh after a delete: %+v", rr)
	}
	if got, _ := showStrings(t, view, false); !slices.Equal(got, fullAt(t, src, v+1, viewSQL)) {
		t.Fatal("view after fallback differs from the full recompute")
	}
}

func TestViewRefusesPlainSelect(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	src := filepath.Join(root, "events")
	eventsTable(t, src, 14, 1, 5)
	_, err := CreateView(ctx, filepath.Join(root, "v"), src, "SELECT id, user FROM events", RefreshOptions{})
	if !errors.Is(err, ErrSQL) || !strings.Contains(err.Error(), "must aggregate") {
		t.Fatalf("plain select view: %v", err)
	}
	_, err = CreateView(ctx, filepath.Join(root, "v"), src, "SELECT count(*) FROM events VERSION AS OF 0", RefreshOptions{})
	if !errors.Is(err, ErrSQL) {
		t.Fatalf("time travel view: %v", err)
	}
}
