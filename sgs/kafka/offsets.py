"""End offsets that are right on the embedded broker too.

Tansu answers ListOffsets with the base offset of a partition's last record batch + 1, not the offset after its
last record, while its Fetch answers carry the true high watermark. Whoever needs "the end of a topic" (the
reference bases' "loaded" point) takes it from a fetch.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition

from sgs.kafka.security import aiokafka_settings, kafka_settings

PROBE_TIMEOUT_S = 10.0


async def fetched_end_offsets(bootstrap: str, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
    """The end offset of each partition: the ListOffsets answer, corrected by the high watermark of a fetch at the
    last batch."""
    if not partitions:
        return {}
    probe = AIOKafkaConsumer(**aiokafka_settings(bootstrap), enable_auto_commit=False, fetch_max_wait_ms=10)
    await probe.start()
    try:
        probe.assign(partitions)
        listed = await probe.end_offsets(partitions)
        for tp, end in listed.items():
            probe.seek(tp, max(end - 1, 0))
        deadline = asyncio.get_running_loop().time() + PROBE_TIMEOUT_S
        while (
            any(probe.highwater(tp) is None for tp in listed) and asyncio.get_running_loop().time() < deadline
        ):
            await probe.getmany(timeout_ms=100)
        return {tp: max(end, probe.highwater(tp) or 0) for tp, end in listed.items()}
    finally:
        await probe.stop()


def records_kept(bootstrap: str, partitions: int) -> int:
    """How many records the submitted topics hold (their end offsets; nothing is deleted from them within their
    7-day retention): what a cluster that keeps its log still has from earlier runs."""
    from kafka import KafkaConsumer
    from kafka import TopicPartition as Partition

    from sgs.kafka.topics import SUBMITTED

    consumer = KafkaConsumer(**kafka_settings(bootstrap), enable_auto_commit=False)
    try:
        parts = [Partition(topic, p) for topic in SUBMITTED.values() for p in range(partitions)]
        return sum(consumer.end_offsets(parts).values())
    finally:
        consumer.close()
