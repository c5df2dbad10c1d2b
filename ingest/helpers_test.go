package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kappa-lake/kappa/table"
	"github.com/kappa-lake/kappa/txlog"
)

// startBroker starts an in-process Kafka-protocol broker on 127.0.0.1 with
// the topics seeded, closed at the end of the test.
func startBroker(t testing.TB, partitions int32, topics ...string) []string {
	t.Helper()
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.SeedTopics(partitions, topics...),
		kfake.GroupMinSessionTimeout(100*time.Millisecond),
	)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// producer writes messages round-robin over the partitions.
func newProducer(brokers []string, topic string) *kafka.Writer {
	return &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Topic:        topic,
		Balancer:     &kafka.RoundRobin{},
		BatchTimeout: time.Millisecond,
		BatchSize:    1000,
		RequiredAcks: kafka.RequireAll,
	}
}

func produceJSON(t testing.TB, w *kafka.Writer, from, to int) {
	produceMixed(t, w, from, to, nil)
}

// produceMixed produces messages from..to-1; those with bad(i) are not JSON.
func produceMixed(t testing.TB, w *kafka.Writer, from, to int, bad func(int) bool) {
	t.Helper()
	msgs := make([]kafka.Message, 0, to-from)
	for i := from; i < to; i++ {
		v := fmt.Sprintf(`{"id":"m%07d","n":%d}`, i, i)
		if bad != nil && bad(i) {
			v = fmt.Sprintf(`bad message %d`, i)
		}
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(v)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for len(msgs) > 0 {
		n := min(len(msgs), 5000)
		if err := w.WriteMessages(ctx, msgs[:n]...); err != nil {
			t.Fatalf("produce: %v", err)
		}
		msgs = msgs[n:]
	}
}

func testSchema() *txlog.StructType {
	return &txlog.StructType{Fields: []*txlog.StructField{
		{Name: "id", Type: &txlog.PrimitiveType{Name: txlog.TypeString}, Nullable: false},
		{Name: "n", Type: &txlog.PrimitiveType{Name: txlog.TypeLong}, Nullable: true},
	}}
}

func testLogger(testing.TB) *slog.Logger {
	if os.Getenv("KAPPA_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// testOptions are options for a test daemon writing to dir/t.
func testOptions(t testing.TB, brokers []string, tableURL string, topics ...string) Options {
	return Options{
		TableURL:          tableURL,
		Brokers:           brokers,
		Topics:            topics,
		AppID:             "test",
		Create:            true,
		Schema:            testSchema(),
		Metadata:          MetadataColumns{Partition: "kafka_partition", Offset: "kafka_offset"},
		FlushInterval:     200 * time.Millisecond,
		SessionTimeout:    time.Second,
		RebalanceTimeout:  5 * time.Second,
		HeartbeatInterval: 100 * time.Millisecond,
		ShutdownTimeout:   10 * time.Second,
		Logger:            testLogger(t),
		Metrics:           NewMetrics(),
	}
}

// readRows reads every live row of the table's latest snapshot (directly
// from the Parquet files, flat schemas only) as column name -> value.
func readRows(t testing.TB, url string) ([]map[string]any, *table.Snapshot) {
	t.Helper()
	ctx := context.Background()
	tbl, err := table.Open(ctx, url)
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	defer tbl.Close()
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	var out []map[string]any
	for _, add := range snap.Files() {
		path := add.Path
		if strings.Contains(path, "%") {
			// partition dirs are URL-escaped in the log
			path = unescapePath(path)
		}
		r, err := tbl.Store().Open(ctx, path)
		if err != nil {
			t.Fatalf("open %s: %v", path, err)
		}
		f, err := parquet.OpenFile(r, r.Size())
		if err != nil {
			t.Fatalf("parquet %s: %v", path, err)
		}
		cols := f.Schema().Columns()
		for _, rg := range f.RowGroups() {
			rows := rg.Rows()
			buf := make([]parquet.Row, 256)
			for {
				n, err := rows.ReadRows(buf)
				for _, row := range buf[:n] {
					m := map[string]any{}
					for _, v := range row {
						name := strings.Join(cols[v.Column()], ".")
						if v.IsNull() {
							m[name] = nil
							continue
						}
						switch v.Kind() {
						case parquet.Int32:
							m[name] = int64(v.Int32())
						case parquet.Int64:
							m[name] = v.Int64()
						case parquet.Double:
							m[name] = v.Double()
						case parquet.Boolean:
							m[name] = v.Boolean()
						default:
							m[name] = string(v.ByteArray())
						}
					}
					for k, pv := range add.PartitionValues {
						if pv == nil {
							m[k] = nil
						} else {
							m[k] = *pv
						}
					}
					out = append(out, m)
				}
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("read rows of %s: %v", path, err)
				}
			}
			rows.Close()
		}
		r.Close()
	}
	return out, snap
}

func unescapePath(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '%' && i+2 < len(p) {
			var c byte
			if _, err := fmt.Sscanf(p[i+1:i+3], "%02X", &c); err == nil {
				b.WriteByte(c)
				i += 2
				continue
			}
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

// checkExactlyOnce asserts the table holds messages m0..m(n-1) once each, and
// every (partition, offset) once, contiguous from 0 per partition, and that
// the txns match the highest offset per partition.
func checkExactlyOnce(t testing.TB, url string, n int, appPrefix, topic string) {
	checkRows(t, url, n, appPrefix, topic, nil)
}

// checkRows is checkExactlyOnce where messages i with bad(i) are dead
// letters (offsets have gaps); bad == nil means none.
func checkRows(t testing.TB, url string, n int, appPrefix, topic string, bad func(int) bool) {
	gaps := bad != nil
	t.Helper()
	rows, snap := readRows(t, url)
	seen := map[string]int{}
	po := map[[2]int64]string{}
	maxOff := map[int64]int64{}
	count := map[int64]int64{}
	dups := 0
	for _, r := range rows {
		id, _ := r["id"].(string)
		seen[id]++
		if seen[id] > 1 {
			dups++
		}
		p, _ := r["kafka_partition"].(int64)
		o, _ := r["kafka_offset"].(int64)
		k := [2]int64{p, o}
		if prev, ok := po[k]; ok {
			t.Errorf("(partition %d, offset %d) twice: %s and %s", p, o, prev, id)
		}
		po[k] = id
		maxOff[p] = max(maxOff[p], o)
		count[p]++
		want, _ := r["n"].(int64)
		if id != fmt.Sprintf("m%07d", want) {
			t.Errorf("payload mismatch at (%d,%d): id %s n %d", p, o, id, want)
		}
	}
	missing, want := 0, 0
	for i := 0; i < n; i++ {
		if bad != nil && bad(i) {
			continue
		}
		want++
		if seen[fmt.Sprintf("m%07d", i)] == 0 {
			missing++
			if missing < 5 {
				t.Errorf("message m%07d missing", i)
			}
		}
	}
	for p, c := range count {
		if c != maxOff[p]+1 && !gaps {
			t.Errorf("partition %d: %d rows but max offset %d", p, c, maxOff[p])
		}
		if v, ok := snap.Txn(appID(appPrefix, topicPartition{topic, int(p)})); !ok || v < maxOff[p] || !gaps && v != maxOff[p] {
			t.Errorf("partition %d: txn %d (%v), max offset %d", p, v, ok, maxOff[p])
		}
	}
	if len(rows) != want || dups > 0 || missing > 0 {
		t.Fatalf("table has %d rows for %d messages: %d duplicates, %d missing", len(rows), want, dups, missing)
	}
	t.Logf("checked %d messages: exactly once by (partition, offset) and payload; table version %d", want, snap.Version())
}

// waitRows polls until the table holds at least n rows or the timeout.
func waitRows(t testing.TB, url string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if rowCount(t, url) >= n {
			return
		}
		if time.Now().After(deadline) {
			replay, last := replayCount(t, url)
			t.Fatalf("table %s: fewer than %d rows after %v (have %d; replaying the JSON commits 0..%d gives %d)", url, n, timeout, rowCount(t, url), last, replay)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rowCount sums numRecords of the live files (0 when no table yet).
func rowCount(t testing.TB, url string) int {
	ctx := context.Background()
	tbl, err := table.Open(ctx, url)
	if err != nil {
		return 0
	}
	defer tbl.Close()
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		return 0
	}
	var n int
	for _, a := range snap.Files() {
		var st struct {
			NumRecords int `json:"numRecords"`
		}
		_ = json.Unmarshal([]byte(a.Stats), &st)
		n += st.NumRecords
	}
	return n
}

// checkDeadLetters asserts the DLQ table holds each bad message once.
func checkDeadLetters(t testing.TB, url string, n int, bad func(int) bool) {
	t.Helper()
	rows, _ := readRows(t, url)
	want := 0
	for i := 0; i < n; i++ {
		if bad(i) {
			want++
		}
	}
	seen := map[string]int{}
	po := map[[2]int64]bool{}
	for _, r := range rows {
		v, _ := r["value"].(string)
		seen[v]++
		k := [2]int64{r["partition"].(int64), r["offset"].(int64)}
		if po[k] {
			t.Errorf("dead letter (%d,%d) twice", k[0], k[1])
		}
		po[k] = true
		if e, _ := r["error"].(string); !strings.Contains(e, "not a JSON object") {
			t.Errorf("dead letter %q with reason %q", v, e)
		}
	}
	for i := 0; i < n; i++ {
		if bad(i) && seen[fmt.Sprintf("bad message %d", i)] != 1 {
			t.Errorf("bad message %d in the DLQ %d times", i, seen[fmt.Sprintf("bad message %d", i)])
		}
	}
	if len(rows) != want {
		t.Fatalf("DLQ has %d rows, want %d", len(rows), want)
	}
	t.Logf("checked %d dead letters: each exactly once", want)
}

// replayCount sums numRecords over the adds of every JSON commit (ignoring
// checkpoints), for cross-checking the snapshot.
func replayCount(t testing.TB, url string) (int, int64) {
	ctx := context.Background()
	tbl, err := table.Open(ctx, url)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer tbl.Close()
	st := tbl.Store()
	n := 0
	last := int64(-1)
	for v := int64(0); ; v++ {
		data, err := st.Get(ctx, txlog.CommitKey(v))
		if err != nil {
			break
		}
		last = v
		acts, err := txlog.ParseCommit(data)
		if err != nil {
			t.Fatalf("commit %d: %v", v, err)
		}
		for _, a := range acts {
			if a.Add != nil {
				var s struct {
					NumRecords int `json:"numRecords"`
				}
				_ = json.Unmarshal([]byte(a.Add.Stats), &s)
				n += s.NumRecords
			}
			if a.Remove != nil {
				t.Errorf("commit %d removes %s", v, a.Remove.Path)
			}
		}
	}
	return n, last
}

// httpGet GETs url with the default client.
func httpGet(url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	return http.DefaultClient.Do(req)
}
