"""What every stage of the worker shares: the faust app, its topics and tables, the codec, and the two ways a
stage ends a record (a rejection with reasons, or a counted outcome).

The stages are one module each, plain functions called in order by the agents of `agents.py`:

    sgs.submitted.{license,penalty} -> validate -> dedup -> reconcile -> timeliness -> route
        -> sgs.accepted.{license,penalty}, sgs.relay.{provincial,national}, receipts, alerts
    reconcile -> <app>-held -> (retry) reconcile -> timeliness -> route, while the subject is unknown
    <app>-expiry (fed by the publicity sweep) -> expire -> sgs.relay.*
    sgs.decisions -> decide -> <app>-held-decisions -> (retry) decide, while the record is not known
    decide: a repair -> <app>-repairs (by subject) -> subject -> <app>-repair-outcomes -> repair

Every topic is keyed by record id with the federation's partition count, so one record's versions, its state in
every table and every stage's work on it stay in one partition, on one worker; only `<app>-repairs` and its table
`subjects` are keyed by the record's subject (D16). A held record travels as its bytes as submitted (never
re-encoded), so it can still be rejected with the original bytes.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import faust
import faust.streams as faust_streams
import structlog

from services.worker import metrics, prompt
from services.worker.exactly_once import CommitGate
from services.worker.settings import WorkerSettings
from sgs.config import Department
from sgs.domain.issues import Issue, quote
from sgs.domain.workdays import china_date
from sgs.kafka import topics
from sgs.kafka.receipts import batches as receipt_batches
from sgs.kafka.topics import TopicSpec
from sgs.serialization.codec import Codec, SerializationError, default_codec
from sgs.serialization.signing import WORKER, Keyring, SignatureError, node_signer

log = structlog.get_logger("worker")

KIND_BY_TOPIC = {name: kind for kind, name in topics.SUBMITTED.items()}
UNKNOWN = "unknown"  # metric label for a district or department the federation config does not know

# The app's own topics, `<app id>-<suffix>`; created with the federation's partition count before faust starts.
INTERNAL_TOPICS = ("held", "held-decisions", "expiry", "repairs", "repair-outcomes")
# faust names a table's changelog `<app id>-<table>-changelog`; created the same way (compacted).
TABLES = ("records", "daily", "subjects")
WORKER_ONLY = frozenset({WORKER})  # who may write the app's own topics (issue 16)
# A message an agent emitted, sent when it is done (`Context.flush`): (topic, key, value, headers, transactional id).
_Output = tuple[str, bytes | None, bytes, dict[str, bytes] | None, str | None]


def app_topics(app_id: str) -> tuple[TopicSpec, ...]:
    """The app's own topics and its tables' changelogs, created with the federation's partition count before faust
    starts (faust must not create them with a broker default)."""
    internal = tuple(TopicSpec(f"{app_id}-{suffix}") for suffix in INTERNAL_TOPICS)
    changelogs = tuple(TopicSpec(f"{app_id}-{t}-changelog", compacted=True) for t in TABLES)
    return internal + changelogs


@dataclass
class Labels:
    """The bounded metric labels of one record (never its id or a name)."""

    kind: str
    district: str
    department: str


def now_utc() -> datetime:
    return datetime.now(UTC)


def reason(field_: str, rule: str, message: str, value: Any = None) -> dict[str, Any]:
    """One `sgs.Reason` (D12: the sender is told every reason, by template column)."""
    return Issue(field_, rule, message, quote(value)).as_reason()


@dataclass
class Context:
    """The faust app with its topics and tables, shared by the stage modules."""

    settings: WorkerSettings
    app: faust.App
    codec: Codec = field(default_factory=default_codec)
    # Records pass it one by one; a commit under transactions closes it (`exactly_once.py`).
    gate: CommitGate = field(default_factory=CommitGate)

    def __post_init__(self) -> None:
        app, s = self.app, self.settings

        def raw_topic(*names: str) -> faust.TopicT:
            return app.topic(
                *names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
            )

        # What the agents read (`agents.py`).
        self.submitted = raw_topic(*topics.SUBMITTED.values())
        self.held = raw_topic(f"{s.app_id}-held")
        self.expiry = raw_topic(f"{s.app_id}-expiry")
        self.decisions = raw_topic(topics.DECISIONS)  # decisions on records (`stages/decide.py`, D15, D16)
        # ... and those on records not read yet, waiting for them (`holding.py`)
        self.held_decisions = raw_topic(f"{s.app_id}-held-decisions")
        # A credit repair's round trip through its subject's partition (`stages/decide.py`, D16): keyed by subject,
        # then back keyed by record id.
        self.repairs = raw_topic(f"{s.app_id}-repairs")
        self.repair_outcomes = raw_topic(f"{s.app_id}-repair-outcomes")
        # What the stages write, by name (`emit`).
        self.accepted = dict(topics.ACCEPTED)
        self.relay = dict(topics.RELAY)

        def table(name: str, default: Any = None) -> faust.types.TableT:
            return app.Table(
                name, default=default, schema=faust.Schema(key_serializer="json", value_serializer="json")
            )

        # record id -> its state, read and changed through `state` (one table write per message):
        #   "seen": {"version", "hash", "offset"} of the highest version seen (D4), for dedup and ordering;
        #   "relayed": what the route stage relayed: version, tiers holding it, publicity end (D11, D14);
        #   "counted": {version: [measures]} already counted, so a replay counts nothing twice (D8);
        #   "decisions", "objection": decisions applied and whether an objection is open (stages/decide.py, D15, D16).
        self.records = table("records")
        # "<partition>|<day>|<district>|<department>|<kind>" -> {measure: count} (D8); months are sums of days.
        self.daily = table("daily")
        # subject (`sgs.domain.lifecycle.subject_key`) -> {record id: repair date} of its latest approved repairs (D16);
        # written by the `subject` agent, whose topic is keyed by subject.
        self.subjects = table("subjects")

        departments = {d.id: d for n in s.federation.nodes for d in n.departments}
        self._departments = departments
        self._nodes = {n.code for n in s.federation.nodes}
        # Everything the worker writes is signed with its key; everything it reads is checked (issue 16).
        self.keyring = Keyring.of(s.federation)
        self.signer = self.keyring.signer(s.key_dir, WORKER)
        self.node_signers = frozenset(node_signer(code) for code in self._nodes)

    def department(self, dept_id: str) -> Department:
        return self._departments[dept_id]

    def node_signer_of(self, message: dict[str, Any]) -> str | None:
        """The only signer a message about a department's record may come from: the node the department reports
        through (D10), and only when the message names that node as its source."""
        dept = self._departments.get(str(message.get("department")))
        if dept is None or message.get("source_node") != dept.node:
            return None
        return node_signer(dept.node)

    async def signed(self, event: faust.EventT, kind: str, allowed: frozenset[str] | set[str]) -> str | None:
        """The signer of the message in hand when it is one of `allowed`; otherwise None, and the message is
        refused unread: its bytes go to `sgs.rejected` (stage `signature`, rule `signature.*`), counted on
        `sgs_worker_refused_signature_total`, never for the department it names (it may not be theirs)."""
        topic = event.message.topic
        value = event.value if isinstance(event.value, bytes) else None
        try:
            return self.keyring.check(topic, event.key, value, event.headers, allowed)
        except SignatureError as exc:
            await self.refuse(event, kind, exc.rule, str(exc))
            return None

    async def refuse(self, event: faust.EventT, kind: str, rule: str, message: str) -> None:
        topic = event.message.topic
        metrics.labelled(metrics.REFUSED_SIGNATURE, topic, rule).inc()
        log.warning("message.refused", topic=topic, rule=rule, error=message)
        raw = event.value if isinstance(event.value, bytes) else b""
        await self.reject("signature", kind, event.key, raw, [reason("-", rule, message)], counted=False)

    def labels(self, kind: str, envelope: dict[str, Any] | None) -> Labels:
        """District = the node the department reports through (D10); unknown codes are one label, not many."""
        if envelope is None:
            return Labels(kind, UNKNOWN, UNKNOWN)
        dept = self._departments.get(str(envelope.get("department")))
        if dept is not None:
            return Labels(kind, dept.node, dept.id)
        node = str(envelope.get("source_node"))
        return Labels(kind, node if node in self._nodes else UNKNOWN, UNKNOWN)

    async def emit(
        self, topic: str, key: bytes | None, value: bytes, headers: dict[str, bytes] | None = None
    ) -> None:
        """Hand one message to the producer, without waiting for the broker: faust flushes the producer before
        it commits an offset, so whatever a message caused is on the broker before the message counts as done
        (at-least-once). Straight to the producer, not through `faust.Topic.send`, whose per-message
        bookkeeping cost more than the rest of a record's processing (docs/worker.md).

        With transactions (exactly-once, `sgs.kafka.engines`), the message joins the transaction of the partition
        the event in hand came from: faust commits that partition's offsets in that transaction, so the message
        and the event's being done become visible together or not at all. (faust's own `Topic.send` would pick
        the transaction of the partition the message goes to, which commits someone else's offsets.)

        Inside an agent the message waits until the one in hand is done (`flush`, called by `guarded`), so that
        everything a message causes is signed with one signature (issue 14: a signature costs more CPU than the
        rest of an output)."""
        work = _WORK.get(None)
        if work is not None:
            work.outputs.append((topic, key, value, headers, self._transaction()))
            return
        signed = [*(headers or {}).items(), *self.signer.headers(topic, key, value)]
        await self.app.producer.send(
            topic, key, value, None, None, signed, transactional_id=self._transaction()
        )

    async def flush(self) -> None:
        """Hand the outputs of the messages in hand to the producer, in the order they were emitted, then their
        receipts, several to a message (`receipt_messages`), signed as one batch (`Signer.batch_headers`), each in
        the transaction of the message that caused it."""
        work = _WORK.get()
        outputs, work.outputs = work.outputs, []
        receipts, work.receipts = work.receipts, []
        try:
            outputs += self.receipt_messages(receipts)
        except SerializationError:  # a bug: the receipts are lost, not the rest of what the messages caused
            log.exception("receipt.unencodable", receipts=len(receipts))
        if not outputs:
            return
        signatures = self.signer.batch_headers([(topic, key, value) for topic, key, value, _, _ in outputs])
        for (topic, key, value, headers, transaction), signature in zip(outputs, signatures, strict=True):
            signed = [*(headers or {}).items(), *signature]
            await self.app.producer.send(topic, key, value, None, None, signed, transactional_id=transaction)

    def _transaction(self) -> str | None:
        """The transactional id faust's `TransactionManager.commit` uses for the event in hand's partition; None
        at-least-once, and for the publicity sweep, a timer with no event (its expiry requests are idempotent)."""
        event = faust.current_event() if self.app.in_transaction else None
        if event is None:
            return None
        tp = event.message.tp
        return f"{self.app.conf.id}-{self.app.assignor.group_for_topic(tp.topic)}-{tp.partition}"

    async def send(self, topic: str, key: str, schema: str, value: dict[str, Any]) -> None:
        await self.emit(topic, key.encode(), self.codec.encode(schema, value))

    async def receipt(
        self,
        envelope: dict[str, Any],
        status: str,
        detail: str | None = None,
        reasons: list[dict[str, Any]] | None = None,
    ) -> None:
        """An `sgs.Receipt` back to the source node, on its own topic (key = source node). A source node not in
        the federation config has no topic (topics are made from the config, never on the fly): its receipt is
        logged, counted on `sgs_worker_receipts_unsent_total` and dropped (issue 16). Only a record stored before
        its node left the config can get here: a record from an unknown node is refused unread (`signed`).

        Inside an agent the receipt waits, like every output, until the messages in hand are done: then a node's
        receipts go several to an `sgs.Receipts` message (`flush`, issue 14). Outside one it goes at once, alone."""
        node = envelope["source_node"]
        if node not in self._nodes:
            metrics.RECEIPTS_UNSENT.inc()
            log.warning("receipt.unknown_node", node=node, record_id=envelope["record_id"], status=status)
            return
        receipt = {
            "receipt_id": envelope["receipt_id"],
            "record_id": envelope["record_id"],
            "version": envelope["version"],
            "source_node": node,
            "status": status,
            "at": now_utc(),
            "detail": detail,
            "reasons": reasons or [],
        }
        group = (node, self._transaction())
        work = _WORK.get(None)
        if work is not None:
            work.receipts.append((group, receipt))
            return
        for topic, key, value, _, _ in self.receipt_messages([(group, receipt)]):
            await self.emit(topic, key, value)

    def receipt_messages(
        self, receipts: list[tuple[tuple[str, str | None], dict[str, Any]]]
    ) -> list[_Output]:
        """Receipts ((node, transactional id), receipt) as the `sgs.Receipts` messages that carry them (issue 14):
        a node's receipts in the order they were made, several to a message, each message in one transaction, so
        under exactly-once a receipt still commits with the message that caused it."""
        return [
            (topics.receipts_topic(node), node.encode(), value, None, transaction)
            for (node, transaction), _, value in receipt_batches(self.codec, receipts)
        ]

    async def reject(
        self,
        stage: str,
        kind: str,
        key: bytes | None,
        original: bytes,
        reasons: list[dict[str, Any]],
        envelope: dict[str, Any] | None = None,
        *,
        counted: bool = True,
    ) -> None:
        """D12: the original bytes and every reason to `sgs.rejected`, a REJECTED receipt when the receipt id is
        known, and (`counted`) the count per rule for the bulletin."""
        env = envelope or {}
        record_id = env.get("record_id") or (key.decode("utf-8", "replace") if key else None)
        await self.emit(
            topics.REJECTED,
            record_id.encode() if record_id else None,
            self.codec.encode(
                "sgs.Rejection",
                {
                    "receipt_id": env.get("receipt_id"),
                    "record_id": record_id,
                    "version": env.get("version"),
                    "source_node": env.get("source_node"),
                    "department": env.get("department"),
                    "stage": stage,
                    "original": original,
                    "reasons": reasons,
                    "rejected_at": now_utc(),
                },
            ),
        )
        if envelope is not None:
            await self.receipt(envelope, "REJECTED", detail=f"stage {stage}", reasons=reasons)
        labels = self.labels(kind, envelope)
        metrics.labelled(metrics.RECORDS, stage, "rejected", kind, labels.district).inc()
        for rule in sorted({r["rule"] for r in reasons}) if counted else ():
            self.count(envelope, labels, f"rejected.{rule}")
        log.info(
            "record.rejected", stage=stage, record_id=record_id, rules=sorted({r["rule"] for r in reasons})
        )

    def state(self, record_id: str) -> dict[str, Any]:
        """The record's entry in `records` for the messages in hand, to read and change (replace its parts, do
        not mutate them); `settle` writes it back once when they are done."""
        work = _WORK.get()
        if record_id not in work.states:
            stored = self.records.get(record_id) or {}
            work.states[record_id] = (stored, dict(stored))
        work.writers[record_id] = _current()
        return work.states[record_id][1]

    def count(self, envelope: dict[str, Any] | None, labels: Labels, measure: str) -> None:
        """Count one `measure` of the message in hand for the day aggregates (D8), once per (record id, version,
        measure) however often the record is replayed; `settle` writes the counts when the message is done."""
        if envelope is not None:
            day = china_date(envelope["submitted_at"])
            state = self.state(envelope["record_id"])
            counted = state.get("counted") or {}
            done = counted.get(str(envelope["version"])) or []
            if measure in done:
                return
            state["counted"] = {**counted, str(envelope["version"]): [*done, measure]}
        else:
            day = china_date(now_utc())  # an undecodable message has no identity: counted when it arrived
        event = _current()
        key = (
            f"{event.message.partition}|{day.isoformat()}|{labels.district}|{labels.department}|{labels.kind}"
        )
        work = _WORK.get()
        work.tally.append((key, measure))
        work.writers[key] = event

    def settle(self) -> None:
        """Write what the messages in hand changed: every table write is a changelog message, so one per record and
        one per day row, however many stages and messages of a batch changed them. Each is written as the message
        that last changed it (`writers`), which is the one faust sends its changelog message to the partition
        of: every topic is keyed by record id, and a day row's key starts with its partition."""
        work = _WORK.get()
        for record_id, (stored, state) in work.states.items():
            if state != stored:
                _make_current(work.writers[record_id])
                self.records[record_id] = state
        days: dict[str, dict[str, int]] = {}
        for key, measure in work.tally:
            day = days.setdefault(key, dict(self.daily.get(key) or {}))
            day[measure] = day.get(measure, 0) + 1
        for key, measures in days.items():
            _make_current(work.writers[key])
            self.daily[key] = measures
        work.states.clear()
        work.tally.clear()
        work.writers.clear()


