#!/usr/bin/env bash
# The interop suite (`make interop`): Kappa against real peers on loopback.
#
#   scripts/interop.sh [extra go test flags, e.g. -run TestKafkaIngest]
#
# 1. installs what the suite needs, idempotently, with caches in git-ignored
#    folders: the Python venv with pyspark/delta-spark, deltalake, pyarrow,
#    duckdb + its Delta extension, kafka-python (scripts/venv.sh -> .venv/);
#    Apache Kafka jars (scripts/kafka.sh -> .cache/kafka/); the Delta jars
#    Spark loads (Maven -> ~/.m2, so Ivy resolves them locally); versitygw
#    (scripts/versitygw.sh -> .cache/bin/);
# 2. runs `go test -tags interop ./internal/interop/...` (cases: Kappa tables
#    read by Spark, delta-rs and DuckDB; Spark and delta-rs tables read by
#    Kappa; real Kafka + kappa ingest under SIGKILL, with a dead-letter
#    topic (--dlq-topic) under SIGKILL, and over SASL_SSL (SCRAM-SHA-512 and
#    -256) / SASL_PLAINTEXT (PLAIN) / SSL with client certificates; S3 on
#    versitygw);
# 3. prints the summary table (case, engine, versions checked, result).
# Any failing case makes the exit status non-zero. The log of the last run
# is .cache/interop/last.log.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo}"
GO="${GO:-go}"
DELTA_SPARK_VERSION=4.0.1 # must match delta-spark in scripts/venv.sh
logdir="${repo}/.cache/interop"
mkdir -p "${logdir}"

step() { printf '==> %s\n' "$*" >&2; }
t0=$SECONDS

step "python venv (scripts/venv.sh)"
scripts/venv.sh >/dev/null
step "kafka jars (scripts/kafka.sh)"
scripts/kafka.sh >/dev/null
step "delta-spark jars in ~/.m2"
m2="${HOME}/.m2/repository/io/delta/delta-spark_2.13/${DELTA_SPARK_VERSION}/delta-spark_2.13-${DELTA_SPARK_VERSION}.jar"
if [[ ! -f "${m2}" ]]; then
	mvn -q -B org.apache.maven.plugins:maven-dependency-plugin:3.8.1:get \
		-Dartifact="io.delta:delta-spark_2.13:${DELTA_SPARK_VERSION}" >&2
fi
step "versitygw (scripts/versitygw.sh)"
versitygw="$(scripts/versitygw.sh)"
step "setup took $((SECONDS - t0))s"

t1=$SECONDS
status=0
KAPPA_REQUIRE_FIXTURES=1 KAPPA_VERSITYGW="${versitygw}" \
	"${GO}" test -tags interop -count=1 -v -timeout 45m "$@" ./internal/interop/... \
	>"${logdir}/last.log" 2>&1 || status=$?
# test progress lines (not the engines' logs) and the summary table
grep -E '^(=== RUN|--- |    --- |PASS|FAIL|ok )|^\s+[a-z_]+_test\.go:[0-9]+: ' "${logdir}/last.log" | cut -c1-400 >&2 || true
sed -n '/^=== interop summary/,$p' "${logdir}/last.log"
step "tests took $((SECONDS - t1))s (total $((SECONDS - t0))s); log: ${logdir}/last.log"
if [[ ${status} -ne 0 ]]; then
	echo "interop: FAILED (go test exit ${status})" >&2
fi
exit "${status}"
