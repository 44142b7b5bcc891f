"""Stage 4, timeliness (D5, D6): the record, annotated, to sgs.accepted.{license,penalty}, late alerts on
sgs.alerts, and the ACCEPTED receipt.

Working days are counted on the official calendar (`sgs.domain.workdays`) in China's dates: from the day after the
decision to the day the district node received the record (D5: limit `timeliness.publish_working_days`), and from
the department's portal publication to that day (D6: `timeliness.report_working_days`). Here the record gets its
`annotations`, and a version overtaken meanwhile by a newer one (a held record, D4) is dropped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.worker import metrics
from services.worker.context import Context, Labels, log, now_utc
from services.worker.stages.decide import objection_open
from services.worker.stages.reconcile import Reconciliation
from sgs.domain.kinds import SCHEMA_NAME
from sgs.domain.rulebook import Ruling, label
from sgs.domain.workdays import china_date
from sgs.kafka import topics


async def annotate(
    ctx: Context, record: dict[str, Any], checked: Reconciliation
) -> tuple[dict[str, Any], Ruling] | None:
    """The record with its `annotations`, accepted, and the rule book's ruling on it (which the route stage relays
    by); None when a newer version overtook it while it was held."""
    env = record["envelope"]
    kind = env["kind"].lower()
    labels = ctx.labels(kind, env)
    newest = ctx.state(env["record_id"]).get("seen")
    if newest is not None and newest["version"] > env["version"]:
        metrics.labelled(metrics.RECORDS, "timeliness", "superseded", kind, labels.district).inc()
        return None
    timeliness = ctx.settings.federation.timeliness
    calendar = ctx.settings.calendar
    submitted_on = china_date(env["submitted_at"])
    days, provisional = calendar.working_days_between(record["decided_on"], submitted_on)
    metrics.labelled(metrics.WORKING_DAYS, "D5").observe(days)
    late = {"D5": (days, timeliness.publish_working_days)} if days > timeliness.publish_working_days else {}
    portal_days = None
    if env["published_at"] is not None:
        portal_days, portal_provisional = calendar.working_days_between(
            china_date(env["published_at"]), submitted_on
        )
        provisional = provisional or portal_provisional
        metrics.labelled(metrics.WORKING_DAYS, "D6").observe(portal_days)
        if portal_days > timeliness.report_working_days:
            late["D6"] = (portal_days, timeliness.report_working_days)
    ruling = ctx.settings.federation.rules.ruling(
        kind, record
    )  # D11, D14: the set in force on the decision date
    outcome = checked.outcome
    record["annotations"] = {
        "reconciliation": outcome,
        "working_days_to_submit": days,
        "late": "D5" in late,
        "portal_to_submit_working_days": portal_days,
        "calendar_provisional": provisional,
        "publicity_end": ruling.publicity_end,
        "for_publication": any(ruling.relay.values()) if ruling.relay else True,
        "masked": False,  # the municipal copy keeps the identifiers; the relays mask them (D17)
        # D15: a licence's 当前状态 says so, or an objection raised by a decision is open (lifecycle.py).
        "under_objection": record.get("status") == "OBJECTION" or objection_open(ctx, env["record_id"]),
        "rule_set": ruling.rule_set,
        "rule_floor": ruling.floor,
        "tier": ruling.tier,
        "accepted_at": now_utc(),
    }
    await ctx.send(ctx.accepted[kind], env["record_id"], SCHEMA_NAME[kind], record)
    for rule, (taken, limit) in late.items():
        await _late(ctx, env, labels, rule, taken, limit, provisional)
    ctx.count(env, labels, "accepted")
    # What the monthly bulletin needs beyond (D8, docs/report.md): published (D11's exceptions are not), dated
    # by the portal (so D6 is measurable), and clean (优质数据, 003 (十三): MATCHED, late by neither D5 nor D6).
    if record["annotations"]["for_publication"]:
        ctx.count(env, labels, "published")
    if portal_days is not None:
        ctx.count(env, labels, "portal_dated")
    if outcome == "MATCHED" and not late:
        ctx.count(env, labels, "clean")
    if ruling.tier is not None:  # penalties by the rule set and tier that decided them (docs/report.md)
        ctx.count(env, labels, f"tier.{ruling.rule_set}.{ruling.tier}")
    metrics.labelled(metrics.RECORDS, "timeliness", "accepted", kind, labels.district).inc()
    await ctx.receipt(
        env, "ACCEPTED", detail=_detail(outcome, checked.registered_name, days, late, provisional, ruling)
    )
    return record, ruling


async def _late(
    ctx: Context, env: dict[str, Any], labels: Labels, rule: str, taken: int, limit: int, provisional: bool
) -> None:
    metrics.labelled(metrics.LATE, labels.district, labels.department, labels.kind, rule).inc()
    ctx.count(env, labels, f"late.{rule}")
    log.info("record.late", record_id=env["record_id"], rule=rule, working_days=taken, limit=limit)
    await ctx.send(
        topics.ALERTS,
        env["division_code"],
        "sgs.LateAlert",
        {
            "record_id": env["record_id"],
            "division_code": env["division_code"],
            "department": env["department"],
            "kind": env["kind"],
            "rule": rule,
            "working_days": taken,
            "limit": limit,
            "provisional": provisional,
            "at": datetime.now(UTC),
        },
    )


def _detail(
    outcome: str,
    registered: str | None,
    days: int,
    late: dict[str, tuple[int, int]],
    provisional: bool,
    ruling: Ruling,
) -> str:
    """The receipt's one line for the sender: reconciliation outcome (D13), timeliness (D5, D6) and the rules that
    decided publication (rule set, floor, tier, publicity end: D11, D14), in Chinese."""
    parts = [f"比对结果 {outcome}" + (f"（登记名称：{registered}）" if outcome == "NAME_MISMATCH" else "")]
    parts.append(f"决定后第 {days} 个工作日报送")
    parts += [f"{rule} 逾期：{taken} 个工作日，限 {limit} 个" for rule, (taken, limit) in late.items()]
    if provisional:
        parts.append("日历为暂定")
    parts.append(
        f"规则集 {ruling.rule_set}"
        + (f"（下限 {ruling.floor}）" if ruling.floor else "")
        + (f"，失信程度 {label('tier', ruling.tier)}" if ruling.tier else "")
        + f"，公示至 {ruling.publicity_end or '长期'}"
    )
    return "；".join(parts)
