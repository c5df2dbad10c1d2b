package txlog

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/kappa-lake/kappa/internal/store"
)

// Segment is the set of log files needed to reconstruct one table version:
// the newest complete checkpoint at or before it plus the commits after the
// checkpoint up to the version.
type Segment struct {
	// Version is the table version the segment reconstructs.
	Version int64
	// Checkpoint holds every file of the chosen checkpoint (all parts of a
	// multi-part checkpoint, in part order); empty when there is none.
	Checkpoint []LogFile
	// CheckpointVersion is the chosen checkpoint's version, -1 if none.
	CheckpointVersion int64
	// Commits are the commit files in (CheckpointVersion, Version], ascending
	// and contiguous, with their listing Size and ModTime.
	Commits []LogFile
	// EarliestVersion is the oldest version the log can reconstruct: 0 when
	// commit 0 exists, else the oldest complete checkpoint's version.
	EarliestVersion int64
}

// ListSegment lists the log files that reconstruct version (-1 = latest).
//
// The _last_checkpoint file is a hint only: when it names a checkpoint at or
// before the target, the listing starts at that checkpoint's version (one
// short listing instead of the whole log); when it is missing, corrupt,
// stale, or names a checkpoint that does not exist or is incomplete, the
// whole log is listed. When the target is older than the hinted checkpoint,
// windows of 100, 1000, ... versions ending at the target are listed until
// one holds a complete checkpoint (falling back to listing the whole log).
// EarliestVersion comes from a Stat of commit 0 when the listing did not
// start at the beginning of the log. The newest complete checkpoint at or
// before the target is used (classic, multi-part with every part present, or V2).
// Checkpoints newer than the newest commit file are ignored unless the log
// holds no commit file at all.
//
// Errors: ErrTableNotFound when there is no log file under _delta_log/;
// ErrVersionNotFound (naming the available versions) when the target is
// newer than the latest version or older than EarliestVersion;
// ErrCorruptLog when commits the segment needs are missing.
func ListSegment(ctx context.Context, st store.Store, version int64) (*Segment, error) {
	if version < -1 {
		return nil, fmt.Errorf("%w: invalid version %d", ErrVersionNotFound, version)
	}
	hint, err := ReadLastCheckpoint(ctx, st)
	if err != nil && !errors.Is(err, ErrCorruptLog) {
		return nil, err
	}
	if hint != nil && (version < 0 || hint.Version <= version) {
		seg, ok, err := segmentFromHint(ctx, st, hint, version)
		if err != nil || ok {
			return seg, err
		}
	}
	if hint != nil && version >= 0 && hint.Version > version {
		// The log has checkpoints but the target is older than the
		// hinted one: look for a checkpoint in growing windows below the
		// target instead of listing the log from its start.
		seg, ok, err := segmentFromWindows(ctx, st, version)
		if err != nil || ok {
			return seg, err
		}
	}
	// List up to the target only; when that cannot reconstruct it, list
	// everything so the error names the versions that are available.
	files, err := listLog(ctx, st, "", version)
	if err != nil {
		return nil, err
	}
	if len(files) > 0 {
		l := newListing(files)
		seg, err := l.segment(version, l.earliest())
		if err == nil || version < 0 || !errors.Is(err, ErrVersionNotFound) && !errors.Is(err, ErrTableNotFound) {
			return seg, err
		}
	}
	if version >= 0 {
		if files, err = listLog(ctx, st, "", -1); err != nil {
			return nil, err
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%w: no delta log files under %s/%s", ErrTableNotFound, st.URL(), LogDir)
	}
	l := newListing(files)
	return l.segment(version, l.earliest())
}

// segmentFromHint builds the segment from a listing that starts at the
// hinted checkpoint. ok is false when the listing cannot decide (no
// complete checkpoint or no commit at or after the hint): the caller then
// lists the whole log.
func segmentFromHint(ctx context.Context, st store.Store, hint *LastCheckpoint, version int64) (*Segment, bool, error) {
	files, err := listLog(ctx, st, versionStartAfter(hint.Version), version)
	if err != nil {
		return nil, false, err
	}
	l := newListing(files)
	if len(l.commits) == 0 {
		return nil, false, nil
	}
	target := version
	if target < 0 {
		target = l.commits[len(l.commits)-1].Version
	}
	if target > l.commits[len(l.commits)-1].Version {
		// Out of range: the full listing gives the available versions.
		return nil, false, nil
	}
	if cp := l.newestCheckpoint(target); cp == nil {
		return nil, false, nil
	}
	earliest, err := scanEarliest(ctx, st)
	if err != nil {
		return nil, false, err
	}
	seg, err := l.segment(version, earliest)
	return seg, true, err
}

// firstWindow and windowGrowth size the listings of segmentFromWindows:
// versions (target-100, target], then (target-1000, target], ... until a
// window holds a complete checkpoint or reaches version 0.
const (
	firstWindow  = 100
	windowGrowth = 10
)

// segmentFromWindows builds the segment of version from listings of
// growing windows of versions ending at it, so that time travel to a
// version far below the latest reads only the log files near it. ok is
// false when no window short of the whole log holds a complete checkpoint
// at or before version together with commit version itself: the caller
// then lists the log from the start (which also produces the errors).
func segmentFromWindows(ctx context.Context, st store.Store, version int64) (*Segment, bool, error) {
	for span := int64(firstWindow); version-span > 0; span *= windowGrowth {
		files, err := listLog(ctx, st, versionStartAfter(version-span+1), version)
		if err != nil {
			return nil, false, err
		}
		l := newListing(files)
		if n := len(l.commits); n == 0 || l.commits[n-1].Version != version {
			return nil, false, nil
		}
		if cp := l.newestCheckpoint(version); cp == nil {
			continue
		}
		earliest, err := scanEarliest(ctx, st)
		if err != nil {
			return nil, false, err
		}
		seg, err := l.segment(version, earliest)
		return seg, true, err
	}
	return nil, false, nil
}

// ListCommits lists the commit files with from <= version <= to (to = -1:
// up to the latest), ascending, with their Size and ModTime. It returns an
// empty slice when no commit exists at or after from (the caller is up to
// date). Errors: ErrCorruptLog for a gap; ErrVersionNotFound when from is
// missing but later commits exist, or when to is beyond the latest commit.
func ListCommits(ctx context.Context, st store.Store, from, to int64) ([]LogFile, error) {
	if from < 0 || (to >= 0 && to < from) {
		return nil, fmt.Errorf("%w: invalid commit range %d..%d", ErrVersionNotFound, from, to)
	}
	files, err := listLog(ctx, st, versionStartAfter(from), to)
	if err != nil {
		return nil, err
	}
	var commits []LogFile
	for _, f := range files {
		if f.Kind == KindCommit && f.Version >= from {
			commits = append(commits, f)
		}
	}
	if len(commits) == 0 {
		if to >= 0 {
			return nil, fmt.Errorf("%w: commits %d..%d do not exist", ErrVersionNotFound, from, to)
		}
		return commits, nil
	}
	if commits[0].Version != from {
		return nil, fmt.Errorf("%w: commit %d does not exist (next commit is %d)", ErrVersionNotFound, from, commits[0].Version)
	}
	if err := checkContiguous(commits, from); err != nil {
		return nil, err
	}
	if last := commits[len(commits)-1].Version; to >= 0 && last < to {
		return nil, fmt.Errorf("%w: version %d: latest commit is %d", ErrVersionNotFound, to, last)
	}
	return commits, nil
}

// versionStartAfter is a List startAfter that sorts after every log file of
// versions below v and before every log file of version v ('~' sorts after
// '.', digits and letters).
func versionStartAfter(v int64) string {
	if v <= 0 {
		return ""
	}
	return fmt.Sprintf("%s%020d~", LogDir, v-1)
}

// listLog lists the log files under _delta_log/ after startAfter, stopping
// after version upTo (-1: list to the end).
func listLog(ctx context.Context, st store.Store, startAfter string, upTo int64) ([]LogFile, error) {
	var files []LogFile
	for info, err := range st.List(ctx, LogDir, startAfter) {
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", LogDir, err)
		}
		f, ok := ParseLogFile(info.Key)
		if !ok {
			if upTo >= 0 && strings.HasPrefix(info.Key, LogDir+"_") {
				break // past every versioned file
			}
			continue
		}
		if upTo >= 0 && f.Version > upTo {
			break
		}
		f.Size, f.ModTime = info.Size, info.ModTime
		files = append(files, f)
	}
	return files, nil
}

