package txlog

import (
	"context"
	"errors"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kappa-lake/kappa/internal/store"
	"github.com/kappa-lake/kappa/internal/testutil"
)

// countingStore wraps a store and counts requests and listed entries.
type countingStore struct {
	store.Store
	mu         sync.Mutex
	gets       int
	stats      int
	lists      int
	listed     int // entries consumed from listings
	startAfter []string
}

func (c *countingStore) Get(ctx context.Context, key string) ([]byte, error) {
	c.mu.Lock()
	c.gets++
	c.mu.Unlock()
	return c.Store.Get(ctx, key)
}

func (c *countingStore) Stat(ctx context.Context, key string) (store.ObjectInfo, error) {
	c.mu.Lock()
	c.stats++
	c.mu.Unlock()
	return c.Store.Stat(ctx, key)
}

func (c *countingStore) List(ctx context.Context, prefix, startAfter string) iter.Seq2[store.ObjectInfo, error] {
	c.mu.Lock()
	c.lists++
	c.startAfter = append(c.startAfter, startAfter)
	c.mu.Unlock()
	return func(yield func(store.ObjectInfo, error) bool) {
		for info, err := range c.Store.List(ctx, prefix, startAfter) {
			c.mu.Lock()
			c.listed++
			c.mu.Unlock()
			if !yield(info, err) {
				return
			}
		}
	}
}

func openDir(t *testing.T, dir string) store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func openFixture(t *testing.T, elem ...string) store.Store {
	t.Helper()
	return openDir(t, testutil.Testdata(t, elem...))
}

func versions(fs []LogFile) []int64 {
	out := make([]int64, 0, len(fs))
	for _, f := range fs {
		out = append(out, f.Version)
	}
	return out
}

func span(from, to int64) []int64 {
	out := []int64{}
	for v := from; v <= to; v++ {
		out = append(out, v)
	}
	return out
}

func eqInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// wantSegment checks a segment; cpParts is the number of checkpoint files.
func wantSegment(t *testing.T, seg *Segment, err error, version, cpVersion int64, cpParts int, commits []int64, earliest int64) {
	t.Helper()
	if err != nil {
		t.Fatalf("ListSegment: %v", err)
	}
	if seg.Version != version || seg.CheckpointVersion != cpVersion || len(seg.Checkpoint) != cpParts ||
		!eqInts(versions(seg.Commits), commits) || seg.EarliestVersion != earliest {
		t.Fatalf("segment = version %d, checkpoint %d (%d files), commits %v, earliest %d; want %d, %d (%d), %v, %d",
			seg.Version, seg.CheckpointVersion, len(seg.Checkpoint), versions(seg.Commits), seg.EarliestVersion,
			version, cpVersion, cpParts, commits, earliest)
	}
	for _, f := range seg.Checkpoint {
		if f.Version != cpVersion || !f.Kind.IsCheckpoint() || f.Size <= 0 {
			t.Fatalf("checkpoint file %+v", f)
		}
	}
	for _, c := range seg.Commits {
		if c.Kind != KindCommit || c.Size <= 0 || c.ModTime.IsZero() || c.Key != CommitKey(c.Version) {
			t.Fatalf("commit file %+v", c)
		}
	}
}

func TestListSegmentGoldenCheckpoint(t *testing.T) {
	ctx := context.Background()
	st := openFixture(t, "delta-golden", "checkpoint", "delta")
	seg, err := ListSegment(ctx, st, -1)
	wantSegment(t, seg, err, 14, 10, 1, span(11, 14), 0)
	if seg.Checkpoint[0].Key != CheckpointKey(10) || seg.Checkpoint[0].Kind != KindCheckpoint {
		t.Fatalf("checkpoint %+v", seg.Checkpoint[0])
	}
	seg, err = ListSegment(ctx, st, 10)
	wantSegment(t, seg, err, 10, 10, 1, span(11, 10), 0)
	seg, err = ListSegment(ctx, st, 9)
	wantSegment(t, seg, err, 9, -1, 0, span(0, 9), 0)
	seg, err = ListSegment(ctx, st, 0)
	wantSegment(t, seg, err, 0, -1, 0, []int64{0}, 0)
	_, err = ListSegment(ctx, st, 15)
	if !errors.Is(err, ErrVersionNotFound) || !strings.Contains(err.Error(), "available versions: 0..14") {
		t.Fatalf("version 15: %v", err)
	}
}

