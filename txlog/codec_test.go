package txlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kappa-lake/kappa/internal/testutil"
)

// fixtureLogFiles walks the three fixture trees and returns every NDJSON log
// file (commits, compacted files, V2 JSON checkpoints) by path.
func fixtureLogFiles(tb testing.TB) []string {
	tb.Helper()
	var out []string
	for _, tree := range []string{"delta-golden", "delta-rs", "delta-kernel"} {
		root := testutil.Testdata(tb, tree)
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if filepath.Base(filepath.Dir(p)) != "_delta_log" {
				return nil
			}
			f, ok := ParseLogFile(LogDir + d.Name())
			if !ok {
				return nil
			}
			if f.Kind == KindCommit || f.Kind == KindCompacted || (f.Kind == KindV2Checkpoint && f.Ext == "json") {
				out = append(out, p)
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	if len(out) < 500 {
		tb.Fatalf("found only %d log JSON files in the fixtures", len(out))
	}
	return out
}

// TestParseCommitFixtures parses every commit, compaction and V2 JSON
// checkpoint file of the fixtures (none of them is malformed: the only
// malformed JSON in the fixtures is delta-kernel/crc-malformed's .crc file,
// which is not a commit) and checks that EncodeCommit keeps every field.
func TestParseCommitFixtures(t *testing.T) {
	files := fixtureLogFiles(t)
	var nActions, nCommitInfoExtra int
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		acts, err := ParseCommit(data)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		nActions += len(acts)
		for _, a := range acts {
			if a.Unknown != "" || a.count() != 1 {
				t.Errorf("%s: action %+v", p, a)
			}
			if a.CommitInfo != nil && len(a.CommitInfo.Extra) > 0 {
				nCommitInfoExtra++
			}
		}
		enc, err := EncodeCommit(acts)
		if err != nil {
			t.Errorf("%s: encode: %v", p, err)
			continue
		}
		acts2, err := ParseCommit(enc)
		if err != nil {
			t.Errorf("%s: parse encoded: %v", p, err)
			continue
		}
		enc2, err := EncodeCommit(acts2)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Errorf("%s: encoding not stable: %v\n%s\n%s", p, err, enc, enc2)
		}
		// Line by line, the encoded JSON holds the same information as the
		// original (modulo nulls and empty optional values).
		orig := nonBlankLines(data)
		got := nonBlankLines(enc)
		if len(orig) != len(got) {
			t.Errorf("%s: %d lines, encoded %d", p, len(orig), len(got))
			continue
		}
		for i := range orig {
			a, b := normJSON(t, orig[i]), normJSON(t, got[i])
			if !reflect.DeepEqual(a, b) {
				t.Errorf("%s line %d differs:\n orig %s\n  enc %s", p, i+1, orig[i], got[i])
			}
		}
	}
	if nActions < 2000 || nCommitInfoExtra == 0 {
		t.Errorf("parsed %d actions, %d commitInfo with extra fields", nActions, nCommitInfoExtra)
	}
	t.Logf("%d files, %d actions", len(files), nActions)
}

func nonBlankLines(b []byte) [][]byte {
	var out [][]byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(l)) > 0 {
			out = append(out, l)
		}
	}
	return out
}

// normJSON decodes a JSON line and drops nulls, empty strings, empty
// objects/arrays and false, which the encoder may omit or add.
func normJSON(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return prune(v)
}

func prune(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if e = prune(e); e == nil {
				delete(x, k)
			} else {
				x[k] = e
			}
		}
		if len(x) == 0 {
			return nil
		}
	case []any:
		if len(x) == 0 {
			return nil
		}
	case string:
		if x == "" {
			return nil
		}
	case bool:
		if !x {
			return nil
		}
	}
	return v
}

func TestParseCommitMalformed(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		line       int
	}{
		{"truncated", `{"add":{"path":"a","size":1}}` + "\n" + `{"remove":{"path":`, 2},
		{"not an object", "\n\n[1,2]\n", 3},
		{"bare string", `{"txn":{"appId":"a","version":1}}` + "\nhello\n", 2},
		{"null action", `{"add":null}`, 1},
		{"empty object", `{}`, 1},
		{"wrong type", `{"commitInfo":{}}` + "\n" + `{"add":{"path":"a","size":"big"}}`, 2},
		{"trailing garbage", `{"add":{"path":"a"}} x`, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCommit([]byte(tc.data))
			if !errors.Is(err, ErrCorruptLog) {
				t.Fatalf("err = %v, want ErrCorruptLog", err)
			}
			if want := "line " + itoa(int64(tc.line)) + ":"; !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v, want it to name %q", err, want)
			}
		})
	}
}

