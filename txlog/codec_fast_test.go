package txlog

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"
)

// checkFastAgrees checks, for every line of data, that the fast path either
// declines or decodes exactly what encoding/json decodes. It returns how
// many lines the fast path decoded.
func checkFastAgrees(t *testing.T, data []byte) int {
	t.Helper()
	n := 0
	for line := range bytes.SplitSeq(data, []byte{'\n'}) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		fast, ok := fastAction(line)
		if !ok {
			continue
		}
		n++
		slow, err := parseActionLineJSON(line)
		if err != nil {
			t.Fatalf("fast path accepted %q, encoding/json: %v", line, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("fast path and encoding/json disagree on %q:\nfast %#v\njson %#v", line, fast, slow)
		}
	}
	return n
}

// fastCases are lines the fast path must decode (want true) or decline.
var fastCases = []struct {
	line string
	fast bool
}{
	{`{"add":{"path":"a","partitionValues":{},"size":1,"modificationTime":2,"dataChange":true}}`, true},
	{`{"add":{"path":"p%20q/a b.parquet","partitionValues":{"x":null,"y":"1","":"e"},"size":0,"modificationTime":-5,"dataChange":false,"stats":"{\"numRecords\":3,\"minValues\":{\"s\":\"a\\\"b\"}}","tags":{"INSERTION_TIME":"1","k":""}}}`, true},
	{" \t{ \"add\" : { \"path\" : \"a\" , \"size\" : 7 } } \r", true},
	{`{"add":{"path":"a","deletionVector":{"storageType":"u","pathOrInlineDv":"ab^-aqEH.-t@S}K{vb[*k^","offset":4,"sizeInBytes":40,"cardinality":6,"maxRowIndex":9},"baseRowId":1,"defaultRowCommitVersion":2,"clusteringProvider":"liquid"}}`, true},
	{`{"add":{"path":"a","unknown":[1,-2.5e+3,{"x":[true,false,null]},"s\u00e9"],"other":{}}}`, true},
	{`{"remove":{"path":"a","deletionTimestamp":5,"dataChange":true,"extendedFileMetadata":false,"partitionValues":{"p":"v"},"size":3,"stats":"","tags":null,"deletionVector":null}}`, true},
	{`{"remove":{"path":"\u00e9\ud83d\ude00 \n\t\/\\"}}`, true},
	{`{"add":{"path":"caf` + "\xc3\xa9" + `"}}`, true},
	{`{"add":{"path":"bad ` + "\xff" + ` utf8"}}`, true},
	{`{"add":{"path":"lone \ud800 surrogate"}}`, true},
	{`{"add":{"path":null,"size":null,"dataChange":null,"baseRowId":null}}`, true},
	{`{"add":{}}`, true},
	// Declined: left to encoding/json.
	{`{"add":null}`, false},
	{`{"ADD":{"path":"a"}}`, false},
	{`{"add":{"PATH":"a"}}`, false},
	{`{"add":{"p\u0061th":"a"}}`, false},
	{`{"add":{"path":"a","path":"b"}}`, false},
	{`{"add":{"path":"a"},"remove":{"path":"b"}}`, false},
	{`{"add":{"size":1.0}}`, false},
	{`{"add":{"size":1e3}}`, false},
	{`{"add":{"size":01}}`, false},
	{`{"add":{"size":"1"}}`, false},
	{`{"add":{"size":9223372036854775807}}`, false},
	{`{"add":{"tags":{"a":null}}}`, false},
	{`{"add":{"deletionVector":{"offset":2147483648}}}`, false},
	{`{"add":{"dataChange":truex}}`, false},
	{`{"add":{"path":"a"}} x`, false},
	{`{"add":{"path":"a",}}`, false},
	{`{"add":{"x":[1,]}}`, false},
	{`{"add":{"x":"` + "\x01" + `"}}`, false},
	{`{"add":{"x":"\q"}}`, false},
	{`{"add":{"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}}`, false},
	{`{"commitInfo":{"timestamp":1}}`, false},
	{`{"txn":{"appId":"a","version":1}}`, false},
}

func TestFastActionCases(t *testing.T) {
	for _, c := range fastCases {
		_, ok := fastAction([]byte(strings.TrimSpace(c.line)))
		if ok != c.fast {
			t.Errorf("fastAction(%q): ok = %v, want %v", c.line, ok, c.fast)
		}
		checkFastAgrees(t, []byte(c.line))
		// ParseCommit's result must not depend on the path taken.
		got, err := ParseCommit([]byte(c.line))
		want, wantErr := parseActionLineJSON(bytes.TrimSpace([]byte(c.line)))
		if (err == nil) != (wantErr == nil) || (err == nil && !reflect.DeepEqual(got, []Action{want})) {
			t.Errorf("ParseCommit(%q) = %#v, %v; encoding/json: %#v, %v", c.line, got, err, want, wantErr)
		}
	}
}

// TestFastActionFixtures runs the differential check over every log JSON
// file of the fixtures and checks that the fast path takes most file
// actions (it must not silently decline everything).
func TestFastActionFixtures(t *testing.T) {
	var fast, fileActions int
	for _, p := range fixtureLogFiles(t) {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		fast += checkFastAgrees(t, data)
		acts, err := ParseCommit(data)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for _, a := range acts {
			if a.Add != nil || a.Remove != nil {
				fileActions++
			}
		}
	}
	if fileActions == 0 || fast < fileActions*9/10 {
		t.Fatalf("fast path decoded %d of %d add/remove actions", fast, fileActions)
	}
	t.Logf("fast path decoded %d of %d add/remove actions", fast, fileActions)
}

// FuzzFastActionDifferential checks that the fast path and encoding/json
// agree on every line the fast path accepts, and that ParseCommit (fast
// path first) returns exactly what the encoding/json path returns.
func FuzzFastActionDifferential(f *testing.F) {
	for _, c := range fastCases {
		f.Add([]byte(c.line))
	}
	for _, data := range fuzzSeeds(f, func(p, name string) bool {
		return inLog(p) && strings.HasSuffix(name, ".json")
	}) {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFastAgrees(t, data)
		got, err := ParseCommit(data)
		want, wantErr := parseCommitJSON(data)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("ParseCommit error %v, encoding/json path error %v", err, wantErr)
		}
		if err != nil {
			if err.Error() != wantErr.Error() {
				t.Fatalf("errors differ: %v vs %v", err, wantErr)
			}
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("ParseCommit disagrees with the encoding/json path:\n%#v\n%#v", got, want)
		}
	})
}

// parseCommitJSON is ParseCommit with the encoding/json path only.
func parseCommitJSON(data []byte) ([]Action, error) {
	return parseCommitLines(data, parseActionLineJSON)
}