// TestListSegmentHintSavesListing shows that with a usable _last_checkpoint
// the listing starts at the checkpoint: fewer entries read than a full
// listing of the same log without the hint.
func TestListSegmentHintSavesListing(t *testing.T) {
	ctx := context.Background()
	src := testutil.Testdata(t, "delta-golden", "checkpoint", "delta")
	hinted := &countingStore{Store: openDir(t, src)}
	seg, err := ListSegment(ctx, hinted, -1)
	wantSegment(t, seg, err, 14, 10, 1, span(11, 14), 0)

	dir := testutil.CopyDir(t, src)
	if err := os.Remove(filepath.Join(dir, "_delta_log", "_last_checkpoint")); err != nil {
		t.Fatal(err)
	}
	full := &countingStore{Store: openDir(t, dir)}
	seg, err = ListSegment(ctx, full, -1)
	wantSegment(t, seg, err, 14, 10, 1, span(11, 14), 0)

	t.Logf("with hint: %d gets, %d lists (startAfter %q), %d entries; without: %d gets, %d lists, %d entries",
		hinted.gets, hinted.lists, hinted.startAfter, hinted.listed, full.gets, full.lists, full.listed)
	if hinted.startAfter[0] == "" || !strings.HasPrefix(hinted.startAfter[0], LogDir+"00000000000000000009") {
		t.Fatalf("hinted listing started after %q", hinted.startAfter[0])
	}
	// 16 files in the log: the hinted path lists only the 7 from the
	// checkpoint on (incl. _last_checkpoint), in one listing, and learns
	// EarliestVersion from a Stat of commit 0.
	if hinted.listed != 7 || hinted.lists != 1 || hinted.stats != 1 || full.listed != 16 {
		t.Fatalf("hinted: %d listings read %d entries (%d stats); full listing %d entries", hinted.lists, hinted.listed, hinted.stats, full.listed)
	}
}

// TestListSegmentHintLongLog: on a 500-commit log in the memory store, the
// hinted listing reads a handful of keys instead of all of them.
func TestListSegmentHintLongLog(t *testing.T) {
	ctx := context.Background()
	mem, err := store.Open(ctx, "mem://txlog-hint-long-log")
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	for v := int64(0); v < 500; v++ {
		if err := mem.Put(ctx, CommitKey(v), []byte(`{"commitInfo":{}}`+"\n")); err != nil {
			t.Fatal(err)
		}
		if v%100 == 0 && v > 0 {
			if err := mem.Put(ctx, CheckpointKey(v), []byte("PAR1")); err != nil {
				t.Fatal(err)
			}
		}
	}
	st := &countingStore{Store: mem}
	seg, err := ListSegment(ctx, st, -1)
	wantSegment(t, seg, err, 499, 400, 1, span(401, 499), 0)
	noHint := st.listed
	if err := WriteLastCheckpoint(ctx, mem, &LastCheckpoint{Version: 400, Size: 1}); err != nil {
		t.Fatal(err)
	}
	st = &countingStore{Store: mem}
	seg, err = ListSegment(ctx, st, -1)
	wantSegment(t, seg, err, 499, 400, 1, span(401, 499), 0)
	t.Logf("entries listed: %d without hint, %d with hint", noHint, st.listed)
	if noHint < 504 || st.listed > 103 {
		t.Fatalf("entries listed: %d without hint, %d with hint", noHint, st.listed)
	}
}

