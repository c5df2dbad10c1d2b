package ingest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/kappa-lake/kappa/internal/store"
	"github.com/kappa-lake/kappa/txlog"
)

// ErrInvalidOptions is wrapped by every error Options.Validate returns.
var ErrInvalidOptions = errors.New("invalid ingest options")

// Start says where a partition with no offset recorded in the table starts.
type Start string

// Start policies.
const (
	StartEarliest Start = "earliest"
	StartLatest   Start = "latest"
)

// Defaults applied by Options.EnsureDefaults.
const (
	DefaultFlushInterval   = 10 * time.Second
	DefaultFlushBytes      = 128 << 20
	DefaultFlushRows       = 1_000_000
	DefaultShutdownTimeout = 30 * time.Second
	DefaultAppID           = "kappa"
	DefaultMetricsAddr     = "127.0.0.1:9464"
)

// MetadataColumns names the table columns that receive Kafka record metadata.
// An empty name leaves that piece of metadata out.
type MetadataColumns struct {
	Topic     string // string
	Partition string // integer
	Offset    string // long
	Timestamp string // timestamp
	Key       string // binary
}

func (m MetadataColumns) names() []string {
	var out []string
	for _, n := range []string{m.Topic, m.Partition, m.Offset, m.Timestamp, m.Key} {
		if n != "" {
			out = append(out, n)
		}
	}
	return out
}

// Derive functions for DerivedColumn.
const (
	DeriveDate = "date" // yyyy-mm-dd (UTC) of a timestamp field
	DeriveHour = "hour" // hour of day 0..23 (UTC) of a timestamp field
)

// DerivedColumn computes a column (typically a partition column) from a
// field of the message: Name = Func(Source).
type DerivedColumn struct {
	Name   string
	Source string
	Func   string // DeriveDate or DeriveHour
}

// ParseDerivedColumn parses "name=func(source)", e.g. "date=date(ts)".
func ParseDerivedColumn(s string) (DerivedColumn, error) {
	name, expr, ok := strings.Cut(s, "=")
	if !ok {
		return DerivedColumn{}, fmt.Errorf("%w: derived column %q: want name=func(source)", ErrInvalidOptions, s)
	}
	fn, rest, ok := strings.Cut(expr, "(")
	if !ok || !strings.HasSuffix(rest, ")") {
		return DerivedColumn{}, fmt.Errorf("%w: derived column %q: want name=func(source)", ErrInvalidOptions, s)
	}
	d := DerivedColumn{Name: strings.TrimSpace(name), Func: strings.TrimSpace(fn), Source: strings.TrimSpace(strings.TrimSuffix(rest, ")"))}
	if d.Name == "" || d.Source == "" || (d.Func != DeriveDate && d.Func != DeriveHour) {
		return DerivedColumn{}, fmt.Errorf("%w: derived column %q: func must be date or hour", ErrInvalidOptions, s)
	}
	return d, nil
}

// SASL mechanisms.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// SASL holds SASL authentication settings; an empty Mechanism disables SASL.
type SASL struct {
	Mechanism string
	Username  string
	Password  string
}

// Options configures a Daemon. The zero value plus TableURL, Brokers and
// Topics is valid after EnsureDefaults.
type Options struct {
	// TableURL is the destination Delta table (store URL or path).
	TableURL string
	// Brokers are the bootstrap brokers, host:port.
	Brokers []string
	// Topics to consume; one table can take several topics.
	Topics []string
	// Group is the Kafka consumer group (default: AppID).
	Group string
	// AppID prefixes the txn appIds: "<AppID>-<topic>-<partition>". Changing
	// it makes the daemon forget the table's recorded offsets.
	AppID string
	// Start applies to partitions with no txn in the table (default
	// earliest): earliest is the partition's log start, latest its end
	// offset when the generation starts.
	Start Start

	// Flush policy: whichever comes first. FlushInterval also fires when no
	// new messages arrive (a quiet topic still becomes visible).
	FlushInterval time.Duration
	FlushRows     int
	FlushBytes    int64

	// DLQTable is the dead-letter Delta table (default "<TableURL>_dlq").
	// DLQTopic, when set, sends dead letters to that Kafka topic instead.
	DLQTable string
	DLQTopic string

	// Metadata columns filled from the Kafka record.
	Metadata MetadataColumns
	// Derived columns computed from message fields.
	Derived []DerivedColumn

	// Create the table when missing, with Schema and PartitionBy.
	Create      bool
	Schema      *txlog.StructType
	PartitionBy []string
	// SchemaEvolution adds nullable columns for new top-level message fields
	// (a metadata commit before the data commit).
	SchemaEvolution bool

	// TLS enables TLS to the brokers when non-nil.
	TLS *tls.Config
	// SASL authentication.
	SASL SASL

	// ShutdownTimeout bounds the final flush and commit after the context is
	// cancelled.
	ShutdownTimeout time.Duration
	// UntilEnd consumes up to the end offsets seen at start, commits, and
	// makes Run return nil.
	UntilEnd bool
	// CleanupLog removes expired log files after each checkpoint.
	CleanupLog bool

	// Logger receives structured logs (default: discard).
	Logger *slog.Logger
	// Metrics collects the daemon's counters (default: a new registry).
	Metrics *Metrics
	// MetricsAddr, when set, serves /metrics, /healthz and /readyz there.
	MetricsAddr string

	// Consumer group timing (defaults from kafka-go: 10s/30s/3s); tests
	// shorten them for fast rebalances.
	SessionTimeout    time.Duration
	RebalanceTimeout  time.Duration
	HeartbeatInterval time.Duration
	// ProgressInterval is how often catch-up progress is logged (default 10s).
	ProgressInterval time.Duration

	// wrapStore, set by tests, wraps the tables' stores (fault injection).
	wrapStore func(store.Store) store.Store
}

