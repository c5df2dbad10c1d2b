package txlog

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/kappa-lake/kappa/internal/store"
	"github.com/kappa-lake/kappa/internal/testutil"
)

// openTestStore opens a store on a local directory.
func openTestStore(tb testing.TB, dir string) store.Store {
	tb.Helper()
	st, err := store.Open(context.Background(), dir)
	if err != nil {
		tb.Fatalf("open store %s: %v", dir, err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	return st
}

// latestCheckpoint returns the parts of the newest checkpoint in a local
// table directory (all parts of one multi-part set or one V2 file).
func latestCheckpoint(tb testing.TB, dir string) []LogFile {
	tb.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "_delta_log"))
	if err != nil {
		tb.Fatal(err)
	}
	byVersion := map[int64][]LogFile{}
	best := int64(-1)
	for _, e := range ents {
		f, ok := ParseLogFile(LogDir + e.Name())
		if !ok || !f.Kind.IsCheckpoint() {
			continue
		}
		byVersion[f.Version] = append(byVersion[f.Version], f)
		best = max(best, f.Version)
	}
	if best < 0 {
		tb.Fatalf("no checkpoint in %s", dir)
	}
	parts := byVersion[best]
	sort.Slice(parts, func(i, j int) bool { return parts[i].Key < parts[j].Key })
	if len(parts) > 1 && parts[0].Kind == KindV2Checkpoint {
		parts = parts[:1]
	}
	return parts
}

// replayState is the reconciled state of a log at a version, computed from
// commit JSON files (the reference for checkpoint contents).
type replayState struct {
	protocol *Protocol
	metadata *Metadata
	adds     map[string]*Add
	removes  map[string]*Remove
	txns     map[string]int64
	domains  map[string]*DomainMetadata
}

func fileKey(path string, dv *DeletionVector) string { return path + "#" + dv.UniqueID() }

func newReplayState() *replayState {
	return &replayState{adds: map[string]*Add{}, removes: map[string]*Remove{}, txns: map[string]int64{}, domains: map[string]*DomainMetadata{}}
}

func (s *replayState) apply(a Action) {
	switch {
	case a.Protocol != nil:
		s.protocol = a.Protocol
	case a.MetaData != nil:
		s.metadata = a.MetaData
	case a.Add != nil:
		k := fileKey(a.Add.Path, a.Add.DeletionVector)
		s.adds[k] = a.Add
		delete(s.removes, k)
	case a.Remove != nil:
		k := fileKey(a.Remove.Path, a.Remove.DeletionVector)
		s.removes[k] = a.Remove
		delete(s.adds, k)
	case a.Txn != nil:
		s.txns[a.Txn.AppID] = a.Txn.Version
	case a.DomainMetadata != nil:
		if a.DomainMetadata.Removed {
			delete(s.domains, a.DomainMetadata.Domain)
		} else {
			s.domains[a.DomainMetadata.Domain] = a.DomainMetadata
		}
	}
}

// replayJSON replays commits 0..version of a local table directory.
func replayJSON(tb testing.TB, dir string, version int64) *replayState {
	tb.Helper()
	s := newReplayState()
	for v := int64(0); v <= version; v++ {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(CommitKey(v))))
		if err != nil {
			tb.Fatalf("commit %d: %v", v, err)
		}
		actions, err := ParseCommit(data)
		if err != nil {
			tb.Fatalf("commit %d: %v", v, err)
		}
		for _, a := range actions {
			s.apply(a)
		}
	}
	return s
}

// readAll reads a checkpoint into a replay state (checking that each file
// key appears once) and returns it with the raw actions.
func readAll(tb testing.TB, st store.Store, parts []LogFile) (*replayState, []Action) {
	tb.Helper()
	s := newReplayState()
	var all []Action
	seen := map[string]bool{}
	for a, err := range ReadCheckpoint(context.Background(), st, parts, nil) {
		if err != nil {
			tb.Fatalf("ReadCheckpoint: %v", err)
		}
		if a.CommitInfo != nil || a.CDC != nil {
			tb.Errorf("checkpoint yielded %+v", a)
		}
		if a.Add != nil || a.Remove != nil {
			var k string
			if a.Add != nil {
				k = fileKey(a.Add.Path, a.Add.DeletionVector)
			} else {
				k = fileKey(a.Remove.Path, a.Remove.DeletionVector)
			}
			if seen[k] {
				tb.Errorf("file %s appears twice in the checkpoint", k)
			}
			seen[k] = true
		}
		s.apply(a)
		all = append(all, a)
	}
	return s, all
}

// normStats decodes a stats JSON string for a semantic comparison (numbers
// as float64, so 1.50 == 1.5).
func normStats(tb testing.TB, s string) any {
	tb.Helper()
	if s == "" {
		return nil
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		tb.Fatalf("stats %q: %v", s, err)
	}
	return v
}

