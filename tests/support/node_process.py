"""Run a real district node (`python -m services.node`) for the tests, and read what reached the broker."""

from __future__ import annotations

import time
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

from sgs.kafka.security import kafka_settings
from sgs.kafka.topics import SUBMITTED
from sgs.serialization.codec import default_codec
from tests.support.service_process import ServiceProcess


class NodeProcess(ServiceProcess):
    """One `sgs node` subprocess with its outbox in `data_dir` (kept across restarts)."""

    module = "services.node"
    start_timeout_s = 30.0
    stop_grace_s = 40.0  # uvicorn's 10 s for requests in flight, then the sender's last batch

    def __init__(self, kafka: str, data_dir: Path, districts: tuple[str, ...] = ("310115",)) -> None:
        super().__init__("node", data_dir)
        self.kafka = kafka
        self.districts = districts

    def flags(self) -> list[str]:
        flags = [
            "--http-port",
            str(self.port),
            "--kafka-bootstrap",
            self.kafka,
            "--data-dir",
            str(self.data_dir),
        ]
        for code in self.districts:
            flags += ["--district", code]
        return flags


def submitted_versions(kafka: str, wanted: set[str], timeout_s: float = 60) -> list[tuple[str, int]]:
    """Every (record_id, version) among `wanted` record ids on sgs.submitted.*, duplicates included, read from the
    beginning until each wanted id has been seen (other tests' records on the shared topics are skipped)."""
    consumer = KafkaConsumer(**kafka_settings(kafka), enable_auto_commit=False, consumer_timeout_ms=1000)
    codec = default_codec()
    seen: list[tuple[str, int]] = []
    try:
        parts = [
            TopicPartition(t, p) for t in SUBMITTED.values() for p in consumer.partitions_for_topic(t) or ()
        ]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not wanted <= {rid for rid, _ in seen}:
            for messages in consumer.poll(timeout_ms=500, max_records=5000).values():
                for m in messages:
                    if m.key is None or m.key.decode() not in wanted:
                        continue
                    _, record = codec.decode(m.value)
                    assert record["envelope"]["record_id"] == m.key.decode()  # key = record identity
                    seen.append((record["envelope"]["record_id"], record["envelope"]["version"]))
        # Read a little further, so duplicates sent right after the last first copy are counted too.
        for messages in consumer.poll(timeout_ms=500, max_records=5000).values():
            for m in messages:
                if m.key is not None and m.key.decode() in wanted:
                    _, record = codec.decode(m.value)
                    seen.append((record["envelope"]["record_id"], record["envelope"]["version"]))
    finally:
        consumer.close()
    return seen
