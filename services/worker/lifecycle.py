"""Decisions on a record already reported (`sgs.decisions`, `sgs.LifecycleDecision`; D15, D16): the `decide` agent.

Decisions are keyed by record id like the records, so the record's `records` entry is in the decision's partition
on this worker. What the route stage kept there ("relayed": the tiers holding the record, the bytes each holds, the
D16 terms) decides:
- OBJECTION_TAKEN_DOWN (objection upheld, D15) and an admissible REPAIR_APPROVED (D16): a Withdrawal to every
  tier holding the record (OBJECTION_UPHELD / REPAIRED), through the same path as a revocation (`route.withdraw`);
- OBJECTION_RAISED / OBJECTION_KEPT / OBJECTION_CORRECTED: the held version relayed again with
  `annotations.under_objection` set or cleared (`route.mark_objection`); the mark also goes on the record's later
  versions while the objection is open (`objection_open`, read by the timeliness stage). A correction itself is a
  new version through the normal path.
- A decision that cannot apply is rejected with its reason on `sgs.rejected` and a REJECTED receipt: a record this
  worker does not hold (`unknown_record`: the district node sends a decision only for a record the municipal
  platform accepted, so this is a wrong id or a record that was never relayed), a record no tier holds any more
  (`not_published`), a repair D16 does not allow (`repair.*`, `sgs.lifecycle.repair_refusal`).
- The same decision (kind, date, deciding body) again is absorbed with an ACCEPTED receipt saying so, unless it is
  the very message applied before (same offset: redelivery after a crash, applied again; a withdrawal sent twice
  or a mark set twice changes nothing at the sinks).
Every outcome answers the decision's own receipt; a withdrawal also answers the record's, with WITHDRAWN from
each sink that takes it down.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import faust

from services.worker import metrics, route
from services.worker.pipeline import Pipeline, Step, guarded, log, reason
from sgs import topics
from sgs.lifecycle import DECISION_SCHEMA, OBJECTION_OPEN, WITHDRAWAL_REASON, repair_refusal
from sgs.serialization import SerializationError

STAGE = "decision"
_MARK = {True: "已标注异议", False: "已清除异议标注"}


def register(pipe: Pipeline) -> None:
    decisions = pipe.app.topic(
        topics.DECISIONS, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )

    @pipe.app.agent(decisions, name="decide")
    async def apply_decisions(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await guarded(pipe, STAGE, event, "unknown", _apply)

    async def _apply(event: faust.EventT, step: Step) -> None:
        await apply(pipe, event)


def objection_open(pipe: Pipeline, record_id: str) -> bool:
    """Whether an objection raised by a decision is still open: every new version is marked too (D15)."""
    return pipe.state(record_id).get("objection") is True


async def apply(pipe: Pipeline, event: faust.EventT) -> None:
    raw = event.value if isinstance(event.value, bytes) else b""
    try:
        name, decision = pipe.codec.decode(raw)
    except SerializationError as exc:
        await pipe.reject(
            "decode", "unknown", event.key, raw, [reason("-", "decode", f"无法解析的消息：{exc}")]
        )
        return
    if name != DECISION_SCHEMA:
        await pipe.reject(
            "decode", "unknown", event.key, raw, [reason("-", "schema", f"决定主题不接受 {name} 记录", name)]
        )
        return
    record_id, what = decision["record_id"], decision["decision"]
    kind = record_id.split(":", 1)[0]
    env = _identity(decision)
    key = event.key.decode("utf-8", "replace") if isinstance(event.key, bytes) else None
    if key != record_id:  # the key decides the partition, and so whose `records` entry is at hand
        await _refuse(pipe, event, env, kind, reason("-", "key_mismatch", "消息键与记录标识不一致", key))
        return
    state = pipe.state(record_id)
    relayed = state.get("relayed")
    done = state.get("decisions") or {}
    identity = f"{what}|{decision['decided_on'].isoformat()}|{decision['authority_uscc']}"
    offset = event.message.offset
    if identity in done and done[identity] != offset:
        _count(pipe, kind, env, "duplicate")
        await pipe.receipt(env, "ACCEPTED", detail="同一决定已处理，未重复执行")
        return
    if relayed is None:
        issue = reason("记录标识", "unknown_record", "市平台没有此记录（未受理或未报送）", record_id)
        await _refuse(pipe, event, env, kind, issue)
        return
    if not relayed["tiers"]:
        issue = reason("记录标识", "not_published", "记录已不在任何平台公示（已撤下或公示期满）", record_id)
        await _refuse(pipe, event, env, kind, issue)
        return
    if what == "REPAIR_APPROVED":  # D16
        end = relayed.get("publicity_end")
        refusal = repair_refusal(
            relayed["kind"],
            relayed.get("severity"),
            date.fromisoformat(relayed["decided_on"]),
            date.fromisoformat(end) if end else None,
            decision["decided_on"],
        )
        if refusal is not None:
            await _refuse(pipe, event, env, kind, refusal.as_reason())
            return
    state["decisions"] = {**done, identity: offset}
    if what in WITHDRAWAL_REASON:  # D15 upheld, D16 approved
        state["objection"] = False
        why = WITHDRAWAL_REASON[what]
        tiers = list(relayed["tiers"])
        await route.withdraw(pipe, relayed, tiers, why)
        detail = f"已撤下（{why}）：{', '.join(tiers)}"
    else:  # D15 raised, kept, corrected
        state["objection"] = OBJECTION_OPEN[what]
        tiers = await route.mark_objection(pipe, relayed, OBJECTION_OPEN[what])
        detail = _MARK[OBJECTION_OPEN[what]] + (f"：{', '.join(tiers)}" if tiers else "（无变化）")
    _count(pipe, kind, env, what.lower())
    log.info("decision.applied", record_id=record_id, decision=what, tiers=tiers)
    await pipe.receipt(env, "ACCEPTED", detail=detail)


def _identity(decision: dict[str, Any]) -> dict[str, Any]:
    """The decision's own identity in the shape receipts and rejections take (an envelope without a version)."""
    return {
        "receipt_id": decision["receipt_id"],
        "record_id": decision["record_id"],
        "version": None,
        "source_node": decision["source_node"],
        "department": decision["department"],
        "submitted_at": decision["submitted_at"],
    }


async def _refuse(
    pipe: Pipeline, event: faust.EventT, env: dict[str, Any], kind: str, issue: dict[str, Any]
) -> None:
    # Not counted in the day aggregates: the bulletin counts records, and a decision is not one (D8).
    await pipe.reject(STAGE, kind, event.key, event.value, [issue], env, counted=False)


def _count(pipe: Pipeline, kind: str, env: dict[str, Any], outcome: str) -> None:
    district = pipe.labels(kind, env).district
    metrics.labelled(metrics.RECORDS, STAGE, outcome, kind, district).inc()
