package ingest

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Metrics is the daemon's metric registry, exposed in the Prometheus text
// format by Handler. All methods are safe for concurrent use. (Hand-written:
// a dozen series do not justify the client_golang dependency tree.)
type Metrics struct {
	RecordsConsumed     atomic.Int64
	RecordsCommitted    atomic.Int64
	RecordsDeadLettered atomic.Int64
	Commits             atomic.Int64
	Conflicts           atomic.Int64 // commits abandoned because another writer moved a partition's txn
	Reseeks             atomic.Int64
	FilesWritten        atomic.Int64
	BytesWritten        atomic.Int64
	SchemaChanges       atomic.Int64
	Errors              atomic.Int64 // store / broker errors retried

	commitLatency histogram

	mu  sync.Mutex
	lag map[string]map[int]*partOffsets // topic -> partition

	ready atomic.Bool
}

// NewMetrics returns an empty registry.
func NewMetrics() *Metrics {
	return &Metrics{
		commitLatency: histogram{bounds: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}},
		lag:           map[string]map[int]*partOffsets{},
	}
}

// ObserveCommit records the latency of one table commit.
func (m *Metrics) ObserveCommit(d time.Duration) { m.commitLatency.observe(d.Seconds()) }

// partOffsets are what the lag of one partition is computed from: the
// partition's end offset (the offset the next produced record gets) and the
// offset after the last one the table holds. -1 means unknown.
type partOffsets struct{ end, committed int64 }

func (m *Metrics) part(topic string, partition int) *partOffsets {
	p := m.lag[topic]
	if p == nil {
		p = map[int]*partOffsets{}
		m.lag[topic] = p
	}
	o := p[partition]
	if o == nil {
		o = &partOffsets{end: -1, committed: -1}
		p[partition] = o
	}
	return o
}

// SetEndOffset records a partition's end offset (from a fetch's high-water
// mark or a ListOffsets request). Offsets only grow, so an older reading
// arriving late does not move it back (until the next generation).
func (m *Metrics) SetEndOffset(topic string, partition int, end int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o := m.part(topic, partition)
	o.end = max(o.end, end)
}

// SetCommittedOffset records the offset after the last one the table holds
// for a partition (the next offset to commit).
func (m *Metrics) SetCommittedOffset(topic string, partition int, next int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.part(topic, partition).committed = next
}

// SetLag sets a partition's lag directly (end offset = lag, next offset to
// commit = 0); the daemon itself uses SetEndOffset and SetCommittedOffset.
func (m *Metrics) SetLag(topic string, partition int, lag int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o := m.part(topic, partition)
	o.end, o.committed = lag, 0
}

// Lag returns the lag of a partition: its end offset minus the offset after
// the last one the table holds, i.e. the records produced to it that the
// table does not hold yet. ok is false until both offsets are known.
func (m *Metrics) Lag(topic string, partition int) (lag int64, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o := m.lag[topic][partition]
	if o == nil {
		return 0, false
	}
	return o.lag()
}

func (o *partOffsets) lag() (int64, bool) {
	if o.end < 0 || o.committed < 0 {
		return 0, false
	}
	return max(o.end-o.committed, 0), true
}

// clearLag forgets every partition's offsets (a new generation may own
// other partitions).
func (m *Metrics) clearLag() {
	m.mu.Lock()
	m.lag = map[string]map[int]*partOffsets{}
	m.mu.Unlock()
}

// SetReady marks the daemon ready (consuming in a generation) or not.
func (m *Metrics) SetReady(v bool) { m.ready.Store(v) }

// WriteText writes every metric in the Prometheus text exposition format.
func (m *Metrics) WriteText(w io.Writer) error {
	var err error
	p := func(format string, args ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, args...)
		}
	}
	counter := func(name, help string, v int64) {
		p("# HELP %s %s\n# TYPE %s counter\n%s %d\n", name, help, name, name, v)
	}
	counter("kappa_ingest_records_consumed_total", "Kafka records read.", m.RecordsConsumed.Load())
	counter("kappa_ingest_records_committed_total", "Records committed to the table.", m.RecordsCommitted.Load())
	counter("kappa_ingest_records_dead_lettered_total", "Records sent to the dead-letter destination.", m.RecordsDeadLettered.Load())
	counter("kappa_ingest_commits_total", "Table commits.", m.Commits.Load())
	counter("kappa_ingest_conflicts_total", "Batches dropped because another writer moved a partition's offset.", m.Conflicts.Load())
	counter("kappa_ingest_reseeks_total", "Partition reseeks to the table's offsets.", m.Reseeks.Load())
	counter("kappa_ingest_files_written_total", "Data files written.", m.FilesWritten.Load())
	counter("kappa_ingest_bytes_written_total", "Data file bytes written.", m.BytesWritten.Load())
	counter("kappa_ingest_schema_changes_total", "Schema evolution commits.", m.SchemaChanges.Load())
	counter("kappa_ingest_errors_total", "Retried broker or store errors.", m.Errors.Load())
	m.commitLatency.write(p, "kappa_ingest_commit_latency_seconds", "Latency of table commits.")

	m.mu.Lock()
	type row struct {
		topic string
		part  int
		lag   int64
	}
	var rows []row
	for t, ps := range m.lag {
		for part, o := range ps {
			if l, ok := o.lag(); ok {
				rows = append(rows, row{t, part, l})
			}
		}
	}
	m.mu.Unlock()
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].topic != rows[j].topic {
			return rows[i].topic < rows[j].topic
		}
		return rows[i].part < rows[j].part
	})
	p("# HELP kappa_ingest_partition_lag Records in the partition after the last offset the table holds (end offset - committed offset - 1), refreshed every few seconds even when nothing is fetched.\n# TYPE kappa_ingest_partition_lag gauge\n")
	for _, r := range rows {
		p("kappa_ingest_partition_lag{topic=%s,partition=\"%d\"} %d\n", strconv.Quote(r.topic), r.part, r.lag)
	}
	ready := 0
	if m.ready.Load() {
		ready = 1
	}
	p("# HELP kappa_ingest_ready 1 while consuming.\n# TYPE kappa_ingest_ready gauge\nkappa_ingest_ready %d\n", ready)
	return err
}

// Handler serves /metrics, /healthz (always 200 while the process serves)
// and /readyz (200 once the daemon consumes in a generation, else 503).
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_ = m.WriteText(w)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !m.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	return mux
}

type histogram struct {
	mu     sync.Mutex
	bounds []float64
	counts []uint64
	sum    float64
	n      uint64
}

func (h *histogram) observe(v float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.counts == nil {
		h.counts = make([]uint64, len(h.bounds))
	}
	for i, b := range h.bounds {
		if v <= b {
			h.counts[i]++
		}
	}
	h.sum += v
	h.n++
}

func (h *histogram) write(p func(string, ...any), name, help string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p("# HELP %s %s\n# TYPE %s histogram\n", name, help, name)
	for i, b := range h.bounds {
		var c uint64
		if h.counts != nil {
			c = h.counts[i]
		}
		p("%s_bucket{le=\"%s\"} %d\n", name, strconv.FormatFloat(b, 'g', -1, 64), c)
	}
	p("%s_bucket{le=\"+Inf\"} %d\n%s_sum %s\n%s_count %d\n", name, h.n, name, strconv.FormatFloat(h.sum, 'g', -1, 64), name, h.n)
}
