"""`services.worker.prompt.PromptFetchThread`: on a real broker, a poll of the worker's consumer takes what waits on
the other topics before the submitted records, however many of those wait (issue 14: behind a backlog a decision,
and a credit repair at each of its hops, waited until every submitted record fetched before it was queued)."""

from __future__ import annotations

import asyncio
import time
import uuid
from types import SimpleNamespace

import aiokafka
import pytest
from aiokafka import TopicPartition
from kafka import KafkaProducer

from services.worker.prompt import POLL_MAX, PromptFetchThread
from sgs.kafka.admin import ensure_topics
from sgs.kafka.security import aiokafka_settings, kafka_settings
from sgs.kafka.topics import TopicSpec

BACKLOG = 3 * POLL_MAX


@pytest.mark.engine("tansu")
def test_a_poll_takes_a_decision_before_a_backlog_of_submitted_records_fetched_with_it(kafka: str) -> None:
    tag = uuid.uuid4().hex[:8]
    bulk, lane = f"test-submitted-{tag}", f"test-decisions-{tag}"
    ensure_topics(kafka, 1, (TopicSpec(bulk), TopicSpec(lane)))
    producer = KafkaProducer(**kafka_settings(kafka))
    for i in range(BACKLOG):
        producer.send(bulk, f"record {i}".encode())
    producer.flush()
    producer.send(lane, b"decision")  # sent after the whole backlog
    producer.flush()
    producer.close()

    class Thread(PromptFetchThread):
        bulk_topics = frozenset({bulk})

    thread = object.__new__(Thread)  # only its fetch: no faust app around it
    thread.consumer = SimpleNamespace(flow_active=True)
    parts = {TopicPartition(bulk, 0), TopicPartition(lane, 0)}

    async def polls() -> list[dict[TopicPartition, list]]:
        consumer = aiokafka.AIOKafkaConsumer(**aiokafka_settings(kafka), enable_auto_commit=False)
        consumer.assign(sorted(parts))
        await consumer.start()
        try:
            await consumer.seek_to_beginning()
            deadline = time.monotonic() + 30
            while not parts <= set(consumer._fetcher._records):  # noqa: SLF001 - both fetched, as behind a backlog
                assert time.monotonic() < deadline, "the broker never returned both partitions"
                await asyncio.sleep(0.05)
            return [await thread._fetch_records(consumer, parts, 1.0, POLL_MAX) for _ in range(2)]
        finally:
            await consumer.stop()

    first, second = asyncio.run(polls())
    assert [m.value for m in first[TopicPartition(lane, 0)]] == [b"decision"]
    assert set(first) == {TopicPartition(lane, 0)}  # the backlog waits for it, not the other way round
    assert len(second[TopicPartition(bulk, 0)]) == POLL_MAX  # then the backlog, a bounded poll at a time
