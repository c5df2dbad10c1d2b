package faultstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kappa-lake/kappa/internal/store"
)

var (
	// ErrInjected is wrapped by every fault this package injects. It wraps
	// store.ErrTransient: store.IsRetryable(err) is true.
	ErrInjected = fmt.Errorf("faultstore: injected fault: %w", store.ErrTransient)
	// ErrLostResponse is returned after a write that did land on the inner
	// store. It wraps ErrInjected.
	ErrLostResponse = fmt.Errorf("response lost after the write succeeded: %w", ErrInjected)
)

// Op is a class of operations faults apply to.
type Op int

const (
	// OpRead: Get, Open, Stat and ReadAt on opened readers.
	OpRead Op = iota
	// OpList: List (the error may come part-way through the listing).
	OpList
	// OpWrite: Put, PutIfAbsent, Delete failing before reaching the store;
	// PutStream failing before or part-way through the stream (nothing is
	// published).
	OpWrite
	// OpLostResponse: Put, PutStream or PutIfAbsent landing, then reporting
	// an error.
	OpLostResponse
	numOps
)

func (o Op) String() string {
	switch o {
	case OpRead:
		return "read"
	case OpList:
		return "list"
	case OpWrite:
		return "write"
	case OpLostResponse:
		return "lost-response"
	}
	return fmt.Sprintf("Op(%d)", int(o))
}

// Options configures the fault rates. Probabilities are in [0, 1].
type Options struct {
	Seed uint64

	ReadErrorRate    float64
	ListErrorRate    float64
	WriteErrorRate   float64
	LostResponseRate float64

	// LatencyRate is the probability that an operation is delayed by a
	// uniform random duration in [0, MaxLatency].
	LatencyRate float64
	MaxLatency  time.Duration
}

// Counts reports how many faults were injected.
type Counts struct {
	ReadErrors, ListErrors, WriteErrors, LostResponses, Delays int64
}

// Total is the number of injected errors (delays not included).
func (c Counts) Total() int64 {
	return c.ReadErrors + c.ListErrors + c.WriteErrors + c.LostResponses
}

// Store is the fault-injecting wrapper. It is safe for concurrent use.
type Store struct {
	inner store.Store
	opts  Options

	mu       sync.Mutex
	rng      *rand.Rand
	forced   [numOps]int
	disabled atomic.Bool

	counts [numOps]atomic.Int64
	delays atomic.Int64
}

var _ store.Store = (*Store)(nil)

// New wraps inner.
func New(inner store.Store, opts Options) *Store {
	return &Store{inner: inner, opts: opts, rng: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15))}
}

// Inner returns the wrapped store.
func (s *Store) Inner() store.Store { return s.inner }

// SetEnabled switches random faults and latency on or off (forced faults
// from FailNext still fire). New stores are enabled.
func (s *Store) SetEnabled(on bool) { s.disabled.Store(!on) }

// FailNext forces the next n operations of class op to fail, whatever the
// rates and SetEnabled say.
func (s *Store) FailNext(op Op, n int) {
	s.mu.Lock()
	s.forced[op] += n
	s.mu.Unlock()
}

// Counts returns the faults injected so far.
func (s *Store) Counts() Counts {
	return Counts{
		ReadErrors:    s.counts[OpRead].Load(),
		ListErrors:    s.counts[OpList].Load(),
		WriteErrors:   s.counts[OpWrite].Load(),
		LostResponses: s.counts[OpLostResponse].Load(),
		Delays:        s.delays.Load(),
	}
}

func (s *Store) rate(op Op) float64 {
	switch op {
	case OpRead:
		return s.opts.ReadErrorRate
	case OpList:
		return s.opts.ListErrorRate
	case OpWrite:
		return s.opts.WriteErrorRate
	case OpLostResponse:
		return s.opts.LostResponseRate
	}
	return 0
}

// fault decides whether op fails now, and counts it.
func (s *Store) fault(op Op) bool {
	s.mu.Lock()
	hit := false
	if s.forced[op] > 0 {
		s.forced[op]--
		hit = true
	} else if r := s.rate(op); r > 0 && !s.disabled.Load() {
		hit = s.rng.Float64() < r
	}
	s.mu.Unlock()
	if hit {
		s.counts[op].Add(1)
	}
	return hit
}

// intn draws from the shared generator.
func (s *Store) intn(n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rng.IntN(n)
}

