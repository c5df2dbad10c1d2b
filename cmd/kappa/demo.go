package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kappa-lake/kappa/table"
)

func demoCommand() *command {
	c := &command{
		name:    "demo",
		args:    "[--dir DIR] [--batches N] [--rows N] [--interval DURATION]",
		summary: "A guided tour: create a table, append batches, time-travel through them.",
		help: `Creates a fresh local table DIR/iot (deleting the one a previous demo left),
appends --batches batches of generated IoT readings (device, ts, temp, site)
as separate commits, then shows the history, the table at version 1, the
table as of a time between the first two commits, the live files, and a
checkpoint. Every step prints the kappa command it runs and that command's
real output, so you can re-run them yourself with bin/kappa.`,
		maxArgs: 0,
		fs:      newFlagSet("demo"),
	}
	dir := c.fs.String("dir", filepath.Join(".cache", "demo"), "working `DIR` for the demo table and its input files")
	batches := c.fs.Int("batches", 3, "number of append commits (at least 2)")
	rows := c.fs.Int("rows", 500, "readings per batch")
	interval := durationValue{d: time.Second}
	c.fs.Var(&interval, "interval", "pause between batches, so commit times are distinct to the eye (`DURATION`)")
	c.validate = func() error {
		if *batches < 2 {
			return usagef("--batches must be at least 2")
		}
		if *rows < 1 {
			return usagef("--rows must be at least 1")
		}
		return nil
	}
	c.run = func(ctx context.Context, e *env, _ []string) error {
		return runDemo(ctx, e, *dir, *batches, *rows, interval.d)
	}
	return c
}

// demoSites are the sites (and the table's partitions) of the generated readings.
var demoSites = []string{"berlin", "lisbon", "oslo", "turin"}

func runDemo(ctx context.Context, e *env, dir string, batches, rows int, interval time.Duration) error {
	url := filepath.Join(dir, "iot")
	if err := resetDemoTable(url); err != nil {
		return err
	}
	out := e.stdout
	step := func(title, text string, args ...string) error {
		fmt.Fprintf(out, "\n== %s ==\n%s\n\n$ kappa %s\n", title, strings.TrimSpace(text), shellJoin(args))
		if code := run(ctx, args, e.stdin, out, e.stderr); code != exitOK {
			return fmt.Errorf("step %q: kappa %s exited with code %d", title, args[0], code)
		}
		return nil
	}

	fmt.Fprintf(out, `Kappa demo: the table is the log.
Every append below is one atomic commit to %s/_delta_log; any version, or the
table as of any time, can be read back. The tour runs real kappa commands
(shown after $) against a fresh local Delta table.
`, url)
	if err := step("Create a table",
		"A Delta table partitioned by site. Its schema is given as a column list.",
		"create", url, "--schema", "device string NOT NULL, ts timestamp NOT NULL, temp double, site string",
		"--partition-by", "site", "--name", "iot_readings"); err != nil {
		return err
	}

	start := time.Now().UTC().Truncate(time.Second)
	for b := 1; b <= batches; b++ {
		if b > 1 && interval > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(interval):
			}
		}
		file := filepath.Join(dir, fmt.Sprintf("batch-%d.jsonl", b))
		if err := writeDemoBatch(file, b, rows, start.Add(time.Duration(b-1)*time.Minute)); err != nil {
			return err
		}
		if err := step(fmt.Sprintf("Append batch %d of %d", b, batches),
			fmt.Sprintf("%d readings from %d sites (a JSON object per line in %s) become Parquet files\n"+
				"with statistics, committed together as version %d.", rows, len(demoSites), file, b),
			"append", url, file); err != nil {
			return err
		}
	}

	if err := step("History",
		"Each commit records when it happened, what it did and whether it was a blind append.",
		"history", url); err != nil {
		return err
	}
	if err := step("Time travel by version",
		"The table exactly as it was after the first batch: one batch of files and records.",
		"snapshot", url, "--version", "1"); err != nil {
		return err
	}

	asOf, note, err := demoAsOf(ctx, url)
	if err != nil {
		return err
	}
	if err := step("Time travel by time", note, "snapshot", url, "--as-of", asOf); err != nil {
		return err
	}
	if err := step("Files of the latest version",
		"The live data files: one per site per batch, with record counts from their statistics.",
		"files", url); err != nil {
		return err
	}
	if err := step("Checkpoint",
		"A Parquet checkpoint lets readers load the table without replaying every commit\n"+
			"(tables also write one every delta.checkpointInterval commits).",
		"checkpoint", url); err != nil {
		return err
	}
	fmt.Fprintf(out, `
== Done ==
The table is in %s. It is a plain Delta table: Spark, delta-rs and DuckDB can
read it too. Explore it with bin/kappa (bin/kappa --help lists the commands),
e.g. bin/kappa snapshot %s --format json
`, url, shellJoin([]string{url}))
	return nil
}

