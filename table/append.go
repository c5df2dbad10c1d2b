package table

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	"github.com/kappa-lake/kappa/internal/pq"
	"github.com/kappa-lake/kappa/txlog"
)

// ErrSchemaMismatch reports a row that does not fit the table schema. The
// error is a *RowError naming the row index and the column.
var ErrSchemaMismatch = pq.ErrSchemaMismatch

// RowError is the error of a row that does not fit the schema: Row is its
// index in the append (0-based), Column its Delta path ("a.b[2]", "m[key]").
type RowError = pq.RowError

// TimeUnit says how numbers given for timestamp columns are read.
type TimeUnit = pq.TimeUnit

// Units of numeric timestamps.
const (
	Millis = pq.Millis
	Micros = pq.Micros
)

// AppendOption configures Append, AppendRows and NewWriter.
type AppendOption func(*appendConfig)

type appendConfig struct {
	opts   pq.Options
	appID  string
	txnVer int64
	hasTxn bool
}

// WithIgnoreUnknownFields drops row fields that are not table columns
// (default: such a row is an error).
func WithIgnoreUnknownFields() AppendOption {
	return func(c *appendConfig) { c.opts.IgnoreUnknownFields = true }
}

// WithTimestampUnit sets how numbers are read for timestamp columns
// (default Millis).
func WithTimestampUnit(u TimeUnit) AppendOption {
	return func(c *appendConfig) { c.opts.TimestampUnit = u }
}

// WithTargetFileSize starts a new data file once a file reaches n bytes
// (default 128 MiB).
func WithTargetFileSize(n int64) AppendOption {
	return func(c *appendConfig) { c.opts.TargetFileSize = n }
}

// WithRowGroupRows bounds the rows of a Parquet row group (default 131072).
func WithRowGroupRows(n int) AppendOption {
	return func(c *appendConfig) { c.opts.MaxRowsPerRowGroup = n }
}

// WithCompression overrides the codec (zstd, snappy, gzip, lz4,
// uncompressed); the default is the table's delta.parquet.compression.codec,
// else zstd.
func WithCompression(codec string) AppendOption {
	return func(c *appendConfig) { c.opts.Codec = codec }
}

// WithAppTransaction records txn{appID, version} in the append's commit, for
// exactly-once writers (see Snapshot.Txn). Ignored by NewWriter.
func WithAppTransaction(appID string, version int64) AppendOption {
	return func(c *appendConfig) { c.appID, c.txnVer, c.hasTxn = appID, version, true }
}

// Writer turns rows into data files of a table (without committing them):
// the lower-level API under Append for callers that buffer and commit
// themselves (ingest). It is not safe for concurrent use.
type Writer struct {
	fw *pq.FileWriter
}

// NewWriter returns a writer for files of the snapshot's table, using its
// schema, partition columns and properties.
func NewWriter(ctx context.Context, snap *Snapshot, opts ...AppendOption) (*Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var c appendConfig
	for _, o := range opts {
		o(&c)
	}
	return newWriter(snap.Table(), snap.Schema(), snap.PartitionColumns(), snap.Properties(), &c)
}

func newWriter(t *Table, schema *txlog.StructType, partCols []string, props map[string]string, c *appendConfig) (*Writer, error) {
	o := c.opts
	o.Schema, o.PartitionColumns, o.Properties = schema, partCols, props
	fw, err := pq.NewFileWriter(t.Store(), o)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return &Writer{fw: fw}, nil
}

// Write buffers rows given as maps keyed by column name: decoded JSON
// (json.Number or float64, string, bool, nil, []any, map[string]any) or
// native Go values (int64, float64, time.Time, []byte, slices, maps). A row
// that does not fit fails with a *RowError wrapping ErrSchemaMismatch; the
// rows before it stay buffered.
func (w *Writer) Write(ctx context.Context, rows []map[string]any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return w.fw.Write(ctx, rows)
}

// WriteStructs buffers rows given as Go structs (or pointers to structs).
// Exported fields map to columns by the `delta:"name"` tag, else by exact
// name, else case-insensitively; `delta:"-"` skips a field.
func WriteStructs[T any](ctx context.Context, w *Writer, rows []T) error {
	return pq.WriteStructs(ctx, w.fw, rows)
}

