package table_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kappa-lake/kappa/internal/store"
	"github.com/kappa-lake/kappa/internal/store/faultstore"
	"github.com/kappa-lake/kappa/internal/testutil"
	"github.com/kappa-lake/kappa/table"
	"github.com/kappa-lake/kappa/txlog"
)

func TestCreate(t *testing.T) {
	ctx := context.Background()
	url := memURL()
	tbl := newTable(t, url, table.WithPartitionColumns("device"), table.WithProperties(map[string]string{"owner": "me"}),
		table.WithName("readings"), table.WithDescription("test table"))
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Version() != 0 || snap.NumFiles() != 0 {
		t.Fatalf("version %d files %d", snap.Version(), snap.NumFiles())
	}
	p := snap.Protocol()
	if p.MinWriterVersion != 7 || !slices.Contains(p.WriterFeatures, "inCommitTimestamp") {
		t.Fatalf("protocol %+v; want writer 7 with inCommitTimestamp", p)
	}
	if p.MinReaderVersion != 1 {
		t.Fatalf("protocol %+v; want reader 1", p)
	}
	m := snap.Metadata()
	if m.ID == "" || m.CreatedTime == nil || *m.Name != "readings" || m.Configuration["owner"] != "me" ||
		m.Configuration[table.PropEnableInCommitTimestamps] != "true" {
		t.Fatalf("metadata %+v", m)
	}
	if got := snap.PartitionColumns(); !slices.Equal(got, []string{"device"}) {
		t.Fatalf("partition columns %v", got)
	}
	if snap.Schema().Field("temp") == nil {
		t.Fatal("schema lost a column")
	}
	// commitInfo is the first action and carries the in-commit timestamp.
	data, err := tbl.Store().Get(ctx, txlog.CommitKey(0))
	if err != nil {
		t.Fatal(err)
	}
	acts, err := txlog.ParseCommit(data)
	if err != nil {
		t.Fatal(err)
	}
	ci := acts[0].CommitInfo
	if ci == nil || ci.Operation != "CREATE TABLE" || ci.InCommitTimestamp == nil || ci.EngineInfo != table.EngineInfo || ci.TxnID == "" {
		t.Fatalf("first action %+v", acts[0])
	}
	if !snap.Timestamp().Equal(time.UnixMilli(*ci.InCommitTimestamp)) {
		t.Fatalf("timestamp %v; want the in-commit timestamp", snap.Timestamp())
	}

	if _, err := table.Create(ctx, url, testSchema()); !errors.Is(err, table.ErrTableExists) {
		t.Fatalf("second create: %v; want ErrTableExists", err)
	}
	nested := filepath.Join(t.TempDir(), "a", "b")
	if tn, err := table.Create(ctx, nested, testSchema()); err != nil {
		t.Fatalf("create in a new directory: %v", err)
	} else if _, err := table.Open(ctx, "file://"+nested); err != nil {
		t.Fatalf("reopen: %v", err)
	} else {
		_ = tn.Close()
	}
	if _, err := table.Open(ctx, memURL()); !errors.Is(err, txlog.ErrTableNotFound) {
		t.Fatalf("open empty: %v; want ErrTableNotFound", err)
	}
}

func TestCreateOptions(t *testing.T) {
	ctx := context.Background()
	tbl := newTable(t, memURL(), table.WithoutInCommitTimestamps())
	snap, _ := tbl.Snapshot(ctx)
	if p := snap.Protocol(); p.MinWriterVersion >= 7 || p.MinReaderVersion != 1 {
		t.Fatalf("protocol %+v; want a legacy protocol without features", p)
	}
	if _, ok := snap.Properties()[table.PropEnableInCommitTimestamps]; ok {
		t.Fatal("in-commit timestamps property set")
	}
	ntz := &txlog.StructType{Fields: []*txlog.StructField{{Name: "ts", Type: &txlog.PrimitiveType{Name: txlog.TypeTimestampNTZ}, Nullable: true}}}
	tbl2, err := table.Create(ctx, memURL(), ntz)
	if err != nil {
		t.Fatal(err)
	}
	snap2, _ := tbl2.Snapshot(ctx)
	if p := snap2.Protocol(); p.MinReaderVersion != 3 || !slices.Contains(p.ReaderFeatures, "timestampNtz") {
		t.Fatalf("protocol %+v; want timestampNtz reader feature", p)
	}
	for name, opts := range map[string][]table.CreateOption{
		"unknown partition column": {table.WithPartitionColumns("nope")},
		"bad interval":             {table.WithProperties(map[string]string{table.PropLogRetentionDuration: "interval 3 fortnights"})},
		"bad checkpoint interval":  {table.WithProperties(map[string]string{table.PropCheckpointInterval: "0"})},
	} {
		if _, err := table.Create(ctx, memURL(), testSchema(), opts...); !errors.Is(err, table.ErrInvalidArgument) {
			t.Errorf("%s: %v; want ErrInvalidArgument", name, err)
		}
	}
	if _, err := table.Create(ctx, memURL(), &txlog.StructType{}); err == nil {
		t.Error("empty schema accepted")
	}
}

