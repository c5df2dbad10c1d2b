package txlog

import (
	"context"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kappa-lake/kappa/internal/store"
	"github.com/kappa-lake/kappa/internal/testutil"
)

// byteCountingStore wraps a real store and counts the bytes read from it (Get
// and ReaderAt.ReadAt) and which keys were read.
type byteCountingStore struct {
	store.Store
	bytes atomic.Int64
	mu    sync.Mutex
	keys  map[string]bool
}

func newByteCountingStore(st store.Store) *byteCountingStore {
	return &byteCountingStore{Store: st, keys: map[string]bool{}}
}

func (c *byteCountingStore) touch(key string) {
	c.mu.Lock()
	c.keys[key] = true
	c.mu.Unlock()
}

func (c *byteCountingStore) touched(prefix string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for k := range c.keys {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	return out
}

func (c *byteCountingStore) Get(ctx context.Context, key string) ([]byte, error) {
	c.touch(key)
	data, err := c.Store.Get(ctx, key)
	c.bytes.Add(int64(len(data)))
	return data, err
}

func (c *byteCountingStore) Open(ctx context.Context, key string) (store.ReaderAt, error) {
	c.touch(key)
	r, err := c.Store.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	return &byteCountingReader{ReaderAt: r, n: &c.bytes}, nil
}

type byteCountingReader struct {
	store.ReaderAt
	n *atomic.Int64
}

func (r *byteCountingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.ReaderAt.ReadAt(p, off)
	r.n.Add(int64(n))
	return n, err
}

// collect reads all actions of seq, failing t on an error.
func collect(t testing.TB, seq iter.Seq2[Action, error]) []Action {
	t.Helper()
	var out []Action
	for a, err := range seq {
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		out = append(out, a)
	}
	return out
}

// TestReadCheckpointStateFixtures: on checkpoints written by Spark,
// delta-rs and the kernel (classic, multi-part, V2 JSON and Parquet, with
// sidecars), ReadCheckpointState yields exactly the non-file actions
// ReadCheckpoint yields, in the same order, and never reads a sidecar.
func TestReadCheckpointStateFixtures(t *testing.T) {
	tables := checkpointFixtures
	withSidecars := 0
	for _, tbl := range tables {
		t.Run(strings.Join(tbl, "/"), func(t *testing.T) {
			dir := testutil.Testdata(t, tbl...)
			parts := latestCheckpoint(t, dir)
			ctx := context.Background()

			full := newByteCountingStore(openTestStore(t, dir))
			var want []Action
			files := 0
			for _, a := range collect(t, ReadCheckpoint(ctx, full, parts, nil)) {
				if isStateAction(a) {
					want = append(want, a)
				} else {
					files++
				}
			}
			if len(full.touched(SidecarDir)) > 0 {
				withSidecars++
			}

			state := newByteCountingStore(openTestStore(t, dir))
			got := collect(t, ReadCheckpointState(ctx, state, parts))
			if !reflect.DeepEqual(got, want) {
				t.Errorf("ReadCheckpointState yielded %d actions, ReadCheckpoint %d state actions:\n got  %s\n want %s",
					len(got), len(want), stateKinds(got), stateKinds(want))
			}
			if sc := state.touched(SidecarDir); len(sc) > 0 {
				t.Errorf("ReadCheckpointState read sidecars %q", sc)
			}
			var p, m int
			for _, a := range got {
				if a.Protocol != nil {
					p++
				}
				if a.MetaData != nil {
					m++
				}
			}
			if p != 1 || m != 1 {
				t.Errorf("%d protocol and %d metaData actions, want 1 each", p, m)
			}
			t.Logf("%d parts, %d state actions, %d file actions; bytes read: full %d, state %d",
				len(parts), len(got), files, full.bytes.Load(), state.bytes.Load())
		})
	}
	if withSidecars == 0 && !t.Skipped() {
		t.Error("no fixture checkpoint had sidecars: the sidecar case is not covered")
	}
}

func stateKinds(as []Action) string {
	var b strings.Builder
	for i, a := range as {
		if i > 0 {
			b.WriteByte(' ')
		}
		switch {
		case a.Protocol != nil:
			b.WriteString("protocol")
		case a.MetaData != nil:
			b.WriteString("metaData")
		case a.Txn != nil:
			b.WriteString("txn:" + a.Txn.AppID)
		case a.DomainMetadata != nil:
			b.WriteString("domain:" + a.DomainMetadata.Domain)
		case a.CheckpointMetadata != nil:
			b.WriteString("checkpointMetadata")
		default:
			b.WriteString("other")
		}
	}
	return b.String()
}

// syntheticFiles yields n adds (with stats JSON and partition values) and,
// every 50th, a remove, generated on the fly.
func syntheticFiles(n int) iter.Seq2[Action, error] {
	return func(yield func(Action, error) bool) {
		for i := range n {
			day := fmt.Sprintf("2024-%02d-%02d", 1+i%12, 1+i%28)
			bucket := fmt.Sprint(i % 16)
			a := &Add{
				Path:             fmt.Sprintf("day=%s/bucket=%s/part-%08d-3f1c9a2e-5b7d-4e21-9c0a-0123456789ab.c000.zstd.parquet", day, bucket, i),
				PartitionValues:  map[string]*string{"day": &day, "bucket": &bucket},
				Size:             int64(100_000 + i%5000),
				ModificationTime: 1_700_000_000_000 + int64(i),
				DataChange:       true,
				Stats: fmt.Sprintf(`{"numRecords":%d,"minValues":{"id":%d,"name":"n%07d","ts":"2024-01-01T00:00:00.000Z"},"maxValues":{"id":%d,"name":"z%07d","ts":"2024-01-02T00:00:00.000Z"},"nullCount":{"id":0,"name":%d,"ts":0},"tightBounds":true}`,
					1000+i%100, i*1000, i, i*1000+999, i, i%3),
			}
			if !yield(Action{Add: a}, nil) {
				return
			}
			if i%50 == 49 {
				ts := int64(1_700_000_000_000 + i)
				if !yield(Action{Remove: &Remove{Path: fmt.Sprintf("old/part-%08d.parquet", i), DeletionTimestamp: &ts, DataChange: true}}, nil) {
					return
				}
			}
		}
	}
}

const syntheticSchema = `{"type":"struct","fields":[
 {"name":"id","type":"long","nullable":true,"metadata":{}},
 {"name":"name","type":"string","nullable":true,"metadata":{}},
 {"name":"ts","type":"timestamp","nullable":true,"metadata":{}},
 {"name":"day","type":"date","nullable":true,"metadata":{}},
 {"name":"bucket","type":"integer","nullable":true,"metadata":{}}]}`

// syntheticData is checkpoint data of n synthetic adds with a protocol,
// metadata, two txns and a domain.
func syntheticData(n int) CheckpointData {
	return CheckpointData{
		Protocol: &Protocol{MinReaderVersion: 3, MinWriterVersion: 7, ReaderFeatures: []string{"timestampNtz"}, WriterFeatures: []string{"timestampNtz", "domainMetadata"}},
		Metadata: &Metadata{
			ID: "0b9c5b52-0000-4000-8000-00000000000a", Format: Format{Provider: "parquet", Options: map[string]string{}},
			SchemaString: syntheticSchema, PartitionColumns: []string{"day", "bucket"},
			Configuration: map[string]string{"delta.checkpointInterval": "10"}, CreatedTime: ptr(int64(1_700_000_000_000)),
		},
		Txns:           []*Txn{{AppID: "ingest-a", Version: 41}, {AppID: "ingest-b", Version: 7, LastUpdated: ptr(int64(5))}},
		DomainMetadata: []*DomainMetadata{{Domain: "delta.rowTracking", Configuration: `{"rowIdHighWaterMark":1}`}},
		Files:          syntheticFiles(n),
	}
}

// stateActions is what ReadCheckpointState must yield for d.
func stateActions(d CheckpointData) []Action {
	out := []Action{{Protocol: d.Protocol}, {MetaData: d.Metadata}}
	for _, t := range d.Txns {
		out = append(out, Action{Txn: t})
	}
	for _, dm := range d.DomainMetadata {
		out = append(out, Action{DomainMetadata: dm})
	}
	return out
}

// TestReadCheckpointStateReadsLittle writes a checkpoint of 200,000 adds
// (ten row groups) and checks that ReadCheckpointState reads a small
// fraction of it: the footer and the state columns of the first row group.
func TestReadCheckpointStateReadsLittle(t *testing.T) {
	const n = 200_000
	dir := t.TempDir()
	ctx := context.Background()
	st := openTestStore(t, dir)
	d := syntheticData(n)
	lc, err := WriteCheckpoint(ctx, st, 20, d)
	if err != nil {
		t.Fatal(err)
	}
	if *lc.NumOfAddFiles != n || lc.Size != int64(2+len(d.Txns)+len(d.DomainMetadata)+n+n/50) {
		t.Fatalf("last checkpoint %+v", lc)
	}
	parts := latestCheckpoint(t, dir)
	cs := newByteCountingStore(st)
	got := collect(t, ReadCheckpointState(ctx, cs, parts))
	want := stateActions(d)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("state actions:\n got  %s\n want %s", stateKinds(got), stateKinds(want))
	}
	read := cs.bytes.Load()
	size := *lc.SizeInBytes
	t.Logf("checkpoint of %d adds: %d bytes; ReadCheckpointState read %d bytes (%.2f%%)", n, size, read, 100*float64(read)/float64(size))
	if read*20 >= size {
		t.Errorf("ReadCheckpointState read %d of %d bytes, want < 5%%", read, size)
	}
	// ReadCheckpoint of the same file yields the same state actions.
	var full []Action
	adds := 0
	for _, a := range collect(t, ReadCheckpoint(ctx, st, parts, nil)) {
		if isStateAction(a) {
			full = append(full, a)
		} else if a.Add != nil {
			adds++
		}
	}
	if !reflect.DeepEqual(full, want) || adds != n {
		t.Errorf("ReadCheckpoint: %d adds, state %s", adds, stateKinds(full))
	}
}

