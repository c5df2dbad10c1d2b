package table

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/kappa-lake/kappa/txlog"
)

// PropTargetFileSize is the table property giving the target size in bytes
// of the files OPTIMIZE writes.
const PropTargetFileSize = "delta.targetFileSize"

// DefaultOptimizeTargetFileSize is the target file size when neither
// OptimizeOptions.TargetFileSize nor delta.targetFileSize is set.
const DefaultOptimizeTargetFileSize = 128 << 20

// RowSource reads the rows of some data files of a snapshot, with their
// deletion vectors applied, and hands them to emit in chunks of maps that
// Writer.Write accepts. reader.RewriteRows is the implementation to use
// (the table package cannot import the reader).
type RowSource func(ctx context.Context, snap *Snapshot, files []*txlog.Add, emit func([]map[string]any) error) error

// OptimizeOptions configure Optimize.
type OptimizeOptions struct {
	// TargetFileSize is the size of the files to write, in bytes. 0 means
	// the table's delta.targetFileSize, else 128 MiB.
	TargetFileSize int64
	// MinFileSize: files smaller than this are compacted. 0 means 3/4 of
	// the target. Files with a deletion vector are always candidates.
	MinFileSize int64
	// PartitionFilter restricts the compaction to the partitions whose
	// values equal these (partition column -> value as in the log; a null
	// partition value never matches).
	PartitionFilter map[string]string
	// MaxConcurrency bounds the bins rewritten in parallel (default 1).
	MaxConcurrency int
	// DryRun plans the compaction without writing or committing anything.
	DryRun bool
	// ReadRows reads the files to rewrite (required unless DryRun): pass
	// reader.RewriteRows.
	ReadRows RowSource
	// Progress, when set, is called after every rewritten bin and at the end.
	Progress func(OptimizeProgress)
	// Logger receives the progress (default: the table's logger).
	Logger *slog.Logger
}

// OptimizeProgress reports how far Optimize got.
type OptimizeProgress struct {
	Bins, BinsDone int   // bins planned and rewritten
	FilesRemoved   int   // files rewritten so far
	BytesRemoved   int64 // their size
	FilesAdded     int   // files written so far
	BytesAdded     int64 // their size
	Done           bool
}

// OptimizeResult summarises an Optimize.
type OptimizeResult struct {
	// Version is the committed version (-1 when nothing was committed:
	// nothing to compact, or a dry run).
	Version int64
	// ReadVersion is the version the compaction was planned on.
	ReadVersion     int64
	Partitions      int // partitions compacted (or, in a dry run, to compact)
	FilesRemoved    int
	BytesRemoved    int64
	FilesAdded      int // 0 in a dry run
	BytesAdded      int64
	FilesConsidered int // live files matching the partition filter
	DryRun          bool
	// Removed are the paths of the rewritten (or, in a dry run, to be
	// rewritten) files, sorted.
	Removed []string
}

// optimizeBin is a group of files of one partition rewritten together.
type optimizeBin struct {
	partition string
	files     []*txlog.Add
	bytes     int64
}