func TestCommitUpdateEquivalence(t *testing.T) {
	ctx := context.Background()
	tbl := newTable(t, memURL(), table.WithoutInCommitTimestamps())
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 25 {
		tx, err := tbl.NewTransaction(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tx.AddFiles(addFile(fmt.Sprintf("f%03d.parquet", i)), addFile(fmt.Sprintf("g%03d.parquet", i)))
		if i%3 == 2 {
			tx.RemoveFiles(&txlog.Remove{Path: fmt.Sprintf("g%03d.parquet", i-1), DataChange: true, DeletionTimestamp: ptr(time.Now().UnixMilli())})
		}
		tx.SetTxn("app", int64(i))
		if _, err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if i%7 == 0 {
			if changed, err := snap.Update(ctx); err != nil || !changed {
				t.Fatalf("update: %v %v", changed, err)
			}
		}
	}
	if _, err := snap.Update(ctx); err != nil {
		t.Fatal(err)
	}
	if changed, err := snap.Update(ctx); err != nil || changed {
		t.Fatalf("no-op update: %v %v", changed, err)
	}
	fresh, err := tbl.Snapshot(ctx, table.AtVersion(25))
	if err != nil {
		t.Fatal(err)
	}
	if snap.Version() != 25 || fresh.Version() != 25 {
		t.Fatalf("versions %d %d", snap.Version(), fresh.Version())
	}
	if !slices.Equal(filePaths(snap), filePaths(fresh)) {
		t.Fatalf("update %v\nfresh  %v", filePaths(snap), filePaths(fresh))
	}
	if snap.NumFiles() != 25+25-8 {
		t.Fatalf("files %d", snap.NumFiles())
	}
	if v, _ := snap.Txn("app"); v != 24 {
		t.Fatalf("txn %d", v)
	}
	if len(snap.Tombstones()) != len(fresh.Tombstones()) || len(fresh.Tombstones()) != 8 {
		t.Fatalf("tombstones %d vs %d", len(snap.Tombstones()), len(fresh.Tombstones()))
	}
	// A checkpoint was written at 10 and 20; the fresh load came from it.
	for _, v := range []int64{10, 20} {
		if _, err := tbl.Store().Stat(ctx, txlog.CheckpointKey(v)); err != nil {
			t.Fatalf("checkpoint %d: %v", v, err)
		}
	}
	adds, removes, err := fresh.ChangesSince(ctx, 22)
	if err != nil || len(adds) != 6 || len(removes) != 1 {
		t.Fatalf("changes since 22: %d adds %d removes %v", len(adds), len(removes), err)
	}
}

func TestCheckpointLoadEqualsReplay(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tbl := newTable(t, dir, table.WithPartitionColumns("device"))
	for i := range 12 {
		tx, err := tbl.NewTransaction(ctx)
		if err != nil {
			t.Fatal(err)
		}
		a := addFile(fmt.Sprintf("device=d%d/part-%02d.parquet", i%3, i))
		a.PartitionValues = map[string]*string{"device": ptr(fmt.Sprintf("d%d", i%3))}
		tx.AddFiles(a)
		if i == 5 {
			tx.RemoveFiles(&txlog.Remove{Path: "device=d0/part-00.parquet", DataChange: true, DeletionTimestamp: ptr(time.Now().UnixMilli())})
		}
		tx.SetTxn(fmt.Sprintf("app-%d", i%2), int64(i))
		if _, err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "_delta_log", "00000000000000000010.checkpoint.parquet")); err != nil {
		t.Fatalf("no checkpoint at 10: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "_delta_log", "_last_checkpoint")); err != nil {
		t.Fatalf("no _last_checkpoint: %v", err)
	}
	want, ok := replayJSON(t, filepath.Join(dir, "_delta_log"))
	if !ok {
		t.Fatal("no JSON replay")
	}
	// Hide the commits before the checkpoint: the load must use it.
	for v := range 10 {
		if err := os.Rename(filepath.Join(dir, "_delta_log", fmt.Sprintf("%020d.json", v)), filepath.Join(dir, fmt.Sprintf("hidden-%d", v))); err != nil {
			t.Fatal(err)
		}
	}
	tbl2, err := table.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := tbl2.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]fileFacts{}
	for _, a := range snap.Files() {
		got[fileID(decode(a.Path), dvID(a.DeletionVector))] = fileFacts{a.Size, a.ModificationTime}
		if a.PartitionValues["device"] == nil {
			t.Fatalf("file %s lost its partition value", a.Path)
		}
	}
	compareFiles(t, got, want.files)
	if fmt.Sprint(snap.Txns()) != fmt.Sprint(want.txns) {
		t.Fatalf("txns %v; want %v", snap.Txns(), want.txns)
	}
	if snap.Metadata().ID != want.metadataID || snap.Version() != 12 {
		t.Fatalf("metadata %s version %d", snap.Metadata().ID, snap.Version())
	}
	if _, err := tbl2.Snapshot(ctx, table.AtVersion(9)); !errors.Is(err, txlog.ErrVersionNotFound) {
		t.Fatalf("version 9 after hiding commits: %v", err)
	}
}

