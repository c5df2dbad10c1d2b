package txlog

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/url"
	"slices"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/kappa-lake/kappa/internal/pqopen"
	"github.com/kappa-lake/kappa/internal/store"
)

// ReadCheckpoint yields the actions of a checkpoint: every part of a classic
// (single-file or multi-part) V1 checkpoint in order, or a V2 checkpoint
// (.json or .parquet) followed by the actions of the sidecar files its
// sidecar actions name (under _delta_log/_sidecars/). The checkpointMetadata
// and sidecar actions themselves are yielded too.
//
// Parquet checkpoints are read by column name, so files of any writer
// (Spark, delta-rs, kernel) with any subset of columns work: a missing column
// reads as null. Only the columns the actions need are decoded. When an add
// has no stats JSON but the file has add.stats_parsed, the stats are
// rendered from it into Add.Stats (and Add.StatsParsed), so callers see a
// single form; likewise partitionValues_parsed fills a missing
// partitionValues. schema (may be nil; called at most once, only when typed
// stats must be rendered) gives the table schema; it is a type hint for
// typed columns whose Parquet annotations are missing (e.g. a timestamp
// stored as plain INT64). Without it the metaData seen so far in the
// checkpoint is used.
//
// A Parquet file of up to 1 MiB is read whole with one request; a larger
// one through the store's ReaderAt: one request for the footer (the file's
// last MiB), then, per row group, one request for the byte range of the
// columns decoded (two when a wide unread column group such as
// add.stats_parsed lies between them), into a buffer reused across row
// groups. Memory is bounded by the largest row group, not by the file;
// a row group of more than 64 MiB (Spark may write a single one) is read
// column by column through 1 MiB readahead buffers.
//
// Errors from malformed files wrap ErrCorruptLog and name the file; the
// iteration stops at the first error.
func ReadCheckpoint(ctx context.Context, st store.Store, parts []LogFile, schema func() *StructType) iter.Seq2[Action, error] {
	return readCheckpoint(ctx, st, parts, schema, false)
}

// ReadCheckpointState yields only the protocol, metaData, txn and
// domainMetadata actions of a checkpoint (and checkpointMetadata), never its
// file actions, in file order: the table state a writer needs. It does not
// read sidecars, skips row groups whose footer statistics show those
// columns all null, and reads only those columns (a file above 64 KiB
// through the store's ReaderAt: a 64 KiB tail read for the footer, then
// one request per run of those columns in a row group), so memory and I/O
// do not grow with the number of files in the table. A V2 JSON checkpoint is read whole (its
// file actions, if any, are parsed and dropped). Errors are those of
// ReadCheckpoint.
func ReadCheckpointState(ctx context.Context, st store.Store, parts []LogFile) iter.Seq2[Action, error] {
	return readCheckpoint(ctx, st, parts, nil, true)
}

// isStateAction reports whether a is one of the actions ReadCheckpointState
// yields.
func isStateAction(a Action) bool {
	return a.Protocol != nil || a.MetaData != nil || a.Txn != nil ||
		a.DomainMetadata != nil || a.CheckpointMetadata != nil
}

// readCheckpoint is ReadCheckpoint, or ReadCheckpointState when stateOnly.
func readCheckpoint(ctx context.Context, st store.Store, parts []LogFile, schema func() *StructType, stateOnly bool) iter.Seq2[Action, error] {
	return func(yield func(Action, error) bool) {
		var sidecars []*Sidecar
		var seenMeta *Metadata
		var tableSchema *StructType
		schemaDone := false
		schemaHint := func() *StructType {
			if !schemaDone {
				schemaDone = true
				if schema != nil {
					tableSchema = schema()
				}
				if tableSchema == nil && seenMeta != nil {
					tableSchema, _ = ParseSchema(seenMeta.SchemaString)
				}
			}
			return tableSchema
		}
		emit := func(a Action) bool {
			if stateOnly && !isStateAction(a) {
				return true // a JSON part's file and sidecar actions
			}
			if a.Sidecar != nil {
				sidecars = append(sidecars, a.Sidecar)
			}
			if a.MetaData != nil {
				seenMeta = a.MetaData
			}
			return yield(a, nil)
		}
		for _, p := range parts {
			if err := ctx.Err(); err != nil {
				yield(Action{}, err)
				return
			}
			var err error
			if strings.HasSuffix(p.Key, ".json") {
				err = readJSONCheckpoint(ctx, st, p.Key, emit)
			} else {
				err = readParquetCheckpoint(ctx, st, p.Key, schemaHint, stateOnly, emit)
			}
			if errors.Is(err, errStop) {
				return
			}
			if err != nil {
				yield(Action{}, err)
				return
			}
		}
		for _, sc := range sidecars { // none when stateOnly
			key, err := sidecarKey(sc.Path)
			if err != nil {
				err = fmt.Errorf("read checkpoint %s: %w", parts[len(parts)-1].Key, err)
			} else {
				err = readParquetCheckpoint(ctx, st, key, schemaHint, false, func(a Action) bool {
					if a.Sidecar != nil || a.CheckpointMetadata != nil {
						return true // sidecars hold file actions only
					}
					return yield(a, nil)
				})
			}
			if errors.Is(err, errStop) {
				return
			}
			if err != nil {
				yield(Action{}, err)
				return
			}
		}
	}
}

// errStop reports that the consumer stopped the iteration.
var errStop = errors.New("iteration stopped")

