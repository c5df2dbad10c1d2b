package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/kappa-lake/kappa/internal/pq"
	"github.com/kappa-lake/kappa/table"
	"github.com/kappa-lake/kappa/txlog"
)

// Daemon consumes Kafka topics into a Delta table with exactly-once
// semantics: see the package documentation.
type Daemon struct {
	opts   Options
	log    *slog.Logger
	m      *Metrics
	dialer *kafka.Dialer

	tbl *table.Table
	dlq *table.Table // dead-letter table, nil with a DLQ topic
	dlt *dlqTopic    // dead-letter topic producer, nil with a DLQ table

	dec atomic.Pointer[decoder]

	ends map[topicPartition]offsetRange // UntilEnd targets

	maint *maintainer // background checkpoints and log cleanup

	srv *http.Server
}

// New validates the options, connects to the brokers once (failing with
// ErrBrokerAuth when they reject the credentials or the TLS handshake, so a
// misconfigured daemon creates no table), opens (or creates) the table and
// the dead-letter table, and returns a daemon ready to Run.
func New(ctx context.Context, opts Options) (*Daemon, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	dialer, mech, err := newDialer(&opts)
	if err != nil {
		return nil, err
	}
	d := &Daemon{opts: opts, log: opts.Logger, m: opts.Metrics, dialer: dialer}
	if err := d.checkBrokers(ctx); err != nil {
		return nil, err
	}
	if err := d.openTables(ctx); err != nil {
		return nil, err
	}
	if opts.DLQTopic != "" {
		d.dlt = newDLQTopic(&d.opts, dialer, mech)
	}
	return d, nil
}

// Run consumes until ctx is cancelled (then flushes, commits and returns nil
// within the shutdown timeout) or, with UntilEnd, until every partition is
// committed up to the end offsets seen at start.
func Run(ctx context.Context, opts Options) error {
	d, err := New(ctx, opts)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Run(ctx)
}

// Metrics returns the daemon's metrics registry.
func (d *Daemon) Metrics() *Metrics { return d.m }

// Table returns the destination table.
func (d *Daemon) Table() *table.Table { return d.tbl }

// Close releases the tables, the DLQ writer and the metrics server.
func (d *Daemon) Close() error {
	var errs []error
	errs = append(errs, d.tbl.Close())
	if d.dlq != nil {
		errs = append(errs, d.dlq.Close())
	}
	if d.dlt != nil {
		errs = append(errs, d.dlt.Close())
	}
	if d.srv != nil {
		errs = append(errs, d.srv.Close())
	}
	return errors.Join(errs...)
}

// Run is the daemon's main loop: one consumer-group generation after another.
func (d *Daemon) Run(ctx context.Context) error {
	o := &d.opts
	d.maint = newMaintainer(d)
	defer d.maint.stop(o.ShutdownTimeout)
	if o.MetricsAddr != "" && d.srv == nil {
		ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", o.MetricsAddr)
		if err != nil {
			return fmt.Errorf("metrics listener %s: %w", o.MetricsAddr, err)
		}
		d.srv = &http.Server{Handler: d.m.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = d.srv.Serve(ln) }()
		d.log.Info("serving metrics", "addr", ln.Addr().String())
	}
	if o.UntilEnd {
		ends, err := partitionOffsets(ctx, d.dialer, o.Brokers, o.Topics)
		if err != nil {
			return err
		}
		d.ends = ends
		if done, err := d.reachedEnd(ctx); err != nil {
			return err
		} else if done {
			d.log.Info("table already holds every record up to the end offsets")
			return nil
		}
	}
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                o.Group,
		Brokers:           o.Brokers,
		Dialer:            d.dialer,
		Topics:            o.Topics,
		HeartbeatInterval: o.HeartbeatInterval,
		SessionTimeout:    o.SessionTimeout,
		RebalanceTimeout:  o.RebalanceTimeout,
		JoinGroupBackoff:  time.Second,
		StartOffset:       kafka.FirstOffset,
		ErrorLogger:       kafkaLogger{log: d.log.Debug, escalate: d.log.Error, where: "group"},
	})
	if err != nil {
		return fmt.Errorf("consumer group %s: %w", o.Group, err)
	}
	defer cg.Close()
	d.log.Info("ingest starting", "table", d.tbl.URL(), "topics", o.Topics, "group", o.Group, "app_id", o.AppID)
	for {
		// Partition counts read before joining: the generation's assignment
		// is made after this, so a change the watcher sees later (a topic
		// created, partitions added) can only be one the assignment may have
		// missed. kafka-go's own watcher compares against a read made after
		// the assignment, which misses a topic created in between, and
		// rejoins in a tight loop while a topic does not exist.
		counts, cerr := partitionCounts(ctx, d.dialer, o.Brokers, o.Topics)
		if cerr != nil {
			d.log.Debug("read partition counts", "err", cerr)
		}
		gen, err := cg.Next(ctx)
		if ctx.Err() != nil {
			d.log.Info("ingest stopped")
			return nil
		}
		if err != nil {
			d.m.Errors.Add(1)
			d.log.Warn("consumer group", "err", err)
			continue
		}
		if counts != nil {
			gen.Start(func(gctx context.Context) { d.watchPartitions(gctx, counts) })
		}
		finished, err := d.runGeneration(ctx, gen)
		if err != nil {
			return err
		}
		if finished {
			d.log.Info("reached the end offsets; done")
			return nil
		}
		if ctx.Err() != nil {
			d.log.Info("ingest stopped")
			return nil
		}
	}
}

