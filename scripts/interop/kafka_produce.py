#!/usr/bin/env python3
"""Independent Kafka producer for the interop suite (kafka-python).

    python kafka_produce.py --bootstrap 127.0.0.1:PORT --topic T --partitions P \
        --count N [--chunk C] [--pause-ms MS]

Creates the topic with P partitions (if missing), then produces N JSON
messages {"id": i, "payload": "..."} with an idempotent producer (acks=all),
message i to partition i % P, in chunks of C with a pause between chunks so
the stream lasts a while. Prints one JSON line at the end:
{"count": N, "per_partition": {"0": n0, ...}}.
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
    for i in range(a.count):
        part = i % a.partitions
        v = json.dumps({"id": i, "payload": "message-%d-%s" % (i, "x" * (i % 17))}).encode()
        p.send(a.topic, value=v, key=str(i).encode(), partition=part)
        per[part] = per.get(part, 0) + 1
        if (i + 1) % a.chunk == 0:
            p.flush()
            time.sleep(a.pause_ms / 1000.0)
    p.flush()
    p.close()
    print(json.dumps({"count": a.count, "per_partition": {str(k): v for k, v in per.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
