package table

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/kappa-lake/kappa/txlog"
)

// logListing is one listing of _delta_log/.
type logListing struct {
	commits []txlog.LogFile // ascending
	// earliest is the oldest reconstructable version: 0 when commit 0 is
	// present, else the oldest complete checkpoint; -1 when none.
	earliest int64
	// checkpoints are the versions of complete checkpoints, ascending.
	checkpoints []int64
	all         []txlog.LogFile // every log file, when asked for
}

// listLog lists the log; keepAll keeps every log file (for cleanup), not
// only commits.
func (t *Table) listLog(ctx context.Context, keepAll bool) (*logListing, error) {
	l := &logListing{earliest: -1, commits: make([]txlog.LogFile, 0, 1024)}
	parts := map[int64]map[int]map[int]bool{} // version -> parts -> part set
	complete := map[int64]bool{}
	for info, err := range t.st.List(ctx, txlog.LogDir, "") {
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", txlog.LogDir, err)
		}
		f, ok := txlog.ParseLogFile(info.Key)
		if !ok {
			continue
		}
		f.Size, f.ModTime = info.Size, info.ModTime
		if keepAll {
			l.all = append(l.all, f)
		}
		switch f.Kind {
		case txlog.KindCommit:
			l.commits = append(l.commits, f)
		case txlog.KindCheckpoint, txlog.KindV2Checkpoint:
			complete[f.Version] = true
		case txlog.KindMultiPartCheckpoint:
			if parts[f.Version] == nil {
				parts[f.Version] = map[int]map[int]bool{}
			}
			if parts[f.Version][f.Parts] == nil {
				parts[f.Version][f.Parts] = map[int]bool{}
			}
			parts[f.Version][f.Parts][f.Part] = true
			if len(parts[f.Version][f.Parts]) == f.Parts {
				complete[f.Version] = true
			}
		}
	}
	sort.Slice(l.commits, func(i, j int) bool { return l.commits[i].Version < l.commits[j].Version })
	for v := range complete {
		l.checkpoints = append(l.checkpoints, v)
	}
	sort.Slice(l.checkpoints, func(i, j int) bool { return l.checkpoints[i] < l.checkpoints[j] })
	if len(l.commits) == 0 && len(l.checkpoints) == 0 {
		return nil, fmt.Errorf("%s: %w", t.st.URL(), txlog.ErrTableNotFound)
	}
	switch {
	case len(l.commits) > 0 && l.commits[0].Version == 0:
		l.earliest = 0
	case len(l.checkpoints) > 0:
		l.earliest = l.checkpoints[0]
	}
	return l, nil
}

// reachable returns the commit files of reconstructable versions.
func (l *logListing) reachable() []txlog.LogFile {
	i := sort.Search(len(l.commits), func(i int) bool { return l.commits[i].Version >= l.earliest })
	return l.commits[i:]
}

// VersionAsOf returns the version a snapshot AsOf(ts) loads: the latest
// version whose commit time is at or before ts.
//
// Commit times are the commit files' modification times, or the in-commit
// timestamps from delta.inCommitTimestampEnablementVersion on when
// delta.enableInCommitTimestamps is set; they are made strictly increasing
// (a time not after its predecessor's counts as the predecessor's plus 1 ms).
// Modification times come from one listing of the log; in-commit timestamps
// are found by a binary search that reads O(log n) commits.
//
// A time before the earliest reconstructable commit is an error wrapping
// txlog.ErrVersionNotFound that names the available range. A time after the
// latest commit selects the latest version (as delta-rs does; Spark refuses).
func (t *Table) VersionAsOf(ctx context.Context, ts time.Time) (int64, error) {
	l, err := t.listLog(ctx, false)
	if err != nil {
		return 0, fmt.Errorf("version as of %s: %w", ts.UTC().Format(time.RFC3339Nano), err)
	}
	cands := l.reachable()
	if len(cands) == 0 {
		return 0, fmt.Errorf("version as of %s: %w: no commit files left in the log", ts.UTC().Format(time.RFC3339Nano), txlog.ErrVersionNotFound)
	}
	latest := cands[len(cands)-1].Version
	t.mu.Lock()
	snap, err := t.cachedLatestLocked(ctx)
	var cfg Config
	if err == nil {
		cfg = snap.config
	}
	t.mu.Unlock()
	if err != nil {
		return 0, err
	}
	want := ts.UnixMilli()
	// Split the candidates at the in-commit timestamp enablement version.
	split := len(cands)
	if cfg.InCommitTimestamps {
		split = sort.Search(len(cands), func(i int) bool { return cfg.ictAt(cands[i].Version) })
	}
	if split < len(cands) {
		v, found, err := t.searchICT(ctx, cands[split:], want)
		if err != nil {
			return 0, err
		}
		if found {
			return v, nil
		}
		if split == 0 {
			return 0, t.beforeEarliest(ctx, ts, cands[0], latest, cfg)
		}
	}
	mt := cands[:split]
	adj := make([]int64, len(mt))
	for i, f := range mt {
		adj[i] = f.ModTime.UnixMilli()
		if i > 0 && adj[i] <= adj[i-1] {
			adj[i] = adj[i-1] + 1
		}
	}
	i := sort.Search(len(adj), func(i int) bool { return adj[i] > want })
	if i == 0 {
		return 0, t.beforeEarliest(ctx, ts, cands[0], latest, cfg)
	}
	return mt[i-1].Version, nil
}

