#!/usr/bin/env python3
"""Interop driver for one Delta engine (Spark, delta-rs or DuckDB).

Run by the Go interop tests (internal/interop), one process per engine so the
JVM starts once:

    python engines.py --engine spark|deltalake|duckdb --manifest M.json --out R.json

The manifest holds
  "checks": [{"id", "table", "version"|null, "timestamp"|null, "schema", "expected"}]
      read `table` at the version (or ISO-8601 UTC timestamp, or latest when
      both are null) and compare the rows, as multisets of canonical JSON
      lines, with the file `expected` (written by Kappa for the same version);
  "write": {"dir"}   (spark and deltalake only)
      create tables under dir with appends, overwrites, deletes, updates,
      partitions, checkpoints (Spark also deletion vectors and column mapping)
      and dump the rows of every version as canonical JSON lines for the Go
      test to compare with Kappa's reads.

The result file is JSON: {"engine", "versions", "checks": [...], "writes": [...],
"write_error"}. The exit code is 0 even when checks fail (the Go test judges);
non-zero only when the engine itself could not start.

Canonical form (must match internal/interop/canon_test.go): a row is a JSON
object, keys sorted, compact separators, non-ASCII kept; values by Delta type:
integers as numbers, float/double as "f:<IEEE-754 bits of the float64 value>"
("NaN" for NaN), decimals as plain strings with exactly `scale` digits,
binary as "b64:<base64>", dates "YYYY-MM-DD", timestamps
"YYYY-MM-DDTHH:MM:SS.ffffffZ" in UTC, timestamp_ntz the same without "Z",
structs as objects, arrays as lists, maps as lists of [key, value] sorted by
the canonical JSON of the key.
"""

import argparse
import base64
import collections
import datetime as dt
import decimal
import json
import math
import os
import re
import struct
import sys
import time
import traceback

os.environ["TZ"] = "UTC"
time.tzset()

UTC = dt.timezone.utc
DECIMAL_RE = re.compile(r"decimal\((\d+),\s*(\d+)\)")


# ---------------------------------------------------------------- canonical form


def _fmt_dt(d):
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06d" % (
        d.year, d.month, d.day, d.hour, d.minute, d.second, d.microsecond)


def canon(v, t):
    """Canonical JSON-able value of v whose Delta type is t."""
    if v is None:
        return None
    if isinstance(t, dict):
        kind = t.get("type")
        if kind == "struct":
            if hasattr(v, "asDict"):
                v = v.asDict()
            if isinstance(v, (list, tuple)) and not isinstance(v, dict):
                v = {f["name"]: x for f, x in zip(t["fields"], v)}
            return {f["name"]: canon(v.get(f["name"]), f["type"]) for f in t["fields"]}
        if kind == "array":
            return [canon(x, t["elementType"]) for x in v]
        if kind == "map":
            return canon_map(v, t["keyType"], t["valueType"])
        raise ValueError("unknown complex type %r" % (t,))
    if t == "string":
        return str(v)
    if t in ("long", "integer", "short", "byte"):
        return int(v)
    if t in ("float", "double"):
        f = float(v)
        if math.isnan(f):
            return "NaN"
        return "f:%d" % struct.unpack(">Q", struct.pack(">d", f))[0]
    if t == "boolean":
        return bool(v)
    if t == "binary":
        return "b64:" + base64.b64encode(bytes(v)).decode("ascii")
    if t == "date":
        if isinstance(v, dt.datetime):
            v = v.date()
        return "%04d-%02d-%02d" % (v.year, v.month, v.day)
    if t == "timestamp":
        if v.tzinfo is not None:
            v = v.astimezone(UTC)
        return _fmt_dt(v) + "Z"
    if t == "timestamp_ntz":
        if v.tzinfo is not None:
            v = v.astimezone(UTC).replace(tzinfo=None)
        return _fmt_dt(v)
    m = DECIMAL_RE.fullmatch(t)
    if m:
        scale = int(m.group(2))
        d = decimal.Decimal(v) if not isinstance(v, decimal.Decimal) else v
        with decimal.localcontext() as ctx:
            ctx.prec = 80
            d = d.quantize(decimal.Decimal(1).scaleb(-scale))
        return format(d, "f")
    raise ValueError("unknown type %r" % (t,))


