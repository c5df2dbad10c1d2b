package txlog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kappa-lake/kappa/internal/store"
)

// fuzzCheckpointStore is one in-memory store per fuzzing process: each input
// overwrites the same keys.
var fuzzCheckpointStore = sync.OnceValues(func() (store.Store, error) {
	return store.Open(context.Background(), "mem://fuzz-checkpoint-"+uuid.NewString())
})

// seedCheckpoint writes a small checkpoint with every action kind and
// returns its bytes, so the fuzzer has a valid seed without the fixtures.
func seedCheckpoint(f *testing.F) []byte {
	f.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "mem://fuzz-seed-"+uuid.NewString())
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	one, day := int64(1), "2024-01-02"
	d := CheckpointData{
		Protocol: &Protocol{MinReaderVersion: 1, MinWriterVersion: 2},
		Metadata: &Metadata{
			ID: "id", Format: Format{Provider: "parquet"}, PartitionColumns: []string{"d"},
			SchemaString:  `{"type":"struct","fields":[{"name":"a","type":"long","nullable":true,"metadata":{}},{"name":"d","type":"date","nullable":true,"metadata":{}}]}`,
			Configuration: map[string]string{"k": "v"},
		},
		Txns: []*Txn{{AppID: "app", Version: 3, LastUpdated: &one}},
		Files: filesOf([]*Add{{
			Path: "d=2024-01-02/a.parquet", PartitionValues: map[string]*string{"d": &day}, Size: 10,
			ModificationTime: 1, DataChange: true,
			Stats: `{"numRecords":2,"minValues":{"a":1},"maxValues":{"a":5},"nullCount":{"a":0}}`,
		}}, []*Remove{{Path: "old.parquet", DeletionTimestamp: &one, DataChange: true}}),
	}
	if _, err := WriteCheckpoint(ctx, st, 5, d); err != nil {
		f.Fatal(err)
	}
	data, err := st.Get(ctx, "_delta_log/00000000000000000005.checkpoint.parquet")
	if err != nil {
		f.Fatal(err)
	}
	return data
}

// FuzzReadCheckpoint feeds arbitrary bytes to ReadCheckpoint and
// ReadCheckpointState as a classic Parquet checkpoint and as a V2 JSON
// checkpoint: no panic, no hang, only table-state actions from
// ReadCheckpointState, and
// every error wraps ErrCorruptLog (or, for a sidecar the input points at,
// store.ErrNotExist).
func FuzzReadCheckpoint(f *testing.F) {
	f.Add(seedCheckpoint(f))
	f.Add([]byte("PAR1"))
	f.Add([]byte("PAR1\x00\x00\x00\x00PAR1"))
	f.Add([]byte(`{"checkpointMetadata":{"version":5}}` + "\n" + `{"sidecar":{"path":"x.parquet","sizeInBytes":1,"modificationTime":1}}`))
	for _, data := range fuzzSeeds(f, func(p, name string) bool {
		return inLog(p) && strings.Contains(name, ".checkpoint.") && len(name) > 0
	}) {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := fuzzCheckpointStore()
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for _, key := range []string{
			"_delta_log/00000000000000000005.checkpoint.parquet",
			"_delta_log/00000000000000000005.checkpoint.3a0d65cd-4056-49b8-937b-95f9e3ee90e5.json",
		} {
			if err := st.Put(ctx, key, data); err != nil {
				t.Fatal(err)
			}
			lf, ok := ParseLogFile(key)
			if !ok {
				t.Fatalf("ParseLogFile(%q)", key)
			}
			lf.Size = int64(len(data))
			for _, state := range []bool{false, true} {
				checkReadCheckpoint(t, st, lf, state)
			}
		}
	})
}

// checkReadCheckpoint fails t when readAllCheckpoint breaks a promise on
// lf or does not finish within 5 s (a hang on hostile input).
func checkReadCheckpoint(t *testing.T, st store.Store, lf LogFile, state bool) {
	t.Helper()
	done := make(chan string, 1)
	go func() { done <- readAllCheckpoint(context.Background(), st, lf, state) }()
	select {
	case msg := <-done:
		if msg != "" {
			t.Fatalf("%s (state only: %v): %s", lf.Key, state, msg)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s (state only: %v): reading %d bytes takes more than 5s", lf.Key, state, lf.Size)
	}
}

// readAllCheckpoint reads a checkpoint to the end (with ReadCheckpointState
// when state is set) and describes the first broken promise ("" if none).
func readAllCheckpoint(ctx context.Context, st store.Store, lf LogFile, state bool) string {
	n := 0
	seq := ReadCheckpoint(ctx, st, []LogFile{lf}, nil)
	if state {
		seq = ReadCheckpointState(ctx, st, []LogFile{lf})
	}
	for a, err := range seq {
		if err != nil {
			if !errors.Is(err, ErrCorruptLog) && !errors.Is(err, store.ErrNotExist) {
				return fmt.Sprintf("error %v wraps neither ErrCorruptLog nor ErrNotExist", err)
			}
			if store.IsRetryable(err) {
				return fmt.Sprintf("error %v for a corrupt file is classified retryable", err)
			}
			if !strings.Contains(err.Error(), "checkpoint") {
				return fmt.Sprintf("error %q does not name the checkpoint", err)
			}
			return ""
		}
		if a.count() == 0 && a.Unknown == "" {
			return "empty action"
		}
		if state && !isStateAction(a) {
			return fmt.Sprintf("ReadCheckpointState yielded a file action %+v", a)
		}
		if a.Add != nil && a.Add.Stats != "" {
			_, _ = a.Add.ParsedStats()
		}
		if n++; n > 1<<20 {
			return fmt.Sprintf("more than %d actions from %d bytes", n, lf.Size)
		}
	}
	return ""
}
