package table

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/kappa-lake/kappa/txlog"
)

// Checkpoint writes a classic checkpoint of version (-1 = latest) and
// updates _last_checkpoint. The checkpoint holds the protocol, metadata,
// live txns and domains, the live files and the tombstones not yet expired by
// delta.deletedFileRetentionDuration.
func (t *Table) Checkpoint(ctx context.Context, version int64) error {
	s, err := t.loadSnapshot(ctx, version)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return s.WriteCheckpoint(ctx)
}

// WriteCheckpoint writes a checkpoint of this snapshot's version.
func (s *Snapshot) WriteCheckpoint(ctx context.Context) error {
	if _, err := txlog.WriteCheckpoint(ctx, s.table.st, s.version, s.checkpointData()); err != nil {
		return fmt.Errorf("checkpoint %d: %w", s.version, err)
	}
	return nil
}

func (s *Snapshot) checkpointData() txlog.CheckpointData {
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
	d.Adds = s.Files()
	cutoff := s.table.cfg.now().Add(-s.config.DeletedFileRetentionDuration).UnixMilli()
	for _, r := range s.tombstones {
		if tombstoneTime(r) >= cutoff {
			d.Removes = append(d.Removes, r)
		}
	}
	slices.SortFunc(d.Removes, func(a, b *txlog.Remove) int { return strings.Compare(a.Path, b.Path) })
	return d
}
