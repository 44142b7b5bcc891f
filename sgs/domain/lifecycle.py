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
from sgs.domain.periods import add_months, add_years
from sgs.domain.records import parse_cell
from sgs.domain.template import schema_fields

DECISION_SCHEMA = "sgs.LifecycleDecision"
# Decisions that take the record down everywhere, with the sgs.Withdrawal reason they carry (D15, D16).
WITHDRAWAL_REASON = {"OBJECTION_TAKEN_DOWN": "OBJECTION_UPHELD", "REPAIR_APPROVED": "REPAIRED"}
# Decisions that open or close an objection (D15): the record stays published, marked `under_objection` or not.
# A corrected record arrives as a new version through the normal path; the decision only clears the mark.
OBJECTION_OPEN = {"OBJECTION_RAISED": True, "OBJECTION_KEPT": False, "OBJECTION_CORRECTED": False}
REPAIR_AFTER_MONTHS = 3  # D16: at least 3 months of publicity before a repair
REPAIRABLE_PUBLICITY_YEARS = 1  # D16: only a penalty published for 1 year (一般, not 严重失信, D14)
REPAIR_BAR_YEARS = 1  # D16: a penalty within a year after a repair of the same subject is not repairable
# D16: the repairs remembered per subject, the latest by date. A repair matters only to penalties decided in the
# year after it, and a penalty can be repaired only while it is published (a year, D14), so the latest few are
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
            issues.append(Issue(str(key), "column.unknown", "决定中没有此字段", quote(raw)))
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
    return body, issues


def repair_refusal(
    kind: str, severity: str | None, decided_on: date, publicity_end: date | None, repair_on: date
) -> Issue | None:
    """Why a credit repair approved on `repair_on` cannot take the record down, or None when it can (D16,
    003 (十六)): only a penalty, only one published for 1 year (一般; 严重失信 is not repairable, and a period the
    deciding body set longer than a year is not a 1-year penalty, D14), and only after at least 3 months of
    publicity, counted like the publicity period from the penalty's decision date."""
    if kind != "penalty":
        return Issue("记录标识", "repair.not_penalty", "信用修复只适用于行政处罚信息", kind)
    if severity == "SERIOUS":
        return Issue("记录标识", "repair.serious", "严重失信行政处罚信息不予信用修复", severity)
    one_year = add_years(decided_on, REPAIRABLE_PUBLICITY_YEARS)
    if publicity_end is None or publicity_end > one_year:
        return Issue(
            "记录标识",
            "repair.not_one_year",
            f"公示期超过一年（至 {publicity_end or '长期'}）的行政处罚信息不予信用修复",
            str(publicity_end),
        )
    earliest = add_months(decided_on, REPAIR_AFTER_MONTHS)
    if repair_on < earliest:
        return Issue(
            "决定日期",
            "repair.too_early",
            f"公示未满三个月：处罚决定日期 {decided_on}，最早可于 {earliest} 修复",
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


def repeat_refusal(decided_on: date, repaired_on: Iterable[date]) -> Issue | None:
    """Why a penalty decided on `decided_on` is not repairable because its subject had a repair within the year
    before (D16, 003 (十六) "在信用修复后一年内再次受到行政处罚的，不予信用修复"), or None. The year after a repair on R is
    counted as the civil code counts periods (民法典 第二百零一条): it starts the day after R and ends on the
    corresponding day a year later, inclusive; so a penalty decided on R itself, or before, is not barred by it."""
    for repaired in sorted(repaired_on, reverse=True):
        end = add_years(repaired, REPAIR_BAR_YEARS)
        if repaired < decided_on <= end:
            return Issue(
                "记录标识",
                "repair.within_year_of_repair",
                f"行政相对人于 {repaired} 信用修复后一年内（至 {end}）再次受到行政处罚（处罚决定日期 {decided_on}），"
                "不予信用修复",
                str(decided_on),
            )
    return None


def record_repair(
    history: Mapping[str, str], record_id: str, decided_on: date, repair_on: date
) -> tuple[dict[str, str], Issue | None]:
    """A subject's repair history (record id -> repair date, ISO) after a repair of the penalty `record_id`
    (decided on `decided_on`) approved on `repair_on`: the repair added, or the history unchanged and why the
    repair is refused (`repeat_refusal`). A penalty already in the history is repaired already: the same decision
    delivered again, or another decision on it, changes nothing and is not refused (once taken down, a record
    is not taken down twice). Only the latest `REPAIRS_KEPT` repairs are kept."""
    if record_id in history:
        return dict(history), None
    refusal = repeat_refusal(decided_on, (date.fromisoformat(day) for day in history.values()))
    if refusal is not None:
        return dict(history), refusal
    latest = sorted({**history, record_id: repair_on.isoformat()}.items(), key=lambda item: item[1])
    return dict(latest[-REPAIRS_KEPT:]), None
