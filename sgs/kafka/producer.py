"""The one way the federation's writers produce with kafka-python."""

from __future__ import annotations

from typing import Any

from kafka import KafkaProducer
from kafka.errors import (
    CorruptRecordError,
    InvalidRecordError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)

from sgs.kafka.partitioner import KeyPartitioner
from sgs.kafka.security import kafka_settings
from sgs.kafka.topics import MAX_MESSAGE_BYTES


def durable_producer(bootstrap: str, **overrides: Any) -> KafkaProducer:
    """The producer every writer of the federation uses: a record counts as sent only once every in-sync replica
    has it (acks=all), and retries never duplicate or reorder within a partition (idempotence). Small batches
    linger 5 ms so that bursts travel together. Keys are hashed by `KeyPartitioner` (Kafka's default, compiled).
    It refuses a message over MAX_MESSAGE_BYTES at `send`
    (MessageSizeTooLargeError), the limit every topic has too. `overrides` tune timeouts for the caller's situation."""
    settings: dict[str, Any] = {
        **kafka_settings(bootstrap),  # this process's principal (issue 16)
        "max_request_size": MAX_MESSAGE_BYTES,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "batch_size": 256 * 1024,
        "partitioner": KeyPartitioner(),
    }
    return KafkaProducer(**(settings | overrides))


# What the broker (or the producer, before sending) says about a message itself: no retry can ever change it.
UNSENDABLE = (MessageSizeTooLargeError, RecordListTooLargeError, InvalidRecordError, CorruptRecordError)


def unsendable(exc: BaseException) -> bool:
    """True for an error about the message, not the broker (or one that is not Kafka's): every sender parks such a
    message and goes on, since retrying it would block the messages behind it for ever."""
    return isinstance(exc, UNSENDABLE) or not isinstance(exc, KafkaError)
