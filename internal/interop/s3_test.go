//go:build interop

package interop

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kappa-lake/kappa/internal/testutil"
	"github.com/kappa-lake/kappa/reader"
	"github.com/kappa-lake/kappa/table"
	"github.com/kappa-lake/kappa/txlog"
)

// snapshotIDs scans a snapshot and returns how often each id occurs.
func snapshotIDs(ctx context.Context, t *testing.T, snap *table.Snapshot) map[int64]int {
	t.Helper()
	ids := map[int64]int{}
	for r, err := range reader.NewScan(snap, reader.WithColumns("id")).Rows(ctx) {
		if err != nil {
			t.Fatalf("scan version %d: %v", snap.Version(), err)
		}
		v, _ := r.Get("id")
		id, _ := v.(int64)
		ids[id]++
	}
	return ids
}

// TestS3 runs a table on a real S3 server (versitygw on loopback): create,
// appends past a checkpoint, time travel by version and timestamp, then 4
// concurrent `kappa append` processes racing on the same log.
func TestS3(t *testing.T) {
	ctx := t.Context()
	base := testutil.StartS3(t)
	url := testutil.S3URL(testutil.S3Addr(t, base), "interop/t1")
	schema := &txlog.StructType{Fields: []*txlog.StructField{
		field("id", prim(txlog.TypeLong)),
		field("writer", prim(txlog.TypeInteger)),
		field("ts", prim(txlog.TypeTimestamp)),
		field("part", prim(txlog.TypeString)),
	}}
	tbl, err := table.Create(ctx, url, schema, table.WithPartitionColumns("part"))
	if err != nil {
		t.Fatalf("create on s3: %v", err)
	}
	defer tbl.Close()

	// appends with distinct commit times
	const appends, per = 12, 50
	times := map[int64]time.Time{}
	cum := map[int64]int{0: 0}
	next := int64(0)
	s0, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	times[0] = s0.Timestamp()
	for k := range appends {
		time.Sleep(40 * time.Millisecond) // distinct commit times for timestamp travel
		rows := make([]map[string]any, per)
		for j := range rows {
			rows[j] = map[string]any{
				"id": next, "writer": int32(-1), "ts": time.UnixMicro(next * 1_000_003).UTC(),
				"part": []string{"a", "b", "c"}[int(next)%3],
			}
			next++
		}
		v, err := tbl.Append(ctx, rows)
		if err != nil {
			t.Fatalf("append %d on s3: %v", k, err)
		}
		s, err := tbl.Snapshot(ctx, table.AtVersion(v))
		if err != nil {
			t.Fatal(err)
		}
		times[v] = s.Timestamp()
		cum[v] = int(next)
	}
	versionsChecked := 0
	for v, n := range cum {
		snap, err := tbl.Snapshot(ctx, table.AtVersion(v))
		if err != nil {
			t.Fatalf("s3 version %d: %v", v, err)
		}
		if got := len(snapshotIDs(ctx, t, snap)); got != n {
			t.Errorf("s3 version %d: %d rows, want %d", v, got, n)
		}
		versionsChecked++
		if nt, ok := times[v+1]; ok {
			mid := times[v].Add(nt.Sub(times[v]) / 2)
			as, err := tbl.Snapshot(ctx, table.AsOf(mid))
			if err != nil {
				t.Fatalf("s3 as of %s: %v", mid, err)
			}
			if as.Version() != v {
				t.Errorf("s3 as of %s: version %d, want %d", mid, as.Version(), v)
			}
			versionsChecked++
		}
	}
	if _, err := tbl.Snapshot(ctx, table.AsOf(times[0].Add(-time.Hour))); err == nil {
		t.Errorf("s3: as of an hour before the table existed: no error")
	}
	record("s3", "versitygw: create, appends, time travel", fmt.Sprintf("%d versions/timestamps", versionsChecked), passFail(!t.Failed()))

	// 4 concurrent writer processes, 6 appends each
	const writers, each, rowsPer = 4, 6, 25
	dir := t.TempDir()
	startV := int64(appends)
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for k := range each {
				var b strings.Builder
				for j := range rowsPer {
					id := 1_000_000 + int64(w)*100_000 + int64(k)*1000 + int64(j)
					fmt.Fprintf(&b, `{"id":%d,"writer":%d,"ts":"2025-01-02T03:04:05.%06dZ","part":"w%d"}`+"\n", id, w, j, w)
				}
				f := filepath.Join(dir, fmt.Sprintf("w%d-%d.jsonl", w, k))
				if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
					errs <- err
					return
				}
				cmd := exec.CommandContext(ctx, kappaBin, "append", url, f)
				if out, err := cmd.CombinedOutput(); err != nil {
					errs <- fmt.Errorf("writer %d append %d: %w: %s", w, k, err, out)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	tbl2, err := table.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl2.Close()
	snap, err := tbl2.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := startV + writers*each; snap.Version() != want {
		t.Errorf("after %d concurrent appends the table is at version %d, want %d", writers*each, snap.Version(), want)
	}
	ids := snapshotIDs(ctx, t, snap)
	lost, dups := 0, 0
	for w := range writers {
		for k := range each {
			for j := range rowsPer {
				id := 1_000_000 + int64(w)*100_000 + int64(k)*1000 + int64(j)
				switch ids[id] {
				case 0:
					lost++
				case 1:
				default:
					dups++
				}
			}
		}
	}
	for id := range next {
		if ids[id] != 1 {
			lost++
		}
	}
	if lost+dups > 0 {
		t.Errorf("s3 concurrent writers: %d rows lost, %d duplicated", lost, dups)
	}
	// every commit in between must be readable (contiguous log, no partial commit)
	for v := startV + 1; v <= snap.Version(); v++ {
		if _, err := tbl2.Snapshot(ctx, table.AtVersion(v)); err != nil {
			t.Errorf("s3 version %d: %v", v, err)
		}
	}
	record("s3", "versitygw: 4 concurrent kappa append processes",
		fmt.Sprintf("%d commits, %d rows, %d lost, %d dup", writers*each, len(ids), lost, dups), passFail(!t.Failed()))
}