// record is one consumed message, decoded in its partition goroutine.
type record struct {
	tp     topicPartition
	epoch  uint64
	offset int64
	key    []byte
	value  []byte
	ts     time.Time
	hwm    int64
	dec    decoded
}

// handoffBatch bounds the records a partition goroutine hands to the
// flusher at once; handoffQueue bounds the batches queued, so at most about
// handoffBatch*handoffQueue decoded records wait for the flusher
// (backpressure).
const (
	handoffBatch = 256
	handoffQueue = 16
)

// batchPool recycles handoff batches (their records cleared).
var batchPool = sync.Pool{New: func() any { return new([]record) }}

func getBatch() *[]record {
	b := batchPool.Get().(*[]record)
	*b = (*b)[:0]
	return b
}

func putBatch(b *[]record) {
	clear(*b)
	*b = (*b)[:0]
	batchPool.Put(b)
}

// partState is the per-partition state of one generation, owned by the
// generation's flusher goroutine except where noted.
type partState struct {
	tp     topicPartition
	app    string
	expect int64 // txn version this daemon last saw committed for app (-1: none)
	dlqTxn int64 // txn version in the DLQ table (-1: none); letters at <= it are already there
	origin int64 // where the partition started when the table had no txn
	next   int64 // next offset expected from the reader
	last   int64 // last offset buffered (expect when nothing buffered)
	rows   int   // rows of this partition in the open writer
	dead   []*deadLetter
	halted bool // stop buffering (interrupted schema change)

	// logStart is the partition's first offset at generation start (-1:
	// unknown), for the lag of a partition never committed.
	logStart int64

	// hwm is the highest high-water mark seen in records (for the lag).
	hwm int64

	// reader control, shared with the partition goroutine under mu.
	mu       sync.Mutex
	epoch    uint64
	seekTo   int64
	cancelFn context.CancelFunc
}

func (p *partState) pending() bool { return p.last > p.expect }

// resume is the offset to read from when the buffer is dropped.
func (p *partState) resume() int64 {
	if p.expect >= 0 {
		return p.expect + 1
	}
	return p.origin
}

// reseek points the partition's reader at offset and bumps its epoch so
// records already in flight are discarded.
func (p *partState) reseek(offset int64) {
	p.mu.Lock()
	p.epoch++
	p.seekTo = offset
	if p.cancelFn != nil {
		p.cancelFn()
	}
	p.mu.Unlock()
	p.next = offset
}

func (p *partState) currentEpoch() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.epoch
}

// generation is the state of one consumer-group generation.
type generation struct {
	d       *Daemon
	gen     *kafka.Generation
	parts   map[topicPartition]*partState
	order   []*partState
	in      chan *[]record // batches of one partition's records, in offset order
	rest    []record       // records of the batch being added not added yet
	snap    *table.Snapshot
	dlqSnap *table.Snapshot

	w     *pq.FileWriter // open data writer of the batch (nil: none yet)
	adds  []*txlog.Add   // files of a closed batch awaiting its commit
	rows  int64          // records (rows and dead letters) in the batch
	bytes int64          // raw bytes of the batch

	timer    *time.Timer
	timerOn  bool
	consumed int64
	lastLog  time.Time
}

type genResult struct {
	finished bool
	err      error
}