// scanEarliest finds the oldest reconstructable version. Commit 0 is
// looked up first (one Stat instead of a listing of the whole log: a file
// store reads the entire directory for any listing that starts at its
// beginning); when it is gone, a listing from the start of the log stops
// as soon as the answer is known.
func scanEarliest(ctx context.Context, st store.Store) (int64, error) {
	_, err := st.Stat(ctx, CommitKey(0))
	if err == nil {
		return 0, nil
	}
	if !errors.Is(err, store.ErrNotExist) {
		return -1, fmt.Errorf("stat %s: %w", CommitKey(0), err)
	}
	var group []LogFile
	for info, err := range st.List(ctx, LogDir, "") {
		if err != nil {
			return -1, fmt.Errorf("list %s: %w", LogDir, err)
		}
		f, ok := ParseLogFile(info.Key)
		if !ok || (f.Kind != KindCommit && !f.Kind.IsCheckpoint()) {
			continue
		}
		if f.Kind == KindCommit && f.Version == 0 {
			return 0, nil
		}
		if len(group) > 0 && f.Version != group[0].Version {
			if v, done := earliestInGroup(group); done {
				return v, nil
			}
			group = group[:0]
		}
		group = append(group, f)
	}
	if v, done := earliestInGroup(group); done {
		return v, nil
	}
	return -1, nil
}

