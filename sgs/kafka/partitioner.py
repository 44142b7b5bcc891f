"""Which partition a key goes to: Kafka's default (murmur2 of the key), as every producer of the federation uses, so
one record's versions, its table state and every stage's work on it stay in one partition (ARCHITECTURE: keys).

The hash is `murmurhash2`'s compiled MurmurHash2 with Kafka's seed: kafka-python's and aiokafka's own are pure
Python, about 30 µs for a record id, a tenth of the node's CPU under load (issue 14, docs/bench.md); compiled it
takes about 1 µs. `tests/unit/kafka/test_partitioner.py` holds it to Kafka's and both clients' own."""

from __future__ import annotations

import random
from typing import Any

from kafka.partitioner import DefaultPartitioner
from murmurhash2 import murmurhash2

KAFKA_SEED = 0x9747B28C  # the seed of Kafka's Utils.murmur2


def key_hash(key: bytes) -> int:
    """Kafka's `toPositive(murmur2(key))`."""
    return murmurhash2(key, KAFKA_SEED) & 0x7FFFFFFF


def partition_by_key(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """aiokafka's partitioner (the worker's producer): Kafka's default, by key; a message without a key goes to
    any partition, an available one if there is."""
    if key is None:
        return random.choice(available or all_partitions)
    return all_partitions[key_hash(key) % len(all_partitions)]


class KeyPartitioner(DefaultPartitioner):  # type: ignore[misc]  # kafka-python has no type hints
    """kafka-python's default partitioner (the nodes', the sinks' and the tools' producers), hashing with
    `key_hash`; a message without a key is left to it."""

    def partition(
        self,
        topic: str,
        key: Any,
        serialized_key: bytes | None,
        value: Any,
        serialized_value: Any,
        cluster: Any,
    ) -> int:
        if serialized_key is None:
            return int(super().partition(topic, key, serialized_key, value, serialized_value, cluster))
        all_partitions = sorted(cluster.partitions_for_topic(topic))
        return all_partitions[key_hash(serialized_key) % len(all_partitions)]
