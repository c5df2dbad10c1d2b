package ingest

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"

	"github.com/kappa-lake/kappa/table"
)

// Dead-letter topic: exactly once without an idempotent producer.
//
// kafka-go has no idempotent or transactional producer, so a produce cannot
// be made conditional. Instead every letter of a source partition S goes to
// one DLQ partition D(S), and the main table remembers where in D(S) the
// letters S may still be missing start; before each produce the daemon reads
// D(S) back from there and produces only the letters not found:
//
//   - D(S) is recorded in the main table as txn "<app>-dlq-partition"
//     (<app> = "<app-id>-<topic>-<partition>", the source's offset appId). A
//     source with no record yet is placed by an FNV hash of its topic and
//     partition modulo the DLQ topic's partition count, so a restarted
//     daemon places it the same way.
//   - txn "<app>-dlq-offset" = P(S): every letter of S for a source offset
//     above the committed <app> txn is at a DLQ offset >= P(S). It is set by
//     the same commit that moves <app> to L (the batch's last offset) as
//     min(the end offset of D(S) seen by the read-back before producing, the
//     DLQ offset of the first letter found for a source offset > L): letters
//     produced later by this or any following owner of S are for offsets
//     > L and land after that end offset. Without a record the read-back
//     starts at the partition's earliest offset.
//   - Before producing S's letters for the batch (every attempt: retries in
//     the process and the first flush after a restart alike), D(S) is read
//     from P(S) to its end and letters whose source offset is already there
//     are skipped. Each chunk of letters is one produce request (RequiredAcks
//     all, no retries inside the client), so every retry goes through the
//     read-back and a lost produce response cannot duplicate.
//
// What is not covered: a daemon that lost its partitions without seeing the
// rebalance (a zombie) and produces while the new owner does; a produce
// request the broker applies only after the retry's read-back (longer than
// the retry backoff later); the DLQ topic's partition count changing
// between a crash and the first commit that records D(S). Consumers can
// still drop such duplicates by the kappa.topic, kappa.partition and
// kappa.offset headers.

// dlqPartitionSuffix and dlqOffsetSuffix name the main-table txns recording,
// per source partition, its DLQ partition and read-back position.
const (
	dlqPartitionSuffix = "-dlq-partition"
	dlqOffsetSuffix    = "-dlq-offset"
)

// Produce chunking: each chunk is one produce request (below the brokers'
// default 1 MiB message.max.bytes unless a single letter is bigger).
const (
	dlqChunkBytes   = 512 << 10
	dlqChunkRecords = 1000
	dlqFetchBytes   = 4 << 20
)

// dlqTopic produces dead letters to a Kafka topic exactly once (see above).
// It is used only by the generation's flusher goroutine.
type dlqTopic struct {
	topic  string
	client *kafka.Client
	dialer *kafka.Dialer
	broker []string
	log    *slog.Logger

	// placed is the DLQ partition chosen in this process for sources the
	// table has no record of yet.
	placed map[topicPartition]int
	// pending holds, per source appId, the position to record with the
	// commit of the batch whose letters were produced.
	pending map[string]dlqPending
}

// dlqPending is a position computed by a read-back for the batch that had
// committed offset expect and last offset last.
type dlqPending struct {
	part         int
	pos          int64
	expect, last int64
}

func newDLQTopic(o *Options, dialer *kafka.Dialer, mech sasl.Mechanism) *dlqTopic {
	return &dlqTopic{
		topic: o.DLQTopic,
		client: &kafka.Client{
			Addr:      kafka.TCP(o.Brokers...),
			Timeout:   10 * time.Second,
			Transport: &kafka.Transport{TLS: o.TLS, SASL: mech},
		},
		dialer:  dialer,
		broker:  o.Brokers,
		log:     o.Logger,
		placed:  map[topicPartition]int{},
		pending: map[string]dlqPending{},
	}
}

func (t *dlqTopic) Close() error {
	if tr, ok := t.client.Transport.(*kafka.Transport); ok {
		tr.CloseIdleConnections()
	}
	return nil
}

// dlqPartitionHash places a source partition on one of n DLQ partitions.
func dlqPartitionHash(tp topicPartition, n int) int {
	h := fnv.New32a()
	_, _ = io.WriteString(h, tp.topic)
	_, _ = h.Write([]byte{0})
	_, _ = io.WriteString(h, strconv.Itoa(tp.partition))
	return int(h.Sum32() % uint32(n))
}