// earliestInGroup decides the earliest version from the files of the
// oldest version group seen so far (files of one version).
func earliestInGroup(group []LogFile) (int64, bool) {
	if len(group) == 0 {
		return -1, false
	}
	v := group[0].Version
	for _, f := range group {
		if f.Kind == KindCommit && v == 0 {
			return 0, true
		}
	}
	if completeCheckpoint(group) != nil {
		return v, true
	}
	return -1, false
}

// listing is a parsed log listing.
type listing struct {
	commits     []LogFile           // ascending
	checkpoints map[int64][]LogFile // checkpoint files by version
	cpVersions  []int64             // ascending versions with checkpoint files
}

func newListing(files []LogFile) *listing {
	l := &listing{checkpoints: make(map[int64][]LogFile)}
	for _, f := range files {
		switch {
		case f.Kind == KindCommit:
			l.commits = append(l.commits, f)
		case f.Kind.IsCheckpoint():
			if _, seen := l.checkpoints[f.Version]; !seen {
				l.cpVersions = append(l.cpVersions, f.Version)
			}
			l.checkpoints[f.Version] = append(l.checkpoints[f.Version], f)
		}
	}
	// Listings are sorted by key, which sorts by version; sort anyway so a
	// store that does not sort cannot produce a wrong segment.
	slices.SortFunc(l.commits, func(a, b LogFile) int { return cmp.Compare(a.Version, b.Version) })
	slices.Sort(l.cpVersions)
	return l
}

// newestCheckpoint returns the files of the newest complete checkpoint at
// or before target, ignoring checkpoints newer than the newest commit when
// there are commits.
func (l *listing) newestCheckpoint(target int64) []LogFile {
	limit := target
	if n := len(l.commits); n > 0 && l.commits[n-1].Version < limit {
		limit = l.commits[n-1].Version
	}
	for i := len(l.cpVersions) - 1; i >= 0; i-- {
		v := l.cpVersions[i]
		if v > limit {
			continue
		}
		if cp := completeCheckpoint(l.checkpoints[v]); cp != nil {
			return cp
		}
	}
	return nil
}

// latest returns the newest version of the listing: the newest commit, or
// the newest complete checkpoint when there is no commit; -1 if neither.
func (l *listing) latest() int64 {
	if n := len(l.commits); n > 0 {
		return l.commits[n-1].Version
	}
	if cp := l.newestCheckpoint(1<<63 - 1); cp != nil {
		return cp[0].Version
	}
	return -1
}

