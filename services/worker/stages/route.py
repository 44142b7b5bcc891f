"""Stage 5, route and relay (D10, D11, D14-D17): an accepted record -> sgs.relay.{provincial,national}.

The rule book (`sgs.domain.rulebook`, the set in force on the decision date) decides which tiers get a record
and whether each may publish it (D11); what a tier may publish has its personal identifiers masked (D17), the
municipal copy on sgs.accepted keeps them. The record's
state (`records` table, "relayed") remembers the version relayed and the tiers holding it, so that:
- an older version arriving after a newer one is ignored (D4);
- a revocation (operation REVOKE, or a licence whose 当前状态 is 撤销) sends a Withdrawal to every tier that holds
  the record (D4);
- a newer version that no longer goes to a tier holding the earlier one, or goes there not for publication, is
  withdrawn there first (SUPERSEDED, e.g. a penalty updated to 简易程序 leaves 信用中国, D11);
- decisions on the record (`lifecycle.py`: objections D15, credit repair D16) find what they need in "relayed";
- the publicity sweep (a timer, every `--sweep-interval-s`) finds records whose publicity period has ended and
  sends them through <app>-expiry to the `expire` agent, which withdraws them (D14). The sweep only reads the
  table: faust writes a table only from an agent, into the partition of the event being processed.
The agents and the timer that call these functions are in `agents.py`.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime
from typing import Any

import faust

from services.worker import metrics
from services.worker.context import Context, Labels, log, now_utc
from sgs.domain.kinds import SCHEMA_NAME
from sgs.domain.lifecycle import subject_key
from sgs.domain.publication import mask_identifiers
from sgs.domain.rulebook import END_FIELDS, Ruling
from sgs.domain.workdays import china_date


async def relay(ctx: Context, record: dict[str, Any], ruling: Ruling) -> None:
    """Relay the accepted, annotated record to the tiers of its `ruling` (D11), or withdraw it from every tier that
    holds it."""
    env = record["envelope"]
    kind = env["kind"].lower()
    record_id, version = env["record_id"], env["version"]
    labels = ctx.labels(kind, env)
    annotations = record["annotations"]
    state = ctx.state(record_id).get("relayed")
    if state is not None and version < state["version"]:
        metrics.labelled(metrics.RECORDS, "route", "superseded", kind, labels.district).inc()
        return
    holding = list(state["tiers"]) if state else []
    if env["operation"] == "REVOKE" or record.get("status") == "REVOKED":
        await withdraw(ctx, _state(env, labels, annotations, []), holding, "REVOKED")
        return
    tiers = ruling.relay
    if state is not None:
        await _drop_tiers(ctx, state, tiers)
    encoded: dict[bool, bytes] = {}  # for publication or not: the same bytes for every tier that gets them
    for tier, for_publication in tiers.items():
        if for_publication not in encoded:
            body = mask_identifiers(record) if for_publication else record
            body = {
                **body,
                "annotations": {**annotations, "for_publication": for_publication, "masked": for_publication},
            }
            encoded[for_publication] = ctx.codec.encode(SCHEMA_NAME[kind], body)
        await ctx.emit(ctx.relay[tier], record_id.encode(), encoded[for_publication])
        metrics.labelled(metrics.RELAYED, tier, kind).inc()
        ctx.count(env, labels, f"relayed.{tier}")
    ctx.state(record_id)["relayed"] = {
        **_state(env, labels, annotations, sorted(tiers)),
        # What a decision on the record needs later (D15, D16, `lifecycle.py`): which tiers publish it, the
        # bytes each holds (to relay them again with the objection mark changed), and the D16 terms.
        "public": sorted(tier for tier, for_publication in tiers.items() if for_publication),
        "bodies": {str(flag): base64.b64encode(raw).decode() for flag, raw in encoded.items()},
        "subject": subject_key(record["counterpart"]),  # whose repair history D16 reads
        **repair_facts(kind, record),
    }
    metrics.labelled(
        metrics.RECORDS, "route", "relayed" if tiers else "not_relayed", kind, labels.district
    ).inc()


def repair_facts(kind: str, record: dict[str, Any]) -> dict[str, Any]:
    """What the rule book needs to rule on the record again when a repair comes (D16, `lifecycle.py`)."""
    stated: date | None = record.get(END_FIELDS[kind])
    return {
        "decided_on": record["decided_on"].isoformat(),
        "severity": record.get("severity"),
        "procedure": record.get("procedure"),
        "subject_type": record["counterpart"].get("category"),
        "stated_end": stated.isoformat() if stated else None,
    }


def ruling_of(ctx: Context, state: dict[str, Any]) -> Ruling:
    """The rule book's ruling on a relayed record, from the facts `repair_facts` kept in its state (a state kept
    before them has its annotated end as the stated one)."""
    stated = state.get("stated_end", state.get("publicity_end"))
    return ctx.settings.federation.rules.decide(
        state["kind"],
        date.fromisoformat(state["decided_on"]),
        severity=state.get("severity"),
        procedure=state.get("procedure"),
        subject_type=state.get("subject_type"),
        department=state["department"],
        stated_end=date.fromisoformat(stated) if stated else None,
    )


async def _drop_tiers(ctx: Context, state: dict[str, Any], tiers: dict[str, bool]) -> None:
    """A newer version no longer goes to a tier that holds the earlier one (e.g. a penalty updated to 简易程序
    leaves 信用中国, D11), or goes there only not for publication: the earlier version is withdrawn there
    (SUPERSEDED) before the newer one is relayed. A state from before `public` was kept counts as published."""
    public = state.get("public", state["tiers"])
    dropped = [t for t in state["tiers"] if t not in tiers or (t in public and not tiers[t])]
    if dropped:
        await withdraw(ctx, state, dropped, "SUPERSEDED")


async def mark_objection(ctx: Context, state: dict[str, Any], under_objection: bool) -> list[str]:
    """Relay the version the tiers hold again with `annotations.under_objection` set (D15); the tiers it went to.
    Same version, so the sinks replace the row in place (docs/sinks.md)."""
    record_id = state["record_id"]
    if not state.get("bodies"):  # relayed by a worker from before bodies were kept: nothing to relay again
        return []
    bodies: dict[str, str] = {}
    for flag, text in state["bodies"].items():
        _, body = ctx.codec.decode(base64.b64decode(text))
        if body["annotations"]["under_objection"] == under_objection:
            return []  # already so (a decision that changes nothing relays nothing)
        body["annotations"] = {**body["annotations"], "under_objection": under_objection}
        bodies[flag] = base64.b64encode(ctx.codec.encode(SCHEMA_NAME[state["kind"]], body)).decode()
    for tier in state["tiers"]:
        raw = base64.b64decode(bodies[str(tier in state["public"])])
        await ctx.emit(ctx.relay[tier], record_id.encode(), raw)
    ctx.state(record_id)["relayed"] = {**state, "bodies": bodies}
    return list(state["tiers"])


async def sweep_publicity(ctx: Context) -> None:
    """D14: send every record of this worker whose publicity end (inclusive) is before today (China) to expire."""
    today = china_date(now_utc())
    due = 0
    for record_id, entry in list(ctx.records.items()):
        state = entry.get("relayed")
        if state is None:
            continue
        end = state.get("publicity_end")
        if state["tiers"] and end is not None and date.fromisoformat(end) < today:
            due += 1
            await ctx.emit(
                ctx.expiry.get_topic_name(),
                record_id.encode(),
                json.dumps({"version": state["version"]}).encode(),
            )
    log.info("sweep.done", expired=due)


def _state(
    env: dict[str, Any], labels: Labels, annotations: dict[str, Any], tiers: list[str]
) -> dict[str, Any]:
    end = annotations.get("publicity_end")
    return {
        "record_id": env["record_id"],
        "version": env["version"],
        "receipt_id": env["receipt_id"],
        "source_node": env["source_node"],
        "submitted_at": int(env["submitted_at"].timestamp() * 1000),
        "kind": labels.kind,
        "district": labels.district,
        "department": labels.department,
        "publicity_end": end.isoformat() if end else None,
        "tiers": tiers,
    }


async def withdraw(ctx: Context, state: dict[str, Any], tiers: list[str], why: str) -> None:
    """A Withdrawal to every tier in `tiers`, and the record's state with no tier left. The RELAYED_* and
    WITHDRAWN receipts come from the sinks, once they have stored what the worker sent (docs/sinks.md)."""
    labels = Labels(state["kind"], state["district"], state["department"])
    counted = {**state, "submitted_at": _from_ms(state["submitted_at"])}
    for tier in tiers:
        await ctx.send(
            ctx.relay[tier],
            state["record_id"],
            "sgs.Withdrawal",
            {
                "record_id": state["record_id"],
                "version": state["version"],
                "receipt_id": state["receipt_id"],
                "source_node": state["source_node"],
                "reason": why,
                "at": now_utc(),
            },
        )
        metrics.labelled(metrics.WITHDRAWN, tier, why).inc()
        ctx.count(counted, labels, f"withdrawn.{tier}.{why}")
    if tiers:
        log.info("record.withdrawn", record_id=state["record_id"], reason=why, tiers=tiers)
    ctx.state(state["record_id"])["relayed"] = {**state, "tiers": []}


async def expire(ctx: Context, event: faust.EventT) -> None:
    """D14: the sweep found the record past its publicity end; withdraw it unless it changed since."""
    record_id = (event.key or b"").decode()
    wanted = json.loads(event.value)["version"]
    state = ctx.state(record_id).get("relayed")
    if state is None or state["version"] != wanted or not state["tiers"]:
        return
    await withdraw(ctx, state, list(state["tiers"]), "EXPIRED")


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
