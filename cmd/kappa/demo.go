package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kappa-lake/kappa/ingest"
	"github.com/kappa-lake/kappa/table"
)

func demoCommand() *command {
	c := &command{
		name:    "demo",
		args:    "[--dir DIR] [--duration DURATION] [--rate N]",
		summary: "A guided tour: Kafka in, a Delta table out, time travel and views on top.",
		help: `Runs the whole main job in this process, with nothing installed:
  1. starts an in-process Kafka-protocol broker on 127.0.0.1 (a random port)
     with a topic of 3 partitions;
  2. simulated IoT sensors (device, site, ts, temperature, humidity, battery)
     produce --rate messages a second for --duration, among them 4 malformed
     messages and a burst of late readings from yesterday;
  3. the ingest daemon (the code of 'kappa ingest') consumes them into the
     table DIR/iot, partitioned by the date of ts, committing every second,
     while the tour prints each commit as it lands; then it is stopped like
     Ctrl-C would, flushing what it has read;
  4. history, snapshots, SQL queries at the latest version, at an earlier
     version and as of a time, the dead-letter table DIR/iot_dlq, and a batch
     view DIR/iot_by_site refreshed incrementally after more ingest (a
     'kappa ingest --until-end' run resuming from the offsets in the table).
Every step prints the kappa command line it runs and that command's real
output. Tables a previous demo left in DIR are deleted first. It takes a
few seconds more than --duration and stops by itself.`,
		maxArgs: 0,
		fs:      newFlagSet("demo"),
	}
	dir := c.fs.String("dir", filepath.Join(".cache", "demo"), "working `DIR` for the demo tables")
	duration := c.fs.Duration("duration", 5*time.Second, "the sensors produce for `DURATION` during live ingest (2s to 1m)")
	rate := c.fs.Int("rate", 120, "the sensors produce `N` messages a second (20 to 10000)")
	c.validate = func() error {
		// At least two commits (for time travel) and 4 malformed messages.
		if *duration < 2*time.Second || *duration > time.Minute {
			return usagef("--duration must be between 2s and 1m")
		}
		if *rate < 20 || *rate > 10000 {
			return usagef("--rate must be between 20 and 10000")
		}
		return nil
	}
	c.run = func(ctx context.Context, e *env, _ []string) error {
		return runDemo(ctx, e, demoConfig{dir: *dir, duration: *duration, rate: *rate})
	}
	return c
}

type demoConfig struct {
	dir      string
	duration time.Duration
	rate     int
}

// demoSchema is the table schema, as typed on a command line.
const demoSchema = "device string NOT NULL, site string NOT NULL, ts timestamp NOT NULL, " +
	"temperature double, humidity double, battery int"

// tour runs the demo's steps, printing to out.
type tour struct {
	ctx context.Context
	e   *env
	out io.Writer
	n   int // steps so far
}

// section prints a numbered heading and an explanation.
func (t *tour) section(title, text string) {
	t.n++
	fmt.Fprintf(t.out, "\n== %d. %s ==\n", t.n, title)
	if text = strings.TrimSpace(text); text != "" {
		fmt.Fprintln(t.out, text)
	}
}

// kappa prints a command line and runs it through the CLI's own code (run),
// so the output is what a user typing it sees.
func (t *tour) kappa(args ...string) error {
	fmt.Fprintf(t.out, "\n$ kappa %s\n", shellJoin(args))
	if code := run(t.ctx, args, t.e.stdin, t.out, t.e.stderr); code != exitOK {
		return fmt.Errorf("kappa %s exited with code %d", args[0], code)
	}
	return nil
}

