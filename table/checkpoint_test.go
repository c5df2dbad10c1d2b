package table_test

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kappa-lake/kappa/internal/testutil"
	"github.com/kappa-lake/kappa/table"
	"github.com/kappa-lake/kappa/txlog"
)

// tableState is what a checkpoint must preserve of a snapshot.
type tableState struct {
	version    int64
	protocol   txlog.Protocol
	metaID     string
	schema     string
	config     map[string]string
	txns       map[string]int64
	files      map[string]fileState
	tombstones map[string]bool
}

type fileState struct {
	size, mtime, records int64
	partitions           map[string]string
}

func stateOf(t *testing.T, s *table.Snapshot, tombstoneCutoff int64) tableState {
	t.Helper()
	md := s.Metadata()
	st := tableState{
		version:    s.Version(),
		protocol:   s.Protocol(),
		metaID:     md.ID,
		schema:     md.SchemaString,
		config:     md.Configuration,
		txns:       s.Txns(),
		files:      map[string]fileState{},
		tombstones: map[string]bool{},
	}
	for _, a := range s.Files() {
		fs := fileState{size: a.Size, mtime: a.ModificationTime, records: -1, partitions: map[string]string{}}
		if st, err := a.ParsedStats(); err == nil && st != nil && st.NumRecords != nil {
			fs.records = *st.NumRecords
		}
		for k, v := range a.PartitionValues {
			if v == nil {
				fs.partitions[k] = "<null>"
			} else {
				fs.partitions[k] = *v
			}
		}
		st.files[fileID(decode(a.Path), dvID(a.DeletionVector))] = fs
	}
	for _, r := range s.Tombstones() {
		if r.DeletionTimestamp != nil && *r.DeletionTimestamp >= tombstoneCutoff {
			st.tombstones[fileID(decode(r.Path), dvID(r.DeletionVector))] = true
		}
	}
	return st
}

func compareStates(t *testing.T, got, want tableState) {
	t.Helper()
	if got.version != want.version || got.metaID != want.metaID || got.schema != want.schema {
		t.Errorf("version/metadata id/schema %d %q; want %d %q (schema equal: %v)", got.version, got.metaID, want.version, want.metaID, got.schema == want.schema)
	}
	if got.protocol.MinReaderVersion != want.protocol.MinReaderVersion || got.protocol.MinWriterVersion != want.protocol.MinWriterVersion ||
		!slices.Equal(got.protocol.ReaderFeatures, want.protocol.ReaderFeatures) || !slices.Equal(got.protocol.WriterFeatures, want.protocol.WriterFeatures) {
		t.Errorf("protocol %+v; want %+v", got.protocol, want.protocol)
	}
	if !maps.Equal(got.config, want.config) {
		t.Errorf("configuration %v; want %v", got.config, want.config)
	}
	if !maps.Equal(got.txns, want.txns) {
		t.Errorf("txns %v; want %v", got.txns, want.txns)
	}
	if len(got.files) != len(want.files) {
		t.Errorf("%d files; want %d", len(got.files), len(want.files))
	}
	for id, w := range want.files {
		g, ok := got.files[id]
		if !ok {
			t.Errorf("file %s missing", id)
			continue
		}
		if g.size != w.size || g.mtime != w.mtime || g.records != w.records || !maps.Equal(g.partitions, w.partitions) {
			t.Errorf("file %s: %+v; want %+v", id, g, w)
		}
	}
	if !maps.Equal(got.tombstones, want.tombstones) {
		t.Errorf("tombstones %v; want %v", got.tombstones, want.tombstones)
	}
}

