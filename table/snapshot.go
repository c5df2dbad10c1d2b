package table

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kappa-lake/kappa/internal/store"
	"github.com/kappa-lake/kappa/txlog"
)

// fileKey identifies a file action in the replay: the URL-decoded path plus
// the deletion vector's unique id.
type fileKey struct {
	path string
	dv   string
}

func decodePath(p string) string {
	if !strings.Contains(p, "%") {
		return p
	}
	if d, err := url.PathUnescape(p); err == nil {
		return d
	}
	return p
}

func addKey(a *txlog.Add) fileKey {
	return fileKey{path: decodePath(a.Path), dv: a.DeletionVector.UniqueID()}
}

func removeKey(r *txlog.Remove) fileKey {
	return fileKey{path: decodePath(r.Path), dv: r.DeletionVector.UniqueID()}
}

// Snapshot is the state of a table at one version: protocol, metadata,
// application transaction versions and the live data files (unless loaded
// WithoutFiles). A Snapshot is safe for concurrent reads; Update must not
// run concurrently with other calls on the same Snapshot.
type Snapshot struct {
	table     *Table
	version   int64
	timestamp time.Time
	noFiles   bool // loaded WithoutFiles: files and tombstones stay empty

	protocol *txlog.Protocol
	metadata *txlog.Metadata
	schema   *txlog.StructType
	config   Config

	txns       map[string]*txlog.Txn
	domains    map[string]*txlog.DomainMetadata
	files      map[fileKey]*txlog.Add
	tombstones map[fileKey]*txlog.Remove

	sortOnce sync.Once
	sorted   []*txlog.Add
}

func newSnapshot(t *Table, noFiles bool) *Snapshot {
	return &Snapshot{
		table:      t,
		version:    -1,
		noFiles:    noFiles,
		txns:       map[string]*txlog.Txn{},
		domains:    map[string]*txlog.DomainMetadata{},
		files:      map[fileKey]*txlog.Add{},
		tombstones: map[fileKey]*txlog.Remove{},
	}
}

// Version is the snapshot's table version.
func (s *Snapshot) Version() int64 { return s.version }

// Timestamp is the commit time of the snapshot's version: its in-commit
// timestamp when in-commit timestamps are enabled at that version, else the
// modification time of its commit file.
func (s *Snapshot) Timestamp() time.Time { return s.timestamp }

// Protocol returns the table's protocol.
func (s *Snapshot) Protocol() txlog.Protocol { return cloneProtocol(s.protocol) }

// Metadata returns the table's metadata (a copy).
func (s *Snapshot) Metadata() txlog.Metadata { return cloneMetadata(s.metadata) }

// Schema is the table schema. Callers must not modify it.
func (s *Snapshot) Schema() *txlog.StructType { return s.schema }

// PartitionColumns are the table's partition columns.
func (s *Snapshot) PartitionColumns() []string { return slices.Clone(s.metadata.PartitionColumns) }

// Properties are the table properties (metaData.configuration), a copy.
func (s *Snapshot) Properties() map[string]string { return maps.Clone(s.metadata.Configuration) }

// Config is the typed view of the table properties.
func (s *Snapshot) Config() Config { return s.config }

// Table is the table this snapshot belongs to.
func (s *Snapshot) Table() *Table { return s.table }

// FileListLoaded reports whether the snapshot holds the file list (false
// for a snapshot loaded WithoutFiles).
func (s *Snapshot) FileListLoaded() bool { return !s.noFiles }

func (s *Snapshot) mustHaveFiles(method string) {
	if s.noFiles {
		panic("table: Snapshot." + method + " called on a snapshot loaded WithoutFiles")
	}
}

// NumFiles is the number of live data files.
func (s *Snapshot) NumFiles() int {
	s.mustHaveFiles("NumFiles")
	return len(s.files)
}