func runDemo(ctx context.Context, e *env, cfg demoConfig) error {
	iot := filepath.Join(cfg.dir, "iot")
	dlq := ingest.SiblingDLQ(iot)
	view := filepath.Join(cfg.dir, "iot_by_site")
	for _, p := range []string{iot, dlq, view} {
		if err := resetDemoTable(p); err != nil {
			return err
		}
	}
	out := &lockedWriter{w: e.stdout}
	t := &tour{ctx: ctx, e: &env{stdin: e.stdin, stdout: out, stderr: e.stderr}, out: out}

	fmt.Fprint(out, `Kappa demo: a Kafka topic in, a Delta table out, time travel on top.
Everything runs inside this process: a Kafka-protocol broker, simulated
sensors, the ingest daemon, and the kappa commands shown after $ (their
output is exactly what you would see typing them).
`)

	// 1. Broker.
	broker, err := startDemoBroker()
	if err != nil {
		return err
	}
	defer broker.Close()
	brokers := broker.ListenAddrs()
	t.section("A Kafka broker", fmt.Sprintf(`
An in-process Kafka-protocol broker (franz-go's kfake) listens on
%s, with the topic %s in %d partitions.
In production this is your Kafka, Redpanda or MSK cluster; nothing else
changes.`, strings.Join(brokers, ","), demoTopic, demoPartitions))

	// 2. Sensors.
	total := int(cfg.duration.Seconds() * float64(cfg.rate))
	sensors := newDemoSensors(total)
	malformed, late := sensors.counts(total)
	sample := string(sensors.reading(sensors.devices[0], time.Now().UTC()))
	t.section("Sensors", fmt.Sprintf(`
%d sensors at %d sites will send %d JSON readings over %s (%d/s), keyed by
device id, like this one:
  %s
Mixed in: %d malformed messages (wrong type, not JSON, a missing device id,
cut off), and %d late readings from a gateway that was offline since
yesterday.`, len(sensors.devices), len(demoSites), total, cfg.duration, cfg.rate, sample, malformed, late))

	// 3. Live ingest.
	ingestArgs := []string{
		"ingest", iot, "--brokers", strings.Join(brokers, ","), "--topic", demoTopic,
		"--create", "--schema", demoSchema, "--derive", "date=date(ts)", "--partition-by", "date",
		"--flush-interval", "1s",
	}
	t.section("Live ingest", `
The ingest daemon consumes the topic into a Delta table; --create creates
it with the --schema columns plus a date derived from ts, which partitions
it. Every second it commits the rows read from all partitions in one
atomic commit, together with each partition's Kafka offset (a txn action):
the table itself knows what it holds, so a restart never duplicates or
loses a message. Messages that do not fit go to the dead-letter table
<table>_dlq. This is the command, here run in-process against the broker
above, while the tour prints each commit as it lands:`)
	fmt.Fprintf(out, "\n$ kappa %s\n\n", shellJoin(ingestArgs))
	res, err := liveIngest(ctx, t, cfg, iot, dlq, brokers, sensors, total)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, `
Ingested %d messages: %s in %d commits, %s in the dead-letter table.
Graceful shutdown (Ctrl-C or SIGTERM) flushed and committed what was read.
`, res.consumed, count(res.rows, "row"), res.commits, count(res.dead, "dead letter"))

	// 4. History and snapshots.
	t.section("History", "Each flush is one commit of the table's log, newest first:")
	if err := t.kappa("history", iot, "--limit", "4"); err != nil {
		return err
	}
	t.section("Snapshots", `
The latest snapshot: its files, records, and under "Application transactions"
the Kafka offset each partition is committed up to (where a restarted daemon
resumes).`)
	if err := t.kappa("snapshot", iot); err != nil {
		return err
	}
	fmt.Fprintln(out, "\nThe same table as of version 1, the first flush:")
	if err := t.kappa("snapshot", iot, "--version", "1"); err != nil {
		return err
	}

	// 5. SQL and time travel.
	bind := "iot=" + iot
	from := "FROM iot"
	bySite := func(travel string) string {
		return "SELECT site, count(*) AS readings, round(avg(temperature), 1) AS avg_temp, " +
			"min(battery) AS min_battery " + from + travel + " GROUP BY site ORDER BY site"
	}
	t.section("SQL", `
A GROUP BY over the latest version (--table names the table; FROM
delta.`+"`URL`"+` works too):`)
	if err := t.kappa("query", "--table", bind, bySite("")); err != nil {
		return err
	}
	fmt.Fprintln(out, "\nLate readings land in the partition of their own date, not of their arrival:")
	if err := t.kappa("query", "--table", bind, "SELECT date, count(*) AS readings, min(ts) AS first, max(ts) AS last "+
		from+" GROUP BY date ORDER BY date"); err != nil {
		return err
	}
	t.section("Time travel", "The same query at version 1: the table after its first flush.")
	if err := t.kappa("query", "--table", bind, bySite(" VERSION AS OF 1")); err != nil {
		return err
	}
	asOf, v, between, err := demoAsOf(ctx, iot, res.lastVersion)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\n%s\nAs of a time in between, a reader saw version %d:\n", between, v)
	if err := t.kappa("query", "--table", bind, bySite(" TIMESTAMP AS OF '"+asOf+"'")); err != nil {
		return err
	}

	// 6. Dead letters.
	t.section("Dead letters", `
The malformed messages did not stop the daemon: each is in the dead-letter
table with its partition, offset, raw value and the reason.`)
	if err := t.kappa("query", "SELECT partition, offset, CAST(value AS STRING) AS message, error FROM delta.`"+
		dlq+"` ORDER BY partition, offset"); err != nil {
		return err
	}

	// 7. Batch view.
	viewSQL := "SELECT site, count(*) AS readings, round(avg(temperature), 1) AS avg_temp, max(ts) AS last_seen " +
		"FROM iot GROUP BY site ORDER BY site"
	t.section("A batch view", `
A batch view stores the aggregate state of a query in a Delta table of its
own, and records the source version it covers.`)
	if err := t.kappa("view", "create", view, "--source", iot, "--sql", viewSQL, "--quiet"); err != nil {
		return err
	}
	more := cfg.rate * 2
	if _, err := produceBatch(ctx, brokers, sensors, more); err != nil {
		return err
	}
	fmt.Fprintf(out, `
The sensors send %d more readings. The daemon, started again with
--until-end, resumes from the offsets recorded in the table, commits up to
the end of the topic and exits (the way to run backfills and batch jobs):
`, more)
	w, err := newCommitWatcher(ctx, out, iot, "iot", "row", time.Time{})
	if err != nil {
		return err
	}
	defer func() { _ = w.Close() }()
	if err := t.kappa("ingest", iot, "--brokers", strings.Join(brokers, ","), "--topic", demoTopic,
		"--derive", "date=date(ts)", "--until-end", "--log-level", "warn"); err != nil {
		return err
	}
	fmt.Fprintln(out, "\nIts commit, as the log records it:")
	if err := w.poll(ctx, ""); err != nil {
		return err
	}
	fmt.Fprintln(out, "\nThe view is now behind its source:")
	if err := t.kappa("view", "status", view); err != nil {
		return err
	}
	fmt.Fprintln(out, "\nA refresh aggregates only the files added since, and merges them in:")
	if err := t.kappa("view", "refresh", view, "--quiet"); err != nil {
		return err
	}
	if err := t.kappa("view", "show", view); err != nil {
		return err
	}

	// 8. Next steps.
	t.section("Next", fmt.Sprintf(`
The tables are plain Delta tables: Spark, delta-rs and DuckDB read them too.
Try (bin/kappa --help lists every command):
  bin/kappa files %[1]s
  bin/kappa history %[1]s --format json
  bin/kappa query --table %[5]s %[2]s
  bin/kappa query --table %[5]s %[3]s
  bin/kappa view show %[4]s --fresh
  bin/kappa checkpoint %[1]s
Against a real cluster: bin/kappa ingest URL --brokers HOST:PORT --topic T
(bin/kappa ingest --help for TLS, SASL, metrics and flush settings).`,
		shellJoin([]string{iot}),
		shellJoin([]string{"SELECT device, max(temperature) AS hottest FROM iot WHERE site = 'turin' GROUP BY device ORDER BY hottest DESC LIMIT 3"}),
		shellJoin([]string{"SELECT count(*) FROM iot VERSION AS OF 2"}),
		shellJoin([]string{view}), shellJoin([]string{bind})))
	return nil
}

