package table_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"testing"

	"github.com/kappa-lake/kappa/internal/testutil"
	"github.com/kappa-lake/kappa/reader"
	"github.com/kappa-lake/kappa/table"
	"github.com/kappa-lake/kappa/txlog"
)

// optimizeTable creates a table partitioned by device with one small file
// per append: 5 appends for devices a and b, one for c.
func optimizeTable(t *testing.T, opts ...table.CreateOption) *table.Table {
	t.Helper()
	ctx := context.Background()
	tbl := newTable(t, memURL(), append([]table.CreateOption{table.WithPartitionColumns("device")}, opts...)...)
	id := int64(0)
	for i := range 5 {
		var rows []map[string]any
		for _, d := range []string{"a", "b"} {
			for range 3 {
				id++
				rows = append(rows, map[string]any{"id": id, "device": d, "temp": float64(i) + 0.5})
			}
		}
		if i == 0 {
			id++
			rows = append(rows, map[string]any{"id": id, "device": "c", "temp": nil})
		}
		if _, err := tbl.Append(ctx, rows); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	return tbl
}

// tableRows returns the rows of a snapshot as sorted strings (a multiset).
func tableRows(t *testing.T, snap *table.Snapshot) []string {
	t.Helper()
	var out []string
	for r, err := range reader.NewScan(snap).Rows(context.Background()) {
		if err != nil {
			t.Fatalf("scan version %d: %v", snap.Version(), err)
		}
		out = append(out, fmt.Sprint(r.Map()))
	}
	sort.Strings(out)
	return out
}

func filesByPartition(snap *table.Snapshot) map[string]int {
	m := map[string]int{}
	for _, f := range snap.Files() {
		m[*f.PartitionValues["device"]]++
	}
	return m
}

func storeKeys(t *testing.T, tbl *table.Table) []string {
	t.Helper()
	var keys []string
	for info, err := range tbl.Store().List(context.Background(), "", "") {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, info.Key)
	}
	return keys
}

