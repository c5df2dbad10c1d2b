package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kappa-lake/kappa/internal/store"
)

// RaceRounds and RaceWriters size the put-if-absent race.
const (
	RaceRounds  = 20
	RaceWriters = 8
)

// Run runs the conformance suite as subtests of t. newStore must return a
// fresh, empty store; Run closes it at the end of each subtest.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	open := func(t *testing.T) store.Store {
		t.Helper()
		st := newStore(t)
		t.Cleanup(func() {
			if err := st.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
		return st
	}
	t.Run("GetPutStat", func(t *testing.T) { testGetPutStat(t, open(t)) })
	t.Run("NotExist", func(t *testing.T) { testNotExist(t, open(t)) })
	t.Run("EmptyObject", func(t *testing.T) { testEmpty(t, open(t)) })
	t.Run("ReadAt", func(t *testing.T) { testReadAt(t, open(t)) })
	t.Run("List", func(t *testing.T) { testList(t, open(t)) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, open(t)) })
	t.Run("InvalidKey", func(t *testing.T) { testInvalidKey(t, open(t)) })
	t.Run("Canceled", func(t *testing.T) { testCanceled(t, open(t)) })
	t.Run("PutIfAbsent", func(t *testing.T) { testPutIfAbsent(t, open(t)) })
	t.Run("PutIfAbsentRace", func(t *testing.T) { testPutIfAbsentRace(t, open(t)) })
}

func ctxOf(t *testing.T) context.Context { return t.Context() }

func mustPut(t *testing.T, st store.Store, key string, data []byte) {
	t.Helper()
	if err := st.Put(ctxOf(t), key, data); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func mustGet(t *testing.T, st store.Store, key string) []byte {
	t.Helper()
	data, err := st.Get(ctxOf(t), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return data
}

// Keys lists every key under prefix after startAfter, failing t on error.
func Keys(t testing.TB, st store.Store, prefix, startAfter string) []string {
	t.Helper()
	var keys []string
	for info, err := range st.List(context.Background(), prefix, startAfter) {
		if err != nil {
			t.Fatalf("List(%q, %q): %v", prefix, startAfter, err)
		}
		keys = append(keys, info.Key)
	}
	return keys
}

func testGetPutStat(t *testing.T, st store.Store) {
	ctx := ctxOf(t)
	key := "_delta_log/00000000000000000000.json"
	v1 := []byte(`{"commitInfo":{}}` + "\n")
	mustPut(t, st, key, v1)
	if got := mustGet(t, st, key); !bytes.Equal(got, v1) {
		t.Fatalf("Get = %q, want %q", got, v1)
	}
	info, err := st.Stat(ctx, key)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if info.Key != key || info.Size != int64(len(v1)) || info.ModTime.IsZero() {
		t.Fatalf("Stat = %+v, want key %q size %d and a mod time", info, key, len(v1))
	}
	// Overwrite with a longer then a shorter value: no stale tail.
	v2 := bytes.Repeat([]byte("0123456789"), 100)
	mustPut(t, st, key, v2)
	if got := mustGet(t, st, key); !bytes.Equal(got, v2) {
		t.Fatalf("Get after overwrite: %d bytes, want %d", len(got), len(v2))
	}
	v3 := []byte("short")
	mustPut(t, st, key, v3)
	if got := mustGet(t, st, key); !bytes.Equal(got, v3) {
		t.Fatalf("Get after shorter overwrite = %q, want %q", got, v3)
	}
	// Deep keys create their "directories".
	deep := "year=2024/month=01/day=02/part-00000-x.zstd.parquet"
	mustPut(t, st, deep, []byte("PAR1"))
	if got := mustGet(t, st, deep); string(got) != "PAR1" {
		t.Fatalf("Get(%q) = %q", deep, got)
	}
	// A 1 MiB object round-trips.
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	mustPut(t, st, "big.bin", big)
	if got := mustGet(t, st, "big.bin"); !bytes.Equal(got, big) {
		t.Fatalf("1 MiB object corrupted (%d bytes back)", len(got))
	}
	if st.URL() == "" {
		t.Fatalf("URL() is empty")
	}
}

func testNotExist(t *testing.T, st store.Store) {
	ctx := ctxOf(t)
	key := "_delta_log/00000000000000000007.json"
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, store.ErrNotExist) {
			t.Errorf("%s of a missing key: err = %v, want ErrNotExist", op, err)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s of a missing key: err = %v, want it to match fs.ErrNotExist", op, err)
		}
		if err != nil && !strings.Contains(err.Error(), key) {
			t.Errorf("%s error %q does not name the key", op, err)
		}
	}
	_, err := st.Get(ctx, key)
	check("Get", err)
	_, err = st.Stat(ctx, key)
	check("Stat", err)
	_, err = st.Open(ctx, key)
	check("Open", err)
	if store.IsRetryable(err) {
		t.Errorf("IsRetryable(not exist) = true")
	}
	if err := st.Delete(ctx, key); err != nil {
		t.Errorf("Delete of a missing key: %v", err)
	}
	// A "directory" is not an object.
	mustPut(t, st, "dir/file", []byte("x"))
	_, err = st.Get(ctx, "dir")
	if !errors.Is(err, store.ErrNotExist) {
		t.Errorf("Get of a directory: err = %v, want ErrNotExist", err)
	}
	if keys := Keys(t, st, "nothing/here/", ""); len(keys) != 0 {
		t.Errorf("List of a missing prefix = %v, want empty", keys)
	}
}

