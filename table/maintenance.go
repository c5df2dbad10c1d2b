package table

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/kappa-lake/kappa/internal/store"

	"github.com/kappa-lake/kappa/txlog"
)

// VacuumOptions configure Vacuum.
type VacuumOptions struct {
	// Retention: files younger than this are kept, and so are the files of
	// tombstones younger than it. 0 means the table's
	// delta.deletedFileRetentionDuration (default 7 days).
	Retention time.Duration
	// Force allows a Retention shorter than the table's
	// delta.deletedFileRetentionDuration (unsafe with concurrent readers
	// or writers of older versions).
	Force bool
	// DryRun lists what would be deleted without deleting.
	DryRun bool
	// Progress, when set, is called after every scanned batch and at the end.
	Progress func(VacuumProgress)
}

// VacuumProgress reports how far Vacuum got.
type VacuumProgress struct {
	Scanned int   // objects listed under the table root
	Deleted int   // files deleted (or, in a dry run, to delete)
	Bytes   int64 // their total size
	Done    bool
}

// VacuumResult summarises a Vacuum.
type VacuumResult struct {
	// Files are the keys deleted (or, in a dry run, to delete), sorted.
	Files   []string
	Bytes   int64
	Scanned int
	DryRun  bool
	// Cutoff is the modification-time limit: only older files were deleted.
	Cutoff time.Time
	// TempFiles are the temporary files of writers killed mid-write that
	// were removed (or, in a dry run, would be): stores that write through
	// temporary objects (local files) can leave them behind, invisible to
	// listings. Older than the cutoff only.
	TempFiles []string
}

const vacuumProgressEvery = 1000

// Vacuum deletes the files under the table root that the latest snapshot
// does not reference (neither as live files nor as tombstones younger than
// the retention) and whose modification time is older than the retention.
// It never touches _delta_log nor files in directories or with names
// starting with '_' or '.' (except '_'-prefixed partition directories
// "_col=value").
func (t *Table) Vacuum(ctx context.Context, opts VacuumOptions) (VacuumResult, error) {
	s, err := t.loadSnapshot(ctx, -1, false)
	if err != nil {
		return VacuumResult{}, fmt.Errorf("vacuum: %w", err)
	}
	if err := txlog.CheckWritable(*s.protocol); err != nil {
		return VacuumResult{}, fmt.Errorf("vacuum: %w", err)
	}
	retention := opts.Retention
	if retention == 0 {
		retention = s.config.DeletedFileRetentionDuration
	}
	if retention < 0 {
		return VacuumResult{}, fmt.Errorf("vacuum: %w: negative retention %s", ErrInvalidArgument, retention)
	}
	if retention < s.config.DeletedFileRetentionDuration && !opts.Force {
		return VacuumResult{}, fmt.Errorf("vacuum: %w: retention %s is shorter than the table's %s (%s); set Force to override",
			ErrInvalidArgument, retention, PropDeletedFileRetentionDuration, s.config.DeletedFileRetentionDuration)
	}
	now := t.cfg.now()
	cutoff := now.Add(-retention)
	keep := make(map[string]bool, len(s.files)+len(s.tombstones))
	root := t.st.URL()
	for _, a := range s.files {
		keepFile(keep, root, a.Path, a.DeletionVector)
	}
	for _, r := range s.tombstones {
		if tombstoneTime(r) >= cutoff.UnixMilli() {
			keepFile(keep, root, r.Path, r.DeletionVector)
		}
	}
	res := VacuumResult{DryRun: opts.DryRun, Cutoff: cutoff}
	report := func(done bool) {
		if opts.Progress != nil {
			opts.Progress(VacuumProgress{Scanned: res.Scanned, Deleted: len(res.Files), Bytes: res.Bytes, Done: done})
		}
	}
	for info, err := range t.st.List(ctx, "", "") {
		if err != nil {
			return res, fmt.Errorf("vacuum: list: %w", err)
		}
		res.Scanned++
		if res.Scanned%vacuumProgressEvery == 0 {
			report(false)
		}
		if hiddenKey(info.Key) || keep[info.Key] || !info.ModTime.Before(cutoff) {
			continue
		}
		if !opts.DryRun {
			if err := t.st.Delete(ctx, info.Key); err != nil {
				return res, fmt.Errorf("vacuum: delete %s: %w", info.Key, err)
			}
		}
		res.Files = append(res.Files, info.Key)
		res.Bytes += info.Size
	}
	sort.Strings(res.Files)
	if sw, ok := t.st.(store.TempSweeper); ok {
		tmp, err := sw.SweepTemp(ctx, cutoff, opts.DryRun)
		res.TempFiles = tmp
		if err != nil {
			return res, fmt.Errorf("vacuum: temporary files: %w", err)
		}
	}
	report(true)
	t.cfg.logger.Info("vacuum done", "table", t.URL(), "scanned", res.Scanned, "deleted", len(res.Files), "bytes", res.Bytes, "tempFiles", len(res.TempFiles), "dryRun", opts.DryRun)
	return res, nil
}

// keepFile marks a data file (and its deletion vector file) as referenced.
func keepFile(keep map[string]bool, root, p string, dv *txlog.DeletionVector) {
	if k, ok := relKey(root, decodePath(p)); ok {
		keep[k] = true
	}
	if dv == nil {
		return
	}
	switch dv.StorageType {
	case "u":
		if k, ok := dvRelPath(dv.PathOrInlineDv); ok {
			keep[k] = true
		}
	case "p":
		if k, ok := relKey(root, decodePath(dv.PathOrInlineDv)); ok {
			keep[k] = true
		}
	}
}

