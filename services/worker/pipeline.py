"""What every stage of the worker shares: the faust app, its topics and tables, the codec, and the two ways a
stage ends a record (a rejection with reasons, or a counted outcome).

The stages (one module each, read top to bottom) are:

    sgs.submitted.{license,penalty} -> validate -> <app>-validated -> dedup -> <app>-current
        -> reconcile (<app>-held loops back to <app>-current while the subject is unknown)
        -> <app>-reconciled -> timeliness -> sgs.accepted.{license,penalty} -> route -> sgs.relay.{provincial,national}
    <app>-expiry (fed by the publicity sweep) -> expire -> sgs.relay.*

Every topic is keyed by record id with the federation's partition count, so one record's versions, its state in
every table and every stage's work on it stay in one partition, on one worker. Between stages the value is the
record's bytes as submitted (never re-encoded), so any stage can reject with the original bytes; what a stage
concluded travels in message headers until the timeliness stage writes `annotations`.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import faust
import structlog

from sgs import topics
from sgs.config import Federation
from sgs.serialization import Codec, default_codec
from sgs.topics import TopicSpec
from sgs.workdays import Calendar

log = structlog.get_logger("worker")

SHANGHAI = ZoneInfo("Asia/Shanghai")  # dates of D5/D6 are calendar days in China, not in UTC
SCHEMA_BY_KIND = {"license": "sgs.LicenseRecord", "penalty": "sgs.PenaltyRecord"}
KIND_BY_TOPIC = {name: kind for kind, name in topics.SUBMITTED.items()}
KIND_BY_ACCEPTED_TOPIC = {name: kind for kind, name in topics.ACCEPTED.items()}
UNKNOWN = "unknown"  # metric label for a district or department the federation config does not know

# The app's own topics, `<app id>-<suffix>`; created with the federation's partition count before faust starts.
INTERNAL_TOPICS = ("validated", "current", "held", "reconciled", "expiry")
# faust names a table's changelog `<app id>-<table>-changelog`; created the same way (compacted).
TABLES = ("versions", "relayed", "counted", "daily", "monthly")


@dataclass(frozen=True)
class WorkerSettings:
    """Everything the worker is configured with, from flags, `SGS_*` variables and the federation config."""

    app_id: str
    bootstrap: str
    http_port: int
    data_dir: Path
    federation: Federation
    calendar: Calendar
    unknown_subject_hold_s: float
    sweep_interval_s: float
    aggregates_url: str
    log_level: str

    @property
    def retry_interval_s(self) -> float:
        """How often a held record is re-checked: often enough to notice a reference-base change soon after it
        arrives, rarely enough that a burst of unknown subjects does not flood the held topic."""
        return min(5.0, max(0.5, self.unknown_subject_hold_s / 6))

    def app_topics(self) -> tuple[TopicSpec, ...]:
        internal = tuple(TopicSpec(f"{self.app_id}-{suffix}") for suffix in INTERNAL_TOPICS)
        changelogs = tuple(TopicSpec(f"{self.app_id}-{t}-changelog", compacted=True) for t in TABLES)
        return internal + changelogs


@dataclass
class Labels:
    """The bounded metric labels of one record (never its id or a name)."""

    kind: str
    district: str
    department: str


def now_utc() -> datetime:
    return datetime.now(UTC)


def local_date(ts: datetime) -> date:
    return ts.astimezone(SHANGHAI).date()


def content_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:32]


def reason(field_: str, rule: str, message: str, value: Any = None) -> dict[str, Any]:
    """One `sgs.Reason` (D12: the sender is told every reason, by template column)."""
    return {
        "field": field_,
        "rule": rule,
        "message": message,
        "value": None if value is None else str(value)[:200],
    }


@dataclass
class Pipeline:
    """The faust app with its topics and tables, shared by the stage modules."""

    settings: WorkerSettings
    app: faust.App
    codec: Codec = field(default_factory=default_codec)

    def __post_init__(self) -> None:
        app, s = self.app, self.settings

        def raw_topic(*names: str) -> faust.TopicT:
            return app.topic(
                *names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
            )

        self.submitted = raw_topic(*topics.SUBMITTED.values())
        self.validated = raw_topic(f"{s.app_id}-validated")
        self.current = raw_topic(f"{s.app_id}-current")
        self.held = raw_topic(f"{s.app_id}-held")
        self.reconciled = raw_topic(f"{s.app_id}-reconciled")
        self.expiry = raw_topic(f"{s.app_id}-expiry")
        self.accepted_in = raw_topic(*topics.ACCEPTED.values())
        self.accepted = {kind: raw_topic(name) for kind, name in topics.ACCEPTED.items()}
        self.relay = {tier: raw_topic(name) for tier, name in topics.RELAY.items()}
        self.rejected = raw_topic(topics.REJECTED)
        self.alerts = raw_topic(topics.ALERTS)
        self.receipts = raw_topic(topics.RECEIPTS)

        def table(name: str, default: Any = None) -> faust.Table:
            return app.Table(
                name, default=default, schema=faust.Schema(key_serializer="json", value_serializer="json")
            )

        # record id -> {"version", "hash"}: the highest version seen (D4), for dedup and ordering.
        self.versions = table("versions")
        # record id -> what the route stage relayed: version, tiers holding it, publicity end (D11, D14).
        self.relayed = table("relayed")
        # "<record id>|<version>" -> measures already counted, so a replay counts nothing twice (D8).
        self.counted = table("counted")
        # "<partition>|<day or month>|<district>|<department>|<kind>|<measure>" -> count (D8).
        self.daily = table("daily", int)
        self.monthly = table("monthly", int)

        departments = {d.id: d for n in s.federation.nodes for d in n.departments}
        self._departments = departments
        self._nodes = {n.code for n in s.federation.nodes}

    def labels(self, kind: str, envelope: dict[str, Any] | None) -> Labels:
        """District = the node the department reports through (D10); unknown codes are one label, not many."""
        if envelope is None:
            return Labels(kind, UNKNOWN, UNKNOWN)
        dept = self._departments.get(str(envelope.get("department")))
        if dept is not None:
            return Labels(kind, dept.node, dept.id)
        node = str(envelope.get("source_node"))
        return Labels(kind, node if node in self._nodes else UNKNOWN, UNKNOWN)

    async def send(self, topic: faust.TopicT, key: str, schema: str, value: dict[str, Any]) -> None:
        await topic.send(key=key.encode(), value=self.codec.encode(schema, value))

    async def receipt(
        self,
        envelope: dict[str, Any],
        status: str,
        detail: str | None = None,
        reasons: list[dict[str, Any]] | None = None,
    ) -> None:
        """An `sgs.Receipt` back to the source node (key = source node)."""
        await self.send(
            self.receipts,
            envelope["source_node"],
            "sgs.Receipt",
            {
                "receipt_id": envelope["receipt_id"],
                "record_id": envelope["record_id"],
                "version": envelope["version"],
                "source_node": envelope["source_node"],
                "status": status,
                "at": now_utc(),
                "detail": detail,
                "reasons": reasons or [],
            },
        )

    async def reject(
        self,
        stage: str,
        kind: str,
        key: bytes | None,
        original: bytes,
        reasons: list[dict[str, Any]],
        envelope: dict[str, Any] | None = None,
    ) -> None:
        """D12: the original bytes and every reason to `sgs.rejected`, a REJECTED receipt when the receipt id is
        known, and the count per rule."""
        from services.worker import metrics

        env = envelope or {}
        record_id = env.get("record_id") or (key.decode("utf-8", "replace") if key else None)
        await self.rejected.send(
            key=record_id.encode() if record_id else None,
            value=self.codec.encode(
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
        metrics.RECORDS.labels(stage, "rejected", kind, labels.district).inc()
        for rule in sorted({r["rule"] for r in reasons}):
            self.count(envelope, labels, f"rejected.{rule}")
        log.info(
            "record.rejected", stage=stage, record_id=record_id, rules=sorted({r["rule"] for r in reasons})
        )

    def count(self, envelope: dict[str, Any] | None, labels: Labels, measure: str) -> None:
        """Add one to the day and month aggregates (D8), once per (record id, version, measure) however often
        the record is replayed. Only inside an agent: the tables write to the current event's partition."""
        event = faust.current_event()
        if event is None:
            raise RuntimeError("aggregates are counted inside an agent")
        if envelope is not None:
            counted_key = f"{envelope['record_id']}|{envelope['version']}"
            done = self.counted.get(counted_key) or []
            if measure in done:
                return
            self.counted[counted_key] = [*done, measure]
            day = local_date(envelope["submitted_at"])
        else:
            day = local_date(now_utc())  # an undecodable message has no identity: counted when it arrived
        p = event.message.partition
        rest = f"{labels.district}|{labels.department}|{labels.kind}|{measure}"
        self.daily[f"{p}|{day.isoformat()}|{rest}"] += 1
        self.monthly[f"{p}|{day.isoformat()[:7]}|{rest}"] += 1


