// Package pq maps Delta schemas to Parquet and writes Delta data files.
//
// It is the Parquet half of the table engine: it turns rows (decoded JSON maps,
// native Go values or Go structs) into Parquet files laid out the way Spark
// writes them, and describes every file as a *txlog.Add carrying Delta stats.
//
// # Schema mapping
//
// [ParquetSchema] converts a Delta *txlog.StructType into a parquet-go schema
// whose column order is the Delta field order (parquet-go's Group sorts fields
// by name, so this package uses its own ordered group node). Primitive types map
// as follows: string -> BYTE_ARRAY (STRING); long -> INT64; integer -> INT32;
// short/byte -> INT32 (INT(16)/INT(8)); float -> FLOAT; double -> DOUBLE;
// boolean -> BOOLEAN; binary -> BYTE_ARRAY; date -> INT32 (DATE); timestamp ->
// INT64 (TIMESTAMP(MICROS, UTC)); timestamp_ntz -> INT64 (TIMESTAMP(MICROS,
// local)); decimal(p,s) -> INT32 (p<=9), INT64 (p<=18) or FIXED_LEN_BYTE_ARRAY
// (DECIMAL). Arrays use the 3-level LIST layout (list/element), maps the MAP
// layout (key_value/key/value). Nullable fields are optional, the others
// required. With column mapping (name or id mode) the physical names and the
// field ids from the field metadata are used.
//
// [Columns] lists the leaf columns of that schema with their Delta paths,
// types and Dremel levels, for readers that need the reverse mapping.
//
// # Writing
//
// A [FileWriter] buffers rows column by column (typed slices plus definition
// and repetition levels: no per-value interface boxing), splits them by
// partition values into Hive-style directories, flushes row groups of bounded
// rows and bytes, starts a new file after a target size and returns one
// *txlog.Add per file with numRecords / minValues / maxValues / nullCount stats.
//
// Rows are buffered in chunks of at most 1024 rows (or about 1 MiB) per open
// file. A full chunk is handed to parquet-go's column writers in typed
// loops, one kind per column, with levels set only where the column has
// them; its stats are folded at the same time, and the column writers encode
// and compress pages as they fill. So the uncompressed data held is one
// chunk per open file; the open row group is held encoded, and is cut when
// its uncompressed estimate reaches MaxRowGroupBytes or MaxRowsPerRowGroup
// rows; the file itself is held (compressed) until it is stored, once it
// reaches TargetFileSize. A full chunk is encoded in a goroutine while the
// next one fills (one chunk in flight per writer, so two chunks of one
// file are buffered at most); an encoding error is reported by the next
// call that hands over a chunk, flushes or closes, and the writer is then
// unusable. Go structs of flat tables (plain integer, float,
// bool, string and time.Time fields, no partition columns) are encoded
// column by column a batch of rows at a time.
// Rows come as maps ([FileWriter.WriteRow]), as one value per named field
// ([FileWriter.WriteSlots], which skips the map lookups of a row; [Missing]
// marks an absent field) or as Go structs.
// A row that does not fit the schema is rejected with an error wrapping
// [ErrSchemaMismatch] that names the row index and the column path; the rows
// buffered before it are kept.
package pq
