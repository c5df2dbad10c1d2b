package txlog

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/kappa-lake/kappa/internal/store"
	"github.com/kappa-lake/kappa/internal/testutil"
)

// fixtureLastCheckpoints returns the paths of every _last_checkpoint file in
// the fixtures.
func fixtureLastCheckpoints(tb testing.TB) []string {
	tb.Helper()
	var out []string
	for _, tree := range []string{"delta-golden", "delta-rs", "delta-kernel"} {
		err := filepath.WalkDir(testutil.Testdata(tb, tree), func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && d.Name() == "_last_checkpoint" {
				out = append(out, p)
			}
			return err
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	return out
}

func TestParseLastCheckpointFixtures(t *testing.T) {
	files := fixtureLastCheckpoints(t)
	if len(files) < 30 {
		t.Fatalf("only %d _last_checkpoint files", len(files))
	}
	var n int
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		lc, err := ParseLastCheckpoint(data)
		if filepath.Base(filepath.Dir(filepath.Dir(filepath.Dir(p)))) == "corrupted-last-checkpoint-kernel" {
			if !errors.Is(err, ErrCorruptLog) {
				t.Errorf("%s: %v, want ErrCorruptLog", p, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		n++
		// A checkpoint of the hinted version exists next to it (not always
		// the named file: delta-kernel/v2-classic-checkpoint-parquet names a
		// V2 file that does not exist, beside a classic-named checkpoint).
		entries, err := os.ReadDir(filepath.Dir(p))
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range entries {
			f, ok := ParseLogFile(LogDir + e.Name())
			found = found || ok && f.Kind.IsCheckpoint() && f.Version == lc.Version
		}
		if !found {
			t.Errorf("%s: no checkpoint of version %d", p, lc.Version)
		}
	}
	t.Logf("%d _last_checkpoint files parsed", n)
}

func TestLastCheckpointFields(t *testing.T) {
	lc, err := ParseLastCheckpoint([]byte(`{"size":4,"size_in_bytes":41898,"version":2}`))
	if err != nil || lc.Version != 2 || lc.Size != 4 || *lc.SizeInBytes != 41898 || lc.Parts != nil {
		t.Fatalf("legacy delta-rs form: %+v, %v", lc, err)
	}
	data, err := os.ReadFile(filepath.Join(testutil.Testdata(t, "delta-rs", "checkpoint-v2-table"), "_delta_log", "_last_checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	lc, err = ParseLastCheckpoint(data)
	if err != nil {
		t.Fatal(err)
	}
	if lc.Version != 8 || lc.Size != 11 || *lc.NumOfAddFiles != 7 || lc.V2Checkpoint == nil ||
		lc.V2Checkpoint.Path != "00000000000000000008.checkpoint.e5ac4dc4-be27-4106-8a55-609707487f83.json" ||
		lc.V2Checkpoint.NonFileActions[0].Protocol == nil {
		t.Fatalf("v2 hint: %+v", lc)
	}
	for _, bad := range []string{``, `  `, `{"size":1}`, `{"version":-1}`, `{"version":"1"}`, `[1]`, `{"version":1`} {
		if _, err := ParseLastCheckpoint([]byte(bad)); !errors.Is(err, ErrCorruptLog) {
			t.Errorf("ParseLastCheckpoint(%q) = %v", bad, err)
		}
	}
}

func TestReadWriteLastCheckpoint(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if lc, err := ReadLastCheckpoint(ctx, st); lc != nil || err != nil {
		t.Fatalf("missing: %v, %v", lc, err)
	}
	parts, size, adds := 3, int64(46005), int64(5)
	want := &LastCheckpoint{
		Version: 5, Size: 7, Parts: &parts, SizeInBytes: &size, NumOfAddFiles: &adds,
		CheckpointSchema: []byte(`{"type":"struct","fields":[]}`), Tags: map[string]string{"k": "v"},
	}
	if err := WriteLastCheckpoint(ctx, st, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadLastCheckpoint(ctx, st)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("read back %+v, %v", got, err)
	}
	raw, err := st.Get(ctx, LastCheckpointKey)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"version":5,"size":7,"parts":3,"sizeInBytes":46005,"numOfAddFiles":5,"checkpointSchema":{"type":"struct","fields":[]},"tags":{"k":"v"}}`; string(raw) != want {
		t.Fatalf("written %s", raw)
	}
	if err := st.Put(ctx, LastCheckpointKey, []byte("{")); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadLastCheckpoint(ctx, st); !errors.Is(err, ErrCorruptLog) {
		t.Fatalf("corrupt: %v", err)
	}
	if err := WriteLastCheckpoint(ctx, st, nil); err == nil {
		t.Fatal("nil descriptor written")
	}
}