// liveResult sums up the live ingest.
type liveResult struct {
	consumed    int64
	rows, dead  int64 // rows of the table and of the dead-letter table
	commits     int   // data commits of the table
	lastVersion int64
}

// liveIngest runs the ingest daemon in-process (the library 'kappa ingest'
// runs, with the options its flags give) while the sensors produce, prints
// the commits as they land, then stops it as a signal would.
func liveIngest(ctx context.Context, t *tour, cfg demoConfig, iot, dlq string, brokers []string, sensors *demoSensors, total int) (*liveResult, error) {
	out := t.out
	schema, err := parseSchemaArg(demoSchema)
	if err != nil {
		return nil, err
	}
	derived, err := ingest.ParseDerivedColumn("date=date(ts)")
	if err != nil {
		return nil, err
	}
	metrics := ingest.NewMetrics()
	opts := ingest.Options{
		TableURL:      iot,
		Brokers:       brokers,
		Topics:        []string{demoTopic},
		Create:        true,
		Schema:        schema,
		Derived:       []ingest.DerivedColumn{derived},
		PartitionBy:   []string{"date"},
		FlushInterval: time.Second,
		Metrics:       metrics,
		// Problems only: the tour prints the commits itself.
		Logger: slog.New(slog.NewTextHandler(t.e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	start := time.Now()
	d, err := ingest.New(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer func() { _ = d.Close() }()
	fmt.Fprintf(out, "  %+6.1fs  created %s and its dead-letter table %s\n", time.Since(start).Seconds(), iot, dlq)

	data, err := newCommitWatcher(ctx, out, iot, "iot", "row", start)
	if err != nil {
		return nil, err
	}
	defer func() { _ = data.Close() }()
	dead, err := newCommitWatcher(ctx, out, dlq, "iot_dlq", "dead letter", start)
	if err != nil {
		return nil, err
	}
	defer func() { _ = dead.Close() }()
	pollBoth := func(note string) error {
		if err := dead.poll(ctx, note); err != nil {
			return err
		}
		return data.poll(ctx, note)
	}

	// The daemon runs until stopDaemon, like 'kappa ingest' until a signal.
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(dctx) }()
	var runErr error
	stopped := false
	stopDaemon := func() error {
		if !stopped {
			cancel()
			runErr, stopped = <-done, true
		}
		return runErr
	}
	defer func() { _ = stopDaemon() }()

	// Print commits while they land.
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan error, 1)
	go func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-watchCtx.Done():
				watched <- nil
				return
			case <-tick.C:
				if err := pollBoth(""); err != nil {
					watched <- err
					return
				}
			}
		}
	}()
	var watchErr error
	watching := true
	stopWatcher := func() error {
		if watching {
			stopWatch()
			watchErr, watching = <-watched, false
		}
		return watchErr
	}
	defer func() { _ = stopWatcher() }()

	w := newDemoProducer(brokers)
	sent, err := produceFor(ctx, w, sensors, total, cfg.duration)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "  %+6.1fs  sensors done: %d messages sent\n", time.Since(start).Seconds(), sent)

	// Wait until the daemon has read every message, so that stopping it
	// commits all of them and the counts are exact.
	wait := time.NewTicker(20 * time.Millisecond)
	defer wait.Stop()
	deadline := time.After(30 * time.Second)
	for metrics.RecordsConsumed.Load() < int64(sent) {
		select {
		case err := <-done:
			stopped, runErr = true, err
			if err == nil {
				err = errors.New("no error")
			}
			return nil, fmt.Errorf("ingest stopped before reading every message: %w", err)
		case <-deadline:
			return nil, fmt.Errorf("ingest read %d of %d messages in 30s", metrics.RecordsConsumed.Load(), sent)
		case <-wait.C:
		}
	}
	if err := stopWatcher(); err != nil {
		return nil, err
	}
	if err := pollBoth(""); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "  %+6.1fs  all %d messages read; stopping the daemon as Ctrl-C would\n", time.Since(start).Seconds(), sent)
	if err := stopDaemon(); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	if err := pollBoth("<- shutdown flush"); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "  %+6.1fs  daemon stopped\n", time.Since(start).Seconds())
	return &liveResult{
		consumed:    metrics.RecordsConsumed.Load(),
		rows:        data.rows,
		dead:        dead.rows,
		commits:     data.commits,
		lastVersion: data.snap.Version(),
	}, nil
}

