package reader

// Reliability suite, hostile tables: logs crafted to escape the table root,
// lie about sizes and stats, nest schemas absurdly deep, point at missing or
// truncated files, or hold garbage. Each must give a clear error (a sentinel
// for errors.Is and a message naming the problem), never a panic, never a
// read outside the table root, and never wrong rows.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kappa-lake/kappa/internal/store"
	"github.com/kappa-lake/kappa/table"
	"github.com/kappa-lake/kappa/txlog"
)

// hostileFixture is a small partitioned table (columns id long, part int)
// in <tmp>/tbl with one committed file of hostileRows rows in part=7, plus a
// valid copy of that data file outside the root, at <tmp>/outside/x.parquet
// and <tmp>/tbl2/x.parquet (a sibling whose name extends the root's).
type hostileFixture struct {
	parent, root string
	good         txlog.Add // the committed add (a copy)
	goodFile     []byte
}

const hostileRows = 20

func newHostileFixture(t *testing.T) *hostileFixture {
	t.Helper()
	ctx := context.Background()
	parent := t.TempDir()
	root := filepath.Join(parent, "tbl")
	schema := &txlog.StructType{Fields: []*txlog.StructField{
		{Name: "id", Type: &txlog.PrimitiveType{Name: txlog.TypeLong}, Nullable: true},
		{Name: "part", Type: &txlog.PrimitiveType{Name: txlog.TypeInteger}, Nullable: true},
	}}
	tbl, err := table.Create(ctx, root, schema, table.WithPartitionColumns("part"), table.WithoutAutoCheckpoint(), table.WithoutInCommitTimestamps())
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Close()
	rows := make([]map[string]any, hostileRows)
	for i := range rows {
		rows[i] = map[string]any{"id": int64(i), "part": int64(7)}
	}
	if _, err := tbl.Append(ctx, rows); err != nil {
		t.Fatal(err)
	}
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.NumFiles() != 1 {
		t.Fatalf("%d files", snap.NumFiles())
	}
	f := &hostileFixture{parent: parent, root: root, good: *snap.Files()[0]}
	f.goodFile, err = os.ReadFile(filepath.Join(root, filepath.FromSlash(f.good.Path)))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"outside/x.parquet", "tbl2/x.parquet", "outside/dv.bin"} {
		full := filepath.Join(parent, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, f.goodFile, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// commit writes raw commit bytes at version v (2 = the first free one).
func (f *hostileFixture) commit(t *testing.T, v int64, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(f.root, filepath.FromSlash(txlog.CommitKey(v))), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// commitActions writes actions as commit v.
func (f *hostileFixture) commitActions(t *testing.T, v int64, actions ...txlog.Action) {
	t.Helper()
	data, err := txlog.EncodeCommit(actions)
	if err != nil {
		t.Fatal(err)
	}
	f.commit(t, v, data)
}

// replaceGood writes commit 2 removing the good file and adding a.
func (f *hostileFixture) replaceGood(t *testing.T, a *txlog.Add) {
	t.Helper()
	del := int64(1)
	f.commitActions(t, 2,
		txlog.Action{Remove: &txlog.Remove{Path: f.good.Path, DeletionTimestamp: &del, DataChange: true}},
		txlog.Action{Add: a})
}

// scan opens the table, loads the latest snapshot and reads every row
// (with pred when non-nil), recovering a panic into a test failure.
func (f *hostileFixture) scan(t *testing.T, pred Expr) (rows int, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("panic: %v", r)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tbl, err := table.Open(ctx, f.root)
	if err != nil {
		return 0, err
	}
	defer tbl.Close()
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		return 0, err
	}
	var opts []ScanOption
	if pred != nil {
		opts = append(opts, WithPredicate(pred))
	}
	for _, err := range NewScan(snap, opts...).Rows(ctx) {
		if err != nil {
			return rows, err
		}
		rows++
	}
	return rows, nil
}

func wantErr(t *testing.T, what string, err error, sentinel error, mention string) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s: no error", what)
	case !errors.Is(err, sentinel):
		t.Errorf("%s: error %q does not wrap %q", what, err, sentinel)
	case mention != "" && !strings.Contains(err.Error(), mention):
		t.Errorf("%s: error %q does not mention %q", what, err, mention)
	}
}

