#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a short time each (CI does this
# on every run; a crash fails the run and go test writes the failing input to
# the package's testdata/fuzz/<Target>/, where it becomes a regression test).
#
#   scripts/fuzz.sh [FUZZTIME]      default 10s per target
#
# -parallel 1 and a bounded minimisation keep it predictable on 2 cores.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
fuzztime="${1:-10s}"
go="${GO:-go}"

targets=0
failed=0
while IFS= read -r line; do
	file="${line%%:*}"
	name="${line#*func }"
	name="${name%%(*}"
	dir="$(dirname "${file}")"
	pkg="./${dir#./}"
	targets=$((targets + 1))
	echo "== fuzz ${pkg} ${name} (${fuzztime})"
	if ! "${go}" test "${pkg}" -run '^$' -fuzz "^${name}\$" -fuzztime "${fuzztime}" \
		-fuzzminimizetime 100x -parallel 1; then
		failed=$((failed + 1))
		echo "FAIL: ${pkg} ${name}"
	fi
done < <(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' . | sort)

echo "fuzz: ${targets} targets, ${failed} failed"
[[ "${targets}" -gt 0 && "${failed}" -eq 0 ]]