@dataclass
class _Work:
    """What the message an agent has in hand changed, until `settle` writes it."""

    states: dict[str, tuple[dict[str, Any], dict[str, Any]]] = field(
        default_factory=dict
    )  # (stored, current)
    tally: list[tuple[str, str]] = field(default_factory=list)  # (day key, measure)
    # the message that last changed each record's state or day row: the table writes go out as it (`settle`)
    writers: dict[str, faust.EventT] = field(default_factory=dict)
    outputs: list[_Output] = field(
        default_factory=list
    )  # what it emitted, sent when it is done (`Context.flush`)
    # its receipts, sent after the outputs several to a message: ((node, transactional id), receipt)
    receipts: list[tuple[tuple[str, str | None], dict[str, Any]]] = field(default_factory=list)


_WORK: ContextVar[_Work] = ContextVar("work")  # one per agent task: agents interleave at every await


class Step:
    """The stage a message is in: an unexpected failure is a rejection at that stage, and each stage's time is
    observed (`sgs_worker_stage_latency_seconds`)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.started = time.perf_counter()

    def enter(self, name: str) -> None:
        self.done()
        self.name, self.started = name, time.perf_counter()

    def done(self) -> None:
        metrics.labelled(metrics.STAGE_LATENCY, self.name).observe(time.perf_counter() - self.started)


def envelope_of(codec: Codec, raw: bytes) -> dict[str, Any] | None:
    """The envelope of a record's bytes, or None when they are not a record we can read."""
    try:
        _, record = codec.decode(raw)
    except Exception:  # any failure means "no envelope": the caller is already handling an error
        return None
    env = record.get("envelope")
    return env if isinstance(env, dict) else None


