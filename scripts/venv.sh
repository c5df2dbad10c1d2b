#!/usr/bin/env bash
# Creates (or reuses) the project-local Python venv at <repo>/.venv with the
# pinned packages the benchmarks and the interop suite use, and prints the
# venv's python path. Idempotent: when the pins are unchanged a second run
# only prints the path. .venv/ is git-ignored; pip's cache is ~/.cache/pip.
#
#   PY="$(scripts/venv.sh)" && "$PY" scripts/bench-duckdb.py
#
# duckdb is pinned to the version duckdb-extensions / duckdb-extension-delta
# were built for (they depend on duckdb==<same version>): the Delta extension
# is loaded from that wheel, nothing is downloaded at run time. pytz: DuckDB
# needs it to return TIMESTAMPTZ values to Python.
set -euo pipefail

# Pins: bump here; the stamp below makes the next run reinstall.
PACKAGES=(
	"duckdb==1.5.5"
	"duckdb-extensions==1.5.5"
	"duckdb-extension-delta==1.5.5"
	"pytz==2025.2"
	"pyarrow==25.0.1"
	"deltalake==1.6.6"
	"pyspark==4.0.1"
	"delta-spark==4.0.1"
	"kafka-python==3.0.12"
)

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${repo}/.venv"
py="${venv}/bin/python"
stamp="${venv}/.kappa-pins"
want="$(printf '%s\n' "${PACKAGES[@]}")"

if [[ -x "${py}" && -f "${stamp}" && "$(cat "${stamp}")" == "${want}" ]]; then
	echo "${py}"
	exit 0
fi

python="${PYTHON:-python3}"
if ! command -v "${python}" >/dev/null; then
	echo "venv.sh: ${python} not found (set PYTHON=...)" >&2
	exit 1
fi
if [[ ! -x "${py}" ]]; then
	echo "creating ${venv}..." >&2
	"${python}" -m venv "${venv}" >&2
fi
echo "installing ${PACKAGES[*]} into ${venv} (pyspark is ~430 MB the first time)..." >&2
"${py}" -m pip install --quiet --disable-pip-version-check "${PACKAGES[@]}" >&2
echo "${want}" >"${stamp}"
echo "${py}"
