package txlog

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kappa-lake/kappa/internal/testutil"
)

// fuzzSeeds returns the contents of fixture files accepted by match, when
// the shared fixtures are present (fuzzing still runs without them, from
// the inline seeds only).
func fuzzSeeds(f *testing.F, match func(path, name string) bool) [][]byte {
	f.Helper()
	root := os.Getenv("KAPPA_TESTDATA")
	if root == "" {
		root = filepath.Join(testutil.RepoRoot(), "..", "shared", "testdata")
	}
	var out [][]byte
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !match(p, d.Name()) {
			return nil
		}
		if data, err := os.ReadFile(p); err == nil && len(data) < 1<<20 {
			out = append(out, data)
		}
		return nil
	})
	return out
}

func inLog(p string) bool { return filepath.Base(filepath.Dir(p)) == "_delta_log" }

func FuzzParseCommit(f *testing.F) {
	f.Add([]byte(`{"add":{"path":"a","partitionValues":{},"size":1,"modificationTime":2,"dataChange":true}}`))
	f.Add([]byte("{\"commitInfo\":{\"x\":[1,{\"y\":null}],\"timestamp\":\"no\"}}\r\n\n{\"unknownKind\":{}}\n"))
	f.Add([]byte(`{"add":null}`))
	for _, data := range fuzzSeeds(f, func(p, name string) bool {
		return inLog(p) && strings.HasSuffix(name, ".json")
	}) {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		acts, err := ParseCommit(data)
		if err != nil {
			if !errors.Is(err, ErrCorruptLog) || !strings.Contains(err.Error(), "line ") {
				t.Fatalf("error %v does not wrap ErrCorruptLog with a line number", err)
			}
			return
		}
		var known []Action
		for _, a := range acts {
			if a.count() == 1 {
				known = append(known, a)
			} else if a.count() == 0 && a.Unknown == "" {
				t.Fatalf("empty action from %q", data)
			}
		}
		enc, err := EncodeCommit(known)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		again, err := ParseCommit(enc)
		if err != nil || len(again) != len(known) {
			t.Fatalf("re-parse %q: %d actions, %v", enc, len(again), err)
		}
		enc2, err := EncodeCommit(again)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("unstable encoding:\n%s\n%s\n%v", enc, enc2, err)
		}
	})
}

func FuzzParseStats(f *testing.F) {
	f.Add(`{"numRecords":3,"minValues":{"a":1},"maxValues":{"a":{"b":"z"}},"nullCount":{"a":0},"tightBounds":false}`)
	f.Add(``)
	for _, data := range fuzzSeeds(f, func(p, name string) bool { return inLog(p) && strings.HasSuffix(name, ".json") }) {
		acts, err := ParseCommit(data)
		if err != nil {
			continue
		}
		for _, a := range acts {
			if a.Add != nil && a.Add.Stats != "" {
				f.Add(a.Add.Stats)
			}
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		st, err := ParseStats(s)
		if err != nil {
			if !errors.Is(err, ErrCorruptLog) {
				t.Fatalf("error %v does not wrap ErrCorruptLog", err)
			}
			return
		}
		if st == nil && s != "" {
			t.Fatalf("nil stats for %q", s)
		}
		a := &Add{Stats: s}
		if st2, err := a.ParsedStats(); err != nil || (st2 == nil) != (st == nil) {
			t.Fatalf("ParsedStats disagrees: %v", err)
		}
	})
}

func FuzzParseLastCheckpoint(f *testing.F) {
	f.Add([]byte(`{"version":1,"size":2,"parts":null}`))
	f.Add([]byte(`{"size":4,"size_in_bytes":41898,"version":2}`))
	for _, data := range fuzzSeeds(f, func(p, name string) bool { return name == "_last_checkpoint" }) {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lc, err := ParseLastCheckpoint(data)
		if err != nil {
			if !errors.Is(err, ErrCorruptLog) {
				t.Fatalf("error %v does not wrap ErrCorruptLog", err)
			}
			return
		}
		if lc.Version < 0 {
			t.Fatalf("negative version %d", lc.Version)
		}
		if lc.checkpointParts() < 1 {
			t.Fatalf("parts %d", lc.checkpointParts())
		}
		enc, err := marshalNoEscape(lc)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		lc2, err := ParseLastCheckpoint(enc)
		if err != nil || lc2.Version != lc.Version || lc2.Size != lc.Size {
			t.Fatalf("round trip %s: %+v %v", enc, lc2, err)
		}
	})
}

func FuzzParseLogFile(f *testing.F) {
	for _, k := range []string{
		CommitKey(7), CheckpointKey(10), MultiPartCheckpointKey(3, 1, 2), CRCKey(1), CompactedKey(0, 5),
		V2CheckpointKey(2, "6374b053-df23-479b-b2cf-c9c550132b49", "json"), LastCheckpointKey,
	} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		lf, ok := ParseLogFile(key)
		if !ok {
			return
		}
		var want string
		switch lf.Kind {
		case KindCommit:
			want = CommitKey(lf.Version)
		case KindCheckpoint:
			want = CheckpointKey(lf.Version)
		case KindMultiPartCheckpoint:
			want = MultiPartCheckpointKey(lf.Version, lf.Part, lf.Parts)
		case KindV2Checkpoint:
			want = V2CheckpointKey(lf.Version, lf.UUID, lf.Ext)
		case KindCRC:
			want = CRCKey(lf.Version)
		case KindCompacted:
			want = CompactedKey(lf.Version, lf.EndVersion)
		default:
			t.Fatalf("kind %v", lf.Kind)
		}
		if want != key || lf.Key != key || lf.Part < 1 || lf.Part > lf.Parts {
			t.Fatalf("ParseLogFile(%q) = %+v (canonical key %q)", key, lf, want)
		}
	})
}