func testEmpty(t *testing.T, st store.Store) {
	ctx := ctxOf(t)
	mustPut(t, st, "empty", nil)
	if got := mustGet(t, st, "empty"); len(got) != 0 {
		t.Fatalf("Get(empty) = %q", got)
	}
	r, err := st.Open(ctx, "empty")
	if err != nil {
		t.Fatalf("Open(empty): %v", err)
	}
	defer r.Close()
	if r.Size() != 0 {
		t.Fatalf("Size = %d, want 0", r.Size())
	}
	n, err := r.ReadAt(make([]byte, 4), 0)
	if n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("ReadAt on empty = %d, %v; want 0, io.EOF", n, err)
	}
}

func testReadAt(t *testing.T, st store.Store) {
	ctx := ctxOf(t)
	data := make([]byte, 1000)
	for i := range data {
		data[i] = byte(i % 251)
	}
	mustPut(t, st, "obj.parquet", data)
	r, err := st.Open(ctx, "obj.parquet")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer r.Close()
	if r.Size() != int64(len(data)) {
		t.Fatalf("Size = %d, want %d", r.Size(), len(data))
	}
	for _, c := range []struct{ off, n int }{{0, 10}, {990, 10}, {500, 100}, {0, 1000}, {999, 1}, {123, 0}} {
		p := make([]byte, c.n)
		n, err := r.ReadAt(p, int64(c.off))
		if err != nil && !(errors.Is(err, io.EOF) && c.off+c.n == len(data)) {
			t.Errorf("ReadAt(%d, off %d): %v", c.n, c.off, err)
		}
		if n != c.n || !bytes.Equal(p, data[c.off:c.off+c.n]) {
			t.Errorf("ReadAt(%d, off %d) = %d bytes, wrong content", c.n, c.off, n)
		}
	}
	// Past the end: short read with io.EOF.
	p := make([]byte, 20)
	n, err := r.ReadAt(p, 990)
	if n != 10 || !errors.Is(err, io.EOF) || !bytes.Equal(p[:n], data[990:]) {
		t.Errorf("ReadAt across the end = %d, %v; want 10, io.EOF", n, err)
	}
	n, err = r.ReadAt(p, 1000)
	if n != 0 || !errors.Is(err, io.EOF) {
		t.Errorf("ReadAt at the end = %d, %v; want 0, io.EOF", n, err)
	}
	// Concurrent ReadAt calls on one reader (parquet readers do this).
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			off := i * 100
			q := make([]byte, 100)
			if _, err := r.ReadAt(q, int64(off)); err != nil && !errors.Is(err, io.EOF) {
				errs <- err
				return
			}
			if !bytes.Equal(q, data[off:off+100]) {
				errs <- fmt.Errorf("concurrent ReadAt at %d: wrong content", off)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// listKeys is a tree that exercises the ordering corner cases: names that
// sort around a directory's "/" ('-' and '.' before it, '0' after it),
// nested partitions, a log directory with a subdirectory.
var listKeys = []string{
	"_delta_log/00000000000000000000.json",
	"_delta_log/00000000000000000001.json",
	"_delta_log/00000000000000000002.checkpoint.parquet",
	"_delta_log/00000000000000000002.json",
	"_delta_log/00000000000000000010.json",
	"_delta_log/00000000000000000011.crc",
	"_delta_log/_last_checkpoint",
	"_delta_log/_sidecars/00000000000000000002.checkpoint.abc.parquet",
	"a-1.txt",
	"a.txt",
	"a/x",
	"a/y/z",
	"a0",
	"ab/c",
	"p=1/q=2/part-00001.parquet",
	"p=1/part-00000.parquet",
	"p=10/part-00002.parquet",
	"zz",
}

func testList(t *testing.T, st store.Store) {
	for i, k := range listKeys {
		mustPut(t, st, k, bytes.Repeat([]byte{'x'}, i+1))
	}
	all := slices.Clone(listKeys)
	slices.Sort(all)
	if got := Keys(t, st, "", ""); !slices.Equal(got, all) {
		t.Fatalf("List(\"\", \"\") =\n%q\nwant\n%q", got, all)
	}
	// Sizes come with the listing.
	for info, err := range st.List(ctxOf(t), "_delta_log/_last", "") {
		if err != nil {
			t.Fatal(err)
		}
		if want := int64(slices.Index(listKeys, info.Key) + 1); info.Size != want || info.ModTime.IsZero() {
			t.Errorf("List info %+v: want size %d and a mod time", info, want)
		}
	}
	prefixes := []string{
		"", "_delta_log/", "_delta_log/0000000000000000001", "_delta_log/0000000000000000000",
		"_delta_log/_", "a", "a/", "a/y", "a.", "p=1", "p=1/", "nope/", "z",
	}
	afters := []string{
		"", "_delta_log/00000000000000000001.json", "_delta_log/00000000000000000002",
		"_delta_log/00000000000000000010.json", "_delta_log/_sidecars/", "a", "a.txt", "a/", "a/x", "a/y/z",
		"a0", "p=1/q=2/part-00001.parquet", "p=1/q", "zz", "zzz",
	}
	for _, prefix := range prefixes {
		for _, after := range afters {
			var want []string
			for _, k := range all {
				if strings.HasPrefix(k, prefix) && k > after {
					want = append(want, k)
				}
			}
			if got := Keys(t, st, prefix, after); !slices.Equal(got, want) {
				t.Errorf("List(%q, %q) =\n%q\nwant\n%q", prefix, after, got, want)
			}
		}
	}
	// Stopping early is fine.
	n := 0
	for _, err := range st.List(ctxOf(t), "", "") {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if n == 3 {
			break
		}
	}
}

func testDelete(t *testing.T, st store.Store) {
	ctx := ctxOf(t)
	mustPut(t, st, "d/one", []byte("1"))
	mustPut(t, st, "d/two", []byte("2"))
	if err := st.Delete(ctx, "d/one"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := st.Get(ctx, "d/one"); !errors.Is(err, store.ErrNotExist) {
		t.Fatalf("Get after Delete: err = %v, want ErrNotExist", err)
	}
	if err := st.Delete(ctx, "d/one"); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	if got := Keys(t, st, "", ""); !slices.Equal(got, []string{"d/two"}) {
		t.Fatalf("List after Delete = %q", got)
	}
	// The key can be created again, even with PutIfAbsent.
	if err := st.PutIfAbsent(ctx, "d/one", []byte("again")); err != nil {
		t.Fatalf("PutIfAbsent after Delete: %v", err)
	}
}

func testInvalidKey(t *testing.T, st store.Store) {
	ctx := ctxOf(t)
	for _, key := range []string{"", "/abs", "../escape", "a/../../b", "a//b", "./a", "dir/"} {
		if err := st.Put(ctx, key, []byte("x")); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("Put(%q): err = %v, want ErrInvalidKey", key, err)
		}
		if _, err := st.Get(ctx, key); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("Get(%q): err = %v, want ErrInvalidKey", key, err)
		}
		if err := st.PutIfAbsent(ctx, key, []byte("x")); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("PutIfAbsent(%q): err = %v, want ErrInvalidKey", key, err)
		}
	}
	if keys := Keys(t, st, "", ""); len(keys) != 0 {
		t.Errorf("invalid writes left keys: %q", keys)
	}
}