// EnsureDefaults fills unset fields with their defaults and returns o.
func (o *Options) EnsureDefaults() *Options {
	if o.AppID == "" {
		o.AppID = DefaultAppID
	}
	if o.Group == "" {
		o.Group = o.AppID
	}
	if o.Start == "" {
		o.Start = StartEarliest
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.FlushRows == 0 {
		o.FlushRows = DefaultFlushRows
	}
	if o.FlushBytes == 0 {
		o.FlushBytes = DefaultFlushBytes
	}
	if o.DLQTable == "" && o.DLQTopic == "" && o.TableURL != "" {
		o.DLQTable = SiblingDLQ(o.TableURL)
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = DefaultShutdownTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics()
	}
	if o.SessionTimeout == 0 {
		o.SessionTimeout = 10 * time.Second
	}
	if o.RebalanceTimeout == 0 {
		o.RebalanceTimeout = 30 * time.Second
	}
	if o.HeartbeatInterval == 0 {
		o.HeartbeatInterval = 3 * time.Second
	}
	if o.ProgressInterval == 0 {
		o.ProgressInterval = 10 * time.Second
	}
	return o
}

// SiblingDLQ returns the default dead-letter table URL: "<table>_dlq", keeping
// any query string of the URL after the path.
func SiblingDLQ(tableURL string) string {
	base, query, hasQuery := strings.Cut(tableURL, "?")
	base = strings.TrimRight(base, "/") + "_dlq"
	if hasQuery {
		return base + "?" + query
	}
	return base
}

// Validate reports the first problem with the options (after defaults).
func (o *Options) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidOptions, fmt.Sprintf(format, args...))
	}
	switch {
	case o.TableURL == "":
		return bad("table URL is required")
	case len(o.Brokers) == 0:
		return bad("at least one broker is required")
	case len(o.Topics) == 0:
		return bad("at least one topic is required")
	case o.Start != StartEarliest && o.Start != StartLatest:
		return bad("start must be earliest or latest, not %q", o.Start)
	case o.FlushInterval < 0 || o.FlushRows < 0 || o.FlushBytes < 0:
		return bad("flush interval, rows and bytes must not be negative")
	case o.ShutdownTimeout < 0:
		return bad("shutdown timeout must not be negative")
	case o.DLQTable != "" && o.DLQTopic != "":
		return bad("set either a DLQ table or a DLQ topic, not both")
	case o.DLQTable == "" && o.DLQTopic == "":
		return bad("a dead-letter destination is required")
	case o.DLQTable != "" && strings.TrimRight(o.DLQTable, "/") == strings.TrimRight(o.TableURL, "/"):
		return bad("the DLQ table must differ from the table")
	case o.Create && o.Schema == nil:
		return bad("creating a table requires a schema")
	}
	for _, b := range o.Brokers {
		if !strings.Contains(b, ":") {
			return bad("broker %q: want host:port", b)
		}
	}
	seen := map[string]bool{}
	for _, t := range o.Topics {
		if t == "" || seen[t] {
			return bad("topic %q empty or repeated", t)
		}
		seen[t] = true
	}
	cols := map[string]bool{}
	for _, n := range o.Metadata.names() {
		if cols[n] {
			return bad("column %q used twice for metadata", n)
		}
		cols[n] = true
	}
	for _, d := range o.Derived {
		if d.Name == "" || d.Source == "" || (d.Func != DeriveDate && d.Func != DeriveHour) {
			return bad("derived column %+v: need name, source and func date|hour", d)
		}
		if cols[d.Name] {
			return bad("column %q defined twice", d.Name)
		}
		cols[d.Name] = true
	}
	if o.Schema != nil {
		for _, p := range o.PartitionBy {
			if o.Schema.Field(p) == nil && !cols[p] {
				return bad("partition column %q is neither in the schema nor a metadata or derived column", p)
			}
		}
	}
	switch strings.ToUpper(o.SASL.Mechanism) {
	case "":
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if o.SASL.Username == "" {
			return bad("SASL %s needs a username", o.SASL.Mechanism)
		}
	default:
		return bad("SASL mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", o.SASL.Mechanism)
	}
	return nil
}
