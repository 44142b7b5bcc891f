"""Decisions on a record already reported (`sgs.decisions`, `sgs.LifecycleDecision`; D15, D16): the `decide` agent.

Decisions are keyed by record id like the records, so the record's `records` entry is in the decision's partition
on this worker. What the route stage kept there ("relayed": the tiers holding the record, the bytes each holds, the
D16 terms) decides:
- OBJECTION_TAKEN_DOWN (objection upheld, D15) and an admissible REPAIR_APPROVED (D16): a Withdrawal to every
  tier holding the record (OBJECTION_UPHELD / REPAIRED), through the same path as a revocation (`route.withdraw`);
- a repair the record's own terms allow still needs its subject's history (D16: not within a year after a repair
  of the same subject), which is kept by subject, not by record: it goes to <app>-repairs keyed by subject, where
  the `subject` agent judges it against the `subjects` table and records it, and comes back keyed by record id
  through <app>-repair-outcomes to the `repair` agent, in the record's partition again, which withdraws or
  refuses it like any other decision;
- OBJECTION_RAISED / OBJECTION_KEPT / OBJECTION_CORRECTED: the held version relayed again with
  `annotations.under_objection` set or cleared (`route.mark_objection`); the mark also goes on the record's later
  versions while the objection is open (`objection_open`, read by the timeliness stage). A correction itself is a
  new version through the normal path.
- A decision on a record this worker does not hold is held (`holding.py`, <app>-held-decisions) and tried again
  until `--unknown-record-hold-s` has passed: after a worker's crash the decision can be read before the record it
  follows is read again.
- A decision that cannot apply is rejected with its reason on `sgs.rejected` and a REJECTED receipt: a record this
  worker still does not hold after that (`unknown_record`: the district node sends a decision only for a record the
  municipal platform accepted, so this is a wrong id or a record that was never relayed), a record no tier holds
  any more (`not_published`), a repair D16 does not allow (`repair.*`: `sgs.domain.lifecycle.repair_refusal` for the
  record's own terms as the rule book rules on them, `sgs.domain.lifecycle.repeat_refusal` for its subject's
  history).
- The same decision (kind, date, deciding body) again is absorbed with an ACCEPTED receipt saying so, unless it is
  the very message applied before (same offset: redelivery after a crash, applied again; a withdrawal sent twice
  or a mark set twice changes nothing at the sinks).
Every outcome answers the decision's own receipt; a withdrawal also answers the record's, with WITHDRAWN from
each sink that takes it down.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import date
from typing import Any

import faust

from services.worker import holding, metrics
from services.worker.context import WORKER_ONLY, Context, Step, guarded, log, reason
from services.worker.stages import route
from sgs.domain.lifecycle import (
    DECISION_SCHEMA,
    OBJECTION_OPEN,
    WITHDRAWAL_REASON,
    record_repair,
    repair_refusal,
)
from sgs.domain.rulebook import Period
from sgs.serialization.codec import SerializationError

STAGE = "decision"
OFFSET = "sgs-decision-offset"  # a held decision's offset on `sgs.decisions`
_MARK = {True: "已标注异议", False: "已清除异议标注"}


@dataclass(frozen=True)
class Decision:
    """A decision in hand: its bytes as sent (what a rejection carries), its fields, and the offset it came at on
    `sgs.decisions` (which tells a redelivery of the very message from the same decision sent again)."""

    raw: bytes
    body: dict[str, Any]
    offset: int

    @property
    def record_id(self) -> str:
        return str(self.body["record_id"])

    @property
    def kind(self) -> str:
        return self.record_id.split(":", 1)[0]

    @property
    def identity(self) -> str:
        """The same decision, however often it is sent: kind, date and deciding body, per record."""
        body = self.body
        return f"{body['decision']}|{body['decided_on'].isoformat()}|{body['authority_uscc']}"

    @property
    def envelope(self) -> dict[str, Any]:
        """The decision's own identity in the shape receipts and rejections take (an envelope without a
        version)."""
        body = self.body
        return {
            "receipt_id": body["receipt_id"],
            "record_id": body["record_id"],
            "version": None,
            "source_node": body["source_node"],
            "department": body["department"],
            "submitted_at": body["submitted_at"],
        }


def register(ctx: Context) -> None:
    @ctx.app.agent(ctx.decisions, name="decide")
    async def apply_decisions(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await guarded(ctx, STAGE, event, "unknown", _apply)

    @ctx.app.agent(ctx.held_decisions, name="held_decision")
    async def retry_held_decisions(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await holding.wait_for_retry(event)
            await guarded(ctx, STAGE, event, "unknown", _retry)

    @ctx.app.agent(ctx.repairs, name="subject")
    async def judge_repairs(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await guarded(ctx, "subject", event, "penalty", _judge)

    @ctx.app.agent(ctx.repair_outcomes, name="repair")
    async def settle_repairs(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await guarded(ctx, STAGE, event, "penalty", _settle)

    async def _apply(event: faust.EventT, step: Step) -> None:
        await apply(ctx, event)

    async def _retry(event: faust.EventT, step: Step) -> None:
        # held by this worker, which checked the node's signature then
        if await ctx.signed(event, "unknown", WORKER_ONLY):
            await retry_held(ctx, event)

    async def _judge(event: faust.EventT, step: Step) -> None:
        if await ctx.signed(event, "penalty", WORKER_ONLY):
            await judge_repair(ctx, event)

    async def _settle(event: faust.EventT, step: Step) -> None:
        if await ctx.signed(event, "penalty", WORKER_ONLY):
            await settle_repair(ctx, event)


def objection_open(ctx: Context, record_id: str) -> bool:
    """Whether an objection raised by a decision is still open: every new version is marked too (D15)."""
    return ctx.state(record_id).get("objection") is True


async def apply(ctx: Context, event: faust.EventT) -> None:
    """A decision from `sgs.decisions`, in its record's partition."""
    raw = event.value if isinstance(event.value, bytes) else b""
    signer = await ctx.signed(event, "unknown", ctx.node_signers)
    if signer is None:
        return
    try:
        name, body = ctx.codec.decode(raw)
    except SerializationError as exc:
        await ctx.reject(
            "decode", "unknown", event.key, raw, [reason("-", "decode", f"无法解析的消息：{exc}")]
        )
        return
    if name != DECISION_SCHEMA:
        await ctx.reject(
            "decode", "unknown", event.key, raw, [reason("-", "schema", f"决定主题不接受 {name} 记录", name)]
        )
        return
    if signer != ctx.node_signer_of(body):  # only the node of the department's district (D10, issue 16)
        await ctx.refuse(
            event, "unknown", "signature.wrong_signer", f"{signer} 不是部门 {body['department']} 的节点"
        )
        return
    decision = Decision(raw, body, event.message.offset)
    key = event.key.decode("utf-8", "replace") if isinstance(event.key, bytes) else None
    if key != decision.record_id:  # the key decides the partition, and so whose `records` entry is at hand
        await _refuse(ctx, decision, reason("-", "key_mismatch", "消息键与记录标识不一致", key))
        return
    await _decide(ctx, decision, held_since=None)