// Files returns the live data files ordered by path (then deletion vector
// id). The slice is shared between calls: callers must not modify it or
// the actions.
func (s *Snapshot) Files() []*txlog.Add {
	s.mustHaveFiles("Files")
	s.sortOnce.Do(func() {
		out := make([]*txlog.Add, 0, len(s.files))
		for _, a := range s.files {
			out = append(out, a)
		}
		slices.SortFunc(out, func(a, b *txlog.Add) int {
			if c := strings.Compare(a.Path, b.Path); c != 0 {
				return c
			}
			return strings.Compare(a.DeletionVector.UniqueID(), b.DeletionVector.UniqueID())
		})
		s.sorted = out
	})
	return s.sorted
}

// Tombstones returns the remove actions the snapshot still keeps (for
// checkpoints and vacuum), in no particular order.
func (s *Snapshot) Tombstones() []*txlog.Remove {
	s.mustHaveFiles("Tombstones")
	out := make([]*txlog.Remove, 0, len(s.tombstones))
	for _, r := range s.tombstones {
		out = append(out, r)
	}
	return out
}

// DomainMetadata returns the configuration of a (not removed) metadata
// domain.
func (s *Snapshot) DomainMetadata(domain string) (string, bool) {
	d, ok := s.domains[domain]
	if !ok || d.Removed {
		return "", false
	}
	return d.Configuration, true
}

// Txn returns the latest version recorded for an application id (txn
// action), honouring delta.setTransactionRetentionDuration.
func (s *Snapshot) Txn(appID string) (int64, bool) {
	t, ok := s.txns[appID]
	if !ok || s.txnExpired(t) {
		return 0, false
	}
	return t.Version, true
}

// Txns returns every live application id and its latest version.
func (s *Snapshot) Txns() map[string]int64 {
	out := make(map[string]int64, len(s.txns))
	for id, t := range s.txns {
		if !s.txnExpired(t) {
			out[id] = t.Version
		}
	}
	return out
}

func (s *Snapshot) txnExpired(t *txlog.Txn) bool {
	if s.config.SetTransactionRetention <= 0 || t.LastUpdated == nil {
		return false
	}
	cutoff := s.table.cfg.now().Add(-s.config.SetTransactionRetention).UnixMilli()
	return *t.LastUpdated <= cutoff
}

// replayer applies actions to a snapshot.
type replayer struct {
	s *Snapshot
	// ict of the newest commit read, with its version.
	lastInfo    *txlog.CommitInfo
	lastInfoVer int64
	pvIntern    map[string]map[string]*string
	pv1         map[string]map[string]map[string]*string
}

func (r *replayer) apply(a *txlog.Action, version int64, fromCheckpoint bool) {
	s := r.s
	switch {
	case s.noFiles && (a.Add != nil || a.Remove != nil):
	case a.Add != nil:
		k := addKey(a.Add)
		r.internPartitionValues(a.Add)
		s.files[k] = a.Add
		delete(s.tombstones, k)
	case a.Remove != nil:
		k := removeKey(a.Remove)
		delete(s.files, k)
		s.tombstones[k] = a.Remove
	case a.MetaData != nil:
		s.metadata = a.MetaData
	case a.Protocol != nil:
		s.protocol = a.Protocol
	case a.Txn != nil:
		s.txns[a.Txn.AppID] = a.Txn
	case a.DomainMetadata != nil:
		if a.DomainMetadata.Removed && !fromCheckpoint {
			delete(s.domains, a.DomainMetadata.Domain)
		} else {
			s.domains[a.DomainMetadata.Domain] = a.DomainMetadata
		}
	case a.CommitInfo != nil:
		if !fromCheckpoint {
			r.lastInfo, r.lastInfoVer = a.CommitInfo, version
		}
	}
}

