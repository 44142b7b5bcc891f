"""Stage 3, reconcile (D13): <app>-current -> <app>-reconciled, with mismatches also on sgs.alerts.

The counterpart is checked against the reference bases mirrored on this worker (`refbases.py`). A stream-table
race is expected: a record may arrive before the reference-base change that names its subject. Such a record is
held: sent to <app>-held with the time it was first seen, and the `held` agent returns it to <app>-current once
its retry time comes, until `--unknown-subject-hold-s` has passed; only then is it concluded UNKNOWN_CODE. The
held topic is keyed by record id too, so a newer version overtaking a held one is caught by the timeliness stage.
"""

from __future__ import annotations

import asyncio
import time

import faust

from services.worker import metrics
from services.worker.pipeline import Pipeline, guarded, log, now_utc
from services.worker.refbases import ReferenceBases
from sgs.refbase import reconcile

HELD_SINCE = "sgs-held-since"  # ms since the epoch when the record was first found with an unknown subject
RETRY_AT = "sgs-retry-at"  # ms since the epoch when the held record is checked again
RECONCILIATION = "sgs-reconciliation"  # the outcome, for the timeliness stage to write into `annotations`
REGISTERED_NAME = "sgs-registered-name"


def header(event: faust.EventT, name: str) -> str | None:
    value = (event.headers or {}).get(name)
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def register(pipe: Pipeline, refs: ReferenceBases) -> None:
    @pipe.app.agent(pipe.current, name="reconcile")
    async def reconcile_counterparts(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await refs.loaded.wait()
            await guarded(pipe, "reconcile", event, "unknown", lambda e: _reconcile(pipe, refs, e))

    @pipe.app.agent(pipe.held, name="held")
    async def retry_held(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await guarded(pipe, "held", event, "unknown", lambda e: _retry(pipe, e))


async def _reconcile(pipe: Pipeline, refs: ReferenceBases, event: faust.EventT) -> None:
    raw: bytes = event.value
    _, record = pipe.codec.decode(raw)
    env = record["envelope"]
    kind = env["kind"].lower()
    outcome, registered = reconcile(
        record["counterpart"], record["decided_on"], refs.legal_persons, refs.persons
    )
    outcome = str(getattr(outcome, "value", outcome))
    now_ms = int(time.time() * 1000)
    labels = pipe.labels(kind, env)
    if outcome == "UNKNOWN_CODE":
        since = int(header(event, HELD_SINCE) or now_ms)
        if now_ms - since < pipe.settings.unknown_subject_hold_s * 1000:
            retry_at = now_ms + int(pipe.settings.retry_interval_s * 1000)
            metrics.RECORDS.labels("reconcile", "held", kind, labels.district).inc()
            await pipe.held.send(
                key=event.key,
                value=raw,
                headers={HELD_SINCE: str(since).encode(), RETRY_AT: str(retry_at).encode()},
            )
            return
    metrics.RECONCILIATION.labels(outcome, kind).inc()
    if outcome not in ("MATCHED", "NOT_CHECKED"):
        pipe.count(env, labels, "mismatched")
        log.info("record.mismatch", record_id=env["record_id"], outcome=outcome)
        await pipe.send(
            pipe.alerts,
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
    headers = {RECONCILIATION: outcome.encode()}
    if registered:
        headers[REGISTERED_NAME] = registered.encode()
    await pipe.reconciled.send(key=event.key, value=raw, headers=headers)


async def _retry(pipe: Pipeline, event: faust.EventT) -> None:
    """Wait for the retry time, then back to reconcile. Held records are in the order they were held, each
    waiting one retry interval, so sleeping on the head of a partition delays no record past its own time."""
    delay = int(header(event, RETRY_AT) or 0) / 1000 - time.time()
    if delay > 0:
        await asyncio.sleep(delay)
    since = header(event, HELD_SINCE) or str(int(time.time() * 1000))
    await pipe.current.send(key=event.key, value=event.value, headers={HELD_SINCE: since.encode()})