// sidecarKey maps a sidecar action's path to a store key. The protocol
// recommends a bare file name relative to _delta_log/_sidecars/; a full path
// or URI is accepted as long as it points into a _sidecars directory.
func sidecarKey(p string) (string, error) {
	if strings.Contains(p, "%") {
		if u, err := url.PathUnescape(p); err == nil {
			p = u
		}
	}
	if i := strings.LastIndex(p, "/_sidecars/"); i >= 0 {
		p = p[i+len("/_sidecars/"):]
	}
	if p == "" || strings.Contains(p, "/") || p == "." || p == ".." {
		return "", fmt.Errorf("%w: sidecar path %q is not in %s", ErrCorruptLog, p, SidecarDir)
	}
	return SidecarDir + p, nil
}

func readJSONCheckpoint(ctx context.Context, st store.Store, key string, emit func(Action) bool) error {
	data, err := st.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("read checkpoint %s: %w", key, err)
	}
	actions, err := ParseCommit(data)
	if err != nil {
		return fmt.Errorf("read checkpoint %s: %w", key, err)
	}
	for _, a := range actions {
		if a.CommitInfo != nil || a.CDC != nil || a.Unknown != "" {
			continue
		}
		if !emit(a) {
			return errStop
		}
	}
	return nil
}

// Reading a checkpoint Parquet file from a store. A small file is read whole
// with one request. A larger one is read through the store's ReaderAt with
// a windowReader: the footer comes from one read of the file's tail, and
// before a row group is decoded, the byte ranges of the column chunks that
// will be decoded are fetched with one request per contiguous run (one or
// two per row group) into a buffer reused across row groups; parquet-go's
// reads are then copies from it. Memory is bounded by the largest row
// group's decoded columns, not by the file size. A row group whose ranges
// exceed windowCap is read column by column instead, through a readahead
// buffer per column chunk.

// Tunables of the windowed reader; variables so tests can force each path.
var (
	// wholeFileLimit is the size up to which a checkpoint file is read whole
	// with one request. It is also the size of the tail read that holds
	// the footer of a larger file.
	wholeFileLimit int64 = 1 << 20
	// windowCap bounds the bytes fetched for one row group. Above it the row
	// group is read through per-column-chunk readahead buffers (Spark often
	// writes a checkpoint as a single row group).
	windowCap int64 = 64 << 20
	// windowMergeGap: column chunk ranges closer than this are fetched with
	// one request, gap included (a request costs more than that much
	// transfer); farther ones, such as our add columns and remove columns
	// on either side of add.stats_parsed, with one request each.
	windowMergeGap int64 = 1 << 20
	// stateWholeFileLimit is wholeFileLimit for ReadCheckpointState, which
	// reads a few small columns, never the whole file.
	stateWholeFileLimit int64 = 64 << 10
)

const (
	// chunkReadahead is the readahead per column chunk of a row group read
	// column by column (one range request per fill).
	chunkReadahead = 1 << 20
	// pageReadBuffer is parquet-go's read buffer per open column when it
	// reads through a windowReader (copies from memory).
	pageReadBuffer = 32 << 10
	// stateReadBuffer is chunkReadahead for ReadCheckpointState.
	stateReadBuffer = 64 << 10
)

// openParquet opens a checkpoint Parquet file from the store (see above).
// The windowReader is nil when the file was read whole; otherwise the
// caller loads each row group's window before decoding it. small selects
// the limits of ReadCheckpointState.
func openParquet(ctx context.Context, st store.Store, key string, small bool) (*parquet.File, *windowReader, func(), error) {
	r, err := st.Open(ctx, key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read checkpoint %s: %w", key, err)
	}
	size := r.Size()
	tailSize, readahead := wholeFileLimit, int64(chunkReadahead)
	if small {
		tailSize, readahead = stateWholeFileLimit, stateReadBuffer
	}
	tailSize = max(min(tailSize, size), 0)
	tail := make([]byte, tailSize)
	if err := readFull(ctx, r, tail, size-tailSize); err != nil {
		_ = r.Close()
		if ctx.Err() != nil {
			return nil, nil, nil, fmt.Errorf("read checkpoint %s: %w", key, err)
		}
		return nil, nil, nil, corruptCheckpoint("read checkpoint "+key, err)
	}
	if _, err := pqopen.CheckTail(tail, size); err != nil {
		_ = r.Close()
		return nil, nil, nil, corruptCheckpoint("read checkpoint "+key, err)
	}
	opts := []parquet.FileOption{parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true)}
	if tailSize == size {
		_ = r.Close()
		f, err := parquet.OpenFile(bytes.NewReader(tail), size, opts...)
		if err != nil {
			return nil, nil, nil, corruptCheckpoint("read checkpoint "+key, err)
		}
		return f, nil, func() {}, nil
	}
	w := &windowReader{ctx: ctx, r: r, size: size, readahead: readahead, rg: -1}
	w.tail = segment{off: size - tailSize, data: tail}
	w.segs = []segment{w.tail}
	// The header magic is not checked (it would cost a request of its own);
	// as for other engines' readers, the footer's magic is what counts.
	opts = append(opts, parquet.SkipMagicBytes(true), parquet.ReadBufferSize(pageReadBuffer))
	f, err := parquet.OpenFile(w, size, opts...)
	w.segs = nil // the footer is decoded
	if err != nil {
		_ = r.Close()
		if ctx.Err() != nil {
			return nil, nil, nil, fmt.Errorf("read checkpoint %s: %w", key, err)
		}
		return nil, nil, nil, corruptCheckpoint("read checkpoint "+key, err)
	}
	w.meta = f.Metadata()
	return f, w, func() { _ = r.Close() }, nil
}

// readFull is pqopen.ReadFull unless ctx has ended.
func readFull(ctx context.Context, r io.ReaderAt, p []byte, off int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return pqopen.ReadFull(r, p, off)
}

// segment is a byte range of the file held in memory.
type segment struct {
	off  int64
	data []byte
}

// byteSpan is a byte range [start, end) of the file.
type byteSpan struct{ start, end int64 }