// delay sleeps a random latency when drawn; it returns ctx's error if the
// context ends first.
func (s *Store) delay(ctx context.Context) error {
	if s.opts.LatencyRate <= 0 || s.opts.MaxLatency <= 0 || s.disabled.Load() {
		return nil
	}
	s.mu.Lock()
	hit := s.rng.Float64() < s.opts.LatencyRate
	d := time.Duration(s.rng.Int64N(int64(s.opts.MaxLatency) + 1))
	s.mu.Unlock()
	if !hit {
		return nil
	}
	s.delays.Add(1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func injected(op, key string, base error) error {
	return fmt.Errorf("%s %q: %w", op, key, base)
}

// before runs the latency and the pre-operation fault of class op.
func (s *Store) before(ctx context.Context, class Op, op, key string) error {
	if err := s.delay(ctx); err != nil {
		return fmt.Errorf("%s %q: %w", op, key, err)
	}
	if s.fault(class) {
		return injected(op, key, ErrInjected)
	}
	return nil
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := s.before(ctx, OpRead, "get", key); err != nil {
		return nil, err
	}
	return s.inner.Get(ctx, key)
}

// Stat implements store.Store.
func (s *Store) Stat(ctx context.Context, key string) (store.ObjectInfo, error) {
	if err := s.before(ctx, OpRead, "stat", key); err != nil {
		return store.ObjectInfo{}, err
	}
	return s.inner.Stat(ctx, key)
}

// Open implements store.Store. ReadAt calls on the result are subject to
// read faults and latency too (with the Open context).
func (s *Store) Open(ctx context.Context, key string) (store.ReaderAt, error) {
	if err := s.before(ctx, OpRead, "open", key); err != nil {
		return nil, err
	}
	r, err := s.inner.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	return &reader{ReaderAt: r, s: s, ctx: ctx, key: key}, nil
}

type reader struct {
	store.ReaderAt
	s   *Store
	ctx context.Context //nolint:containedctx // io.ReaderAt has no context parameter
	key string
}

func (r *reader) ReadAt(p []byte, off int64) (int, error) {
	if err := r.s.before(r.ctx, OpRead, "read", r.key); err != nil {
		return 0, err
	}
	return r.ReaderAt.ReadAt(p, off)
}

// Put implements store.Store.
func (s *Store) Put(ctx context.Context, key string, data []byte) error {
	if err := s.before(ctx, OpWrite, "put", key); err != nil {
		return err
	}
	if err := s.inner.Put(ctx, key, data); err != nil {
		return err
	}
	if s.fault(OpLostResponse) {
		return injected("put", key, ErrLostResponse)
	}
	return nil
}

// PutStream implements store.Store. A write fault comes either before
// anything reaches the inner store or part-way through the stream: one of
// the first writes to w fails (or, if write writes less, the stream fails
// when write returns), and the inner PutStream sees the error, so the
// object is not published. A lost response comes after the inner write
// landed.
func (s *Store) PutStream(ctx context.Context, key string, write func(w io.Writer) error) error {
	if err := s.delay(ctx); err != nil {
		return fmt.Errorf("put %q: %w", key, err)
	}
	failAfter := -1
	if s.fault(OpWrite) {
		failAfter = s.intn(4) // 0: before the inner store is reached
		if failAfter == 0 {
			return injected("put", key, ErrInjected)
		}
	}
	err := s.inner.PutStream(ctx, key, func(w io.Writer) error {
		if failAfter < 0 {
			return write(w)
		}
		fw := &faultWriter{w: w, left: failAfter - 1, err: injected("put", key, ErrInjected)}
		if err := write(fw); err != nil {
			return err
		}
		return fw.err // the fault point was not reached: fail at the end
	})
	if err != nil {
		return err
	}
	if s.fault(OpLostResponse) {
		return injected("put", key, ErrLostResponse)
	}
	return nil
}

// faultWriter passes left writes through, then fails every write with err.
type faultWriter struct {
	w    io.Writer
	left int
	err  error
}

func (f *faultWriter) Write(p []byte) (int, error) {
	if f.left <= 0 {
		return 0, f.err
	}
	f.left--
	return f.w.Write(p)
}

// PutIfAbsent implements store.Store.
func (s *Store) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	if err := s.before(ctx, OpWrite, "put-if-absent", key); err != nil {
		return err
	}
	if err := s.inner.PutIfAbsent(ctx, key, data); err != nil {
		return err
	}
	if s.fault(OpLostResponse) {
		return injected("put-if-absent", key, ErrLostResponse)
	}
	return nil
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.before(ctx, OpWrite, "delete", key); err != nil {
		return err
	}
	return s.inner.Delete(ctx, key)
}

// List implements store.Store. An injected list fault comes either before
// the first object or after a random number of them.
func (s *Store) List(ctx context.Context, prefix, startAfter string) iter.Seq2[store.ObjectInfo, error] {
	return func(yield func(store.ObjectInfo, error) bool) {
		if err := s.delay(ctx); err != nil {
			yield(store.ObjectInfo{}, fmt.Errorf("list %q: %w", prefix, err))
			return
		}
		failAfter := -1
		if s.fault(OpList) {
			failAfter = s.intn(4) // 0: before the first object
		}
		n := 0
		for info, err := range s.inner.List(ctx, prefix, startAfter) {
			if n == failAfter {
				yield(store.ObjectInfo{}, injected("list", prefix, ErrInjected))
				return
			}
			if !yield(info, err) || err != nil {
				return
			}
			n++
		}
		if failAfter >= n { // the listing was shorter than the fault point
			yield(store.ObjectInfo{}, injected("list", prefix, ErrInjected))
		}
	}
}

// URL implements store.Store.
func (s *Store) URL() string { return s.inner.URL() }

// Close implements store.Store; it closes the inner store.
func (s *Store) Close() error { return s.inner.Close() }

// IsInjected reports whether err was injected by a faultstore.
func IsInjected(err error) bool { return errors.Is(err, ErrInjected) }