func TestConflicts(t *testing.T) {
	ctx := context.Background()
	tbl := newTable(t, memURL())
	commitAdds(t, tbl, "a.parquet", "b.parquet")

	t.Run("txn appId", func(t *testing.T) {
		tx1, _ := tbl.NewTransaction(ctx)
		if _, ok := tx1.ReadTxn("ingest"); ok {
			t.Fatal("txn exists")
		}
		tx2, _ := tbl.NewTransaction(ctx)
		tx2.AddFiles(addFile("t2.parquet"))
		tx2.SetTxn("ingest", 1)
		if _, err := tx2.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		tx1.AddFiles(addFile("t1.parquet"))
		tx1.SetTxn("ingest", 1)
		_, err := tx1.Commit(ctx)
		var ce *table.ConflictError
		if !errors.Is(err, table.ErrConflict) || !errors.As(err, &ce) || ce.Kind != table.ConflictTransaction || !strings.Contains(err.Error(), "ingest") {
			t.Fatalf("err = %v; want a ConcurrentTransaction conflict naming the appId", err)
		}
	})
	t.Run("metadata", func(t *testing.T) {
		tx1, _ := tbl.NewTransaction(ctx)
		tx1.AddFiles(addFile("m1.parquet"))
		tx2, _ := tbl.NewTransaction(ctx)
		m := tx2.Metadata()
		m.Configuration["owner"] = "someone"
		tx2.SetMetadata(m)
		if _, err := tx2.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		_, err := tx1.Commit(ctx)
		var ce *table.ConflictError
		if !errors.As(err, &ce) || ce.Kind != table.ConflictMetadataChanged {
			t.Fatalf("err = %v; want MetadataChanged", err)
		}
	})
	t.Run("delete-delete", func(t *testing.T) {
		tx1, _ := tbl.NewTransaction(ctx)
		tx1.RemoveFiles(&txlog.Remove{Path: "a.parquet", DataChange: true})
		tx2, _ := tbl.NewTransaction(ctx)
		tx2.RemoveFiles(&txlog.Remove{Path: "a.parquet", DataChange: true})
		if _, err := tx2.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		_, err := tx1.Commit(ctx)
		var ce *table.ConflictError
		if !errors.As(err, &ce) || ce.Kind != table.ConflictDeleteDelete {
			t.Fatalf("err = %v; want ConcurrentDeleteDelete", err)
		}
	})
	t.Run("delete-read", func(t *testing.T) {
		snap, _ := tbl.Snapshot(ctx)
		tx1, _ := snap.NewTransaction()
		tx1.ReadFiles(snap.Files()...)
		tx1.AddFiles(addFile("compacted.parquet"))
		tx2, _ := tbl.NewTransaction(ctx)
		tx2.RemoveFiles(&txlog.Remove{Path: "b.parquet", DataChange: true})
		if _, err := tx2.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		_, err := tx1.Commit(ctx)
		var ce *table.ConflictError
		if !errors.As(err, &ce) || ce.Kind != table.ConflictDeleteRead {
			t.Fatalf("err = %v; want ConcurrentDeleteRead", err)
		}
	})
	t.Run("blind append retries", func(t *testing.T) {
		tx1, _ := tbl.NewTransaction(ctx)
		tx1.AddFiles(addFile("late.parquet"))
		tx1.SetTxn("other-app", 7)
		v2 := commitAdds(t, tbl, "early.parquet")
		v1, err := tx1.Commit(ctx)
		if err != nil || v1 != v2+1 {
			t.Fatalf("commit = %d, %v; want %d", v1, err, v2+1)
		}
		snap, _ := tbl.Snapshot(ctx)
		if !slices.Contains(filePaths(snap), "late.parquet") || !slices.Contains(filePaths(snap), "early.parquet") {
			t.Fatalf("files %v", filePaths(snap))
		}
		if _, err := tx1.Commit(ctx); !errors.Is(err, table.ErrTransactionDone) {
			t.Fatalf("second commit: %v", err)
		}
	})
}

