"""A base's changes as a change stream: `sgs.LegalPerson` / `sgs.Person` on compacted topics keyed by code."""

from __future__ import annotations

from typing import Any

from sgs.refbase.store import BaseSpec, RefbaseError


class PublishError(RefbaseError):
    """The broker did not acknowledge the change stream; the load's transaction is rolled back."""


class UnsendableEntry(PublishError):
    """An entry the broker can never take (over the message limit, invalid): retrying cannot help, the row must be
    fixed. The CSV bounds (sgs.refbase.load) keep every entry far below the limit, so this is a defect's symptom."""


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
        """Send and wait for every acknowledgement. Errors sorted (issue 17): a broker away or slow is retried by
        the producer, then PublishError (rerun the load); an entry that can never be sent is UnsendableEntry at
        once, naming it, rather than a wait that cannot end well."""
        from sgs.kafka.producer import unsendable

        futures = []
        for r in records:
            try:
                value = self._codec.encode(spec.schema, r)
                futures.append(
                    (r[spec.key], self._producer.send(spec.topic, key=r[spec.key].encode(), value=value))
                )
            except Exception as exc:  # noqa: BLE001 - sorted below: the entry's fault, or the broker's
                if unsendable(exc):
                    raise UnsendableEntry(
                        f"{spec.topic}: entry {r[spec.key]!r} can never be sent: {exc}"
                    ) from None
                raise PublishError(f"{spec.topic}: {exc}") from None
        try:
            self._producer.flush(timeout=30)
        except self._kafka_error as exc:
            raise PublishError(f"{spec.topic}: {exc}") from None
        for code, f in futures:
            if f.failed() and unsendable(f.exception):
                raise UnsendableEntry(f"{spec.topic}: entry {code!r} can never be sent: {f.exception}")
            try:
                f.get(timeout=30)
            except self._kafka_error as exc:
                raise PublishError(f"{spec.topic}: {exc}") from None

    def close(self) -> None:
        self._producer.close(timeout=10)

    def __enter__(self) -> ChangePublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
