package table_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kappa-lake/kappa/internal/testutil"
	"github.com/kappa-lake/kappa/table"
	"github.com/kappa-lake/kappa/txlog"
)

// negativeFixtures must fail to open with these errors.
var negativeFixtures = map[string]struct {
	err  error
	text string
}{
	"delta-golden/deltalog-invalid-protocol-version/delta":                              {txlog.ErrUnsupportedFeature, "99"},
	"delta-golden/deltalog-state-reconstruction-from-checkpoint-missing-metadata/delta": {txlog.ErrCorruptLog, "metaData"},
	"delta-golden/deltalog-state-reconstruction-from-checkpoint-missing-protocol/delta": {txlog.ErrCorruptLog, "protocol"},
	"delta-golden/deltalog-state-reconstruction-without-metadata/delta":                 {txlog.ErrCorruptLog, "metaData"},
	"delta-golden/deltalog-state-reconstruction-without-protocol/delta":                 {txlog.ErrCorruptLog, "protocol"},
	"delta-golden/no-delta-log-folder/delta":                                            {txlog.ErrTableNotFound, ""},
	"delta-golden/versions-not-contiguous/delta":                                        {txlog.ErrCorruptLog, "contiguous"},
	"delta-golden/hive/delta":                                                           {txlog.ErrTableNotFound, ""},
	"delta-rs/simple_table_features":                                                    {txlog.ErrUnsupportedFeature, "blahabl"},
	"delta-rs/checkpoints_tombstones":                                                   {txlog.ErrTableNotFound, ""},
	// Only a .crc file, no commit: not a table.
	"delta-kernel/crc-malformed": {txlog.ErrTableNotFound, ""},
	// The README lists this one as log-only, but its log has no metaData
	// action at all, which the protocol (and Spark) treat as corrupt, like
	// deltalog-state-reconstruction-without-metadata.
	"delta-golden/data-reader-absolute-paths-escaped-chars/delta": {txlog.ErrCorruptLog, "metaData"},
	// Variant columns: a reader feature this engine does not implement.
	"delta-rs/spark-shredded-variant-preview-delta":    {txlog.ErrUnsupportedFeature, "variant"},
	"delta-rs/spark-variant-checkpoint":                {txlog.ErrUnsupportedFeature, "variantType-preview"},
	"delta-rs/spark-variant-stable-feature-checkpoint": {txlog.ErrUnsupportedFeature, "variantType"},
}

// fixtureTables lists every table directory under the shared testdata
// (relative names), plus the negative fixtures.
func fixtureTables(t *testing.T) (string, []string) {
	root := testutil.Testdata(t)
	seen := map[string]bool{}
	for _, group := range []string{"delta-golden", "delta-rs", "delta-kernel"} {
		entries, err := os.ReadDir(filepath.Join(root, group))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			base := filepath.Join(root, group, e.Name())
			_ = filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
				if err != nil || !d.IsDir() {
					return nil
				}
				if d.Name() == "_delta_log" {
					rel, _ := filepath.Rel(root, filepath.Dir(p))
					seen[filepath.ToSlash(rel)] = true
					return filepath.SkipDir
				}
				if strings.Count(strings.TrimPrefix(p, base), string(filepath.Separator)) > 2 {
					return filepath.SkipDir
				}
				return nil
			})
		}
	}
	for name := range negativeFixtures {
		seen[name] = true
	}
	var out []string
	for name := range seen {
		out = append(out, name)
	}
	sort.Strings(out)
	return root, out
}

func TestFixtures(t *testing.T) {
	root, names := fixtureTables(t)
	if len(names) < 100 {
		t.Fatalf("found only %d fixture tables", len(names))
	}
	ctx := context.Background()
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(root, filepath.FromSlash(name))
			tbl, err := table.Open(ctx, dir)
			if neg, ok := negativeFixtures[name]; ok {
				if err == nil {
					t.Fatalf("opened; want an error wrapping %v", neg.err)
				}
				if !errors.Is(err, neg.err) || !strings.Contains(err.Error(), neg.text) {
					t.Fatalf("error %q; want one wrapping %v mentioning %q", err, neg.err, neg.text)
				}
				return
			}
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer tbl.Close()
			snap, err := tbl.Snapshot(ctx)
			if err != nil {
				t.Fatalf("snapshot: %v", err)
			}
			if snap.Schema() == nil || snap.Version() < 0 {
				t.Fatalf("snapshot without schema or version")
			}
			want, ok := replayJSON(t, filepath.Join(dir, "_delta_log"))
			if !ok {
				return // early commits cleaned up: only the checkpoint knows
			}
			if want.version != snap.Version() {
				t.Fatalf("version %d, JSON replay says %d", snap.Version(), want.version)
			}
			got := map[string]fileFacts{}
			for _, a := range snap.Files() {
				got[fileID(decode(a.Path), dvID(a.DeletionVector))] = fileFacts{a.Size, a.ModificationTime}
			}
			compareFiles(t, got, want.files)
			// A checkpoint wins over the JSON it summarises (parquet_row_group_skipping's
			// checkpoint carries a different metadata id than its commit 0).
			if !want.hasCheckpoint && snap.Metadata().ID != want.metadataID {
				t.Errorf("metadata id %q, JSON replay says %q", snap.Metadata().ID, want.metadataID)
			}
			for app, v := range want.txns {
				if got, ok := snap.Txn(app); !ok || got != v {
					if snap.Config().SetTransactionRetention == 0 {
						t.Errorf("txn %q = %d,%v; want %d", app, got, ok, v)
					}
				}
			}
		})
	}
}

