package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kappa-lake/kappa/internal/pq"
	"github.com/kappa-lake/kappa/internal/store"
	"github.com/kappa-lake/kappa/table"
	"github.com/kappa-lake/kappa/txlog"
)

// DLQSchema is the schema of the dead-letter table.
func DLQSchema() *txlog.StructType {
	f := func(name, typ string) *txlog.StructField {
		return &txlog.StructField{Name: name, Type: &txlog.PrimitiveType{Name: typ}, Nullable: true}
	}
	return &txlog.StructType{Fields: []*txlog.StructField{
		f("topic", txlog.TypeString),
		f("partition", txlog.TypeInteger),
		f("offset", txlog.TypeLong),
		f("key", txlog.TypeBinary),
		f("value", txlog.TypeBinary),
		f("error", txlog.TypeString),
		f("timestamp", txlog.TypeTimestamp),
		f("dead_lettered_at", txlog.TypeTimestamp),
	}}
}

// deadLetter is one message that could not become a row.
type deadLetter struct {
	topic     string
	partition int
	offset    int64
	key       []byte
	value     []byte
	err       string
	ts        time.Time
}

func (l *deadLetter) row() map[string]any {
	r := map[string]any{
		"topic":            l.topic,
		"partition":        int32(l.partition),
		"offset":           l.offset,
		"key":              l.key,
		"value":            l.value,
		"error":            l.err,
		"dead_lettered_at": time.Now().UTC(),
	}
	if !l.ts.IsZero() {
		r["timestamp"] = l.ts.UTC()
	}
	return r
}

// openTables opens the table and the DLQ table, creating them when allowed.
func (d *Daemon) openTables(ctx context.Context) error {
	o := &d.opts
	// Checkpoints run in the background (maintainer), not in Commit.
	topts := []table.Option{table.WithLogger(d.log), table.WithoutAutoCheckpoint()}
	open := func(url string) (*table.Table, error) {
		if o.wrapStore == nil {
			return table.Open(ctx, url, topts...)
		}
		st, err := store.Open(ctx, url)
		if err != nil {
			return nil, err
		}
		return table.OpenStore(ctx, o.wrapStore(st), topts...)
	}
	create := func(url string, schema *txlog.StructType, opts ...table.CreateOption) (*table.Table, error) {
		for _, o := range topts {
			opts = append(opts, o)
		}
		var t *table.Table
		var err error
		if o.wrapStore == nil {
			t, err = table.Create(ctx, url, schema, opts...)
		} else {
			var st store.Store
			if st, err = store.Open(ctx, url); err == nil {
				t, err = table.CreateInStore(ctx, o.wrapStore(st), schema, opts...)
			}
		}
		if errors.Is(err, table.ErrTableExists) {
			return open(url)
		}
		if err == nil {
			d.log.Info("created table", "table", t.URL())
		}
		return t, err
	}
	t, err := open(o.TableURL)
	if errors.Is(err, txlog.ErrTableNotFound) && o.Create {
		schema := &txlog.StructType{Fields: slices.Clone(o.Schema.Fields)}
		for _, f := range metadataFields(o.Metadata, o.Derived) {
			if schema.Field(f.Name) == nil {
				schema.Fields = append(schema.Fields, f)
			}
		}
		t, err = create(o.TableURL, schema, table.WithPartitionColumns(o.PartitionBy...))
	}
	if err != nil {
		return fmt.Errorf("open table %s: %w", o.TableURL, err)
	}
	d.tbl = t
	if o.DLQTable == "" {
		return nil
	}
	q, err := open(o.DLQTable)
	if errors.Is(err, txlog.ErrTableNotFound) {
		q, err = create(o.DLQTable, DLQSchema())
	}
	if err != nil {
		_ = t.Close()
		return fmt.Errorf("open dead-letter table %s: %w", o.DLQTable, err)
	}
	d.dlq = q
	return nil
}

// newDataWriter returns a Parquet data-file writer for the snapshot's table
// (schema, partition columns, codec and column mapping from its metadata).
func newDataWriter(snap *table.Snapshot) (*pq.FileWriter, error) {
	return pq.NewFileWriter(snap.Table().Store(), pq.Options{
		Schema:              snap.Schema(),
		PartitionColumns:    snap.PartitionColumns(),
		Properties:          snap.Properties(),
		IgnoreUnknownFields: true,
	})
}