func TestParseCommitLenient(t *testing.T) {
	data := "\r\n" + `{"someFutureAction":{"x":1}}` + "\r\n\n" +
		`{"add":{"path":"p%20q","partitionValues":{"d":null},"size":3,"modificationTime":7,"dataChange":true,"newField":[1]}}` +
		"\n   \n" + `{"commitInfo":{"timestamp":5,"operation":"WRITE","engineInfo":"x","custom":{"a":[1,2]},"readVersion":"weird"}}`
	acts, err := ParseCommit([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(acts) != 3 || acts[0].Unknown != "someFutureAction" || acts[1].Add == nil || acts[2].CommitInfo == nil {
		t.Fatalf("actions = %+v", acts)
	}
	add := acts[1].Add
	if add.Path != "p%20q" || add.Size != 3 || add.PartitionValues["d"] != nil || len(add.PartitionValues) != 1 {
		t.Fatalf("add = %+v", add)
	}
	ci := acts[2].CommitInfo
	if *ci.Timestamp != 5 || ci.Operation != "WRITE" || string(ci.Extra["custom"]) != `{"a":[1,2]}` ||
		string(ci.Extra["readVersion"]) != `"weird"` || ci.ReadVersion != nil {
		t.Fatalf("commitInfo = %+v", ci)
	}
	// Unknown actions cannot be written back.
	if _, err := EncodeCommit(acts); err == nil {
		t.Fatal("EncodeCommit accepted an unknown action")
	}
	enc, err := EncodeCommit(acts[1:])
	if err != nil {
		t.Fatal(err)
	}
	want := `{"add":{"path":"p%20q","partitionValues":{"d":null},"size":3,"modificationTime":7,"dataChange":true}}` + "\n" +
		`{"commitInfo":{"custom":{"a":[1,2]},"engineInfo":"x","operation":"WRITE","readVersion":"weird","timestamp":5}}` + "\n"
	if string(enc) != want {
		t.Fatalf("encoded\n%s\nwant\n%s", enc, want)
	}
}

func TestEncodeCommit(t *testing.T) {
	ict := int64(1700000000123)
	acts := []Action{
		{CommitInfo: &CommitInfo{InCommitTimestamp: &ict, Operation: "WRITE", Extra: map[string]json.RawMessage{
			"operation": json.RawMessage(`"IGNORED"`), "clientVersion": json.RawMessage(`"kappa/1"`),
		}}},
		{Protocol: &Protocol{MinReaderVersion: 1, MinWriterVersion: 7, WriterFeatures: []string{"inCommitTimestamp"}}},
		{MetaData: &Metadata{ID: "id", SchemaString: `{"type":"struct","fields":[]}`}},
		{Add: &Add{Path: "a&b<c>.parquet", Size: 1, DataChange: true}},
		{Txn: &Txn{AppID: "app", Version: 3}},
	}
	enc, err := EncodeCommit(acts)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"commitInfo":{"inCommitTimestamp":1700000000123,"clientVersion":"kappa/1","operation":"WRITE"}}
{"protocol":{"minReaderVersion":1,"minWriterVersion":7,"writerFeatures":["inCommitTimestamp"]}}
{"metaData":{"id":"id","format":{"provider":"parquet","options":{}},"schemaString":"{\"type\":\"struct\",\"fields\":[]}","partitionColumns":[],"configuration":{}}}
{"add":{"path":"a&b<c>.parquet","partitionValues":{},"size":1,"modificationTime":0,"dataChange":true}}
{"txn":{"appId":"app","version":3}}
`
	if string(enc) != want {
		t.Fatalf("encoded\n%s\nwant\n%s", enc, want)
	}
	if _, err := EncodeCommit([]Action{{}}); err == nil {
		t.Fatal("empty action encoded")
	}
	if _, err := EncodeCommit([]Action{{Add: &Add{}, Remove: &Remove{}}}); err == nil {
		t.Fatal("double action encoded")
	}
}

func TestParseStats(t *testing.T) {
	st, err := ParseStats(`{"numRecords":3,"minValues":{"a":1,"s":{"x":"b"}},"maxValues":{"a":9},"nullCount":{"a":0},"tightBounds":true}`)
	if err != nil {
		t.Fatal(err)
	}
	if *st.NumRecords != 3 || string(st.MinValues["s"]) != `{"x":"b"}` || string(st.NullCount["a"]) != "0" || !*st.TightBounds {
		t.Fatalf("stats = %+v", st)
	}
	if st, err := ParseStats(""); st != nil || err != nil {
		t.Fatalf("empty stats = %v, %v", st, err)
	}
	if _, err := ParseStats(`{"numRecords":`); !errors.Is(err, ErrCorruptLog) {
		t.Fatalf("err = %v", err)
	}
	n := int64(42)
	a := &Add{Path: "x", Stats: `{"numRecords":1}`, StatsParsed: &Stats{NumRecords: &n}}
	if st, err := a.ParsedStats(); err != nil || *st.NumRecords != 42 {
		t.Fatalf("ParsedStats prefers StatsParsed: %v %v", st, err)
	}
	a.StatsParsed = nil
	if st, err := a.ParsedStats(); err != nil || *st.NumRecords != 1 {
		t.Fatalf("ParsedStats = %v %v", st, err)
	}
	a.Stats = "{bad"
	if _, err := a.ParsedStats(); !errors.Is(err, ErrCorruptLog) || !strings.Contains(err.Error(), "add x") {
		t.Fatalf("err = %v", err)
	}
}
