package txlog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/kappa-lake/kappa/internal/store"
	"github.com/kappa-lake/kappa/internal/testutil"
)

// readCountingStore wraps a real store and records every read request: Get
// calls and ReaderAt.ReadAt calls, with their sizes.
type readCountingStore struct {
	store.Store
	mu    sync.Mutex
	reads []readCall
	fail  int // ReadAt calls fail once this many were made; < 0: never
}

type readCall struct {
	key      string
	off, len int64 // off -1 for Get
}

func newReadCountingStore(st store.Store) *readCountingStore {
	return &readCountingStore{Store: st, fail: -1}
}

func (c *readCountingStore) record(rc readCall) {
	c.mu.Lock()
	c.reads = append(c.reads, rc)
	c.mu.Unlock()
}

func (c *readCountingStore) reset() {
	c.mu.Lock()
	c.reads = nil
	c.mu.Unlock()
}

// stats returns the number of read requests and the largest one.
func (c *readCountingStore) stats() (n int, largest int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.reads {
		largest = max(largest, r.len)
	}
	return len(c.reads), largest
}

func (c *readCountingStore) Get(ctx context.Context, key string) ([]byte, error) {
	data, err := c.Store.Get(ctx, key)
	c.record(readCall{key: key, off: -1, len: int64(len(data))})
	return data, err
}

func (c *readCountingStore) Open(ctx context.Context, key string) (store.ReaderAt, error) {
	r, err := c.Store.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	return &readCountingReaderAt{ReaderAt: r, c: c, key: key}, nil
}

type readCountingReaderAt struct {
	store.ReaderAt
	c   *readCountingStore
	key string
}

func (r *readCountingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	r.c.mu.Lock()
	fail := r.c.fail >= 0 && len(r.c.reads) >= r.c.fail
	r.c.mu.Unlock()
	if fail {
		return 0, errInjectedRead
	}
	r.c.record(readCall{key: r.key, off: off, len: int64(len(p))})
	return r.ReaderAt.ReadAt(p, off)
}

// failAfter makes ReadAt calls of a readCountingStore fail with a
// transient error once n calls have been made (n < 0: never).
func (c *readCountingStore) failAfter(n int) { c.mu.Lock(); c.fail = n; c.mu.Unlock() }

var errInjectedRead = fmt.Errorf("injected read failure: %w", store.ErrTransient)

// openLocalParquet opens a local Parquet file with parquet-go (the file is
// closed when t ends).
func openLocalParquet(t *testing.T, path string, opts ...parquet.FileOption) *parquet.File {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fh.Close() })
	fi, err := fh.Stat()
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(fh, fi.Size(), opts...)
	if err != nil {
		t.Fatalf("parquet.OpenFile %s: %v", path, err)
	}
	return pf
}

