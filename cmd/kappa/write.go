package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/kappa-lake/kappa/internal/version"
	"github.com/kappa-lake/kappa/table"
	"github.com/kappa-lake/kappa/txlog"
)

func createCommand() *command {
	c := &command{
		name:    "create",
		args:    "URL --schema SCHEMA [--partition-by COL,...] [--property KEY=VALUE]...",
		summary: "Create an empty Delta table.",
		help: `Creates a new Delta table at URL (version 0) with the given schema. It fails
if a table already exists there.

SCHEMA is a column list, e.g.
  'id long NOT NULL, ts timestamp, device string, temp double,
   amount decimal(10,2), tags array<string>, attrs map<string,string>,
   loc struct<lat:double,lon:double>'
with the types string, long, integer, short, byte, float, double, boolean,
binary, date, timestamp, timestamp_ntz, decimal(p,s), array<T>, map<K,V> and
struct<name: T, ...> (SQL aliases bigint, int, smallint, tinyint, bool also
work); columns are nullable unless NOT NULL follows the type. A Delta schema
JSON object ({"type":"struct","fields":[...]}) is accepted too.

New tables record in-commit timestamps (so --as-of survives copying the
table) unless --no-in-commit-timestamps is given.`,
		minArgs: 1, maxArgs: 1,
		fs: newFlagSet("create"),
	}
	schema := c.fs.String("schema", "", "table `SCHEMA` (required; see above)")
	partitionBy := c.fs.String("partition-by", "", "comma-separated partition `COLUMNS` (top-level primitive columns)")
	var props listValue
	c.fs.Var(&props, "property", "table property `KEY=VALUE`, e.g. delta.checkpointInterval=10 (repeatable)")
	name := c.fs.String("name", "", "table `NAME` recorded in the metadata")
	desc := c.fs.String("description", "", "table `DESCRIPTION` recorded in the metadata")
	noICT := c.fs.Bool("no-in-commit-timestamps", false, "do not record in-commit timestamps (commit times are then file modification times)")
	c.validate = func() error {
		if strings.TrimSpace(*schema) == "" {
			return usagef("--schema is required")
		}
		for _, p := range props {
			if k, _, ok := strings.Cut(p, "="); !ok || strings.TrimSpace(k) == "" {
				return usagef("invalid --property %q: want KEY=VALUE", p)
			}
		}
		return nil
	}
	c.run = func(ctx context.Context, e *env, args []string) error {
		st, err := parseSchemaArg(*schema)
		if err != nil {
			return usagef("--schema: %v", err)
		}
		var opts []table.CreateOption
		if cols := splitList(*partitionBy); len(cols) > 0 {
			opts = append(opts, table.WithPartitionColumns(cols...))
		}
		if len(props) > 0 {
			m := make(map[string]string, len(props))
			for _, p := range props {
				k, v, _ := strings.Cut(p, "=")
				m[strings.TrimSpace(k)] = v
			}
			opts = append(opts, table.WithProperties(m))
		}
		if *name != "" {
			opts = append(opts, table.WithName(*name))
		}
		if *desc != "" {
			opts = append(opts, table.WithDescription(*desc))
		}
		if *noICT {
			opts = append(opts, table.WithoutInCommitTimestamps())
		}
		t, err := table.Create(ctx, args[0], st, opts...)
		if err != nil {
			return err
		}
		defer func() { _ = t.Close() }()
		fmt.Fprintf(e.stdout, "created table %s at version 0\n", t.URL())
		return nil
	}
	return c
}

// parseSchemaArg parses --schema: a DDL column list or a Delta schema JSON object.
func parseSchemaArg(s string) (*txlog.StructType, error) {
	if strings.HasPrefix(strings.TrimSpace(s), "{") {
		return txlog.ParseSchema(s)
	}
	return txlog.ParseDDL(s)
}

func appendCommand() *command {
	c := &command{
		name:    "append",
		args:    "URL FILE|- [--format jsonl]",
		summary: "Append rows from a JSON-lines file (or stdin) as one commit.",
		help: `Reads one JSON object per line from FILE (or standard input for -), writes
them as Parquet data files with statistics, and commits them as one blind
append. Values are coerced to the table schema (numbers to integer, decimal
and float columns; RFC 3339 strings or epoch numbers to timestamps; nested
objects and arrays to structs, arrays and maps). A row that does not fit the
schema fails the whole append, naming the row and column: nothing is
committed. The input is held in memory until it is written.`,
		minArgs: 2, maxArgs: 2,
		fs: newFlagSet("append"),
	}
	_ = formatFlag(c.fs, "jsonl")
	ignoreUnknown := c.fs.Bool("ignore-unknown-fields", false, "drop fields that are not table columns instead of failing")
	c.run = func(ctx context.Context, e *env, args []string) error {
		in := e.stdin
		if args[1] != "-" {
			f, err := os.Open(args[1])
			if err != nil {
				return err
			}
			defer func() { _ = f.Close() }()
			in = f
		}
		rows, err := readJSONLines(in)
		if err != nil {
			return fmt.Errorf("read %s: %w", inputName(args[1]), err)
		}
		t, err := table.Open(ctx, args[0])
		if err != nil {
			return err
		}
		defer func() { _ = t.Close() }()
		var opts []table.AppendOption
		if *ignoreUnknown {
			opts = append(opts, table.WithIgnoreUnknownFields())
		}
		v, err := t.Append(ctx, rows, opts...)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			fmt.Fprintf(e.stdout, "no rows in %s: nothing committed (table at version %d)\n", inputName(args[1]), v)
			return nil
		}
		fmt.Fprintf(e.stdout, "appended %d rows to %s at version %d\n", len(rows), t.URL(), v)
		return nil
	}
	return c
}