type fileFacts struct{ size, mtime int64 }

func compareFiles(t *testing.T, got, want map[string]fileFacts) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("missing file %s", k)
			continue
		}
		if g != w {
			t.Errorf("file %s: got size/mtime %v, want %v", k, g, w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected file %s", k)
		}
	}
}

func fileID(path, dv string) string {
	if dv == "" {
		return path
	}
	return path + " dv=" + dv
}

func decode(p string) string {
	if d, err := url.PathUnescape(p); err == nil {
		return d
	}
	return p
}

func dvID(dv *txlog.DeletionVector) string {
	if dv == nil {
		return ""
	}
	s := dv.StorageType + dv.PathOrInlineDv
	if dv.Offset != nil {
		s += fmt.Sprintf("@%d", *dv.Offset)
	}
	return s
}

type jsonReplay struct {
	version    int64
	files      map[string]fileFacts
	metadataID string
	txns       map[string]int64
	// hasCheckpoint: the log holds checkpoint files.
	hasCheckpoint bool
}

// replayJSON replays the JSON commits of a log independently of the
// package: plain maps, no txlog codec. It reports false when commit 0 is
// missing (only a checkpoint can rebuild the state).
func replayJSON(t *testing.T, logDir string) (jsonReplay, bool) {
	t.Helper()
	entries, err := os.ReadDir(logDir)
	if err != nil {
		t.Fatal(err)
	}
	var versions []int64
	for _, e := range entries {
		n := e.Name()
		if len(n) == 25 && strings.HasSuffix(n, ".json") {
			var v int64
			if _, err := fmt.Sscanf(n[:20], "%d", &v); err == nil {
				versions = append(versions, v)
			}
		}
	}
	sort.Slice(versions, func(i, j int) bool { return versions[i] < versions[j] })
	if len(versions) == 0 || versions[0] != 0 {
		return jsonReplay{}, false
	}
	r := jsonReplay{version: -1, files: map[string]fileFacts{}, txns: map[string]int64{}}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".checkpoint.") {
			r.hasCheckpoint = true
		}
	}
	for _, v := range versions {
		if v != r.version+1 {
			t.Fatalf("gap before version %d", v)
		}
		r.version = v
		data, err := os.ReadFile(filepath.Join(logDir, fmt.Sprintf("%020d.json", v)))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) == 0 {
				continue
			}
			var act struct {
				Add *struct {
					Path             string                `json:"path"`
					Size             int64                 `json:"size"`
					ModificationTime int64                 `json:"modificationTime"`
					DV               *txlog.DeletionVector `json:"deletionVector"`
				} `json:"add"`
				Remove *struct {
					Path string                `json:"path"`
					DV   *txlog.DeletionVector `json:"deletionVector"`
				} `json:"remove"`
				MetaData *struct {
					ID string `json:"id"`
				} `json:"metaData"`
				Txn *struct {
					AppID   string `json:"appId"`
					Version int64  `json:"version"`
				} `json:"txn"`
			}
			if err := json.Unmarshal(line, &act); err != nil {
				t.Fatalf("version %d: %v", v, err)
			}
			switch {
			case act.Add != nil:
				r.files[fileID(decode(act.Add.Path), dvID(act.Add.DV))] = fileFacts{act.Add.Size, act.Add.ModificationTime}
			case act.Remove != nil:
				delete(r.files, fileID(decode(act.Remove.Path), dvID(act.Remove.DV)))
			case act.MetaData != nil:
				r.metadataID = act.MetaData.ID
			case act.Txn != nil:
				r.txns[act.Txn.AppID] = act.Txn.Version
			}
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return r, true
}

func openFixture(t *testing.T, elem ...string) *table.Table {
	t.Helper()
	tbl, err := table.Open(context.Background(), testutil.Testdata(t, elem...))
	if err != nil {
		t.Fatalf("open %s: %v", filepath.Join(elem...), err)
	}
	t.Cleanup(func() { _ = tbl.Close() })
	return tbl
}