func testCanceled(t *testing.T, st store.Store) {
	mustPut(t, st, "k", []byte("v"))
	ctx, cancel := context.WithCancel(ctxOf(t))
	cancel()
	if _, err := st.Get(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with canceled ctx: err = %v, want context.Canceled", err)
	}
	if err := st.PutIfAbsent(ctx, "k2", []byte("v")); !errors.Is(err, context.Canceled) {
		t.Errorf("PutIfAbsent with canceled ctx: err = %v, want context.Canceled", err)
	}
	if store.IsRetryable(context.Canceled) {
		t.Errorf("IsRetryable(context.Canceled) = true")
	}
	var listErr error
	for _, err := range st.List(ctx, "", "") {
		listErr = err
		break
	}
	if !errors.Is(listErr, context.Canceled) {
		t.Errorf("List with canceled ctx: err = %v, want context.Canceled", listErr)
	}
}

func testPutIfAbsent(t *testing.T, st store.Store) {
	ctx := ctxOf(t)
	key := "_delta_log/00000000000000000000.json"
	if err := st.PutIfAbsent(ctx, key, []byte("first")); err != nil {
		t.Fatalf("first PutIfAbsent: %v", err)
	}
	err := st.PutIfAbsent(ctx, key, []byte("second"))
	if !errors.Is(err, store.ErrPreconditionFailed) {
		t.Fatalf("second PutIfAbsent: err = %v, want ErrPreconditionFailed", err)
	}
	if store.IsRetryable(err) {
		t.Errorf("IsRetryable(precondition failed) = true")
	}
	if got := mustGet(t, st, key); string(got) != "first" {
		t.Fatalf("after losing PutIfAbsent, Get = %q, want %q", got, "first")
	}
	// In a new directory.
	if err := st.PutIfAbsent(ctx, "new/dir/obj", []byte("x")); err != nil {
		t.Fatalf("PutIfAbsent in a new directory: %v", err)
	}
	if got := Keys(t, st, "", ""); !slices.Equal(got, []string{key, "new/dir/obj"}) {
		t.Fatalf("List = %q (temporary files visible?)", got)
	}
}

