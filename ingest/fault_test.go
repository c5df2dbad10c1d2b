package ingest

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kappa-lake/kappa/internal/store"
	"github.com/kappa-lake/kappa/internal/store/faultstore"
)

// TestStoreFaults runs the daemon against stores that fail reads, lists and
// writes at random and lose write responses, with restarts in between; the
// table must still hold every message exactly once.
func TestStoreFaults(t *testing.T) {
	brokers := startBroker(t, 3, "faulty")
	url := filepath.Join(t.TempDir(), "faulty")
	w := newProducer(brokers, "faulty")
	defer w.Close()
	bad := func(i int) bool { return i%31 == 5 }
	var stores []*faultstore.Store
	faulty := func(seed uint64) func(store.Store) store.Store {
		return func(st store.Store) store.Store {
			fs := faultstore.New(st, faultstore.Options{Seed: seed, ReadErrorRate: 0.05, ListErrorRate: 0.05, WriteErrorRate: 0.1, LostResponseRate: 0.05})
			fs.SetEnabled(false) // enabled once the daemon has opened its tables
			stores = append(stores, fs)
			return fs
		}
	}
	produced := 0
	for run := 0; run < 4; run++ {
		produceMixed(t, w, produced, produced+1500, bad)
		produced += 1500
		o := testOptions(t, brokers, url, "faulty")
		o.FlushRows = 200
		o.FlushInterval = 50 * time.Millisecond
		o.wrapStore = faulty(uint64(run + 1))
		d, err := New(context.Background(), o)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		for _, fs := range stores {
			fs.SetEnabled(true)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		// Stop mid-stream: after some commits, before the end.
		deadline := time.Now().Add(20 * time.Second)
		for d.m.Commits.Load() < 3 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		_ = d.Close()
	}
	var c faultstore.Counts
	for _, fs := range stores {
		x := fs.Counts()
		c.ReadErrors += x.ReadErrors
		c.ListErrors += x.ListErrors
		c.WriteErrors += x.WriteErrors
		c.LostResponses += x.LostResponses
	}
	t.Logf("injected faults: %+v", c)
	if c.Total() == 0 {
		t.Fatal("no faults injected")
	}
	// Finish on a healthy store, to the end.
	o := testOptions(t, brokers, url, "faulty")
	o.UntilEnd = true
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := Run(ctx, o); err != nil {
		t.Fatal(err)
	}
	checkRows(t, url, produced, "test", "faulty", bad)
	checkDeadLetters(t, url+"_dlq", produced, bad)
}

// failCommits is a store whose commit writes (put-if-absent under
// _delta_log/) fail while fail is set; data files still land.
type failCommits struct {
	store.Store
	fail  atomic.Bool
	fails atomic.Int64
}

func (s *failCommits) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	if s.fail.Load() && strings.HasPrefix(key, "_delta_log/") {
		s.fails.Add(1)
		return errors.New("injected: commit write failed")
	}
	return s.Store.PutIfAbsent(ctx, key, data)
}

// TestCommitFailureThenShutdown: commits fail while records keep arriving;
// at shutdown the final flush must commit the earlier batch's files and the
// new ones together (regression: the second batch's files replaced the
// first's, losing rows while the txn covered them).
func TestCommitFailureThenShutdown(t *testing.T) {
	brokers := startBroker(t, 2, "stuck")
	url := filepath.Join(t.TempDir(), "stuck")
	w := newProducer(brokers, "stuck")
	defer w.Close()
	var main *failCommits
	o := testOptions(t, brokers, url, "stuck")
	o.FlushInterval = 50 * time.Millisecond
	o.wrapStore = func(st store.Store) store.Store {
		f := &failCommits{Store: st}
		if !strings.HasSuffix(st.URL(), "_dlq") {
			main = f
		}
		return f
	}
	d, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	produceJSON(t, w, 0, 100)
	waitRows(t, url, 100, 20*time.Second)
	// Data files land, commits fail: the batch's files wait for a commit.
	main.fail.Store(true)
	produceJSON(t, w, 100, 200)
	deadline := time.Now().Add(20 * time.Second)
	for d.m.Errors.Load() < 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	// More records queue up behind the failing flush.
	produceJSON(t, w, 200, 300)
	for d.m.Errors.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if d.m.Errors.Load() < 3 {
		t.Fatalf("flush failures: %d", d.m.Errors.Load())
	}
	main.fail.Store(false)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_ = d.Close()
	t.Logf("%d commit writes failed; %d rows after shutdown", main.fails.Load(), rowCount(t, url))
	o2 := testOptions(t, brokers, url, "stuck")
	o2.UntilEnd = true
	if err := Run(context.Background(), o2); err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, url, 300, "test", "stuck")
}