func TestAppendOnly(t *testing.T) {
	ctx := context.Background()
	tbl := newTable(t, memURL(), table.WithProperties(map[string]string{table.PropAppendOnly: "true"}))
	commitAdds(t, tbl, "a.parquet")
	tx, _ := tbl.NewTransaction(ctx)
	tx.RemoveFiles(&txlog.Remove{Path: "a.parquet", DataChange: true})
	if _, err := tx.Commit(ctx); !errors.Is(err, table.ErrAppendOnly) {
		t.Fatalf("err = %v; want ErrAppendOnly", err)
	}
	tx, _ = tbl.NewTransaction(ctx)
	tx.AddFiles(&txlog.Add{Path: "x.parquet", PartitionValues: map[string]*string{"nope": nil}, DataChange: true})
	if _, err := tx.Commit(ctx); !errors.Is(err, table.ErrInvalidArgument) {
		t.Fatalf("bad partition values: %v", err)
	}
}

func TestInCommitTimestampsIncrease(t *testing.T) {
	ctx := context.Background()
	clock := &stepClock{now: time.UnixMilli(1_800_000_000_000)}
	tbl := newTable(t, memURL(), table.WithClock(clock.Now))
	var last int64
	for i := range 5 {
		if i == 3 {
			clock.Add(-time.Hour) // the clock goes backwards
		}
		commitAdds(t, tbl, fmt.Sprintf("f%d.parquet", i))
		snap, _ := tbl.Snapshot(ctx)
		ts := snap.Timestamp().UnixMilli()
		if ts <= last {
			t.Fatalf("version %d: in-commit timestamp %d not after %d", snap.Version(), ts, last)
		}
		last = ts
	}
}

func TestConcurrentBlindAppends(t *testing.T) {
	writers, perWriter := 8, 8
	if testing.Short() {
		perWriter = 3
	}
	for _, kind := range []string{"file", "mem", "s3"} {
		t.Run(kind, func(t *testing.T) {
			url := memURL()
			switch kind {
			case "file":
				url = "file://" + t.TempDir()
			case "s3":
				if testing.Short() {
					t.Skip("s3 server in long mode only")
				}
				url = testutil.S3URL(testutil.S3Addr(t, testutil.StartS3(t)), "concurrent")
			}
			runConcurrentAppends(t, url, writers, perWriter)
		})
	}
}