func TestOptimizeCompactsSmallFiles(t *testing.T) {
	ctx := context.Background()
	tbl := optimizeTable(t)
	before, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := filesByPartition(before); got["a"] != 5 || got["b"] != 5 || got["c"] != 1 {
		t.Fatalf("files before: %v", got)
	}
	rowsBefore := tableRows(t, before)
	var progress []table.OptimizeProgress
	res, err := tbl.Optimize(ctx, table.OptimizeOptions{
		ReadRows: reader.RewriteRows, MaxConcurrency: 2,
		Progress: func(p table.OptimizeProgress) { progress = append(progress, p) },
	})
	if err != nil {
		t.Fatalf("optimize: %v", err)
	}
	if res.Version != before.Version()+1 || res.ReadVersion != before.Version() {
		t.Errorf("version %d read %d; want %d read %d", res.Version, res.ReadVersion, before.Version()+1, before.Version())
	}
	if res.FilesRemoved != 10 || res.FilesAdded != 2 || res.Partitions != 2 || res.FilesConsidered != 11 || len(res.Removed) != 10 {
		t.Errorf("result %+v", res)
	}
	if len(progress) == 0 || !progress[len(progress)-1].Done || progress[len(progress)-1].BinsDone != 2 {
		t.Errorf("progress %+v", progress)
	}

	after, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := filesByPartition(after); got["a"] != 1 || got["b"] != 1 || got["c"] != 1 || after.NumFiles() != 3 {
		t.Errorf("files after: %v", got)
	}
	var removedBytes, addedBytes int64
	for _, f := range before.Files() {
		if *f.PartitionValues["device"] != "c" {
			removedBytes += f.Size
		}
	}
	for _, f := range after.Files() {
		if *f.PartitionValues["device"] != "c" {
			addedBytes += f.Size
		}
		if f.Stats == "" {
			t.Errorf("new file %s has no stats", f.Path)
		}
	}
	if res.BytesRemoved != removedBytes || res.BytesAdded != addedBytes {
		t.Errorf("bytes removed %d added %d; want %d, %d", res.BytesRemoved, res.BytesAdded, removedBytes, addedBytes)
	}
	if rowsAfter := tableRows(t, after); !slices.Equal(rowsAfter, rowsBefore) {
		t.Errorf("rows changed:\nbefore %v\nafter  %v", rowsBefore, rowsAfter)
	}

	// Time travel: the pre-optimize version still has its files and rows.
	old, err := tbl.Snapshot(ctx, table.AtVersion(before.Version()))
	if err != nil {
		t.Fatal(err)
	}
	if old.NumFiles() != 11 {
		t.Errorf("old version has %d files, want 11", old.NumFiles())
	}
	if rowsOld := tableRows(t, old); !slices.Equal(rowsOld, rowsBefore) {
		t.Errorf("old version rows changed")
	}

	// The commit moves files without changing data.
	cs, err := reader.Changes(ctx, tbl, before.Version(), res.Version)
	if err != nil {
		t.Fatal(err)
	}
	if cs.DataChanged || len(cs.Added) != 2 || len(cs.Removed) != 10 {
		t.Errorf("changes: dataChanged %v, %d added, %d removed", cs.DataChanged, len(cs.Added), len(cs.Removed))
	}
	data, err := tbl.Store().Get(ctx, txlog.CommitKey(res.Version))
	if err != nil {
		t.Fatal(err)
	}
	actions, err := txlog.ParseCommit(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range actions {
		switch {
		case a.CommitInfo != nil:
			ci := a.CommitInfo
			if ci.Operation != "OPTIMIZE" || string(ci.OperationParameters["zOrderBy"]) != `"[]"` || ci.OperationParameters["predicate"] == nil {
				t.Errorf("commitInfo %s %s", ci.Operation, ci.OperationParameters)
			}
			if ci.IsBlindAppend == nil || *ci.IsBlindAppend {
				t.Errorf("isBlindAppend %v", ci.IsBlindAppend)
			}
		case a.Add != nil && a.Add.DataChange:
			t.Errorf("add %s has dataChange=true", a.Add.Path)
		case a.Remove != nil:
			r := a.Remove
			if r.DataChange || r.ExtendedFileMetadata == nil || !*r.ExtendedFileMetadata || r.Size == nil || *r.Size <= 0 || r.PartitionValues["device"] == nil {
				t.Errorf("remove %+v", r)
			}
		}
	}

	// Nothing left to compact: no commit.
	again, err := tbl.Optimize(ctx, table.OptimizeOptions{ReadRows: reader.RewriteRows})
	if err != nil || again.Version != -1 || again.FilesRemoved != 0 {
		t.Errorf("second optimize: %+v, %v", again, err)
	}
}

func TestOptimizeDryRunAndFilter(t *testing.T) {
	ctx := context.Background()
	tbl := optimizeTable(t)
	before, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	keys := storeKeys(t, tbl)
	res, err := tbl.Optimize(ctx, table.OptimizeOptions{DryRun: true, PartitionFilter: map[string]string{"device": "a"}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.DryRun || res.Version != -1 || res.FilesRemoved != 5 || res.Partitions != 1 || res.FilesConsidered != 5 {
		t.Errorf("dry run result %+v", res)
	}
	if got := storeKeys(t, tbl); !slices.Equal(got, keys) {
		t.Errorf("dry run changed the store:\nbefore %v\nafter  %v", keys, got)
	}

	if _, err := tbl.Optimize(ctx, table.OptimizeOptions{ReadRows: reader.RewriteRows, PartitionFilter: map[string]string{"nope": "x"}}); !errors.Is(err, table.ErrInvalidArgument) {
		t.Errorf("filter on a non-partition column: %v", err)
	}
	if _, err := tbl.Optimize(ctx, table.OptimizeOptions{}); !errors.Is(err, table.ErrInvalidArgument) {
		t.Errorf("no ReadRows: %v", err)
	}

	res, err = tbl.Optimize(ctx, table.OptimizeOptions{ReadRows: reader.RewriteRows, PartitionFilter: map[string]string{"device": "a"}})
	if err != nil {
		t.Fatal(err)
	}
	after, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := filesByPartition(after); got["a"] != 1 || got["b"] != 5 || got["c"] != 1 {
		t.Errorf("files after filtered optimize: %v (result %+v)", got, res)
	}
	if !slices.Equal(tableRows(t, after), tableRows(t, before)) {
		t.Error("rows changed")
	}
}

func TestOptimizeSmallTargetMakesSeveralBins(t *testing.T) {
	ctx := context.Background()
	tbl := optimizeTable(t)
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var maxSize int64
	for _, f := range snap.Files() {
		maxSize = max(maxSize, f.Size)
	}
	// Room for two files per bin: each partition of 5 files gives bins of
	// 2, 2 and a lone file that stays.
	res, err := tbl.Optimize(ctx, table.OptimizeOptions{ReadRows: reader.RewriteRows, TargetFileSize: 2 * maxSize, MinFileSize: maxSize + 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.FilesRemoved != 8 || res.FilesAdded != 4 {
		t.Errorf("result %+v", res)
	}
	after, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := filesByPartition(after); got["a"] != 3 || got["b"] != 3 {
		t.Errorf("files: %v", got)
	}
}

func TestOptimizeAppendOnlyTable(t *testing.T) {
	ctx := context.Background()
	tbl := optimizeTable(t, table.WithProperties(map[string]string{table.PropAppendOnly: "true"}))
	res, err := tbl.Optimize(ctx, table.OptimizeOptions{ReadRows: reader.RewriteRows})
	if err != nil {
		t.Fatalf("optimize of an append-only table: %v", err)
	}
	if res.FilesRemoved != 10 {
		t.Errorf("result %+v", res)
	}
}

func TestOptimizeConflictWithConcurrentDelete(t *testing.T) {
	ctx := context.Background()
	tbl := optimizeTable(t)
	before, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var victim *txlog.Add
	for _, f := range before.Files() {
		if *f.PartitionValues["device"] == "a" {
			victim = f
			break
		}
	}
	keysBefore := storeKeys(t, tbl)
	deleted := false
	// The rows are read, then another writer removes one of the files
	// before Optimize commits.
	readThenDelete := func(ctx context.Context, snap *table.Snapshot, files []*txlog.Add, emit func([]map[string]any) error) error {
		if err := reader.RewriteRows(ctx, snap, files, emit); err != nil {
			return err
		}
		if deleted {
			return nil
		}
		deleted = true
		tx, err := tbl.NewTransaction(ctx)
		if err != nil {
			return err
		}
		tx.RemoveFiles(&txlog.Remove{Path: victim.Path, DataChange: true})
		_, err = tx.Commit(ctx)
		return err
	}
	_, err = tbl.Optimize(ctx, table.OptimizeOptions{ReadRows: readThenDelete})
	var ce *table.ConflictError
	if !errors.Is(err, table.ErrConflict) || !errors.As(err, &ce) {
		t.Fatalf("optimize after a concurrent delete: %v, want a conflict", err)
	}
	// The files optimize wrote were deleted again; only the concurrent
	// commit was added.
	var extra []string
	keysAfter := storeKeys(t, tbl)
	for _, k := range keysAfter {
		if !slices.Contains(keysBefore, k) {
			extra = append(extra, k)
		}
	}
	if len(extra) != 1 || extra[0] != txlog.CommitKey(before.Version()+1) {
		t.Errorf("new objects after the failed optimize: %v", extra)
	}
	// Running again on the new version works.
	res, err := tbl.Optimize(ctx, table.OptimizeOptions{ReadRows: reader.RewriteRows})
	if err != nil || res.FilesRemoved != 9 {
		t.Errorf("rerun: %+v, %v", res, err)
	}
}

// A table with deletion vectors: either Optimize rewrites the file without
// its deleted rows, or (when the protocol is not writable by this package)
// it refuses with ErrUnsupportedFeature and writes nothing.
func TestOptimizeDeletionVectorTable(t *testing.T) {
	ctx := context.Background()
	dir := testutil.CopyDir(t, testutil.Testdata(t, "delta-rs", "table-with-dv-small"))
	tbl, err := table.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tbl.Close() }()
	before, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rowsBefore := tableRows(t, before)
	keys := storeKeys(t, tbl)
	res, err := tbl.Optimize(ctx, table.OptimizeOptions{ReadRows: reader.RewriteRows})
	if err != nil {
		t.Logf("refused: %v", err)
		if !errors.Is(err, txlog.ErrUnsupportedFeature) {
			t.Fatalf("optimize: %v", err)
		}
		if got := storeKeys(t, tbl); !slices.Equal(got, keys) {
			t.Errorf("refused optimize changed the store: %v", got)
		}
		return
	}
	after, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range after.Files() {
		if f.DeletionVector != nil {
			t.Errorf("file %s still has a deletion vector (result %+v)", f.Path, res)
		}
	}
	if !slices.Equal(tableRows(t, after), rowsBefore) {
		t.Error("rows changed")
	}
}

// TestOptimizeNestedAndDecimalColumns: files with map, array, struct and
// decimal columns are rewritten with every value intact.
func TestOptimizeNestedAndDecimalColumns(t *testing.T) {
	ctx := context.Background()
	schema, err := txlog.ParseDDL("id long, price decimal(10,2), tags array<string>, attrs map<string,int>, loc struct<lat: double, lon: double>, ints map<int,string>")
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := table.Create(ctx, memURL(), schema)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		rows := []map[string]any{{
			"id": int64(i), "price": fmt.Sprintf("%d.25", i), "tags": []any{"x", fmt.Sprint(i)},
			"attrs": map[string]any{"a": int64(i), "b": nil}, "loc": map[string]any{"lat": 1.5, "lon": float64(i)},
			"ints": map[int64]string{int64(i): "v", -1: "neg"},
		}, {"id": int64(100 + i)}}
		if _, err := tbl.Append(ctx, rows); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	before, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := tbl.Optimize(ctx, table.OptimizeOptions{ReadRows: reader.RewriteRows})
	if err != nil {
		t.Fatal(err)
	}
	if res.FilesRemoved != 4 || res.FilesAdded != 1 {
		t.Fatalf("optimize %+v; want 4 files into 1", res)
	}
	after, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b, a := tableRows(t, before), tableRows(t, after); !slices.Equal(b, a) {
		t.Fatalf("rows changed by optimize:\nbefore %v\nafter  %v", b, a)
	}
}