func TestDeleteReAddSameFile(t *testing.T) {
	tbl := openFixture(t, "delta-golden", "delete-re-add-same-file-different-transactions", "delta")
	snap, err := tbl.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	files := snap.Files()
	if len(files) != 2 || files[0].Path != "bar" || files[1].Path != "foo" {
		var paths []string
		for _, f := range files {
			paths = append(paths, f.Path)
		}
		t.Fatalf("files %v; want [bar foo]", paths)
	}
	if files[1].ModificationTime != 1700000000000 {
		t.Fatalf("foo modificationTime %d", files[1].ModificationTime)
	}
}

func TestGoldenCheckpoint(t *testing.T) {
	tbl := openFixture(t, "delta-golden", "checkpoint", "delta")
	ctx := context.Background()
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Version() != 14 {
		t.Fatalf("version %d; want 14", snap.Version())
	}
	// Every version is reachable (commit 0 is still there) and the versions
	// before and after the checkpoint agree with the JSON replay.
	for _, v := range []int64{0, 9, 10, 11, 14} {
		s, err := tbl.Snapshot(ctx, table.AtVersion(v))
		if err != nil {
			t.Fatalf("version %d: %v", v, err)
		}
		if s.Version() != v {
			t.Fatalf("AtVersion(%d) loaded %d", v, s.Version())
		}
	}
	if _, err := tbl.Snapshot(ctx, table.AtVersion(15)); !errors.Is(err, txlog.ErrVersionNotFound) {
		t.Fatalf("version 15: %v; want ErrVersionNotFound", err)
	}
}

func TestAppTxnFixtures(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"app-txn-checkpoint", "app-txn-no-checkpoint"} {
		t.Run(name, func(t *testing.T) {
			tbl := openFixture(t, "delta-kernel", name)
			snap, err := tbl.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]int64{"my-app": 3, "my-app2": 2}
			if got := snap.Txns(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("txns %v; want %v", got, want)
			}
			if v, ok := snap.Txn("my-app"); !ok || v != 3 {
				t.Fatalf("Txn(my-app) = %d, %v", v, ok)
			}
			if _, ok := snap.Txn("nope"); ok {
				t.Fatal("Txn(nope) found")
			}
			s0, err := tbl.Snapshot(ctx, table.AtVersion(0))
			if err != nil {
				t.Fatal(err)
			}
			if got := s0.Txns(); fmt.Sprint(got) != fmt.Sprint(map[string]int64{"my-app": 1}) {
				t.Fatalf("txns at v0 %v", got)
			}
		})
	}
	t.Run("app-txn-with-last-updated", func(t *testing.T) {
		// delta.setTransactionRetentionDuration = 1 day: the txns whose
		// lastUpdated (1970) is older are expired; the one without
		// lastUpdated never expires.
		tbl := openFixture(t, "delta-kernel", "app-txn-with-last-updated")
		snap, err := tbl.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := snap.Txns(); fmt.Sprint(got) != fmt.Sprint(map[string]int64{"new_app_0": 1}) {
			t.Fatalf("txns %v", got)
		}
	})
}

func TestCleanedUpLogs(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name        string
		first, last int64
	}{
		{"checkpoints_vacuumed", 5, 12},
		{"checkpoint-cdf-table", 3, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tbl := openFixture(t, "delta-rs", tc.name)
			snap, err := tbl.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if snap.Version() != tc.last {
				t.Fatalf("latest %d; want %d", snap.Version(), tc.last)
			}
			for v := tc.first; v <= tc.last; v++ {
				s, err := tbl.Snapshot(ctx, table.AtVersion(v))
				if err != nil {
					t.Fatalf("version %d: %v", v, err)
				}
				if s.Version() != v {
					t.Fatalf("AtVersion(%d) = %d", v, s.Version())
				}
			}
			for _, v := range []int64{0, tc.first - 1} {
				_, err := tbl.Snapshot(ctx, table.AtVersion(v))
				if !errors.Is(err, txlog.ErrVersionNotFound) {
					t.Fatalf("version %d: %v; want ErrVersionNotFound", v, err)
				}
				if !strings.Contains(err.Error(), fmt.Sprint(tc.first)) {
					t.Fatalf("version %d: error %q does not name the available range", v, err)
				}
			}
		})
	}
}

func TestSimpleTableFeaturesRefused(t *testing.T) {
	_, err := table.Open(context.Background(), testutil.Testdata(t, "delta-rs", "simple_table_features"))
	if !errors.Is(err, txlog.ErrUnsupportedFeature) || !strings.Contains(err.Error(), "blahabl") {
		t.Fatalf("err = %v; want ErrUnsupportedFeature naming blahabl", err)
	}
}

func TestSimpleTableIgnoresTmpCommit(t *testing.T) {
	tbl := openFixture(t, "delta-rs", "simple_table")
	snap, err := tbl.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if snap.Version() != 4 {
		t.Fatalf("version %d; want 4", snap.Version())
	}
}
