package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// errMoved reports partitions whose txn another writer moved.
var errMoved = errors.New("partition offsets moved by another writer")

// flush commits the batch: dead letters to the DLQ first, then the data
// files plus one txn per covered partition to the table. See the package
// documentation for why this order keeps both exactly-once. An error leaves
// the batch in place to be retried (store errors); a partition moved by
// another writer drops the batch and reseeks instead.
func (g *generation) flush(ctx context.Context) error {
	pend := g.pending()
	if len(pend) == 0 {
		g.rows, g.bytes = 0, 0
		return nil
	}
	if _, err := g.snap.Update(ctx); err != nil {
		return fmt.Errorf("refresh %s: %w", g.d.tbl.URL(), err)
	}
	if g.checkMoved(pend) {
		return nil
	}
	if err := g.commitDead(ctx, pend); err != nil {
		if errors.Is(err, errMoved) {
			return nil
		}
		return err
	}
	if err := g.commitRows(ctx, pend); err != nil {
		if errors.Is(err, errMoved) {
			return nil
		}
		return err
	}
	return nil
}

func (g *generation) pending() []*partState {
	var out []*partState
	for _, ps := range g.order {
		if ps.pending() {
			out = append(out, ps)
		}
	}
	return out
}

// checkMoved compares each pending partition's txn in the refreshed
// snapshot with what this daemon last committed or started from. If another
// process moved one (a rebalance this daemon has not seen yet), the batch is
// dropped and every partition reseeks to the table's offsets.
func (g *generation) checkMoved(pend []*partState) bool {
	moved := map[*partState]int64{}
	for _, ps := range pend {
		v, ok := g.snap.Txn(ps.app)
		if !ok {
			v = -1
		}
		if v != ps.expect {
			moved[ps] = v
		}
	}
	if len(moved) == 0 {
		return false
	}
	g.dropMoved(moved)
	return true
}

func (g *generation) dropMoved(moved map[*partState]int64) {
	d := g.d
	d.m.Conflicts.Add(1)
	for ps, v := range moved {
		d.log.Warn("partition offset moved by another writer; dropping the batch and reseeking",
			"partition", ps.tp.String(), "expected", ps.expect, "table", v, "batch_records", g.rows)
	}
	g.resetAll(moved)
}

// commitRows closes the batch's writer and commits its files with the txns.
func (g *generation) commitRows(ctx context.Context, pend []*partState) error {
	d := g.d
	if g.w != nil {
		adds, err := g.w.Close(ctx)
		g.w = nil
		if err != nil {
			// The rows are gone with the writer: read them again.
			d.log.Warn("closing data files failed; dropping the batch and reading it again", "err", err)
			g.resetAll(nil)
			return fmt.Errorf("write data files: %w", err)
		}
		// Append: files of an earlier close whose commit failed are still
		// waiting here, and their rows are covered by the same txns.
		g.adds = append(g.adds, adds...)
	}
	expect := map[string]int64{}
	txns := map[string]int64{}
	var rows int64
	for _, ps := range pend {
		expect[ps.app] = ps.expect
		txns[ps.app] = ps.last
		rows += int64(ps.rows)
	}
	if d.dlt != nil {
		// Where the DLQ topic read-back starts next time (not checked:
		// expect covers the source offsets only).
		d.dlt.addTxns(pend, txns)
	}
	start := time.Now()
	version, moved, err := commitWithTxns(ctx, d.tbl, g.adds, expect, txns, "STREAMING UPDATE", map[string]any{"outputMode": "Append", "queryId": d.opts.AppID})
	if len(moved) > 0 {
		if _, uerr := g.snap.Update(ctx); uerr != nil {
			return fmt.Errorf("refresh %s: %w", d.tbl.URL(), uerr)
		}
		if !g.checkMoved(pend) {
			// The txns changed and changed back? Be safe: read again.
			g.resetAll(nil)
		}
		return errMoved
	}
	if err != nil {
		return err
	}
	if d.dlt != nil {
		d.dlt.committed(pend)
	}
	d.m.ObserveCommit(time.Since(start))
	d.m.Commits.Add(1)
	d.m.RecordsCommitted.Add(rows)
	d.m.FilesWritten.Add(int64(len(g.adds)))
	var size int64
	for _, a := range g.adds {
		size += a.Size
	}
	d.m.BytesWritten.Add(size)
	offsets := map[string]map[int]int64{}
	for _, ps := range pend {
		ps.expect = ps.last
		ps.rows = 0
		if offsets[ps.tp.topic] == nil {
			offsets[ps.tp.topic] = map[int]int64{}
		}
		offsets[ps.tp.topic][ps.tp.partition] = ps.last + 1
	}
	d.log.Debug("committed", "version", version, "rows", rows, "files", len(g.adds), "partitions", len(pend), "latency", time.Since(start))
	g.adds = nil
	g.rows, g.bytes = 0, 0
	if g.timerOn {
		g.timer.Stop()
		g.timerOn = false
	}
	// Group offsets only feed lag monitoring; the table is the truth.
	if err := g.gen.CommitOffsets(offsets); err != nil {
		d.log.Debug("commit group offsets", "err", err)
	}
	d.maint.committed(d.tbl, version, g.snap.Config().CheckpointInterval)
	return nil
}

