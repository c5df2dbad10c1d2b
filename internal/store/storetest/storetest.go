package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
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
	t.Run("PutStream", func(t *testing.T) { testPutStream(t, open(t)) })
	t.Run("PutStreamError", func(t *testing.T) { testPutStreamError(t, open(t)) })
	t.Run("PutStreamCanceled", func(t *testing.T) { testPutStreamCanceled(t, open(t)) })
	t.Run("PutStreamLarge", func(t *testing.T) { testPutStreamLarge(t, open(t)) })
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

// checkAbsent fails t unless key is missing (Get and Stat say ErrNotExist).
func checkAbsent(t *testing.T, st store.Store, key, when string) {
	t.Helper()
	if _, err := st.Stat(ctxOf(t), key); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("%s: Stat(%q) err = %v, want ErrNotExist", when, key, err)
	}
	if data, err := st.Get(ctxOf(t), key); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("%s: Get(%q) = %d bytes, %v; want ErrNotExist", when, key, len(data), err)
	}
}

// checkContent fails t unless key holds exactly want.
func checkContent(t *testing.T, st store.Store, key string, want []byte, when string) {
	t.Helper()
	got, err := st.Get(ctxOf(t), key)
	if err != nil {
		t.Errorf("%s: Get(%q): %v", when, key, err)
		return
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: Get(%q) = %d bytes %.40q, want %d bytes %.40q", when, key, len(got), got, len(want), want)
	}
	info, err := st.Stat(ctxOf(t), key)
	if err != nil || info.Size != int64(len(want)) {
		t.Errorf("%s: Stat(%q) = %+v, %v; want size %d", when, key, info, err, len(want))
	}
}

// checkNoTemps fails t if a file store's directory holds temporary files
// (List never shows them, so the directory itself is read).
func checkNoTemps(t *testing.T, st store.Store) {
	t.Helper()
	for { // look through wrappers (faultstore)
		w, ok := st.(interface{ Inner() store.Store })
		if !ok {
			break
		}
		st = w.Inner()
	}
	fst, ok := st.(interface{ Root() string })
	if !ok {
		return
	}
	var left []string
	err := fs.WalkDir(os.DirFS(fst.Root()), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), store.TempPrefix) {
			left = append(left, p)
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("walk %s: %v", fst.Root(), err)
	}
	if len(left) > 0 {
		t.Errorf("temporary files left behind: %q", left)
	}
}

// streamChunks writes chunks to w one Write at a time, calling between
// (when non-nil) after each chunk.
func streamChunks(w io.Writer, chunks [][]byte, between func(i int)) error {
	for i, c := range chunks {
		if _, err := w.Write(c); err != nil {
			return err
		}
		if between != nil {
			between(i)
		}
	}
	return nil
}