// TestFixtureCheckpointRoundTrip checkpoints every readable fixture table
// (classic, multi-part and V2 checkpoints of Spark, delta-rs and the kernel
// as the previous state) and checks that the table loaded from the new
// checkpoint alone equals the table replayed before it.
func TestFixtureCheckpointRoundTrip(t *testing.T) {
	root, names := fixtureTables(t)
	ctx := context.Background()
	checked := 0
	for _, name := range names {
		if _, neg := negativeFixtures[name]; neg {
			continue
		}
		t.Run(name, func(t *testing.T) {
			dir := testutil.CopyDir(t, filepath.Join(root, filepath.FromSlash(name)))
			tbl, err := table.Open(ctx, dir)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer tbl.Close()
			before, err := tbl.Snapshot(ctx)
			if err != nil {
				t.Fatalf("snapshot: %v", err)
			}
			if before.Metadata().SchemaString == "" {
				t.Skip("metaData without schemaString: not a table a checkpoint can describe")
			}
			cutoff := time.Now().Add(-before.Config().DeletedFileRetentionDuration).UnixMilli()
			want := stateOf(t, before, cutoff)
			lc, err := tbl.Checkpoint(ctx, -1)
			if err != nil {
				t.Fatalf("checkpoint: %v", err)
			}
			if lc.Version != before.Version() || lc.NumOfAddFiles == nil || *lc.NumOfAddFiles != int64(len(want.files)) {
				t.Fatalf("_last_checkpoint %+v; want version %d with %d adds", lc, before.Version(), len(want.files))
			}
			// Load from the checkpoint alone: hide every commit.
			hideCommits(t, dir, before.Version())
			t2, err := table.Open(ctx, dir)
			if err != nil {
				t.Fatalf("reopen from the checkpoint: %v", err)
			}
			defer t2.Close()
			after, err := t2.Snapshot(ctx)
			if err != nil {
				t.Fatalf("snapshot from the checkpoint: %v", err)
			}
			compareStates(t, stateOf(t, after, cutoff), want)
			checked++
		})
	}
	if checked < 90 {
		t.Fatalf("checked only %d fixture tables", checked)
	}
}

