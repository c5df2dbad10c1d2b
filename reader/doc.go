// Package reader scans Delta table snapshots into columnar batches.
//
// A Scan (NewScan) reads the live files of a table.Snapshot with column
// projection and an optional predicate (Expr: Col, Lit, Eq/Ne/Lt/Le/Gt/Ge,
// And/Or/Not, In, IsNull/IsNotNull, Between). The predicate is used four
// times: to prune partitions (typed add.partitionValues), to skip files by
// their Delta stats (min/max/nullCount, three-valued logic: a file is skipped
// only when it provably holds no matching row; truncated string maxima and
// millisecond-truncated timestamp maxima are widened into safe bounds), to
// skip Parquet row groups by their column chunk statistics, and finally to
// filter decoded rows exactly.
//
// Partition columns are materialised with their proper types; columns
// missing from older files read as null; deletion vectors (inline "i",
// UUID-relative "u" and absolute "p", RoaringBitmapArray format) remove
// deleted rows; column mapping (name and id modes) resolves physical names
// and Parquet field ids.
//
// # Batches
//
// A Batch holds typed vectors: *Int64Vector (byte/short/integer/long),
// *Float64Vector, *BytesVector (string/binary: one contiguous buffer, or a
// dictionary plus per-row codes when the file's pages were dictionary
// encoded; every accessor works on both forms),
// *BoolVector, *DecimalVector (int64 unscaled up to precision 18, big.Int
// above), *DateVector (days), *TimestampVector (microseconds) and
// *AnyVector for nested struct/array/map values held as Go values. Each has
// a validity bitmap (nil when the column has no nulls in the batch).
//
// # SQL and batch views
//
// Query runs one SELECT over one table (FROM delta.`URL` or a name bound with
// WithTable), optionally at VERSION AS OF n or TIMESTAMP AS OF '...': WHERE,
// GROUP BY, HAVING, ORDER BY, LIMIT, DISTINCT, the aggregates COUNT, SUM,
// MIN, MAX, AVG, COUNT(DISTINCT) and approx_count_distinct, and the scalar
// functions the CLI documents. The parser is hand-written (no Go SQL parser
// accepts Spark's time-travel clauses) and reports errors as *SQLError with a
// line and column. Conjuncts the scan can evaluate are pushed into it; the
// whole WHERE is still evaluated on the decoded rows. Workers aggregate
// separately and their partial states are merged.
//
// A batch view (CreateView, RefreshView, ShowView, ViewStatus) is a Delta
// table holding the partial aggregate state of such a query (sum and count
// for AVG, exact value sets for COUNT(DISTINCT), HyperLogLog sketches for
// approx_count_distinct) with the definition in its metadata and the source
// version it covers in a txn (appId "kappa-view"). A refresh aggregates only
// the files added to the source since that version and rewrites the view
// together with the new covered version in one commit, so a crashed or
// repeated refresh is harmless; it recomputes in full, and says why, when the
// source removed data or changed its schema in between.
//
// # Parallelism and memory
//
// Files are decoded by WithWorkers goroutines; each decodes one row group at
// a time and hands batches over a two-slot channel, so memory is bounded by
// roughly workers x (one decoded row group + two batches) and a slow
// consumer stalls the workers (backpressure). Batches come out in the
// snapshot's file order, and in row order within a file.
//
// # Deletion vector layout
//
// A deletion vector payload is a little-endian uint32 magic 1681511377, a
// little-endian uint64 count of 32-bit bitmaps, then per bitmap a
// little-endian uint32 key (the high 32 bits of the row index) followed by a
// 32-bit Roaring bitmap in the portable serialization. Inline vectors hold
// the payload Z85-encoded; on-disk files start with a version byte, and each
// vector at its offset is a big-endian uint32 size, the payload and a
// big-endian CRC-32 of the payload.
package reader