func TestHostilePathsEscapingTheRoot(t *testing.T) {
	f := newHostileFixture(t)
	outside := filepath.Join(f.parent, "outside", "x.parquet")
	sibling := filepath.Join(f.parent, "tbl2", "x.parquet")
	paths := []string{
		"../outside/x.parquet",
		"part=7/../../outside/x.parquet",
		"%2e%2e/outside/x.parquet",
		"%2E%2E%2Foutside%2Fx.parquet",
		"..%2Foutside%2Fx.parquet",
		"part=7/%2e%2e/%2e%2e/outside/x.parquet",
		outside,
		sibling,
		f.root + "/../outside/x.parquet",
		"file://" + outside,
		"file:" + outside,
		"file://" + f.root + "/../outside/x.parquet",
		"file://" + f.root + "/%2e%2e/outside/x.parquet",
		"file://localhost" + outside,
		"file://otherhost/x.parquet",
		"s3://bucket/x.parquet",
		"mem://other/x.parquet",
	}
	for _, p := range paths {
		a := f.good
		a.Path = p
		f.replaceGood(t, &a)
		n, err := f.scan(t, nil)
		if err == nil {
			t.Errorf("path %q: read %d rows from outside the table root", p, n)
			continue
		}
		wantErr(t, "path "+p, err, ErrBadPath, "")
		if !strings.Contains(err.Error(), p) {
			t.Errorf("path %q: error %q does not name the path", p, err)
		}
	}
}

func TestHostileDeletionVectorOutsideTheRoot(t *testing.T) {
	f := newHostileFixture(t)
	for _, p := range []string{"../outside/dv.bin", filepath.Join(f.parent, "outside", "dv.bin"), "file://" + filepath.Join(f.parent, "outside", "dv.bin")} {
		a := f.good
		a.DeletionVector = &txlog.DeletionVector{StorageType: "p", PathOrInlineDv: p, SizeInBytes: 10, Cardinality: 1}
		f.replaceGood(t, &a)
		n, err := f.scan(t, nil)
		if err == nil {
			t.Errorf("deletion vector %q: read %d rows", p, n)
			continue
		}
		if !errors.Is(err, ErrBadPath) && !errors.Is(err, ErrBadDeletionVector) {
			t.Errorf("deletion vector %q: error %q wraps neither ErrBadPath nor ErrBadDeletionVector", p, err)
		}
	}
}

func TestHostileSizes(t *testing.T) {
	f := newHostileFixture(t)
	for _, size := range []int64{-1, 0, 1, 1 << 62, -1 << 63} {
		a := f.good
		a.Size = size
		a.ModificationTime = -size
		f.replaceGood(t, &a)
		// add.size is advisory: the reader must either read the file's real
		// content or refuse with a clear error; never panic or allocate it.
		n, err := f.scan(t, Ge(Col("id"), Lit(int64(0))))
		if err == nil && n != hostileRows {
			t.Errorf("size %d: %d rows, want %d", size, n, hostileRows)
		}
		if err != nil && !strings.Contains(err.Error(), f.good.Path) {
			t.Errorf("size %d: error %q does not name the file", size, err)
		}
	}
}

func TestHostileStats(t *testing.T) {
	f := newHostileFixture(t)
	huge := strings.Repeat("z", 10<<20)
	cases := map[string]string{
		"huge string min":         `{"numRecords":20,"minValues":{"id":"` + huge + `"},"maxValues":{"id":19}}`,
		"huge unknown column":     `{"numRecords":20,"minValues":{"nope":"` + huge + `"}}`,
		"truncated json":          `{"numRecords":20,"minValues":{"id":`,
		"not an object":           `[1,2,3]`,
		"wrong types":             `{"numRecords":"x","minValues":{"id":{"a":1}},"maxValues":{"id":[1]},"nullCount":{"id":"all"}}`,
		"negative counts":         `{"numRecords":-5,"nullCount":{"id":-5}}`,
		"absurd numbers":          `{"numRecords":1e400,"minValues":{"id":-1e400},"maxValues":{"id":1e400}}`,
		"deeply nested":           strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000),
		"min above max":           `{"numRecords":20,"minValues":{"id":100},"maxValues":{"id":-100},"nullCount":{"id":0}}`,
		"nulls exceed rows":       `{"numRecords":20,"nullCount":{"id":21}}`,
		"empty":                   ``,
		"nul bytes":               "{\"numRecords\":20\x00}",
		"partition column in min": `{"numRecords":20,"minValues":{"part":"abc"},"maxValues":{"part":"abc"}}`,
	}
	for name, stats := range cases {
		a := f.good
		a.Stats = stats
		f.replaceGood(t, &a)
		start := time.Now()
		n, err := f.scan(t, Ge(Col("id"), Lit(int64(0))))
		// Bad stats must not skip the file wrongly: either every row, or a
		// clear error. "min above max" is inconsistent but well-formed: a
		// reader trusting it may skip the file, so only errors are checked.
		switch {
		case err != nil:
			if !errors.Is(err, txlog.ErrCorruptLog) {
				t.Errorf("%s: error %q does not wrap ErrCorruptLog", name, err)
			}
		case name == "min above max" || name == "nulls exceed rows":
		case n != hostileRows:
			t.Errorf("%s: %d rows, want %d (bad stats skipped data)", name, n, hostileRows)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%s: took %s", name, d)
		}
	}
}

