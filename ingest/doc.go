// Package ingest is the Kafka-to-Delta ingest daemon: it consumes JSON
// messages from Kafka topics through a consumer group and appends them to a
// Delta table with exactly-once semantics, seconds fresh.
//
//	d, err := ingest.New(ctx, ingest.Options{
//		TableURL: "s3://bucket/events", Brokers: []string{"kafka:9092"},
//		Topics: []string{"events"}, Logger: logger,
//	})
//	...
//	err = d.Run(ctx) // until ctx is cancelled: flushes, commits, returns nil
//
// # Offsets live in the table
//
// Every table commit carries, for each Kafka partition whose records it
// holds, a txn action {appId: "<app-id>-<topic>-<partition>", version: <last
// offset>}. The consumer group (kafka-go's ConsumerGroup/Generation API) only
// splits partitions between daemons: at the start of every generation the
// daemon loads the latest snapshot and starts each assigned partition at its
// txn version + 1 (or at Options.Start when the table has none: earliest is
// the partition's log start, latest its end offset read when the generation
// starts, before the daemon reports ready). Group offsets are committed after
// each table commit for lag monitoring only.
//
// Invariant: every record at an offset <= the committed txn version of its
// partition is in the table exactly once; nothing after it is.
//
// It holds because (1) the rows of offsets (txn, last] and the new txn land
// in one commit, which either lands whole or not at all; (2) before
// committing, the daemon checks, inside the transaction and recorded as a
// read, that each partition's txn still equals what it last committed or
// started from. If another process moved it (a rebalance this daemon has not
// seen yet), the batch for that partition is dropped and the partition
// re-reads from the table's offset; if a concurrent commit sets the same
// appId after the check, the commit fails with a transaction conflict and
// the check runs again. (3) A commit whose outcome is unknown (store error
// on write and read-back) is resolved by reading the txns back. Crashes lose
// only uncommitted buffers, which are read again from Kafka.
//
// On a rebalance the group waits for the daemon: it commits its buffers
// before giving its partitions up, so handoffs rarely drop work.
//
// # Flushing
//
// Decoded rows stream into a columnar Parquet writer (memory is the
// encoded columns, not the messages). The batch is committed when
// FlushInterval has passed since its first record (a quiet topic still
// becomes visible), or FlushRows records or FlushBytes raw bytes are
// buffered. One commit covers all partitions of the daemon. If the commit
// fails (store error), the written files are kept and the commit retried
// with backoff while reading pauses (memory stays bounded); files closed for
// a failed commit and files of records read after it are committed together.
// If writing the files fails, the batch is dropped and read again from
// Kafka. Files of dropped batches are in no commit; VACUUM removes them.
//
// # Decoding and dead letters
//
// A message must be one JSON object (parsed by a small allocation-lean
// parser equivalent to encoding/json with UseNumber; invalid UTF-8 is kept
// so string columns reject it); numbers are kept exact and coerced to the
// column types by the data writer (integers, decimals, floats; RFC 3339 or
// epoch-millisecond timestamps; nested structs, arrays, maps). Metadata columns
// (topic, partition, offset, timestamp, key) and derived columns (date or
// hour of a timestamp field) are added first. Unknown top-level fields are
// dropped, or with SchemaEvolution added to the table as nullable columns
// (types inferred: string, long, double, boolean, struct, array) by a
// metadata commit before the data commit.
//
// A message that is not a JSON object or does not fit the schema is a dead
// letter: it goes with its topic, partition, offset, key, raw value, error
// text and time to the dead-letter table (default "<table>_dlq") or topic.
// The daemon never stops on bad input; dead letters are counted.
//
// The dead-letter table keeps the same discipline with its own txns (same
// appIds, in the DLQ table): a flush commits the dead letters first, with
// txn = the batch's last offset per partition, then the main commit. After a
// crash between the two, the batch is read again from the main txn + 1 and
// letters at offsets <= the DLQ txn are skipped, being there already: no
// letter is lost or duplicated.
//
// A DLQ topic gets the letters (value and key as read, headers
// kappa.topic, kappa.partition, kappa.offset and kappa.error) before the
// main commit too, exactly once without an idempotent producer: all letters
// of a source partition go to one DLQ partition (recorded in the main table
// as txn "<appId>-dlq-partition"; placed by a hash of topic and partition
// before that), and each main commit records in txn "<appId>-dlq-offset" a
// DLQ offset from which every letter for a source offset beyond the commit
// is found. Before producing (first attempt and every retry, also after a
// restart) the daemon reads that DLQ partition back from there (from its
// earliest offset when nothing is recorded yet) and skips letters already
// in it; each produce request is sent once, with acks from all replicas, so
// a crash between produce and commit or a lost produce response duplicates
// nothing. Not covered: a daemon that missed a rebalance producing at the
// same time as the partition's new owner, a produce request the broker
// applies only after the retry's read-back, and the DLQ topic's partition
// count changing before a source partition's first letters are committed;
// the headers identify such duplicates.
//
// # Memory
//
// Memory is bounded by the flush settings and the number of partitions, not
// by run time or by the table's size or history: the daemon keeps the table
// state WithoutFiles (protocol, metadata, txns; see package table), so it
// never holds the table's file list, and its checkpoints stream the previous
// checkpoint into the new one. BenchmarkIngestMemoryVsTableSize measures it.
//
// Checkpoints (every delta.checkpointInterval commits, of the table and the
// DLQ table) and, with CleanupLog, the removal of expired log files run in
// the background, one at a time per table, so a checkpoint of a large table
// does not hold up commits; versions reached meanwhile coalesce into one
// checkpoint of the newest. At shutdown a running checkpoint gets
// ShutdownTimeout to finish, then is cancelled (leaving nothing behind).
//
// # Brokers, TLS and SASL
//
// Run connects to the brokers once before joining the group: a SASL login
// the brokers reject (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), a TLS
// certificate that does not verify, or a refused authorization stops it
// with an error wrapping ErrBrokerAuth that names the brokers, mechanism and
// TLS setting. Other connection errors are logged and retried. During a run,
// authentication errors are logged at error level and retried, and /readyz
// stays not ready until a generation starts.
//
// # Shutdown
//
// When ctx is cancelled, Run flushes and commits what it has read, within
// ShutdownTimeout, and returns nil. With UntilEnd, Run returns nil once the
// table holds every partition up to the end offsets seen at start.
//
// # Metrics
//
// Metrics counts records consumed, committed and dead-lettered, commits,
// conflicts, reseeks, files and bytes written, commit latency and lag per
// partition; Metrics.Handler serves them in the Prometheus text format with
// /healthz and /readyz (ready while consuming in a generation). Lag is the
// partition's end offset minus the next offset the table will take (last
// committed + 1); end offsets are read at generation start, every 5 s, and
// from fetched batches, so an idle or stalled partition shows its true lag.
package ingest
