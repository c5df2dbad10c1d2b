package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kappa-lake/kappa/table"
)

// lockedWriter serialises writes of concurrent printers.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// commitWatcher follows a table like any reader would (it only reads the
// log) and prints each new commit: version, rows, files, partitions.
type commitWatcher struct {
	out   io.Writer
	label string    // short table name for the lines
	unit  string    // what a row is: "row", "dead letter"
	start time.Time // commit times are printed relative to it (zero: not printed)

	tbl  *table.Table
	snap *table.Snapshot

	rows    int64 // rows added by the commits seen
	commits int
}

// newCommitWatcher opens the table at url; commits after its current
// version are reported.
func newCommitWatcher(ctx context.Context, out io.Writer, url, label, unit string, start time.Time) (*commitWatcher, error) {
	t, err := table.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	s, err := t.Snapshot(ctx)
	if err != nil {
		_ = t.Close()
		return nil, err
	}
	return &commitWatcher{out: out, label: label, unit: unit, start: start, tbl: t, snap: s}, nil
}

func (w *commitWatcher) Close() error { return w.tbl.Close() }

// poll prints the commits that landed since the last poll; note is appended
// to each line.
func (w *commitWatcher) poll(ctx context.Context, note string) error {
	prev := w.snap.Version()
	if _, err := w.snap.Update(ctx); err != nil {
		return err
	}
	for v := prev + 1; v <= w.snap.Version(); v++ {
		sv, err := w.tbl.Snapshot(ctx, table.AtVersion(v))
		if err != nil {
			return err
		}
		adds, _, err := sv.ChangesSince(ctx, v-1)
		if err != nil {
			return err
		}
		var rows int64
		parts := map[string]bool{}
		for _, a := range adds {
			if n, ok := fileRecords(a); ok {
				rows += n
			}
			var kv []string
			for _, k := range slices.Sorted(maps.Keys(a.PartitionValues)) {
				if p := a.PartitionValues[k]; p != nil {
					kv = append(kv, k+"="+*p)
				}
			}
			if len(kv) > 0 {
				parts[strings.Join(kv, "/")] = true
			}
		}
		w.rows += rows
		w.commits++
		line := "  "
		if !w.start.IsZero() {
			line += fmt.Sprintf("%+6.1fs  ", sv.Timestamp().Sub(w.start).Seconds())
		}
		line += fmt.Sprintf("%-8s version %-3d %s in %d file%s",
			w.label, v, count(rows, w.unit), len(adds), plural(len(adds)))
		if len(parts) > 0 {
			line += "  [" + strings.Join(slices.Sorted(maps.Keys(parts)), ", ") + "]"
		}
		if note != "" {
			line += "  " + note
		}
		fmt.Fprintln(w.out, line)
	}
	return nil
}

// count renders "3 rows", "1 dead letter".
func count[N int | int64](n N, unit string) string {
	return fmt.Sprintf("%d %s%s", n, unit, plural(int(n)))
}
