"""The one way the federation's writers produce with kafka-python."""

from __future__ import annotations

from typing import Any

from kafka import KafkaProducer


def durable_producer(bootstrap: str, **overrides: Any) -> KafkaProducer:
    """The producer every writer of the federation uses: a record counts as sent only once every in-sync replica
    has it (acks=all), and retries never duplicate or reorder within a partition (idempotence). Small batches
    linger 5 ms so that bursts travel together. `overrides` tune timeouts for the caller's situation."""
    settings: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "batch_size": 256 * 1024,
    }
    return KafkaProducer(**(settings | overrides))
