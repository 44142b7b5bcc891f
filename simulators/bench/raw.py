"""(a) of `sgs bench`: a raw kafka-python consume-and-produce pass-through of the same Avro records, the yardstick
the end-to-end figure is divided by."""

from __future__ import annotations

import threading
import time

from sgs.kafka.admin import ensure_topics
from sgs.kafka.producer import durable_producer
from sgs.kafka.security import kafka_settings
from sgs.kafka.topics import TopicSpec


def raw_pass_through(
    bootstrap: str, payloads: list[tuple[bytes, bytes]], partitions: int, run_id: str, stop: threading.Event
) -> dict[str, float]:
    """(a): produce `payloads` to a scratch topic, then copy them with a plain consume-and-produce loop to a second
    one; no decoding, no state. The producer is configured as the district node's sender and the simulator's."""
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

    source, sink = f"sgs.bench.{run_id}.raw-in", f"sgs.bench.{run_id}.raw-out"
    ensure_topics(
        bootstrap, partitions, (TopicSpec(source, retention_days=1), TopicSpec(sink, retention_days=1))
    )

    def producer() -> KafkaProducer:
        return durable_producer(bootstrap)

    n = len(payloads)
    out = producer()
    started = time.perf_counter()
    for key, value in payloads:
        out.send(source, key=key, value=value)
    out.flush()
    produced_s = time.perf_counter() - started

    consumer = KafkaConsumer(**kafka_settings(bootstrap), enable_auto_commit=False, max_poll_records=5000)
    consumer.assign([TopicPartition(source, p) for p in range(partitions)])
    consumer.seek_to_beginning()
    copied = 0
    started = time.perf_counter()
    while copied < n and not stop.is_set():
        for messages in consumer.poll(timeout_ms=1000).values():
            for m in messages:
                out.send(sink, key=m.key, value=m.value)
            copied += len(messages)
    out.flush()
    copied_s = time.perf_counter() - started
    consumer.close()
    out.close()
    admin = KafkaAdminClient(**kafka_settings(bootstrap))
    try:
        admin.delete_topics([source, sink])  # the embedded broker holds them in memory
    except Exception:  # noqa: BLE001 - a broker that cannot delete keeps two scratch topics; the run goes on
        pass
    finally:
        admin.close()
    return {
        "produce_records_per_s": round(n / produced_s, 1),
        "pass_through_records_per_s": round(copied / copied_s, 1),
        "record_bytes_mean": round(sum(len(v) for _, v in payloads) / max(1, n), 1),
    }