// runGeneration runs the generation's flusher (and through it the partition
// readers) and waits for it to end.
func (d *Daemon) runGeneration(ctx context.Context, gen *kafka.Generation) (bool, error) {
	res := make(chan genResult, 1)
	gen.Start(func(gctx context.Context) {
		g := &generation{d: d, gen: gen, parts: map[topicPartition]*partState{}, in: make(chan *[]record, handoffQueue)}
		finished, err := g.run(ctx, gctx)
		res <- genResult{finished, err}
	})
	r := <-res
	return r.finished, r.err
}

// partitionWatchInterval is how often a generation re-reads the topics'
// partition counts.
const partitionWatchInterval = 5 * time.Second

// watchPartitions returns (ending the generation, so the group rebalances)
// when a topic's partition count differs from before, e.g. a topic created
// after the daemon started or partitions added.
func (d *Daemon) watchPartitions(gctx context.Context, before map[string]int) {
	every(gctx, partitionWatchInterval, func() bool {
		now, err := partitionCounts(gctx, d.dialer, d.opts.Brokers, d.opts.Topics)
		if err != nil {
			d.log.Debug("read partition counts", "err", err)
			return true
		}
		if !maps.Equal(now, before) {
			d.log.Info("topic partitions changed; rebalancing", "before", before, "now", now)
			return false
		}
		return true
	})
}

// every calls fn every interval until ctx ends or fn returns false.
func every(ctx context.Context, interval time.Duration, fn func() bool) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !fn() {
			return
		}
	}
}