func TestListSegmentFixtures(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		fixture                []string
		version                int64
		wantVersion, cpVersion int64
		cpParts                int
		commits                []int64
		earliest               int64
	}{
		{[]string{"delta-golden", "multi-part-checkpoint", "delta"}, -1, 1, 1, 2, nil, 0},
		{[]string{"delta-golden", "multi-part-checkpoint", "delta"}, 0, 0, -1, 0, []int64{0}, 0},
		// _last_checkpoint is empty: ignored.
		{[]string{"delta-golden", "corrupted-last-checkpoint-kernel", "delta"}, -1, 11, 10, 1, []int64{11}, 0},
		{[]string{"delta-golden", "only-checkpoint-files", "delta"}, -1, 2, 2, 1, nil, 0},
		{[]string{"delta-golden", "v2-checkpoint-json", "delta"}, -1, 2, 2, 1, nil, 0},
		{[]string{"delta-golden", "v2-checkpoint-parquet", "delta"}, -1, 2, 2, 1, nil, 0},
		// Early commits deleted: only versions >= the first checkpoint.
		{[]string{"delta-rs", "checkpoints_vacuumed"}, -1, 12, 10, 1, []int64{11, 12}, 5},
		{[]string{"delta-rs", "checkpoints_vacuumed"}, 5, 5, 5, 1, nil, 5},
		{[]string{"delta-rs", "checkpoints_vacuumed"}, 7, 7, 5, 1, []int64{6, 7}, 5},
		{[]string{"delta-rs", "checkpoint-cdf-table"}, -1, 5, 3, 1, []int64{4, 5}, 3},
		{[]string{"delta-rs", "checkpoint-cdf-table"}, 3, 3, 3, 1, nil, 3},
		{[]string{"delta-rs", "with_checkpoint_no_last_checkpoint"}, -1, 3, 2, 1, []int64{3}, 0},
		// _last_checkpoint says 1, checkpoint 3 exists.
		{[]string{"delta-rs", "table_failed_last_checkpoint_update"}, -1, 3, 3, 1, nil, 0},
		{[]string{"delta-rs", "table_failed_last_checkpoint_update"}, 2, 2, 1, 1, []int64{2}, 0},
		{[]string{"delta-rs", "latest_not_checkpointed"}, -1, 3, 2, 1, []int64{3}, 0},
		// A stray _delta_log/.tmp/00000000000000000005.json is not a commit.
		{[]string{"delta-rs", "simple_table"}, -1, 4, -1, 0, span(0, 4), 0},
		{[]string{"delta-rs", "checkpoint-v2-table"}, -1, 9, 8, 1, []int64{9}, 0},
		{[]string{"delta-rs", "checkpoint-v2-table"}, 7, 7, 6, 1, []int64{7}, 0},
		{[]string{"delta-kernel", "v1-multi-part-struct-stats-only"}, -1, 5, 5, 3, nil, 0},
		// The hint names a V2 checkpoint file that does not exist; the
		// classic-named one of the same version is used.
		{[]string{"delta-kernel", "v2-classic-checkpoint-parquet"}, -1, 1, 1, 1, nil, 0},
		{[]string{"delta-kernel", "compacted-log-files-table"}, -1, 25, -1, 0, span(0, 25), 0},
	} {
		name := strings.Join(tc.fixture, "/") + "@" + itoa(tc.version)
		t.Run(name, func(t *testing.T) {
			seg, err := ListSegment(ctx, openFixture(t, tc.fixture...), tc.version)
			if tc.commits == nil {
				tc.commits = []int64{}
			}
			wantSegment(t, seg, err, tc.wantVersion, tc.cpVersion, tc.cpParts, tc.commits, tc.earliest)
			for i, f := range seg.Checkpoint {
				if f.Kind == KindMultiPartCheckpoint && f.Part != i+1 {
					t.Fatalf("parts out of order: %+v", seg.Checkpoint)
				}
			}
		})
	}
}

func TestListSegmentErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		fixture []string
		version int64
		target  error
		msg     string
	}{
		{[]string{"delta-golden", "versions-not-contiguous", "delta"}, -1, ErrCorruptLog, "versions not contiguous: missing 1"},
		{[]string{"delta-golden", "no-delta-log-folder", "delta"}, -1, ErrTableNotFound, "no delta log"},
		{[]string{"delta-golden", "hive"}, -1, ErrTableNotFound, "no delta log"},
		{[]string{"delta-rs", "checkpoints_vacuumed"}, 4, ErrVersionNotFound, "available versions: 5..12"},
		{[]string{"delta-rs", "checkpoints_vacuumed"}, 13, ErrVersionNotFound, "available versions: 5..12"},
		{[]string{"delta-rs", "checkpoint-cdf-table"}, 2, ErrVersionNotFound, "available versions: 3..5"},
		{[]string{"delta-rs", "checkpoint-cdf-table"}, 6, ErrVersionNotFound, "available versions: 3..5"},
		{[]string{"delta-rs", "simple_table"}, 5, ErrVersionNotFound, "available versions: 0..4"},
	} {
		t.Run(strings.Join(tc.fixture, "/")+"@"+itoa(tc.version), func(t *testing.T) {
			seg, err := ListSegment(ctx, openFixture(t, tc.fixture...), tc.version)
			if !errors.Is(err, tc.target) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("ListSegment = %+v, %v; want %v containing %q", seg, err, tc.target, tc.msg)
			}
		})
	}
	// A directory that does not exist at all.
	_, err := ListSegment(ctx, openDir(t, filepath.Join(t.TempDir(), "nope")), -1)
	if !errors.Is(err, ErrTableNotFound) {
		t.Fatalf("missing dir: %v", err)
	}
}

