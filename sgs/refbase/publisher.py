"""A base's changes as a change stream: `sgs.LegalPerson` / `sgs.Person` on compacted topics keyed by code."""

from __future__ import annotations

from typing import Any

from sgs.refbase.store import BaseSpec, RefbaseError


class PublishError(RefbaseError):
    """The broker did not acknowledge the change stream; the load's transaction is rolled back."""


class ChangePublisher:
    """Publishes base entries to their compacted topic, key = code, acks=all, and waits for every ack."""

    def __init__(self, bootstrap: str) -> None:
        from kafka.errors import KafkaError

        from sgs.kafka.producer import durable_producer
        from sgs.serialization.codec import default_codec

        self._codec = default_codec()
        self._kafka_error = KafkaError
        try:
            self._producer = durable_producer(
                bootstrap,
                retries=5,
                request_timeout_ms=15000,
                bootstrap_timeout_ms=10000,  # an operator's typo in the address fails fast, not after 30 s
            )
        except KafkaError as exc:
            raise PublishError(f"broker {bootstrap}: {exc}") from None

    def __call__(self, spec: BaseSpec, records: list[dict[str, Any]]) -> None:
        try:
            futures = [
                self._producer.send(
                    spec.topic, key=r[spec.key].encode("utf-8"), value=self._codec.encode(spec.schema, r)
                )
                for r in records
            ]
            self._producer.flush(timeout=30)
            for f in futures:
                f.get(timeout=30)
        except self._kafka_error as exc:
            raise PublishError(f"{spec.topic}: {exc}") from None

    def close(self) -> None:
        self._producer.close(timeout=10)

    def __enter__(self) -> ChangePublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
