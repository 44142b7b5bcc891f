"""The worker's one quirk of the embedded broker: Tansu answers ListOffsets with the base offset of a partition's
last record batch + 1, not the offset after its last record. faust's table recovery stops at that answer:
`TailMarkingConsumer` makes it right where it matters (`sgs.kafka.offsets` reads end offsets right for others).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from faust.types import TP

from services.worker.prompt import PromptFetchConsumer

# A changelog key no table uses (tables are keyed by JSON strings; no record id starts with NUL).
TAIL_MARK_KEY = json.dumps("\x00sgs-changelog-tail").encode()


class TailMarkingConsumer(PromptFetchConsumer):
    """faust's consumer, which ends every changelog partition it owns with a batch of its own before it commits.

    faust recovers a table from its changelog up to the ListOffsets answer, which Tansu gives as the base offset of
    the partition's last batch + 1: a restarted worker read only the first message of the last batch, on a busy
    worker often the whole changelog but one message. faust flushes the producer before committing; a tombstone
    sent alone after that flush makes the last batch one that holds nothing else, so everything the committed
    offsets stand for is recovered (what comes after them is read and processed again anyway). On Apache Kafka
    this costs one tiny message per changelog partition and commit (every `broker_commit_interval`); recovery
    deletes the key it was never given."""

    async def _commit(self, offsets: Mapping[TP, int]) -> bool:
        changelogs = {table.changelog_topic.get_topic_name() for table in self.app.tables.values()}
        marks = [
            await self.app.producer.send(tp.topic, TAIL_MARK_KEY, None, tp.partition, None, None)
            for tp in self.assignment()
            if tp.topic in changelogs
        ]
        await self.app.producer.flush()
        for mark in marks:
            await mark
        return await super()._commit(offsets)
