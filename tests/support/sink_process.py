"""Run a real sink process (`python -m services.sink`) on its own relay topic, and feed it, for the tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kafka import KafkaProducer

from services.sink.store import SinkStore
from sgs.kafka.admin import ensure_topics
from sgs.kafka.security import kafka_settings
from sgs.kafka.topics import TopicSpec
from tests.support.service_process import ServiceProcess
from tests.support.signed import headers
from tests.support.sink_records import encoded, unique_tag


def relay_topic(kafka: str, partitions: int = 4, tier: str = "provincial") -> str:
    """A relay topic of the test's own, so other tests' records never reach this sink (and its receipts); named
    under its tier's relay, which is what the tier's sink may read on Apache Kafka (issue 16)."""
    name = f"sgs.relay.{tier}.test-{unique_tag()}"
    ensure_topics(kafka, partitions, (TopicSpec(name, compacted=True),))
    return name


def produce(kafka: str, topic: str, messages: list[dict[str, Any]]) -> dict[int, int]:
    """Send the messages; returns, per partition, the offset after the last one sent (the broker's own end
    offsets are not exact on Tansu: it reports the last batch's base offset + 1)."""
    producer = KafkaProducer(**kafka_settings(kafka), acks="all", linger_ms=5)
    try:
        futures = []
        for m in messages:  # signed by the worker, as the sinks accept nothing else (issue 16)
            key, value = encoded(m)
            futures.append(
                producer.send(topic, key=key, value=value, headers=headers("worker", topic, key, value))
            )
        producer.flush(30)
        ends: dict[int, int] = {}
        for f in futures:
            meta = f.get(timeout=30)
            ends[meta.partition] = max(ends.get(meta.partition, 0), meta.offset + 1)
        return ends
    finally:
        producer.close(10)


class SinkProcess(ServiceProcess):
    """One sink subprocess with a SQLite store in `data_dir` (or the given store URL); the test reads the same
    store directly."""

    module = "services.sink"

    def __init__(
        self, kafka: str, topic: str, data_dir: Path, tier: str = "provincial", store_url: str | None = None
    ) -> None:
        super().__init__(f"sink-{tier}", data_dir, env={"SGS_OPERATOR_TOKEN": "测试员=op-secret-123"})
        self.kafka, self.topic, self.tier = kafka, topic, tier
        self.store_url = store_url or f"sqlite:///{data_dir}/sink-{tier}.db"
        self.group = f"sgs-sink-test-{unique_tag()}"

    def flags(self) -> list[str]:
        flags = ["--tier", self.tier, "--kafka-bootstrap", self.kafka, "--relay-topic", self.topic]
        flags += ["--group-id", self.group, "--store-url", self.store_url]
        return flags + ["--http-port", str(self.port), "--data-dir", str(self.data_dir)]

    def caught_up(self, store: SinkStore, sent: dict[int, int]) -> bool:
        """Every message sent (per partition, the offset after the last one, from `produce`) is reflected in the
        store's offsets."""
        stored = store.stored_offsets(self.topic)
        return all(stored.get(p, 0) >= off for p, off in sent.items())