// resetDemoTable removes the table a previous demo left, refusing to delete
// anything that does not look like a Delta table.
func resetDemoTable(path string) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(path, "_delta_log")); err != nil {
		return fmt.Errorf("%s exists and is not a Delta table: remove it or choose another --dir", path)
	}
	return os.RemoveAll(path)
}

// writeDemoBatch writes rows generated IoT readings as JSON lines. The data is
// deterministic for a batch number; timestamps spread over a minute from start.
func writeDemoBatch(path string, batch, rows int, start time.Time) (err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	return generateReadings(f, rand.New(rand.NewPCG(42, uint64(batch))), rows, start)
}

type reading struct {
	Device string  `json:"device"`
	TS     string  `json:"ts"`
	Temp   float64 `json:"temp"`
	Site   string  `json:"site"`
}

func generateReadings(w io.Writer, rng *rand.Rand, rows int, start time.Time) error {
	enc := json.NewEncoder(w)
	step := time.Minute / time.Duration(rows)
	for i := range rows {
		site := rng.IntN(len(demoSites))
		r := reading{
			Device: fmt.Sprintf("sensor-%s-%02d", demoSites[site][:3], rng.IntN(8)),
			TS:     start.Add(time.Duration(i) * step).Format(time.RFC3339Nano),
			Temp:   math.Round((12+4*float64(site)+rng.NormFloat64()*2.5)*10) / 10,
			Site:   demoSites[site],
		}
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

// demoAsOf picks a time between the commits of versions 1 and 2 and explains it.
func demoAsOf(ctx context.Context, url string) (string, string, error) {
	t, err := table.Open(ctx, url)
	if err != nil {
		return "", "", err
	}
	defer func() { _ = t.Close() }()
	hist, err := t.History(ctx, 0)
	if err != nil {
		return "", "", err
	}
	var t1, t2 time.Time
	for _, h := range hist {
		switch h.Version {
		case 1:
			t1 = h.Timestamp
		case 2:
			t2 = h.Timestamp
		}
	}
	if t1.IsZero() || t2.IsZero() {
		return "", "", fmt.Errorf("demo: versions 1 and 2 missing from the history")
	}
	// Commit times have millisecond precision, so any time in [t1, t2) at
	// millisecond precision selects version 1.
	mid := t1.Add(t2.Sub(t1) / 2).Truncate(time.Millisecond)
	note := fmt.Sprintf("Version 1 was committed at %s and version 2 at %s.\n"+
		"As of a time in between, a reader saw version 1.", formatTime(t1), formatTime(t2))
	return formatTime(mid), note, nil
}

// shellJoin quotes arguments for display as a shell command line.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.IndexFunc(a, needsQuote) < 0 {
			q[i] = a
			continue
		}
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// needsQuote reports a character a shell would interpret.
func needsQuote(r rune) bool {
	safe := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,@", r)
	return !safe
}
