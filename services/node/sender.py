"""The outbox sender: publishes taken records to `sgs.submitted.<kind>`, node rejections to `sgs.rejected` and
decisions on records to `sgs.decisions`, in outbox order, and lets a message leave the outbox only after the broker
has acknowledged it (acks=all, idempotent producer).

While the broker is down the node keeps taking records (they wait on disk) and this loop retries with exponential
backoff; when the broker returns it drains the outbox oldest first. After any broker error the producer is thrown
away and a new one made: the embedded broker forgets producer ids when it restarts, so an old idempotent producer
would be refused forever.

Errors are sorted (docs/node.md, "Parked messages"): a broker that is away or slow is retried, the same batch again;
a message the broker can never take (over MAX_MESSAGE_BYTES, invalid) is parked: moved aside with its error, its
receipt marked PARKED, counted and alerted on, so it never stops the messages behind it. An operator lists, resends
or drops it (`sgs node parked`).
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import structlog
from kafka import KafkaProducer
from kafka.errors import KafkaError

from services.node.metrics import NodeMetrics
from services.node.store import NodeStore, Pending, now_ms
from sgs.config import Federation
from sgs.kafka.admin import ensure_federation_topics
from sgs.kafka.producer import durable_producer, unsendable
from sgs.serialization.signing import Signer

log = structlog.get_logger("node.sender")


@dataclass(frozen=True)
class SenderState:
    """What /healthz says about the way upward: connected, and the last error and when it happened (ms)."""

    connected: bool
    last_error: str | None
    last_error_at: int | None
    last_sent_at: int | None


class OutboxSender(threading.Thread):
    """One thread per process: the outbox is one ordered queue for every node the process serves."""

    def __init__(
        self,
        store: NodeStore,
        metrics: NodeMetrics,
        bootstrap: str,
        federation: Federation,
        *,
        batch: int = 500,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 5.0,
        ack_timeout_s: float = 15.0,
        signers: Mapping[str, Signer],
    ) -> None:
        super().__init__(name="outbox-sender", daemon=True)
        self.store = store
        self.metrics = metrics
        self.bootstrap = bootstrap
        self.federation = federation
        self.batch = batch
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.ack_timeout_s = ack_timeout_s
        self.signers = signers  # node code -> its signing key: each node signs what it sends (issue 16)
        self.connected = False
        self._last_error: tuple[str, int] | None = None
        self._last_sent_at: int | None = None
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._producer: KafkaProducer | None = None

    def state(self) -> SenderState:
        error, at = self._last_error or (None, None)
        return SenderState(self.connected, error, at, self._last_sent_at)

    def _failed(self, error: str) -> None:
        self._last_error = (error, now_ms())

    def wake(self) -> None:
        """A record was taken: send it now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        self.join(timeout_s)

    def run(self) -> None:
        backoff = self.backoff_initial_s
        while not self._stopping.is_set():
            entries = self.store.pending(self.batch)
            if not entries:
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            if self._publish(entries):
                backoff = self.backoff_initial_s
            else:
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, self.backoff_max_s)
        self._close_producer()

    def _publish(self, entries: list[Pending]) -> bool:
        """Send `entries`, mark the acknowledged ones sent and park the unsendable. True when none is left to retry."""
        producer = self._producer or self._connect()
        if producer is None:
            return False
        futures = []
        failed: Exception | None = None
        parked = 0
        # an entry written by an earlier run serving other nodes waits for their key, and so do those behind it
        signable = list(itertools.takewhile(lambda e: e.node in self.signers, entries))
        if len(signable) < len(entries):
            node = entries[len(signable)].node
            log.error("sender.no_signing_key", node=node, waiting=len(entries))
            failed = KeyError(f"no signing key for node {node}")
        for entry, headers in zip(signable, self._sign(signable), strict=True):
            try:
                key = entry.record_id.encode()
                futures.append(
                    (entry, producer.send(entry.topic, key=key, value=entry.payload, headers=headers))
                )
            except Exception as exc:  # noqa: BLE001 - sorted here: the message's fault is parked, the rest retried
                if not unsendable(exc):
                    failed = exc
                    break
                self._park(entry, exc)
                parked += 1
        try:
            producer.flush(timeout=self.ack_timeout_s)
        except KafkaError as exc:
            log.warning("sender.send_failed", error=str(exc), waiting=len(entries))
        acked: list[tuple[Pending, int]] = []
        for entry, future in futures:
            if not future.is_done:
                failed = failed or TimeoutError(f"no acknowledgement within {self.ack_timeout_s}s")
            elif not future.failed():
                acked.append((entry, now_ms()))
            elif unsendable(future.exception):
                self._park(entry, future.exception)
                parked += 1
            else:
                failed = failed or future.exception
        self.store.mark_sent(acked)
        if acked:
            self._last_sent_at = acked[-1][1]
        records = [(entry, at) for entry, at in acked if entry.is_record]
        # counted per label set: a labelled child's lookup costs more than the count itself
        for (node, kind), count in Counter((entry.node, entry.kind) for entry, _ in records).items():
            self.metrics.sent.labels(node, kind).inc(count)
        nodes = {entry.node for entry, _ in records}
        latency = {node: self.metrics.send_latency.labels(node) for node in nodes}
        for entry, at in records:
            latency[entry.node].observe(max(0.0, (at - entry.enqueued_at) / 1000))
        if failed is not None or len(acked) + parked < len(entries):
            self.metrics.broker_errors.labels("send").inc()
            self._failed(f"send: {failed}")
            log.warning("sender.not_acknowledged", error=str(failed), acked=len(acked), waiting=len(entries))
            self._close_producer()
            return False
        if parked and len(futures) > len(acked):  # the broker refused one: start the next batch afresh
            self._close_producer()
        return True

    def _sign(self, entries: list[Pending]) -> list[list[tuple[str, bytes]]]:
        """Each entry's signature headers, one signature for a node's messages (`Signer.batch_headers`, issue 14)."""
        headers: list[list[tuple[str, bytes]]] = [[] for _ in entries]
        by_node: dict[str, list[int]] = {}
        for i, entry in enumerate(entries):
            by_node.setdefault(entry.node, []).append(i)
        for node, indices in by_node.items():
            messages = [
                (entries[i].topic, entries[i].record_id.encode(), entries[i].payload) for i in indices
            ]
            for i, signed in zip(indices, self.signers[node].batch_headers(messages), strict=True):
                headers[i] = signed
        return headers

    def _park(self, entry: Pending, exc: BaseException) -> None:
        error = f"{type(exc).__name__}: {exc}"[:1000]
        self.store.park(entry, error, now_ms())
        self.metrics.parked.labels(entry.node, entry.topic, type(exc).__name__).inc()
        log.error(
            "sender.parked",
            seq=entry.seq,
            receipt_id=entry.receipt_id,
            record_id=entry.record_id[:200],
            topic=entry.topic,
            bytes=len(entry.payload),
            error=error,
        )

    def _connect(self) -> KafkaProducer | None:
        try:
            self._producer = durable_producer(
                self.bootstrap,
                max_block_ms=5000,
                request_timeout_ms=5000,
                delivery_timeout_ms=10000,
                bootstrap_timeout_ms=2000,
                reconnect_backoff_max_ms=2000,
            )
            # A broker that restarted empty (the embedded one keeps topics in memory) needs them again, created
            # explicitly with the federation's partition count rather than auto-created with the broker default.
            # Only now: against a broker that is down, the admin client would wait 30 s to give up.
            ensure_federation_topics(self.bootstrap, self.federation)
        except (KafkaError, OSError) as exc:
            self.metrics.broker_errors.labels("connect").inc()
            self._failed(f"connect: cannot reach the broker at {self.bootstrap}: {exc}")
            log.warning("sender.broker_unreachable", bootstrap=self.bootstrap, error=str(exc))
            self._close_producer()
            return None
        log.info("sender.connected", bootstrap=self.bootstrap)
        self.connected = True
        return self._producer

    def _close_producer(self) -> None:
        if self._producer is not None:
            try:
                self._producer.close(timeout=1)
            except KafkaError as exc:
                log.warning("sender.close_failed", error=str(exc))
            self._producer = None
        self.connected = False
