package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/segmentio/kafka-go"

	"github.com/kappa-lake/kappa/table"
	"github.com/kappa-lake/kappa/txlog"
)

// benchMessages is the number of messages BenchmarkIngest pre-produces
// (KAPPA_INGEST_BENCH_MESSAGES overrides the 2M default for quick runs).
func benchMessages() int {
	if s := os.Getenv("KAPPA_INGEST_BENCH_MESSAGES"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return n
		}
	}
	return 2_000_000
}

// benchValue is a ~200 byte IoT-style JSON message.
func benchValue(i int, ts int64) []byte {
	return fmt.Appendf(nil, `{"seq":%d,"device":"device-%05d","site":"site-%02d","ts":%d,"temperature":%.2f,"humidity":%.2f,"battery":%d,"status":"ok","fw":"v1.2.%d","note":"steady reading from the north wing"}`,
		i, i%5000, i%40, ts, 20+float64(i%1000)/100, 40+float64(i%500)/50, 100-i%100, i%10)
}

func benchSchema() *txlog.StructType {
	f := func(n, t string) *txlog.StructField {
		return &txlog.StructField{Name: n, Type: &txlog.PrimitiveType{Name: t}, Nullable: true}
	}
	return &txlog.StructType{Fields: []*txlog.StructField{
		f("seq", txlog.TypeLong), f("device", txlog.TypeString), f("site", txlog.TypeString),
		f("ts", txlog.TypeTimestamp), f("temperature", txlog.TypeDouble), f("humidity", txlog.TypeDouble),
		f("battery", txlog.TypeInteger), f("status", txlog.TypeString), f("fw", txlog.TypeString), f("note", txlog.TypeString),
	}}
}

func preProduce(b *testing.B, brokers []string, topic string, n int) {
	b.Helper()
	var wg sync.WaitGroup
	const producers = 4
	errs := make(chan error, producers)
	now := time.Now().UnixMilli()
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.RoundRobin{}, BatchSize: 10000, BatchBytes: 8 << 20, BatchTimeout: 5 * time.Millisecond, RequiredAcks: kafka.RequireOne}
			defer w.Close()
			msgs := make([]kafka.Message, 0, 10000)
			for i := p; i < n; i += producers {
				msgs = append(msgs, kafka.Message{Value: benchValue(i, now)})
				if len(msgs) == cap(msgs) {
					if err := w.WriteMessages(context.Background(), msgs...); err != nil {
						errs <- err
						return
					}
					msgs = msgs[:0]
				}
			}
			if len(msgs) > 0 {
				if err := w.WriteMessages(context.Background(), msgs...); err != nil {
					errs <- err
				}
			}
		}(p)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatalf("produce: %v", err)
	}
}

// consumeOnly reads every message of the topic with the same reader
// configuration the daemon uses, one goroutine per partition, discarding them.
func consumeOnly(b *testing.B, brokers []string, topic string, partitions, n int) {
	var wg sync.WaitGroup
	per := make([]int, partitions)
	for p := 0; p < partitions; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 250 * time.Millisecond, QueueCapacity: 1000})
			defer r.Close()
			_ = r.SetOffset(kafka.FirstOffset)
			conn, err := kafka.DialLeader(context.Background(), "tcp", brokers[0], topic, p)
			if err != nil {
				b.Error(err)
				return
			}
			end, err := conn.ReadLastOffset()
			conn.Close()
			if err != nil {
				b.Error(err)
				return
			}
			for {
				m, err := r.FetchMessage(context.Background())
				if err != nil {
					b.Error(err)
					return
				}
				per[p]++
				if m.Offset >= end-1 {
					return
				}
			}
		}(p)
	}
	wg.Wait()
	total := 0
	for _, c := range per {
		total += c
	}
	if total != n {
		b.Fatalf("consume-only read %d of %d messages", total, n)
	}
}

func maxRSSMiB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024
}

// BenchmarkIngest: N (~200 B) JSON messages pre-produced to the in-process
// broker, consumed once with the daemon's reader settings and discarded
// (baseline), then ingested into a table with --until-end; reports both
// rates and ingest/baseline. The daemon runs as a child process:
// daemon_max_rss_MiB is its peak RSS; broker_process_max_rss_MiB is this
// process (broker holding every message, producers, baseline consumer).
func BenchmarkIngest(b *testing.B) {
	const partitions = 4
	n := benchMessages()
	brokers := startBroker(b, partitions, "bench")
	t0 := time.Now()
	preProduce(b, brokers, "bench", n)
	b.Logf("pre-produced %d messages in %v", n, time.Since(t0).Round(time.Millisecond))
	b.ReportAllocs()
	var base, ing time.Duration
	var rss float64
	iter := 0
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		start := time.Now()
		consumeOnly(b, brokers, "bench", partitions, n)
		base += time.Since(start)

		url := filepath.Join(b.TempDir(), fmt.Sprintf("bench%d", iter))
		iter++
		// The daemon runs as a child process (this test binary), so its
		// peak RSS is measured without the in-process broker's.
		cfg, _ := json.Marshal(childConfig{Brokers: brokers, Topic: "bench", Table: url, Group: fmt.Sprintf("bench%d", iter), UntilEnd: true, Bench: true})
		cmd := exec.CommandContext(context.Background(), exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+string(cfg))
		cmd.Stderr = os.Stderr
		start = time.Now()
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("ingest: %v", err)
		}
		ing += time.Since(start)
		var kb float64
		if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "VmHWM: %f kB", &kb); err == nil {
			rss = max(rss, kb/1024)
		}
		if got := rowCount(b, url); got != n {
			b.Fatalf("table has %d rows, want %d", got, n)
		}
	}
	iters := float64(iter)
	baseRate := float64(n) * iters / base.Seconds()
	ingRate := float64(n) * iters / ing.Seconds()
	b.ReportMetric(baseRate, "consume_msgs/s")
	b.ReportMetric(ingRate, "ingest_msgs/s")
	b.ReportMetric(ingRate/baseRate, "ingest/consume")
	b.ReportMetric(rss, "daemon_max_rss_MiB")
	b.ReportMetric(maxRSSMiB(), "broker_process_max_rss_MiB")
}