// logDir makes a copy of a fixture whose _delta_log the test may change.
func logDir(t *testing.T, elem ...string) (dir string, rm, touch func(name string)) {
	t.Helper()
	dir = testutil.CopyDir(t, testutil.Testdata(t, elem...))
	rm = func(name string) {
		t.Helper()
		if err := os.Remove(filepath.Join(dir, "_delta_log", name)); err != nil {
			t.Fatal(err)
		}
	}
	touch = func(name string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "_delta_log", name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, rm, touch
}

func TestListSegmentIncompleteMultiPart(t *testing.T) {
	ctx := context.Background()
	dir, rm, touch := logDir(t, "delta-kernel", "v1-multi-part-struct-stats-only")
	// Part 2 of 3 is missing: the set is ignored and the hint (version 5,
	// parts 3) is unusable, so the whole log is listed.
	rm("00000000000000000005.checkpoint.0000000002.0000000003.parquet")
	st := &countingStore{Store: openDir(t, dir)}
	seg, err := ListSegment(ctx, st, -1)
	wantSegment(t, seg, err, 5, -1, 0, span(0, 5), 0)
	if st.lists < 2 || st.startAfter[len(st.startAfter)-1] != "" {
		t.Fatalf("no fallback to a full listing: %q", st.startAfter)
	}
	// A complete two-part set at version 3 and a classic one at 2 exist:
	// the newest complete one is used.
	touch("00000000000000000003.checkpoint.0000000001.0000000002.parquet")
	touch("00000000000000000003.checkpoint.0000000002.0000000002.parquet")
	touch("00000000000000000002.checkpoint.parquet")
	touch("00000000000000000004.checkpoint.0000000001.0000000002.parquet") // incomplete
	seg, err = ListSegment(ctx, openDir(t, dir), -1)
	wantSegment(t, seg, err, 5, 3, 2, []int64{4, 5}, 0)
}

func TestListSegmentStaleHint(t *testing.T) {
	ctx := context.Background()
	dir, rm, touch := logDir(t, "delta-golden", "checkpoint", "delta")
	// The hinted checkpoint was deleted: fall back to the full listing.
	rm("00000000000000000010.checkpoint.parquet")
	seg, err := ListSegment(ctx, openDir(t, dir), -1)
	wantSegment(t, seg, err, 14, -1, 0, span(0, 14), 0)
	// Garbage hint.
	if err := os.WriteFile(filepath.Join(dir, "_delta_log", "_last_checkpoint"), []byte(`{"version":"ten"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	touch("00000000000000000005.checkpoint.parquet")
	seg, err = ListSegment(ctx, openDir(t, dir), -1)
	wantSegment(t, seg, err, 14, 5, 1, span(6, 14), 0)
	// Hint beyond the last commit, pointing at a checkpoint without its
	// commit: that checkpoint is ignored.
	if err := os.WriteFile(filepath.Join(dir, "_delta_log", "_last_checkpoint"), []byte(`{"version":20,"size":3}`), 0o644); err != nil {
		t.Fatal(err)
	}
	touch("00000000000000000020.checkpoint.parquet")
	seg, err = ListSegment(ctx, openDir(t, dir), -1)
	wantSegment(t, seg, err, 14, 5, 1, span(6, 14), 0)
	// Log cleaned up before the checkpoint, and the checkpoint's own commit
	// gone too: version 5 is still reconstructable from the checkpoint.
	for v := int64(0); v <= 5; v++ {
		rm(filepath.Base(CommitKey(v)))
	}
	seg, err = ListSegment(ctx, openDir(t, dir), 5)
	wantSegment(t, seg, err, 5, 5, 1, nil, 5)
	seg, err = ListSegment(ctx, openDir(t, dir), 8)
	wantSegment(t, seg, err, 8, 5, 1, span(6, 8), 5)
	// A gap after the checkpoint.
	rm(filepath.Base(CommitKey(12)))
	_, err = ListSegment(ctx, openDir(t, dir), -1)
	if !errors.Is(err, ErrCorruptLog) || !strings.Contains(err.Error(), "versions not contiguous: missing 12") {
		t.Fatalf("gap: %v", err)
	}
	seg, err = ListSegment(ctx, openDir(t, dir), 11)
	wantSegment(t, seg, err, 11, 5, 1, span(6, 11), 5)
}

func TestListSegmentOnlyCheckpoint(t *testing.T) {
	ctx := context.Background()
	dir, rm, _ := logDir(t, "delta-rs", "checkpoint-cdf-table")
	for v := int64(3); v <= 5; v++ {
		rm(filepath.Base(CommitKey(v)))
	}
	seg, err := ListSegment(ctx, openDir(t, dir), -1)
	wantSegment(t, seg, err, 3, 3, 1, nil, 3)
}

func TestListCommits(t *testing.T) {
	ctx := context.Background()
	st := openFixture(t, "delta-golden", "checkpoint", "delta")
	for _, tc := range []struct {
		from, to int64
		want     []int64
	}{
		{11, -1, span(11, 14)},
		{0, -1, span(0, 14)},
		{3, 5, span(3, 5)},
		{14, 14, []int64{14}},
		{15, -1, nil},
	} {
		got, err := ListCommits(ctx, st, tc.from, tc.to)
		if err != nil || !eqInts(versions(got), tc.want) && len(tc.want)+len(got) > 0 {
			t.Fatalf("ListCommits(%d, %d) = %v, %v; want %v", tc.from, tc.to, versions(got), err, tc.want)
		}
		for _, c := range got {
			if c.ModTime.IsZero() || c.Size == 0 {
				t.Fatalf("commit %+v lacks listing info", c)
			}
		}
	}
	if _, err := ListCommits(ctx, st, 13, 15); !errors.Is(err, ErrVersionNotFound) {
		t.Fatalf("to beyond latest: %v", err)
	}
	gap := openFixture(t, "delta-golden", "versions-not-contiguous", "delta")
	if _, err := ListCommits(ctx, gap, 0, -1); !errors.Is(err, ErrCorruptLog) || !strings.Contains(err.Error(), "missing 1") {
		t.Fatalf("gap: %v", err)
	}
	if _, err := ListCommits(ctx, gap, 1, -1); !errors.Is(err, ErrVersionNotFound) {
		t.Fatalf("from missing: %v", err)
	}
	vac := openFixture(t, "delta-rs", "checkpoints_vacuumed")
	if _, err := ListCommits(ctx, vac, 2, -1); !errors.Is(err, ErrVersionNotFound) {
		t.Fatalf("vacuumed: %v", err)
	}
}

// TestListSegmentTimeTravelWindows: a version far below the hinted
// checkpoint is found from a listing of the versions near it, not of the
// whole log, and the result equals the one of a full listing.
func TestListSegmentTimeTravelWindows(t *testing.T) {
	ctx := context.Background()
	mem, err := store.Open(ctx, "mem://txlog-time-travel-windows")
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	for v := int64(0); v < 5000; v++ {
		if err := mem.Put(ctx, CommitKey(v), []byte(`{"commitInfo":{}}`+"\n")); err != nil {
			t.Fatal(err)
		}
		if v%250 == 0 && v > 0 {
			if err := mem.Put(ctx, CheckpointKey(v), []byte("PAR1")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := WriteLastCheckpoint(ctx, mem, &LastCheckpoint{Version: 4750, Size: 1}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ version, cp int64 }{{2600, 2500}, {2999, 2750}, {2750, 2750}, {120, -1}, {300, 250}} {
		st := &countingStore{Store: mem}
		seg, err := ListSegment(ctx, st, tc.version)
		first := tc.cp + 1
		cpFiles := 1
		if tc.cp < 0 {
			first, cpFiles = 0, 0
		}
		wantSegment(t, seg, err, tc.version, tc.cp, cpFiles, span(first, tc.version), 0)
		t.Logf("version %d: %d lists, %d entries, %d stats", tc.version, st.lists, st.listed, st.stats)
		if tc.cp > 0 && st.listed > 1200 { // windows of 100 and 1000 versions
			t.Errorf("version %d: listed %d entries", tc.version, st.listed)
		}
	}
	// A version whose window reaches commit 0 without a checkpoint: the
	// full listing decides.
	if _, err := ListSegment(ctx, mem, 5000); !errors.Is(err, ErrVersionNotFound) {
		t.Fatalf("version 5000: %v", err)
	}
}
