#!/usr/bin/env python3
"""Independent Kafka producer for the interop suite (kafka-python).

    python kafka_produce.py --bootstrap 127.0.0.1:PORT --topic T --partitions P \
        --count N [--chunk C] [--pause-ms MS] [--bad-every K]

Creates the topic with P partitions (if missing), then produces N JSON
messages {"id": i, "payload": "..."} with an idempotent producer (acks=all),
message i to partition i % P, in chunks of C with a pause between chunks so
the stream lasts a while. Prints one JSON line at the end:
{"count": N, "per_partition": {"0": n0, ...}, "bad": [...]}.

With --bad-every K (default 0: none), message i is malformed instead when
i % K == K // 2, cycling through four kinds (by (i // K) % 4), each value
holding the text "bad message <i>":
  0 "text": not JSON at all;
  1 "array": JSON, but an array instead of an object;
  2 "string-id": an object whose long field id is a string;
  3 "fraction-id": an object whose long field id is 1.5.
"bad" lists them as {"i", "kind", "partition", "offset", "timestamp",
"value"} with the offset and timestamp (ms) of the record.
"""

import argparse
import json
import sys
import time

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--chunk", type=int, default=1000)
    ap.add_argument("--pause-ms", type=int, default=100)
    ap.add_argument("--bad-every", type=int, default=0)
    a = ap.parse_args()

    admin = KafkaAdminClient(bootstrap_servers=a.bootstrap, client_id="interop-admin")
    try:
        admin.create_topics([NewTopic(a.topic, num_partitions=a.partitions, replication_factor=1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()

    p = KafkaProducer(bootstrap_servers=a.bootstrap, acks="all", enable_idempotence=True,
                      linger_ms=5, client_id="interop-producer")
    per = {}
    bad = []  # (i, kind, value, future)
    for i in range(a.count):
        part = i % a.partitions
        kind = bad_kind(i, a.bad_every)
        if kind is None:
            v = json.dumps({"id": i, "payload": "message-%d-%s" % (i, "x" * (i % 17))}).encode()
        else:
            v = bad_value(i, kind).encode()
        fut = p.send(a.topic, value=v, key=str(i).encode(), partition=part)
        if kind is not None:
            bad.append((i, kind, v, fut))
        per[part] = per.get(part, 0) + 1
        if (i + 1) % a.chunk == 0:
            p.flush()
            time.sleep(a.pause_ms / 1000.0)
    p.flush()
    out = []
    for i, kind, v, fut in bad:
        md = fut.get(timeout=60)
        out.append({"i": i, "kind": kind, "partition": md.partition, "offset": md.offset,
                    "timestamp": md.timestamp, "value": v.decode()})
    p.close()
    print(json.dumps({"count": a.count, "per_partition": {str(k): v for k, v in per.items()},
                      "bad": out}))
    return 0


BAD_KINDS = ("text", "array", "string-id", "fraction-id")


def bad_kind(i, every):
    """The kind of malformed message i is, or None for a good one."""
    if every <= 0 or i % every != every // 2:
        return None
    return BAD_KINDS[(i // every) % len(BAD_KINDS)]


def bad_value(i, kind):
    if kind == "text":
        return "bad message %d: not JSON {" % i
    if kind == "array":
        return json.dumps(["bad message %d" % i])
    if kind == "string-id":
        return json.dumps({"id": "bad message %d" % i, "payload": "p"})
    return json.dumps({"id": 1.5, "payload": "bad message %d" % i})


if __name__ == "__main__":
    sys.exit(main())