func inputName(arg string) string {
	if arg == "-" {
		return "standard input"
	}
	return arg
}

// maxLineBytes bounds one JSON line.
const maxLineBytes = 64 << 20

// readJSONLines decodes one JSON object per non-blank line; numbers stay
// json.Number so integers and decimals keep their exact digits.
func readJSONLines(r io.Reader) ([]map[string]any, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLineBytes)
	var rows []map[string]any
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		if b[0] != '{' {
			return nil, fmt.Errorf("line %d: want a JSON object", line)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var row map[string]any
		if err := dec.Decode(&row); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("line %d: more than one JSON value", line)
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("a line is longer than %d MiB", maxLineBytes>>20)
		}
		return nil, err
	}
	return rows, nil
}

func checkpointCommand() *command {
	c := &command{
		name:    "checkpoint",
		args:    "URL [--version N]",
		summary: "Write a checkpoint of the latest (or a given) version.",
		help: `Writes a classic Parquet checkpoint (_delta_log/<version>.checkpoint.parquet)
of the latest version, or of --version N, and updates _delta_log/_last_checkpoint,
so readers load the table from it instead of replaying every commit. Tables
also checkpoint automatically every delta.checkpointInterval commits.`,
		minArgs: 1, maxArgs: 1,
		fs: newFlagSet("checkpoint"),
	}
	var ver versionValue
	c.fs.Var(&ver, "version", "checkpoint table version `N` (default: the latest)")
	c.run = func(ctx context.Context, e *env, args []string) error {
		v := int64(-1)
		if ver.set {
			v = ver.v
		}
		t, err := table.Open(ctx, args[0])
		if err != nil {
			return err
		}
		defer func() { _ = t.Close() }()
		lc, err := t.Checkpoint(ctx, v)
		if err != nil {
			return err
		}
		adds := int64(0)
		if lc.NumOfAddFiles != nil {
			adds = *lc.NumOfAddFiles
		}
		fmt.Fprintf(e.stdout, "wrote checkpoint of version %d (%d files)\n", lc.Version, adds)
		return nil
	}
	return c
}

func vacuumCommand() *command {
	c := &command{
		name:    "vacuum",
		args:    "URL [--retention DURATION] [--dry-run] [--force] [--format text|json]",
		summary: "Delete data files the table no longer references.",
		help: `Deletes the files under the table root that the latest snapshot does not
reference and that are older than the retention period, like Spark's VACUUM:
without --dry-run the files ARE deleted. Versions older than the retention
can then no longer be read. _delta_log and hidden files (names starting with
_ or .) are never touched.

The retention defaults to the table's delta.deletedFileRetentionDuration
(7 days unless set); a shorter --retention needs --force, because it can
delete files that concurrent readers or writers of older versions still use.`,
		minArgs: 1, maxArgs: 1,
		fs: newFlagSet("vacuum"),
	}
	var retention durationValue
	c.fs.Var(&retention, "retention", "keep files younger than `DURATION` (e.g. 7d, 168h; default: the table's retention)")
	dryRun := c.fs.Bool("dry-run", false, "only list the files that would be deleted")
	force := c.fs.Bool("force", false, "allow a retention shorter than the table's delta.deletedFileRetentionDuration")
	format := formatFlag(c.fs, "text", "json")
	c.run = func(ctx context.Context, e *env, args []string) error {
		t, err := table.Open(ctx, args[0])
		if err != nil {
			return err
		}
		defer func() { _ = t.Close() }()
		res, err := t.Vacuum(ctx, table.VacuumOptions{Retention: retention.d, DryRun: *dryRun, Force: *force})
		if err != nil {
			return err
		}
		if format.value == "json" {
			return writeJSON(e.stdout, struct {
				DryRun    bool     `json:"dryRun"`
				Cutoff    string   `json:"cutoff"`
				Scanned   int      `json:"scanned"`
				Files     []string `json:"files"`
				Bytes     int64    `json:"bytes"`
				TempFiles []string `json:"tempFiles"`
			}{res.DryRun, formatTime(res.Cutoff), res.Scanned, nonNil(res.Files), res.Bytes, nonNil(res.TempFiles)})
		}
		for _, f := range res.Files {
			fmt.Fprintln(e.stdout, f)
		}
		verb := "deleted"
		if res.DryRun {
			verb = "would delete"
		}
		fmt.Fprintf(e.stdout, "%s %d files (%s) not referenced and older than %s; scanned %d objects\n",
			verb, len(res.Files), formatBytes(res.Bytes), formatTime(res.Cutoff), res.Scanned)
		if len(res.TempFiles) > 0 {
			fmt.Fprintf(e.stdout, "%s %d temporary files left by interrupted writes: %s\n",
				verb, len(res.TempFiles), strings.Join(res.TempFiles, ", "))
		}
		return nil
	}
	return c
}

func versionCommand() *command {
	c := &command{
		name:    "version",
		args:    "",
		summary: "Print the Kappa version.",
		fs:      newFlagSet("version"),
	}
	c.run = func(_ context.Context, e *env, _ []string) error {
		fmt.Fprintf(e.stdout, "kappa %s (%s %s/%s)\n", version.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	}
	return c
}

func ingestCommand() *command {
	return &command{
		name:    "ingest",
		args:    "URL --brokers HOST:PORT[,...] --topic T [flags]",
		summary: "Consume JSON messages from Kafka into a table, exactly once (a daemon).",
		rawRun: func(ctx context.Context, e *env, args []string) error {
			return runIngest(ctx, args, e.stderr)
		},
	}
}
