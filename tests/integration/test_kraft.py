"""Apache Kafka as the project starts it (`sgs broker --engine kafka`, sgs/kafka/kraft.py): topics replicated as
the deployment's are, a clean stop on SIGTERM, and a restart from the same --data-dir that keeps every topic and
committed offset (issue 13)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.structs import OffsetAndMetadata

from sgs.kafka.security import kafka_settings
from sgs.kafka.topics import ACCEPTED, SUBMITTED

pytestmark = pytest.mark.engine("kafka")


def test_the_sessions_cluster_replicates_every_topic_three_times_with_two_in_sync(kafka):
    admin = KafkaAdminClient(**kafka_settings(kafka))
    try:
        for topic in admin.describe_topics([SUBMITTED["license"], ACCEPTED["penalty"]]):
            assert {len(p["replica_nodes"]) for p in topic["partitions"]} == {3}, topic["topic"]
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, ACCEPTED["penalty"])])
        entries = configs["topic"][ACCEPTED["penalty"]]
        assert entries["min.insync.replicas"]["value"] == "2"
        assert entries["cleanup.policy"]["value"] == "compact"
    finally:
        admin.close()


def _start_broker(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sgs",
            "broker",
            "--engine",
            "kafka",
            "--brokers",
            "1",
            "--data-dir",
            str(data_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "SGS_LOG_LEVEL": "warning"},
    )
    assert proc.stdout is not None
    for line in proc.stdout:  # "sgs broker: kafka on HOST:PORT" once the topics exist
        if line.startswith("sgs broker: kafka on "):
            return proc, line.split(" on ", 1)[1].strip()
    raise AssertionError(f"sgs broker exited with {proc.wait()} before it was ready")


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0


def test_a_restarted_cluster_keeps_its_topics_records_and_committed_offsets(tmp_path):
    topic, group = SUBMITTED["penalty"], "test-kraft-restart"
    proc, bootstrap = _start_broker(tmp_path)
    try:
        producer = KafkaProducer(**kafka_settings(bootstrap), acks="all")
        metas = [producer.send(topic, key=b"k", value=str(i).encode()).get(30) for i in range(10)]
        producer.close()
        tp = TopicPartition(topic, metas[0].partition)
        consumer = KafkaConsumer(**kafka_settings(bootstrap), group_id=group, enable_auto_commit=False)
        consumer.commit({tp: OffsetAndMetadata(metas[3].offset + 1, "", -1)})
        consumer.close()
    finally:
        _stop(proc)
    assert not any(Path("/proc", p).exists() for p in _java_pids(tmp_path))

    proc, again = _start_broker(tmp_path)
    try:
        assert again == bootstrap  # the same ports, so clients' metadata stays right
        consumer = KafkaConsumer(**kafka_settings(again), group_id=group, enable_auto_commit=False)
        assert consumer.committed(tp) == metas[3].offset + 1
        assert consumer.end_offsets([tp])[tp] == metas[-1].offset + 1
        consumer.assign([tp])
        consumer.seek(tp, metas[0].offset)
        values: list[bytes] = []
        while len(values) < 10:
            values += [r.value for rs in consumer.poll(2000).values() for r in rs if r.key == b"k"]
        consumer.close()
        assert values == [str(i).encode() for i in range(10)]
    finally:
        _stop(proc)


def _java_pids(data_dir: Path) -> list[str]:
    """The processes still running a node of the cluster under `data_dir`."""
    found = subprocess.run(["pgrep", "-f", str(data_dir / "kafka")], capture_output=True, text=True)
    return found.stdout.split()