// hideCommits deletes the commit files before version (the checkpoint of
// version must then reconstruct the table by itself; the commit of version
// stays, as log cleanup keeps it, for its in-commit timestamp).
func hideCommits(t *testing.T, dir string, version int64) {
	t.Helper()
	for v := int64(0); v < version; v++ {
		err := os.Remove(filepath.Join(dir, filepath.FromSlash(txlog.CommitKey(v))))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
}

// TestCheckpointMergesCommits builds checkpoints over a history of adds,
// removes and re-adds (of files from the previous checkpoint and of the
// commits after it) and compares each with a replay of all commits.
func TestCheckpointMergesCommits(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tbl, err := table.Create(ctx, dir, testSchema(), table.WithoutAutoCheckpoint(),
		table.WithProperties(map[string]string{"delta.deletedFileRetentionDuration": "interval 1 hours"}))
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Close()
	commitAdds(t, tbl, "a", "b", "c")
	commitAdds(t, tbl, "d")
	remove := func(paths ...string) {
		t.Helper()
		tx, err := tbl.NewTransaction(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range paths {
			tx.RemoveFiles(&txlog.Remove{Path: p, DeletionTimestamp: ptr(time.Now().UnixMilli()), DataChange: true})
		}
		if _, err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	check := func(step string) {
		t.Helper()
		full, err := table.Open(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		defer full.Close()
		s, err := full.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cutoff := time.Now().Add(-time.Hour).UnixMilli()
		want := stateOf(t, s, cutoff)
		if _, err := tbl.Checkpoint(ctx, -1); err != nil {
			t.Fatalf("%s: checkpoint: %v", step, err)
		}
		copyDir := testutil.CopyDir(t, dir)
		hideCommits(t, copyDir, s.Version())
		ct, err := table.Open(ctx, copyDir)
		if err != nil {
			t.Fatalf("%s: open from checkpoint: %v", step, err)
		}
		defer ct.Close()
		cs, err := ct.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		compareStates(t, stateOf(t, cs, cutoff), want)
		if len(want.files) == 0 || t.Failed() {
			t.Fatalf("%s: state %+v", step, want)
		}
	}
	check("first checkpoint, no previous one")
	remove("a")             // a file of the checkpoint
	commitAdds(t, tbl, "e") // new
	remove("e")             // added and removed after the checkpoint
	commitAdds(t, tbl, "a") // re-added after its remove
	remove("b")             // removed, stays a tombstone
	commitTxn(t, tbl, "app", 7)
	check("second checkpoint merges the first with 6 commits")
	commitAdds(t, tbl, "f")
	remove("a", "c")
	check("third checkpoint")
	// Checkpointing a version that has one keeps it and only points
	// _last_checkpoint at it.
	lc, err := tbl.Checkpoint(ctx, -1)
	if err != nil {
		t.Fatal(err)
	}
	if lc.NumOfAddFiles == nil || *lc.NumOfAddFiles != 2 { // d, f
		t.Fatalf("repeated checkpoint: %+v", lc)
	}
}

func commitTxn(t *testing.T, tbl *table.Table, app string, v int64) {
	t.Helper()
	tx, err := tbl.NewTransaction(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tx.SetTxn(app, v)
	if _, err := tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestSnapshotWithoutFiles checks that a WithoutFiles snapshot has the same
// state as a full one (on every fixture) and refuses file-list calls.
func TestSnapshotWithoutFiles(t *testing.T) {
	root, names := fixtureTables(t)
	ctx := context.Background()
	for _, name := range names {
		if _, neg := negativeFixtures[name]; neg {
			continue
		}
		t.Run(name, func(t *testing.T) {
			tbl, err := table.Open(ctx, filepath.Join(root, filepath.FromSlash(name)))
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer tbl.Close()
			full, err := tbl.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			lean, err := tbl.Snapshot(ctx, table.WithoutFiles())
			if err != nil {
				t.Fatal(err)
			}
			if !full.FileListLoaded() || lean.FileListLoaded() {
				t.Fatalf("FileListLoaded: full %v, lean %v", full.FileListLoaded(), lean.FileListLoaded())
			}
			if lean.Version() != full.Version() || !lean.Timestamp().Equal(full.Timestamp()) ||
				lean.Metadata().ID != full.Metadata().ID || lean.Metadata().SchemaString != full.Metadata().SchemaString ||
				!maps.Equal(lean.Txns(), full.Txns()) || !maps.Equal(lean.Properties(), full.Properties()) {
				t.Fatalf("lean snapshot differs: version %d/%d time %v/%v", lean.Version(), full.Version(), lean.Timestamp(), full.Timestamp())
			}
		})
	}
}

func TestWithoutFilesRefusesFileCalls(t *testing.T) {
	ctx := context.Background()
	tbl := newTable(t, memURL())
	commitAdds(t, tbl, "x")
	s, err := tbl.Snapshot(ctx, table.WithoutFiles())
	if err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func(){
		"Files":      func() { s.Files() },
		"NumFiles":   func() { s.NumFiles() },
		"Tombstones": func() { s.Tombstones() },
	} {
		func() {
			defer func() {
				if r := recover(); r == nil {
					t.Errorf("%s did not panic on a WithoutFiles snapshot", name)
				}
			}()
			call()
		}()
	}
	// It still updates and starts transactions.
	commitAdds(t, tbl, "y")
	if changed, err := s.Update(ctx); err != nil || !changed || s.Version() != 2 {
		t.Fatalf("update: %v %v version %d", changed, err, s.Version())
	}
	tx, err := s.NewTransaction()
	if err != nil {
		t.Fatal(err)
	}
	tx.AddFiles(addFile("z"))
	if v, err := tx.Commit(ctx); err != nil || v != 3 {
		t.Fatalf("commit: %d %v", v, err)
	}
	full, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := filePaths(full); !slices.Equal(got, []string{"x", "y", "z"}) {
		t.Fatalf("files %v", got)
	}
}

// TestOlderCheckpointKeepsHint: checkpointing an older version writes its
// checkpoint but leaves _last_checkpoint naming the newest one.
func TestOlderCheckpointKeepsHint(t *testing.T) {
	ctx := context.Background()
	tbl := newTable(t, memURL(), table.WithoutAutoCheckpoint())
	for _, p := range []string{"a", "b", "c"} {
		commitAdds(t, tbl, p)
	}
	if _, err := tbl.Checkpoint(ctx, 3); err != nil {
		t.Fatal(err)
	}
	lc, err := tbl.Checkpoint(ctx, 1)
	if err != nil || lc.Version != 1 || *lc.NumOfAddFiles != 1 {
		t.Fatalf("checkpoint 1: %+v %v", lc, err)
	}
	hint, err := txlog.ReadLastCheckpoint(ctx, tbl.Store())
	if err != nil || hint == nil || hint.Version != 3 {
		t.Fatalf("_last_checkpoint %+v %v; want version 3", hint, err)
	}
	if _, err := tbl.Store().Stat(ctx, txlog.CheckpointKey(1)); err != nil {
		t.Fatalf("checkpoint 1 not written: %v", err)
	}
}