// internPartitionValues makes adds with equal partition values share one
// map: a table has far fewer partitions than files, and a map per file is
// the bulk of a large snapshot's memory.
func (r *replayer) internPartitionValues(a *txlog.Add) {
	pv := a.PartitionValues
	if len(pv) == 0 || len(pv) > 8 {
		if pv != nil && len(pv) == 0 {
			a.PartitionValues = emptyPartitionValues
		}
		return
	}
	if len(pv) == 1 {
		// Fast path without building a key: a two-level lookup.
		for k, v := range pv {
			if v == nil {
				break // rare: use the general path
			}
			byVal := r.pv1[k]
			if m, ok := byVal[*v]; ok {
				a.PartitionValues = m
				return
			}
			if r.pv1 == nil {
				r.pv1 = map[string]map[string]map[string]*string{}
			}
			if byVal == nil {
				byVal = map[string]map[string]*string{}
				r.pv1[k] = byVal
			}
			if len(byVal) < maxInternedPartitions {
				byVal[*v] = pv
			}
			return
		}
	}
	var b strings.Builder
	if len(pv) == 1 {
		for k, v := range pv {
			writePV(&b, k, v)
		}
	} else {
		keys := make([]string, 0, len(pv))
		for k := range pv {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			writePV(&b, k, pv[k])
		}
	}
	key := b.String()
	if m, ok := r.pvIntern[key]; ok {
		a.PartitionValues = m
		return
	}
	if r.pvIntern == nil {
		r.pvIntern = map[string]map[string]*string{}
	}
	if len(r.pvIntern) < maxInternedPartitions {
		r.pvIntern[key] = pv
	}
}

// maxInternedPartitions bounds the intern table of one replay.
const maxInternedPartitions = 1 << 16

var emptyPartitionValues = map[string]*string{}

func writePV(b *strings.Builder, k string, v *string) {
	b.WriteString(k)
	if v == nil {
		b.WriteByte(0)
	} else {
		b.WriteByte(1)
		b.WriteString(*v)
	}
	b.WriteByte(0)
}

// loadSnapshot replays the segment of version (-1 = latest); noFiles loads
// it WithoutFiles.
func (t *Table) loadSnapshot(ctx context.Context, version int64, noFiles bool) (*Snapshot, error) {
	seg, err := t.listSegment(ctx, version)
	if err != nil {
		return nil, err
	}
	return t.replaySegment(ctx, seg, noFiles, nil)
}

func (t *Table) listSegment(ctx context.Context, version int64) (*txlog.Segment, error) {
	seg, err := txlog.ListSegment(ctx, t.st, version)
	if err != nil {
		if version >= 0 {
			return nil, fmt.Errorf("load version %d of %s: %w", version, t.st.URL(), err)
		}
		return nil, fmt.Errorf("load %s: %w", t.st.URL(), err)
	}
	return seg, nil
}