// relKey maps a file path from the log to a store key: relative paths are
// keys; absolute URIs under the table root are made relative.
func relKey(root, p string) (string, bool) {
	if !strings.Contains(p, "://") && !strings.HasPrefix(p, "/") {
		return p, true
	}
	r := strings.TrimSuffix(root, "/") + "/"
	if rest, ok := strings.CutPrefix(p, r); ok {
		return rest, true
	}
	// file:/path and file:///path spellings of the same root.
	if u, err := url.Parse(p); err == nil && u.Scheme == "file" {
		if ru, err := url.Parse(root); err == nil && ru.Scheme == "file" {
			if rest, ok := strings.CutPrefix(u.Path, strings.TrimSuffix(ru.Path, "/")+"/"); ok {
				return rest, true
			}
		}
	} else if strings.HasPrefix(p, "/") {
		if ru, err := url.Parse(root); err == nil && ru.Scheme == "file" {
			if rest, ok := strings.CutPrefix(p, strings.TrimSuffix(ru.Path, "/")+"/"); ok {
				return rest, true
			}
		}
	}
	return "", false
}

// hiddenKey reports keys Vacuum must not touch.
func hiddenKey(key string) bool {
	for _, part := range strings.Split(key, "/") {
		if strings.HasPrefix(part, ".") || (strings.HasPrefix(part, "_") && !strings.Contains(part, "=")) {
			return true
		}
	}
	return false
}

const z85Alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"

// dvRelPath returns the relative path of a "u" deletion vector file:
// <random prefix>/deletion_vector_<uuid>.bin, the uuid being the last 20
// characters Z85-encoded.
func dvRelPath(pathOrInline string) (string, bool) {
	if len(pathOrInline) < 20 {
		return "", false
	}
	prefix, enc := pathOrInline[:len(pathOrInline)-20], pathOrInline[len(pathOrInline)-20:]
	var raw [16]byte
	for i := 0; i < 4; i++ {
		var v uint32
		for j := 0; j < 5; j++ {
			d := strings.IndexByte(z85Alphabet, enc[i*5+j])
			if d < 0 {
				return "", false
			}
			v = v*85 + uint32(d)
		}
		binary.BigEndian.PutUint32(raw[i*4:], v)
	}
	h := hex.EncodeToString(raw[:])
	id := h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	name := "deletion_vector_" + id + ".bin"
	if prefix != "" {
		return prefix + "/" + name, true
	}
	return name, true
}

// CleanupResult summarises a CleanupLog.
type CleanupResult struct {
	// Deleted are the log keys removed, oldest first.
	Deleted []string
	// Cutoff is midnight UTC of now minus delta.logRetentionDuration.
	Cutoff time.Time
	// KeptCheckpoint is the checkpoint version the log now starts from (-1
	// when nothing could be cleaned).
	KeptCheckpoint int64
}

// CleanupLog deletes expired log files: with cutoff = midnight UTC of now
// minus delta.logRetentionDuration (default 30 days), it keeps the newest
// complete checkpoint at or before the newest commit whose (strictly
// increasing) file modification time is <= cutoff, and everything after it;
// older commits, checkpoints, checksum and compaction files are deleted,
// oldest first, so the log stays readable at every step.
func (t *Table) CleanupLog(ctx context.Context) (CleanupResult, error) {
	s, err := t.loadSnapshot(ctx, -1, true)
	if err != nil {
		return CleanupResult{}, fmt.Errorf("cleanup log: %w", err)
	}
	l, err := t.listLog(ctx, true)
	if err != nil {
		return CleanupResult{}, fmt.Errorf("cleanup log: %w", err)
	}
	cutoff := t.cfg.now().Add(-s.config.LogRetentionDuration).UTC().Truncate(24 * time.Hour)
	res := CleanupResult{Cutoff: cutoff, KeptCheckpoint: -1}
	newest := int64(-1)
	var prev int64
	for i, c := range l.commits {
		ts := c.ModTime.UnixMilli()
		if i > 0 && ts <= prev {
			ts = prev + 1
		}
		prev = ts
		if ts <= cutoff.UnixMilli() {
			newest = c.Version
		}
	}
	if newest < 0 {
		return res, nil
	}
	keep := int64(-1)
	for _, v := range l.checkpoints {
		if v <= newest && v <= s.version {
			keep = v
		}
	}
	if keep <= 0 {
		return res, nil
	}
	res.KeptCheckpoint = keep
	var del []txlog.LogFile
	for _, f := range l.all {
		if f.EndVersion < keep && f.Version < keep {
			del = append(del, f)
		}
	}
	sort.SliceStable(del, func(i, j int) bool { return del[i].Version < del[j].Version })
	for _, f := range del {
		if err := t.st.Delete(ctx, f.Key); err != nil {
			return res, fmt.Errorf("cleanup log: delete %s: %w", f.Key, err)
		}
		res.Deleted = append(res.Deleted, f.Key)
	}
	t.cfg.logger.Info("log cleanup done", "table", t.URL(), "cutoff", cutoff, "checkpoint", keep, "deleted", len(res.Deleted))
	return res, nil
}
