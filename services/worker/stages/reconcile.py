"""Stage 3, reconcile (D13): the counterpart against the reference bases, with mismatches on sgs.alerts.

The counterpart is checked against the reference bases mirrored on this worker (`reference_mirror.py`). A stream-table
race is expected: a record may arrive before the reference-base change that names its subject. Such a record is
held: sent to <app>-held with the time it was first seen, and the `held` agent (`agents.py`) checks it again once
its retry time comes, until `--unknown-subject-hold-s` has passed; only then is it concluded UNKNOWN_CODE. The
held topic is keyed by record id too, so a newer version overtaking a held one is caught by the timeliness stage.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import faust

from services.worker import metrics
from services.worker.context import Context, log, now_utc
from services.worker.reference_mirror import ReferenceBases
from sgs.domain.reconciliation import reconcile
from sgs.kafka import topics

HELD_SINCE = "sgs-held-since"  # ms since the epoch when the record was first found with an unknown subject
RETRY_AT = "sgs-retry-at"  # ms since the epoch when the held record is checked again


@dataclass(frozen=True)
class Reconciliation:
    """What the check concluded, for the timeliness stage to write into `annotations` and the receipt."""

    outcome: str
    registered_name: str | None


def header(event: faust.EventT, name: str) -> str | None:
    value = (event.headers or {}).get(name)
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


async def check(
    ctx: Context,
    refs: ReferenceBases,
    key: bytes | None,
    raw: bytes,
    record: dict[str, Any],
    held_since: int | None = None,
) -> Reconciliation | None:
    """The outcome, or None when the subject is not known yet and the record went to be held (a race, D13)."""
    env = record["envelope"]
    kind = env["kind"].lower()
    outcome, registered = reconcile(
        record["counterpart"], record["decided_on"], refs.legal_persons, refs.persons
    )
    outcome = str(getattr(outcome, "value", outcome))
    labels = ctx.labels(kind, env)
    if outcome == "UNKNOWN_CODE":
        now_ms = int(time.time() * 1000)
        since = held_since or now_ms
        if now_ms - since < ctx.settings.unknown_subject_hold_s * 1000:
            retry_at = now_ms + int(ctx.settings.retry_interval_s * 1000)
            metrics.labelled(metrics.RECORDS, "reconcile", "held", kind, labels.district).inc()
            await ctx.emit(
                ctx.held.get_topic_name(),
                key,
                raw,
                headers={HELD_SINCE: str(since).encode(), RETRY_AT: str(retry_at).encode()},
            )
            return None
    metrics.labelled(metrics.RECONCILIATION, outcome, kind).inc()
    if outcome not in ("MATCHED", "NOT_CHECKED"):
        ctx.count(env, labels, "mismatched")
        log.info("record.mismatch", record_id=env["record_id"], outcome=outcome)
        await ctx.send(
            topics.ALERTS,
            env["division_code"],
            "sgs.MismatchAlert",
            {
                "record_id": env["record_id"],
                "division_code": env["division_code"],
                "department": env["department"],
                "kind": env["kind"],
                "outcome": outcome,
                "submitted_name": record["counterpart"]["name"],
                "registered_name": registered,
                "at": now_utc(),
            },
        )
    return Reconciliation(outcome, registered)


async def wait_for_retry(event: faust.EventT) -> None:
    """Sleep until the held record's retry time (one that cannot be read is now). Held records are in the order they
    were held, each waiting one retry interval, so sleeping on the head of a partition delays none past its time.
    The agent sleeps before it takes the record through its stages: a commit under transactions waits for the
    records under way (`exactly_once.CommitGate`), and must not wait out a retry interval too."""
    try:
        delay = int(header(event, RETRY_AT) or 0) / 1000 - time.time()
    except ValueError:
        delay = 0
    if delay > 0:
        await asyncio.sleep(delay)


def held_since(event: faust.EventT) -> int:
    """When the held record was first held (epoch ms)."""
    return int(header(event, HELD_SINCE) or time.time() * 1000)