def canon_map(v, kt, vt):
    if isinstance(v, dict):
        if set(v.keys()) == {"key", "value"} and isinstance(v["key"], list):
            pairs = list(zip(v["key"], v["value"]))  # old DuckDB MAP form
        else:
            pairs = list(v.items())
    else:
        pairs = []
        for e in v:
            if isinstance(e, dict):
                pairs.append((e["key"], e["value"]))
            elif hasattr(e, "asDict"):
                d = e.asDict()
                pairs.append((d["key"], d["value"]))
            else:
                pairs.append((e[0], e[1]))
    out = [[canon(k, kt), canon(x, vt)] for k, x in pairs]
    out.sort(key=lambda p: dumps(p[0]))
    return out


def dumps(o):
    return json.dumps(o, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canon_rows(rows, schema):
    """rows: iterable of dicts (column name -> value)."""
    out = []
    for r in rows:
        out.append(dumps({f["name"]: canon(r.get(f["name"]), f["type"]) for f in schema["fields"]}))
    return out


def compare(got, expected_lines):
    g = collections.Counter(got)
    e = collections.Counter(expected_lines)
    missing = list((e - g).elements())
    extra = list((g - e).elements())
    return missing, extra


def read_expected(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def parse_ts(s):
    """ISO-8601 with Z -> aware UTC datetime."""
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).astimezone(UTC)


# ---------------------------------------------------------------- engines


class Spark:
    name = "spark"

    def __init__(self, work):
        import pyspark
        from delta import configure_spark_with_delta_pip
        from pyspark.sql import SparkSession
        import importlib.metadata as md

        self.versions = "pyspark %s, delta-spark %s" % (
            pyspark.__version__, md.version("delta-spark"))
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        jopts = "-Duser.timezone=UTC -Dio.netty.tryReflectionSetAccessible=true"
        b = (SparkSession.builder.master("local[2]").appName("kappa-interop")
             .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
             .config("spark.sql.catalog.spark_catalog",
                     "org.apache.spark.sql.delta.catalog.DeltaCatalog")
             .config("spark.driver.host", "127.0.0.1")
             .config("spark.driver.bindAddress", "127.0.0.1")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.driver.memory", "768m")
             .config("spark.sql.shuffle.partitions", "2")
             .config("spark.default.parallelism", "2")
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.driver.extraJavaOptions", jopts)
             .config("spark.sql.warehouse.dir", os.path.join(work, "spark-warehouse"))
             .config("spark.jars.ivy", os.path.join(os.path.expanduser("~"), ".ivy2.5.2"))
             .config("spark.databricks.delta.snapshotPartitions", "2"))
        self.spark = configure_spark_with_delta_pip(b).getOrCreate()
        self.spark.sparkContext.setLogLevel("ERROR")

    def read(self, table, version=None, timestamp=None):
        r = self.spark.read.format("delta")
        if version is not None:
            r = r.option("versionAsOf", int(version))
        elif timestamp is not None:
            ts = parse_ts(timestamp)
            r = r.option("timestampAsOf", ts.strftime("%Y-%m-%d %H:%M:%S.%f"))
        df = r.load(table)
        schema = json.loads(df.schema.json())
        return [row.asDict() for row in df.collect()], schema

    def close(self):
        self.spark.stop()

    # -- writes (case 2)
    def write_tables(self, root):
        from pyspark.sql import Row
        from pyspark.sql import types as T
        spark = self.spark
        out = []
        schema = T.StructType([
            T.StructField("id", T.LongType()),
            T.StructField("name", T.StringType()),
            T.StructField("amount", T.DecimalType(10, 2)),
            T.StructField("ts", T.TimestampType()),
            T.StructField("day", T.DateType()),
            T.StructField("score", T.DoubleType()),
            T.StructField("tags", T.ArrayType(T.StringType())),
            T.StructField("attrs", T.MapType(T.StringType(), T.IntegerType())),
            T.StructField("st", T.StructType([T.StructField("a", T.IntegerType()),
                                              T.StructField("b", T.StringType())])),
            T.StructField("p", T.StringType()),
        ])
        base = dt.datetime(2024, 3, 1, 12, 0, 0)

        def rows(lo, hi):
            res = []
            for i in range(lo, hi):
                res.append((i, "name-%d" % i if i % 7 else None,
                            decimal.Decimal(i * 37 % 100000) / 100,
                            base + dt.timedelta(seconds=i * 61, microseconds=i),
                            dt.date(2024, 1, 1) + dt.timedelta(days=i % 40),
                            i / 8.0,
                            ["t%d" % (i % 3), "u"] if i % 5 else None,
                            {"k%d" % (i % 4): i} if i % 6 else {},
                            (i % 11, "s%d" % i) if i % 9 else None,
                            "abc"[i % 3]))
            return spark.createDataFrame(res, schema).coalesce(1)

        # 1. plain table: appends past a checkpoint, overwrite, delete, update
        p = os.path.join(root, "spark_ops")
        rows(0, 10).write.format("delta").option("delta.enableDeletionVectors", "false").save(p)
        for k in range(1, 12):
            rows(k * 10, k * 10 + 10).write.format("delta").mode("append").save(p)
        rows(500, 530).write.format("delta").mode("overwrite").save(p)
        rows(530, 540).write.format("delta").mode("append").save(p)
        spark.sql("DELETE FROM delta.`%s` WHERE id %% 3 = 0" % p)
        spark.sql("UPDATE delta.`%s` SET name = 'updated' WHERE id %% 4 = 1" % p)
        out.append(self.dump(p, "spark_ops"))

        # 2. partitioned: appends, replaceWhere overwrite, partition delete
        p = os.path.join(root, "spark_part")
        rows(0, 10).write.format("delta").partitionBy("p", "day").option(
            "delta.enableDeletionVectors", "false").save(p)
        for k in range(1, 11):
            rows(k * 10, k * 10 + 10).write.format("delta").mode("append").save(p)
        rows(900, 930).where("p = 'a'").write.format("delta").mode("overwrite").option(
            "replaceWhere", "p = 'a'").save(p)
        spark.sql("DELETE FROM delta.`%s` WHERE p = 'b'" % p)
        out.append(self.dump(p, "spark_part"))

        # 3. deletion vectors
        p = os.path.join(root, "spark_dv")
        rows(0, 40).write.format("delta").option("delta.enableDeletionVectors", "true").option(
            "delta.checkpointInterval", "3").save(p)
        rows(40, 80).write.format("delta").mode("append").save(p)
        spark.sql("DELETE FROM delta.`%s` WHERE id %% 5 = 0" % p)
        spark.sql("UPDATE delta.`%s` SET score = -1.0 WHERE id %% 7 = 3" % p)
        spark.sql("DELETE FROM delta.`%s` WHERE id > 70" % p)
        rows(80, 90).write.format("delta").mode("append").save(p)
        out.append(self.dump(p, "spark_dv"))

        # 4. column mapping (name): rename and drop columns
        p = os.path.join(root, "spark_cm")
        rows(0, 20).write.format("delta").option("delta.columnMapping.mode", "name").option(
            "delta.checkpointInterval", "3").option(
            "delta.minReaderVersion", "2").option("delta.minWriterVersion", "5").partitionBy("p").save(p)
        spark.sql("ALTER TABLE delta.`%s` RENAME COLUMN name TO full_name" % p)
        spark.sql("ALTER TABLE delta.`%s` RENAME COLUMN st TO nested" % p)
        spark.sql("ALTER TABLE delta.`%s` DROP COLUMN score" % p)
        df = rows(20, 40).withColumnRenamed("name", "full_name").withColumnRenamed(
            "st", "nested").drop("score")
        df.write.format("delta").mode("append").save(p)
        spark.sql("DELETE FROM delta.`%s` WHERE id %% 4 = 0" % p)
        out.append(self.dump(p, "spark_cm"))
        return out

    def dump(self, path, name):
        from delta.tables import DeltaTable
        latest = DeltaTable.forPath(self.spark, path).history(1).collect()[0]["version"]
        versions = []
        for v in range(0, latest + 1):
            rows, schema = self.read(path, version=v)
            f = os.path.join(path + "-rows", "%d.jsonl" % v)
            write_lines(f, canon_rows(rows, schema))
            versions.append({"version": v, "rows_file": f, "rows": len(rows)})
        return {"name": name, "table": path, "versions": versions}


class DeltaRS:
    name = "deltalake"

    def __init__(self, work):
        import deltalake
        import pyarrow
        self.versions = "deltalake %s, pyarrow %s" % (deltalake.__version__, pyarrow.__version__)

    def open(self, table, version=None, timestamp=None):
        from deltalake import DeltaTable
        if version is not None:
            return DeltaTable(table, version=int(version))
        t = DeltaTable(table)
        if timestamp is not None:
            t.load_as_version(parse_ts(timestamp))
        return t

    def read(self, table, version=None, timestamp=None):
        t = self.open(table, version, timestamp)
        schema = json.loads(t.schema().to_json())
        try:
            at = t.to_pyarrow_table()
        except Exception:  # deletion vectors / column mapping: go through DataFusion
            import pyarrow as pa
            from deltalake import QueryBuilder
            at = pa.table(QueryBuilder().register("t", t).execute("SELECT * FROM t").read_all())
        return at.to_pylist(), schema

    def close(self):
        pass

    def write_tables(self, root):
        import pyarrow as pa
        from deltalake import DeltaTable, write_deltalake
        out = []
        schema = pa.schema([
            ("id", pa.int64()), ("name", pa.string()), ("amount", pa.decimal128(12, 3)),
            ("ts", pa.timestamp("us", tz="UTC")), ("day", pa.date32()),
            ("f", pa.float32()), ("ok", pa.bool_()), ("raw", pa.binary()),
            ("tags", pa.list_(pa.int32())),
            ("attrs", pa.map_(pa.string(), pa.string())),
            ("st", pa.struct([("a", pa.int16()), ("b", pa.list_(pa.string()))])),
            ("p", pa.string()),
        ])
        base = dt.datetime(2025, 6, 1, tzinfo=UTC)

        def batch(lo, hi):
            cols = {k: [] for k in schema.names}
            for i in range(lo, hi):
                cols["id"].append(i)
                cols["name"].append("n%d" % i if i % 5 else None)
                cols["amount"].append(decimal.Decimal(i * 1234 % 99999) / 1000)
                cols["ts"].append(base + dt.timedelta(minutes=i, microseconds=i * 3))
                cols["day"].append(dt.date(2025, 1, 1) + dt.timedelta(days=i % 30))
                cols["f"].append(i * 0.25)
                cols["ok"].append(i % 2 == 0)
                cols["raw"].append(bytes([i % 256, 0, 255]))
                cols["tags"].append([i, i + 1] if i % 4 else [])
                cols["attrs"].append([("x", str(i))] if i % 3 else None)
                cols["st"].append({"a": i % 100, "b": ["q"] * (i % 3)} if i % 8 else None)
                cols["p"].append("xyz"[i % 3])
            return pa.table(cols, schema=schema)

        p = os.path.join(root, "deltars_ops")
        write_deltalake(p, batch(0, 10))
        for k in range(1, 12):
            write_deltalake(p, batch(k * 10, k * 10 + 10), mode="append")
            if k == 10:
                DeltaTable(p).create_checkpoint()
        write_deltalake(p, batch(300, 320), mode="overwrite")
        write_deltalake(p, batch(320, 330), mode="append")
        DeltaTable(p).delete("id % 3 = 0")
        DeltaTable(p).update(updates={"name": "'upd'"}, predicate="id % 4 = 1")
        DeltaTable(p).create_checkpoint()
        write_deltalake(p, batch(330, 335), mode="append")
        out.append(self.dump(p, "deltars_ops"))

        p = os.path.join(root, "deltars_part")
        write_deltalake(p, batch(0, 12), partition_by=["p"])
        for k in range(1, 11):
            write_deltalake(p, batch(k * 12, k * 12 + 12), mode="append")
        DeltaTable(p).create_checkpoint()
        write_deltalake(p, batch(600, 630).filter(pa.compute.equal(batch(600, 630)["p"], "x")),
                        mode="overwrite", predicate="p = 'x'")
        DeltaTable(p).delete("p = 'y'")
        DeltaTable(p).delete("id % 5 = 1")
        out.append(self.dump(p, "deltars_part"))
        return out

    def dump(self, path, name):
        from deltalake import DeltaTable
        latest = DeltaTable(path).version()
        versions = []
        for v in range(0, latest + 1):
            rows, schema = self.read(path, version=v)
            f = os.path.join(path + "-rows", "%d.jsonl" % v)
            write_lines(f, canon_rows(rows, schema))
            versions.append({"version": v, "rows_file": f, "rows": len(rows)})
        return {"name": name, "table": path, "versions": versions}


class NotSupported(Exception):
    """A read the engine cannot do (reported as skipped, not failed)."""


class DuckDB:
    name = "duckdb"

    def __init__(self, work):
        import duckdb
        import importlib.metadata as md
        self.versions = "duckdb %s, duckdb-extension-delta %s" % (
            duckdb.__version__, md.version("duckdb-extension-delta"))
        self.con = duckdb.connect(config={"autoinstall_known_extensions": "false",
                                          "autoload_known_extensions": "false"})
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute("LOAD '%s'" % delta_extension_path().replace("'", "''"))

    def read(self, table, version=None, timestamp=None):
        url = "file://" + os.path.abspath(table)
        arg = ""
        if version is not None:
            arg = ", version => %d" % int(version)
        elif timestamp is not None:
            # duckdb-extension-delta 1.5.5: "Delta tables only support
            # at_clause with unit 'version'", and delta_scan has no timestamp
            raise NotSupported("duckdb delta extension has no timestamp time travel")
        cur = self.con.execute("SELECT * FROM delta_scan('%s'%s)" % (url.replace("'", "''"), arg))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()], None

    def close(self):
        self.con.close()


