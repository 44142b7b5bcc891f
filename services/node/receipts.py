"""The receipt listener: reads the receipts topics of the nodes this process serves, `sgs.receipts.<code>` (key =
source node), and moves the node's receipts forward — accepted by the municipal platform, rejected with reasons,
relayed to the province or the nation, withdrawn (D4, D10, D12).

At-least-once: offsets are committed after the receipts are in the store, and a receipt seen twice changes nothing.
A message carries one receipt or, since issue 14, several (`sgs.kafka.receipts`). A message keyed for another node
than its topic's is skipped without decoding. A message not signed by the worker or a sink is refused unread
(issue 16); a receipt in it naming another source node than the topic's is refused on its own.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from datetime import datetime

import structlog
from kafka import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError

from services.node.metrics import NodeMetrics
from services.node.store import NodeStore, ReceiptUpdate, StoreError, now_ms
from sgs.config import TIERS
from sgs.kafka.receipts import receipts_in
from sgs.kafka.security import kafka_settings
from sgs.kafka.topics import receipts_topic
from sgs.serialization.codec import SerializationError, default_codec
from sgs.serialization.signing import WORKER, Keyring, SignatureError, refusal, sink_signer

log = structlog.get_logger("node.receipts")
# Who may tell a node what became of its records: the municipal worker and the sinks (issue 16).
RECEIPT_SIGNERS = frozenset({WORKER, *(sink_signer(tier) for tier in TIERS)})


def group_id(nodes: tuple[str, ...]) -> str:
    """One consumer group per set of nodes served: two processes serving the same nodes share the work."""
    digest = hashlib.sha1(",".join(sorted(nodes)).encode()).hexdigest()[:12]
    return f"sgs-node-{digest}"


def _ms(value: datetime | int) -> int:
    return int(value.timestamp() * 1000) if isinstance(value, datetime) else int(value)


class ReceiptListener(threading.Thread):
    def __init__(
        self,
        store: NodeStore,
        metrics: NodeMetrics,
        bootstrap: str,
        nodes: tuple[str, ...],
        *,
        group: str | None = None,
        retry_s: float = 2.0,
        keyring: Keyring,
    ) -> None:
        super().__init__(name="receipt-listener", daemon=True)
        self.store = store
        self.metrics = metrics
        self.bootstrap = bootstrap
        self.nodes = frozenset(nodes)
        self.group = group or group_id(nodes)
        self.retry_s = retry_s
        self.keyring = keyring
        self._stopping = threading.Event()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stopping.set()
        self.join(timeout_s)

    def run(self) -> None:
        while not self._stopping.is_set():
            consumer = self._connect()
            if consumer is None:
                self._stopping.wait(self.retry_s)
                continue
            try:
                while not self._stopping.is_set():
                    batches = consumer.poll(timeout_ms=500, max_records=500)
                    if not batches:
                        continue
                    self._apply([m for messages in batches.values() for m in messages])
                    consumer.commit()
            except (KafkaError, OSError) as exc:
                self.metrics.broker_errors.labels("receipts").inc()
                log.warning("receipts.consumer_failed", error=str(exc))
                self._stopping.wait(self.retry_s)
            except StoreError as exc:
                # Uncommitted offsets: the same receipts come again once the store can be written.
                log.error("receipts.store_failed", error=str(exc))
                self._stopping.wait(self.retry_s)
            finally:
                try:
                    consumer.close(autocommit=False)
                except KafkaError as exc:
                    log.warning("receipts.close_failed", error=str(exc))

    def _connect(self) -> KafkaConsumer | None:
        try:
            return KafkaConsumer(
                *(receipts_topic(n) for n in sorted(self.nodes)),  # its own only (issue 16)
                **kafka_settings(self.bootstrap),
                group_id=self.group,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                isolation_level="read_committed",  # the worker's and sinks' committed receipts only
                # The embedded broker holds a group join for the whole rebalance timeout: keep it short.
                max_poll_interval_ms=3000,
                session_timeout_ms=6000,
                heartbeat_interval_ms=1000,
                request_timeout_ms=7000,
                bootstrap_timeout_ms=5000,
            )
        except (KafkaError, OSError) as exc:
            self.metrics.broker_errors.labels("receipts").inc()
            log.debug("receipts.broker_unreachable", error=str(exc))
            return None

    def _refuse(self, node: str, value: bytes, exc: SignatureError) -> None:
        """A receipt not from the worker or a sink is never applied: it goes upward to `sgs.rejected` with its
        bytes, and is counted (issue 16)."""
        self.metrics.refused_signature.labels(node, exc.rule).inc()
        log.warning("receipts.refused", node=node, rule=exc.rule, error=str(exc))
        rejection = refusal(default_codec(), exc, value, node)
        self.store.refused(node, node, rejection, now_ms())

    def _apply(self, messages: list[ConsumerRecord]) -> None:
        """One poll's receipts, stored in one transaction; a malformed message is logged and skipped (it must not
        stop the listener). A message carries one receipt (`sgs.Receipt`, as written before issue 14) or several
        (`sgs.Receipts`); each must be about a record of the topic's node, since a writer's signature says who
        wrote the message, not that each receipt in it is in the right place: one that names another source node
        is refused and counted (outcome `wrong_node`), and the others of its message are applied."""
        updates: list[tuple[str, ReceiptUpdate]] = []
        for message in messages:
            node = message.key.decode("utf-8", "replace") if message.key else ""
            if message.topic != receipts_topic(node) or message.value is None:
                continue
            try:
                self.keyring.check(
                    message.topic, message.key, message.value, message.headers, RECEIPT_SIGNERS
                )
            except SignatureError as exc:
                self._refuse(node, message.value, exc)
                continue
            try:
                name, record = default_codec().decode(message.value)
            except SerializationError as exc:
                self.metrics.receipts_applied.labels(node, "malformed").inc()
                log.warning("receipts.malformed", node=node, error=str(exc))
                continue
            receipts = receipts_in(name, record)
            if receipts is None:
                self.metrics.receipts_applied.labels(node, "malformed").inc()
                log.warning("receipts.unexpected_schema", node=node, schema=name)
                continue
            for receipt in receipts:
                if receipt["source_node"] != node:
                    self.metrics.receipts_applied.labels(node, "wrong_node").inc()
                    log.warning(
                        "receipts.wrong_node",
                        node=node,
                        source_node=receipt["source_node"][:64],
                        receipt_id=receipt["receipt_id"][:64],
                    )
                    continue
                update = ReceiptUpdate(
                    receipt["receipt_id"],
                    receipt["status"],
                    _ms(receipt["at"]),
                    receipt["detail"],
                    receipt["reasons"],
                )
                updates.append((node, update))
        if not updates:
            return
        known = self.store.apply_receipts([u for _, u in updates])
        applied = Counter(
            (node, update.status.lower() if is_known else "unknown")
            for (node, update), is_known in zip(updates, known, strict=True)
        )
        for labels, count in applied.items():  # a labelled child's lookup costs more than the count itself
            self.metrics.receipts_applied.labels(*labels).inc(count)