// partitionFor returns the DLQ partition of a source partition: the one the
// table records, else the one placed in this process, else the hash.
func (t *dlqTopic) partitionFor(ctx context.Context, snap *table.Snapshot, ps *partState) (int, error) {
	if v, ok := snap.Txn(ps.app + dlqPartitionSuffix); ok {
		return int(v), nil
	}
	if p, ok := t.placed[ps.tp]; ok {
		return p, nil
	}
	counts, err := partitionCounts(ctx, t.dialer, t.broker, []string{t.topic})
	if err != nil {
		return 0, fmt.Errorf("read partitions of dead-letter topic %s: %w", t.topic, err)
	}
	n := counts[t.topic]
	if n <= 0 {
		return 0, fmt.Errorf("dead-letter topic %s does not exist", t.topic)
	}
	p := dlqPartitionHash(ps.tp, n)
	t.placed[ps.tp] = p
	return p, nil
}

// produceDeadTopic produces the partitions' dead letters to the DLQ topic,
// skipping those a read-back finds there already, and remembers the
// positions to record with the main commit.
func (g *generation) produceDeadTopic(ctx context.Context, with []*partState) error {
	t := g.d.dlt
	byPart := map[int][]*partState{}
	for _, ps := range with {
		p, err := t.partitionFor(ctx, g.snap, ps)
		if err != nil {
			return err
		}
		byPart[p] = append(byPart[p], ps)
	}
	parts := make([]int, 0, len(byPart))
	for p := range byPart {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	for _, p := range parts {
		if err := t.produceTo(ctx, g.snap, p, byPart[p]); err != nil {
			return err
		}
	}
	return nil
}

// scanState collects what a read-back finds for one source partition.
type scanState struct {
	ps       *partState
	lo, hi   int64          // source offsets of the batch's letters
	present  map[int64]bool // source offsets in [lo, hi] already in the DLQ
	minAfter int64          // DLQ offset of the first letter for a source offset > ps.last (-1: none)
}

// produceTo reads DLQ partition p back from the earliest recorded position
// of the sources, then produces the letters it did not find.
func (t *dlqTopic) produceTo(ctx context.Context, snap *table.Snapshot, p int, pss []*partState) error {
	first, end, err := t.offsets(ctx, p)
	if err != nil {
		return err
	}
	start := end
	want := map[topicPartition]*scanState{}
	for _, ps := range pss {
		pos, ok := snap.Txn(ps.app + dlqOffsetSuffix)
		if rp, rok := snap.Txn(ps.app + dlqPartitionSuffix); !ok || !rok || int(rp) != p || pos > end {
			// No record (or one from another partition, or beyond the end:
			// a recreated topic): read the whole partition.
			pos = first
		}
		start = min(start, max(pos, first))
		want[ps.tp] = &scanState{ps: ps, lo: ps.dead[0].offset, hi: ps.dead[len(ps.dead)-1].offset, present: map[int64]bool{}, minAfter: -1}
	}
	scanned, err := t.scan(ctx, p, start, end, want)
	if err != nil {
		return err
	}
	var recs []kafka.Record
	skipped := 0
	for _, ps := range pss {
		st := want[ps.tp]
		for _, l := range ps.dead {
			if st.present[l.offset] {
				skipped++
				continue
			}
			recs = append(recs, l.record())
		}
	}
	if skipped > 0 {
		t.log.Info("dead letters already in the DLQ topic; not producing them again",
			"topic", t.topic, "partition", p, "skipped", skipped, "read_back", scanned)
	}
	if err := t.produce(ctx, p, recs); err != nil {
		return err
	}
	for _, ps := range pss {
		st := want[ps.tp]
		pos := end
		if st.minAfter >= 0 {
			pos = min(pos, st.minAfter)
		}
		t.pending[ps.app] = dlqPending{part: p, pos: pos, expect: ps.expect, last: ps.last}
	}
	return nil
}

// offsets returns the first and end offsets of DLQ partition p.
func (t *dlqTopic) offsets(ctx context.Context, p int) (first, end int64, err error) {
	res, err := t.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{
		Topics: map[string][]kafka.OffsetRequest{t.topic: {kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p)}},
	})
	if err != nil {
		return 0, 0, fmt.Errorf("list offsets of %s/%d: %w", t.topic, p, err)
	}
	for _, po := range res.Topics[t.topic] {
		if po.Partition != p {
			continue
		}
		if po.Error != nil {
			return 0, 0, fmt.Errorf("list offsets of %s/%d: %w", t.topic, p, po.Error)
		}
		return po.FirstOffset, po.LastOffset, nil
	}
	return 0, 0, fmt.Errorf("list offsets of %s/%d: partition missing in the response", t.topic, p)
}

// errNoProgress reports a read-back fetch that returned nothing below the
// end offset it was reading to.
var errNoProgress = errors.New("fetch returned no records below the end offset")

