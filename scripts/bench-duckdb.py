#!/usr/bin/env python3
"""DuckDB baseline for reader's BenchmarkScanAggregate.

Runs the same queries as reader/bench_test.go over the same cached Parquet
files (the data files listed in the bench table's Delta log) with
duckdb.read_parquet:

  full:      SELECT key, SUM(value), COUNT(*) ... GROUP BY key
  selective: the same WHERE id < rows/100

and prints one line per run in Go benchmark format (benchstat reads them):

  BenchmarkDuckDBScanAggregate/full-2  1  812345678 ns/op  12310000 rows/s

Ratios "ours / DuckDB" (rows/s) are printed when Go benchmark numbers are
given, either

  --compare FILE   Go benchmark output to read (e.g. .cache/bench.txt, or -)
  --go             run the Go benchmark here too, interleaved with DuckDB,
                   round after round (the fairest on a shared machine)

The table is the one the Go benchmark generates and caches:
$KAPPA_BENCH_CACHE (default $TMPDIR/kappa-bench-cache)/reader-scan-<rows>-v1,
rows = $KAPPA_BENCH_ROWS (default 10,000,000). Run the Go benchmark once
first to create it (--go does).

Usage: PY="$(scripts/venv.sh)" && "$PY" scripts/bench-duckdb.py --go --runs 3
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GO_BENCH = "BenchmarkScanAggregate"
QUERY = "SELECT key, SUM(value) AS s, COUNT(*) AS c FROM read_parquet($files) {where} GROUP BY key"


def bench_rows():
    try:
        n = int(os.environ.get("KAPPA_BENCH_ROWS", ""))
        return n if n >= 10 else 10_000_000
    except ValueError:
        return 10_000_000


def table_dir(rows):
    cache = os.environ.get("KAPPA_BENCH_CACHE") or os.path.join(tempfile.gettempdir(), "kappa-bench-cache")
    return os.path.join(cache, "reader-scan-%d-v1" % rows)


def data_files(table):
    """The live data files of the bench table (its single commit's adds)."""
    commit = os.path.join(table, "_delta_log", "%020d.json" % 0)
    files = []
    with open(commit, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            act = json.loads(line)
            if "add" in act:
                files.append(os.path.join(table, act["add"]["path"]))
    return files


def run_duckdb(con, files, rows, selective):
    where = "WHERE id < %d" % (rows // 100) if selective else ""
    t0 = time.perf_counter()
    res = con.execute(QUERY.format(where=where), {"files": files}).fetchall()
    dt = time.perf_counter() - t0
    got = sum(r[2] for r in res)
    want = rows // 100 if selective else rows
    if got != want or (not selective and len(res) != 100):
        sys.exit("duckdb: counted %d rows in %d groups, want %d rows" % (got, len(res), want))
    return dt, got


def go_line_rows(text, sub):
    """rows/s values of Go benchmark lines BenchmarkScanAggregate/<sub>."""
    pat = re.compile(r"^%s/%s(?:-\d+)?\s.*?([\d.e+]+) rows/s" % (GO_BENCH, sub), re.M)
    return [float(m.group(1)) for m in pat.finditer(text)]


def build_go_bench():
    out = os.path.join(tempfile.mkdtemp(prefix="kappa-bench-"), "reader.test")
    subprocess.run(["go", "test", "-c", "-o", out, "./reader"], cwd=REPO, check=True)
    return out


def run_go(binary):
    res = subprocess.run(
        [binary, "-test.run", "^$", "-test.bench", GO_BENCH, "-test.benchtime", "1x", "-test.benchmem"],
        cwd=os.path.join(REPO, "reader"), check=True, capture_output=True, text=True,
    )
    sys.stdout.write("".join(l + "\n" for l in res.stdout.splitlines() if l.startswith("Benchmark")))
    return res.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="runs of each query (default 3)")
    ap.add_argument("--threads", type=int, default=0, help="DuckDB threads (default: GOMAXPROCS or CPU count)")
    ap.add_argument("--compare", metavar="FILE", help="Go benchmark output to compare with ('-' = stdin)")
    ap.add_argument("--go", action="store_true", help="run the Go benchmark too, interleaved")
    ap.add_argument("--skip-missing", action="store_true",
                    help="exit 0 with a note when the bench table does not exist (e.g. make bench BENCH=Write)")
    args = ap.parse_args()

    import duckdb  # from the project venv: scripts/venv.sh

    rows = bench_rows()
    threads = args.threads or int(os.environ.get("GOMAXPROCS", "0") or 0) or os.cpu_count() or 1
    go_bin = build_go_bench() if args.go else None
    go_text = ""
    if go_bin:
        go_text += run_go(go_bin)  # also generates the cached table if missing
    table = table_dir(rows)
    if not os.path.isdir(table):
        if args.skip_missing:
            print("# bench-duckdb: skipped, no bench table at %s (the Go scan benchmark did not run)" % table)
            return
        sys.exit("no bench table at %s: run `go test ./reader -run '^$' -bench ScanAggregate -benchtime 1x` first" % table)
    files = data_files(table)

    con = duckdb.connect()
    con.execute("SET threads TO %d" % threads)
    print("# duckdb %s, %d threads, %d rows in %d files under %s" % (duckdb.__version__, threads, rows, len(files), table))
    results = {"full": [], "selective": []}
    for i in range(args.runs):
        if go_bin and i > 0:
            go_text += run_go(go_bin)
        for sub in ("full", "selective"):
            dt, got = run_duckdb(con, files, rows, sub == "selective")
            results[sub].append(got / dt)
            print("BenchmarkDuckDBScanAggregate/%s-%d\t%8d\t%12d ns/op\t%14.0f rows/s" % (sub, threads, 1, int(dt * 1e9), got / dt))
            sys.stdout.flush()

    if args.compare:
        with (sys.stdin if args.compare == "-" else open(args.compare, encoding="utf-8")) as f:
            go_text += f.read()
    for sub in ("full", "selective"):
        duck = statistics.median(results[sub])
        line = "# %s: duckdb median %.0f rows/s" % (sub, duck)
        ours = go_line_rows(go_text, sub)
        if ours:
            o = statistics.median(ours)
            line += "; kappa median %.0f rows/s (%d runs); ratio kappa/duckdb = %.3f" % (o, len(ours), o / duck)
        print(line)


if __name__ == "__main__":
    main()
