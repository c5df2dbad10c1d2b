// Package table is Kappa's Delta Lake table engine: it opens and creates
// tables, replays the transaction log into snapshots (latest, by version, or
// as of a time), commits transactions atomically with put-if-absent and
// Delta's conflict rules, writes checkpoints and cleans up old files.
//
// The log format itself (actions, commit codec, checkpoint Parquet, log
// segments, protocol gating) lives in package txlog; storage in
// internal/store. This package applies them.
//
// # Snapshots
//
// A snapshot is the replay of the newest complete checkpoint at or before
// the target version plus the commits after it: the last protocol and
// metaData win, the last txn per appId wins, and file actions keyed by
// (URL-decoded path, deletion vector id) resolve newest-first (add = live
// file, remove = tombstone). A log without protocol or metaData, or whose
// protocol names reader features this engine does not implement, fails to
// load (txlog.ErrCorruptLog, txlog.ErrUnsupportedFeature). Snapshot.Update
// applies only the commits after the snapshot's version, deleting removed
// files from its maps, so a long-running process's memory follows the live
// table, not the number of updates.
//
// A snapshot loaded WithoutFiles keeps only the protocol, metadata, txns and
// domains: the checkpoint's file actions are not even read (only its
// protocol, metaData, txn and domainMetadata columns), so its memory and
// load time do not grow with the table. Table.Open, transactions started
// with Table.NewTransaction, log cleanup and checkpoints work from such
// state, so a writer of blind appends (the ingest daemon) runs in memory
// bounded by its own batches, however large the table grows.
//
// # Time travel
//
// AtVersion(v) loads any version between the oldest reconstructable one (0,
// or the oldest complete checkpoint once old commits are cleaned up) and the
// latest; others are an error wrapping txlog.ErrVersionNotFound that names
// the available range.
//
// AsOf(t) follows Spark and the Delta kernel: a commit's time is its
// in-commit timestamp (commitInfo.inCommitTimestamp, from
// delta.inCommitTimestampEnablementVersion on when
// delta.enableInCommitTimestamps is true), otherwise the modification time
// of its commit file; times are made strictly increasing (a time not after
// its predecessor's counts as the predecessor's + 1 ms), and AsOf picks the
// latest commit whose time is at or before t. In-commit timestamps are found
// by binary search (O(log n) commit reads); file times come from one
// listing. A time before the earliest reconstructable commit is an error
// (txlog.ErrVersionNotFound). A time after the latest commit returns the
// latest version, as delta-rs does (Spark refuses).
//
// New tables enable in-commit timestamps by default (writer feature
// inCommitTimestamp), because copying a table changes file modification
// times and would otherwise change what AsOf returns.
//
// # Commits
//
// Transaction.Commit writes _delta_log/<readVersion+1>.json with
// put-if-absent; commitInfo comes first and carries inCommitTimestamp,
// timestamp, operation, operationParameters, isBlindAppend, engineInfo
// ("kappa/<EngineVersion>") and a txnId. When another writer took the
// version, the winning commits are checked: a changed protocol or metadata,
// a txn for an appId this transaction read or sets, a removed file it read
// or removes, or (after ReadWholeTable) any data change other than a blind
// append (Spark's WriteSerializable level) is a *ConflictError (errors.Is
// ErrConflict); otherwise the commit retries at the
// next version with jittered, context-aware backoff, up to
// WithMaxCommitRetries. A store error on the write is resolved by reading the
// version back: if it holds this transaction's txnId, the commit landed.
// After a commit at a multiple of delta.checkpointInterval (default 10) a
// checkpoint is written; a failure there is logged (WithLogger), not
// returned. Checkpoints stream: the previous checkpoint's file actions are
// copied from it, minus those the newer commits changed (the only file
// actions held in memory), and the new file is uploaded as it is written.
//
// Exactly-once appends: read the appId's version with ReadTxn, skip a batch
// already committed, else AddFiles plus SetTxn(appID, batch) and Commit; a
// concurrent writer of the same appId makes Commit fail with
// ConflictTransaction, so the caller re-reads and decides again.
//
// # Maintenance
//
// Vacuum deletes unreferenced data files older than the retention (default
// delta.deletedFileRetentionDuration, 7 days), never touching _delta_log or
// hidden names. CleanupLog deletes log files older than
// delta.logRetentionDuration (cutoff at midnight UTC) while keeping the
// newest checkpoint before the cutoff and everything after it.
package table