// rowGroupSpans returns the byte range of each row group of a local
// Parquet file (all its column chunks) and the file size.
func rowGroupSpans(t *testing.T, path string) ([]byteSpan, int64) {
	t.Helper()
	pf := openLocalParquet(t, path, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	size := pf.Size()
	var out []byteSpan
	for _, rg := range pf.Metadata().RowGroups {
		s := byteSpan{start: size}
		for i := range rg.Columns {
			cs, ok := chunkSpan(&rg.Columns[i], size)
			if !ok {
				t.Fatalf("chunk outside the file: %+v", cs)
			}
			s.start, s.end = min(s.start, cs.start), max(s.end, cs.end)
		}
		out = append(out, s)
	}
	return out, size
}

// readActions reads a checkpoint with ReadCheckpoint (or
// ReadCheckpointState) in read mode mode and returns all actions.
func readActions(t *testing.T, st store.Store, parts []LogFile, mode string, state bool) []Action {
	t.Helper()
	setReadMode(t, mode)
	seq := ReadCheckpoint(context.Background(), st, parts, nil)
	if state {
		seq = ReadCheckpointState(context.Background(), st, parts)
	}
	return collect(t, seq)
}

// TestReadCheckpointWindowRequests writes a checkpoint of 200,000 adds
// (eleven row groups) to a file store and reads it through a store that
// records every request: the footer comes with one read of the tail, each
// row group with at most one read inside its own byte range (none when the
// tail holds it), no read comes near the file size, and the actions are
// exactly those of reading the file whole and of reading it column by
// column.
func TestReadCheckpointWindowRequests(t *testing.T) {
	const n = 200_000
	dir := t.TempDir()
	st := openTestStore(t, dir)
	d := syntheticData(n)
	if _, err := WriteCheckpoint(context.Background(), st, 1, d); err != nil {
		t.Fatal(err)
	}
	key := CheckpointKey(1)
	spans, size := rowGroupSpans(t, filepath.Join(dir, filepath.FromSlash(key)))
	if len(spans) < 10 {
		t.Fatalf("%d row groups, want at least 10", len(spans))
	}
	parts := []LogFile{{Key: key, Version: 1, Kind: KindCheckpoint}}
	cs := newReadCountingStore(st)
	got := readActions(t, cs, parts, "window", false)

	if len(cs.reads) == 0 || cs.reads[0].off+cs.reads[0].len != size || cs.reads[0].len != wholeFileLimit {
		t.Fatalf("first read %+v, want the last %d bytes of %d", cs.reads, wholeFileLimit, size)
	}
	perGroup := make([]int, len(spans))
	for _, r := range cs.reads[1:] {
		if r.key != key || r.off < 0 {
			t.Fatalf("unexpected read %+v", r)
		}
		in := -1
		for i, s := range spans {
			if r.off >= s.start && r.off+r.len <= s.end {
				in = i
			}
		}
		if in < 0 {
			t.Fatalf("read [%d, %d) is not inside one row group: %v", r.off, r.off+r.len, spans)
		}
		perGroup[in]++
	}
	for i, c := range perGroup {
		if c > 1 {
			t.Errorf("row group %d read with %d requests, want at most 1", i, c)
		}
	}
	reads, largest := cs.stats()
	t.Logf("%d adds, %d row groups, %d bytes: %d reads, largest %d bytes", n, len(spans), size, reads, largest)
	if reads > len(spans)+1 || reads < len(spans)-1 {
		t.Errorf("%d reads for %d row groups", reads, len(spans))
	}
	if largest > windowCap || largest*4 > size {
		t.Errorf("largest read %d bytes of a %d-byte file", largest, size)
	}

	adds := 0
	for _, a := range got {
		if a.Add != nil {
			adds++
		}
	}
	if adds != n {
		t.Fatalf("read %d adds, want %d", adds, n)
	}
	for _, mode := range []string{"whole", "columns"} {
		if want := readActions(t, st, parts, mode, false); !reflect.DeepEqual(got, want) {
			t.Errorf("window and %s reads differ (%d vs %d actions)", mode, len(got), len(want))
		}
	}
	// The state reader gets the state actions, whatever the mode.
	for _, mode := range readModes {
		if gs := readActions(t, st, parts, mode, true); !reflect.DeepEqual(gs, stateActions(d)) {
			t.Errorf("%s: state actions %s", mode, stateKinds(gs))
		}
	}
}

// smallWindows sets the tunables so that even tiny fixture files are read
// through windows (tail of a few bytes, footer read separately).
func smallWindows(t *testing.T, windowLimit int64) {
	t.Helper()
	oldWhole, oldState, oldCap := wholeFileLimit, stateWholeFileLimit, windowCap
	t.Cleanup(func() { wholeFileLimit, stateWholeFileLimit, windowCap = oldWhole, oldState, oldCap })
	wholeFileLimit, stateWholeFileLimit, windowCap = 16, 16, windowLimit
}

// TestReadCheckpointWindowFixtures: on the fixture checkpoints of Spark,
// delta-rs and the kernel (classic, multi-part, V2 with sidecars, struct
// stats only), reading through windows and column by column yields
// exactly the actions of reading each file whole, for ReadCheckpoint and
// ReadCheckpointState.
func TestReadCheckpointWindowFixtures(t *testing.T) {
	for _, tbl := range checkpointFixtures {
		t.Run(strings.Join(tbl, "/"), func(t *testing.T) {
			dir := testutil.Testdata(t, tbl...)
			st := openTestStore(t, dir)
			parts := latestCheckpoint(t, dir)
			for _, state := range []bool{false, true} {
				want := readActions(t, st, parts, "whole", state)
				if len(want) == 0 {
					t.Fatal("no actions")
				}
				for _, limit := range []int64{64 << 20, 0} {
					func() {
						smallWindows(t, limit)
						cs := newReadCountingStore(st)
						got := collect(t, readCheckpoint(context.Background(), cs, parts, nil, state))
						if !reflect.DeepEqual(got, want) {
							t.Errorf("state=%v windowCap=%d: %d actions differ from the whole-file read's %d", state, limit, len(got), len(want))
						}
						if n, largest := cs.stats(); n == 0 || largest > 1<<20 {
							t.Errorf("state=%v windowCap=%d: %d reads, largest %d", state, limit, n, largest)
						}
					}()
				}
			}
		})
	}
}

// TestReadCheckpointWindowPredictsStructStats: on a checkpoint whose adds
// carry stats only as add.stats_parsed, the window of each row group
// includes the stats_parsed columns (predicted from the footer's null
// counts), so nothing is read column by column.
func TestReadCheckpointWindowPredictsStructStats(t *testing.T) {
	dir := t.TempDir()
	st := openTestStore(t, dir)
	d := syntheticData(0)
	d.Metadata.Configuration = map[string]string{"delta.checkpoint.writeStatsAsJson": "false"}
	d.Files = syntheticFiles(30_000)
	defer func(old int64) { checkpointRowGroupRows = old }(checkpointRowGroupRows)
	checkpointRowGroupRows = 5000
	if _, err := WriteCheckpoint(context.Background(), st, 1, d); err != nil {
		t.Fatal(err)
	}
	key := CheckpointKey(1)
	spans, _ := rowGroupSpans(t, filepath.Join(dir, filepath.FromSlash(key)))
	parts := []LogFile{{Key: key, Version: 1, Kind: KindCheckpoint}}
	want := readActions(t, st, parts, "whole", false)
	smallWindows(t, 64<<20)
	cs := newReadCountingStore(st)
	got := collect(t, ReadCheckpoint(context.Background(), cs, parts, nil))
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("window read differs from the whole-file read")
	}
	withStats := 0
	for _, a := range got {
		if a.Add != nil && a.Add.Stats != "" && a.Add.StatsParsed != nil {
			withStats++
		}
	}
	if withStats != 30_000 {
		t.Errorf("%d adds with stats rendered from stats_parsed, want 30000", withStats)
	}
	// tail + footer + one per row group.
	if n, _ := cs.stats(); n > len(spans)+2 {
		t.Errorf("%d reads for %d row groups: stats_parsed read column by column", n, len(spans))
	}
}