def delta_extension_path():
    """The delta extension file shipped by the duckdb-extension-delta wheel."""
    import importlib.metadata as md
    for f in md.files("duckdb-extension-delta") or []:
        if str(f).endswith(".duckdb_extension"):
            return str(f.locate())
    raise RuntimeError("duckdb-extension-delta ships no .duckdb_extension file")


def write_lines(path, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(line)
            f.write("\n")


ENGINES = {"spark": Spark, "deltalake": DeltaRS, "duckdb": DuckDB}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", required=True, choices=sorted(ENGINES))
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    with open(a.manifest, encoding="utf-8") as f:
        manifest = json.load(f)
    work = os.path.dirname(os.path.abspath(a.out))
    t0 = time.time()
    eng = ENGINES[a.engine](work)
    res = {"engine": a.engine, "versions": eng.versions, "checks": [], "writes": [],
           "startup_seconds": round(time.time() - t0, 1)}
    for c in manifest.get("checks", []):
        r = {"id": c["id"], "ok": False}
        try:
            exp = read_expected(c["expected"])
            r["expected_rows"] = len(exp)
            rows, _ = eng.read(c["table"], c.get("version"), c.get("timestamp"))
            got = canon_rows(rows, c["schema"])
            missing, extra = compare(got, exp)
            r.update(rows=len(got), expected_rows=len(exp), missing=missing[:5],
                     extra=extra[:5], n_missing=len(missing), n_extra=len(extra),
                     ok=not missing and not extra)
        except NotSupported as e:
            r["skipped"] = str(e)
        except Exception as e:  # report, keep checking the others
            r["error"] = "%s: %s" % (type(e).__name__, str(e)[:2000])
        res["checks"].append(r)
    w = manifest.get("write")
    if w:
        try:
            res["writes"] = eng.write_tables(w["dir"])
        except Exception:
            res["write_error"] = traceback.format_exc()[-4000:]
    eng.close()
    res["seconds"] = round(time.time() - t0, 1)
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(res, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: under load, deltalake's native threads
    # sometimes abort at exit ("terminate called without an active
    # exception") after every result was written and synced above, which
    # would fail a run whose checks all passed.
    os._exit(code or 0)