// chunkBuffer is the readahead buffer of one column chunk read outside the
// window: [start, end) is the chunk, buf holds its bytes at off.
type chunkBuffer struct {
	byteSpan
	off int64
	buf []byte
}

// windowReader is the io.ReaderAt parquet-go reads a large checkpoint file
// through. Reads inside the loaded segments are copies; reads in a column
// chunk of the current row group outside them go through that chunk's
// readahead buffer; anything else goes to the store. It serves one
// goroutine (parquet-go's synchronous read mode).
type windowReader struct {
	ctx       context.Context
	r         store.ReaderAt
	size      int64
	readahead int64
	meta      *format.FileMetaData
	tail      segment // the file's last bytes, read with the footer

	buf    []byte    // storage of segs, reused across row groups
	segs   []segment // disjoint
	rg     int       // current row group, -1 before the first
	chunks []chunkBuffer
	spare  [][]byte // readahead buffers to reuse
}

// chunkSpan is the byte range parquet-go reads for a column chunk: from the
// dictionary page (or else the first data page) for total_compressed_size
// bytes. ok is false when it lies outside a file of size bytes.
func chunkSpan(cc *format.ColumnChunk, size int64) (s byteSpan, ok bool) {
	md := &cc.MetaData
	s.start = md.DataPageOffset
	if md.DictionaryPageOffset != 0 {
		s.start = md.DictionaryPageOffset
	}
	s.end = s.start + md.TotalCompressedSize
	return s, s.start >= 0 && md.TotalCompressedSize >= 0 && s.end >= s.start && s.end <= size
}

// load prepares row group gi for decoding the given leaf columns: it
// fetches their byte ranges, merged when closer than windowMergeGap, with
// one request each into the reused buffer; when they total more than
// windowCap it leaves them to the per-chunk readahead. A range outside the
// file is ErrCorruptLog.
func (w *windowReader) load(gi int, leaves []int) error {
	w.release()
	w.rg = gi
	if gi < 0 || gi >= len(w.meta.RowGroups) {
		return fmt.Errorf("%w: row group %d is not in the footer", ErrCorruptLog, gi)
	}
	cols := w.meta.RowGroups[gi].Columns
	spans := make([]byteSpan, 0, len(leaves))
	for _, li := range leaves {
		if li < 0 || li >= len(cols) {
			return fmt.Errorf("%w: row group %d has %d column chunks, no chunk %d", ErrCorruptLog, gi, len(cols), li)
		}
		s, ok := chunkSpan(&cols[li], w.size)
		if !ok {
			return fmt.Errorf("%w: column chunk %d of row group %d spans bytes [%d, %d), outside the file (%d bytes)",
				ErrCorruptLog, li, gi, s.start, s.end, w.size)
		}
		if s.end > s.start {
			spans = append(spans, s)
		}
	}
	slices.SortFunc(spans, func(a, b byteSpan) int { return cmp.Compare(a.start, b.start) })
	var merged []byteSpan
	for _, s := range spans {
		if n := len(merged); n > 0 && s.start <= merged[n-1].end+windowMergeGap {
			merged[n-1].end = max(s.end, merged[n-1].end)
			continue
		}
		merged = append(merged, s)
	}
	// Ranges inside the tail read at open (the last row group of a file,
	// often) are served from it.
	var total int64
	fetch := merged[:0]
	tailEnd := w.tail.off + int64(len(w.tail.data))
	for _, s := range merged {
		if s.start >= w.tail.off && s.end <= tailEnd {
			w.segs = append(w.segs, segment{off: s.start, data: w.tail.data[s.start-w.tail.off : s.end-w.tail.off]})
			continue
		}
		fetch = append(fetch, s)
		total += s.end - s.start
	}
	if total > windowCap {
		return nil // column by column (see chunkAt)
	}
	if int64(cap(w.buf)) < total {
		w.buf = make([]byte, total)
	}
	buf := w.buf[:total]
	for _, s := range fetch {
		seg := buf[:s.end-s.start]
		buf = buf[len(seg):]
		if err := readFull(w.ctx, w.r, seg, s.start); err != nil {
			w.segs = w.segs[:0]
			return err
		}
		w.segs = append(w.segs, segment{off: s.start, data: seg})
	}
	return nil
}

// release forgets the window and the readahead buffers of the current row
// group, keeping their storage for the next one.
func (w *windowReader) release() {
	w.segs = w.segs[:0]
	for _, c := range w.chunks {
		if c.buf != nil {
			w.spare = append(w.spare, c.buf[:0])
		}
	}
	w.chunks = w.chunks[:0]
}

// ReadAt implements io.ReaderAt.
func (w *windowReader) ReadAt(p []byte, off int64) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, fmt.Errorf("read at negative offset %d", off)
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		if pos >= w.size {
			return n, io.EOF
		}
		if s := w.segAt(pos); s != nil {
			n += copy(p[n:], s.data[pos-s.off:])
			continue
		}
		if ci := w.chunkAt(pos); ci >= 0 {
			m, err := w.readChunk(ci, p[n:], pos)
			n += m
			if err != nil {
				return n, err
			}
			continue
		}
		m, err := w.r.ReadAt(p[n:], pos)
		return n + m, err
	}
	return n, nil
}

func (w *windowReader) segAt(pos int64) *segment {
	for i := range w.segs {
		if s := &w.segs[i]; pos >= s.off && pos < s.off+int64(len(s.data)) {
			return s
		}
	}
	return nil
}

