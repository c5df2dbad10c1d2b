package table

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/kappa-lake/kappa/txlog"
)

// Checkpoint writes a classic checkpoint of version (-1 = latest), updates
// _last_checkpoint and returns what it wrote there. The checkpoint holds the protocol, metadata,
// live txns and domains, the live files and the tombstones not yet expired by
// delta.deletedFileRetentionDuration.
//
// The file list is never held in memory: the previous checkpoint's file
// actions are streamed from it into the new one, minus those that the
// commits after it changed, whose file actions are the only ones held (so
// memory follows delta.checkpointInterval, not the size of the table). The
// new checkpoint is streamed to the store too. When a complete checkpoint of
// the version already exists it is kept and only _last_checkpoint is
// brought up to it.
func (t *Table) Checkpoint(ctx context.Context, version int64) (*txlog.LastCheckpoint, error) {
	seg, err := t.listSegment(ctx, version)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if len(seg.Checkpoint) > 0 && len(seg.Commits) == 0 {
		return t.pointLastCheckpoint(ctx, seg)
	}
	// Newest file action per key among the commits after the checkpoint.
	changed := map[fileKey]txlog.Action{}
	s, err := t.replaySegment(ctx, seg, true, func(a *txlog.Action) {
		if a.Add != nil {
			changed[addKey(a.Add)] = txlog.Action{Add: a.Add}
		} else {
			changed[removeKey(a.Remove)] = txlog.Action{Remove: a.Remove}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	d := s.checkpointState()
	cutoff := t.cfg.now().Add(-s.config.DeletedFileRetentionDuration).UnixMilli()
	d.Files = func(yield func(txlog.Action, error) bool) {
		if len(seg.Checkpoint) > 0 {
			for a, err := range txlog.ReadCheckpoint(ctx, t.st, seg.Checkpoint, s.schemaHint) {
				if err != nil {
					yield(txlog.Action{}, fmt.Errorf("read checkpoint %d: %w", seg.CheckpointVersion, err))
					return
				}
				var k fileKey
				switch {
				case a.Add != nil:
					k = addKey(a.Add)
				case a.Remove != nil:
					if tombstoneTime(a.Remove) < cutoff {
						continue
					}
					k = removeKey(a.Remove)
				default:
					continue
				}
				if _, ok := changed[k]; ok {
					continue
				}
				if !yield(a, nil) {
					return
				}
			}
		}
		keys := make([]fileKey, 0, len(changed))
		for k := range changed {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b fileKey) int {
			if c := strings.Compare(a.path, b.path); c != 0 {
				return c
			}
			return strings.Compare(a.dv, b.dv)
		})
		for _, k := range keys {
			a := changed[k]
			if a.Remove != nil && tombstoneTime(a.Remove) < cutoff {
				continue
			}
			if !yield(a, nil) {
				return
			}
		}
	}
	lc, err := txlog.WriteCheckpoint(ctx, t.st, s.version, d)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %d: %w", s.version, err)
	}
	return lc, nil
}

// pointLastCheckpoint makes _last_checkpoint name the segment's checkpoint
// when it names an older one (or none), counting the checkpoint's actions
// by streaming it.
func (t *Table) pointLastCheckpoint(ctx context.Context, seg *txlog.Segment) (*txlog.LastCheckpoint, error) {
	old, err := txlog.ReadLastCheckpoint(ctx, t.st)
	if err != nil && !errors.Is(err, txlog.ErrCorruptLog) {
		return nil, fmt.Errorf("checkpoint %d: %w", seg.CheckpointVersion, err)
	}
	if err == nil && old != nil && old.Version == seg.CheckpointVersion && old.NumOfAddFiles != nil {
		return old, nil
	}
	lc := &txlog.LastCheckpoint{Version: seg.CheckpointVersion, NumOfAddFiles: new(int64)}
	for a, err := range txlog.ReadCheckpoint(ctx, t.st, seg.Checkpoint, nil) {
		if err != nil {
			return nil, fmt.Errorf("checkpoint %d: read the existing checkpoint: %w", seg.CheckpointVersion, err)
		}
		lc.Size++
		if a.Add != nil {
			*lc.NumOfAddFiles++
		}
	}
	if n := len(seg.Checkpoint); n > 1 {
		lc.Parts = &n
	}
	if old != nil && old.Version > lc.Version {
		return lc, nil // _last_checkpoint already names a newer one
	}
	if err := txlog.WriteLastCheckpoint(ctx, t.st, lc); err != nil {
		return nil, fmt.Errorf("checkpoint %d: %w", seg.CheckpointVersion, err)
	}
	return lc, nil
}

// checkpointState is the checkpoint content other than files: protocol,
// metadata, the live txns and the domains, in a stable order.
func (s *Snapshot) checkpointState() txlog.CheckpointData {
	p := cloneProtocol(s.protocol)
	m := cloneMetadata(s.metadata)
	d := txlog.CheckpointData{Protocol: &p, Metadata: &m}
	ids := make([]string, 0, len(s.txns))
	for id, tx := range s.txns {
		if !s.txnExpired(tx) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		d.Txns = append(d.Txns, s.txns[id])
	}
	domains := make([]string, 0, len(s.domains))
	for name, dm := range s.domains {
		if !dm.Removed {
			domains = append(domains, name)
		}
	}
	slices.Sort(domains)
	for _, name := range domains {
		d.DomainMetadata = append(d.DomainMetadata, s.domains[name])
	}
	return d
}
