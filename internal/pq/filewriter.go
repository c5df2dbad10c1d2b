package pq

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/gzip"
	"github.com/parquet-go/parquet-go/compress/lz4"
	"github.com/parquet-go/parquet-go/compress/snappy"
	"github.com/parquet-go/parquet-go/compress/uncompressed"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/kappa-lake/kappa/txlog"
)

// Defaults of [Options].
const (
	DefaultTargetFileSize     = 128 << 20
	DefaultMaxRowsPerRowGroup = 128 << 10
	DefaultMaxRowGroupBytes   = 64 << 20
)

// Table properties read by the writer.
const (
	PropCompressionCodec = "delta.parquet.compression.codec"
	PropColumnMapping    = "delta.columnMapping.mode"
)

// ErrInvalidOptions reports unusable writer options.
var ErrInvalidOptions = errors.New("invalid writer options")

// Putter is the part of store.Store the writer needs.
type Putter interface {
	Put(ctx context.Context, key string, data []byte) error
	Delete(ctx context.Context, key string) error
}

// Options configure a [FileWriter].
type Options struct {
	// Schema is the full table schema (partition columns included).
	Schema *txlog.StructType
	// PartitionColumns are top-level column names (metaData.partitionColumns).
	PartitionColumns []string
	// Properties is the table configuration (codec, column mapping, stats columns).
	Properties map[string]string
	// Codec overrides delta.parquet.compression.codec: zstd (default), snappy,
	// gzip, lz4 (LZ4_RAW) or uncompressed.
	Codec string
	// TargetFileSize starts a new file once a file reaches it (bytes, checked
	// after each row group). Default 128 MiB.
	TargetFileSize int64
	// MaxRowsPerRowGroup and MaxRowGroupBytes (estimated, uncompressed) bound
	// a row group. Defaults 131072 rows and 64 MiB.
	MaxRowsPerRowGroup int
	MaxRowGroupBytes   int64
	// IgnoreUnknownFields drops row keys that are not table columns instead of
	// failing the row.
	IgnoreUnknownFields bool
	// TimestampUnit is how numbers are read for timestamp columns (Millis default).
	TimestampUnit TimeUnit
	// Now stamps add.modificationTime (default time.Now).
	Now func() time.Time
}

// FileWriter writes rows into Delta data files. It is not safe for
// concurrent use.
type FileWriter struct {
	dst      Putter
	opts     Options
	plan     *plan
	stats    *statsPlan
	cfg      writeCfg
	codec    compress.Codec
	codecExt string
	mapping  string

	partNames []string // logical
	partPhys  []string
	partTypes []txlog.DataType

	parts   map[string]*partFile
	single  *partFile
	written []*txlog.Add
	keys    []string // every object put, for Abort
	rows    int64
	fileSeq int
	scratch []parquet.Value
	pvs     []*string
	keyBuf  []byte
	closed  bool

	encoders map[reflect.Type]*structEncoder
	slots    *slotLayout // layout of the last WriteSlots row

	// A chunk being encoded in the background (see pushChunk): at most one.
	flying   chan error // receives its result; nil when none
	flyPart  *partFile
	flyChunk *colSet
	err      error // a failed background encode: the writer is unusable
}

// partFile is the open output of one partition.
type partFile struct {
	values []*string
	dir    string
	cs     *colSet
	spare  *colSet // an empty chunk buffer to swap in (nil: none yet)
	buf    *bytes.Buffer
	// pw stays on the deprecated untyped Writer: its suggested replacement,
	// NewGenericWriter[any], eagerly builds a reflection-based row encoder we
	// never use (rows go through ColumnWriters), and that builder panics on
	// valid Delta schemas, e.g. a map whose value struct has a field name
	// containing a comma.
	pw      *parquet.Writer //nolint:staticcheck // SA1019: the replacement panics on valid schemas, see above
	st      []colStats
	records int64 // rows in the row groups flushed to the current file
	rgRows  int   // rows handed to pw's column writers, not yet flushed
	rgBytes int64 // uncompressed estimate of those rows
}

// Rows are buffered in chunks of at most chunkRows rows (fewer when they
// reach chunkBytes) before they are handed to the parquet column writers,
// which encode and compress pages as they fill; so the uncompressed data
// held per open file is one chunk, not a row group.
const (
	chunkRows  = 1024
	chunkBytes = 1 << 20
)