// nestedSchema is a struct nested depth levels deep under column "deep".
func nestedSchema(depth int) string {
	open := `{"type":"struct","fields":[{"name":"n","type":`
	closeS := `,"nullable":true,"metadata":{}}]}`
	leaf := `{"type":"struct","fields":[{"name":"leaf","type":"long","nullable":true,"metadata":{}}]}`
	inner := strings.Repeat(open, depth) + leaf + strings.Repeat(closeS, depth)
	return `{"type":"struct","fields":[{"name":"id","type":"long","nullable":true,"metadata":{}},` +
		`{"name":"part","type":"integer","nullable":true,"metadata":{}},` +
		`{"name":"deep","type":` + inner + `,"nullable":true,"metadata":{}}]}`
}

func TestHostileDeepSchemas(t *testing.T) {
	for _, depth := range []int{50, 1000, 20000} {
		t.Run(fmt.Sprint(depth), func(t *testing.T) {
			f := newHostileFixture(t)
			tbl, err := table.Open(context.Background(), f.root)
			if err != nil {
				t.Fatal(err)
			}
			snap, err := tbl.Snapshot(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			meta := snap.Metadata()
			meta.SchemaString = nestedSchema(depth)
			_ = tbl.Close()
			f.commitActions(t, 2, txlog.Action{MetaData: &meta})
			start := time.Now()
			n, err := f.scan(t, nil)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %s", d)
			}
			if err != nil {
				if !errors.Is(err, txlog.ErrInvalidSchema) && !errors.Is(err, txlog.ErrCorruptLog) {
					t.Errorf("error %q wraps neither ErrInvalidSchema nor ErrCorruptLog", err)
				}
				t.Logf("depth %d refused: %.200s", depth, err)
				return
			}
			if n != hostileRows {
				t.Errorf("%d rows, want %d", n, hostileRows)
			}
			t.Logf("depth %d read (%d rows, column deep all null)", depth, n)
		})
	}
}

func TestHostileMissingDataFile(t *testing.T) {
	f := newHostileFixture(t)
	if err := os.Remove(filepath.Join(f.root, filepath.FromSlash(f.good.Path))); err != nil {
		t.Fatal(err)
	}
	_, err := f.scan(t, nil)
	wantErr(t, "missing file", err, store.ErrNotExist, f.good.Path)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v does not wrap fs.ErrNotExist", err)
	}
}

func TestHostileTruncatedDataFiles(t *testing.T) {
	f := newHostileFixture(t)
	full := filepath.Join(f.root, filepath.FromSlash(f.good.Path))
	n := len(f.goodFile)
	variants := map[string][]byte{
		"empty":            {},
		"magic only":       []byte("PAR1"),
		"half":             f.goodFile[:n/2],
		"no footer magic":  f.goodFile[:n-4],
		"no last byte":     f.goodFile[:n-1],
		"footer length 2G": append(append([]byte{}, f.goodFile[:n-8]...), 0xff, 0xff, 0xff, 0x7f, 'P', 'A', 'R', '1'),
		"zeroed middle": func() []byte {
			b := append([]byte{}, f.goodFile...)
			for i := 4; i < n/2; i++ {
				b[i] = 0
			}
			return b
		}(),
		"not parquet": []byte(strings.Repeat("hello world\n", 100)),
	}
	for name, data := range variants {
		if err := os.WriteFile(full, data, 0o644); err != nil {
			t.Fatal(err)
		}
		rows, err := f.scan(t, nil)
		if err == nil {
			if name == "zeroed middle" && rows == hostileRows {
				continue // the zeroed bytes may be padding the reader skips
			}
			t.Errorf("%s: %d rows and no error", name, rows)
			continue
		}
		wantErr(t, name, err, ErrCorruptData, f.good.Path)
		if store.IsRetryable(err) {
			t.Errorf("%s: %v is classified retryable", name, err)
		}
	}
}

