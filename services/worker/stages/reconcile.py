"""Stage 3, reconcile (D13): the counterpart against the reference bases, with mismatches on sgs.alerts.

The counterpart is checked against the reference bases mirrored on this worker (`reference_mirror.py`). A stream-table
race is expected: a record may arrive before the reference-base change that names its subject. Such a record is
held: sent to <app>-held with the time it was first seen, and the `held` agent (`agents.py`) checks it again once
its retry time comes (`holding.py`), until `--unknown-subject-hold-s` has passed; only then is it concluded
UNKNOWN_CODE. The held topic is keyed by record id too, so a newer version overtaking a held one is caught by the
timeliness stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.worker import metrics
from services.worker.context import Context, log, now_utc
from services.worker.holding import hold
from services.worker.reference_mirror import ReferenceBases
from sgs.domain.reconciliation import reconcile
from sgs.kafka import topics


@dataclass(frozen=True)
class Reconciliation:
    """What the check concluded, for the timeliness stage to write into `annotations` and the receipt."""

    outcome: str
    registered_name: str | None


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
    if outcome == "UNKNOWN_CODE" and await hold(
        ctx, ctx.held.get_topic_name(), key, raw, ctx.settings.unknown_subject_hold_s, held_since
    ):
        metrics.labelled(metrics.RECORDS, "reconcile", "held", kind, labels.district).inc()
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
