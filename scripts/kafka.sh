#!/usr/bin/env bash
# Resolves Apache Kafka (the broker, KRaft mode) and a logging backend from
# Maven Central into <repo>/.cache/kafka/<version>/libs and prints that
# directory. Idempotent: a complete earlier resolution is reused (a stamp
# file marks it). .cache/ is git-ignored; Maven's own cache is ~/.m2.
#
#   LIBS="$(scripts/kafka.sh)" && java -cp "$LIBS/*" kafka.Kafka server.properties
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pom="${repo}/scripts/interop/kafka-pom.xml"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "${pom}")"
dir="${repo}/.cache/kafka/${version}"
libs="${dir}/libs"
stamp="${dir}/.complete"

if [[ -f "${stamp}" && "$(cat "${stamp}")" == "$(sha256sum "${pom}" | cut -d' ' -f1)" ]]; then
	echo "${libs}"
	exit 0
fi
for tool in mvn java; do
	if ! command -v "${tool}" >/dev/null; then
		echo "kafka.sh: ${tool} not found" >&2
		exit 1
	fi
done
echo "resolving Apache Kafka ${version} from Maven Central into ${libs}..." >&2
rm -rf "${libs}"
mkdir -p "${dir}"
mvn -q -B -f "${pom}" \
	org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
	-DincludeScope=runtime -DoutputDirectory="${libs}" >&2
if ! compgen -G "${libs}/kafka_2.13-*.jar" >/dev/null; then
	echo "kafka.sh: no kafka_2.13 jar in ${libs}" >&2
	exit 1
fi
sha256sum "${pom}" | cut -d' ' -f1 >"${stamp}"
echo "${libs}"