def _current() -> faust.EventT:
    event = faust.current_event()
    if event is None:
        raise RuntimeError("table state is written inside an agent")
    return event


def _make_current(event: faust.EventT) -> None:
    """Make `event` the one in hand for this task, as faust does for each event of `stream.events()`: what faust
    reads it for (a table write's changelog partition, a transaction's id) then follows the message whose work it
    is. `Stream.take_events` hands over a batch without doing so. Only the task's context variable: the stream's
    own `current_event` is what its buffer is being filled from."""
    faust_streams._current_event.set(weakref.ref(event))  # noqa: SLF001 - faust has no public setter


@asynccontextmanager
async def _batch(ctx: Context, size: int = 1) -> AsyncIterator[None]:
    """Messages taken through their stages together: their outputs are handed to the producer under one signature
    when they are all done, then what they changed in the tables is written (`flush`, `settle`), so a decision
    that reads a record's new state finds its relay already sent. A batch of `size` >= `prompt.SEND_NOW_AT`
    messages sends its outputs at once rather than after the producer's linger. A commit under transactions waits
    for the whole batch (`exactly_once.CommitGate`)."""
    await ctx.gate.enter()
    work = _WORK.set(_Work())
    try:
        yield
    finally:
        try:
            await ctx.flush()
        except Exception:  # as when each output was sent on its own: logged, the messages are done
            log.exception("stage.send_failed")
        try:
            ctx.settle()
        except Exception:
            log.exception("aggregates.settle_failed")
        if size >= prompt.SEND_NOW_AT:
            prompt.send_now(ctx.app.producer)
        _WORK.reset(work)
        ctx.gate.leave()