// chunkAt returns the index in w.chunks of the column chunk of the current
// row group holding pos (adding it), or -1.
func (w *windowReader) chunkAt(pos int64) int {
	for i := range w.chunks {
		if c := &w.chunks[i]; pos >= c.start && pos < c.end {
			return i
		}
	}
	if w.meta == nil || w.rg < 0 || w.rg >= len(w.meta.RowGroups) {
		return -1
	}
	cols := w.meta.RowGroups[w.rg].Columns
	for i := range cols {
		if s, ok := chunkSpan(&cols[i], w.size); ok && pos >= s.start && pos < s.end {
			w.chunks = append(w.chunks, chunkBuffer{byteSpan: s})
			return len(w.chunks) - 1
		}
	}
	return -1
}

// spareBuffer returns an empty buffer of capacity at least n, reusing one
// of an earlier row group when possible (a small chunk gets a small one).
func (w *windowReader) spareBuffer(n int64) []byte {
	for i, b := range w.spare {
		if int64(cap(b)) >= n {
			w.spare = slices.Delete(w.spare, i, i+1)
			return b
		}
	}
	return make([]byte, 0, n)
}

// readChunk reads into p at pos (inside chunk ci, p clipped to the chunk)
// through the chunk's readahead buffer; reads of at least a buffer go
// straight to the store.
func (w *windowReader) readChunk(ci int, p []byte, pos int64) (int, error) {
	c := &w.chunks[ci]
	if pos >= c.off && pos < c.off+int64(len(c.buf)) {
		return copy(p, c.buf[pos-c.off:]), nil
	}
	want := min(int64(len(p)), c.end-pos)
	if want >= w.readahead {
		m, err := w.r.ReadAt(p[:want], pos)
		if int64(m) == want {
			err = nil
		} else if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return m, err
	}
	fill := min(w.readahead, c.end-pos)
	if int64(cap(c.buf)) < fill {
		c.buf = w.spareBuffer(min(w.readahead, c.end-c.start))
	}
	c.buf = c.buf[:fill]
	m, err := w.r.ReadAt(c.buf, pos)
	if int64(m) < fill {
		c.buf = c.buf[:0]
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, err
	}
	c.off = pos
	return copy(p, c.buf), nil
}

// readParquetCheckpoint decodes the actions of one checkpoint Parquet file
// (only the table-state actions when stateOnly) and passes them to emit.
func readParquetCheckpoint(ctx context.Context, st store.Store, key string, schema func() *StructType, stateOnly bool, emit func(Action) bool) (err error) {
	defer func() {
		// parquet-go may panic on malformed input (also in OpenFile); never
		// let it escape.
		if r := recover(); r != nil {
			err = fmt.Errorf("read checkpoint %s: %w: %v", key, ErrCorruptLog, r)
		}
	}()
	f, win, closer, err := openParquet(ctx, st, key, stateOnly)
	if err != nil {
		return err
	}
	defer closer()
	root := f.Root()
	for gi, rg := range f.RowGroups() {
		var load func([]int) error
		if win != nil {
			load = func(leaves []int) error { return win.load(gi, leaves) }
		}
		if err := readRowGroup(ctx, root, rg, schema, stateOnly, load, emit); err != nil {
			if errors.Is(err, errStop) {
				return err
			}
			if ctx.Err() != nil {
				return fmt.Errorf("read checkpoint %s: %w", key, err)
			}
			return corruptCheckpoint(fmt.Sprintf("read checkpoint %s row group %d", key, gi), err)
		}
	}
	return nil
}

// corruptCheckpoint wraps a decoding error in ErrCorruptLog. A transient
// store error keeps its chain (store.IsRetryable stays true); any other
// error is kept as text only, because decoder errors often wrap
// io.ErrUnexpectedEOF, which store.IsRetryable takes for a truncated
// network response: a corrupt checkpoint must not look retryable.
func corruptCheckpoint(what string, err error) error {
	var op *store.OpError
	if errors.Is(err, store.ErrTransient) || (errors.As(err, &op) && store.IsRetryable(err)) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %w: %v", what, ErrCorruptLog, err) //nolint:errorlint // keep io.ErrUnexpectedEOF out of the chain (see above)
}

// rowGroupReader owns the cursors opened on one row group.
type rowGroupReader struct {
	rg       parquet.RowGroup
	cursors  []*colCursor
	scratch  []parquet.Value
	scratch2 []parquet.Value
	interned map[string]string
	pvCache  map[string]*string
	schema   func() *StructType // table schema hint, may return nil
}

func (r *rowGroupReader) open(c *parquet.Column) *colCursor {
	if c == nil || !c.Leaf() || c.Index() < 0 || c.Index() >= len(r.rg.ColumnChunks()) {
		return nil
	}
	cur := newCursor(c, r.rg)
	r.cursors = append(r.cursors, cur)
	return cur
}

func (r *rowGroupReader) err() error {
	for _, c := range r.cursors {
		if c.err != nil {
			return c.err
		}
	}
	return nil
}

func (r *rowGroupReader) close() {
	for _, c := range r.cursors {
		c.close()
	}
}

// allNull reports whether the footer statistics say leaf c holds only nulls
// in this row group (then the action kind it belongs to is absent).
func (r *rowGroupReader) allNull(c *parquet.Column) bool {
	if c == nil {
		return true
	}
	fc, ok := r.rg.ColumnChunks()[c.Index()].(*parquet.FileColumnChunk)
	n := r.rg.NumRows()
	return ok && n > 0 && fc.NullCount() == n && fc.NumValues() == n
}

// nullCount is the footer's null count of leaf c in this row group (0 when
// unknown).
func (r *rowGroupReader) nullCount(c *parquet.Column) int64 {
	if fc, ok := r.rg.ColumnChunks()[c.Index()].(*parquet.FileColumnChunk); ok {
		return fc.NullCount()
	}
	return 0
}