// retry runs fn until it succeeds or a context ends, backing off.
func (d *Daemon) retry(ctx, gctx context.Context, what string, fn func() error) error {
	backoff := 100 * time.Millisecond
	for {
		err := fn()
		if err == nil {
			return nil
		}
		d.m.Errors.Add(1)
		d.log.Warn(what+" failed; retrying", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-gctx.Done():
			return gctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

func (g *generation) run(ctx, gctx context.Context) (bool, error) {
	d := g.d
	// The table, not the group, says where each partition resumes.
	if err := d.retry(ctx, gctx, "load snapshot", g.loadSnapshots(ctx)); err != nil {
		return false, nil
	}
	oc := newOffsetClient(&d.opts, d.dialer)
	ranges := g.initialOffsets(ctx, gctx, oc)
	var assigned []string
	for topic, pas := range g.gen.Assignments {
		for _, pa := range pas {
			tp := topicPartition{topic, pa.ID}
			app := appID(d.opts.AppID, tp)
			ps := &partState{tp: tp, app: app, expect: -1, dlqTxn: -1, origin: kafka.FirstOffset, logStart: -1}
			r, known := ranges[tp]
			if known {
				ps.logStart = r.first
			}
			if d.opts.Start == StartLatest {
				ps.origin = kafka.LastOffset
				if known {
					ps.origin = r.end // "latest" = the end when the generation starts
				}
			}
			if v, ok := g.snap.Txn(app); ok {
				ps.expect = v
			}
			ps.next = ps.resume()
			if g.dlqSnap != nil {
				if v, ok := g.dlqSnap.Txn(app); ok {
					ps.dlqTxn = v
				}
			}
			ps.last = ps.expect
			ps.seekTo = ps.next
			g.parts[tp] = ps
			g.order = append(g.order, ps)
			assigned = append(assigned, fmt.Sprintf("%s@%d", tp, ps.next))
		}
	}
	sort.Slice(g.order, func(i, j int) bool {
		a, b := g.order[i].tp, g.order[j].tp
		return a.topic < b.topic || a.topic == b.topic && a.partition < b.partition
	})
	sort.Strings(assigned)
	d.log.Info("generation started", "generation", g.gen.ID, "member", g.gen.MemberID, "partitions", assigned, "table_version", g.snap.Version())
	d.m.clearLag()
	g.publishOffsets(ranges)
	tps := make([]topicPartition, len(g.order))
	for i, ps := range g.order {
		tps[i] = ps.tp
	}
	g.gen.Start(func(wctx context.Context) { g.watchEnds(wctx, oc, tps) })
	d.m.SetReady(true)
	defer d.m.SetReady(false)
	for _, ps := range g.order {
		g.gen.Start(func(pctx context.Context) { g.readPartition(pctx, ps) })
	}

	g.timer = time.NewTimer(time.Hour)
	g.timer.Stop()
	defer g.timer.Stop()
	g.lastLog = time.Now()
	if d.opts.UntilEnd && g.allAtEnd() {
		// Nothing assigned to read (or all read): check the table.
		if done, err := g.finishIfEnd(ctx, gctx); done || err != nil {
			return done, err
		}
	}
	var untilEndTick <-chan time.Time
	if d.opts.UntilEnd {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		untilEndTick = t.C
	}
	for {
		select {
		case b := <-g.in:
			recs := *b
			for i := range recs {
				g.add(ctx, gctx, &recs[i])
				g.rest = recs[i+1:] // what finalFlush must still add
				if g.full() {
					if err := g.flushRetry(ctx, gctx); err != nil {
						g.finalFlush(ctx)
						return false, nil
					}
				}
				if d.opts.UntilEnd && g.allAtEnd() {
					if done, err := g.finishIfEnd(ctx, gctx); done || err != nil {
						return done, err
					}
				}
				if g.rest == nil {
					break // a final flush (in finishIfEnd) added the rest
				}
			}
			g.rest = nil
			putBatch(b)
			g.batchDone()
		case <-g.timer.C:
			g.timerOn = false
			if err := g.flushRetry(ctx, gctx); err != nil {
				g.finalFlush(ctx)
				return false, nil
			}
		case <-untilEndTick:
			if done, err := g.finishIfEnd(ctx, gctx); done || err != nil {
				return done, err
			}
		case <-gctx.Done():
			// Rebalance: commit what we hold before giving the partitions
			// up (the group waits for us), bounded by the shutdown timeout.
			g.finalFlush(ctx)
			return false, nil
		case <-ctx.Done():
			g.finalFlush(ctx)
			return false, nil
		}
	}
}

func (g *generation) loadSnapshots(ctx context.Context) func() error {
	return func() error {
		snap, err := g.d.tbl.Snapshot(ctx, table.WithoutFiles())
		if err != nil {
			return fmt.Errorf("snapshot of %s: %w", g.d.tbl.URL(), err)
		}
		g.snap = snap
		g.d.dec.Store(newDecoder(snap.Schema(), &g.d.opts))
		if g.d.dlq != nil {
			ds, err := g.d.dlq.Snapshot(ctx, table.WithoutFiles())
			if err != nil {
				return fmt.Errorf("snapshot of %s: %w", g.d.dlq.URL(), err)
			}
			g.dlqSnap = ds
		}
		return nil
	}
}

// readPartition reads one partition from the offset the flusher asks for,
// decoding records and handing them to the flusher. A reseek cancels the
// current reader; the loop then starts a new one at the new offset.
func (g *generation) readPartition(gctx context.Context, ps *partState) {
	d := g.d
	for gctx.Err() == nil {
		ps.mu.Lock()
		epoch, offset := ps.epoch, ps.seekTo
		rctx, cancel := context.WithCancel(gctx)
		ps.cancelFn = cancel
		ps.mu.Unlock()
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers:        d.opts.Brokers,
			Topic:          ps.tp.topic,
			Partition:      ps.tp.partition,
			Dialer:         d.dialer,
			MinBytes:       1,
			MaxBytes:       16 << 20,
			MaxWait:        250 * time.Millisecond,
			QueueCapacity:  1000,
			ReadBackoffMin: 50 * time.Millisecond,
			ReadBackoffMax: 500 * time.Millisecond,
			ErrorLogger:    kafkaLogger{log: d.log.Debug, where: "reader " + ps.tp.String()},
		})
		if err := r.SetOffset(offset); err != nil {
			d.log.Warn("seek", "partition", ps.tp.String(), "offset", offset, "err", err)
		}
		g.fetch(rctx, r, ps, epoch)
		cancel()
		_ = r.Close()
	}
}

// fetch reads records from r and hands them to the flusher in batches: a
// batch goes when it is full or when the reader has no more messages
// queued (the next fetch would wait), so records never wait in a partial
// batch. It returns when rctx ends or a fetch fails.
func (g *generation) fetch(rctx context.Context, r *kafka.Reader, ps *partState, epoch uint64) {
	d := g.d
	b := getBatch()
	defer func() {
		if b != nil {
			putBatch(b)
		}
	}()
	send := func() bool {
		select {
		case g.in <- b:
			b = getBatch()
			return true
		case <-rctx.Done():
			return false
		}
	}
	queued := 0 // messages known to be in the reader's queue
	var order keyOrder
	for {
		m, err := r.FetchMessage(rctx)
		if err != nil {
			if rctx.Err() == nil {
				d.m.Errors.Add(1)
				d.log.Warn("fetch", "partition", ps.tp.String(), "err", err)
				if len(*b) > 0 {
					send()
				}
			}
			return
		}
		dec := d.dec.Load()
		*b = append(*b, record{
			tp: ps.tp, epoch: epoch, offset: m.Offset, key: m.Key, value: m.Value, ts: m.Time, hwm: m.HighWaterMark,
			dec: dec.decodeFast(&order, m.Topic, m.Partition, m.Offset, m.Key, m.Value, m.Time),
		})
		if queued > 0 {
			queued--
		}
		if queued == 0 {
			queued = int(r.Stats().QueueLength)
		}
		if (queued == 0 || len(*b) >= handoffBatch) && !send() {
			return
		}
	}
}

// batchDone runs after the flusher added a batch of records.
func (g *generation) batchDone() {
	for _, ps := range g.order {
		if ps.hwm > 0 {
			g.d.m.SetEndOffset(ps.tp.topic, ps.tp.partition, ps.hwm)
		}
	}
	if time.Since(g.lastLog) >= g.d.opts.ProgressInterval {
		g.lastLog = time.Now()
		g.logProgress()
	}
}

// add buffers one record: its row goes into the batch's data writer (which
// coerces it to the schema), or it becomes a dead letter. The record's row
// map is recycled after.
func (g *generation) add(ctx, gctx context.Context, rec *record) {
	g.addRecord(ctx, gctx, rec)
	rec.dec.recycle()
}

func (g *generation) addRecord(ctx, gctx context.Context, rec *record) {
	ps := g.parts[rec.tp]
	if ps == nil || ps.halted || rec.epoch != ps.currentEpoch() {
		return // stale: from before a reseek
	}
	if ps.next >= 0 && rec.offset < ps.next {
		return // already buffered or committed
	}
	d := g.d
	dec := rec.dec
	if dec.newFields != nil {
		dec = g.evolve(ctx, gctx, dec)
		if ctx.Err() != nil || gctx.Err() != nil {
			// Interrupted around the schema change: buffer nothing more for
			// this partition, so no later offset is committed past this one.
			ps.halted = true
			return
		}
		if ps.currentEpoch() != rec.epoch {
			return // the flush before the schema change reseeked
		}
	}
	if ps.origin < 0 {
		ps.origin = rec.offset
		g.publishCommitted(ps)
	}
	d.m.RecordsConsumed.Add(1)
	g.consumed++
	ps.hwm = max(ps.hwm, rec.hwm)
	if dec.err == nil {
		err := g.writeRow(ctx, &dec)
		switch {
		case err == nil:
			ps.rows++
		case errors.Is(err, pq.ErrSchemaMismatch):
			var re *pq.RowError
			if errors.As(err, &re) && re.Column != "" {
				// The writer's row index means nothing to the user.
				err = fmt.Errorf("%w: column %s: %w", ErrSchemaMismatch, re.Column, re.Err)
			} else {
				err = fmt.Errorf("%w: %w", ErrSchemaMismatch, err)
			}
			dec.err = err
		default:
			// The writer failed (store error while rolling a file): the
			// batch is lost; read it again.
			d.m.Errors.Add(1)
			d.log.Warn("data writer failed; dropping the batch and reading it again", "err", err)
			g.resetAll(nil)
			return
		}
	}
	if dec.err != nil && rec.offset > ps.dlqTxn {
		ps.dead = append(ps.dead, &deadLetter{topic: rec.tp.topic, partition: rec.tp.partition, offset: rec.offset, key: rec.key, value: rec.value, err: dec.err.Error(), ts: rec.ts})
	}
	ps.next = rec.offset + 1
	ps.last = rec.offset
	g.rows++
	g.bytes += int64(len(rec.value) + len(rec.key))
	if !g.timerOn {
		g.timer.Reset(d.opts.FlushInterval)
		g.timerOn = true
	}
}

// writeRow writes one row into the batch's writer, opening it on first use.
func (g *generation) writeRow(ctx context.Context, dec *decoded) error {
	if g.w == nil {
		w, err := newDataWriter(g.snap)
		if err != nil {
			return fmt.Errorf("open data writer: %w", err)
		}
		g.w = w
	}
	if dec.vals != nil {
		return g.w.WriteSlots(ctx, dec.names, dec.vals)
	}
	return g.w.WriteRow(ctx, dec.row)
}

// resetAll drops the whole batch (writer, closed files, dead letters) and
// reseeks every partition to the table's offsets; moved holds new txn
// versions found in the table for partitions another writer moved.
func (g *generation) resetAll(moved map[*partState]int64) {
	if g.w != nil {
		// Best effort: files already rolled out are removed (vacuum would
		// remove them too: they are in no commit).
		_ = g.w.Abort(context.Background())
		g.w = nil
	}
	g.adds = nil
	g.rows, g.bytes = 0, 0
	for _, ps := range g.order {
		if v, ok := moved[ps]; ok {
			ps.expect = v
			if g.dlqSnap != nil {
				if dv, ok := g.dlqSnap.Txn(ps.app); ok {
					ps.dlqTxn = max(ps.dlqTxn, dv)
				}
			}
		}
		ps.rows, ps.dead = 0, nil
		ps.last = ps.expect
		if ps.halted || ps.next != ps.resume() || len(moved) > 0 {
			ps.reseek(ps.resume())
			ps.halted = false
		}
		g.publishCommitted(ps)
	}
	g.d.m.Reseeks.Add(1)
}

func (g *generation) logProgress() {
	var lag int64
	for _, ps := range g.order {
		if l, ok := g.d.m.Lag(ps.tp.topic, ps.tp.partition); ok {
			lag += l
		}
	}
	g.d.log.Info("progress", "consumed", g.consumed, "lag", lag, "committed", g.d.m.RecordsCommitted.Load(), "dead_lettered", g.d.m.RecordsDeadLettered.Load(), "table_version", g.snap.Version())
}

func (g *generation) full() bool {
	return g.rows >= int64(g.d.opts.FlushRows) || g.bytes >= g.d.opts.FlushBytes
}

// allAtEnd reports whether every assigned partition has been read up to its
// UntilEnd target.
func (g *generation) allAtEnd() bool {
	for _, ps := range g.order {
		r, ok := g.d.ends[ps.tp]
		if !ok {
			continue
		}
		if r.end > r.first && ps.next < r.end && !(ps.next < 0 && g.d.opts.Start == StartLatest) {
			return false
		}
	}
	return true
}

// finishIfEnd flushes what is buffered and reports whether the table holds
// every record up to the end offsets (of all partitions, whoever owns them).
func (g *generation) finishIfEnd(ctx, gctx context.Context) (bool, error) {
	if !g.allAtEnd() {
		return false, nil
	}
	if err := g.flushRetry(ctx, gctx); err != nil {
		g.finalFlush(ctx)
		return false, nil
	}
	return g.d.reachedEnd(ctx)
}

func (d *Daemon) reachedEnd(ctx context.Context) (bool, error) {
	snap, err := d.tbl.Snapshot(ctx, table.WithoutFiles())
	if err != nil {
		return false, fmt.Errorf("snapshot of %s: %w", d.tbl.URL(), err)
	}
	for tp, r := range d.ends {
		if r.end <= r.first {
			continue
		}
		v, ok := snap.Txn(appID(d.opts.AppID, tp))
		if !ok {
			if d.opts.Start == StartLatest {
				continue
			}
			return false, nil
		}
		if v < r.end-1 {
			return false, nil
		}
	}
	return true, nil
}

// flushRetry flushes, retrying store errors until it succeeds or a context
// ends (the buffer stays, so a full buffer applies backpressure).
func (g *generation) flushRetry(ctx, gctx context.Context) error {
	err := g.d.retry(ctx, gctx, "flush", func() error { return g.flush(ctx) })
	g.publishAllCommitted()
	return err
}

// finalFlush flushes once more under the shutdown timeout, detached from the
// cancelled contexts.
func (g *generation) finalFlush(ctx context.Context) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.d.opts.ShutdownTimeout)
	defer cancel()
	// Drain records already decoded and queued, so a clean shutdown commits
	// everything read so far: first the rest of the batch being added.
	rest := g.rest
	g.rest = nil
	for i := range rest {
		g.add(fctx, fctx, &rest[i])
	}
	for {
		select {
		case b := <-g.in:
			for i := range *b {
				g.add(fctx, fctx, &(*b)[i])
			}
			putBatch(b)
			continue
		default:
		}
		break
	}
	g.batchDone()
	err := g.d.retry(fctx, fctx, "final flush", func() error { return g.flush(fctx) })
	if err != nil {
		g.d.log.Error("final flush failed; uncommitted records will be read again", "err", err)
	}
}
