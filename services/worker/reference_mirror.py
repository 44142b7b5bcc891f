"""The reference bases (法人库 keyed by 统一社会信用代码, 人口库 keyed by 居民身份证号), mirrored on every worker (D13).

`sgs refbase load` publishes each base as a change stream into a compacted topic. Every worker needs every entry
(a record in any partition may name any subject), so each worker reads both topics whole, from the beginning, with
its own partition assignment and no consumer group, and keeps reading: a change reaches the worker without a
restart. This is what a faust GlobalTable does, but done directly: no changelog copy of a topic that is already
compacted, no group join (which waits for the rebalance timeout on Tansu), and a clear "loaded" point: the end
offsets at start (`offsets.fetched_end_offsets`: right on Tansu too). See docs/worker.md.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.worker.context import log
from sgs.kafka import topics
from sgs.kafka.offsets import fetched_end_offsets
from sgs.kafka.security import aiokafka_settings
from sgs.serialization.codec import Codec


class ReferenceBases:
    """In-memory `legal_persons` and `persons`, filled from the change streams; `loaded` is set once the worker has
    read up to the end offsets the topics had when it started."""

    def __init__(self, bootstrap: str, codec: Codec) -> None:
        self.bootstrap = bootstrap
        self.codec = codec
        self.legal_persons: dict[str, dict[str, Any]] = {}
        self.persons: dict[str, dict[str, Any]] = {}
        self.loaded = asyncio.Event()
        self._by_topic = {topics.REF_LEGAL_PERSONS: self.legal_persons, topics.REF_PERSONS: self.persons}

    async def follow(self) -> None:
        """Read both topics from the beginning, then keep following them until cancelled."""
        consumer = AIOKafkaConsumer(
            **aiokafka_settings(self.bootstrap), enable_auto_commit=False, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            parts = []
            for topic in self._by_topic:
                for p in sorted(await _partitions(self.bootstrap, topic)):
                    parts.append(TopicPartition(topic, p))
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            ends = await fetched_end_offsets(self.bootstrap, parts)
            await self._catch_up(consumer, ends)
            self.loaded.set()
            log.info("refbases.loaded", legal_persons=len(self.legal_persons), persons=len(self.persons))
            while True:
                batch = await consumer.getmany(timeout_ms=500)
                for messages in batch.values():
                    for message in messages:
                        self._apply(message.topic, message.key, message.value)
        finally:
            await consumer.stop()

    async def _catch_up(self, consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> None:
        pending = {tp for tp, end in ends.items() if end > 0}
        while pending:
            batch = await consumer.getmany(timeout_ms=500)
            for _tp, messages in batch.items():
                for message in messages:
                    self._apply(message.topic, message.key, message.value)
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}

    def _apply(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        """One change: an entry (upsert) or a tombstone (delete). A bad entry is logged and skipped: the base is
        the other engineer's data, and one bad row must not stop reconciliation of every record."""
        base = self._by_topic[topic]
        if key is None:
            return
        code = key.decode("utf-8", "replace")
        if value is None:
            base.pop(code, None)
            return
        try:
            _, entry = self.codec.decode(value)
        except Exception as exc:
            log.warning("refbases.bad_entry", topic=topic, code_len=len(code), error=str(exc))
            return
        base[code] = entry


async def _partitions(bootstrap: str, topic: str) -> set[int]:
    """The topic's partitions, asked of the cluster: an assigning consumer's own metadata names no topics on
    Apache Kafka (aiokafka asks for none when nothing is subscribed). On a 3-node cluster that has just created
    topics their leaders are being elected for a few seconds, hence the patience."""
    admin = AIOKafkaAdminClient(**aiokafka_settings(bootstrap))
    await admin.start()
    try:
        for _ in range(100):
            described = await admin.describe_topics([topic])
            parts = {p["partition"] for t in described if t["error_code"] == 0 for p in t["partitions"]}
            if parts:
                return parts
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
    raise RuntimeError(
        f"topic {topic} has no partitions (was `sgs.kafka.admin.ensure_federation_topics` run?)"
    )
