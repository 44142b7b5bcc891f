"""Relay topic -> sink store -> receipts: the write side of one tier.

At-least-once from Kafka, made exactly-once in effect by the store: each polled batch is applied in one
transaction together with the next offsets, and on (re)assignment the consumer seeks to the offsets stored there,
so the Kafka commit is only an optimisation. Receipts go through an outbox table written in the same transaction
and are sent after the commit (a crash can repeat a receipt, never lose one).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import structlog
from kafka import (
    ConsumerRebalanceListener,
    KafkaAdminClient,
    KafkaConsumer,
    OffsetAndMetadata,
    TopicPartition,
)
from kafka.errors import KafkaError

from services.sink.metrics import SinkMetrics
from services.sink.store import Outcome, Relayed, Row, SinkStore, kind_of
from sgs.domain.kinds import KIND_OF_SCHEMA
from sgs.domain.rulebook import RuleBook, label
from sgs.kafka.engines import DEFAULT as DEFAULT_ENGINE
from sgs.kafka.engines import Engine
from sgs.kafka.producer import durable_producer, unsendable
from sgs.kafka.receipts import RECEIPT
from sgs.kafka.receipts import batches as receipt_batches
from sgs.kafka.security import kafka_settings
from sgs.kafka.topics import REJECTED, receipts_topic
from sgs.serialization.codec import SerializationError, default_codec
from sgs.serialization.signing import WORKER, Keyring, SignatureError, Signer, refusal

WORKER_ONLY = frozenset({WORKER})
RELAY_SCHEMAS = ("sgs.LicenseRecord", "sgs.PenaltyRecord", "sgs.Withdrawal")
RELAYED_STATUS = {"provincial": "RELAYED_PROVINCIAL", "national": "RELAYED_NATIONAL"}
TIER_LABELS = {"provincial": "省公共信用信息平台", "national": "信用中国"}
# Transient: the database is down or locked; retry the same batch rather than skip it.
TRANSIENT_DB_ERRORS = (sa.exc.OperationalError, sa.exc.InterfaceError)
log = structlog.get_logger("sink")


def refusal_rule(tier: str, rules: RuleBook, name: str, record: dict[str, Any]) -> str | None:
    """D11 as the rule book has it for the record's decision date: a tier its ruling does not send the record to
    does not hold it (信用中国 takes neither 简易程序/轻微 penalties nor natural persons' under either rule set). The
    relay worker routes by the same ruling; the sink checks again, defensively, against a relay sent by mistake."""
    kind = KIND_OF_SCHEMA.get(name)
    if kind is None:  # a withdrawal
        return None
    return None if tier in rules.relay_tiers(kind, record) else "D11"


class ReceiptBuilder:
    """Builds the `sgs.Receipt` (key = source node) for a record stored or withdrawn at this tier."""

    def __init__(self, tier: str) -> None:
        self.tier = tier
        self.codec = default_codec()
        reason = next(f for f in self.codec.schemas["sgs.Withdrawal"]["fields"] if f["name"] == "reason")
        self.reason_labels: dict[str, str] = reason["type"]["labels"]

    def __call__(self, event: str, record: dict[str, Any]) -> tuple[str, bytes]:
        if "envelope" in record:
            env = record["envelope"]
            record_id, version, receipt_id, node = (
                env["record_id"],
                env["version"],
                env["receipt_id"],
                env["source_node"],
            )
            reason = "REVOKED"
        else:
            record_id, version, receipt_id, node = (
                record["record_id"],
                record["version"],
                record["receipt_id"],
                record["source_node"],
            )
            reason = record["reason"]
        receipt = {
            "receipt_id": receipt_id,
            "record_id": record_id,
            "version": version,
            "source_node": node,
            "status": "WITHDRAWN" if event == "withdrawn" else RELAYED_STATUS[self.tier],
            "at": datetime.now(UTC),
            "detail": (
                f"{TIER_LABELS[self.tier]}已撤下：{self.reason_labels.get(reason, reason)}"
                if event == "withdrawn"
                else f"{TIER_LABELS[self.tier]}已入库{_rules_note(record)}"
            ),
            "reasons": [],
        }
        return node, self.codec.encode("sgs.Receipt", receipt)


def _rules_note(record: dict[str, Any]) -> str:
    """Which rule set and tier decided the stored record's publication and publicity (rules.toml, D11, D14)."""
    ann = record.get("annotations") or {}
    if not ann.get("rule_set"):
        return ""
    tier = f"，失信程度 {label('tier', ann['tier'])}" if ann.get("tier") else ""
    shown = "公示" if ann.get("for_publication", True) else "不公示"
    return f"（规则集 {ann['rule_set']}{tier}，{shown}，至 {ann.get('publicity_end') or '长期'}）"


class _SeekToStored(ConsumerRebalanceListener):
    """On assignment, resume from the offsets the store holds (the truth), else from the beginning."""

    def __init__(self, sink: RelayConsumer) -> None:
        self.sink = sink

    def on_partitions_revoked(self, revoked: Any) -> None:
        pass

    def on_partitions_assigned(self, assigned: Any) -> None:
        # Runs on kafka-python's IO thread: only non-blocking calls here (seek is local state). A new assignment
        # can mean the broker restarted: the poll loop checks its cluster id again (`RelayConsumer.check_broker`).
        stored = self.sink.store.stored_offsets(self.sink.topic)
        for tp in assigned:
            if tp.partition in stored:
                self.sink.consumer.seek(tp, stored[tp.partition])
            else:
                self.sink.consumer.seek_to_beginning(tp)
        self.sink.broker_unchecked = True
        log.info("sink.assigned", partitions=sorted(tp.partition for tp in assigned), resumed_from=stored)


class RelayConsumer:
    """Consumes one relay topic into one store until `stop` is set."""

    def __init__(
        self,
        store: SinkStore,
        metrics: SinkMetrics,
        *,
        tier: str,
        rules: RuleBook,
        bootstrap: str,
        topic: str,
        group_id: str,
        engine: Engine = DEFAULT_ENGINE,
        nodes: frozenset[str],
        keyring: Keyring,
        signer: Signer,
    ) -> None:
        self.store, self.metrics, self.tier, self.topic = store, metrics, tier, topic
        self.rules = rules  # which tiers hold a record (D11), by the rule set of its decision date
        self.bootstrap = bootstrap
        self.engine = engine
        self.nodes = nodes  # the federation's node codes: each has its receipts topic
        self.receipt_for: Callable[[str, dict[str, Any]], tuple[str, bytes]] = ReceiptBuilder(tier)
        self.codec = default_codec()
        self.keyring, self.signer = keyring, signer  # relays come from the worker; receipts go out signed
        try:
            self.consumer = KafkaConsumer(
                **kafka_settings(bootstrap),
                group_id=group_id,
                client_id=f"sgs-sink-{tier}",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                isolation_level="read_committed",  # what the worker's transactions committed, never an abort
                max_poll_interval_ms=3000,
                session_timeout_ms=6000,
                heartbeat_interval_ms=1000,
            )
            self.producer = durable_producer(bootstrap)
        except KafkaError as exc:
            raise ConnectionError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
        self.broker_unchecked = not self.check_broker()  # before the first assignment seeks to stored offsets
        self.consumer.subscribe([topic], listener=_SeekToStored(self))
        self._held_refreshed = 0.0
        self.processed = 0

    def run(self, stop: threading.Event) -> None:
        self.send_receipts()
        self.refresh_held(force=True)
        last_progress = time.monotonic()
        while not stop.is_set():
            if self.broker_unchecked:
                self.broker_unchecked = not self.check_broker()
            try:
                batches = self.consumer.poll(timeout_ms=500, max_records=500)
            except KafkaError as exc:
                # every broker gone at once (a cluster restarted): kafka-python raises from poll while it looks
                # for the group coordinator; the store is the truth, so wait and poll again
                log.warning("sink.broker_unreachable", error=str(exc))
                stop.wait(1.0)
                continue
            self.process(batches, stop)
            self.send_receipts()
            self.refresh_held()
            if time.monotonic() - last_progress >= 10:
                log.info("sink.progress", processed=self.processed, held=self.store.held_by_kind())
                last_progress = time.monotonic()

    def check_broker(self) -> bool:
        """Offsets stored for another broker mean nothing on this one: the embedded broker keeps topics in memory
        and starts empty, with a new cluster id, after each restart (`make up` run again), and a store moved to
        another cluster starts over too. Then the relay is read again from the start and the store absorbs what it
        holds. False when the broker could not be asked (the loop asks again). Only on an engine that forgets on
        restart (`sgs.kafka.engines`): Apache Kafka keeps its log and its cluster id."""
        if not self.engine.forgets_on_restart:
            return True
        try:
            admin = KafkaAdminClient(**kafka_settings(self.bootstrap), client_id=f"sgs-sink-{self.tier}")
            try:
                cluster_id = admin.describe_cluster()["cluster_id"]
            finally:
                admin.close()
        except KafkaError as exc:
            log.warning("sink.describe_cluster_failed", error=str(exc))
            return False
        forgotten = self.store.adopt_broker(cluster_id)
        if forgotten:
            log.warning("sink.broker_changed", cluster_id=cluster_id, offsets_forgotten=forgotten)
            for tp in self.consumer.assignment():
                self.consumer.seek_to_beginning(tp)
        return True

    def close(self) -> None:
        self.consumer.close(autocommit=False)
        self.producer.flush(10)
        self.producer.close(10)

    def _signed(self, message: Any) -> bool:
        """Only the municipal worker relays and withdraws (issue 16): anything else is refused unread, counted,
        and sent with its bytes to `sgs.rejected`, signed by this sink."""
        try:
            self.keyring.check(message.topic, message.key, message.value, message.headers, WORKER_ONLY)
            return True
        except SignatureError as exc:
            self.metrics.refused_signature.labels(self.tier, exc.rule).inc()
            log.warning(
                "sink.refused", topic=message.topic, offset=message.offset, rule=exc.rule, error=str(exc)
            )
            self.send(REJECTED, message.key, refusal(self.codec, exc, message.value or b""))
            return False

    def send(self, topic: str, key: bytes | None, value: bytes) -> Any:
        """Hand a message, signed by this sink, to the producer; its future."""
        return self.producer.send(topic, key=key, value=value, headers=self.signer.headers(topic, key, value))

    def _decode(self, message: Any) -> Relayed | None:
        """(schema name, record), with its `Row` for a record: every column the store needs can be extracted."""
        if not self._signed(message):
            return None
        try:
            name, record = self.codec.decode(message.value or b"")
            if name not in RELAY_SCHEMAS:
                raise SerializationError(f"{name} does not belong on a relay topic")
            if name != "sgs.Withdrawal":
                return name, record, Row.from_record(record)
            return name, record
        except (SerializationError, KeyError, TypeError, AttributeError, ValueError) as exc:
            self.metrics.poison.labels(self.tier).inc()
            log.warning(
                "sink.poison",
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                error=str(exc),
            )
            return None

    def process(self, batches: Mapping[TopicPartition, list[Any]], stop: threading.Event) -> None:
        """Apply one poll's messages, every partition's in one transaction (issue 14: one commit, one fsync a poll,
        not one a partition; a record's messages are all in one partition, so their order is kept); the store's
        offsets move past every one of them."""
        ends = {tp: messages[-1].offset + 1 for tp, messages in batches.items() if messages}
        if not ends:
            return
        good: list[Relayed] = []
        for message in (m for messages in batches.values() for m in messages):
            decoded = self._decode(message)
            if decoded is None:
                continue
            rule = refusal_rule(self.tier, self.rules, decoded[0], decoded[1])
            if rule:
                self.metrics.refused.labels(self.tier, KIND_OF_SCHEMA[decoded[0]], rule).inc()
                log.warning("sink.refused", record_id=decoded[1]["envelope"]["record_id"], rule=rule)
                continue
            good.append(decoded)
        outcome = self._apply(good, {(tp.topic, tp.partition): end for tp, end in ends.items()}, stop)
        if outcome is None:
            return
        self.processed += sum(len(messages) for messages in batches.values())
        self.account(outcome)
        try:
            self.consumer.commit({tp: OffsetAndMetadata(end, "", -1) for tp, end in ends.items()})
        except KafkaError as exc:  # the store holds the truth; the group offset is only a hint
            log.info("sink.commit_failed", error=str(exc))

    def _apply(
        self,
        good: list[Relayed],
        offsets: dict[tuple[str, int], int],
        stop: threading.Event,
    ) -> Outcome | None:
        delay = 0.5
        while not stop.is_set():
            try:
                return self.store.apply(good, offsets, self.receipt_for)
            except TRANSIENT_DB_ERRORS as exc:
                log.error("sink.store_unavailable", error=str(exc), retry_in_s=delay)
                stop.wait(delay)
                delay = min(delay * 2, 10)
            except sa.exc.SQLAlchemyError:
                return self._apply_one_by_one(good, offsets)
        return None  # stopping: nothing stored, the batch is consumed again on restart

    def _apply_one_by_one(self, good: list[Relayed], offsets: dict[tuple[str, int], int]) -> Outcome:
        """A batch the database refused: find the message it cannot take, skip it as poison, keep the rest."""
        total = Outcome()
        for item in good:
            try:
                one = self.store.apply([item], {}, self.receipt_for)
            except sa.exc.SQLAlchemyError as exc:
                self.metrics.poison.labels(self.tier).inc()
                log.warning("sink.poison", stage="store", error=str(exc).splitlines()[0])
                continue
            total.upserted += one.upserted
            total.duplicates += one.duplicates
            total.withdrawn += one.withdrawn
            total.ignored_withdrawals += one.ignored_withdrawals
        self.store.skip(offsets)
        return total

    def account(self, outcome: Outcome) -> None:
        """The batch's counts, one increment per metric and kind (not one per message)."""
        m, tier = self.metrics, self.tier
        counts: list[tuple[Any, Counter[str]]] = [
            (m.upserts, Counter(row.kind for row in outcome.upserted)),
            (
                m.withdrawals,
                Counter(row.kind for row in outcome.upserted if row.revoked)
                + Counter(kind_of(w["record_id"]) for w in outcome.withdrawn),
            ),
            (m.duplicates, Counter(outcome.duplicates)),
            (m.ignored_withdrawals, Counter(kind_of(w["record_id"]) for w in outcome.ignored_withdrawals)),
        ]
        for metric, by_kind in counts:
            for kind, n in by_kind.items():
                metric.labels(tier, kind).inc(n)
        for w in outcome.ignored_withdrawals:
            log.info("sink.withdrawal_ignored", record_id=w["record_id"], version=w["version"])

    def send_receipts(self) -> None:
        """Send what the outbox holds to the source nodes' topics, a node's receipts several to an `sgs.Receipts`
        message in the outbox's order (issue 14: `sgs.kafka.receipts`), and forget each receipt once the broker has
        acknowledged the message carrying it. A message the broker can never take has its receipts parked
        (`sink_receipt_parked`, with its error), not retried in front of the others; so is a receipt for a node not
        in the federation config, which has no receipts topic (issue 16: topics are made from the config, never on
        the fly), and one whose bytes are not an `sgs.Receipt`."""
        while pending := self.store.pending_receipts():
            parked: list[tuple[int, BaseException]] = []
            ids: list[int] = []
            readable: list[tuple[str, dict[str, Any]]] = []
            for i, node, encoded in pending:
                try:
                    if node not in self.nodes:
                        raise LookupError(
                            f"node {node} is not in the federation config: it has no receipts topic"
                        )
                    name, receipt = self.codec.decode(encoded)
                    if name != RECEIPT:
                        raise SerializationError(f"{name} is not a receipt")
                except (LookupError, SerializationError) as exc:
                    parked.append((i, exc))
                    continue
                ids.append(i)
                readable.append((node, receipt))
            routed = [
                (receipts_topic(node), node.encode(), value, [ids[at] for at in carried])
                for node, carried, value in receipt_batches(self.codec, readable)
            ]
            signatures = self.signer.batch_headers([(topic, key, value) for topic, key, value, _ in routed])
            futures = []
            failed: Exception | None = None
            for (topic, key, value, carried), headers in zip(routed, signatures, strict=True):
                try:
                    futures.append(
                        (carried, self.producer.send(topic, key=key, value=value, headers=headers))
                    )
                except Exception as exc:  # noqa: BLE001 - sorted: the message's own fault is parked
                    if not unsendable(exc):
                        failed = exc
                        break
                    parked += [(i, exc) for i in carried]
            try:
                self.producer.flush(10)
            except KafkaError as exc:
                failed = failed or exc
            sent: list[int] = []
            for carried, f in futures:
                if not f.is_done:
                    failed = failed or TimeoutError("no acknowledgement within 10 s")
                elif not f.failed():
                    sent += carried
                elif unsendable(f.exception):
                    parked += [(i, f.exception) for i in carried]
                else:
                    failed = failed or f.exception
            self.store.receipts_sent(sent)
            self.metrics.receipts.labels(self.tier).inc(len(sent))
            for i, error in parked:
                self.store.park_receipt(i, f"{type(error).__name__}: {error}")
                self.metrics.receipts_parked.labels(self.tier).inc()
                log.error("sink.receipt_parked", receipt=i, error=str(error))
            if failed is not None:
                log.warning("sink.receipts_unsent", pending=len(pending) - len(sent), error=str(failed))
                return

    def refresh_held(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._held_refreshed < 1.0:
            return
        self._held_refreshed = now
        held = self.store.held_by_kind()
        for kind in ("license", "penalty"):
            self.metrics.held.labels(self.tier, kind).set(held.get(kind, 0))