async def retry_held(ctx: Context, event: faust.EventT) -> None:
    """A decision held because its record was not known (`_applicable`), checked again."""
    _, body = ctx.codec.decode(event.value)
    offset = int(holding.header(event, OFFSET) or -1)
    await _decide(ctx, Decision(event.value, body, offset), holding.held_since(event))


async def _decide(ctx: Context, decision: Decision, held_since: int | None) -> None:
    relayed = await _applicable(ctx, decision, held_since)
    if relayed is None:
        return
    body = decision.body
    if body["decision"] == "REPAIR_APPROVED":  # D16, by the rules in force on the penalty's decision date
        ruling = route.ruling_of(ctx, relayed)
        refusal = repair_refusal(ruling, body["decided_on"])
        if refusal is not None:
            await _refuse(ctx, decision, refusal.as_reason())
            return
        await _to_subject(ctx, decision, relayed, ruling.repeat_bar)
        return
    await _execute(ctx, decision, relayed)


async def _applicable(ctx: Context, decision: Decision, held_since: int | None) -> dict[str, Any] | None:
    """The record's `relayed` state when the decision can apply to it; otherwise None, with the decision absorbed
    as a duplicate, held until its record is known, or refused."""
    state = ctx.state(decision.record_id)
    done = state.get("decisions") or {}
    if decision.identity in done and done[decision.identity] != decision.offset:
        _count(ctx, decision, "duplicate")
        await ctx.receipt(decision.envelope, "ACCEPTED", detail="同一决定已处理，未重复执行")
        return None
    relayed: dict[str, Any] | None = state.get("relayed")
    if relayed is None and await _hold(ctx, decision, held_since):
        return None
    if relayed is None:
        issue = reason("记录标识", "unknown_record", "市平台没有此记录（未受理或未报送）", decision.record_id)
        await _refuse(ctx, decision, issue)
        return None
    if not relayed["tiers"]:
        issue = reason(
            "记录标识", "not_published", "记录已不在任何平台公示（已撤下或公示期满）", decision.record_id
        )
        await _refuse(ctx, decision, issue)
        return None
    return relayed