// Optimize compacts small files (bin-packing, like Delta's OPTIMIZE): in
// every partition matching the filter, files smaller than MinFileSize (and
// files with deletion vectors) are grouped into bins of about
// TargetFileSize, each bin is read (deletion vectors applied) and written
// again as new files, and one commit removes the old files and adds the new
// ones, all with dataChange=false, operation OPTIMIZE. Partitions with fewer
// than two candidates are left alone unless their candidate has a deletion
// vector. A concurrent commit removing one of the files fails the commit
// with a *ConflictError (errors.Is ErrConflict); the new files are then
// deleted and the caller may run Optimize again.
func (t *Table) Optimize(ctx context.Context, opts OptimizeOptions) (OptimizeResult, error) {
	res := OptimizeResult{Version: -1, ReadVersion: -1, DryRun: opts.DryRun}
	log := opts.Logger
	if log == nil {
		log = t.cfg.logger
	}
	snap, err := t.Snapshot(ctx)
	if err != nil {
		return res, fmt.Errorf("optimize: %w", err)
	}
	res.ReadVersion = snap.Version()
	tx, err := snap.NewTransaction()
	if err != nil {
		return res, fmt.Errorf("optimize: %w", err)
	}
	if !opts.DryRun && opts.ReadRows == nil {
		return res, fmt.Errorf("optimize: %w: no ReadRows (pass reader.RewriteRows)", ErrInvalidArgument)
	}
	target, err := optimizeTarget(opts.TargetFileSize, snap.Properties())
	if err != nil {
		return res, fmt.Errorf("optimize: %w", err)
	}
	minSize := opts.MinFileSize
	if minSize < 0 {
		return res, fmt.Errorf("optimize: %w: negative MinFileSize %d", ErrInvalidArgument, minSize)
	}
	if minSize == 0 {
		minSize = target / 4 * 3
	}
	partCols := snap.PartitionColumns()
	for c := range opts.PartitionFilter {
		if !slices.Contains(partCols, c) {
			return res, fmt.Errorf("optimize: %w: %q is not a partition column (partition columns: %s)", ErrInvalidArgument, c, strings.Join(partCols, ", "))
		}
	}
	bins, considered := planOptimize(snap.Files(), partCols, opts.PartitionFilter, target, minSize)
	res.FilesConsidered = considered
	parts := map[string]bool{}
	var old []*txlog.Add
	for _, b := range bins {
		parts[b.partition] = true
		res.FilesRemoved += len(b.files)
		res.BytesRemoved += b.bytes
		for _, f := range b.files {
			res.Removed = append(res.Removed, f.Path)
			old = append(old, f)
		}
	}
	sort.Strings(res.Removed)
	res.Partitions = len(parts)
	log.Info("optimize planned", "table", t.URL(), "version", res.ReadVersion, "bins", len(bins),
		"files", res.FilesRemoved, "bytes", res.BytesRemoved, "targetFileSize", target, "dryRun", opts.DryRun)
	if opts.DryRun || len(bins) == 0 {
		if opts.Progress != nil {
			opts.Progress(OptimizeProgress{Bins: len(bins), Done: true})
		}
		return res, nil
	}

	adds, writers, err := t.rewriteBins(ctx, snap, bins, target, opts, log)
	if err != nil {
		return res, errors.Join(fmt.Errorf("optimize: %w", err), abortAll(ctx, writers))
	}
	now := t.cfg.now().UnixMilli()
	yes := true
	for _, f := range old {
		size := f.Size
		tx.RemoveFiles(&txlog.Remove{
			Path: f.Path, DeletionTimestamp: &now, DataChange: false, ExtendedFileMetadata: &yes,
			PartitionValues: maps.Clone(f.PartitionValues), Size: &size, Stats: f.Stats, Tags: maps.Clone(f.Tags),
			DeletionVector: f.DeletionVector, BaseRowID: f.BaseRowID, DefaultRowCommitVersion: f.DefaultRowCommitVersion,
		})
	}
	tx.ReadFiles(old...)
	for _, a := range adds {
		a.DataChange = false
		res.FilesAdded++
		res.BytesAdded += a.Size
	}
	tx.AddFiles(adds...)
	tx.SetOperation("OPTIMIZE", map[string]any{
		"predicate": optimizePredicate(opts.PartitionFilter),
		"zOrderBy":  "[]",
		"auto":      false,
	})
	v, err := tx.Commit(ctx)
	if err != nil {
		if errors.Is(err, ErrCommitUnknown) {
			return res, fmt.Errorf("optimize: %w", err)
		}
		return res, errors.Join(fmt.Errorf("optimize: %w", err), abortAll(ctx, writers))
	}
	res.Version = v
	log.Info("optimize done", "table", t.URL(), "version", v, "removedFiles", res.FilesRemoved, "removedBytes", res.BytesRemoved,
		"addedFiles", res.FilesAdded, "addedBytes", res.BytesAdded)
	return res, nil
}

// optimizeTarget resolves the target file size.
func optimizeTarget(opt int64, props map[string]string) (int64, error) {
	if opt < 0 {
		return 0, fmt.Errorf("%w: negative TargetFileSize %d", ErrInvalidArgument, opt)
	}
	if opt > 0 {
		return opt, nil
	}
	if s, ok := props[PropTargetFileSize]; ok && strings.TrimSpace(s) != "" {
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%w: table property %s=%q is not a positive number of bytes", ErrInvalidArgument, PropTargetFileSize, s)
		}
		return n, nil
	}
	return DefaultOptimizeTargetFileSize, nil
}