func codecFor(name string) (compress.Codec, string, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "", "zstd":
		return &zstd.Codec{Level: zstd.SpeedDefault}, "zstd", nil
	case "snappy":
		return &snappy.Codec{}, "snappy", nil
	case "gzip", "gz":
		return &gzip.Codec{}, "gz", nil
	case "lz4", "lz4_raw":
		return &lz4.Codec{}, "lz4raw", nil
	case "uncompressed", "none":
		return &uncompressed.Codec{}, "", nil
	}
	return nil, "", fmt.Errorf("%w: unknown compression codec %q", ErrInvalidOptions, name)
}

// NewFileWriter returns a writer putting files under dst (the table root).
func NewFileWriter(dst Putter, opts Options) (*FileWriter, error) {
	if opts.Schema == nil {
		return nil, fmt.Errorf("%w: no schema", ErrInvalidOptions)
	}
	w := &FileWriter{dst: dst, opts: opts, parts: map[string]*partFile{}}
	if w.opts.TargetFileSize <= 0 {
		w.opts.TargetFileSize = DefaultTargetFileSize
	}
	if w.opts.MaxRowsPerRowGroup <= 0 {
		w.opts.MaxRowsPerRowGroup = DefaultMaxRowsPerRowGroup
	}
	if w.opts.MaxRowGroupBytes <= 0 {
		w.opts.MaxRowGroupBytes = DefaultMaxRowGroupBytes
	}
	if w.opts.Now == nil {
		w.opts.Now = time.Now
	}
	codecName := opts.Codec
	if codecName == "" {
		codecName = opts.Properties[PropCompressionCodec]
	}
	var err error
	if w.codec, w.codecExt, err = codecFor(codecName); err != nil {
		return nil, err
	}
	w.mapping = opts.Properties[PropColumnMapping]
	data := &txlog.StructType{}
	isPart := map[string]bool{}
	for _, pc := range opts.PartitionColumns {
		f := opts.Schema.Field(pc)
		if f == nil {
			return nil, fmt.Errorf("%w: partition column %q is not in the schema", ErrInvalidOptions, pc)
		}
		switch f.Type.(type) {
		case *txlog.StructType, *txlog.ArrayType, *txlog.MapType:
			return nil, fmt.Errorf("%w: partition column %q has complex type %s", ErrInvalidOptions, pc, f.Type)
		}
		isPart[pc] = true
		w.partNames = append(w.partNames, pc)
		w.partPhys = append(w.partPhys, PhysicalName(f, w.mapping))
		w.partTypes = append(w.partTypes, f.Type)
	}
	for _, f := range opts.Schema.Fields {
		if !isPart[f.Name] {
			data.Fields = append(data.Fields, f)
		}
	}
	if len(data.Fields) == 0 {
		return nil, fmt.Errorf("%w: every column is a partition column", ErrInvalidOptions)
	}
	if w.plan, err = compile(data, SchemaOptions{ColumnMapping: w.mapping}); err != nil {
		return nil, err
	}
	w.stats = newStatsPlan(w.plan, opts.Properties)
	w.cfg = writeCfg{ignoreUnknown: opts.IgnoreUnknownFields, unit: opts.TimestampUnit, partition: isPart}
	w.pvs = make([]*string, len(w.partNames))
	return w, nil
}

// Schema is the Parquet schema of the data files.
func (w *FileWriter) Schema() *parquet.Schema { return w.plan.schema }

// Rows is the number of rows accepted so far.
func (w *FileWriter) Rows() int64 { return w.rows }

// BufferedBytes estimates the memory held by buffered rows and open files:
// the rows not yet handed to the Parquet encoder, the encoded (compressed)
// pages and dictionaries of the open row group, and the bytes of the file
// written so far (a file is stored whole when it is finished).
func (w *FileWriter) BufferedBytes() int64 {
	_ = w.wait()
	var n int64
	for _, p := range w.parts {
		n += int64(p.cs.approxBytes())
		if p.pw != nil {
			n += p.pw.Size() // file bytes written so far + open row group
		} else {
			n += int64(p.buf.Len())
		}
	}
	return n
}

