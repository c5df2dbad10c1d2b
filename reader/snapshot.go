package reader

import (
	"context"
	"fmt"

	"github.com/kappa-lake/kappa/table"
	"github.com/kappa-lake/kappa/txlog"
)

// NewScan returns a scan of the snapshot's live files.
func NewScan(snap *table.Snapshot, opts ...ScanOption) *Scan {
	md := snap.Metadata()
	return newScan(source{
		st:       snap.Table().Store(),
		schema:   snap.Schema(),
		partCols: snap.PartitionColumns(),
		config:   md.Configuration,
		files:    snap.Files(),
	}, opts)
}

// ChangeSet is the difference between two versions of a table: the data
// files added in (FromVersion, ToVersion] that are still live at ToVersion,
// and the files removed in that range that existed at FromVersion (a file
// both added and removed inside the range appears in neither list).
type ChangeSet struct {
	FromVersion, ToVersion int64
	Added                  []*txlog.Add
	Removed                []*txlog.Remove
	// DataChanged is false when every action had dataChange=false (for
	// example OPTIMIZE): the rows are unchanged even though files moved.
	DataChanged bool
	scan        *Scan
}

// Scan returns a scan of the added files (with the options given to
// Changes), using the schema at ToVersion.
func (c *ChangeSet) Scan() *Scan { return c.scan }

// Changes returns the files added and removed between fromVersion
// (exclusive) and toVersion (inclusive; -1 = latest), and a scan of the added
// rows. Incremental consumers add the scanned rows to a view computed at
// fromVersion; when Removed holds files with dataChange=true the view must
// be recomputed (or the removed rows retracted by scanning them at
// fromVersion).
func Changes(ctx context.Context, tbl *table.Table, fromVersion, toVersion int64, opts ...ScanOption) (*ChangeSet, error) {
	var sopts []table.SnapshotOption
	if toVersion >= 0 {
		sopts = append(sopts, table.AtVersion(toVersion))
	}
	snap, err := tbl.Snapshot(ctx, sopts...)
	if err != nil {
		return nil, fmt.Errorf("changes: %w", err)
	}
	if fromVersion > snap.Version() {
		return nil, fmt.Errorf("changes: from version %d is after to version %d", fromVersion, snap.Version())
	}
	adds, removes, err := snap.ChangesSince(ctx, fromVersion)
	if err != nil {
		return nil, fmt.Errorf("changes: %w", err)
	}
	type key struct{ path, dv string }
	addKey := func(p string, dv *txlog.DeletionVector) key {
		if d, err := unescapePath(p); err == nil {
			p = d
		}
		return key{p, dv.UniqueID()}
	}
	cs := &ChangeSet{FromVersion: fromVersion, ToVersion: snap.Version()}
	// ChangesSince gives adds and removes separately in commit order; a
	// path is added at most once per commit, so an add followed by a remove
	// of the same key inside the range cancels out. Use the live set at
	// ToVersion to decide which adds survived.
	live := map[key]bool{}
	for _, a := range snap.Files() {
		live[addKey(a.Path, a.DeletionVector)] = true
	}
	added := map[key]bool{}
	for _, a := range adds {
		if a.DataChange {
			cs.DataChanged = true
		}
		k := addKey(a.Path, a.DeletionVector)
		if live[k] && !added[k] {
			added[k] = true
			cs.Added = append(cs.Added, a)
		}
	}
	for _, r := range removes {
		if r.DataChange {
			cs.DataChanged = true
		}
		k := addKey(r.Path, r.DeletionVector)
		if !added[k] {
			cs.Removed = append(cs.Removed, r)
		}
	}
	md := snap.Metadata()
	cs.scan = newScan(source{
		st:       tbl.Store(),
		schema:   snap.Schema(),
		partCols: snap.PartitionColumns(),
		config:   md.Configuration,
		files:    cs.Added,
	}, opts)
	return cs, nil
}