// optimizePredicate renders the partition filter for operationParameters.
func optimizePredicate(f map[string]string) string {
	if len(f) == 0 {
		return "[]"
	}
	keys := slices.Sorted(maps.Keys(f))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = strconv.Quote(k + " = '" + strings.ReplaceAll(f[k], "'", "''") + "'")
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// planOptimize groups the candidate files of each partition into bins. It
// returns the bins (deterministic order) and the number of files matching
// the filter.
func planOptimize(files []*txlog.Add, partCols []string, filter map[string]string, target, minSize int64) ([]optimizeBin, int) {
	byPart := map[string][]*txlog.Add{}
	considered := 0
	for _, f := range files {
		if !matchPartition(f, filter) {
			continue
		}
		considered++
		if f.Size >= minSize && f.DeletionVector == nil {
			continue
		}
		k := partitionKey(f, partCols)
		byPart[k] = append(byPart[k], f)
	}
	var bins []optimizeBin
	for _, k := range slices.Sorted(maps.Keys(byPart)) {
		cands := byPart[k]
		if len(cands) < 2 && cands[0].DeletionVector == nil {
			continue
		}
		sort.Slice(cands, func(i, j int) bool {
			if cands[i].Size != cands[j].Size {
				return cands[i].Size < cands[j].Size
			}
			return cands[i].Path < cands[j].Path
		})
		var cur optimizeBin
		flush := func() {
			if len(cur.files) > 1 || (len(cur.files) == 1 && cur.files[0].DeletionVector != nil) {
				bins = append(bins, cur)
			}
			cur = optimizeBin{partition: k}
		}
		cur.partition = k
		for _, f := range cands {
			if len(cur.files) > 0 && cur.bytes+f.Size > target {
				flush()
			}
			cur.files = append(cur.files, f)
			cur.bytes += f.Size
		}
		flush()
	}
	return bins, considered
}

func matchPartition(f *txlog.Add, filter map[string]string) bool {
	for c, want := range filter {
		v, ok := f.PartitionValues[c]
		if !ok || v == nil || *v != want {
			return false
		}
	}
	return true
}

// partitionKey identifies the partition of a file (null distinct from "").
func partitionKey(f *txlog.Add, partCols []string) string {
	var b strings.Builder
	for _, c := range partCols {
		b.WriteString(c)
		if v := f.PartitionValues[c]; v != nil {
			b.WriteString("=")
			b.WriteString(strconv.Quote(*v))
		} else {
			b.WriteString("=null")
		}
		b.WriteByte('/')
	}
	return b.String()
}

// rewriteBins reads and rewrites the bins, at most opts.MaxConcurrency at a
// time. It returns the new files and every writer (to abort on failure).
func (t *Table) rewriteBins(ctx context.Context, snap *Snapshot, bins []optimizeBin, target int64, opts OptimizeOptions, log *slog.Logger) ([]*txlog.Add, []*Writer, error) {
	workers := max(opts.MaxConcurrency, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		adds     []*txlog.Add
		writers  []*Writer
		firstErr error
		prog     = OptimizeProgress{Bins: len(bins)}
		wg       sync.WaitGroup
		sem      = make(chan struct{}, workers)
	)
	for _, b := range bins {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			w, err := NewWriter(ctx, snap, WithTargetFileSize(target))
			if err != nil {
				mu.Lock()
				firstErr = cmpErr(firstErr, err)
				mu.Unlock()
				cancel()
				return
			}
			mu.Lock()
			writers = append(writers, w)
			mu.Unlock()
			err = opts.ReadRows(ctx, snap, b.files, func(rows []map[string]any) error { return w.Write(ctx, rows) })
			var got []*txlog.Add
			if err == nil {
				got, err = w.Close(ctx)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				firstErr = cmpErr(firstErr, fmt.Errorf("rewrite %d files of partition %s: %w", len(b.files), b.partition, err))
				cancel()
				return
			}
			adds = append(adds, got...)
			prog.BinsDone++
			prog.FilesRemoved += len(b.files)
			prog.BytesRemoved += b.bytes
			for _, a := range got {
				prog.FilesAdded++
				prog.BytesAdded += a.Size
			}
			log.Debug("optimize bin rewritten", "partition", b.partition, "files", len(b.files), "bytes", b.bytes, "newFiles", len(got))
			if opts.Progress != nil {
				opts.Progress(prog)
			}
		})
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		return nil, writers, firstErr
	}
	sort.Slice(adds, func(i, j int) bool { return adds[i].Path < adds[j].Path })
	if opts.Progress != nil {
		p := prog
		p.Done = true
		opts.Progress(p)
	}
	return adds, writers, nil
}

// cmpErr keeps the first error, preferring a real one over a cancellation
// caused by it.
func cmpErr(first, err error) error {
	if first == nil || errors.Is(first, context.Canceled) {
		return err
	}
	return first
}

func abortAll(ctx context.Context, writers []*Writer) error {
	var errs []error
	for _, w := range writers {
		errs = append(errs, abortErr(ctx, w))
	}
	return errors.Join(errs...)
}
