// Package interop is Kappa's interoperability and reliability suite against
// real peers. It holds only tests, behind the build tag "interop", so plain
// `go test ./...` skips them:
//
//	go test -tags interop -count=1 -v ./internal/interop/...
//
// (or `make interop`, which runs scripts/interop.sh). The tests install what
// they need through the project scripts, with caches in git-ignored folders:
// a Python venv with Spark (delta-spark), delta-rs (deltalake) and DuckDB with
// its Delta extension (scripts/venv.sh, .venv/), Apache Kafka jars from Maven
// Central (scripts/kafka.sh, .cache/kafka/), and versitygw for S3
// (scripts/versitygw.sh, .cache/bin/). Everything listens on 127.0.0.1 only.
//
// # Cases
//
//   - kappa-written: tables Kappa writes (partitioned and not, every primitive
//     type, nested types, checkpoints, many versions) are read by Spark,
//     delta-rs and DuckDB at the latest version, at several versions and
//     timestamps; every engine must return exactly Kappa's rows.
//   - engine-written: tables Spark and delta-rs write (appends, overwrites,
//     deletes, updates, partitions, checkpoints; Spark also deletion vectors
//     and column mapping) are read by Kappa at every version and must match
//     what the writer reads.
//   - kafka: a real Apache Kafka broker (KRaft) fed by an independent Python
//     producer (kafka-python) feeds `kappa ingest`, which is SIGKILLed and
//     restarted mid-stream, run as two daemons in one group with one stopped,
//     and run against a table on S3; every message must land exactly once.
//   - kafka-dlq: a stream mixing good JSON messages with malformed ones (not
//     JSON, not an object, values the schema rejects) is ingested with
//     `--dlq-topic` by a daemon SIGKILLed mid-stream several times; every
//     good message must be in the table exactly once and every malformed
//     one in the DLQ topic exactly once, with its source topic, partition
//     and offset, raw key, value and timestamp, and the error text.
//   - kafka-security: a second broker with a SASL_SSL listener (SCRAM-SHA-512
//     and SCRAM-SHA-256, certificate from a CA the test makes), a
//     SASL_PLAINTEXT one (PLAIN) and an SSL one requiring a client
//     certificate signed by that CA: `kappa ingest --tls --tls-ca ...
//     --sasl-mechanism ...` (or `--tls-cert/--tls-key`) lands every message
//     exactly once on each; a wrong password, a password of the other SCRAM
//     mechanism, an unknown CA, or a missing or untrusted client certificate
//     makes it exit non-zero at start, naming authentication.
//   - s3: a table on versitygw: appends, time travel, 4 concurrent writer
//     processes, nothing lost.
//
// # Comparing rows
//
// Rows are compared as multisets of canonical JSON lines (see canonRow and
// scripts/interop/engines.py, which implement the same form): timestamps as
// UTC ISO-8601 microseconds, decimals as plain strings, floats by their IEEE
// bits, binary as base64, maps as sorted key/value pairs.
//
// One Python process runs per engine (the JVM starts once); the Go tests hand
// it a JSON manifest and read back a JSON result. A summary table (case,
// engine, versions checked, result) is printed at the end of the run.
package interop
