"""Decisions taken on a record already reported (`sgs.LifecycleDecision`, topic `sgs.decisions`): an objection
raised and its outcome (D15), an approved credit repair (D16). What a department may send (the district node parses
it here, D12) and when a credit repair is admissible (the municipal worker checks it against the record it holds).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from sgs.domain.identifiers import uscc_issues
from sgs.domain.issues import ROW, Issue, quote
from sgs.domain.records import parse_cell
from sgs.domain.rulebook import Period, Ruling
from sgs.domain.template import schema_fields
from sgs.domain.validation import DECISION_DATE_FLOOR

DECISION_SCHEMA = "sgs.LifecycleDecision"
# Decisions that take the record down everywhere, with the sgs.Withdrawal reason they carry (D15, D16).
WITHDRAWAL_REASON = {"OBJECTION_TAKEN_DOWN": "OBJECTION_UPHELD", "REPAIR_APPROVED": "REPAIRED"}
# Decisions that open or close an objection (D15): the record stays published, marked `under_objection` or not.
# A corrected record arrives as a new version through the normal path; the decision only clears the mark.
OBJECTION_OPEN = {"OBJECTION_RAISED": True, "OBJECTION_KEPT": False, "OBJECTION_CORRECTED": False}
# D16: the repairs remembered per subject, the latest by date. A repair matters only to penalties decided in the
# year after it, and a penalty can be repaired only while it is published (a year or three, D14), so the latest few are
# the ones a repair decided now can meet; a subject with more repairs than this is not expected.
REPAIRS_KEPT = 8
# The counterpart's codes that name a subject (D3), in the order one is taken: a natural person by 证件号码; anyone
# else by 统一社会信用代码, or in the transition period by the first other code the record has (D1).
_SUBJECT_CODES = {
    True: ("id_no",),
    False: ("uscc", "org_code", "business_reg_no", "tax_reg_no", "institution_cert_no", "social_org_reg_no"),
}


def parse_decision(data: Any, today: date) -> tuple[dict[str, Any] | None, list[Issue]]:
    """A department's decision, by Avro field names or the schema's Chinese `column` names, as the fields of
    `sgs.LifecycleDecision` a department fills in, with every issue (D12). None when it is not an object."""
    if not isinstance(data, Mapping):
        return None, [Issue(ROW, "row.format", "决定应为对象（字段名到值）", quote(type(data).__name__))]
    fields = schema_fields(DECISION_SCHEMA)
    by_key = {f.name: f for f in fields} | {f.column: f for f in fields}
    body: dict[str, Any] = {f.name: None for f in fields}
    issues: list[Issue] = []
    for key, raw in data.items():
        f = by_key.get(str(key).strip())
        if f is None:
            issues.append(Issue(quote(str(key)) or "", "column.unknown", "决定中没有此字段", quote(raw)))
            continue
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            continue
        value, issue = parse_cell(f, raw)
        if issue is not None:
            issues.append(issue)
        body[f.name] = value
    unreadable = {i.field for i in issues}
    for f in fields:
        if not f.nullable and body[f.name] is None and f.column not in unreadable:
            issues.append(Issue(f.column, "required", f"{f.column}不能为空"))
    by_name = {f.name: f for f in fields}
    if body["authority_uscc"] is not None:
        body["authority_uscc"] = body["authority_uscc"].upper()
        issues += uscc_issues(by_name["authority_uscc"].column, body["authority_uscc"])
    if body["decided_on"] is not None and body["decided_on"] > today:
        issues.append(
            Issue(by_name["decided_on"].column, "date.future", "决定日期晚于今天", str(body["decided_on"]))
        )
    if body["decided_on"] is not None and body["decided_on"] < DECISION_DATE_FLOOR:
        issues.append(
            Issue(
                by_name["decided_on"].column,
                "date.floor",
                f"决定日期早于 {DECISION_DATE_FLOOR.isoformat()}",
                str(body["decided_on"]),
            )
        )
    return body, issues


def repair_refusal(ruling: Ruling, repair_on: date) -> Issue | None:
    """Why a credit repair approved on `repair_on` cannot take the record down, or None when it can (D16): the
    rule book's ruling on the record says whether it is repairable at all (a licence is not; 严重失信 is not under
    the seeds, 003 (十六)) and from when (the seeds: 3 months of publicity; 令第36号: the tier's 最短公示期)."""
    if ruling.repair_refusal is not None:
        rule, message = ruling.repair_refusal
        return Issue("记录标识", rule, message, ruling.tier)
    assert ruling.repair_earliest is not None
    if repair_on < ruling.repair_earliest:
        return Issue(
            "决定日期",
            "repair.too_early",
            f"未满最短公示期（{ruling.rule_set}）：处罚决定日期 {ruling.decided_on}，最早可于 "
            f"{ruling.repair_earliest} 修复",
            str(repair_on),
        )
    return None


def subject_key(counterpart: Mapping[str, Any]) -> str | None:
    """Who a record is on, as the subject's repair history is keyed (D16, D18): the first code of the counterpart
    (`_SUBJECT_CODES`), as a digest, so that the worker's repair topic and table carry no ID number (D17). None
    when the record names no code. A subject named by 统一社会信用代码 in one record and only by a transition-period
    code in another is two subjects here."""
    natural = counterpart.get("category") == "NATURAL_PERSON"
    for name in _SUBJECT_CODES[natural]:
        code = str(counterpart.get(name) or "").strip().upper()
        if code:
            return hashlib.sha256(f"{name}:{code}".encode()).hexdigest()[:32]
    return None


def repeat_refusal(decided_on: date, repaired_on: Iterable[date], bar: Period | None) -> Issue | None:
    """Why a penalty decided on `decided_on` is not repairable because its subject had a repair within `bar`
    before (the seeds' rule set: a year, D16, 003 (十六) "在信用修复后一年内再次受到行政处罚的，不予信用修复"), or
    None; no bar when the rule set has none. The year after a repair on R is counted as the civil code counts
    periods (民法典 第二百零一条): it starts the day after R and ends on the corresponding day a year later,
    inclusive; so a penalty decided on R itself, or before, is not barred by it."""
    if bar is None:
        return None
    for repaired in sorted(repaired_on, reverse=True):
        end = bar.after(repaired)
        if repaired < decided_on <= end:
            return Issue(
                "记录标识",
                "repair.within_year_of_repair",
                f"行政相对人于 {repaired} 信用修复后 {bar} 内（至 {end}）再次受到行政处罚（处罚决定日期 {decided_on}），"
                "不予信用修复",
                str(decided_on),
            )
    return None


def record_repair(
    history: Mapping[str, str], record_id: str, decided_on: date, repair_on: date, bar: Period | None
) -> tuple[dict[str, str], Issue | None]:
    """A subject's repair history (record id -> repair date, ISO) after a repair of the penalty `record_id`
    (decided on `decided_on`) approved on `repair_on`: the repair added, or the history unchanged and why the
    repair is refused (`repeat_refusal`). A penalty already in the history is repaired already: the same decision
    delivered again, or another decision on it, changes nothing and is not refused (once taken down, a record
    is not taken down twice). Only the latest `REPAIRS_KEPT` repairs are kept."""
    if record_id in history:
        return dict(history), None
    refusal = repeat_refusal(decided_on, (date.fromisoformat(day) for day in history.values()), bar)
    if refusal is not None:
        return dict(history), refusal
    latest = sorted({**history, record_id: repair_on.isoformat()}.items(), key=lambda item: item[1])
    return dict(latest[-REPAIRS_KEPT:]), None