// commitWithTxns commits adds with one txn per appId, after checking in the
// transaction's read snapshot that each appId's txn still equals expect (-1:
// none). The check is recorded as a read, so a concurrent commit that sets
// one of these appIds makes Commit fail instead of committing twice. moved
// lists the appIds found changed (then nothing was committed).
func commitWithTxns(ctx context.Context, t *table.Table, adds []*txlog.Add, expect, txns map[string]int64, op string, params map[string]any) (version int64, moved []string, err error) {
	for attempt := 0; ; attempt++ {
		tx, err := t.NewTransaction(ctx)
		if err != nil {
			return -1, nil, fmt.Errorf("new transaction on %s: %w", t.URL(), err)
		}
		for app, want := range expect {
			v, ok := tx.ReadTxn(app)
			if !ok {
				v = -1
			}
			if v != want {
				moved = append(moved, app)
			}
		}
		if len(moved) > 0 {
			return -1, moved, nil
		}
		tx.AddFiles(adds...)
		for app, v := range txns {
			tx.SetTxn(app, v)
		}
		tx.SetOperation(op, params)
		version, err = tx.Commit(ctx)
		if err == nil {
			return version, nil, nil
		}
		var ce *table.ConflictError
		switch {
		case errors.As(err, &ce) && ce.Kind == table.ConflictTransaction:
			// Someone else committed one of our appIds: re-read to see which.
			continue
		case errors.As(err, &ce) && attempt < 5:
			// Metadata or protocol changed (e.g. another daemon evolved the
			// schema): our files only lack added nullable columns; retry.
			continue
		case errors.Is(err, table.ErrCommitUnknown):
			// Did it land? The txns tell.
			snap, serr := t.Snapshot(ctx, table.WithoutFiles())
			if serr != nil {
				return -1, nil, fmt.Errorf("%w (and checking: %w)", err, serr)
			}
			landed := true
			for app, v := range txns {
				if got, ok := snap.Txn(app); !ok || got != v {
					landed = false
				}
			}
			if landed {
				return snap.Version(), nil, nil
			}
			continue
		}
		return -1, nil, fmt.Errorf("commit to %s: %w", t.URL(), err)
	}
}

// evolve adds the record's new top-level fields to the table schema: it
// commits the open batch (written with the old schema), then one metadata
// commit, and returns the row for the new schema.
func (g *generation) evolve(ctx, gctx context.Context, dec decoded) decoded {
	d := g.d
	cur := d.dec.Load()
	var add []*txlog.StructField
	for _, name := range dec.newFields {
		if cur.fields[name] == nil {
			add = append(add, &txlog.StructField{Name: name, Type: inferType(dec.raw[name]), Nullable: true})
		}
	}
	if len(add) > 0 {
		slices.SortFunc(add, func(a, b *txlog.StructField) int { return strings.Compare(a.Name, b.Name) })
		if err := g.flushRetry(ctx, gctx); err != nil {
			return decoded{err: fmt.Errorf("schema evolution: %w", err)}
		}
		if err := d.retry(ctx, gctx, "schema evolution", func() error { return g.addColumns(ctx, add) }); err != nil {
			return decoded{err: fmt.Errorf("schema evolution: %w", err)}
		}
	}
	cur = d.dec.Load()
	for _, name := range dec.newFields {
		if cur.fields[name] == nil {
			delete(dec.raw, name)
		}
	}
	return decoded{row: dec.raw}
}

// addColumns commits a metadata change adding nullable columns (skipping any
// another writer added meanwhile) and swaps in a decoder for the new schema.
func (g *generation) addColumns(ctx context.Context, add []*txlog.StructField) error {
	d := g.d
	for attempt := 0; attempt < 5; attempt++ {
		tx, err := d.tbl.NewTransaction(ctx)
		if err != nil {
			return err
		}
		md := tx.Metadata()
		schema, err := txlog.ParseSchema(md.SchemaString)
		if err != nil {
			return err
		}
		var added []string
		for _, f := range add {
			if schema.Field(f.Name) == nil {
				schema.Fields = append(schema.Fields, f)
				added = append(added, f.Name)
			}
		}
		if len(added) > 0 {
			s, err := txlog.MarshalSchema(schema)
			if err != nil {
				return err
			}
			md.SchemaString = s
			tx.SetMetadata(md)
			tx.SetOperation("ADD COLUMNS", map[string]any{"columns": added})
			if _, err := tx.Commit(ctx); err != nil {
				if errors.Is(err, table.ErrConflict) {
					continue
				}
				return err
			}
			d.m.SchemaChanges.Add(1)
			d.log.Info("schema evolved", "added", added)
		}
		if _, err := g.snap.Update(ctx); err != nil {
			return err
		}
		d.dec.Store(newDecoder(g.snap.Schema(), &d.opts))
		return nil
	}
	return fmt.Errorf("add columns: too many conflicts")
}
