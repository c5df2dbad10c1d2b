package ingest

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kappa-lake/kappa/internal/store"
)

// slowCommits is a store whose commit writes (put-if-absent under
// _delta_log/) wait before landing.
type slowCommits struct {
	store.Store
	delay time.Duration
}

func (s *slowCommits) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	if strings.HasPrefix(key, "_delta_log/") {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.Store.PutIfAbsent(ctx, key, data)
}

// startCluster starts an in-process broker with the source topic (srcParts
// partitions) and the DLQ topic (dlqParts partitions).
func startCluster(t testing.TB, src string, srcParts int32, dlq string, dlqParts int32) (*kfake.Cluster, []string) {
	t.Helper()
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.SeedTopics(srcParts, src),
		kfake.SeedTopics(dlqParts, dlq),
		kfake.GroupMinSessionTimeout(100*time.Millisecond),
	)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c, c.ListenAddrs()
}

// topicLetter is one record read back from a DLQ topic.
type topicLetter struct {
	part   int   // DLQ partition
	offset int64 // DLQ offset
	src    topicPartition
	srcOff int64
	value  string
	err    string
}

// readDLQTopic reads every record of the topic, partition by partition, up
// to the end offsets seen when called.
func readDLQTopic(t testing.TB, brokers []string, topic string) []topicLetter {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := partitionOffsets(ctx, &kafka.Dialer{Timeout: 5 * time.Second}, brokers, []string{topic})
	if err != nil {
		t.Fatalf("offsets of %s: %v", topic, err)
	}
	var out []topicLetter
	for tp, r := range ends {
		if r.end <= r.first {
			continue
		}
		rd := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: tp.partition, MaxWait: 100 * time.Millisecond})
		if err := rd.SetOffset(r.first); err != nil {
			t.Fatal(err)
		}
		for {
			m, err := rd.FetchMessage(ctx)
			if err != nil {
				t.Fatalf("read %s: %v", tp, err)
			}
			l := topicLetter{part: tp.partition, offset: m.Offset, value: string(m.Value)}
			for _, h := range m.Headers {
				switch h.Key {
				case "kappa.topic":
					l.src.topic = string(h.Value)
				case "kappa.partition":
					l.src.partition, _ = strconv.Atoi(string(h.Value))
				case "kappa.offset":
					l.srcOff, _ = strconv.ParseInt(string(h.Value), 10, 64)
				case "kappa.error":
					l.err = string(h.Value)
				}
			}
			out = append(out, l)
			if m.Offset >= r.end-1 {
				break
			}
		}
		_ = rd.Close()
	}
	return out
}

// checkDLQTopic asserts the DLQ topic holds each bad message of 0..n-1
// exactly once (by source partition and offset, and by payload), with its
// source and reason in headers, all letters of a source partition in one
// DLQ partition.
func checkDLQTopic(t testing.TB, brokers []string, dlq, src string, n int, bad func(int) bool) []topicLetter {
	t.Helper()
	letters := readDLQTopic(t, brokers, dlq)
	want := 0
	for i := 0; i < n; i++ {
		if bad(i) {
			want++
		}
	}
	bySource := map[[2]int64]topicLetter{}
	byValue := map[string]int{}
	placed := map[int]int{}
	dups := 0
	for _, l := range letters {
		k := [2]int64{int64(l.src.partition), l.srcOff}
		if prev, ok := bySource[k]; ok {
			dups++
			if dups < 5 {
				t.Errorf("dead letter of %s@%d twice: DLQ %d@%d and %d@%d", l.src, l.srcOff, prev.part, prev.offset, l.part, l.offset)
			}
		}
		bySource[k] = l
		byValue[l.value]++
		if l.src.topic != src || !strings.Contains(l.err, "not a JSON object") {
			t.Errorf("dead letter %q: source %s, reason %q", l.value, l.src, l.err)
		}
		if p, ok := placed[l.src.partition]; ok && p != l.part {
			t.Errorf("letters of source partition %d in DLQ partitions %d and %d", l.src.partition, p, l.part)
		}
		placed[l.src.partition] = l.part
	}
	missing := 0
	for i := 0; i < n; i++ {
		if bad(i) && byValue[fmt.Sprintf("bad message %d", i)] != 1 {
			missing++
			if missing < 5 {
				t.Errorf("bad message %d in the DLQ topic %d times", i, byValue[fmt.Sprintf("bad message %d", i)])
			}
		}
	}
	if len(letters) != want || dups > 0 || missing > 0 {
		t.Fatalf("DLQ topic has %d letters for %d bad messages: %d duplicates, %d missing or repeated", len(letters), want, dups, missing)
	}
	t.Logf("checked %d dead letters in topic %s: each exactly once; source partition -> DLQ partition %v", want, dlq, placed)
	return letters
}