func runConcurrentAppends(t *testing.T, url string, writers, perWriter int) {
	ctx := context.Background()
	newTable(t, url, table.WithoutAutoCheckpoint())
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tbl, err := table.Open(ctx, url, table.WithMaxCommitRetries(200))
			if err != nil {
				errs <- err
				return
			}
			defer tbl.Close()
			for i := range perWriter {
				tx, err := tbl.NewTransaction(ctx)
				if err != nil {
					errs <- err
					return
				}
				tx.AddFiles(addFile(fmt.Sprintf("w%d-%d.parquet", w, i)))
				if _, err := tx.Commit(ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkAppends(t, url, writers, perWriter)
}

// checkAppends verifies that every append landed once at contiguous
// versions, each commit holding exactly one file.
func checkAppends(t *testing.T, url string, writers, perWriter int) {
	t.Helper()
	ctx := context.Background()
	tbl, err := table.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Close()
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := writers * perWriter
	if snap.Version() != int64(n) || snap.NumFiles() != n {
		t.Fatalf("version %d with %d files; want %d and %d", snap.Version(), snap.NumFiles(), n, n)
	}
	seen := map[string]bool{}
	for v := int64(1); v <= int64(n); v++ {
		data, err := tbl.Store().Get(ctx, txlog.CommitKey(v))
		if err != nil {
			t.Fatalf("version %d: %v", v, err)
		}
		acts, err := txlog.ParseCommit(data)
		if err != nil {
			t.Fatal(err)
		}
		var adds int
		for _, a := range acts {
			if a.Add != nil {
				adds++
				if seen[a.Add.Path] {
					t.Fatalf("%s committed twice", a.Add.Path)
				}
				seen[a.Add.Path] = true
			}
		}
		if adds != 1 {
			t.Fatalf("version %d has %d adds", v, adds)
		}
	}
	for w := range writers {
		for i := range perWriter {
			if !seen[fmt.Sprintf("w%d-%d.parquet", w, i)] {
				t.Fatalf("append w%d-%d lost", w, i)
			}
		}
	}
}

const helperEnv = "KAPPA_TABLE_TEST_WRITER"

// TestHelperProcessWriter is the body of the OS-process writers of
// TestConcurrentProcessAppends; it does nothing in a normal run.
func TestHelperProcessWriter(t *testing.T) {
	spec := os.Getenv(helperEnv)
	if spec == "" {
		t.Skip("helper process only")
	}
	parts := strings.SplitN(spec, "|", 3)
	w, _ := strconv.Atoi(parts[0])
	n, _ := strconv.Atoi(parts[1])
	ctx := context.Background()
	tbl, err := table.Open(ctx, parts[2], table.WithMaxCommitRetries(200))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		tx, err := tbl.NewTransaction(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tx.AddFiles(addFile(fmt.Sprintf("w%d-%d.parquet", w, i)))
		if _, err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func TestConcurrentProcessAppends(t *testing.T) {
	writers, perWriter := 4, 10
	if testing.Short() {
		perWriter = 4
	}
	url := "file://" + t.TempDir()
	newTable(t, url, table.WithoutAutoCheckpoint())
	var wg sync.WaitGroup
	outs := make([][]byte, writers)
	errs := make([]error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.CommandContext(context.Background(), os.Args[0], "-test.run=^TestHelperProcessWriter$", "-test.count=1")
			cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d|%d|%s", helperEnv, w, perWriter, url))
			outs[w], errs[w] = cmd.CombinedOutput()
		}()
	}
	wg.Wait()
	for w := range writers {
		if errs[w] != nil {
			t.Fatalf("writer %d: %v\n%s", w, errs[w], outs[w])
		}
	}
	checkAppends(t, url, writers, perWriter)
}

func TestLostResponseCommitsOnce(t *testing.T) {
	ctx := context.Background()
	base, err := store.Open(ctx, memURL())
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	fs := faultstore.New(base, faultstore.Options{Seed: 1})
	tbl, err := table.CreateInStore(ctx, fs, testSchema(), table.WithoutAutoCheckpoint())
	if err != nil {
		t.Fatal(err)
	}
	for i, op := range []faultstore.Op{faultstore.OpLostResponse, faultstore.OpWrite, faultstore.OpLostResponse} {
		tx, err := tbl.NewTransaction(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tx.AddFiles(addFile(fmt.Sprintf("f%d.parquet", i)))
		tx.SetTxn("app", int64(i))
		fs.FailNext(op, 1)
		v, err := tx.Commit(ctx)
		if err != nil || v != int64(i+1) {
			t.Fatalf("commit %d with a %s fault = %d, %v", i, op, v, err)
		}
	}
	if c := fs.Counts(); c.LostResponses != 2 || c.WriteErrors != 1 {
		t.Fatalf("faults injected: %+v", c)
	}
	snap, _ := tbl.Snapshot(ctx)
	if snap.Version() != 3 || snap.NumFiles() != 3 {
		t.Fatalf("version %d files %d; want 3 and 3 (each committed once)", snap.Version(), snap.NumFiles())
	}
}

func TestCommitsUnderRandomWriteFaults(t *testing.T) {
	ctx := context.Background()
	base, err := store.Open(ctx, memURL())
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	fs := faultstore.New(base, faultstore.Options{Seed: 42, WriteErrorRate: 0.2, LostResponseRate: 0.2})
	fs.SetEnabled(false)
	tbl, err := table.CreateInStore(ctx, fs, testSchema(), table.WithoutAutoCheckpoint(), table.WithMaxCommitRetries(50))
	if err != nil {
		t.Fatal(err)
	}
	fs.SetEnabled(true)
	const n = 30
	for i := range n {
		tx, err := tbl.NewTransaction(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tx.AddFiles(addFile(fmt.Sprintf("f%d.parquet", i)))
		if _, err := tx.Commit(ctx); err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
	}
	fs.SetEnabled(false)
	if fs.Counts().Total() == 0 {
		t.Fatal("no faults injected")
	}
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Version() != n || snap.NumFiles() != n {
		t.Fatalf("version %d files %d; want %d: a commit was lost or duplicated (faults %+v)", snap.Version(), snap.NumFiles(), n, fs.Counts())
	}
}

func TestCommitHonoursContext(t *testing.T) {
	tbl := newTable(t, memURL())
	tx, _ := tbl.NewTransaction(context.Background())
	tx.AddFiles(addFile("x.parquet"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tx.Commit(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v; want context.Canceled", err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestUpdateMemoryFollowsLiveState(t *testing.T) {
	ctx := context.Background()
	tbl := newTable(t, memURL(), table.WithoutAutoCheckpoint())
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	expired := time.Now().Add(-8 * 24 * time.Hour).UnixMilli()
	for i := range 200 {
		tx, _ := tbl.NewTransaction(ctx)
		tx.AddFiles(addFile(fmt.Sprintf("f%d.parquet", i)))
		if i > 0 {
			tx.RemoveFiles(&txlog.Remove{Path: fmt.Sprintf("f%d.parquet", i-1), DataChange: true, DeletionTimestamp: &expired})
		}
		tx.SetTxn("app", int64(i))
		if _, err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := snap.Update(ctx); err != nil {
			t.Fatal(err)
		}
		if snap.NumFiles() != 1 || len(snap.Tombstones()) != 0 || len(snap.Txns()) != 1 {
			t.Fatalf("after update %d: %d files, %d tombstones, %d txns", i, snap.NumFiles(), len(snap.Tombstones()), len(snap.Txns()))
		}
	}
	if got := filePaths(snap); len(got) != 1 || got[0] != "f199.parquet" {
		t.Fatalf("files %v", got)
	}
}

func TestDomainMetadata(t *testing.T) {
	ctx := context.Background()
	plain := newTable(t, memURL())
	tx, _ := plain.NewTransaction(ctx)
	tx.SetDomainMetadata("kappa.test", `{"a":1}`, false)
	if _, err := tx.Commit(ctx); !errors.Is(err, table.ErrInvalidArgument) {
		t.Fatalf("domain metadata without the feature: %v", err)
	}
	tbl := newTable(t, memURL(), table.WithTableFeatures("domainMetadata"))
	tx, _ = tbl.NewTransaction(ctx)
	tx.SetDomainMetadata("kappa.test", `{"a":1}`, false)
	if _, err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	snap, _ := tbl.Snapshot(ctx)
	if c, ok := snap.DomainMetadata("kappa.test"); !ok || c != `{"a":1}` {
		t.Fatalf("domain = %q, %v", c, ok)
	}
	tx, _ = tbl.NewTransaction(ctx)
	tx.SetDomainMetadata("kappa.test", "", true)
	if _, err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	snap, _ = tbl.Snapshot(ctx)
	if _, ok := snap.DomainMetadata("kappa.test"); ok {
		t.Fatal("removed domain still there")
	}
}

func TestRefusesUnsupportedWriterFeatures(t *testing.T) {
	// Spark's generated-column table: readable, but not writable by us.
	tbl := openFixture(t, "delta-rs", "table_with_partitioning_mapping")
	if _, err := tbl.NewTransaction(context.Background()); !errors.Is(err, txlog.ErrUnsupportedFeature) {
		t.Fatalf("NewTransaction: %v; want ErrUnsupportedFeature", err)
	}
}

// TestCreateNotNullNeedsInvariants: Delta counts NOT NULL columns (also
// nested in structs) as invariants, so a table-features protocol must list
// the invariants writer feature or Spark refuses the table.
func TestCreateNotNullNeedsInvariants(t *testing.T) {
	ctx := context.Background()
	for ddl, want := range map[string]bool{
		"id long NOT NULL, v double":                true,
		"id long, loc struct<lat: double NOT NULL>": true,
		"id long, tags array<string>, v double":     false,
		"id long, m map<string, struct<x: int>>":    false,
	} {
		schema, err := txlog.ParseDDL(ddl)
		if err != nil {
			t.Fatal(err)
		}
		tbl, err := table.Create(ctx, memURL(), schema)
		if err != nil {
			t.Fatal(err)
		}
		snap, err := tbl.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p := snap.Protocol()
		if got := slices.Contains(p.WriterFeatures, "invariants"); got != want {
			t.Errorf("%s: protocol %+v lists invariants = %v, want %v", ddl, p, got, want)
		}
	}
}

// TestSetMetadataUpgradesProtocol: adding a NOT NULL column to a table
// whose protocol lacks invariants (writer 7 with inCommitTimestamp only)
// commits a protocol listing it; a timestamp_ntz column on a legacy
// protocol moves it to table features; a change needing nothing new keeps
// the protocol.
func TestSetMetadataUpgradesProtocol(t *testing.T) {
	ctx := context.Background()
	tbl := newTable(t, memURL())
	snap, err := tbl.Snapshot(ctx, table.WithoutFiles())
	if err != nil {
		t.Fatal(err)
	}
	if p := snap.Protocol(); p.SupportsWriterFeature("invariants") {
		t.Fatalf("precondition: %+v already has invariants", p)
	}
	evolve := func(tbl *table.Table, f *txlog.StructField) txlog.Protocol {
		t.Helper()
		tx, err := tbl.NewTransaction(ctx)
		if err != nil {
			t.Fatal(err)
		}
		md := tx.Metadata()
		schema, err := txlog.ParseSchema(md.SchemaString)
		if err != nil {
			t.Fatal(err)
		}
		schema.Fields = append(schema.Fields, f)
		if md.SchemaString, err = txlog.MarshalSchema(schema); err != nil {
			t.Fatal(err)
		}
		tx.SetMetadata(md)
		if _, err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		s, err := tbl.Snapshot(ctx, table.WithoutFiles())
		if err != nil {
			t.Fatal(err)
		}
		return s.Protocol()
	}
	p := evolve(tbl, &txlog.StructField{Name: "must", Type: &txlog.PrimitiveType{Name: txlog.TypeLong}, Nullable: false})
	if p.MinWriterVersion != 7 || !slices.Equal(p.WriterFeatures, []string{"inCommitTimestamp", "invariants"}) || p.MinReaderVersion != 1 {
		t.Fatalf("after adding a NOT NULL column: %+v", p)
	}
	p2 := evolve(tbl, &txlog.StructField{Name: "opt", Type: &txlog.PrimitiveType{Name: txlog.TypeString}, Nullable: true})
	if !slices.Equal(p2.WriterFeatures, p.WriterFeatures) {
		t.Fatalf("a nullable column changed the protocol: %+v", p2)
	}

	legacy, err := table.Create(ctx, memURL(), testSchema(), table.WithoutInCommitTimestamps())
	if err != nil {
		t.Fatal(err)
	}
	defer legacy.Close()
	p3 := evolve(legacy, &txlog.StructField{Name: "local", Type: &txlog.PrimitiveType{Name: txlog.TypeTimestampNTZ}, Nullable: true})
	if p3.MinReaderVersion != 3 || p3.MinWriterVersion != 7 || !slices.Contains(p3.ReaderFeatures, "timestampNtz") || !slices.Contains(p3.WriterFeatures, "timestampNtz") {
		t.Fatalf("after adding a timestamp_ntz column to a (1,1) table: %+v", p3)
	}
}
