package table_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kappa-lake/kappa/internal/store"
	"github.com/kappa-lake/kappa/internal/testutil"
	"github.com/kappa-lake/kappa/table"
	"github.com/kappa-lake/kappa/txlog"
)

// Spark's generator wrote time-travel-start* one commit each at these times.
var ttBase = time.UnixMilli(1540415658000)

func TestAsOfFileTimes(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		commits int
	}{
		{"time-travel-start", 1},
		{"time-travel-start-start20", 2},
		{"time-travel-start-start20-start40", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := testutil.CopyDir(t, testutil.Testdata(t, "delta-golden", tc.name, "delta"))
			for v := range tc.commits {
				mt := ttBase.Add(time.Duration(v) * 20 * time.Minute)
				if err := os.Chtimes(filepath.Join(dir, "_delta_log", fmt.Sprintf("%020d.json", v)), mt, mt); err != nil {
					t.Fatal(err)
				}
			}
			tbl, err := table.Open(ctx, dir)
			if err != nil {
				t.Fatal(err)
			}
			last := int64(tc.commits - 1)
			cases := []struct {
				at   time.Duration
				want int64
			}{
				{0, 0},
				{10 * time.Minute, 0},
				{20*time.Minute - time.Millisecond, 0},
				{20 * time.Minute, min(1, last)},
				{39 * time.Minute, min(1, last)},
				{40 * time.Minute, min(2, last)},
				{50 * time.Hour, last}, // after the latest commit: the latest
			}
			for _, c := range cases {
				snap, err := tbl.Snapshot(ctx, table.AsOf(ttBase.Add(c.at)))
				if err != nil {
					t.Fatalf("as of +%s: %v", c.at, err)
				}
				if snap.Version() != c.want {
					t.Fatalf("as of +%s: version %d; want %d", c.at, snap.Version(), c.want)
				}
			}
			_, err = tbl.Snapshot(ctx, table.AsOf(ttBase.Add(-time.Millisecond)))
			if !errors.Is(err, txlog.ErrVersionNotFound) || !strings.Contains(err.Error(), fmt.Sprintf("0..%d", last)) {
				t.Fatalf("before the first commit: %v; want ErrVersionNotFound naming 0..%d", err, last)
			}
			s0, _ := tbl.Snapshot(ctx, table.AtVersion(0))
			if !s0.Timestamp().Equal(ttBase) {
				t.Fatalf("timestamp of version 0: %v", s0.Timestamp())
			}
		})
	}
}

func TestAsOfEqualFileTimes(t *testing.T) {
	// Equal mtimes count as strictly increasing: +1 ms each.
	ctx := context.Background()
	dir := testutil.CopyDir(t, testutil.Testdata(t, "delta-golden", "time-travel-start-start20-start40", "delta"))
	for v := range 3 {
		p := filepath.Join(dir, "_delta_log", fmt.Sprintf("%020d.json", v))
		if err := os.Chtimes(p, ttBase, ttBase); err != nil {
			t.Fatal(err)
		}
	}
	tbl, err := table.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	for ms, want := range []int64{0, 1, 2, 2} {
		v, err := tbl.VersionAsOf(ctx, ttBase.Add(time.Duration(ms)*time.Millisecond))
		if err != nil || v != want {
			t.Fatalf("+%d ms: %d, %v; want %d", ms, v, err, want)
		}
	}
}