// earliest returns the oldest reconstructable version of a full listing.
func (l *listing) earliest() int64 {
	if len(l.commits) > 0 && l.commits[0].Version == 0 {
		return 0
	}
	for _, v := range l.cpVersions {
		if completeCheckpoint(l.checkpoints[v]) != nil {
			return v
		}
	}
	return -1
}

// segment builds the segment for version (-1: latest).
func (l *listing) segment(version, earliest int64) (*Segment, error) {
	latest := l.latest()
	if latest < 0 {
		return nil, fmt.Errorf("%w: no commit or complete checkpoint in the log", ErrTableNotFound)
	}
	target := version
	if target < 0 {
		target = latest
	}
	if target > latest {
		return nil, versionNotFound(target, earliest, latest)
	}
	seg := &Segment{Version: target, CheckpointVersion: -1, EarliestVersion: earliest}
	if cp := l.newestCheckpoint(target); cp != nil {
		seg.Checkpoint, seg.CheckpointVersion = cp, cp[0].Version
	}
	i, _ := slices.BinarySearchFunc(l.commits, seg.CheckpointVersion+1, func(f LogFile, v int64) int { return cmp.Compare(f.Version, v) })
	for ; i < len(l.commits) && l.commits[i].Version <= target; i++ {
		seg.Commits = append(seg.Commits, l.commits[i])
	}
	if seg.CheckpointVersion < 0 && (len(seg.Commits) == 0 || seg.Commits[0].Version != 0) {
		if earliest >= 0 {
			return nil, versionNotFound(target, earliest, latest)
		}
		return nil, fmt.Errorf("%w: commit 0 is missing and no complete checkpoint precedes version %d", ErrCorruptLog, target)
	}
	if seg.Version == seg.CheckpointVersion {
		return seg, nil
	}
	if err := checkContiguous(seg.Commits, seg.CheckpointVersion+1); err != nil {
		return nil, err
	}
	if last := seg.Commits[len(seg.Commits)-1].Version; last != target {
		return nil, fmt.Errorf("%w: versions not contiguous: missing %d", ErrCorruptLog, last+1)
	}
	return seg, nil
}

func versionNotFound(target, earliest, latest int64) error {
	if earliest < 0 {
		return fmt.Errorf("%w: version %d cannot be reconstructed (latest version is %d)", ErrVersionNotFound, target, latest)
	}
	return fmt.Errorf("%w: version %d: available versions: %d..%d", ErrVersionNotFound, target, earliest, latest)
}

// checkContiguous checks that commits hold exactly the versions from, from+1, ...
func checkContiguous(commits []LogFile, from int64) error {
	want := from
	for _, c := range commits {
		if c.Version != want {
			return fmt.Errorf("%w: versions not contiguous: missing %d", ErrCorruptLog, want)
		}
		want++
	}
	if len(commits) == 0 {
		return fmt.Errorf("%w: versions not contiguous: missing %d", ErrCorruptLog, from)
	}
	return nil
}

// completeCheckpoint picks a complete checkpoint among the checkpoint files
// of one version: a V2 checkpoint (smallest key), else a classic
// checkpoint, else the multi-part set with every part present (the one with
// the fewest parts when several are complete). Nil when none is complete.
func completeCheckpoint(files []LogFile) []LogFile {
	var v2, classic *LogFile
	sets := map[int][]LogFile{}
	for i := range files {
		f := &files[i]
		switch f.Kind {
		case KindV2Checkpoint:
			if v2 == nil || f.Key < v2.Key {
				v2 = f
			}
		case KindCheckpoint:
			classic = f
		case KindMultiPartCheckpoint:
			sets[f.Parts] = append(sets[f.Parts], *f)
		}
	}
	if v2 != nil {
		return []LogFile{*v2}
	}
	if classic != nil {
		return []LogFile{*classic}
	}
	var best []LogFile
	for parts, set := range sets {
		byPart := make(map[int]LogFile, len(set))
		for _, f := range set {
			byPart[f.Part] = f
		}
		if len(byPart) != parts || (best != nil && parts >= len(best)) {
			continue
		}
		best = make([]LogFile, 0, parts)
		for p := 1; p <= parts; p++ {
			best = append(best, byPart[p])
		}
	}
	return best
}