// Rows is the number of rows accepted so far.
func (w *Writer) Rows() int64 { return w.fw.Rows() }

// BufferedBytes estimates the memory held by rows not yet flushed.
func (w *Writer) BufferedBytes() int64 { return w.fw.BufferedBytes() }

// Flush writes every buffered row to data files and returns the adds of the
// files finished since the last Flush. The writer stays usable.
func (w *Writer) Flush(ctx context.Context) ([]*txlog.Add, error) { return w.fw.Flush(ctx) }

// Close flushes and returns the adds not yet returned by Flush.
func (w *Writer) Close(ctx context.Context) ([]*txlog.Add, error) { return w.fw.Close(ctx) }

// Abort deletes every data file this writer stored (best effort): use it
// when the files will not be committed.
func (w *Writer) Abort(ctx context.Context) error { return w.fw.Abort(ctx) }

// Append writes rows (see Writer.Write) as new data files and commits them
// in one blind-append transaction (operation WRITE, mode Append). It returns
// the committed version. A row that does not fit the schema fails the whole
// append: nothing is committed and the files already written are deleted.
// With no rows nothing is committed and the current version is returned.
func (t *Table) Append(ctx context.Context, rows []map[string]any, opts ...AppendOption) (int64, error) {
	return appendWith(ctx, t, opts, func(w *Writer) error { return w.Write(ctx, rows) })
}

// AppendRows is Append for Go structs (see WriteStructs for the mapping).
func AppendRows[T any](ctx context.Context, t *Table, rows []T, opts ...AppendOption) (int64, error) {
	return appendWith(ctx, t, opts, func(w *Writer) error { return WriteStructs(ctx, w, rows) })
}

// SchemaOf infers a table schema from a Go struct type (see pq.SchemaOf):
// int64/int -> long, int32 -> integer, float64 -> double, string -> string,
// bool -> boolean, []byte -> binary, time.Time -> timestamp, nested structs,
// slices and maps; pointers, slices and maps are nullable. Use the tag
// option type= to choose another type (`delta:"day,type=date"`).
func SchemaOf[T any]() (*txlog.StructType, error) {
	st, err := pq.SchemaOf(reflect.TypeFor[T]())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return st, nil
}

func appendWith(ctx context.Context, t *Table, opts []AppendOption, write func(*Writer) error) (int64, error) {
	var c appendConfig
	for _, o := range opts {
		o(&c)
	}
	tx, err := t.NewTransaction(ctx)
	if err != nil {
		return -1, fmt.Errorf("append: %w", err)
	}
	meta := tx.Metadata()
	schema, err := txlog.ParseSchema(meta.SchemaString)
	if err != nil {
		return -1, fmt.Errorf("append: table schema: %w", err)
	}
	w, err := newWriter(t, schema, meta.PartitionColumns, meta.Configuration, &c)
	if err != nil {
		return -1, fmt.Errorf("append: %w", err)
	}
	if err := write(w); err != nil {
		return -1, errors.Join(fmt.Errorf("append: %w", err), abortErr(ctx, w))
	}
	adds, err := w.Close(ctx)
	if err != nil {
		return -1, errors.Join(fmt.Errorf("append: %w", err), abortErr(ctx, w))
	}
	if len(adds) == 0 && !c.hasTxn {
		return tx.ReadVersion(), nil
	}
	tx.AddFiles(adds...)
	if c.hasTxn {
		tx.SetTxn(c.appID, c.txnVer)
	}
	partBy, _ := json.Marshal(append([]string{}, meta.PartitionColumns...))
	tx.SetOperation("WRITE", map[string]any{"mode": "Append", "partitionBy": string(partBy)})
	v, err := tx.Commit(ctx)
	if err != nil {
		if errors.Is(err, ErrCommitUnknown) {
			// the commit may have landed: its files must stay
			return -1, fmt.Errorf("append: %w", err)
		}
		return -1, errors.Join(fmt.Errorf("append: %w", err), abortErr(ctx, w))
	}
	return v, nil
}

func abortErr(ctx context.Context, w *Writer) error {
	if err := w.Abort(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("delete uncommitted data files: %w", err)
	}
	return nil
}
