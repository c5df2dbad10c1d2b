package faultstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kappa-lake/kappa/internal/store"
	"github.com/kappa-lake/kappa/internal/store/faultstore"
	"github.com/kappa-lake/kappa/internal/store/storetest"
)

var seq atomic.Int64

func memStore(t *testing.T) store.Store {
	t.Helper()
	st, err := store.Open(t.Context(), fmt.Sprintf("mem://faultstore-test-%d", seq.Add(1)))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// With no faults configured the wrapper is a conforming store.
func TestConformanceWithoutFaults(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		st, err := store.Open(t.Context(), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return faultstore.New(st, faultstore.Options{Seed: 1, LatencyRate: 0.5, MaxLatency: 100 * time.Microsecond})
	})
}

func TestReadErrorRate(t *testing.T) {
	ctx := t.Context()
	inner := memStore(t)
	if err := inner.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	fs := faultstore.New(inner, faultstore.Options{Seed: 42, ReadErrorRate: 0.3})
	const n = 2000
	failed := 0
	for range n {
		data, err := fs.Get(ctx, "k")
		switch {
		case err == nil:
			if string(data) != "v" {
				t.Fatalf("Get = %q", data)
			}
		case errors.Is(err, faultstore.ErrInjected):
			failed++
			if !store.IsRetryable(err) || !errors.Is(err, store.ErrTransient) {
				t.Fatalf("injected error %v is not retryable", err)
			}
		default:
			t.Fatalf("unexpected error %v", err)
		}
	}
	if failed < n/5 || failed > n*2/5 {
		t.Fatalf("%d of %d reads failed, want about 30%%", failed, n)
	}
	if c := fs.Counts(); c.ReadErrors != int64(failed) || c.Total() != int64(failed) {
		t.Fatalf("Counts = %+v, want %d read errors", c, failed)
	}
}

func TestSeedIsReproducible(t *testing.T) {
	ctx := t.Context()
	pattern := func() []bool {
		inner := memStore(t)
		fs := faultstore.New(inner, faultstore.Options{Seed: 7, WriteErrorRate: 0.5})
		var out []bool
		for i := range 64 {
			out = append(out, fs.Put(ctx, fmt.Sprint(i), nil) == nil)
		}
		return out
	}
	a, b := pattern(), pattern()
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different fault patterns:\n%v\n%v", a, b)
	}
}

func TestWriteErrorDoesNotWrite(t *testing.T) {
	ctx := t.Context()
	inner := memStore(t)
	fs := faultstore.New(inner, faultstore.Options{})
	fs.FailNext(faultstore.OpWrite, 1)
	err := fs.PutIfAbsent(ctx, "_delta_log/00000000000000000001.json", []byte("c1"))
	if !errors.Is(err, faultstore.ErrInjected) || errors.Is(err, faultstore.ErrLostResponse) {
		t.Fatalf("err = %v, want an injected write error", err)
	}
	if _, err := inner.Get(ctx, "_delta_log/00000000000000000001.json"); !errors.Is(err, store.ErrNotExist) {
		t.Fatalf("failed write reached the store: %v", err)
	}
	// The next write goes through.
	if err := fs.PutIfAbsent(ctx, "_delta_log/00000000000000000001.json", []byte("c1")); err != nil {
		t.Fatal(err)
	}
	if c := fs.Counts(); c.WriteErrors != 1 {
		t.Fatalf("Counts = %+v", c)
	}
}