// produceBatch sends n readings at once.
func produceBatch(ctx context.Context, brokers []string, g *demoSensors, n int) (int, error) {
	w := newDemoProducer(brokers)
	err := w.WriteMessages(ctx, g.next(time.Now().UTC(), n)...)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("produce: %w", err)
	}
	return n, nil
}

// resetDemoTable removes a table a previous demo left, refusing to delete
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

// demoAsOf picks a time between two data commits of the table (versions v
// and v+1, v about half way to latest) and explains it.
func demoAsOf(ctx context.Context, url string, latest int64) (asOf string, v int64, note string, err error) {
	if latest < 2 {
		return "", 0, "", fmt.Errorf("demo: the live ingest made %d commits; time travel needs 2 (try a longer --duration)", latest)
	}
	v = max(1, latest/2)
	t, err := table.Open(ctx, url)
	if err != nil {
		return "", 0, "", err
	}
	defer func() { _ = t.Close() }()
	s1, err := t.Snapshot(ctx, table.AtVersion(v))
	if err != nil {
		return "", 0, "", err
	}
	s2, err := t.Snapshot(ctx, table.AtVersion(v+1))
	if err != nil {
		return "", 0, "", err
	}
	t1, t2 := s1.Timestamp(), s2.Timestamp()
	// Commit times have millisecond precision: any millisecond in [t1, t2)
	// selects version v.
	mid := t1.Add(t2.Sub(t1) / 2).Truncate(time.Millisecond)
	note = fmt.Sprintf("Version %d was committed at %s and version %d at %s.", v, formatTime(t1), v+1, formatTime(t2))
	return formatTime(mid), v, note, nil
}

// shellJoin quotes arguments for display as a shell command line.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		switch {
		case a != "" && strings.IndexFunc(a, needsQuote) < 0:
			q[i] = a
			continue
		case strings.ContainsRune(a, '\'') && !strings.ContainsAny(a, "\"$`\\!"):
			// SQL with string literals reads better in double quotes.
			q[i] = `"` + a + `"`
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
