package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kappa-lake/kappa/reader"
)

// TestDemoTour runs the whole tour (broker, sensors, live ingest, queries,
// dead letters, view) twice in one directory and checks its facts against
// the tables it leaves.
func TestDemoTour(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo (a few seconds)")
	}
	dir := t.TempDir()
	const rate, secs = 100, 3
	const total = rate * secs     // live-ingest messages
	const malformed, late = 4, 20 // see newDemoSensors
	const more = rate * 2         // readings produced before the --until-end run

	for round := range 2 { // the second run starts from fresh tables again
		var out, errb bytes.Buffer
		start := time.Now()
		code := run(t.Context(), []string{"demo", "--dir", dir, "--duration", fmt.Sprintf("%ds", secs), "--rate", fmt.Sprint(rate)},
			strings.NewReader(""), &out, &errb)
		if code != exitOK {
			t.Fatalf("round %d: demo exit %d\nstdout:\n%s\nstderr:\n%s", round, code, out.String(), errb.String())
		}
		t.Logf("round %d: demo took %s", round, time.Since(start).Round(time.Millisecond))
		o := out.String()
		if errb.Len() > 0 { // warnings only (a retried broker error, say)
			t.Logf("round %d: stderr:\n%s", round, errb.String())
		}

		// The live ingest committed every good message; the shutdown
		// flushed the rest.
		wantSummary := fmt.Sprintf("Ingested %d messages: %d rows in ", total, total-malformed)
		if !strings.Contains(o, wantSummary) || !strings.Contains(o, fmt.Sprintf("%d dead letters in the dead-letter table", malformed)) {
			t.Errorf("round %d: no ingest summary %q / %d dead letters:\n%s", round, wantSummary, malformed, o)
		}
		for _, want := range []string{
			"$ kappa ingest " + filepath.Join(dir, "iot") + " --brokers 127.0.0.1:",
			"--create --schema '" + demoSchema + "' --derive 'date=date(ts)' --partition-by date --flush-interval 1s",
			"stopping the daemon as Ctrl-C would",
			"$ kappa history ", "STREAMING UPDATE",
			"$ kappa snapshot " + filepath.Join(dir, "iot") + " --version 1\n",
			"kappa-iot-readings-0 -> ", "kappa-iot-readings-2 -> ",
			"(4 rows, version 1)", // VERSION AS OF 1
			"incremental refresh: source versions ",
			"$ kappa view show ",
		} {
			if !strings.Contains(o, want) {
				t.Errorf("round %d: output lacks %q", round, want)
			}
		}
		// Every commit lands in the output as it happens.
		if n := len(regexp.MustCompile(`(?m)^ +\+ *[0-9.]+s +iot +version \d+ +\d+ rows? in \d+ files?`).FindAllString(o, -1)); n < 2 {
			t.Errorf("round %d: %d live commits printed, want at least 2:\n%s", round, n, o)
		}
		if !strings.Contains(o, "<- shutdown flush") {
			t.Logf("round %d: the shutdown had nothing left to flush", round)
		}

		// The GROUP BY shows the four sites, at the latest version.
		_, sql, _ := strings.Cut(o, "== 6. SQL ==")
		sql, _, _ = strings.Cut(sql, "== 7.")
		for _, site := range demoSites {
			if !regexp.MustCompile(`(?m)^` + site.name + ` +\d+ +[0-9.]+ +\d+$`).MatchString(sql) {
				t.Errorf("round %d: GROUP BY lacks a row for %s:\n%s", round, site.name, sql)
			}
		}
		// TIMESTAMP AS OF reads the version the text announces.
		m := regexp.MustCompile(`a reader saw version (\d+):\n\n\$ kappa query .*TIMESTAMP AS OF '([^']+)'.*\n(?s:.*?)\(4 rows, version (\d+)\)`).FindStringSubmatch(o)
		if m == nil || m[1] != m[3] {
			t.Errorf("round %d: TIMESTAMP AS OF step: %q", round, m)
		}

		// The tables agree.
		iot := filepath.Join(dir, "iot")
		res, err := reader.Query(t.Context(), "SELECT count(*), count(DISTINCT device) FROM delta.`"+iot+"`")
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Rows[0][0]; got != int64(total-malformed+more) {
			t.Errorf("round %d: table holds %v rows, want %d", round, got, total-malformed+more)
		}
		if got := res.Rows[0][1]; got != int64(len(demoSites)*demoDevicesPerSite) {
			t.Errorf("round %d: %v devices, want %d", round, got, len(demoSites)*demoDevicesPerSite)
		}
		// The late readings are in, each in the partition of its own date.
		res, err = reader.Query(t.Context(), "SELECT ts, date FROM delta.`"+iot+"`")
		if err != nil {
			t.Fatal(err)
		}
		lateRows := 0
		for _, r := range res.Rows {
			ts, date := r[0].(time.Time), r[1].(time.Time)
			if time.Since(ts) > 20*time.Hour {
				lateRows++
			}
			if !date.Equal(ts.UTC().Truncate(24 * time.Hour)) {
				t.Errorf("round %d: ts %v in partition date=%v", round, ts, date)
				break
			}
		}
		if lateRows != late {
			t.Errorf("round %d: %d late readings, want %d", round, lateRows, late)
		}
		res, err = reader.Query(t.Context(), "SELECT error FROM delta.`"+filepath.Join(dir, "iot_dlq")+"` ORDER BY offset")
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Rows) != malformed {
			t.Errorf("round %d: dead-letter table holds %d rows, want %d", round, len(res.Rows), malformed)
		}
		_, dlqOut, _ := strings.Cut(o, "== 8. Dead letters ==")
		for _, want := range []string{`cannot use string "hot" as double`, "not a JSON object", "missing value for a non-nullable column", "(4 rows, version "} {
			if !strings.Contains(dlqOut, want) {
				t.Errorf("round %d: dead-letter step lacks %q", round, want)
			}
		}
		res, err = reader.ShowView(t.Context(), filepath.Join(dir, "iot_by_site"), false, nil)
		if err != nil {
			t.Fatal(err)
		}
		var viewed int64
		for _, r := range res.Rows {
			viewed += r[1].(int64)
		}
		if len(res.Rows) != len(demoSites) || viewed != total-malformed+more {
			t.Errorf("round %d: view has %d groups counting %d readings, want %d and %d", round, len(res.Rows), viewed, len(demoSites), total-malformed+more)
		}
	}
}

func TestDemoUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(t.Context(), []string{"demo", "--help"}, nil, &out, &errb); code != exitOK ||
		!strings.Contains(out.String(), "--duration DURATION") || !strings.Contains(out.String(), "--rate") {
		t.Errorf("demo --help: exit %d\n%s", code, out.String())
	}
	for _, args := range [][]string{{"demo", "--rate", "1"}, {"demo", "--duration", "0s"}, {"demo", "extra"}} {
		errb.Reset()
		if code := run(t.Context(), args, nil, &out, &errb); code != exitUsage {
			t.Errorf("kappa %v: exit %d, want %d (%s)", args, code, exitUsage, errb.String())
		}
	}
	// The demo refuses to delete a directory that is not a Delta table, before
	// starting anything.
	other := t.TempDir()
	if err := os.MkdirAll(filepath.Join(other, "iot_dlq"), 0o755); err != nil {
		t.Fatal(err)
	}
	errb.Reset()
	if code := run(t.Context(), []string{"demo", "--dir", other}, nil, &out, &errb); code != exitError || !strings.Contains(errb.String(), "not a Delta table") {
		t.Errorf("demo over a non-table: exit %d, stderr %q", code, errb.String())
	}
}