// TestReadCheckpointStateStop: the consumer may stop early, and a
// canceled context is reported.
func TestReadCheckpointStateStop(t *testing.T) {
	dir := testutil.Testdata(t, "delta-golden", "multi-part-checkpoint", "delta")
	st := openTestStore(t, dir)
	parts := latestCheckpoint(t, dir)
	n := 0
	for _, err := range ReadCheckpointState(context.Background(), st, parts) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		break
	}
	if n != 1 {
		t.Fatalf("got %d actions before stopping", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var gotErr error
	for _, err := range ReadCheckpointState(ctx, st, parts) {
		gotErr = err
	}
	if gotErr == nil || !strings.Contains(gotErr.Error(), "canceled") {
		t.Fatalf("canceled context: err = %v", gotErr)
	}
}

// TestReadCheckpointStateCorrupt: a malformed file is ErrCorruptLog naming
// the file, as for ReadCheckpoint.
func TestReadCheckpointStateCorrupt(t *testing.T) {
	dir := t.TempDir()
	key := CheckpointKey(3)
	if err := os.MkdirAll(filepath.Join(dir, "_delta_log"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(key)), []byte("PAR1 not parquet at all PAR1"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, _ := ParseLogFile(key)
	var gotErr error
	for _, err := range ReadCheckpointState(context.Background(), openTestStore(t, dir), []LogFile{f}) {
		if err != nil {
			gotErr = err
		}
	}
	if !isCorrupt(gotErr) || !strings.Contains(gotErr.Error(), key) {
		t.Fatalf("err = %v, want ErrCorruptLog naming %s", gotErr, key)
	}
}