// BenchmarkIngestLatency produces at a steady 20k messages/s for
// KAPPA_INGEST_LATENCY_SECONDS (default 10) and reports the produce-to-
// visible latency (time until a reader polling the table every 20 ms sees
// the row) at p50 and p99, with a 1 s flush interval.
func BenchmarkIngestLatency(b *testing.B) {
	secs := 10
	if s, err := strconv.Atoi(os.Getenv("KAPPA_INGEST_LATENCY_SECONDS")); err == nil && s > 0 {
		secs = s
	}
	const rate = 20000
	const partitions = 4
	for b.Loop() {
		brokers := startBroker(b, partitions, "lat")
		url := filepath.Join(b.TempDir(), "lat")
		ctx, cancel := context.WithCancel(context.Background())
		o := Options{
			TableURL: url, Brokers: brokers, Topics: []string{"lat"}, AppID: "lat", Create: true, Schema: benchSchema(),
			FlushInterval: time.Second, Logger: testLogger(b), HeartbeatInterval: 200 * time.Millisecond,
		}
		d, err := New(ctx, o)
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		for !d.m.ready.Load() {
			time.Sleep(10 * time.Millisecond)
		}
		total := rate * secs
		produced := make([]int64, total) // unix nanos by seq
		prodDone := make(chan struct{})
		go func() {
			defer close(prodDone)
			w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: "lat", Balancer: &kafka.RoundRobin{}, BatchSize: 1000, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireOne}
			defer w.Close()
			const tick = 10 * time.Millisecond
			per := rate / 100
			start := time.Now()
			for i := 0; i < total; i += per {
				if d := time.Until(start.Add(time.Duration(i/per) * tick)); d > 0 {
					time.Sleep(d)
				}
				now := time.Now()
				msgs := make([]kafka.Message, 0, per)
				for j := i; j < i+per && j < total; j++ {
					produced[j] = now.UnixNano()
					msgs = append(msgs, kafka.Message{Value: benchValue(j, now.UnixMilli())})
				}
				if err := w.WriteMessages(context.Background(), msgs...); err != nil {
					b.Error(err)
					return
				}
			}
		}()
		lat := pollVisible(b, url, total, produced, time.Duration(secs+30)*time.Second)
		<-prodDone
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		d.Close()
		slices.Sort(lat)
		if len(lat) == 0 {
			b.Fatal("no rows became visible")
		}
		p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / 1e6 }
		b.ReportMetric(p(0.50), "p50_ms")
		b.ReportMetric(p(0.99), "p99_ms")
		b.ReportMetric(float64(len(lat)), "rows")
	}
}

// pollVisible polls the table every 20 ms and returns, for every row, the
// time between its production and the poll that first saw it.
func pollVisible(b *testing.B, url string, total int, produced []int64, timeout time.Duration) []int64 {
	ctx := context.Background()
	var tbl *table.Table
	deadline := time.Now().Add(timeout)
	for tbl == nil {
		t, err := table.Open(ctx, url)
		if err == nil {
			tbl = t
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("table never appeared: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer tbl.Close()
	seen := map[string]bool{}
	var lat []int64
	for len(lat) < total && time.Now().Before(deadline) {
		snap, err := tbl.Snapshot(ctx)
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now().UnixNano()
		for _, a := range snap.Files() {
			if seen[a.Path] {
				continue
			}
			seen[a.Path] = true
			for _, seq := range readSeq(b, tbl, a.Path) {
				if seq >= 0 && int(seq) < total && produced[seq] != 0 {
					lat = append(lat, now-produced[seq])
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return lat
}

func readSeq(b *testing.B, tbl *table.Table, path string) []int64 {
	r, err := tbl.Store().Open(context.Background(), path)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	f, err := parquet.OpenFile(r, r.Size())
	if err != nil {
		b.Fatal(err)
	}
	col := -1
	for i, c := range f.Schema().Columns() {
		if len(c) == 1 && c[0] == "seq" {
			col = i
		}
	}
	var out []int64
	for _, rg := range f.RowGroups() {
		pages := rg.ColumnChunks()[col].Pages()
		for {
			p, err := pages.ReadPage()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			vals := make([]parquet.Value, p.NumValues())
			n, _ := p.Values().ReadValues(vals)
			for _, v := range vals[:n] {
				if !v.IsNull() {
					out = append(out, v.Int64())
				}
			}
		}
		pages.Close()
	}
	return out
}
