// Package txlog is the Delta Lake transaction log format: typed actions, the
// JSON commit codec, log file naming, the _last_checkpoint hint, checkpoint
// Parquet files, listing the log segment of a version, and protocol /
// table-feature gating. It performs I/O only through internal/store and
// holds no engine logic: applying actions to a snapshot and committing are
// the table package's job.
//
// # Commit files
//
// Version v of a table is the file _delta_log/<v>.json, v zero-padded to 20
// decimal digits (CommitKey). Its content is newline-delimited JSON: one
// object per line, each with exactly one key naming the action kind:
//
//	{"commitInfo":{"inCommitTimestamp":1700000000000,"operation":"WRITE",...}}
//	{"protocol":{"minReaderVersion":1,"minWriterVersion":7,"writerFeatures":["inCommitTimestamp"]}}
//	{"metaData":{"id":"...","format":{"provider":"parquet","options":{}},"schemaString":"...","partitionColumns":[],"configuration":{}}}
//	{"add":{"path":"part-0.parquet","partitionValues":{},"size":1234,"modificationTime":1700000000000,"dataChange":true,"stats":"{\"numRecords\":10,...}"}}
//	{"txn":{"appId":"ingest-topic-0","version":41}}
//
// ParseCommit accepts blank lines, CRLF line ends and a missing final
// newline; it ignores unknown fields and returns unknown action kinds as
// Action{Unknown: kind}. A line that is not a JSON object, a null action or
// a malformed known action is an error wrapping ErrCorruptLog naming the
// 1-based line. EncodeCommit writes one action per line, each terminated by
// "\n", in the given order, without HTML escaping; commitInfo keeps every
// field it does not type in CommitInfo.Extra. add.stats is a JSON string
// ({"numRecords","minValues","maxValues","nullCount","tightBounds"}) parsed
// by ParseStats.
//
// Commits are created with put-if-absent: exactly one writer creates a
// version. Versions are contiguous from 0 (or from the oldest checkpoint
// once old commits are cleaned up); a gap is ErrCorruptLog.
//
// # Checkpoints
//
// A checkpoint at version v holds the table state (protocol, metaData, txn,
// domainMetadata, live add and unexpired remove actions) as Parquet, one
// action per row in a struct column per action kind. Names under
// _delta_log/ (ParseLogFile; everything else, e.g. temp files, .tmp/,
// _staged_commits/, _sidecars/, is not a log file):
//
//	<v>.checkpoint.parquet                      classic single file
//	<v>.checkpoint.<part>.<parts>.parquet       multi-part, part and parts 10 digits, 1-based
//	<v>.checkpoint.<uuid>.json|parquet          V2 (checkpointMetadata, sidecar actions
//	                                            pointing into _delta_log/_sidecars/)
//	<x>.<y>.compacted.json                      log compaction of commits x..y (ignored)
//	<v>.crc                                     version checksum (ignored)
//	_last_checkpoint                            hint: {"version","size","parts"?,
//	                                            "sizeInBytes"?,"numOfAddFiles"?,
//	                                            "checkpointSchema"?,"checksum"?,"v2Checkpoint"?}
//
// A multi-part set with a missing part is ignored. _last_checkpoint is only
// a hint: ListSegment starts its listing at the hinted version when the
// hint names a complete checkpoint, and lists the whole log when the hint is
// missing, corrupt (delta-golden corrupted-last-checkpoint-kernel) or stale.
// A segment is the newest complete checkpoint at or before the target plus
// the commits after it; checkpoints newer than the newest commit are
// ignored. ReadCheckpoint and WriteCheckpoint (checkpoint*.go) read and
// write the Parquet files, both streaming: reading decodes one row group at
// a time, and writing takes the file actions as an iterator and uploads
// with Store.PutStream, buffering one row group, so neither holds a table's
// file list. ReadCheckpointState reads only the protocol, metaData, txn and
// domainMetadata columns (skipping row groups whose footer statistics show
// them all null, and never following sidecars), for writers that need the
// table state and not its files.
//
// # Protocol
//
// The protocol action sets minReaderVersion and minWriterVersion. Legacy
// versions imply features: reader 2 = columnMapping; writer 2 = appendOnly
// + invariants, 3 = + checkConstraints, 4 = + changeDataFeed +
// generatedColumns, 5 = + columnMapping, 6 = + identityColumns. Reader
// version 3 and writer version 7 replace the implied features with the
// explicit readerFeatures / writerFeatures lists (reader-writer features
// appear in both). CheckReadable and CheckWritable refuse, with an error
// wrapping ErrUnsupportedFeature that names them, versions beyond 3 / 7 and
// features this project does not implement. MinProtocolFor computes the
// lowest protocol for a set of features, preferring legacy versions.
package txlog