func compareStates(t *testing.T, got, want *replayState) {
	t.Helper()
	if !reflect.DeepEqual(got.protocol, want.protocol) {
		t.Errorf("protocol: got %+v, want %+v", got.protocol, want.protocol)
	}
	if got.metadata == nil || want.metadata == nil {
		t.Fatalf("metadata: got %v, want %v", got.metadata, want.metadata)
	}
	gm, wm := *got.metadata, *want.metadata
	if len(wm.PartitionColumns) == 0 && len(gm.PartitionColumns) == 0 {
		gm.PartitionColumns, wm.PartitionColumns = nil, nil
	}
	if len(wm.Configuration) == 0 && len(gm.Configuration) == 0 {
		gm.Configuration, wm.Configuration = nil, nil
	}
	if len(wm.Format.Options) == 0 && len(gm.Format.Options) == 0 {
		gm.Format.Options, wm.Format.Options = nil, nil
	}
	gs, err1 := ParseSchema(gm.SchemaString)
	ws, err2 := ParseSchema(wm.SchemaString)
	if err1 != nil || err2 != nil || !reflect.DeepEqual(gs, ws) {
		t.Errorf("schema: got %s, want %s", gm.SchemaString, wm.SchemaString)
	}
	gm.SchemaString, wm.SchemaString = "", ""
	if !reflect.DeepEqual(gm, wm) {
		t.Errorf("metadata: got %+v, want %+v", gm, wm)
	}
	if !reflect.DeepEqual(got.txns, want.txns) {
		t.Errorf("txns: got %v, want %v", got.txns, want.txns)
	}
	if !reflect.DeepEqual(got.domains, want.domains) {
		t.Errorf("domains: got %v, want %v", got.domains, want.domains)
	}
	if len(got.adds) != len(want.adds) {
		t.Errorf("got %d live files, want %d", len(got.adds), len(want.adds))
	}
	for k, w := range want.adds {
		g, ok := got.adds[k]
		if !ok {
			t.Errorf("missing add %s", k)
			continue
		}
		if g.Path != w.Path || g.Size != w.Size || g.ModificationTime != w.ModificationTime {
			t.Errorf("add %s: got %+v, want %+v", k, g, w)
		}
		if !reflect.DeepEqual(normPV(g.PartitionValues), normPV(w.PartitionValues)) {
			t.Errorf("add %s partitionValues: got %v, want %v", k, pvString(g.PartitionValues), pvString(w.PartitionValues))
		}
		if !reflect.DeepEqual(g.DeletionVector, w.DeletionVector) {
			t.Errorf("add %s DV: got %+v, want %+v", k, g.DeletionVector, w.DeletionVector)
		}
		if len(w.Tags) > 0 && !reflect.DeepEqual(g.Tags, w.Tags) {
			t.Errorf("add %s tags: got %v, want %v", k, g.Tags, w.Tags)
		}
		if !reflect.DeepEqual(g.BaseRowID, w.BaseRowID) || !reflect.DeepEqual(g.DefaultRowCommitVersion, w.DefaultRowCommitVersion) {
			t.Errorf("add %s row tracking: got %v/%v, want %v/%v", k, g.BaseRowID, g.DefaultRowCommitVersion, w.BaseRowID, w.DefaultRowCommitVersion)
		}
		if gs, ws := normStats(t, g.Stats), normStats(t, w.Stats); !reflect.DeepEqual(gs, ws) {
			t.Errorf("add %s stats:\n got  %s\n want %s", k, g.Stats, w.Stats)
		}
	}
	// Tombstones: Spark drops expired ones, so the checkpoint's must be a
	// subset of the replay's.
	for k, g := range got.removes {
		w, ok := want.removes[k]
		if !ok {
			t.Errorf("checkpoint tombstone %s is not a tombstone in the log", k)
			continue
		}
		if !reflect.DeepEqual(g.DeletionTimestamp, w.DeletionTimestamp) {
			t.Errorf("remove %s deletionTimestamp: got %v, want %v", k, g.DeletionTimestamp, w.DeletionTimestamp)
		}
	}
}

func normPV(m map[string]*string) map[string]*string {
	if len(m) == 0 {
		return nil
	}
	return m
}