// replaySegment replays a log segment into a new snapshot. With noFiles the
// checkpoint's file actions are not read; onFile, if set, receives the file
// actions of the commits after the checkpoint in order (a checkpoint writer
// merges them with the old checkpoint's).
func (t *Table) replaySegment(ctx context.Context, seg *txlog.Segment, noFiles bool, onFile func(*txlog.Action)) (*Snapshot, error) {
	s := newSnapshot(t, noFiles)
	r := &replayer{s: s, lastInfoVer: -1}
	if len(seg.Checkpoint) > 0 {
		actions := txlog.ReadCheckpointState(ctx, t.st, seg.Checkpoint)
		if !noFiles {
			actions = txlog.ReadCheckpoint(ctx, t.st, seg.Checkpoint, s.schemaHint)
		}
		for a, err := range actions {
			if err != nil {
				return nil, fmt.Errorf("read checkpoint %d: %w", seg.CheckpointVersion, err)
			}
			r.apply(&a, seg.CheckpointVersion, true)
		}
		s.version = seg.CheckpointVersion
	}
	err := t.readCommits(ctx, seg.Commits, func(cd *commitData) error {
		for i := range cd.actions {
			a := &cd.actions[i]
			if onFile != nil && (a.Add != nil || a.Remove != nil) {
				onFile(a)
			}
			r.apply(a, cd.file.Version, false)
		}
		s.version = cd.file.Version
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.version = seg.Version
	if err := s.finish(ctx, r, seg.Commits); err != nil {
		return nil, err
	}
	return s, nil
}

// schemaHint is the table schema seen so far in a replay (nil before the
// metaData action), a type hint for reading typed checkpoint stats.
func (s *Snapshot) schemaHint() *txlog.StructType {
	if s.metadata == nil {
		return nil
	}
	st, _ := txlog.ParseSchema(s.metadata.SchemaString)
	return st
}

// commitData is one parsed commit.
type commitData struct {
	file    txlog.LogFile
	actions []txlog.Action
	err     error
}

// readCommits fetches and parses commits with a few workers, delivering
// them in order to fn. At most window commits are in flight or held.
func (t *Table) readCommits(ctx context.Context, files []txlog.LogFile, fn func(*commitData) error) error {
	const window = 4
	if len(files) == 0 {
		return nil
	}
	if len(files) == 1 {
		cd := t.readCommit(ctx, files[0])
		if cd.err != nil {
			return cd.err
		}
		return fn(cd)
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	slots := make([]chan *commitData, len(files))
	for i := range slots {
		slots[i] = make(chan *commitData, 1)
	}
	sem := make(chan struct{}, window)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i, f := range files {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				slots[i] <- t.readCommit(ctx, f)
			}()
		}
	}()
	for i := range files {
		var cd *commitData
		select {
		case cd = <-slots[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		if cd.err != nil {
			return cd.err
		}
		if err := fn(cd); err != nil {
			return err
		}
		<-sem
	}
	return nil
}

func (t *Table) readCommit(ctx context.Context, f txlog.LogFile) *commitData {
	cd := &commitData{file: f}
	data, err := t.st.Get(ctx, f.Key)
	if err != nil {
		cd.err = fmt.Errorf("read commit %d: %w", f.Version, err)
	} else if cd.actions, err = txlog.ParseCommit(data); err != nil {
		cd.err = fmt.Errorf("parse commit %d: %w", f.Version, err)
	}
	return cd
}

// finish validates the replayed state and derives what depends on it.
func (s *Snapshot) finish(ctx context.Context, r *replayer, commits []txlog.LogFile) error {
	if s.protocol == nil && s.metadata == nil {
		return fmt.Errorf("load version %d: %w: no protocol and no metaData action in the log", s.version, txlog.ErrCorruptLog)
	}
	if s.protocol == nil {
		return fmt.Errorf("load version %d: %w: no protocol action in the log", s.version, txlog.ErrCorruptLog)
	}
	if s.metadata == nil {
		return fmt.Errorf("load version %d: %w: no metaData action in the log", s.version, txlog.ErrCorruptLog)
	}
	if err := txlog.CheckReadable(*s.protocol); err != nil {
		return fmt.Errorf("load version %d: %w", s.version, err)
	}
	schema, err := parseSchema(s.metadata.SchemaString)
	if err != nil {
		return fmt.Errorf("load version %d: table schema: %w", s.version, err)
	}
	s.schema = schema
	s.config, _ = ParseConfig(s.metadata.Configuration)
	s.sortOnce = sync.Once{}
	s.sorted = nil

	// Commit time of the snapshot's version.
	if s.config.ictAt(s.version) {
		if r.lastInfoVer == s.version && r.lastInfo != nil && r.lastInfo.InCommitTimestamp != nil {
			s.timestamp = time.UnixMilli(*r.lastInfo.InCommitTimestamp)
			return nil
		}
		ts, err := s.table.commitTime(ctx, s.version, s.config)
		if err != nil {
			return err
		}
		s.timestamp = ts
		return nil
	}
	if n := len(commits); n > 0 && commits[n-1].Version == s.version && !commits[n-1].ModTime.IsZero() {
		s.timestamp = commits[n-1].ModTime
		return nil
	}
	ts, err := s.table.commitTime(ctx, s.version, s.config)
	if err != nil {
		return err
	}
	s.timestamp = ts
	return nil
}

// commitTime returns the raw commit time of version v (in-commit timestamp
// or commit file mtime).
func (t *Table) commitTime(ctx context.Context, v int64, cfg Config) (time.Time, error) {
	if cfg.ictAt(v) {
		ci, err := t.readCommitInfo(ctx, v)
		if err != nil {
			return time.Time{}, err
		}
		if ci == nil || ci.InCommitTimestamp == nil {
			return time.Time{}, fmt.Errorf("commit %d: %w: in-commit timestamps are enabled but commitInfo.inCommitTimestamp is missing", v, txlog.ErrCorruptLog)
		}
		return time.UnixMilli(*ci.InCommitTimestamp), nil
	}
	info, err := t.st.Stat(ctx, txlog.CommitKey(v))
	if errors.Is(err, store.ErrNotExist) {
		// The commit file was cleaned up; a checkpoint is all that is left.
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("stat commit %d: %w", v, err)
	}
	return info.ModTime, nil
}

var commitInfoPrefix = []byte(`{"commitInfo"`)

// readCommitInfo returns the commitInfo of version v (nil when it has none).
// It decodes only the commitInfo line when the file is laid out as writers
// do (one compact action per line).
func (t *Table) readCommitInfo(ctx context.Context, v int64) (*txlog.CommitInfo, error) {
	data, err := t.st.Get(ctx, txlog.CommitKey(v))
	if err != nil {
		return nil, fmt.Errorf("read commit %d: %w", v, err)
	}
	return parseCommitInfo(v, data)
}

func parseCommitInfo(v int64, data []byte) (*txlog.CommitInfo, error) {
	rest := data
	for len(rest) > 0 {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		line = bytes.TrimSpace(line)
		if bytes.HasPrefix(line, commitInfoPrefix) {
			acts, err := txlog.ParseCommit(line)
			if err == nil && len(acts) == 1 && acts[0].CommitInfo != nil {
				return acts[0].CommitInfo, nil
			}
			break
		}
	}
	acts, err := txlog.ParseCommit(data)
	if err != nil {
		return nil, fmt.Errorf("parse commit %d: %w", v, err)
	}
	for i := range acts {
		if acts[i].CommitInfo != nil {
			return acts[i].CommitInfo, nil
		}
	}
	return nil, nil
}

// updateReloadThreshold is the number of new commits above which Update
// reloads from the newest checkpoint instead of reading every commit.
const updateReloadThreshold = 1000

// Update brings the snapshot to the latest version by applying only the
// commits after Version(). It reports whether the version changed. Removed
// files are deleted from the snapshot's maps (and tombstones past the
// deleted-file retention dropped), so memory follows the table's live state,
// not the number of updates. If the commits after Version() are gone (log
// cleanup), the snapshot is reloaded from the newest checkpoint.
func (s *Snapshot) Update(ctx context.Context) (bool, error) {
	commits, err := txlog.ListCommits(ctx, s.table.st, s.version+1, -1)
	if err != nil && !errors.Is(err, txlog.ErrVersionNotFound) {
		return false, fmt.Errorf("update from version %d: %w", s.version, err)
	}
	if err == nil && len(commits) == 0 {
		return false, nil
	}
	if err != nil || commits[0].Version != s.version+1 || len(commits) > updateReloadThreshold {
		// The commits after this snapshot were cleaned up, or there are so
		// many that the newest checkpoint is the cheaper start: reload.
		fresh, err := s.table.loadSnapshot(ctx, -1, s.noFiles)
		if err != nil {
			return false, err
		}
		s.replaceWith(fresh)
		return true, nil
	}
	// Replay into a copy of the small state so a failure leaves s intact;
	// file maps are edited in place only after all commits were read.
	var parsed []*commitData
	if err := s.table.readCommits(ctx, commits, func(cd *commitData) error {
		parsed = append(parsed, cd)
		return nil
	}); err != nil {
		return false, fmt.Errorf("update from version %d: %w", s.version, err)
	}
	// Validate the newest protocol and metadata before touching the state,
	// so a failed Update leaves the snapshot as it was.
	proto, meta := s.protocol, s.metadata
	for _, cd := range parsed {
		for i := range cd.actions {
			if a := &cd.actions[i]; a.Protocol != nil {
				proto = a.Protocol
			} else if a.MetaData != nil {
				meta = a.MetaData
			}
		}
	}
	if err := txlog.CheckReadable(*proto); err != nil {
		return false, fmt.Errorf("update to version %d: %w", commits[len(commits)-1].Version, err)
	}
	if _, err := parseSchema(meta.SchemaString); err != nil {
		return false, fmt.Errorf("update to version %d: table schema: %w", commits[len(commits)-1].Version, err)
	}
	r := &replayer{s: s, lastInfoVer: -1}
	for _, cd := range parsed {
		for i := range cd.actions {
			r.apply(&cd.actions[i], cd.file.Version, false)
		}
		s.version = cd.file.Version
	}
	if err := s.finish(ctx, r, commits); err != nil {
		return true, err
	}
	s.expireTombstones()
	return true, nil
}

func (s *Snapshot) replaceWith(f *Snapshot) {
	s.version, s.timestamp = f.version, f.timestamp
	s.protocol, s.metadata, s.schema, s.config = f.protocol, f.metadata, f.schema, f.config
	s.txns, s.domains, s.files, s.tombstones = f.txns, f.domains, f.files, f.tombstones
	s.sortOnce = sync.Once{}
	s.sorted = nil
}

// expireTombstones drops tombstones older than the deleted-file retention.
func (s *Snapshot) expireTombstones() {
	cutoff := s.table.cfg.now().Add(-s.config.DeletedFileRetentionDuration).UnixMilli()
	for k, r := range s.tombstones {
		if tombstoneTime(r) < cutoff {
			delete(s.tombstones, k)
		}
	}
}

func tombstoneTime(r *txlog.Remove) int64 {
	if r.DeletionTimestamp == nil {
		return 0
	}
	return *r.DeletionTimestamp
}

// ChangesSince returns the file actions of the commits in (fromVersion,
// Version()]: the adds and the removes, in commit order. It reads the commit
// files, which must still exist (else an error wrapping
// txlog.ErrVersionNotFound).
func (s *Snapshot) ChangesSince(ctx context.Context, fromVersion int64) ([]*txlog.Add, []*txlog.Remove, error) {
	if fromVersion >= s.version {
		return nil, nil, nil
	}
	if fromVersion < -1 {
		fromVersion = -1
	}
	commits, err := txlog.ListCommits(ctx, s.table.st, fromVersion+1, s.version)
	if err != nil {
		return nil, nil, fmt.Errorf("changes since %d: %w", fromVersion, err)
	}
	if len(commits) == 0 || commits[0].Version != fromVersion+1 || commits[len(commits)-1].Version != s.version {
		return nil, nil, fmt.Errorf("changes since %d: %w: commits %d..%d are not all in the log", fromVersion, txlog.ErrVersionNotFound, fromVersion+1, s.version)
	}
	var adds []*txlog.Add
	var removes []*txlog.Remove
	err = s.table.readCommits(ctx, commits, func(cd *commitData) error {
		for i := range cd.actions {
			a := &cd.actions[i]
			if a.Add != nil {
				adds = append(adds, a.Add)
			}
			if a.Remove != nil {
				removes = append(removes, a.Remove)
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("changes since %d: %w", fromVersion, err)
	}
	return adds, removes, nil
}

func cloneProtocol(p *txlog.Protocol) txlog.Protocol {
	if p == nil {
		return txlog.Protocol{}
	}
	c := *p
	c.ReaderFeatures = slices.Clone(p.ReaderFeatures)
	c.WriterFeatures = slices.Clone(p.WriterFeatures)
	return c
}

func cloneMetadata(m *txlog.Metadata) txlog.Metadata {
	if m == nil {
		return txlog.Metadata{}
	}
	c := *m
	c.PartitionColumns = slices.Clone(m.PartitionColumns)
	c.Configuration = maps.Clone(m.Configuration)
	c.Format.Options = maps.Clone(m.Format.Options)
	return c
}

// parseSchema parses a schemaString; an absent one (some test logs omit it)
// is a schema without columns.
func parseSchema(schemaString string) (*txlog.StructType, error) {
	if strings.TrimSpace(schemaString) == "" {
		return &txlog.StructType{}, nil
	}
	return txlog.ParseSchema(schemaString)
}
