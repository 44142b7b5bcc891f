"""`sgs_consumer_lag` read from a real broker with a real consumer group."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from prometheus_client import CollectorRegistry

from services.lag_exporter.collector import ConsumerLagCollector
from services.lag_exporter.service import serve_metrics
from sgs.kafka.launch import free_port
from sgs.kafka.security import kafka_settings


def _make_group_behind(kafka: str, produced: int, committed: int) -> tuple[str, str]:
    """A fresh one-partition topic with `produced` records and a group that committed after `committed` of them."""
    topic = f"sgs.test.lag.{uuid.uuid4().hex[:8]}"
    group = f"sgs-test-lag-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(**kafka_settings(kafka))
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    admin.close()
    producer = KafkaProducer(**kafka_settings(kafka))
    for i in range(produced):
        producer.send(topic, key=f"r{i}".encode(), value=b"x").get(
            timeout=10
        )  # one batch each: see services.lag_exporter.collector
    producer.close()
    consumer = KafkaConsumer(
        **kafka_settings(kafka),
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_interval_ms=3000,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    consumer.subscribe([topic])
    seen = 0
    deadline = time.monotonic() + 30
    while seen < committed and time.monotonic() < deadline:
        for records in consumer.poll(500, max_records=committed - seen).values():
            seen += len(records)
    assert seen == committed
    consumer.commit()
    consumer.close()
    return topic, group


def test_lag_is_end_offset_minus_committed_offset(kafka: str) -> None:
    topic, group = _make_group_behind(kafka, produced=7, committed=3)
    collector = ConsumerLagCollector(kafka, group_prefix=group)
    try:
        lags = {(g, tp): lag for g, tp, lag in collector.read_lag()}
    finally:
        collector.close()
    assert lags == {(group, TopicPartition(topic, 0)): 4}


def test_lag_exporter_serves_lag_and_healthz_over_http(kafka: str) -> None:
    topic, group = _make_group_behind(kafka, produced=5, committed=5)
    registry = CollectorRegistry()
    collector = ConsumerLagCollector(kafka, group_prefix=group)
    registry.register(collector)
    port = free_port()
    server = serve_metrics(registry, port, host="127.0.0.1")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        body = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        server.shutdown()
        server.server_close()
        collector.close()
    assert f'sgs_consumer_lag{{group="{group}",partition="0",topic="{topic}"}} 0.0' in body
    assert "sgs_lag_exporter_up 1.0" in body


def test_lag_exporter_reports_down_when_kafka_is_unreachable() -> None:
    collector = ConsumerLagCollector(f"127.0.0.1:{free_port()}", request_timeout_ms=1000)
    metrics = {m.name: m for m in collector.collect()}
    assert [s.value for s in metrics["sgs_lag_exporter_up"].samples] == [0]
    assert metrics["sgs_consumer_lag"].samples == []