// checkDLQTxns asserts the table records a DLQ partition and read-back
// position for every source partition that had letters, consistent with
// where the letters are.
func checkDLQTxns(t testing.TB, url, src string, letters []topicLetter) {
	t.Helper()
	_, snap := readRows(t, url)
	endPos := map[int]int64{} // DLQ partition -> offset after its last letter
	for _, l := range letters {
		endPos[l.part] = max(endPos[l.part], l.offset+1)
	}
	for _, l := range letters {
		app := appID("test", topicPartition{src, l.src.partition})
		p, ok := snap.Txn(app + dlqPartitionSuffix)
		if !ok || int(p) != l.part {
			t.Fatalf("%s: dlq partition txn %d (%v), letters in %d", app, p, ok, l.part)
		}
		pos, ok := snap.Txn(app + dlqOffsetSuffix)
		if !ok || pos < 0 || pos > endPos[l.part] {
			t.Fatalf("%s: dlq offset txn %d (%v)", app, pos, ok)
		}
	}
}

// TestDLQTopicExactlyOnce: malformed messages mixed in, several flushes,
// with a DLQ topic whose partition count differs from the source's; every
// bad message lands once in the topic, every good one once in the table.
func TestDLQTopicExactlyOnce(t *testing.T) {
	_, brokers := startCluster(t, "src", 3, "dead", 2)
	url := filepath.Join(t.TempDir(), "src")
	w := newProducer(brokers, "src")
	defer w.Close()
	const n = 1500
	bad := func(i int) bool { return i%17 == 3 }
	produceMixed(t, w, 0, n, bad)
	o := testOptions(t, brokers, url, "src")
	o.DLQTopic = "dead"
	o.UntilEnd = true
	o.FlushRows = 100
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := Run(ctx, o); err != nil {
		t.Fatal(err)
	}
	checkRows(t, url, n, "test", "src", bad)
	letters := checkDLQTopic(t, brokers, "dead", "src", n, bad)
	checkDLQTxns(t, url, "src", letters)
	if got := o.Metrics.RecordsDeadLettered.Load(); got != int64(len(letters)) {
		t.Errorf("dead-lettered metric %d, want %d", got, len(letters))
	}
	// A second daemon on the same table continues where the first stopped:
	// no letter produced again, the new ones once.
	produceMixed(t, w, n, n+300, bad)
	o2 := testOptions(t, brokers, url, "src")
	o2.DLQTopic = "dead"
	o2.UntilEnd = true
	if err := Run(ctx, o2); err != nil {
		t.Fatal(err)
	}
	checkRows(t, url, n+300, "test", "src", bad)
	checkDLQTopic(t, brokers, "dead", "src", n+300, bad)
}

// TestDLQTopicLostProduceResponses: the broker applies produce requests to
// the DLQ topic but answers REQUEST_TIMED_OUT (a lost response); the
// retries must find the letters already there instead of producing them
// again.
func TestDLQTopicLostProduceResponses(t *testing.T) {
	c, brokers := startCluster(t, "src", 2, "dead", 3)
	url := filepath.Join(t.TempDir(), "src")
	w := newProducer(brokers, "src")
	defer w.Close()
	const n = 800
	bad := func(i int) bool { return i%9 == 4 }
	produceMixed(t, w, 0, n, bad)
	lost := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "dead", Err: kerr.RequestTimedOut, Count: 4})
	o := testOptions(t, brokers, url, "src")
	o.DLQTopic = "dead"
	o.UntilEnd = true
	o.FlushRows = 60
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := Run(ctx, o); err != nil {
		t.Fatal(err)
	}
	if lost.Hits() != 4 {
		t.Fatalf("%d produce responses lost, want 4", lost.Hits())
	}
	t.Logf("%d produce requests applied but answered REQUEST_TIMED_OUT; %d flush errors retried", lost.Hits(), o.Metrics.Errors.Load())
	checkRows(t, url, n, "test", "src", bad)
	letters := checkDLQTopic(t, brokers, "dead", "src", n, bad)
	if got := o.Metrics.RecordsDeadLettered.Load(); got != int64(len(letters)) {
		t.Errorf("dead-lettered metric %d, want %d", got, len(letters))
	}
}