func testPutIfAbsentRace(t *testing.T, st store.Store) {
	ctx := ctxOf(t)
	payload := func(round, writer int) []byte {
		line := fmt.Sprintf(`{"add":{"path":"w%d-r%d"}}`+"\n", writer, round)
		return bytes.Repeat([]byte(line), 200) // several KiB: a torn write would show
	}
	for round := range RaceRounds {
		key := fmt.Sprintf("_delta_log/%020d.json", round)
		var (
			wg     sync.WaitGroup
			start  = make(chan struct{})
			errs   = make([]error, RaceWriters)
			winner = -1
		)
		for w := range RaceWriters {
			wg.Go(func() {
				<-start
				errs[w] = st.PutIfAbsent(ctx, key, payload(round, w))
			})
		}
		close(start)
		wg.Wait()
		wins := 0
		for w, err := range errs {
			switch {
			case err == nil:
				wins++
				winner = w
			case errors.Is(err, store.ErrPreconditionFailed):
			default:
				t.Errorf("round %d writer %d: unexpected error %v", round, w, err)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d winners, want exactly 1", round, wins)
		}
		if got := mustGet(t, st, key); !bytes.Equal(got, payload(round, winner)) {
			t.Fatalf("round %d: object is not the winner's bytes (%d bytes)", round, len(got))
		}
	}
	keys := Keys(t, st, "", "")
	if len(keys) != RaceRounds {
		t.Errorf("List after races: %d keys, want %d: %q", len(keys), RaceRounds, keys)
	}
	for _, k := range keys {
		if strings.Contains(k, store.TempPrefix) || strings.HasSuffix(k, ".attrs") {
			t.Errorf("List shows a temporary or sidecar file: %q", k)
		}
	}
	t.Logf("%d rounds x %d writers: exactly one winner each round", RaceRounds, RaceWriters)
}