async def guarded(
    ctx: Context,
    stage: str,
    event: faust.EventT,
    kind: str,
    handler: Callable[[faust.EventT, Step], Awaitable[None]],
) -> None:
    """Take one message through its stages (`guarded_batch` of one)."""
    async with _batch(ctx):
        await _guarded_one(ctx, stage, event, kind, handler)


async def guarded_batch(
    ctx: Context,
    stage: str,
    events: Sequence[faust.EventT],
    kind_of: Callable[[faust.EventT], str],
    handler: Callable[[faust.EventT, Step], Awaitable[None]],
) -> None:
    """Take a batch of messages (`Stream.take_events`) through their stages, one after the other, in order
    (issue 14: what a batch shares, its signature and its table writes, is paid once)."""
    async with _batch(ctx, len(events)):
        for event in events:
            _make_current(event)
            await _guarded_one(ctx, stage, event, kind_of(event), handler)


async def _guarded_one(
    ctx: Context,
    stage: str,
    event: faust.EventT,
    kind: str,
    handler: Callable[[faust.EventT, Step], Awaitable[None]],
) -> None:
    """Take one message through its stages so that nothing escapes: faust restarts an agent that raises, and it
    would meet the same message again forever. An unexpected failure becomes a rejection carrying the bytes (D12)
    at the stage it happened in."""
    step = Step(stage)
    try:
        await handler(event, step)
    except Exception as exc:
        log.exception("stage.failed", stage=step.name)
        raw = event.value if isinstance(event.value, bytes) else b""
        try:
            await ctx.reject(
                step.name,
                kind,
                event.key,
                raw,
                [reason("-", f"{step.name}.failed", f"市平台处理失败：{type(exc).__name__}: {exc}")],
                envelope=envelope_of(ctx.codec, raw),
            )
        except Exception:
            log.exception("stage.reject_failed", stage=step.name)
    finally:
        step.done()
