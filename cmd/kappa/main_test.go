package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kappa-lake/kappa/internal/testutil"
	"github.com/kappa-lake/kappa/internal/version"
	"github.com/kappa-lake/kappa/table"
)

type result struct {
	code           int
	stdout, stderr string
}

// kappa runs the CLI in-process with the given arguments and stdin.
func kappa(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(t.Context(), args, strings.NewReader(stdin), &out, &errb)
	return result{code, out.String(), errb.String()}
}

// mustKappa runs the CLI and fails the test unless it exits 0.
func mustKappa(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	r := kappa(t, stdin, args...)
	if r.code != exitOK {
		t.Fatalf("kappa %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

func decodeJSON[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
	return v
}

func TestSnapshotFixtureJSON(t *testing.T) {
	dir := testutil.Testdata(t, "delta-rs", "simple_table")
	// Flags after the positional argument, both spellings.
	for _, args := range [][]string{
		{"snapshot", dir, "--version", "2", "--format", "json"},
		{"snapshot", "--version=2", "--format=json", dir},
	} {
		got := decodeJSON[map[string]any](t, mustKappa(t, "", args...))
		if got["version"] != 2.0 || got["numFiles"] != 6.0 || got["sizeBytes"] != 2407.0 {
			t.Errorf("%v: version/numFiles/sizeBytes = %v/%v/%v, want 2/6/2407", args, got["version"], got["numFiles"], got["sizeBytes"])
		}
		if v, ok := got["numRecords"]; !ok || v != nil {
			t.Errorf("numRecords = %v (present %v), want null: the fixture's files have no stats", v, ok)
		}
		if _, err := time.Parse(time.RFC3339, got["timestamp"].(string)); err != nil {
			t.Errorf("timestamp %v: %v", got["timestamp"], err)
		}
		schema := got["schema"].(map[string]any)
		fields := schema["fields"].([]any)
		if schema["type"] != "struct" || len(fields) != 1 || fields[0].(map[string]any)["type"] != "long" {
			t.Errorf("schema = %v", schema)
		}
		proto := got["protocol"].(map[string]any)
		if proto["minReaderVersion"] != 1.0 || proto["minWriterVersion"] != 2.0 {
			t.Errorf("protocol = %v", proto)
		}
		for _, k := range []string{"partitionColumns", "properties", "txns"} {
			if got[k] == nil {
				t.Errorf("%s is null, want an empty collection", k)
			}
		}
	}
}

func TestFixtureFilesAndHistory(t *testing.T) {
	dir := testutil.Testdata(t, "delta-rs", "simple_table")
	files := decodeJSON[[]fileInfo](t, mustKappa(t, "", "files", dir, "--version", "2", "--format", "json"))
	if len(files) != 6 {
		t.Fatalf("%d files at version 2, want 6", len(files))
	}
	for i, f := range files {
		if i > 0 && files[i-1].Path >= f.Path {
			t.Errorf("files not ordered by path: %s then %s", files[i-1].Path, f.Path)
		}
		if f.Size <= 0 || f.NumRecords != nil || f.ModificationTime == "" {
			t.Errorf("file %+v", f)
		}
	}
	hist := decodeJSON[[]historyEntry](t, mustKappa(t, "", "history", dir, "--format", "json", "--limit", "2"))
	if len(hist) != 2 || hist[0].Version != 4 || hist[1].Version != 3 {
		t.Fatalf("history --limit 2 = %+v, want versions 4, 3", hist)
	}
	if hist[0].Operation != "DELETE" || hist[1].Operation != "UPDATE" {
		t.Errorf("operations %q, %q, want DELETE, UPDATE", hist[0].Operation, hist[1].Operation)
	}
	text := mustKappa(t, "", "history", dir)
	if lines := strings.Split(strings.TrimSpace(text), "\n"); len(lines) != 6 || !strings.HasPrefix(lines[0], "VERSION") {
		t.Errorf("history text:\n%s", text)
	}
}

func TestUnsupportedFeatureRefused(t *testing.T) {
	dir := testutil.Testdata(t, "delta-rs", "simple_table_features")
	r := kappa(t, "", "snapshot", dir)
	if r.code != exitError || !strings.Contains(r.stderr, "blahabl") {
		t.Fatalf("exit %d, stderr %q: want exit 1 naming the feature blahabl", r.code, r.stderr)
	}
}

// TestTableLifecycle drives a local table through every command.
func TestTableLifecycle(t *testing.T) {
	url := filepath.Join(t.TempDir(), "events")
	out := mustKappa(t, "", "create", url,
		"--schema", "id long NOT NULL, ts timestamp, device string, temp double, amount decimal(10,2), tags array<string>",
		"--partition-by", "device", "--property", "delta.checkpointInterval=100", "--name", "events")
	if !strings.Contains(out, "at version 0") {
		t.Errorf("create output %q", out)
	}
	if r := kappa(t, "", "create", url, "--schema", "id long"); r.code != exitError || !strings.Contains(r.stderr, "exists") {
		t.Errorf("second create: exit %d, stderr %q", r.code, r.stderr)
	}

	batch1 := `{"id": 1, "ts": "2024-05-01T10:00:00Z", "device": "a", "temp": 20.5, "amount": 12.34, "tags": ["x"]}
{"id": 2, "ts": "2024-05-01T10:00:01Z", "device": "b", "temp": 21, "amount": "0.10", "tags": []}

{"id": 3, "ts": "2024-05-01T10:00:02Z", "device": "a", "temp": null}
`
	if out := mustKappa(t, batch1, "append", url, "-"); !strings.Contains(out, "appended 3 rows") || !strings.Contains(out, "version 1") {
		t.Errorf("append output %q", out)
	}
	file := filepath.Join(t.TempDir(), "batch2.jsonl")
	if err := os.WriteFile(file, []byte(`{"id": 4, "ts": "2024-05-01T11:00:00Z", "device": "c", "temp": 19.0}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustKappa(t, "", "append", "--format", "jsonl", url, file)

	// A row that does not fit fails the whole append; nothing is committed.
	r := kappa(t, `{"id": 5, "device": "a"}`+"\n"+`{"id": "not a number"}`+"\n", "append", url, "-")
	if r.code != exitError || !strings.Contains(r.stderr, "id") {
		t.Errorf("bad append: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := kappa(t, "{not json\n", "append", url, "-"); r.code != exitError || !strings.Contains(r.stderr, "line 1") {
		t.Errorf("malformed JSON: exit %d, stderr %q", r.code, r.stderr)
	}

	snap := decodeJSON[snapshotInfo](t, mustKappa(t, "", "snapshot", url, "--format", "json"))
	if snap.Version != 2 || snap.NumRecords == nil || *snap.NumRecords != 4 || snap.NumFiles != 3 {
		t.Errorf("latest snapshot: version %d, records %v, files %d; want 2, 4, 3", snap.Version, snap.NumRecords, snap.NumFiles)
	}
	if len(snap.PartitionColumns) != 1 || snap.PartitionColumns[0] != "device" || snap.Properties["delta.checkpointInterval"] != "100" {
		t.Errorf("partitionColumns %v, properties %v", snap.PartitionColumns, snap.Properties)
	}
	if snap.Name == nil || *snap.Name != "events" {
		t.Errorf("name %v", snap.Name)
	}

	hist := decodeJSON[[]historyEntry](t, mustKappa(t, "", "history", url, "--format", "json"))
	if len(hist) != 3 {
		t.Fatalf("history has %d entries, want 3", len(hist))
	}
	for i, h := range hist {
		if h.Version != int64(2-i) {
			t.Errorf("history[%d].version = %d", i, h.Version)
		}
		if h.IsBlindAppend == nil {
			t.Errorf("history[%d].isBlindAppend missing", i)
		}
	}
	if hist[0].Operation != "WRITE" || hist[2].Operation != "CREATE TABLE" || !*hist[0].IsBlindAppend {
		t.Errorf("history operations: %+v", hist)
	}
	if string(hist[0].OperationParameters["mode"]) != `"Append"` {
		t.Errorf("append parameters %v", hist[0].OperationParameters)
	}

	// Time travel: by version, and by times taken from the history.
	t1, err := time.Parse(time.RFC3339, hist[1].Timestamp)
	if err != nil {
		t.Fatal(err)
	}
	at := func(args ...string) snapshotInfo {
		return decodeJSON[snapshotInfo](t, mustKappa(t, "", append([]string{"snapshot", url, "--format", "json"}, args...)...))
	}
	if s := at("--version", "1"); s.Version != 1 || *s.NumRecords != 3 {
		t.Errorf("--version 1: version %d, records %d", s.Version, *s.NumRecords)
	}
	if s := at("--as-of", hist[1].Timestamp); s.Version != 1 {
		t.Errorf("--as-of the commit time of version 1 gave version %d", s.Version)
	}
	if s := at("--as-of", t1.Add(-time.Millisecond).Format(time.RFC3339Nano)); s.Version != 0 {
		t.Errorf("--as-of just before version 1 gave version %d", s.Version)
	}
	if s := at("--as-of", time.Now().Add(24*time.Hour).UTC().Format("2006-01-02 15:04:05")); s.Version != 2 {
		t.Errorf("--as-of tomorrow gave version %d, want the latest (2)", s.Version)
	}
	if r := kappa(t, "", "snapshot", url, "--as-of", "2001-01-01"); r.code != exitError || !strings.Contains(r.stderr, "available") {
		t.Errorf("--as-of before the table: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := kappa(t, "", "files", url, "--version", "7"); r.code != exitError || !strings.Contains(r.stderr, "0..2") {
		t.Errorf("--version 7: exit %d, stderr %q", r.code, r.stderr)
	}

	files := decodeJSON[[]fileInfo](t, mustKappa(t, "", "files", url, "--format", "json"))
	var records int64
	devices := map[string]bool{}
	for _, f := range files {
		records += *f.NumRecords
		devices[*f.PartitionValues["device"]] = true
		if !strings.HasPrefix(f.Path, "device="+*f.PartitionValues["device"]+"/") {
			t.Errorf("file %s not in its partition directory", f.Path)
		}
	}
	if records != 4 || len(devices) != 3 {
		t.Errorf("files: %d records in devices %v", records, devices)
	}
	if text := mustKappa(t, "", "files", url); !strings.Contains(text, "device=a") || !strings.Contains(text, "3 files") {
		t.Errorf("files text:\n%s", text)
	}
	if text := mustKappa(t, "", "snapshot", url); !strings.Contains(text, "Records:         4") ||
		!strings.Contains(text, "|-- amount: decimal(10,2) (nullable = true)") ||
		!strings.Contains(text, "|-- id: long (nullable = false)") {
		t.Errorf("snapshot text:\n%s", text)
	}

	if out := mustKappa(t, "", "checkpoint", url); !strings.Contains(out, "version 2") {
		t.Errorf("checkpoint output %q", out)
	}
	if _, err := os.Stat(filepath.Join(url, "_delta_log", "00000000000000000002.checkpoint.parquet")); err != nil {
		t.Errorf("checkpoint file: %v", err)
	}
	// The table still loads (now from the checkpoint) with the same content.
	if s := at(); s.Version != 2 || *s.NumRecords != 4 {
		t.Errorf("after checkpoint: version %d, records %d", s.Version, *s.NumRecords)
	}

	// Vacuum: an orphan file older than the retention is found by a dry run and
	// kept; nothing referenced is ever listed.
	orphan := filepath.Join(url, "device=a", "orphan.parquet")
	if err := os.WriteFile(orphan, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-30 * 24 * time.Hour)
	if err := os.Chtimes(orphan, old, old); err != nil {
		t.Fatal(err)
	}
	type vacuumOut struct {
		DryRun bool     `json:"dryRun"`
		Files  []string `json:"files"`
	}
	v := decodeJSON[vacuumOut](t, mustKappa(t, "", "vacuum", url, "--dry-run", "--format", "json"))
	if !v.DryRun || len(v.Files) != 1 || v.Files[0] != "device=a/orphan.parquet" {
		t.Errorf("vacuum --dry-run = %+v", v)
	}
	if _, err := os.Stat(orphan); err != nil {
		t.Errorf("dry run deleted the orphan: %v", err)
	}
	if out := mustKappa(t, "", "vacuum", url, "--retention", "7d"); !strings.Contains(out, "deleted 1 files") {
		t.Errorf("vacuum output %q", out)
	}
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Errorf("orphan still present after vacuum: %v", err)
	}
	if s := at(); *s.NumRecords != 4 || s.NumFiles != 3 {
		t.Errorf("after vacuum: %d records in %d files", *s.NumRecords, s.NumFiles)
	}
}

func TestCreateRejectsBadSchema(t *testing.T) {
	url := filepath.Join(t.TempDir(), "t")
	r := kappa(t, "", "create", url, "--schema", "id long, ts tmestamp")
	if r.code != exitUsage || !strings.Contains(r.stderr, `at position 13: unknown type "tmestamp"`) {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Stat(url); !os.IsNotExist(err) {
		t.Errorf("a failed create left %s behind", url)
	}
	// A Delta schema JSON object works too.
	mustKappa(t, "", "create", url, "--schema", `{"type":"struct","fields":[{"name":"x","type":"integer","nullable":true,"metadata":{}}]}`)
	s := decodeJSON[snapshotInfo](t, mustKappa(t, "", "snapshot", url, "--format", "json"))
	if !strings.Contains(string(s.Schema), `"integer"`) || s.NumRecords == nil || *s.NumRecords != 0 {
		t.Errorf("schema %s records %v", s.Schema, s.NumRecords)
	}
}

func TestUsageErrors(t *testing.T) {
	url := filepath.Join(t.TempDir(), "t")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "Usage:"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"snapshot"}, "missing arguments"},
		{[]string{"snapshot", url, "extra"}, `unexpected argument "extra"`},
		{[]string{"snapshot", url, "--version", "1", "--as-of", "2024-01-01"}, "mutually exclusive"},
		{[]string{"snapshot", url, "--as-of", "May 1st"}, "invalid time"},
		{[]string{"snapshot", url, "--version", "-1"}, "invalid version"},
		{[]string{"snapshot", url, "--format", "xml"}, "must be one of text, json"},
		{[]string{"files", url, "--bogus"}, "flag provided but not defined"},
		{[]string{"create", url}, "--schema is required"},
		{[]string{"create", url, "--schema", "a long", "--property", "novalue"}, "want KEY=VALUE"},
		{[]string{"history", url, "--limit", "-3"}, "must not be negative"},
		{[]string{"vacuum", url, "--retention", "soon"}, "invalid duration"},
		{[]string{"demo", "--rate", "1"}, "--rate must be between"},
	} {
		r := kappa(t, "", tc.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("kappa %v: exit %d, stderr %q; want exit 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	// A missing table is an error, not a usage error.
	if r := kappa(t, "", "snapshot", url); r.code != exitError || !strings.Contains(r.stderr, "not found") {
		t.Errorf("missing table: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestHelp(t *testing.T) {
	top := mustKappa(t, "", "--help")
	for _, c := range commands() {
		if !strings.Contains(top, "\n  "+c.name+" ") {
			t.Errorf("--help does not list %s", c.name)
		}
		if c.fs == nil {
			continue
		}
		out := mustKappa(t, "", c.name, "--help")
		if !strings.HasPrefix(out, "Usage: kappa "+c.name) {
			t.Errorf("%s --help:\n%s", c.name, out)
		}
		c.fs.VisitAll(func(f *flag.Flag) {
			if !strings.Contains(out, "--"+f.Name) {
				t.Errorf("%s --help does not document --%s", c.name, f.Name)
			}
		})
	}
	if out := mustKappa(t, "", "help", "files"); !strings.HasPrefix(out, "Usage: kappa files") {
		t.Errorf("help files: %q", out)
	}
}

func TestCredentialsRedacted(t *testing.T) {
	r := kappa(t, "", "snapshot", "mem://t?secret=hunter2")
	if r.code != exitError || strings.Contains(r.stderr, "hunter2") {
		t.Errorf("exit %d, stderr %q: want exit 1 without the secret", r.code, r.stderr)
	}
}

func TestVersion(t *testing.T) {
	if out := mustKappa(t, "", "version"); !strings.HasPrefix(out, "kappa "+version.Version+" ") {
		t.Errorf("version output %q", out)
	}
	// The engine writes the same version into commitInfo.engineInfo.
	if table.EngineVersion != version.Version {
		t.Errorf("table.EngineVersion %q != internal/version.Version %q", table.EngineVersion, version.Version)
	}
}

func TestParseTime(t *testing.T) {
	for in, want := range map[string]time.Time{
		"2024-05-01":                    time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC),
		"2024-05-01 13:14:15":           time.Date(2024, 5, 1, 13, 14, 15, 0, time.UTC),
		"2024-05-01T13:14:15Z":          time.Date(2024, 5, 1, 13, 14, 15, 0, time.UTC),
		"2024-05-01T13:14:15.25+02:00":  time.Date(2024, 5, 1, 11, 14, 15, 250e6, time.UTC),
		" 2024-05-01T13:14:15.001Z ":    time.Date(2024, 5, 1, 13, 14, 15, 1e6, time.UTC),
		"2024-05-01T13:14:15":           time.Date(2024, 5, 1, 13, 14, 15, 0, time.UTC),
		"2024-05-01 13:14":              time.Date(2024, 5, 1, 13, 14, 0, 0, time.UTC),
		"2024-12-31T23:59:59.999999Z":   time.Date(2024, 12, 31, 23, 59, 59, 999999e3, time.UTC),
		"2024-05-01T00:00:00.000-00:30": time.Date(2024, 5, 1, 0, 30, 0, 0, time.UTC),
	} {
		got, err := parseTime(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "yesterday", "2024-13-01", "2024-05-01 25:00:00", "1714567890"} {
		if _, err := parseTime(bad); err == nil {
			t.Errorf("parseTime(%q) succeeded", bad)
		}
	}
}

func TestParseInterspersed(t *testing.T) {
	fs := newFlagSet("x")
	n := fs.Int("n", 0, "")
	b := fs.Bool("b", false, "")
	pos, err := parseInterspersed(fs, []string{"a", "--n", "3", "b", "-b", "--", "--n", "-"})
	if err != nil || *n != 3 || !*b || strings.Join(pos, " ") != "a b --n -" {
		t.Errorf("pos %q, n %d, b %v, err %v", pos, *n, *b, err)
	}
}

func TestReadJSONLines(t *testing.T) {
	rows, err := readJSONLines(strings.NewReader("{\"a\": 12345678901234567890}\n\n  {\"a\": 1.5}  \n"))
	if err != nil || len(rows) != 2 {
		t.Fatalf("rows %v, err %v", rows, err)
	}
	if n, ok := rows[0]["a"].(json.Number); !ok || n.String() != "12345678901234567890" {
		t.Errorf("big integer decoded as %T %v", rows[0]["a"], rows[0]["a"])
	}
	for in, want := range map[string]string{
		"{}\n[1]\n":     "line 2: want a JSON object",
		"{} {}\n":       "line 1: more than one JSON value",
		"{\"a\": }\n":   "line 1",
		"{\"a\": 1}\n{": "line 2",
	} {
		if _, err := readJSONLines(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("readJSONLines(%q) = %v, want %q", in, err, want)
		}
	}
}

// TestS3Table runs the commands against a table on a real S3 server (versitygw
// on loopback), addressed by an s3:// URL with endpoint parameters.
func TestS3Table(t *testing.T) {
	s3 := testutil.StartS3(t)
	url := testutil.S3URL(testutil.S3Addr(t, s3), "cli/events")
	mustKappa(t, "", "create", url, "--schema", "id long, site string", "--partition-by", "site")
	mustKappa(t, `{"id": 1, "site": "oslo"}`+"\n"+`{"id": 2, "site": "turin"}`+"\n", "append", url, "-")
	mustKappa(t, `{"id": 3, "site": "oslo"}`+"\n", "append", url, "-")
	s := decodeJSON[snapshotInfo](t, mustKappa(t, "", "snapshot", url, "--format", "json"))
	if s.Version != 2 || s.NumFiles != 3 || s.NumRecords == nil || *s.NumRecords != 3 {
		t.Errorf("S3 snapshot: version %d, files %d, records %v", s.Version, s.NumFiles, s.NumRecords)
	}
	if s := decodeJSON[snapshotInfo](t, mustKappa(t, "", "snapshot", url, "--version", "1", "--format", "json")); *s.NumRecords != 2 {
		t.Errorf("S3 snapshot at version 1: %d records", *s.NumRecords)
	}
	mustKappa(t, "", "checkpoint", url)
	if hist := decodeJSON[[]historyEntry](t, mustKappa(t, "", "history", url, "--format", "json")); len(hist) != 3 {
		t.Errorf("S3 history: %d entries", len(hist))
	}
}