// intern returns a string for b, sharing storage for repeated small values
// (map keys, partition values) to save allocations.
func (r *rowGroupReader) intern(b []byte) string {
	if s, ok := r.interned[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(r.interned) < 4096 && len(b) <= 256 {
		r.interned[s] = s
	}
	return s
}

// readRowGroup decodes the actions of one row group (only the table-state
// actions when stateOnly). Each action kind's decoder is built only if the
// footer statistics do not show its key column all null; a row group
// without any is skipped without reading anything. load (nil when the file
// is in memory) is given the leaf columns the decoders will read before
// any is read.
func readRowGroup(ctx context.Context, root *parquet.Column, rg parquet.RowGroup, schema func() *StructType, stateOnly bool, load func(leaves []int) error, emit func(Action) bool) error {
	r := &rowGroupReader{rg: rg, interned: map[string]string{}, pvCache: map[string]*string{}, schema: schema}
	defer r.close()
	var decs []actionDecoder
	if !stateOnly {
		if d := newAddDecoder(r, child(root, "add")); d != nil {
			decs = append(decs, d)
		}
		if d := newRemoveDecoder(r, child(root, "remove")); d != nil {
			decs = append(decs, d)
		}
	}
	if d := newTxnDecoder(r, child(root, "txn")); d != nil {
		decs = append(decs, d)
	}
	if d := newMetadataDecoder(r, child(root, "metaData")); d != nil {
		decs = append(decs, d)
	}
	if d := newProtocolDecoder(r, child(root, "protocol")); d != nil {
		decs = append(decs, d)
	}
	if d := newDomainMetadataDecoder(r, child(root, "domainMetadata")); d != nil {
		decs = append(decs, d)
	}
	if d := newCheckpointMetadataDecoder(r, child(root, "checkpointMetadata")); d != nil {
		decs = append(decs, d)
	}
	if !stateOnly {
		if d := newSidecarDecoder(r, child(root, "sidecar")); d != nil {
			decs = append(decs, d)
		}
	}
	if len(decs) == 0 {
		return nil
	}
	if load != nil {
		leaves := make([]int, 0, len(r.cursors)+16)
		for _, c := range r.cursors {
			leaves = append(leaves, c.leaf.Index())
		}
		for _, d := range decs {
			if ad, ok := d.(*addDecoder); ok {
				leaves = ad.lazyLeaves(leaves)
			}
		}
		if err := load(leaves); err != nil {
			return err
		}
	}
	n := rg.NumRows()
	for row := int64(0); row < n; row++ {
		if row&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			// A broken column whose rows decode to nothing must not keep
			// the loop running over a hostile footer's row count.
			if err := r.err(); err != nil {
				return err
			}
		}
		for _, d := range decs {
			a, ok := d.decode(row)
			if !ok {
				continue
			}
			if err := r.err(); err != nil {
				return err
			}
			if !emit(a) {
				return errStop
			}
		}
	}
	return r.err()
}

// actionDecoder decodes one action kind from a row, if the row holds one.
type actionDecoder interface {
	decode(row int64) (Action, bool)
}

// present reports whether the group of definition level def is non-null in
// the row, judged from value v of one of its leaves.
func present(v parquet.Value, def int) bool { return v.DefinitionLevel() >= def }

func vString(v parquet.Value) string {
	if v.IsNull() {
		return ""
	}
	return string(v.ByteArray())
}

func vStringPtr(v parquet.Value) *string {
	if v.IsNull() {
		return nil
	}
	s := string(v.ByteArray())
	return &s
}

func vInt64(v parquet.Value) int64 {
	switch v.Kind() {
	case parquet.Int64:
		return v.Int64()
	case parquet.Int32:
		return int64(v.Int32())
	}
	return 0
}

func vInt64Ptr(v parquet.Value) *int64 {
	if v.IsNull() {
		return nil
	}
	x := vInt64(v)
	return &x
}

func vInt32Ptr(v parquet.Value) *int32 {
	if v.IsNull() {
		return nil
	}
	x := int32(vInt64(v))
	return &x
}

func vBool(v parquet.Value) bool {
	return !v.IsNull() && v.Kind() == parquet.Boolean && v.Boolean()
}

// mapCols reads a map<string,string> column (MAP group > repeated key_value >
// key, value).
type mapCols struct {
	def, kvDef int // levels at which the map / an entry is defined
	key, val   *colCursor
}

func openMap(r *rowGroupReader, c *parquet.Column) mapCols {
	if c == nil || c.Leaf() || len(c.Columns()) != 1 {
		return mapCols{}
	}
	kv := c.Columns()[0]
	if kv.Leaf() || len(kv.Columns()) == 0 {
		return mapCols{}
	}
	k := child(kv, "key")
	v := child(kv, "value")
	if k == nil {
		k = kv.Columns()[0]
	}
	if v == nil && len(kv.Columns()) > 1 {
		v = kv.Columns()[1]
	}
	return mapCols{def: defLevel(c), kvDef: defLevel(kv), key: r.open(k), val: r.open(v)}
}

// read returns the map of row, nil when the map is null or empty.
func (m *mapCols) read(r *rowGroupReader, row int64, fn func(k string, v parquet.Value)) {
	if m.key == nil {
		return
	}
	keys := m.key.rowAt(row, r.scratch[:0])
	vals := m.val.rowAt(row, r.scratch2[:0])
	r.scratch, r.scratch2 = keys, vals
	if len(keys) == 0 || keys[0].DefinitionLevel() < m.kvDef {
		return
	}
	for i, k := range keys {
		var v parquet.Value
		if i < len(vals) && m.val != nil {
			v = vals[i]
		}
		fn(r.intern(k.ByteArray()), v)
	}
}

func (m *mapCols) stringMap(r *rowGroupReader, row int64) map[string]string {
	var out map[string]string
	m.read(r, row, func(k string, v parquet.Value) {
		if out == nil {
			out = make(map[string]string)
		}
		out[k] = vString(v)
	})
	return out
}