def envelope_of(codec: Codec, raw: bytes) -> dict[str, Any] | None:
    """The envelope of a record's bytes, or None when they are not a record we can read."""
    try:
        _, record = codec.decode(raw)
    except Exception:  # any failure means "no envelope": the caller is already handling an error
        return None
    env = record.get("envelope")
    return env if isinstance(env, dict) else None


async def guarded(pipe: Pipeline, stage: str, event: faust.EventT, kind: str, handler: Any) -> None:
    """Run one stage on one message so that nothing escapes: faust restarts an agent that raises, and it would
    meet the same message again forever. An unexpected failure becomes a rejection carrying the bytes (D12)."""
    from services.worker import metrics

    started = time.perf_counter()
    try:
        await handler(event)
    except Exception as exc:
        log.exception("stage.failed", stage=stage)
        raw = event.value if isinstance(event.value, bytes) else b""
        try:
            await pipe.reject(
                stage,
                kind,
                event.key,
                raw,
                [reason("-", f"{stage}.failed", f"市平台处理失败：{type(exc).__name__}: {exc}")],
                envelope=envelope_of(pipe.codec, raw),
            )
        except Exception:
            log.exception("stage.reject_failed", stage=stage)
    finally:
        metrics.STAGE_LATENCY.labels(stage).observe(time.perf_counter() - started)
