package ingest

import (
	"context"
	"sync"
	"time"

	"github.com/kappa-lake/kappa/table"
)

// maintainer runs the tables' checkpoints (and, with CleanupLog, log
// cleanup) in the background, off the commit path: a checkpoint of a large
// table takes seconds, and ingest must stay seconds fresh meanwhile. At most
// one runs per table; checkpoint versions reached while one runs coalesce:
// the newest is checkpointed when it ends.
type maintainer struct {
	d       *Daemon
	ctx     context.Context // cancelled by stop
	cancel  context.CancelFunc
	mu      sync.Mutex
	running map[*table.Table]bool
	next    map[*table.Table]int64 // newest version waiting for a checkpoint
	stopped bool
	wg      sync.WaitGroup
}

func newMaintainer(d *Daemon) *maintainer {
	ctx, cancel := context.WithCancel(context.Background())
	return &maintainer{d: d, ctx: ctx, cancel: cancel, running: map[*table.Table]bool{}, next: map[*table.Table]int64{}}
}

// committed is called after each commit of version to t, whose
// delta.checkpointInterval is interval.
func (m *maintainer) committed(t *table.Table, version int64, interval int) {
	if interval <= 0 || version <= 0 || version%int64(interval) != 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return
	}
	if m.running[t] {
		m.next[t] = max(m.next[t], version)
		return
	}
	m.running[t] = true
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		for {
			m.run(t, version)
			m.mu.Lock()
			next := m.next[t]
			delete(m.next, t)
			if next <= version || m.stopped && m.ctx.Err() != nil {
				delete(m.running, t)
				m.mu.Unlock()
				return
			}
			m.mu.Unlock()
			version = next
		}
	}()
}

func (m *maintainer) run(t *table.Table, version int64) {
	d := m.d
	start := time.Now()
	lc, err := t.Checkpoint(m.ctx, version)
	if err != nil {
		if m.ctx.Err() == nil {
			d.m.Errors.Add(1)
			d.log.Warn("checkpoint failed", "table", t.URL(), "version", version, "err", err)
		}
		return
	}
	files := int64(0)
	if lc.NumOfAddFiles != nil {
		files = *lc.NumOfAddFiles
	}
	d.log.Info("checkpoint written", "table", t.URL(), "version", version, "files", files, "took", time.Since(start).Round(time.Millisecond))
	if !d.opts.CleanupLog {
		return
	}
	res, err := t.CleanupLog(m.ctx)
	if err != nil {
		if m.ctx.Err() == nil {
			d.m.Errors.Add(1)
			d.log.Warn("log cleanup failed", "table", t.URL(), "err", err)
		}
		return
	}
	if len(res.Deleted) > 0 {
		d.log.Info("expired log files removed", "table", t.URL(), "deleted", len(res.Deleted), "kept_checkpoint", res.KeptCheckpoint)
	}
}

// stop lets running work finish within timeout, then cancels it (a
// cancelled checkpoint leaves nothing behind: its upload is aborted).
func (m *maintainer) stop(timeout time.Duration) {
	m.mu.Lock()
	m.stopped = true // no new work: wg only counts down from here
	m.mu.Unlock()
	done := make(chan struct{})
	go func() {
		m.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		m.d.log.Warn("background checkpoint still running at shutdown; cancelling it", "timeout", timeout)
	}
	m.cancel()
	m.wg.Wait()
}