func testPutStream(t *testing.T, st store.Store) {
	ctx := ctxOf(t)
	key := "_delta_log/00000000000000000010.checkpoint.parquet"
	chunks := [][]byte{[]byte("PAR1"), bytes.Repeat([]byte("abc"), 100_000), nil, []byte("tail PAR1")}
	want := bytes.Join(chunks, nil)

	// A new key stays invisible until the stream is complete.
	calls := 0
	err := st.PutStream(ctx, key, func(w io.Writer) error {
		calls++
		checkAbsent(t, st, key, "new key, before the first write")
		return streamChunks(w, chunks, func(i int) {
			checkAbsent(t, st, key, fmt.Sprintf("new key, after chunk %d", i))
		})
	})
	if err != nil {
		t.Fatalf("PutStream: %v", err)
	}
	if calls != 1 {
		t.Fatalf("write called %d times, want 1", calls)
	}
	checkContent(t, st, key, want, "after PutStream")

	// An overwrite keeps the old content visible until it completes, and
	// leaves no stale tail of a longer old object.
	newer := []byte("short replacement")
	err = st.PutStream(ctx, key, func(w io.Writer) error {
		return streamChunks(w, [][]byte{newer[:5], newer[5:]}, func(i int) {
			checkContent(t, st, key, want, fmt.Sprintf("overwrite, after chunk %d", i))
		})
	})
	if err != nil {
		t.Fatalf("PutStream overwrite: %v", err)
	}
	checkContent(t, st, key, newer, "after overwrite")

	// Nothing written: an empty object. A deep key creates its directories.
	if err := st.PutStream(ctx, "a/b/c/empty", func(io.Writer) error { return nil }); err != nil {
		t.Fatalf("PutStream empty: %v", err)
	}
	checkContent(t, st, "a/b/c/empty", nil, "empty stream")

	// Invalid keys and a context ended before the call fail without
	// calling write.
	for _, bad := range []string{"", "/abs", "a/../b", "dir/"} {
		err := st.PutStream(ctx, bad, func(io.Writer) error {
			t.Errorf("PutStream(%q) called write", bad)
			return nil
		})
		if !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("PutStream(%q): err = %v, want ErrInvalidKey", bad, err)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	err = st.PutStream(cctx, "canceled", func(w io.Writer) error {
		_, err := w.Write([]byte("x"))
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("PutStream with a canceled context: err = %v, want context.Canceled", err)
	}
	checkAbsent(t, st, "canceled", "PutStream with a canceled context")

	if got := Keys(t, st, "", ""); !slices.Equal(got, []string{key, "a/b/c/empty"}) {
		t.Errorf("List = %q", got)
	}
	checkNoTemps(t, st)
}

var errStreamBoom = errors.New("storetest: the writer failed")

func testPutStreamError(t *testing.T, st store.Store) {
	ctx := ctxOf(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	// 12 MiB: more than one part of an S3 multipart upload, so an abort
	// after parts were uploaded is exercised too.
	chunks := slices.Repeat([][]byte{big}, 12)
	fail := func(w io.Writer) error {
		if err := streamChunks(w, append(chunks, big[:1000]), nil); err != nil {
			return err
		}
		return fmt.Errorf("encode: %w", errStreamBoom)
	}

	// A failing write of a new key leaves no object.
	err := st.PutStream(ctx, "new/obj", fail)
	if !errors.Is(err, errStreamBoom) {
		t.Fatalf("PutStream with a failing write: err = %v, want it to wrap the writer's error", err)
	}
	if !strings.Contains(err.Error(), "new/obj") {
		t.Errorf("error %q does not name the key", err)
	}
	checkAbsent(t, st, "new/obj", "after a failed PutStream")

	// A failing overwrite keeps the old content.
	old := []byte("old content")
	mustPut(t, st, "kept", old)
	if err := st.PutStream(ctx, "kept", fail); !errors.Is(err, errStreamBoom) {
		t.Fatalf("failing overwrite: err = %v", err)
	}
	checkContent(t, st, "kept", old, "after a failed overwrite")

	// A write that fails before writing anything.
	if err := st.PutStream(ctx, "kept", func(io.Writer) error { return errStreamBoom }); !errors.Is(err, errStreamBoom) {
		t.Fatalf("failing empty write: err = %v", err)
	}
	checkContent(t, st, "kept", old, "after a failed empty write")

	if got := Keys(t, st, "", ""); !slices.Equal(got, []string{"kept"}) {
		t.Errorf("List after failed streams = %q, want only %q", got, "kept")
	}
	checkNoTemps(t, st)
}

func testPutStreamCanceled(t *testing.T, st store.Store) {
	chunk := bytes.Repeat([]byte("z"), 256<<10)
	old := []byte("before")
	mustPut(t, st, "over", old)
	for _, c := range []struct {
		name, key string
		ignore    bool // write ignores the failure and returns nil
	}{
		{"new key", "fresh", false},
		{"overwrite", "over", false},
		{"write returns nil", "fresh2", true},
		{"overwrite, write returns nil", "over", true},
	} {
		ctx, cancel := context.WithCancel(ctxOf(t))
		err := st.PutStream(ctx, c.key, func(w io.Writer) error {
			err := streamChunks(w, [][]byte{chunk, chunk, chunk, chunk}, func(i int) {
				if i == 1 {
					cancel()
				}
			})
			if c.ignore {
				return nil
			}
			if err == nil {
				err = ctx.Err()
			}
			return err
		})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: PutStream canceled during the write: err = %v, want context.Canceled", c.name, err)
		}
		if c.key == "over" {
			checkContent(t, st, c.key, old, c.name)
		} else {
			checkAbsent(t, st, c.key, c.name)
		}
	}
	if got := Keys(t, st, "", ""); !slices.Equal(got, []string{"over"}) {
		t.Errorf("List after canceled streams = %q", got)
	}
	checkNoTemps(t, st)
}

// PutStreamLargeSize is the size of the large streamed object.
const PutStreamLargeSize = 64 << 20

func testPutStreamLarge(t *testing.T, st store.Store) {
	ctx := ctxOf(t)
	const chunkSize = 1 << 20
	chunk := make([]byte, chunkSize)
	for i := range chunk {
		chunk[i] = byte(i*31 + i>>8)
	}
	h := sha256.New()
	err := st.PutStream(ctx, "big/object.bin", func(w io.Writer) error {
		for i := range PutStreamLargeSize / chunkSize {
			binary.BigEndian.PutUint64(chunk, uint64(i)) // every chunk differs
			h.Write(chunk)
			if _, err := w.Write(chunk); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("PutStream of %d MiB: %v", PutStreamLargeSize>>20, err)
	}
	want := h.Sum(nil)
	r, err := st.Open(ctx, "big/object.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Size() != PutStreamLargeSize {
		t.Fatalf("Size = %d, want %d", r.Size(), PutStreamLargeSize)
	}
	h.Reset()
	buf := make([]byte, 4<<20)
	for off := int64(0); off < PutStreamLargeSize; off += int64(len(buf)) {
		n, err := r.ReadAt(buf, off)
		if err != nil && !(errors.Is(err, io.EOF) && off+int64(n) == PutStreamLargeSize) {
			t.Fatalf("ReadAt(%d): %v", off, err)
		}
		h.Write(buf[:n])
	}
	if got := h.Sum(nil); !bytes.Equal(got, want) {
		t.Fatalf("streamed object read back with a different SHA-256")
	}
	checkNoTemps(t, st)
}