// isNull reports whether the map of row is null (as opposed to empty); only
// valid right after read for the same row.
func (m *mapCols) wasNull(r *rowGroupReader) bool {
	return m.key == nil || len(r.scratch) == 0 || r.scratch[0].DefinitionLevel() < m.def
}

// listCols reads a list<string> column, 3-level (LIST > repeated list >
// element) or legacy 2-level (LIST > repeated element).
type listCols struct {
	repDef int
	elem   *colCursor
}

func openList(r *rowGroupReader, c *parquet.Column) listCols {
	if c == nil {
		return listCols{}
	}
	if c.Leaf() { // a bare repeated leaf
		return listCols{repDef: defLevel(c), elem: r.open(c)}
	}
	if len(c.Columns()) != 1 {
		return listCols{}
	}
	rep := c.Columns()[0]
	if rep.Leaf() {
		return listCols{repDef: defLevel(rep), elem: r.open(rep)}
	}
	return listCols{repDef: defLevel(rep), elem: r.open(firstLeaf(rep))}
}

func (l *listCols) strings(r *rowGroupReader, row int64) []string {
	if l.elem == nil {
		return nil
	}
	vals := l.elem.rowAt(row, r.scratch[:0])
	r.scratch = vals
	if len(vals) == 0 || vals[0].DefinitionLevel() < l.repDef {
		return nil
	}
	out := make([]string, 0, len(vals))
	for _, v := range vals {
		out = append(out, vString(v))
	}
	return out
}

// dvCols reads a deletionVector struct.
type dvCols struct {
	def                                 int
	storageType, pathOrInline, offset   *colCursor
	sizeInBytes, cardinality, maxRowIdx *colCursor
}

func openDV(r *rowGroupReader, c *parquet.Column) dvCols {
	if c == nil || c.Leaf() {
		return dvCols{}
	}
	return dvCols{
		def:          defLevel(c),
		storageType:  r.open(child(c, "storageType")),
		pathOrInline: r.open(child(c, "pathOrInlineDv")),
		offset:       r.open(child(c, "offset")),
		sizeInBytes:  r.open(child(c, "sizeInBytes")),
		cardinality:  r.open(child(c, "cardinality")),
		maxRowIdx:    r.open(child(c, "maxRowIndex")),
	}
}

func (d *dvCols) read(row int64) *DeletionVector {
	if d.storageType == nil {
		return nil
	}
	st := d.storageType.at(row)
	if !present(st, d.def) || st.IsNull() {
		return nil
	}
	return &DeletionVector{
		StorageType:    string(st.ByteArray()),
		PathOrInlineDv: vString(d.pathOrInline.at(row)),
		Offset:         vInt32Ptr(d.offset.at(row)),
		SizeInBytes:    int32(vInt64(d.sizeInBytes.at(row))),
		Cardinality:    vInt64(d.cardinality.at(row)),
		MaxRowIndex:    vInt64Ptr(d.maxRowIdx.at(row)),
	}
}

type addDecoder struct {
	r                               *rowGroupReader
	def                             int
	path, size, modTime, dataChange *colCursor
	stats, baseRowID, defaultRowCV  *colCursor
	clusteringProvider              *colCursor
	pv, tags                        mapCols
	dv                              dvCols
	statsParsed                     *parsedGroup // lazily read
	pvParsed                        *parsedGroup // lazily read
	pvParsedCol, statsParsedCol     *parquet.Column
}

func newAddDecoder(r *rowGroupReader, c *parquet.Column) *addDecoder {
	p := child(c, "path")
	if p == nil || r.allNull(p) {
		return nil
	}
	return &addDecoder{
		r:                  r,
		def:                defLevel(c),
		path:               r.open(p),
		size:               r.open(child(c, "size")),
		modTime:            r.open(child(c, "modificationTime")),
		dataChange:         r.open(child(c, "dataChange")),
		stats:              r.open(child(c, "stats")),
		baseRowID:          r.open(child(c, "baseRowId")),
		defaultRowCV:       r.open(child(c, "defaultRowCommitVersion")),
		clusteringProvider: r.open(child(c, "clusteringProvider")),
		pv:                 openMap(r, child(c, "partitionValues")),
		tags:               openMap(r, child(c, "tags")),
		dv:                 openDV(r, child(c, "deletionVector")),
		statsParsedCol:     child(c, "stats_parsed"),
		pvParsedCol:        child(c, "partitionValues_parsed"),
	}
}

// lazyLeaves appends the leaves the decoder may open while decoding, as far
// as the footer statistics tell: add.stats_parsed when some adds have no
// stats JSON (the stats column has more nulls than the path column),
// add.partitionValues_parsed when there is no partitionValues map. Leaves
// it opens beyond these are read column by column.
func (d *addDecoder) lazyLeaves(dst []int) []int {
	if d.statsParsedCol != nil && (d.stats == nil || d.r.nullCount(d.stats.leaf) > d.r.nullCount(d.path.leaf)) {
		dst = appendLeaves(dst, d.statsParsedCol)
	}
	if d.pvParsedCol != nil && d.pv.key == nil {
		dst = appendLeaves(dst, d.pvParsedCol)
	}
	return dst
}

// appendLeaves appends the indexes of the leaves at or under c.
func appendLeaves(dst []int, c *parquet.Column) []int {
	if c.Leaf() {
		if c.Index() >= 0 {
			dst = append(dst, c.Index())
		}
		return dst
	}
	for _, ch := range c.Columns() {
		dst = appendLeaves(dst, ch)
	}
	return dst
}