func TestLostResponse(t *testing.T) {
	ctx := t.Context()
	inner := memStore(t)
	fs := faultstore.New(inner, faultstore.Options{})
	key := "_delta_log/00000000000000000005.json"

	fs.FailNext(faultstore.OpLostResponse, 1)
	err := fs.PutIfAbsent(ctx, key, []byte("mine"))
	if !errors.Is(err, faultstore.ErrLostResponse) || !errors.Is(err, faultstore.ErrInjected) || !store.IsRetryable(err) {
		t.Fatalf("err = %v, want a retryable lost response", err)
	}
	if got, err := inner.Get(ctx, key); err != nil || string(got) != "mine" {
		t.Fatalf("lost-response write did not land: %q, %v", got, err)
	}
	// The naive retry now "loses" to itself: callers must read back.
	if err := fs.PutIfAbsent(ctx, key, []byte("mine")); !errors.Is(err, store.ErrPreconditionFailed) {
		t.Fatalf("retry after lost response: %v, want ErrPreconditionFailed", err)
	}

	fs.FailNext(faultstore.OpLostResponse, 1)
	if err := fs.Put(ctx, "_last_checkpoint", []byte("v2")); !errors.Is(err, faultstore.ErrLostResponse) {
		t.Fatalf("Put: %v, want lost response", err)
	}
	if got, _ := inner.Get(ctx, "_last_checkpoint"); string(got) != "v2" {
		t.Fatalf("lost-response Put did not land: %q", got)
	}
	if c := fs.Counts(); c.LostResponses != 2 || c.WriteErrors != 0 {
		t.Fatalf("Counts = %+v", c)
	}
	// A losing PutIfAbsent is reported as lost, never as a lost response.
	fs.FailNext(faultstore.OpLostResponse, 1)
	if err := fs.PutIfAbsent(ctx, key, []byte("other")); !errors.Is(err, store.ErrPreconditionFailed) {
		t.Fatalf("losing PutIfAbsent: %v", err)
	}
}

func TestListFaults(t *testing.T) {
	ctx := t.Context()
	inner := memStore(t)
	var all []string
	for i := range 10 {
		k := fmt.Sprintf("_delta_log/%020d.json", i)
		all = append(all, k)
		if err := inner.Put(ctx, k, nil); err != nil {
			t.Fatal(err)
		}
	}
	fs := faultstore.New(inner, faultstore.Options{Seed: 3, ListErrorRate: 1})
	midway := 0
	for range 50 {
		var got []string
		var lastErr error
		for info, err := range fs.List(ctx, "_delta_log/", "") {
			if err != nil {
				lastErr = err
				break
			}
			got = append(got, info.Key)
		}
		if !errors.Is(lastErr, faultstore.ErrInjected) {
			t.Fatalf("listing ended with %v, want an injected error", lastErr)
		}
		if !slices.Equal(got, all[:len(got)]) {
			t.Fatalf("objects before the fault %q are not a prefix of the listing", got)
		}
		if len(got) > 0 {
			midway++
		}
	}
	if midway == 0 {
		t.Fatalf("no list fault came part-way through a listing")
	}
	if c := fs.Counts(); c.ListErrors != 50 {
		t.Fatalf("Counts = %+v, want 50 list errors", c)
	}
	fs.SetEnabled(false)
	if got := storetest.Keys(t, fs, "_delta_log/", ""); !slices.Equal(got, all) {
		t.Fatalf("disabled store lists %q", got)
	}
}

func TestReadAtFault(t *testing.T) {
	ctx := t.Context()
	inner := memStore(t)
	if err := inner.Put(ctx, "f.parquet", []byte("PAR1....PAR1")); err != nil {
		t.Fatal(err)
	}
	fs := faultstore.New(inner, faultstore.Options{})
	r, err := fs.Open(ctx, "f.parquet")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fs.FailNext(faultstore.OpRead, 1)
	p := make([]byte, 4)
	if _, err := r.ReadAt(p, 0); !errors.Is(err, faultstore.ErrInjected) {
		t.Fatalf("ReadAt: %v, want injected", err)
	}
	if n, err := r.ReadAt(p, 8); err != nil || string(p[:n]) != "PAR1" || r.Size() != 12 {
		t.Fatalf("ReadAt after fault = %q, %v", p[:n], err)
	}
}

func TestLatencyHonoursContext(t *testing.T) {
	inner := memStore(t)
	fs := faultstore.New(inner, faultstore.Options{Seed: 1, LatencyRate: 1, MaxLatency: time.Hour})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := fs.Get(ctx, "k")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get: %v, want the context deadline", err)
	}
	if store.IsRetryable(err) {
		t.Fatalf("a context error is not retryable")
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("delay ignored the context (%v)", el)
	}
	if c := fs.Counts(); c.Delays != 1 {
		t.Fatalf("Counts = %+v", c)
	}
	fs.SetEnabled(false)
	if _, err := fs.Get(t.Context(), "k"); !errors.Is(err, store.ErrNotExist) {
		t.Fatalf("disabled store: %v", err)
	}
}

