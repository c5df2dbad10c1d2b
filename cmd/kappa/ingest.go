package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/kappa-lake/kappa/ingest"
)

const ingestUsage = `usage: kappa ingest URL --brokers HOST:PORT[,...] --topic T[,T...] [flags]

Consume JSON messages from Kafka into the Delta table at URL, exactly once.
Every flag can also be set from the environment as KAPPA_<FLAG> (upper case,
dashes as underscores), e.g. KAPPA_BROKERS, KAPPA_FLUSH_INTERVAL. Flags win.

`

// runIngest implements "kappa ingest". args excludes the subcommand name.
// Signals (SIGINT, SIGTERM) cancel the daemon, which flushes, commits and
// exits 0 within --shutdown-timeout.
func runIngest(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		brokers      = fs.String("brokers", "", "Kafka bootstrap brokers, comma separated (required)")
		topics       = fs.String("topic", "", "topic(s) to consume, comma separated (required)")
		group        = fs.String("group", "", "consumer group (default: the app id)")
		appID        = fs.String("app-id", ingest.DefaultAppID, "application id: txn appIds are <app-id>-<topic>-<partition>")
		start        = fs.String("start", "earliest", "where partitions with no offset in the table start: earliest|latest")
		flushEvery   = fs.Duration("flush-interval", ingest.DefaultFlushInterval, "commit at least this often (also on a quiet topic)")
		flushRows    = fs.Int("flush-rows", ingest.DefaultFlushRows, "commit after this many buffered records")
		flushBytes   = fs.Int64("flush-bytes", ingest.DefaultFlushBytes, "commit after this many buffered bytes (target file size)")
		dlq          = fs.String("dlq", "", "dead-letter table URL (default: <URL>_dlq)")
		dlqTopic     = fs.String("dlq-topic", "", "send dead letters to this existing Kafka topic instead of a table: exactly once per bad message (a read-back before each produce skips letters already there; headers kappa.topic/partition/offset/error)")
		metaTopic    = fs.String("topic-column", "", "column receiving the record's topic")
		metaPart     = fs.String("partition-column", "", "column receiving the record's partition")
		metaOffset   = fs.String("offset-column", "", "column receiving the record's offset")
		metaTS       = fs.String("timestamp-column", "", "column receiving the record's timestamp")
		metaKey      = fs.String("key-column", "", "column receiving the record's key (binary)")
		derive       = fs.String("derive", "", "derived columns, comma separated name=date(field) or name=hour(field)")
		create       = fs.Bool("create", false, "create the table when missing (needs --schema)")
		schemaFlag   = fs.String("schema", "", "table schema for --create: a column list as for 'kappa create --schema' (nested types too) or a Delta schema JSON")
		partitionBy  = fs.String("partition-by", "", "partition columns for --create, comma separated")
		evolve       = fs.Bool("schema-evolution", false, "add nullable columns for new top-level message fields")
		tlsOn        = fs.Bool("tls", false, "connect to the brokers with TLS")
		tlsCA        = fs.String("tls-ca", "", "PEM file of CA certificates for TLS (default: system roots)")
		tlsCert      = fs.String("tls-cert", "", "PEM client certificate for TLS")
		tlsKey       = fs.String("tls-key", "", "PEM client key for TLS")
		tlsInsecure  = fs.Bool("tls-insecure-skip-verify", false, "do not verify the brokers' certificates")
		saslMech     = fs.String("sasl-mechanism", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
		saslUser     = fs.String("sasl-username", "", "SASL username")
		saslPass     = fs.String("sasl-password", "", "SASL password (prefer KAPPA_SASL_PASSWORD)")
		shutdown     = fs.Duration("shutdown-timeout", ingest.DefaultShutdownTimeout, "time allowed for the final flush and commit on SIGTERM/SIGINT")
		untilEnd     = fs.Bool("until-end", false, "consume up to the end offsets seen at start, commit and exit")
		cleanup      = fs.Bool("cleanup-log", false, "remove expired log files after checkpoints")
		metricsAddr  = fs.String("metrics-addr", "", "serve Prometheus /metrics, /healthz, /readyz here (e.g. "+ingest.DefaultMetricsAddr+")")
		logLevel     = fs.String("log-level", "info", "debug|info|warn|error")
		logFormat    = fs.String("log-format", "auto", "text|json|auto (text on a terminal)")
		progressEach = fs.Duration("progress-interval", 10*time.Second, "log progress this often while consuming")
	)
	fs.Usage = func() {
		fmt.Fprint(stderr, ingestUsage)
		fs.PrintDefaults()
	}
	// Flags may follow the URL: split positional arguments out.
	var positional []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return usagef("%v", err)
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if err := flagsFromEnv(fs); err != nil {
		return usagef("%v", err)
	}
	if len(positional) != 1 {
		return usagef("want exactly one table URL, got %d arguments", len(positional))
	}

	logger, err := newIngestLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	opts := ingest.Options{
		TableURL:         positional[0],
		Brokers:          splitList(*brokers),
		Topics:           splitList(*topics),
		Group:            *group,
		AppID:            *appID,
		Start:            ingest.Start(strings.ToLower(*start)),
		FlushInterval:    *flushEvery,
		FlushRows:        *flushRows,
		FlushBytes:       *flushBytes,
		DLQTable:         *dlq,
		DLQTopic:         *dlqTopic,
		Metadata:         ingest.MetadataColumns{Topic: *metaTopic, Partition: *metaPart, Offset: *metaOffset, Timestamp: *metaTS, Key: *metaKey},
		Create:           *create,
		PartitionBy:      splitList(*partitionBy),
		SchemaEvolution:  *evolve,
		SASL:             ingest.SASL{Mechanism: *saslMech, Username: *saslUser, Password: *saslPass},
		ShutdownTimeout:  *shutdown,
		UntilEnd:         *untilEnd,
		CleanupLog:       *cleanup,
		Logger:           logger,
		MetricsAddr:      *metricsAddr,
		ProgressInterval: *progressEach,
	}
	for _, s := range splitList(*derive) {
		dc, err := ingest.ParseDerivedColumn(s)
		if err != nil {
			return err
		}
		opts.Derived = append(opts.Derived, dc)
	}
	if *schemaFlag != "" {
		if opts.Schema, err = parseSchemaArg(*schemaFlag); err != nil {
			return err
		}
	}
	if *tlsOn || *tlsCA != "" || *tlsCert != "" || *tlsInsecure {
		if opts.TLS, err = tlsConfig(*tlsCA, *tlsCert, *tlsKey, *tlsInsecure); err != nil {
			return err
		}
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return ingest.Run(ctx, opts)
}

// flagsFromEnv sets every flag not given on the command line from
// KAPPA_<FLAG> when that variable is set.
func flagsFromEnv(fs *flag.FlagSet) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		env := "KAPPA_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %w", env, v, e)
			}
		}
	})
	return err
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func tlsConfig(caFile, certFile, keyFile string, insecure bool) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure} //nolint:gosec // opt-in flag
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("tls ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca %s: no certificates", caFile)
		}
		c.RootCAs = pool
	}
	if certFile != "" || keyFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("tls client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// newIngestLogger logs text on a terminal and JSON otherwise (auto).
func newIngestLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	ho := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, ho)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, ho)), nil
	case "auto", "":
		if f, ok := w.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				return slog.New(slog.NewTextHandler(w, ho)), nil
			}
		}
		return slog.New(slog.NewJSONHandler(w, ho)), nil
	}
	return nil, fmt.Errorf("log format %q: want text, json or auto", format)
}