// TestReadCheckpointWindowCorrupt: a truncated file, a footer whose row
// groups lie beyond the end of the file, a file whose row group bytes
// are garbage and a footer length beyond the file give an error wrapping ErrCorruptLog that names the file and
// is not retryable; a transient store error during a window read stays
// retryable. Nothing panics.
func TestReadCheckpointWindowCorrupt(t *testing.T) {
	dir := t.TempDir()
	st := openTestStore(t, dir)
	defer func(old int64) { checkpointRowGroupRows = old }(checkpointRowGroupRows)
	checkpointRowGroupRows = 5000
	if _, err := WriteCheckpoint(context.Background(), st, 1, syntheticData(30_000)); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(CheckpointKey(1))))
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(good)) <= wholeFileLimit {
		t.Fatalf("checkpoint of %d bytes is read whole", len(good))
	}
	footerLen := int(binary.LittleEndian.Uint32(good[len(good)-8:])) + 8
	spans, _ := rowGroupSpans(t, filepath.Join(dir, filepath.FromSlash(CheckpointKey(1))))
	// The footer of the good file after its first two row groups: the
	// others lie beyond the end.
	cut := append(append([]byte{}, good[:spans[1].end]...), good[len(good)-footerLen:]...)
	garbage := append([]byte{}, good...)
	for i := spans[2].start; i < spans[2].end; i++ {
		garbage[i] = byte(i * 7)
	}
	// A footer length near 4 GiB: parquet-go would allocate it before
	// reading (the fuzzer's find; it took seconds and 4 GiB per read).
	hugeFooter := append([]byte{}, good...)
	binary.LittleEndian.PutUint32(hugeFooter[len(hugeFooter)-8:], 0xfd000000)
	cases := map[string][]byte{
		"truncated":                     good[:len(good)/2],
		"truncated footer":              good[:len(good)-3],
		"row groups cut":                cut,
		"garbage row group":             garbage,
		"footer length 4 GiB":           hugeFooter,
		"footer length 4 GiB, 12 bytes": []byte("PAR1\x00\x00\x00\xfdPAR1"),
	}
	for name, data := range cases {
		for _, state := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/state=%v", name, state), func(t *testing.T) {
				if state {
					smallWindows(t, 64<<20) // the state reader reads through windows too
				}
				key := CheckpointKey(7)
				if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(key)), data, 0o644); err != nil {
					t.Fatal(err)
				}
				parts := []LogFile{{Key: key, Version: 7, Kind: KindCheckpoint}}
				var gotErr error
				for _, err := range readCheckpoint(context.Background(), st, parts, nil, state) {
					if err != nil {
						gotErr = err
					}
				}
				if state && (name == "garbage row group" || name == "row groups cut") {
					// The state columns are in the first row group; the
					// others are skipped, not read.
					if gotErr != nil {
						t.Fatalf("state read: %v", gotErr)
					}
					return
				}
				if !errors.Is(gotErr, ErrCorruptLog) || !strings.Contains(gotErr.Error(), key) || store.IsRetryable(gotErr) {
					t.Fatalf("err = %v, want a non-retryable ErrCorruptLog naming %s", gotErr, key)
				}
				t.Logf("%v", gotErr)
			})
		}
	}
	t.Run("transient", func(t *testing.T) {
		parts := []LogFile{{Key: CheckpointKey(1), Version: 1, Kind: KindCheckpoint}}
		cs := newReadCountingStore(st)
		cs.failAfter(3) // the tail and two row groups read
		var gotErr error
		adds := 0
		for a, err := range ReadCheckpoint(context.Background(), cs, parts, nil) {
			if err != nil {
				gotErr = err
			} else if a.Add != nil {
				adds++
			}
		}
		if !errors.Is(gotErr, errInjectedRead) || !store.IsRetryable(gotErr) || errors.Is(gotErr, ErrCorruptLog) || !strings.Contains(gotErr.Error(), CheckpointKey(1)) {
			t.Fatalf("err = %v, want the retryable injected error naming the file", gotErr)
		}
		if adds == 0 || adds >= 30_000 {
			t.Errorf("%d adds before the failure", adds)
		}
	})
}

// FuzzReadCheckpointWindow is FuzzReadCheckpoint's check with every file
// read through windows (a tail of 16 bytes, so the footer, the row groups
// and their column chunks all go through windowReader), and, for odd
// first bytes, column by column.
func FuzzReadCheckpointWindow(f *testing.F) {
	f.Add(seedCheckpoint(f))
	f.Add([]byte("PAR1\x00\x00\x00\x00PAR1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := fuzzCheckpointStore()
		if err != nil {
			t.Fatal(err)
		}
		limit := int64(64 << 20)
		if len(data) > 0 && data[0]&1 == 1 {
			limit = 0
		}
		smallWindows(t, limit)
		ctx := context.Background()
		key := "_delta_log/00000000000000000005.checkpoint.parquet"
		if err := st.Put(ctx, key, data); err != nil {
			t.Fatal(err)
		}
		lf, _ := ParseLogFile(key)
		lf.Size = int64(len(data))
		for _, state := range []bool{false, true} {
			checkReadCheckpoint(t, st, lf, state)
		}
	})
}