// A commit-style loop over a faulty store: retry transient errors, and after
// an ambiguous failure read the key back to learn whether we won.
func TestRetryLoopConvergesUnderFaults(t *testing.T) {
	ctx := t.Context()
	inner := memStore(t)
	fs := faultstore.New(inner, faultstore.Options{Seed: 99, ReadErrorRate: 0.2, WriteErrorRate: 0.2, LostResponseRate: 0.2})
	for v := range 100 {
		key := fmt.Sprintf("_delta_log/%020d.json", v)
		payload := []byte(fmt.Sprintf(`{"commitInfo":{"v":%d}}`, v))
		for attempt := 0; ; attempt++ {
			if attempt > 50 {
				t.Fatalf("version %d: no progress", v)
			}
			err := fs.PutIfAbsent(ctx, key, payload)
			if err == nil {
				break
			}
			if !store.IsRetryable(err) && !errors.Is(err, store.ErrPreconditionFailed) {
				t.Fatalf("version %d: %v", v, err)
			}
			// Ambiguous or lost: read back (retrying transient read faults).
			got, rerr := fs.Get(ctx, key)
			if rerr == nil && string(got) == string(payload) {
				break // it was ours
			}
			if rerr == nil {
				t.Fatalf("version %d written by someone else", v)
			}
		}
	}
	c := fs.Counts()
	if c.WriteErrors == 0 || c.LostResponses == 0 {
		t.Fatalf("expected injected faults, got %+v", c)
	}
	if got := storetest.Keys(t, inner, "_delta_log/", ""); len(got) != 100 {
		t.Fatalf("%d versions written, want 100", len(got))
	}
	t.Logf("faults injected: %+v", c)
}

// TestPutStreamFaults: an injected PutStream fault, before or part-way
// through the stream, never publishes anything, leaves no temporary file,
// and is retryable; a lost response lands.
func TestPutStreamFaults(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	inner, err := store.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	fs := faultstore.New(inner, faultstore.Options{Seed: 7})
	key := "_delta_log/00000000000000000009.checkpoint.parquet"
	if err := inner.Put(ctx, key, []byte("old")); err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("c"), 1000)
	calls, wrote := 0, 0
	write := func(w io.Writer) error {
		calls++
		for range 5 {
			if _, err := w.Write(chunk); err != nil {
				return err
			}
			wrote++
		}
		return nil
	}
	for i := range 40 {
		fs.FailNext(faultstore.OpWrite, 1)
		err := fs.PutStream(ctx, key, write)
		if !faultstore.IsInjected(err) || !store.IsRetryable(err) || errors.Is(err, faultstore.ErrLostResponse) {
			t.Fatalf("attempt %d: err = %v, want a retryable injected write fault", i, err)
		}
		if got, err := inner.Get(ctx, key); err != nil || string(got) != "old" {
			t.Fatalf("attempt %d: object changed by a failed stream: %.20q, %v", i, got, err)
		}
	}
	// Both fault points were drawn: some attempts never called write, some
	// failed after a few chunks.
	if calls == 0 || calls == 40 || wrote == 0 {
		t.Errorf("write called %d times (%d chunks) in 40 faulted attempts: want faults both before and during the stream", calls, wrote)
	}
	ents, err := os.ReadDir(filepath.Join(dir, "_delta_log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), store.TempPrefix) {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
	if c := fs.Counts(); c.WriteErrors != 40 {
		t.Errorf("Counts = %+v, want 40 write errors", c)
	}

	fs.FailNext(faultstore.OpLostResponse, 1)
	err = fs.PutStream(ctx, key, write)
	if !errors.Is(err, faultstore.ErrLostResponse) || !store.IsRetryable(err) {
		t.Fatalf("lost response: err = %v", err)
	}
	if got, _ := inner.Get(ctx, key); !bytes.Equal(got, bytes.Repeat(chunk, 5)) {
		t.Fatalf("lost-response PutStream did not land (%d bytes)", len(got))
	}
	// Without faults the stream goes through.
	if err := fs.PutStream(ctx, key, func(w io.Writer) error { _, err := w.Write([]byte("new")); return err }); err != nil {
		t.Fatal(err)
	}
	if got, _ := inner.Get(ctx, key); string(got) != "new" {
		t.Fatalf("Get = %q", got)
	}
}