// commitDead writes the partitions' dead letters to the DLQ (table or topic)
// before the main commit. For the DLQ table, its txn per partition records
// the last offset whose letters it holds; for the DLQ topic, a read-back
// skips letters already produced (see dlqtopic.go) and the main commit
// records where the next read-back starts.
func (g *generation) commitDead(ctx context.Context, pend []*partState) error {
	d := g.d
	var letters []*deadLetter
	var with []*partState
	for _, ps := range pend {
		if len(ps.dead) > 0 {
			letters = append(letters, ps.dead...)
			with = append(with, ps)
		}
	}
	if len(letters) == 0 {
		return nil
	}
	if d.dlt != nil {
		if err := g.produceDeadTopic(ctx, with); err != nil {
			return err
		}
	} else {
		if _, err := g.dlqSnap.Update(ctx); err != nil {
			return fmt.Errorf("refresh %s: %w", d.dlq.URL(), err)
		}
		expect := map[string]int64{}
		txns := map[string]int64{}
		for _, ps := range with {
			if v, ok := g.dlqSnap.Txn(ps.app); ok && v != ps.dlqTxn || !ok && ps.dlqTxn != -1 {
				// Another writer dead-lettered this partition meanwhile.
				g.dropMoved(map[*partState]int64{ps: ps.expect})
				return errMoved
			}
			expect[ps.app] = ps.dlqTxn
			txns[ps.app] = ps.last
		}
		rows := make([]map[string]any, len(letters))
		for i, l := range letters {
			rows[i] = l.row()
		}
		w, err := newDataWriter(g.dlqSnap)
		if err != nil {
			return fmt.Errorf("open dead-letter writer: %w", err)
		}
		if err := w.Write(ctx, rows); err != nil {
			_ = w.Abort(ctx)
			return fmt.Errorf("write %d dead letters: %w", len(rows), err)
		}
		adds, err := w.Close(ctx)
		if err != nil {
			return fmt.Errorf("write %d dead letters: %w", len(rows), err)
		}
		version, moved, err := commitWithTxns(ctx, d.dlq, adds, expect, txns, "STREAMING UPDATE", map[string]any{"outputMode": "Append", "queryId": d.opts.AppID + "-dlq"})
		if len(moved) > 0 {
			if _, uerr := g.dlqSnap.Update(ctx); uerr != nil {
				return fmt.Errorf("refresh %s: %w", d.dlq.URL(), uerr)
			}
			m := map[*partState]int64{}
			for _, ps := range with {
				m[ps] = ps.expect
			}
			g.dropMoved(m)
			return errMoved
		}
		if err != nil {
			return err
		}
		d.maint.committed(d.dlq, version, g.dlqSnap.Config().CheckpointInterval)
	}
	for _, ps := range with {
		ps.dlqTxn = ps.last
		ps.dead = nil
	}
	d.m.RecordsDeadLettered.Add(int64(len(letters)))
	return nil
}
