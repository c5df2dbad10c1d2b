package reader

import (
	"context"
	"fmt"

	"github.com/kappa-lake/kappa/table"
	"github.com/kappa-lake/kappa/txlog"
)

// NewFileScan returns a scan of the given data files of the snapshot's
// table (typically a subset of snap.Files()), read with the snapshot's
// schema, partition columns and column mapping. Deletion vectors on the
// adds are applied.
func NewFileScan(snap *table.Snapshot, files []*txlog.Add, opts ...ScanOption) *Scan {
	md := snap.Metadata()
	return newScan(source{
		st:       snap.Table().Store(),
		schema:   snap.Schema(),
		partCols: snap.PartitionColumns(),
		config:   md.Configuration,
		files:    append([]*txlog.Add(nil), files...),
	}, opts)
}

// rewriteBatchRows bounds the rows handed to emit at once.
const rewriteBatchRows = 8192

// RewriteRows reads the rows of files (deletion vectors applied) and hands
// them to emit in chunks, as maps that table.Writer.Write accepts. It is the
// table.RowSource that table.Optimize uses to rewrite files.
func RewriteRows(ctx context.Context, snap *table.Snapshot, files []*txlog.Add, emit func([]map[string]any) error) error {
	scan := NewFileScan(snap, files, WithWorkers(1), WithBatchSize(rewriteBatchRows))
	for b, err := range scan.Batches(ctx) {
		if err != nil {
			return fmt.Errorf("read files to rewrite: %w", err)
		}
		n := b.NumRows()
		if n == 0 {
			continue
		}
		rows := make([]map[string]any, n)
		for i := range n {
			r := b.Row(i)
			m := make(map[string]any, len(r.Names))
			for j, name := range r.Names {
				m[name] = writableValue(r.Values[j])
			}
			rows[i] = m
		}
		if err := emit(rows); err != nil {
			return err
		}
	}
	return nil
}

// writableValue converts reader values the writer does not take as is
// (Decimal, map entries) into ones it does, recursively.
func writableValue(v any) any {
	switch x := v.(type) {
	case Decimal:
		return x.String()
	case *Decimal:
		if x == nil {
			return nil
		}
		return x.String()
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = writableValue(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = writableValue(e)
		}
		return out
	case []MapEntry:
		// A map column's value; the writer takes Go maps of any key type.
		out := make(map[any]any, len(x))
		for _, e := range x {
			out[writableValue(e.Key)] = writableValue(e.Value)
		}
		return out
	}
	return v
}