func TestAsOfInCommitTimestamps(t *testing.T) {
	// cdc_ict_table: in-commit timestamps from version 0. Version 1's is
	// smaller than version 0's, so it counts as version 0's + 1 ms.
	ctx := context.Background()
	tbl := openFixture(t, "delta-rs", "cdc_ict_table")
	const t0, t2, t3 = 1783874203271, 1783874212175, 1783874213881
	for _, c := range []struct {
		at   int64
		want int64
	}{
		{t0, 0},
		{t0 + 1, 1},
		{t2 - 1, 1},
		{t2, 2},
		{t3 - 1, 2},
		{t3, 3},
		{t3 + 86_400_000, 3},
	} {
		v, err := tbl.VersionAsOf(ctx, time.UnixMilli(c.at))
		if err != nil || v != c.want {
			t.Fatalf("as of %d: %d, %v; want %d", c.at, v, err, c.want)
		}
	}
	_, err := tbl.Snapshot(ctx, table.AsOf(time.UnixMilli(t0-1)))
	if !errors.Is(err, txlog.ErrVersionNotFound) || !strings.Contains(err.Error(), "0..3") {
		t.Fatalf("before version 0: %v", err)
	}
	snap, err := tbl.Snapshot(ctx, table.AsOf(time.UnixMilli(t2)))
	if err != nil || snap.Version() != 2 || snap.Timestamp().UnixMilli() != t2 {
		t.Fatalf("snapshot as of t2: %v, %v", snap, err)
	}
}

func TestAsOfBinarySearchReads(t *testing.T) {
	// With in-commit timestamps, AsOf reads O(log n) commits, not all.
	ctx := context.Background()
	base, err := store.Open(ctx, memURL())
	if err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{Store: base}
	clock := &stepClock{now: time.UnixMilli(1_800_000_000_000)}
	tbl, err := table.CreateInStore(ctx, cs, testSchema(), table.WithClock(clock.Now), table.WithoutAutoCheckpoint())
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	for i := 1; i <= n; i++ {
		clock.Add(time.Second)
		commitAdds(t, tbl, fmt.Sprintf("f%d.parquet", i))
	}
	// Warm the table's cached snapshot so only the search is counted.
	if _, err := tbl.NewTransaction(ctx); err != nil {
		t.Fatal(err)
	}
	for _, k := range []int64{1, 150, 299} {
		cs.reset()
		at := time.UnixMilli(1_800_000_000_000).Add(time.Duration(k)*time.Second + 500*time.Millisecond)
		v, err := tbl.VersionAsOf(ctx, at)
		if err != nil || v != k {
			t.Fatalf("as of %v: %d, %v; want %d", at, v, err, k)
		}
		if g := cs.gets.Load(); g > 30 {
			t.Fatalf("as of version %d read %d commits (%s); want O(log n)", k, g, cs)
		}
	}
}

func TestHistory(t *testing.T) {
	ctx := context.Background()
	tbl := newTable(t, memURL())
	commitAdds(t, tbl, "a.parquet")
	tx, _ := tbl.NewTransaction(ctx)
	tx.RemoveFiles(&txlog.Remove{Path: "a.parquet", DataChange: true})
	tx.SetOperation("DELETE", map[string]any{"predicate": "[\"true\"]"})
	if _, err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	h, err := tbl.History(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 || h[0].Version != 2 || h[1].Version != 1 {
		t.Fatalf("history %+v", h)
	}
	if h[0].Operation != "DELETE" || string(h[0].OperationParameters["predicate"]) != `"[\"true\"]"` ||
		h[0].IsBlindAppend == nil || *h[0].IsBlindAppend {
		t.Fatalf("entry 2 %+v", h[0])
	}
	if h[1].Operation != "WRITE" || h[1].IsBlindAppend == nil || !*h[1].IsBlindAppend || h[1].EngineInfo != table.EngineInfo ||
		h[1].ReadVersion == nil || *h[1].ReadVersion != 0 {
		t.Fatalf("entry 1 %+v", h[1])
	}
	all, err := tbl.History(ctx, 0)
	if err != nil || len(all) != 3 || all[2].Operation != "CREATE TABLE" {
		t.Fatalf("full history %+v %v", all, err)
	}
	// A Spark table's history.
	ft := openFixture(t, "delta-golden", "deltalog-commit-info", "delta")
	fh, err := ft.History(ctx, 0)
	if err != nil || len(fh) == 0 || fh[0].CommitInfo == nil {
		t.Fatalf("fixture history %+v %v", fh, err)
	}
}