// TestDLQTopicCrashBeforeCommit: the daemon produces a batch's letters,
// then every main-table commit fails and it stops (a crash between the
// produce and the commit). A new daemon with smaller batches reads the
// records again: it must find the letters already produced, across several
// of its batches, and produce only the rest.
func TestDLQTopicCrashBeforeCommit(t *testing.T) {
	_, brokers := startCluster(t, "src", 2, "dead", 2)
	url := filepath.Join(t.TempDir(), "src")
	w := newProducer(brokers, "src")
	defer w.Close()
	const n = 1200
	bad := func(i int) bool { return i%7 == 2 }
	produceMixed(t, w, 0, n, bad)

	var main *failCommits
	o := testOptions(t, brokers, url, "src")
	o.DLQTopic = "dead"
	o.FlushRows = 500
	o.FlushInterval = time.Hour
	o.ShutdownTimeout = 300 * time.Millisecond
	o.wrapStore = func(st store.Store) store.Store {
		main = &failCommits{Store: st}
		return main
	}
	d, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	main.fail.Store(true) // the table exists; from now on no commit lands
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for main.fails.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_ = d.Close()
	if main.fails.Load() < 3 {
		t.Fatalf("only %d failed commits", main.fails.Load())
	}
	before := readDLQTopic(t, brokers, "dead")
	if len(before) == 0 {
		t.Fatal("the first daemon produced no letters before its commits failed")
	}
	if rows := rowCount(t, url); rows != 0 {
		t.Fatalf("table has %d rows; no commit should have landed", rows)
	}
	t.Logf("first daemon: %d letters produced, %d commits failed, then stopped", len(before), main.fails.Load())

	o2 := testOptions(t, brokers, url, "src")
	o2.DLQTopic = "dead"
	o2.UntilEnd = true
	o2.FlushRows = 37 // batches smaller than the first daemon's
	rctx, rcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer rcancel()
	if err := Run(rctx, o2); err != nil {
		t.Fatal(err)
	}
	checkRows(t, url, n, "test", "src", bad)
	letters := checkDLQTopic(t, brokers, "dead", "src", n, bad)
	checkDLQTxns(t, url, "src", letters)
	if o2.Metrics.Commits.Load() < 10 {
		t.Errorf("second daemon made %d commits; the test wants many small batches", o2.Metrics.Commits.Load())
	}
}

// TestDLQTopicKill9 kills daemon subprocesses with a DLQ topic at random
// moments while bad messages are mixed in; the table and the DLQ topic must
// each hold every message exactly once. The killed daemons commit slowly,
// so many kills land after a batch's letters were produced and before its
// commit.
func TestDLQTopicKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kill -9 test in -short mode")
	}
	_, brokers := startCluster(t, "crash", 4, "crash-dlq", 3)
	url := filepath.Join(t.TempDir(), "crash")
	w := newProducer(brokers, "crash")
	defer w.Close()
	const total = 12000
	bad := func(i int) bool { return i%23 == 7 }
	cfg := childConfig{Brokers: brokers, Topic: "crash", DLQTopic: "crash-dlq", Table: url, CommitDelay: 150 * time.Millisecond}
	killRun(t, cfg, w, total, bad, 14, 30*time.Second)
	checkRows(t, url, total, "test", "crash", bad)
	letters := checkDLQTopic(t, brokers, "crash-dlq", "crash", total, bad)
	checkDLQTxns(t, url, "crash", letters)
}