func (d *addDecoder) decode(row int64) (Action, bool) {
	r := d.r
	pv := d.path.at(row)
	if !present(pv, d.def) || pv.IsNull() {
		return Action{}, false
	}
	a := &Add{
		Path:                    string(pv.ByteArray()),
		Size:                    vInt64(d.size.at(row)),
		ModificationTime:        vInt64(d.modTime.at(row)),
		DataChange:              vBool(d.dataChange.at(row)),
		Stats:                   vString(d.stats.at(row)),
		BaseRowID:               vInt64Ptr(d.baseRowID.at(row)),
		DefaultRowCommitVersion: vInt64Ptr(d.defaultRowCV.at(row)),
		ClusteringProvider:      vStringPtr(d.clusteringProvider.at(row)),
		Tags:                    d.tags.stringMap(r, row),
		DeletionVector:          d.dv.read(row),
	}
	d.pv.read(r, row, func(k string, v parquet.Value) {
		if a.PartitionValues == nil {
			a.PartitionValues = make(map[string]*string)
		}
		a.PartitionValues[k] = r.partitionValue(v)
	})
	if a.PartitionValues == nil {
		if d.pv.wasNull(r) && d.pvParsedCol != nil {
			if d.pvParsed == nil {
				d.pvParsed = openParsed(r, d.pvParsedCol, r.schema(), false)
			}
			a.PartitionValues = d.pvParsed.partitionValues(row)
		}
		if a.PartitionValues == nil {
			a.PartitionValues = map[string]*string{}
		}
	}
	if a.Stats == "" && d.statsParsedCol != nil {
		if d.statsParsed == nil {
			d.statsParsed = openParsed(r, d.statsParsedCol, r.schema(), true)
		}
		a.StatsParsed, a.Stats = d.statsParsed.stats(row)
	}
	return Action{Add: a}, true
}

// partitionValue returns a shared *string for a partition value.
func (r *rowGroupReader) partitionValue(v parquet.Value) *string {
	if v.IsNull() {
		return nil
	}
	b := v.ByteArray()
	if p, ok := r.pvCache[string(b)]; ok {
		return p
	}
	s := string(b)
	p := &s
	if len(r.pvCache) < 4096 && len(b) <= 256 {
		r.pvCache[s] = p
	}
	return p
}

type removeDecoder struct {
	r                                      *rowGroupReader
	def                                    int
	path, delTS, dataChange, extMeta, size *colCursor
	stats, baseRowID, defaultRowCV         *colCursor
	pv, tags                               mapCols
	dv                                     dvCols
}

func newRemoveDecoder(r *rowGroupReader, c *parquet.Column) *removeDecoder {
	p := child(c, "path")
	if p == nil || r.allNull(p) {
		return nil
	}
	return &removeDecoder{
		r:            r,
		def:          defLevel(c),
		path:         r.open(p),
		delTS:        r.open(child(c, "deletionTimestamp")),
		dataChange:   r.open(child(c, "dataChange")),
		extMeta:      r.open(child(c, "extendedFileMetadata")),
		size:         r.open(child(c, "size")),
		stats:        r.open(child(c, "stats")),
		baseRowID:    r.open(child(c, "baseRowId")),
		defaultRowCV: r.open(child(c, "defaultRowCommitVersion")),
		pv:           openMap(r, child(c, "partitionValues")),
		tags:         openMap(r, child(c, "tags")),
		dv:           openDV(r, child(c, "deletionVector")),
	}
}

func (d *removeDecoder) decode(row int64) (Action, bool) {
	r := d.r
	pv := d.path.at(row)
	if !present(pv, d.def) || pv.IsNull() {
		return Action{}, false
	}
	a := &Remove{
		Path:                    string(pv.ByteArray()),
		DeletionTimestamp:       vInt64Ptr(d.delTS.at(row)),
		DataChange:              vBool(d.dataChange.at(row)),
		Size:                    vInt64Ptr(d.size.at(row)),
		Stats:                   vString(d.stats.at(row)),
		BaseRowID:               vInt64Ptr(d.baseRowID.at(row)),
		DefaultRowCommitVersion: vInt64Ptr(d.defaultRowCV.at(row)),
		Tags:                    d.tags.stringMap(r, row),
		DeletionVector:          d.dv.read(row),
	}
	if v := d.extMeta.at(row); !v.IsNull() {
		b := vBool(v)
		a.ExtendedFileMetadata = &b
	}
	d.pv.read(r, row, func(k string, v parquet.Value) {
		if a.PartitionValues == nil {
			a.PartitionValues = make(map[string]*string)
		}
		a.PartitionValues[k] = r.partitionValue(v)
	})
	if a.PartitionValues == nil && !d.pv.wasNull(r) {
		a.PartitionValues = map[string]*string{}
	}
	return Action{Remove: a}, true
}

type txnDecoder struct {
	def                         int
	appID, version, lastUpdated *colCursor
}

func newTxnDecoder(r *rowGroupReader, c *parquet.Column) *txnDecoder {
	p := child(c, "appId")
	if p == nil || r.allNull(p) {
		return nil
	}
	return &txnDecoder{
		def: defLevel(c), appID: r.open(p), version: r.open(child(c, "version")),
		lastUpdated: r.open(child(c, "lastUpdated")),
	}
}

func (d *txnDecoder) decode(row int64) (Action, bool) {
	v := d.appID.at(row)
	if !present(v, d.def) || v.IsNull() {
		return Action{}, false
	}
	return Action{Txn: &Txn{
		AppID: string(v.ByteArray()), Version: vInt64(d.version.at(row)),
		LastUpdated: vInt64Ptr(d.lastUpdated.at(row)),
	}}, true
}

type metadataDecoder struct {
	r                                       *rowGroupReader
	def                                     int
	id, name, desc, provider, schema, ctime *colCursor
	options, conf                           mapCols
	partCols                                listCols
}

