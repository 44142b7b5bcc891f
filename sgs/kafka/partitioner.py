"""Which partition a key goes to: Kafka's default (murmur2 of the key), as every producer of the federation uses, so
one record's versions, its table state and every stage's work on it stay in one partition (ARCHITECTURE: keys)."""

from __future__ import annotations

import functools
import random

from aiokafka.partitioner import murmur2


@functools.lru_cache(maxsize=4096)
def _key_hash(key: bytes) -> int:
    return murmur2(key) & 0x7FFFFFFF


def partition_by_key(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """The producer's partitioner: Kafka's default (murmur2 of the key, as the district nodes' producers use), with
    the hash remembered, because one record's several outputs share its key, receipts and alerts share a few
    keys, and aiokafka's murmur2 is pure Python (~12 µs a key)."""
    if key is None:
        return random.choice(available or all_partitions)
    return all_partitions[_key_hash(key) % len(all_partitions)]
