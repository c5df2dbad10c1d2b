#!/usr/bin/env bash
# Installs the pinned versitygw S3 gateway (used by the S3 store tests) into
# <repo>/.cache/bin if it is not there yet, and prints the binary's path.
# Idempotent: a second run only prints the path.
set -euo pipefail

VERSITYGW_VERSION="${VERSITYGW_VERSION:-v1.8.0}"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bindir="${repo}/.cache/bin"
bin="${bindir}/versitygw"
stamp="${bindir}/.versitygw-version"

if [[ -x "${bin}" && -f "${stamp}" && "$(cat "${stamp}")" == "${VERSITYGW_VERSION}" ]]; then
	echo "${bin}"
	exit 0
fi

mkdir -p "${bindir}"
echo "installing versitygw ${VERSITYGW_VERSION} into ${bindir} (about a minute)..." >&2
# Build outside the repo's module so its go.mod is not touched.
(cd "${bindir}" && GOBIN="${bindir}" go install "github.com/versity/versitygw/cmd/versitygw@${VERSITYGW_VERSION}") >&2
echo "${VERSITYGW_VERSION}" >"${stamp}"
echo "${bin}"