func newMetadataDecoder(r *rowGroupReader, c *parquet.Column) *metadataDecoder {
	p := child(c, "id")
	if p == nil || r.allNull(p) {
		return nil
	}
	f := child(c, "format")
	return &metadataDecoder{
		r: r, def: defLevel(c),
		id:       r.open(p),
		name:     r.open(child(c, "name")),
		desc:     r.open(child(c, "description")),
		provider: r.open(child(f, "provider")),
		options:  openMap(r, child(f, "options")),
		schema:   r.open(child(c, "schemaString")),
		partCols: openList(r, child(c, "partitionColumns")),
		conf:     openMap(r, child(c, "configuration")),
		ctime:    r.open(child(c, "createdTime")),
	}
}

func (d *metadataDecoder) decode(row int64) (Action, bool) {
	r := d.r
	v := d.id.at(row)
	if !present(v, d.def) || v.IsNull() {
		return Action{}, false
	}
	m := &Metadata{
		ID:               string(v.ByteArray()),
		Name:             vStringPtr(d.name.at(row)),
		Description:      vStringPtr(d.desc.at(row)),
		Format:           Format{Provider: vString(d.provider.at(row)), Options: d.options.stringMap(r, row)},
		SchemaString:     vString(d.schema.at(row)),
		PartitionColumns: d.partCols.strings(r, row),
		Configuration:    d.conf.stringMap(r, row),
		CreatedTime:      vInt64Ptr(d.ctime.at(row)),
	}
	if m.Format.Provider == "" {
		m.Format.Provider = "parquet"
	}
	if m.Format.Options == nil {
		m.Format.Options = map[string]string{}
	}
	if m.PartitionColumns == nil {
		m.PartitionColumns = []string{}
	}
	if m.Configuration == nil {
		m.Configuration = map[string]string{}
	}
	return Action{MetaData: m}, true
}

type protocolDecoder struct {
	r                        *rowGroupReader
	def                      int
	minReader, minWriter     *colCursor
	readerFeats, writerFeats listCols
}

func newProtocolDecoder(r *rowGroupReader, c *parquet.Column) *protocolDecoder {
	p := child(c, "minReaderVersion")
	if p == nil || r.allNull(p) {
		return nil
	}
	return &protocolDecoder{
		r: r, def: defLevel(c), minReader: r.open(p),
		minWriter:   r.open(child(c, "minWriterVersion")),
		readerFeats: openList(r, child(c, "readerFeatures")),
		writerFeats: openList(r, child(c, "writerFeatures")),
	}
}

func (d *protocolDecoder) decode(row int64) (Action, bool) {
	v := d.minReader.at(row)
	if !present(v, d.def) || v.IsNull() {
		return Action{}, false
	}
	return Action{Protocol: &Protocol{
		MinReaderVersion: int32(vInt64(v)),
		MinWriterVersion: int32(vInt64(d.minWriter.at(row))),
		ReaderFeatures:   d.readerFeats.strings(d.r, row),
		WriterFeatures:   d.writerFeats.strings(d.r, row),
	}}, true
}

type domainMetadataDecoder struct {
	def                   int
	domain, conf, removed *colCursor
}

func newDomainMetadataDecoder(r *rowGroupReader, c *parquet.Column) *domainMetadataDecoder {
	p := child(c, "domain")
	if p == nil || r.allNull(p) {
		return nil
	}
	return &domainMetadataDecoder{
		def: defLevel(c), domain: r.open(p),
		conf: r.open(child(c, "configuration")), removed: r.open(child(c, "removed")),
	}
}

func (d *domainMetadataDecoder) decode(row int64) (Action, bool) {
	v := d.domain.at(row)
	if !present(v, d.def) || v.IsNull() {
		return Action{}, false
	}
	return Action{DomainMetadata: &DomainMetadata{
		Domain:        string(v.ByteArray()),
		Configuration: vString(d.conf.at(row)), Removed: vBool(d.removed.at(row)),
	}}, true
}

type checkpointMetadataDecoder struct {
	r       *rowGroupReader
	def     int
	version *colCursor
	tags    mapCols
}

func newCheckpointMetadataDecoder(r *rowGroupReader, c *parquet.Column) *checkpointMetadataDecoder {
	p := child(c, "version")
	if p == nil || r.allNull(p) {
		return nil
	}
	return &checkpointMetadataDecoder{r: r, def: defLevel(c), version: r.open(p), tags: openMap(r, child(c, "tags"))}
}

func (d *checkpointMetadataDecoder) decode(row int64) (Action, bool) {
	v := d.version.at(row)
	if !present(v, d.def) || v.IsNull() {
		return Action{}, false
	}
	return Action{CheckpointMetadata: &CheckpointMetadata{Version: vInt64(v), Tags: d.tags.stringMap(d.r, row)}}, true
}

type sidecarDecoder struct {
	r                   *rowGroupReader
	def                 int
	path, size, modTime *colCursor
	tags                mapCols
}

func newSidecarDecoder(r *rowGroupReader, c *parquet.Column) *sidecarDecoder {
	p := child(c, "path")
	if p == nil || r.allNull(p) {
		return nil
	}
	return &sidecarDecoder{
		r: r, def: defLevel(c), path: r.open(p), size: r.open(child(c, "sizeInBytes")),
		modTime: r.open(child(c, "modificationTime")), tags: openMap(r, child(c, "tags")),
	}
}

func (d *sidecarDecoder) decode(row int64) (Action, bool) {
	v := d.path.at(row)
	if !present(v, d.def) || v.IsNull() {
		return Action{}, false
	}
	return Action{Sidecar: &Sidecar{
		Path: string(v.ByteArray()), SizeInBytes: vInt64(d.size.at(row)),
		ModificationTime: vInt64(d.modTime.at(row)), Tags: d.tags.stringMap(d.r, row),
	}}, true
}