func pvString(m map[string]*string) string {
	var parts []string
	for k, v := range m {
		if v == nil {
			parts = append(parts, k+"=<null>")
		} else {
			parts = append(parts, k+"="+*v)
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// checkpointFixtures are fixture tables with checkpoints of every kind
// (classic, multi-part, V2 JSON and Parquet with sidecars) by Spark,
// delta-rs and the kernel.
var checkpointFixtures = [][]string{
	{"delta-golden", "checkpoint", "delta"},
	{"delta-golden", "multi-part-checkpoint", "delta"},
	{"delta-golden", "v2-checkpoint-json", "delta"},
	{"delta-golden", "v2-checkpoint-parquet", "delta"},
	{"delta-golden", "dv-partitioned-with-checkpoint", "delta"},
	{"delta-rs", "delta-1.2.1-only-struct-stats"},
	{"delta-rs", "simple_table_with_checkpoint"},
	{"delta-rs", "checkpoint-v2-table"},
	{"delta-kernel", "v2-checkpoints-json-with-last-checkpoint"},
	{"delta-kernel", "v2-classic-checkpoint-parquet"},
	{"delta-kernel", "v2-classic-parquet-struct-stats-only"},
	{"delta-kernel", "v1-multi-part-struct-stats-only"},
	{"delta-kernel", "parsed-stats"},
	{"delta-kernel", "app-txn-checkpoint"},
	{"delta-kernel", "with_checkpoint_no_last_checkpoint"},
}

func TestReadCheckpointFixtures(t *testing.T) {
	tables := checkpointFixtures
	for _, tbl := range tables {
		t.Run(strings.Join(tbl, "/"), func(t *testing.T) {
			dir := testutil.Testdata(t, tbl...)
			st := openTestStore(t, dir)
			parts := latestCheckpoint(t, dir)
			got, actions := readAll(t, st, parts)
			want := replayJSON(t, dir, parts[0].Version)
			compareStates(t, got, want)
			if parts[0].Kind == KindV2Checkpoint {
				var cm int
				for _, a := range actions {
					if a.CheckpointMetadata != nil {
						cm++
						if a.CheckpointMetadata.Version != parts[0].Version {
							t.Errorf("checkpointMetadata.version = %d, want %d", a.CheckpointMetadata.Version, parts[0].Version)
						}
					}
				}
				if cm != 1 {
					t.Errorf("%d checkpointMetadata actions, want 1", cm)
				}
			}
		})
	}
}

func TestReadCheckpointStructStatsOnly(t *testing.T) {
	dir := testutil.Testdata(t, "delta-rs", "delta-1.2.1-only-struct-stats")
	st := openTestStore(t, dir)
	got, _ := readAll(t, st, latestCheckpoint(t, dir))
	n := 0
	for _, a := range got.adds {
		if a.StatsParsed == nil || a.StatsParsed.NumRecords == nil || a.Stats == "" {
			t.Errorf("add %s: stats not rendered from stats_parsed: %q %+v", a.Path, a.Stats, a.StatsParsed)
			continue
		}
		ps, err := a.ParsedStats()
		if err != nil {
			t.Fatalf("ParsedStats: %v", err)
		}
		if string(ps.MinValues["timestamp"]) == "" || string(ps.MinValues["decimal"]) != "-5.67800" {
			t.Errorf("add %s: minValues %s", a.Path, a.Stats)
		}
		n++
	}
	if n == 0 {
		t.Fatal("no adds")
	}
}

func TestReadCheckpointErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "_delta_log"), 0o755); err != nil {
		t.Fatal(err)
	}
	key := CheckpointKey(3)
	if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(key)), []byte("PAR1 this is not parquet PAR1"), 0o644); err != nil {
		t.Fatal(err)
	}
	st := openTestStore(t, dir)
	f, _ := ParseLogFile(key)
	var gotErr error
	for _, err := range ReadCheckpoint(context.Background(), st, []LogFile{f}, nil) {
		if err != nil {
			gotErr = err
			break
		}
	}
	if gotErr == nil || !isCorrupt(gotErr) || !strings.Contains(gotErr.Error(), key) {
		t.Fatalf("got %v, want ErrCorruptLog naming %s", gotErr, key)
	}
	// A missing part is an I/O error (not found), not silently skipped.
	f2, _ := ParseLogFile(CheckpointKey(4))
	gotErr = nil
	for _, err := range ReadCheckpoint(context.Background(), st, []LogFile{f2}, nil) {
		if err != nil {
			gotErr = err
		}
	}
	if gotErr == nil || !isNotExist(gotErr) {
		t.Fatalf("missing file: got %v, want ErrNotExist", gotErr)
	}
}

func isCorrupt(err error) bool  { return errors.Is(err, ErrCorruptLog) }
func isNotExist(err error) bool { return errors.Is(err, store.ErrNotExist) }

func TestReadCheckpointCanceled(t *testing.T) {
	dir := testutil.Testdata(t, "delta-golden", "checkpoint", "delta")
	st := openTestStore(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var gotErr error
	for _, err := range ReadCheckpoint(ctx, st, latestCheckpoint(t, dir), nil) {
		if err != nil {
			gotErr = err
		}
	}
	if !errors.Is(gotErr, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", gotErr)
	}
}