// Write appends rows (maps keyed by Delta column names). A row that does not
// fit fails with a *RowError (wrapping ErrSchemaMismatch) naming its index
// (counted over the writer's life) and column; rows before it are kept.
func (w *FileWriter) Write(ctx context.Context, rows []map[string]any) error {
	for _, r := range rows {
		if err := w.WriteRow(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// WriteRow appends one row.
func (w *FileWriter) WriteRow(ctx context.Context, row map[string]any) error {
	if w.closed {
		return fmt.Errorf("%w: writer closed", ErrInvalidOptions)
	}
	p, err := w.partitionOf(row)
	if err != nil {
		return err
	}
	if err := p.cs.writeMap(row); err != nil {
		return w.rowErr(err)
	}
	return w.rowDone(ctx, p)
}

func (w *FileWriter) rowErr(err error) error {
	re := &RowError{Row: int(w.rows), Err: err}
	var ce *colErr
	if errors.As(err, &ce) {
		re.Column, re.Err = ce.path, ce.err
	}
	return re
}

func (w *FileWriter) rowDone(ctx context.Context, p *partFile) error {
	w.rows++
	return w.chunkDone(ctx, p)
}

// chunkDone hands p's buffered rows to the column writers when the chunk is
// full, and flushes the row group when it reaches its bounds.
func (w *FileWriter) chunkDone(ctx context.Context, p *partFile) error {
	cs := p.cs
	if cs.rows < chunkRows && p.rgRows+cs.rows < w.opts.MaxRowsPerRowGroup &&
		(cs.rows&63 != 0 || cs.approxBytes() < chunkBytes) {
		return nil
	}
	if err := w.pushChunk(p); err != nil {
		return err
	}
	if p.rgRows >= w.opts.MaxRowsPerRowGroup || p.rgBytes >= w.opts.MaxRowGroupBytes {
		return w.flushRowGroup(ctx, p)
	}
	return nil
}

// pushChunk hands the buffered rows of p to its parquet column writers and
// folds them into the file stats.
//
// The encoding (and compression) runs in a goroutine while the caller
// buffers the next chunk in a second colSet: wait collects it. Everything
// else touching p.pw, p.st, p.buf or w.scratch waits first.
func (w *FileWriter) pushChunk(p *partFile) error {
	if err := w.wait(); err != nil {
		return err
	}
	cs := p.cs
	if cs.rows == 0 {
		return nil
	}
	if p.pw == nil {
		p.pw = parquet.NewWriter(p.buf, w.writerOptions()...)
	}
	p.rgRows += cs.rows
	p.rgBytes += int64(cs.approxBytes())
	if p.spare != nil {
		p.cs, p.spare = p.spare, nil
	} else {
		p.cs = newColSet(w.plan, &w.cfg)
	}
	done := make(chan error, 1)
	w.flying, w.flyPart, w.flyChunk = done, p, cs
	go func() { done <- w.encodeChunk(p, cs) }()
	return nil
}

// encodeChunk hands cs's rows to p's column writers, folds them into the
// file stats and empties cs.
func (w *FileWriter) encodeChunk(p *partFile, cs *colSet) error {
	cws := p.pw.ColumnWriters()
	var err error
	for i := range cs.cols {
		if w.scratch, err = cs.cols[i].writeTo(cws[i], w.scratch); err != nil {
			return fmt.Errorf("write column %s: %w", strings.Join(cs.cols[i].leaf.path, "."), err)
		}
	}
	w.stats.accumulate(cs, p.st)
	cs.reset()
	return nil
}

// wait waits for the chunk being encoded in the background, if any, and
// returns the writer's error.
func (w *FileWriter) wait() error {
	if w.flying != nil {
		err := <-w.flying
		if err == nil {
			w.flyPart.spare = w.flyChunk
		} else if w.err == nil {
			w.err = err
		}
		w.flying, w.flyPart, w.flyChunk = nil, nil, nil
	}
	return w.err
}

// partitionOf finds (or opens) the output of the row's partition.
func (w *FileWriter) partitionOf(row map[string]any) (*partFile, error) {
	if len(w.partNames) == 0 {
		if w.single == nil {
			w.single = w.newPart("", nil)
			w.parts[""] = w.single
		}
		return w.single, nil
	}
	for i, name := range w.partNames {
		v, err := PartitionValue(row[name], w.partTypes[i], w.opts.TimestampUnit)
		if err != nil {
			return nil, &RowError{Row: int(w.rows), Column: name, Err: err}
		}
		w.pvs[i] = v
	}
	return w.partitionFor(w.pvs)
}

func (w *FileWriter) partitionFor(pvs []*string) (*partFile, error) {
	k := w.keyBuf[:0]
	for _, v := range pvs {
		if v == nil {
			k = append(k, 0)
		} else {
			k = append(k, 1)
			k = append(k, *v...)
		}
		k = append(k, 0xff)
	}
	w.keyBuf = k
	if p, ok := w.parts[string(k)]; ok {
		return p, nil
	}
	vals := slices.Clone(pvs)
	p := w.newPart(PartitionDir(w.partPhys, vals), vals)
	w.parts[string(k)] = p
	return p, nil
}

func (w *FileWriter) newPart(dir string, values []*string) *partFile {
	p := &partFile{values: values, dir: dir, cs: newColSet(w.plan, &w.cfg), buf: &bytes.Buffer{}}
	p.st = make([]colStats, len(w.plan.leaves))
	return p
}

func (w *FileWriter) writerOptions() []parquet.WriterOption {
	return []parquet.WriterOption{
		w.plan.schema,
		parquet.Compression(w.codec),
		parquet.DataPageVersion(1),
		parquet.DictionaryMaxBytes(1 << 20),
		parquet.CreatedBy("kappa", "0", ""),
	}
}

// flushRowGroup writes the rows of p handed to the column writers (and the
// buffered ones) as one row group.
func (w *FileWriter) flushRowGroup(ctx context.Context, p *partFile) error {
	if err := w.pushChunk(p); err != nil {
		return err
	}
	if err := w.wait(); err != nil {
		return err
	}
	if p.rgRows == 0 {
		return nil
	}
	if err := p.pw.Flush(); err != nil {
		return fmt.Errorf("flush row group: %w", err)
	}
	clear(w.scratch[:cap(w.scratch)])
	p.records += int64(p.rgRows)
	p.rgRows, p.rgBytes = 0, 0
	if int64(p.buf.Len()) >= w.opts.TargetFileSize {
		return w.finishFile(ctx, p)
	}
	return nil
}

// finishFile closes p's current file, stores it and records its add.
func (w *FileWriter) finishFile(ctx context.Context, p *partFile) error {
	if err := w.wait(); err != nil {
		return err
	}
	if p.pw == nil || p.records == 0 {
		return nil
	}
	if err := p.pw.Close(); err != nil {
		return fmt.Errorf("close parquet file: %w", err)
	}
	name := fmt.Sprintf("part-%05d-%s.c000.parquet", w.fileSeq, uuid.NewString())
	if w.codecExt != "" {
		name = fmt.Sprintf("part-%05d-%s.c000.%s.parquet", w.fileSeq, uuid.NewString(), w.codecExt)
	}
	w.fileSeq++
	key := p.dir + name
	data := p.buf.Bytes()
	if err := w.dst.Put(ctx, key, data); err != nil {
		return fmt.Errorf("put data file %s: %w", key, err)
	}
	w.keys = append(w.keys, key)
	pv := make(map[string]*string, len(w.partPhys))
	for i, n := range w.partPhys {
		pv[n] = p.values[i]
	}
	w.written = append(w.written, &txlog.Add{
		Path:             EscapePath(key),
		PartitionValues:  pv,
		Size:             int64(len(data)),
		ModificationTime: w.opts.Now().UnixMilli(),
		DataChange:       true,
		Stats:            w.stats.statsJSON(w.plan, p.st, p.records),
	})
	p.buf = &bytes.Buffer{}
	p.pw.Reset(p.buf)
	p.records = 0
	clear(p.st)
	return nil
}

// Flush writes every buffered row and closes every open file; the adds of
// the files finished since the last Flush are returned. The writer stays
// usable.
func (w *FileWriter) Flush(ctx context.Context) ([]*txlog.Add, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(w.parts))
	for k := range w.parts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p := w.parts[k]
		if err := w.flushRowGroup(ctx, p); err != nil {
			return nil, err
		}
		if err := w.finishFile(ctx, p); err != nil {
			return nil, err
		}
	}
	out := w.written
	w.written = nil
	clear(w.parts)
	w.single = nil
	return out, nil
}

// Close flushes and returns the adds of every file not returned by Flush.
func (w *FileWriter) Close(ctx context.Context) ([]*txlog.Add, error) {
	adds, err := w.Flush(ctx)
	w.closed = true
	return adds, err
}

// Abort deletes every file this writer stored (best effort, for a write that
// will not be committed) and drops buffered rows.
func (w *FileWriter) Abort(ctx context.Context) error {
	_ = w.wait()
	w.closed = true
	clear(w.parts)
	w.single = nil
	var errs []error
	for _, k := range w.keys {
		if err := w.dst.Delete(ctx, k); err != nil {
			errs = append(errs, err)
		}
	}
	w.keys = nil
	return errors.Join(errs...)
}