func (t *Table) beforeEarliest(ctx context.Context, ts time.Time, first txlog.LogFile, latest int64, cfg Config) error {
	var at time.Time
	if cfg.ictAt(first.Version) {
		at, _ = t.commitTime(ctx, first.Version, cfg)
	} else {
		at = first.ModTime
	}
	return fmt.Errorf("version as of %s: %w: it is before the earliest available commit (version %d at %s); available versions are %d..%d",
		ts.UTC().Format(time.RFC3339Nano), txlog.ErrVersionNotFound, first.Version, at.UTC().Format(time.RFC3339Nano), first.Version, latest)
}

// ictWindow is how far back searchICT looks to make in-commit timestamps
// strictly increasing around the candidate (the protocol requires writers to
// keep them increasing; this only repairs short local violations).
const ictWindow = 8

// searchICT finds the latest commit of cands (all with in-commit timestamps)
// whose (strictly increasing) time is <= want.
func (t *Table) searchICT(ctx context.Context, cands []txlog.LogFile, want int64) (int64, bool, error) {
	cache := map[int]int64{}
	var firstErr error
	raw := func(i int) int64 {
		if v, ok := cache[i]; ok {
			return v
		}
		ci, err := t.readCommitInfo(ctx, cands[i].Version)
		var ts int64
		switch {
		case err != nil:
			if firstErr == nil {
				firstErr = err
			}
		case ci == nil || ci.InCommitTimestamp == nil:
			if firstErr == nil {
				firstErr = fmt.Errorf("commit %d: %w: in-commit timestamps are enabled but commitInfo.inCommitTimestamp is missing", cands[i].Version, txlog.ErrCorruptLog)
			}
		default:
			ts = *ci.InCommitTimestamp
		}
		cache[i] = ts
		return ts
	}
	adjusted := func(i int) int64 {
		best := raw(i)
		for j := i - 1; j >= 0 && j >= i-ictWindow; j-- {
			if r := raw(j) + int64(i-j); r > best {
				best = r
			}
		}
		return best
	}
	i := sort.Search(len(cands), func(i int) bool { return raw(i) > want })
	if firstErr != nil {
		return 0, false, firstErr
	}
	i--
	for i >= 0 && adjusted(i) > want {
		i--
	}
	if firstErr != nil {
		return 0, false, firstErr
	}
	if i < 0 {
		return 0, false, nil
	}
	return cands[i].Version, true, nil
}

// CommitEntry is one version's commitInfo, as History reports it.
type CommitEntry struct {
	Version int64 `json:"version"`
	// Timestamp is the in-commit timestamp when present, else the commit
	// file's modification time.
	Timestamp           time.Time                  `json:"timestamp"`
	Operation           string                     `json:"operation"`
	OperationParameters map[string]json.RawMessage `json:"operationParameters"`
	IsBlindAppend       *bool                      `json:"isBlindAppend"`
	ReadVersion         *int64                     `json:"readVersion,omitempty"`
	EngineInfo          string                     `json:"engineInfo,omitempty"`
	TxnID               string                     `json:"txnId,omitempty"`
	OperationMetrics    map[string]json.RawMessage `json:"operationMetrics,omitempty"`
	// CommitInfo is the whole action (nil when the commit has none).
	CommitInfo *txlog.CommitInfo `json:"-"`
}

// History returns the commitInfo of the newest limit versions (all when
// limit <= 0), newest first. It lists the log once and reads only those
// commits.
func (t *Table) History(ctx context.Context, limit int) ([]CommitEntry, error) {
	l, err := t.listLog(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	commits := l.commits
	if limit > 0 && len(commits) > limit {
		commits = commits[len(commits)-limit:]
	}
	out := make([]CommitEntry, len(commits))
	errs := make([]error, len(commits))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, f := range commits {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			ci, err := t.readCommitInfo(ctx, f.Version)
			if err != nil {
				errs[i] = err
				return
			}
			e := CommitEntry{Version: f.Version, Timestamp: f.ModTime, CommitInfo: ci}
			if ci != nil {
				if ci.InCommitTimestamp != nil {
					e.Timestamp = time.UnixMilli(*ci.InCommitTimestamp)
				}
				e.Operation, e.OperationParameters = ci.Operation, ci.OperationParameters
				e.IsBlindAppend, e.ReadVersion = ci.IsBlindAppend, ci.ReadVersion
				e.EngineInfo, e.TxnID, e.OperationMetrics = ci.EngineInfo, ci.TxnID, ci.OperationMetrics
			}
			// Newest first.
			out[len(commits)-1-i] = e
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("history: %w", err)
		}
	}
	return out, nil
}