// scan reads DLQ partition p over [start, end) and records, for the wanted
// source partitions, which letters are there. It returns the records read.
func (t *dlqTopic) scan(ctx context.Context, p int, start, end int64, want map[topicPartition]*scanState) (int64, error) {
	var n int64
	for off := start; off < end; {
		res, err := t.client.Fetch(ctx, &kafka.FetchRequest{
			Topic: t.topic, Partition: p, Offset: off,
			MinBytes: 1, MaxBytes: dlqFetchBytes, MaxWait: 500 * time.Millisecond,
		})
		if err == nil {
			err = res.Error
		}
		if err != nil {
			return n, fmt.Errorf("read back %s/%d at %d: %w", t.topic, p, off, err)
		}
		next := off
		for {
			rec, err := res.Records.ReadRecord()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return n, fmt.Errorf("read back %s/%d at %d: %w", t.topic, p, next, err)
			}
			if rec.Offset < off || rec.Offset >= end {
				continue
			}
			next = rec.Offset + 1
			n++
			tp, so, ok := letterSource(rec.Headers)
			if !ok {
				continue
			}
			st := want[tp]
			switch {
			case st == nil:
			case so >= st.lo && so <= st.hi:
				st.present[so] = true
			case so > st.ps.last && st.minAfter < 0:
				st.minAfter = rec.Offset
			}
		}
		if next == off {
			return n, fmt.Errorf("read back %s/%d at %d (end %d): %w", t.topic, p, off, end, errNoProgress)
		}
		off = next
	}
	return n, nil
}

// letterSource parses the source coordinates from a letter's headers.
func letterSource(hs []kafka.Header) (topicPartition, int64, bool) {
	var tp topicPartition
	var off int64
	found := 0
	for _, h := range hs {
		var err error
		switch h.Key {
		case "kappa.topic":
			tp.topic = string(h.Value)
			found++
		case "kappa.partition":
			tp.partition, err = strconv.Atoi(string(h.Value))
			found++
		case "kappa.offset":
			off, err = strconv.ParseInt(string(h.Value), 10, 64)
			found++
		}
		if err != nil {
			return tp, 0, false
		}
	}
	return tp, off, found == 3
}

// record is the letter as a Kafka record, with its source coordinates and
// the error in headers.
func (l *deadLetter) record() kafka.Record {
	ts := l.ts
	if ts.IsZero() {
		ts = time.Now()
	}
	r := kafka.Record{
		Time: ts,
		Headers: []kafka.Header{
			{Key: "kappa.topic", Value: []byte(l.topic)},
			{Key: "kappa.partition", Value: []byte(strconv.Itoa(l.partition))},
			{Key: "kappa.offset", Value: []byte(strconv.FormatInt(l.offset, 10))},
			{Key: "kappa.error", Value: []byte(l.err)},
		},
	}
	if l.key != nil {
		r.Key = kafka.NewBytes(l.key)
	}
	if l.value != nil {
		r.Value = kafka.NewBytes(l.value)
	}
	return r
}

func recordSize(r *kafka.Record) int {
	n := 64
	if r.Key != nil {
		n += r.Key.Len()
	}
	if r.Value != nil {
		n += r.Value.Len()
	}
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// produce writes recs to DLQ partition p, one request per chunk, in order,
// with no retry inside: a failed or unanswered chunk fails the call and the
// caller's retry reads back first.
func (t *dlqTopic) produce(ctx context.Context, p int, recs []kafka.Record) error {
	for len(recs) > 0 {
		n, size := 0, 0
		for n < len(recs) && n < dlqChunkRecords {
			s := recordSize(&recs[n])
			if n > 0 && size+s > dlqChunkBytes {
				break
			}
			size += s
			n++
		}
		res, err := t.client.Produce(ctx, &kafka.ProduceRequest{
			Topic:        t.topic,
			Partition:    p,
			RequiredAcks: kafka.RequireAll,
			Records:      kafka.NewRecordReader(recs[:n]...),
		})
		if err == nil && res != nil {
			err = res.Error
			for i, rerr := range res.RecordErrors {
				err = errors.Join(err, fmt.Errorf("record %d: %w", i, rerr))
			}
		}
		if err != nil {
			return fmt.Errorf("produce %d dead letters to %s/%d: %w", n, t.topic, p, err)
		}
		recs = recs[n:]
	}
	return nil
}

// addTxns adds to txns the DLQ partition and position of each pending
// partition whose letters a read-back placed for this batch. A position
// computed for an earlier, dropped or smaller batch is not used: the table
// keeps its older (still valid) one.
func (t *dlqTopic) addTxns(pend []*partState, txns map[string]int64) {
	for _, ps := range pend {
		pp, ok := t.pending[ps.app]
		if !ok || pp.expect != ps.expect || ps.last < pp.last {
			continue
		}
		txns[ps.app+dlqPartitionSuffix] = int64(pp.part)
		txns[ps.app+dlqOffsetSuffix] = pp.pos
	}
}

// committed forgets the positions the commit of pend recorded.
func (t *dlqTopic) committed(pend []*partState) {
	for _, ps := range pend {
		delete(t.pending, ps.app)
	}
}