async def _execute(ctx: Context, decision: Decision, relayed: dict[str, Any]) -> None:
    """Apply an admissible decision to the record and answer its receipt."""
    what = decision.body["decision"]
    state = ctx.state(decision.record_id)
    state["decisions"] = {**(state.get("decisions") or {}), decision.identity: decision.offset}
    if what in WITHDRAWAL_REASON:  # D15 upheld, D16 approved
        state["objection"] = False
        why = WITHDRAWAL_REASON[what]
        tiers = list(relayed["tiers"])
        await route.withdraw(ctx, relayed, tiers, why)
        detail = f"已撤下（{why}）：{', '.join(tiers)}"
    else:  # D15 raised, kept, corrected
        state["objection"] = OBJECTION_OPEN[what]
        tiers = await route.mark_objection(ctx, relayed, OBJECTION_OPEN[what])
        detail = _MARK[OBJECTION_OPEN[what]] + (f"：{', '.join(tiers)}" if tiers else "（无变化）")
    _count(ctx, decision, what.lower())
    log.info("decision.applied", record_id=decision.record_id, decision=what, tiers=tiers)
    await ctx.receipt(decision.envelope, "ACCEPTED", detail=detail)


async def _to_subject(ctx: Context, decision: Decision, relayed: dict[str, Any], bar: Period | None) -> None:
    """D16: a repair the record's own terms allow, to its subject's partition (<app>-repairs, keyed by subject)
    with what the subject's history is checked against: the penalty's decision date and its rule set's bar on a
    repair soon after another (None: no bar)."""
    subject = relayed.get("subject")
    if subject is None:  # no code on the record, or relayed before subjects were kept
        issue = reason(
            "记录标识",
            "repair.subject_unknown",
            "市平台没有此记录的行政相对人代码（记录未载明，或在核对修复记录之前报送：可报送新版本），无法核对其信用修复记录",
            decision.record_id,
        )
        await _refuse(ctx, decision, issue)
        return
    message = {
        "decision": base64.b64encode(decision.raw).decode(),
        "offset": decision.offset,
        "record_id": decision.record_id,
        "penalty_decided_on": relayed["decided_on"],
        "repair_on": decision.body["decided_on"].isoformat(),
        "repeat_bar": str(bar) if bar is not None else None,
    }
    await ctx.emit(ctx.repairs.get_topic_name(), subject.encode(), json.dumps(message).encode())


async def judge_repair(ctx: Context, event: faust.EventT) -> None:
    """D16, in the subject's partition: refuse the repair of a penalty decided within a year after a repair of the
    same subject, else record the repair (`sgs.domain.lifecycle.record_repair`, idempotent per record); the outcome back
    to the record's partition (<app>-repair-outcomes, keyed by record id)."""
    subject = (event.key or b"").decode()
    message = json.loads(event.value)
    history = ctx.subjects.get(subject) or {}
    updated, refusal = record_repair(
        history,
        message["record_id"],
        date.fromisoformat(message["penalty_decided_on"]),
        date.fromisoformat(message["repair_on"]),
        Period.parse(message["repeat_bar"]) if message.get("repeat_bar") else None,
    )
    if updated != history:
        ctx.subjects[subject] = updated
    outcome = {**message, "refusal": refusal.as_reason() if refusal is not None else None}
    await ctx.emit(
        ctx.repair_outcomes.get_topic_name(), message["record_id"].encode(), json.dumps(outcome).encode()
    )


async def settle_repair(ctx: Context, event: faust.EventT) -> None:
    """D16, back in the record's partition: the repair refused by its subject's history, or applied like any other
    decision (checked again: the record may have been withdrawn, or the decision applied, meanwhile)."""
    message = json.loads(event.value)
    raw = base64.b64decode(message["decision"])
    _, body = ctx.codec.decode(raw)
    decision = Decision(raw, body, message["offset"])
    if message["refusal"] is not None:
        await _refuse(ctx, decision, message["refusal"])
        return
    relayed = await _applicable(ctx, decision, held_since=None)
    if relayed is not None:
        await _execute(ctx, decision, relayed)


async def _hold(ctx: Context, decision: Decision, held_since: int | None) -> bool:
    """Hold a decision whose record is not known yet, keeping the offset it came at (its identity as a message)."""
    held = await holding.hold(
        ctx,
        ctx.held_decisions.get_topic_name(),
        decision.record_id.encode(),
        decision.raw,
        ctx.settings.unknown_record_hold_s,
        held_since,
        headers={OFFSET: str(decision.offset).encode()},
    )
    if held:
        _count(ctx, decision, "held")
    return held


async def _refuse(ctx: Context, decision: Decision, issue: dict[str, Any]) -> None:
    # Not counted in the day aggregates: the bulletin counts records, and a decision is not one (D8).
    await ctx.reject(
        STAGE,
        decision.kind,
        decision.record_id.encode(),
        decision.raw,
        [issue],
        decision.envelope,
        counted=False,
    )


def _count(ctx: Context, decision: Decision, outcome: str) -> None:
    district = ctx.labels(decision.kind, decision.envelope).district
    metrics.labelled(metrics.RECORDS, STAGE, outcome, decision.kind, district).inc()