// TestHostileCorruptedDataFiles flips random bytes of a data file: every
// scan either succeeds with the file's row count or fails with
// ErrCorruptData naming the file. Before the fix (recoverCorrupt in
// scan.go) parquet-go panicked in a scan worker on some of these inputs
// ("slice bounds out of range" in columnLoader.open), killing the process.
func TestHostileCorruptedDataFiles(t *testing.T) {
	f := newHostileFixture(t)
	full := filepath.Join(f.root, filepath.FromSlash(f.good.Path))
	rng := rand.New(rand.NewPCG(1, 2))
	iters := 150
	if testing.Short() {
		iters = 40
	}
	failed := 0
	for i := range iters {
		b := append([]byte{}, f.goodFile...)
		for range 1 + rng.IntN(4) {
			b[rng.IntN(len(b))] ^= byte(1 + rng.IntN(255))
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
		n, err := f.scan(t, nil)
		if err == nil {
			if n != hostileRows {
				t.Errorf("corruption %d: %d rows without error, want %d", i, n, hostileRows)
			}
			continue
		}
		failed++
		wantErr(t, fmt.Sprintf("corruption %d", i), err, ErrCorruptData, f.good.Path)
		if store.IsRetryable(err) {
			t.Errorf("corruption %d: %v is classified retryable: callers would retry a corrupt file forever", i, err)
		}
	}
	t.Logf("%d corrupted files: %d refused with ErrCorruptData, %d read (damage in bytes the reader does not check)", iters, failed, iters-failed)
}

func TestHostileCommitGarbage(t *testing.T) {
	f := newHostileFixture(t)
	good, err := txlog.EncodeCommit([]txlog.Action{{Add: &txlog.Add{Path: "y.parquet", PartitionValues: map[string]*string{"part": nil}, Size: 1, DataChange: true}}})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		data []byte
		line string
	}{
		"garbage line":    {append(append([]byte{}, good...), "this is not json\n"...), "line 2"},
		"truncated json":  {good[:len(good)/2], "line 1"},
		"binary":          {[]byte{0, 1, 2, 0xff, 0xfe, '\n'}, "line 1"},
		"array":           {[]byte("[1,2]\n"), "line 1"},
		"bad field types": {[]byte(`{"add":{"path":5,"size":"big"}}` + "\n"), "line 1"},
		"huge line":       {[]byte(`{"commitInfo":{"x":"` + strings.Repeat("a", 5<<20) + `"}}` + "\n{\n"), "line 2"},
	}
	for name, c := range cases {
		f.commit(t, 2, c.data)
		_, err := f.scan(t, nil)
		wantErr(t, name, err, txlog.ErrCorruptLog, c.line)
		if err != nil && !strings.Contains(err.Error(), "2") {
			t.Errorf("%s: error %q does not name the version", name, err)
		}
	}
}

func TestHostilePartitionValues(t *testing.T) {
	f := newHostileFixture(t)
	for _, v := range []string{"abc", "1e999", "99999999999999999999", "7; DROP TABLE", "\x00", strings.Repeat("9", 1<<16)} {
		a := f.good
		a.PartitionValues = map[string]*string{"part": &v}
		f.replaceGood(t, &a)
		_, err := f.scan(t, nil)
		wantErr(t, fmt.Sprintf("partition value %.20q", v), err, ErrBadPartitionValue, "part")
	}
	// Decoded JSON cannot carry a partition value for a column the table
	// does not have into the rows: it is ignored.
	a := f.good
	seven, extra := "7", "x"
	a.PartitionValues = map[string]*string{"part": &seven, "nope": &extra}
	f.replaceGood(t, &a)
	if n, err := f.scan(t, nil); err != nil || n != hostileRows {
		t.Errorf("extra partition value: %d rows, %v", n, err)
	}
}

// TestHostileStatsJSONShape guards the fixture itself: the stats the writer
// produced parse, so the cases above start from a valid file.
func TestHostileStatsJSONShape(t *testing.T) {
	f := newHostileFixture(t)
	var m map[string]any
	if err := json.Unmarshal([]byte(f.good.Stats), &m); err != nil || m["numRecords"] == nil {
		t.Fatalf("stats %q: %v", f.good.Stats, err)
	}
}
