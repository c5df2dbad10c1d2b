package table_test

import (
	"context"
	"fmt"
	"io"
	"iter"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kappa-lake/kappa/internal/store"
	"github.com/kappa-lake/kappa/table"
	"github.com/kappa-lake/kappa/txlog"
)

func testSchema() *txlog.StructType {
	return &txlog.StructType{Fields: []*txlog.StructField{
		{Name: "id", Type: &txlog.PrimitiveType{Name: txlog.TypeLong}, Nullable: true},
		{Name: "device", Type: &txlog.PrimitiveType{Name: txlog.TypeString}, Nullable: true},
		{Name: "temp", Type: &txlog.PrimitiveType{Name: txlog.TypeDouble}, Nullable: true},
	}}
}

func memURL() string { return "mem://" + uuid.NewString() }

func newTable(t testing.TB, url string, opts ...table.CreateOption) *table.Table {
	t.Helper()
	tbl, err := table.Create(context.Background(), url, testSchema(), opts...)
	if err != nil {
		t.Fatalf("create %s: %v", url, err)
	}
	t.Cleanup(func() { _ = tbl.Close() })
	return tbl
}

func addFile(path string) *txlog.Add {
	return &txlog.Add{
		Path: path, Size: 100, ModificationTime: 1700000000000, DataChange: true,
		Stats: `{"numRecords":1}`,
	}
}

func commitAdds(t testing.TB, tbl *table.Table, paths ...string) int64 {
	t.Helper()
	tx, err := tbl.NewTransaction(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		tx.AddFiles(addFile(p))
	}
	v, err := tx.Commit(context.Background())
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	return v
}

func filePaths(s *table.Snapshot) []string {
	var out []string
	for _, f := range s.Files() {
		out = append(out, f.Path)
	}
	return out
}

// countingStore counts store requests by kind.
type countingStore struct {
	store.Store
	gets, puts, lists, stats, opens atomic.Int64
}

func (c *countingStore) Get(ctx context.Context, key string) ([]byte, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, key)
}

func (c *countingStore) Open(ctx context.Context, key string) (store.ReaderAt, error) {
	c.opens.Add(1)
	return c.Store.Open(ctx, key)
}

func (c *countingStore) Stat(ctx context.Context, key string) (store.ObjectInfo, error) {
	c.stats.Add(1)
	return c.Store.Stat(ctx, key)
}

func (c *countingStore) Put(ctx context.Context, key string, data []byte) error {
	c.puts.Add(1)
	return c.Store.Put(ctx, key, data)
}

func (c *countingStore) PutStream(ctx context.Context, key string, write func(io.Writer) error) error {
	c.puts.Add(1)
	return c.Store.PutStream(ctx, key, write)
}

func (c *countingStore) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	c.puts.Add(1)
	return c.Store.PutIfAbsent(ctx, key, data)
}

func (c *countingStore) List(ctx context.Context, prefix, startAfter string) iter.Seq2[store.ObjectInfo, error] {
	c.lists.Add(1)
	return c.Store.List(ctx, prefix, startAfter)
}

func (c *countingStore) total() int64 {
	return c.gets.Load() + c.puts.Load() + c.lists.Load() + c.stats.Load() + c.opens.Load()
}

func (c *countingStore) reset() {
	c.gets.Store(0)
	c.puts.Store(0)
	c.lists.Store(0)
	c.stats.Store(0)
	c.opens.Store(0)
}

func (c *countingStore) String() string {
	return fmt.Sprintf("get=%d open=%d stat=%d list=%d put=%d", c.gets.Load(), c.opens.Load(), c.stats.Load(), c.lists.Load(), c.puts.Load())
}

// stepClock is a settable clock for tests.
type stepClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func (c *stepClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
