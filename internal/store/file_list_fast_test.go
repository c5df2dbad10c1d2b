package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSkippedByName(t *testing.T) {
	names := []string{"", "a", "a.b", "a-", "a0", "ab", "b", "a/", "é"}
	for _, name := range names[1:] {
		for _, rest := range append(names, "a/x", "a.b/c", "a0/", "a-/z") {
			want := name+"/" <= rest && !strings.HasPrefix(rest, name+"/")
			if got := skippedByName(name, rest); got != want {
				t.Errorf("skippedByName(%q, %q) = %v, want %v", name, rest, got, want)
			}
		}
	}
}

// TestFileListStartAfterLargeDir checks listings of a directory with more
// entries than one ReadDir batch, from every kind of startAfter position.
func TestFileListStartAfterLargeDir(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "_delta_log")
	if err := os.MkdirAll(filepath.Join(log, "_sidecars"), 0o755); err != nil {
		t.Fatal(err)
	}
	var want []string
	n := readDirBatch*2 + 17
	for i := range n {
		name := filepath.Join(log, fmt.Sprintf("%07d.json", i))
		if err := os.WriteFile(name, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		want = append(want, "_delta_log/"+filepath.Base(name))
	}
	if err := os.WriteFile(filepath.Join(log, "_sidecars", "s.parquet"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(log, TempPrefix+"junk"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	want = append(want, "_delta_log/_sidecars/s.parquet")
	slices.Sort(want)
	for _, after := range []string{"", "_delta_log/", want[0], want[n/2], want[n-1], "_delta_log/_sidecars", "_delta_log/_sidecars/", "_delta_log/_sidecars/s.parquet", "_delta_log/0001"} {
		var got []string
		for info, err := range st.List(ctx, "_delta_log/", after) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, info.Key)
		}
		var exp []string
		for _, k := range want {
			if k > after {
				exp = append(exp, k)
			}
		}
		if !slices.Equal(got, exp) {
			t.Errorf("startAfter %q: got %d keys (%v...), want %d", after, len(got), got[:min(3, len(got))], len(exp))
		}
	}
}
