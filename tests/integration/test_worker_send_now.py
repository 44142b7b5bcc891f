"""`services.worker.prompt.send_now`: on a real broker, messages handed to the producer leave when a big batch is done,
not after the producer's linger (issue 14: at the tail of a burst records waited out the 200 ms linger)."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace

import aiokafka
import pytest

from services.worker.prompt import send_now
from sgs.kafka.admin import ensure_topics
from sgs.kafka.security import aiokafka_settings
from sgs.kafka.topics import TopicSpec

LINGER_MS = 120_000  # far longer than the test may run: only send_now can make the messages leave


@pytest.mark.engine("tansu")
def test_send_now_delivers_what_waits_for_the_linger_without_waiting_out_the_linger(kafka: str) -> None:
    topic = f"test-send-now-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka, 2, (TopicSpec(topic),))

    async def run() -> list[bytes]:
        producer = aiokafka.AIOKafkaProducer(**aiokafka_settings(kafka), linger_ms=LINGER_MS)
        await producer.start()
        try:
            sent = [await producer.send(topic, f"m{i}".encode(), key=f"k{i}".encode()) for i in range(20)]
            await asyncio.sleep(1.0)
            assert not any(f.done() for f in sent), "they left before the linger"
            send_now(SimpleNamespace(_producer=producer))  # as faust's producer holds aiokafka's
            await asyncio.wait_for(asyncio.gather(*sent), timeout=30)
            after = await producer.send(topic, b"after", key=b"k0")  # the producer goes on taking messages
            send_now(SimpleNamespace(_producer=producer))
            await asyncio.wait_for(after, timeout=30)
        finally:
            await producer.stop()
        consumer = aiokafka.AIOKafkaConsumer(
            topic, **aiokafka_settings(kafka), auto_offset_reset="earliest", enable_auto_commit=False
        )
        await consumer.start()
        try:
            got: list[bytes] = []
            async with asyncio.timeout(30):
                while len(got) < 21:
                    batches = await consumer.getmany(timeout_ms=1000)
                    got += [m.value for messages in batches.values() for m in messages]
            return got
        finally:
            await consumer.stop()

    assert sorted(asyncio.run(run())) == sorted([f"m{i}".encode() for i in range(20)] + [b"after"])
