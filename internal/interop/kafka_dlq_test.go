//go:build interop

package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// badMessage is one malformed message the producer injected
// (kafka_produce.py --bad-every).
type badMessage struct {
	I         int    `json:"i"`
	Kind      string `json:"kind"`
	Partition int    `json:"partition"`
	Offset    int64  `json:"offset"`
	Value     string `json:"value"`
	Timestamp int64  `json:"timestamp"` // ms, -1 when the broker gave none
}

// startMixedProducer is startProducer with every badEvery-th message
// malformed; after wait, badMessages lists them.
func startMixedProducer(t *testing.T, py, bootstrap, topic string, partitions, count, chunk, pauseMs, badEvery int) *producer {
	t.Helper()
	createTopic(t, py, bootstrap, topic, partitions)
	p := &producer{done: make(chan error, 1)}
	p.cmd = exec.CommandContext(t.Context(), py, script("kafka_produce.py"), "--bootstrap", bootstrap,
		"--topic", topic, "--partitions", fmt.Sprint(partitions), "--count", fmt.Sprint(count),
		"--chunk", fmt.Sprint(chunk), "--pause-ms", fmt.Sprint(pauseMs), "--bad-every", fmt.Sprint(badEvery))
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.errb
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	return p
}

// badMessages returns the malformed messages a finished producer reported.
func (p *producer) badMessages(t *testing.T) []badMessage {
	t.Helper()
	var res struct {
		Bad []badMessage `json:"bad"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(p.out.Bytes()), &res); err != nil {
		t.Fatalf("producer output %q: %v", p.out.String(), err)
	}
	return res.Bad
}

// createTopic creates a topic with the given partition count.
func createTopic(t *testing.T, py, bootstrap, topic string, partitions int) {
	t.Helper()
	create := exec.CommandContext(t.Context(), py, script("kafka_produce.py"), "--bootstrap", bootstrap,
		"--topic", topic, "--partitions", fmt.Sprint(partitions), "--count", "0")
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("create topic %s: %v: %s", topic, err, tail(string(out), 20))
	}
}

// topicRecord is one record read back from a topic.
type topicRecord struct {
	Partition int
	Offset    int64
	Key       string
	Value     string
	Time      time.Time
	Headers   map[string]string
	Repeated  []string // header keys seen more than once
}

// readTopic reads every record of partitions 0..partitions-1 of a topic
// (kafka-go), up to the end offsets seen when called.
func readTopic(ctx context.Context, t *testing.T, bootstrap, topic string, partitions int) []topicRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(bootstrap), Timeout: 10 * time.Second}
	var reqs []kafka.OffsetRequest
	for p := range partitions {
		reqs = append(reqs, kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		t.Fatalf("list offsets of %s: %v", topic, err)
	}
	if got := len(res.Topics[topic]); got != partitions {
		t.Fatalf("list offsets of %s: %d partitions in the answer, want %d", topic, got, partitions)
	}
	var out []topicRecord
	for _, po := range res.Topics[topic] {
		if po.Error != nil {
			t.Fatalf("list offsets of %s/%d: %v", topic, po.Partition, po.Error)
		}
		if po.LastOffset <= po.FirstOffset {
			continue
		}
		rd := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{bootstrap}, Topic: topic, Partition: po.Partition,
			MaxWait: 100 * time.Millisecond})
		if err := rd.SetOffset(po.FirstOffset); err != nil {
			t.Fatal(err)
		}
		for {
			m, err := rd.FetchMessage(ctx)
			if err != nil {
				_ = rd.Close()
				t.Fatalf("read %s/%d: %v", topic, po.Partition, err)
			}
			r := topicRecord{Partition: m.Partition, Offset: m.Offset, Key: string(m.Key), Value: string(m.Value),
				Time: m.Time, Headers: map[string]string{}}
			for _, h := range m.Headers {
				if _, ok := r.Headers[h.Key]; ok {
					r.Repeated = append(r.Repeated, h.Key)
				}
				r.Headers[h.Key] = string(h.Value)
			}
			out = append(out, r)
			if m.Offset >= po.LastOffset-1 {
				break
			}
		}
		if err := rd.Close(); err != nil {
			t.Errorf("close reader of %s/%d: %v", topic, po.Partition, err)
		}
	}
	return out
}

// checkGoodRows checks that the table holds every good message (id not in
// bad) exactly once at its partition and offset (message i at partition
// i%parts, offset i/parts), nothing else, and that the partitions' txns are
// at their last offsets. It returns the rows.
func checkGoodRows(ctx context.Context, t *testing.T, url, app, topic string, p *producer, parts int, bad map[int]badMessage) int {
	t.Helper()
	snap := latestSnapshot(ctx, t, url)
	ids := map[int64]int{}
	rows, misplaced := 0, 0
	for _, r := range ingestedRows(ctx, t, snap) {
		rows++
		ids[r.id]++
		if r.partition != r.id%int64(parts) || r.offset != r.id/int64(parts) {
			misplaced++
			if misplaced <= 3 {
				t.Errorf("message id %d is in the table as partition %d offset %d, want %d/%d", r.id, r.partition, r.offset, r.id%int64(parts), r.id/int64(parts))
			}
		}
	}
	dups, lost, stray := 0, 0, 0
	for id, n := range ids {
		if _, isBad := bad[int(id)]; isBad || id < 0 || id >= int64(p.result.Count) {
			stray += n
			if stray <= 3 {
				t.Errorf("id %d in the table %d times, but it is not a good message", id, n)
			}
		}
	}
	for i := range p.result.Count {
		if _, isBad := bad[i]; isBad {
			continue
		}
		switch n := ids[int64(i)]; {
		case n == 0:
			lost++
			if lost <= 3 {
				t.Errorf("good message %d is missing from the table", i)
			}
		case n > 1:
			dups += n - 1
			if dups <= 3 {
				t.Errorf("good message %d is in the table %d times", i, n)
			}
		}
	}
	for part := range parts {
		n := int64(p.result.PerPartition[fmt.Sprint(part)])
		app := fmt.Sprintf("%s-%s-%d", app, topic, part)
		if v, ok := snap.Txn(app); !ok || v != n-1 {
			t.Errorf("txn %s = %d (present %v), want %d", app, v, ok, n-1)
		}
	}
	if want := p.result.Count - len(bad); rows != want || dups+lost+stray+misplaced != 0 {
		t.Errorf("table has %d rows for %d good messages: %d duplicates, %d lost, %d not good, %d misplaced",
			rows, want, dups, lost, stray, misplaced)
	}
	return rows
}

// checkDeadLetters checks that the DLQ topic holds every bad message exactly
// once, as a dead letter naming its source topic, partition and offset with
// the raw key, value and timestamp and the reason, all letters of a source
// partition in one DLQ partition, and that the table's dlq txns agree with
// where the letters are. It returns the source -> DLQ partition placement.
func checkDeadLetters(ctx context.Context, t *testing.T, url, app, src string, letters []topicRecord, bad []badMessage) map[int]int {
	t.Helper()
	type so struct {
		p int
		o int64
	}
	want := map[so]badMessage{}
	for _, b := range bad {
		want[so{b.Partition, b.Offset}] = b
	}
	seen := map[so]topicRecord{}
	placed := map[int]int{}
	endPos := map[int]int64{} // DLQ partition -> offset after its last letter
	dups, stray, wrong := 0, 0, 0
	for _, l := range letters {
		sp, err1 := strconv.Atoi(l.Headers["kappa.partition"])
		sOff, err2 := strconv.ParseInt(l.Headers["kappa.offset"], 10, 64)
		if err1 != nil || err2 != nil || l.Headers["kappa.topic"] != src || len(l.Repeated) > 0 {
			stray++
			t.Errorf("DLQ record %d@%d has bad source headers %v (repeated %v)", l.Partition, l.Offset, l.Headers, l.Repeated)
			continue
		}
		k := so{sp, sOff}
		endPos[l.Partition] = max(endPos[l.Partition], l.Offset+1)
		if prev, ok := seen[k]; ok {
			dups++
			if dups <= 3 {
				t.Errorf("dead letter of %s/%d@%d twice: DLQ %d@%d and %d@%d", src, sp, sOff, prev.Partition, prev.Offset, l.Partition, l.Offset)
			}
			continue
		}
		seen[k] = l
		if p, ok := placed[sp]; ok && p != l.Partition {
			t.Errorf("letters of source partition %d in DLQ partitions %d and %d", sp, p, l.Partition)
		}
		placed[sp] = l.Partition
		b, ok := want[k]
		if !ok {
			stray++
			if stray <= 3 {
				t.Errorf("DLQ record %d@%d for %s/%d@%d, which is not a bad message: %q", l.Partition, l.Offset, src, sp, sOff, l.Value)
			}
			continue
		}
		reason := "message is not a JSON object"
		if b.Kind == "string-id" || b.Kind == "fraction-id" {
			reason = "message does not fit the table schema: column id"
		}
		var problems []string
		if l.Value != b.Value {
			problems = append(problems, fmt.Sprintf("value %q, want %q", l.Value, b.Value))
		}
		if l.Key != strconv.Itoa(b.I) {
			problems = append(problems, fmt.Sprintf("key %q, want %q", l.Key, strconv.Itoa(b.I)))
		}
		if e := l.Headers["kappa.error"]; !strings.Contains(e, reason) {
			problems = append(problems, fmt.Sprintf("kappa.error %q does not say %q", e, reason))
		}
		if b.Timestamp >= 0 && l.Time.UnixMilli() != b.Timestamp {
			problems = append(problems, fmt.Sprintf("timestamp %s, want the source's %s", l.Time.UTC(), time.UnixMilli(b.Timestamp).UTC()))
		}
		if len(problems) > 0 {
			wrong++
			if wrong <= 5 {
				t.Errorf("dead letter of bad message %d (%s, %s/%d@%d): %s", b.I, b.Kind, src, sp, sOff, strings.Join(problems, "; "))
			}
		}
	}
	missing := 0
	for k, b := range want {
		if _, ok := seen[k]; !ok {
			missing++
			if missing <= 3 {
				t.Errorf("bad message %d (%s, %s/%d@%d) is not in the DLQ topic", b.I, b.Kind, src, k.p, k.o)
			}
		}
	}
	if len(letters) != len(bad) || dups+stray+missing+wrong != 0 {
		t.Errorf("DLQ topic has %d letters for %d bad messages: %d duplicates, %d stray, %d missing, %d with wrong fields",
			len(letters), len(bad), dups, stray, missing, wrong)
	}

	snap := latestSnapshot(ctx, t, url)
	for sp, dp := range placed {
		a := fmt.Sprintf("%s-%s-%d", app, src, sp)
		if p, ok := snap.Txn(a + "-dlq-partition"); !ok || int(p) != dp {
			t.Errorf("txn %s-dlq-partition = %d (present %v), but the letters are in DLQ partition %d", a, p, ok, dp)
		}
		if pos, ok := snap.Txn(a + "-dlq-offset"); !ok || pos < 0 || pos > endPos[dp] {
			t.Errorf("txn %s-dlq-offset = %d (present %v), want within [0, %d]", a, pos, ok, endPos[dp])
		}
	}
	return placed
}

var skippedRe = regexp.MustCompile(`dead letters already in the DLQ topic.* skipped=(\d+)`)

// skippedLetters sums what the daemon's log says it found in the DLQ topic
// already and did not produce again.
func (d *daemon) skippedLetters() int {
	b, _ := os.ReadFile(d.log)
	n := 0
	for _, m := range skippedRe.FindAllSubmatch(b, -1) {
		v, _ := strconv.Atoi(string(m[1]))
		n += v
	}
	return n
}

// TestKafkaDLQTopic: `kappa ingest --dlq-topic` against a real Kafka broker:
// a stream mixing good JSON messages with malformed ones (not JSON, not an
// object, values the schema rejects) is ingested by a daemon SIGKILLed
// mid-stream several times, then finished with --until-end. Every good
// message must be in the table exactly once and every malformed one in the
// DLQ topic exactly once, with its source coordinates, raw key and value,
// timestamp and error text.
func TestKafkaDLQTopic(t *testing.T) {
	ctx := t.Context()
	py := python(t)
	if out, err := exec.CommandContext(ctx, kappaBin, "ingest", "--help").CombinedOutput(); !bytes.Contains(out, []byte("-dlq-topic")) {
		record("kafka", "kappa ingest --dlq-topic", "-", "SKIP: ingest --dlq-topic not available")
		t.Skipf("kappa ingest --dlq-topic not available: %v: %s", err, out)
	}
	started := time.Now()
	bootstrap := startKafka(t)
	t.Logf("kafka broker on %s ready in %s", bootstrap, time.Since(started).Round(time.Millisecond))

	// The DLQ topic has fewer partitions than the source, so one DLQ
	// partition interleaves the letters of two source partitions.
	const (
		n, parts, dlqParts   = 12000, 3, 2
		badEvery, kills      = 23, 3
		src, dlq, app        = "dlq-src", "dlq-dead", "interop-dlq"
		chunk, pauseMs, rows = 400, 500, 300
	)
	createTopic(t, py, bootstrap, dlq, dlqParts)
	url := filepath.Join(t.TempDir(), "mixed")
	prod := startMixedProducer(t, py, bootstrap, src, parts, n, chunk, pauseMs, badEvery)
	flags := []string{"--dlq-topic", dlq, "--flush-rows", fmt.Sprint(rows)}
	skipped := 0
	midStream := killMidStream(ctx, t, url, kills, prod, func(k int) *daemon {
		return startIngest(t, fmt.Sprintf("dlq-%d", k), url, bootstrap, src, app, flags...)
	}, func(d *daemon) { skipped += d.skippedLetters() })
	prod.wait(t)
	bad := prod.badMessages(t)
	final := startIngest(t, "dlq-final", url, bootstrap, src, app, append(flags, "--until-end")...)
	waitUntilEnd(t, final, 3*time.Minute, time.Now())
	skipped += final.skippedLetters()

	// the producer's layout, which checkGoodRows relies on
	badByID := map[int]badMessage{}
	kinds := map[string]int{}
	for _, b := range bad {
		badByID[b.I] = b
		kinds[b.Kind]++
		if b.Partition != b.I%parts || b.Offset != int64(b.I/parts) {
			t.Fatalf("bad message %d landed at %d@%d, want %d@%d", b.I, b.Partition, b.Offset, b.I%parts, b.I/parts)
		}
	}
	if len(bad) != n/badEvery+boolInt(n%badEvery > badEvery/2) || len(kinds) != 4 {
		t.Fatalf("producer reported %d bad messages of kinds %v for %d messages, bad every %d", len(bad), kinds, n, badEvery)
	}
	good := checkGoodRows(ctx, t, url, app, src, prod, parts, badByID)
	letters := readTopic(ctx, t, bootstrap, dlq, dlqParts)
	placed := checkDeadLetters(ctx, t, url, app, src, letters, bad)
	if _, err := os.Stat(url + "_dlq"); !os.IsNotExist(err) {
		t.Errorf("a dead-letter table %s_dlq exists (err %v); with --dlq-topic there should be none", url, err)
	}
	t.Logf("%d good rows, %d dead letters %v placed %v; %d letters found by read-back and not produced again",
		good, len(letters), kinds, placed, skipped)
	record("kafka", "Apache Kafka 3.9.1 -> kappa ingest --dlq-topic",
		fmt.Sprintf("%d good rows + %d dead letters (topic, %d->%d partitions), %d SIGKILLs (%d mid-stream), %d re-read letters skipped",
			good, len(letters), parts, dlqParts, kills, midStream, skipped),
		passFail(!t.Failed()))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
