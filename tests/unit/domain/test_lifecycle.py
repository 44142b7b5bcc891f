"""Credit-repair eligibility (D16) and the decision a department sends (D15, D16), as `sgs.domain.lifecycle` decides them."""

from __future__ import annotations

from datetime import date

import pytest

from sgs.domain.lifecycle import (
    REPAIRS_KEPT,
    parse_decision,
    record_repair,
    repair_refusal,
    repeat_refusal,
    subject_key,
)
from sgs.domain.periods import add_months

DECIDED = date(2026, 10, 9)
ONE_YEAR = date(2027, 10, 9)


def rule(kind: str = "penalty", severity: str | None = "GENERAL", end: date | None = ONE_YEAR,
         on: date = date(2027, 1, 9)) -> str | None:  # fmt: skip
    issue = repair_refusal(kind, severity, DECIDED, end, on)
    return None if issue is None else issue.rule


def test_a_one_year_penalty_is_repairable_from_three_months_after_its_decision() -> None:
    assert rule(on=date(2027, 1, 9)) is None
    assert rule(on=date(2027, 1, 8)) == "repair.too_early"


def test_only_a_general_one_year_penalty_is_repairable() -> None:
    assert rule(kind="license") == "repair.not_penalty"
    assert rule(severity="SERIOUS", end=date(2029, 10, 9)) == "repair.serious"
    assert rule(end=date(2028, 10, 9)) == "repair.not_one_year"  # a longer period the deciding body set (D14)
    assert rule(end=None) == "repair.not_one_year"
    assert rule(end=date(2027, 4, 9)) is None  # a shorter stated period is still within a year


REPAIRED = date(2027, 1, 9)  # a repair of the subject; the year after it ends on 2028-01-09 (D16)


@pytest.mark.parametrize(
    ("decided_on", "barred"),
    [(date(2027, 1, 8), False), (REPAIRED, False), (date(2027, 1, 10), True), (date(2027, 6, 1), True),
     (date(2028, 1, 9), True), (date(2028, 1, 10), False)],
)  # fmt: skip
def test_a_penalty_decided_in_the_year_after_a_repair_of_its_subject_is_not_repairable(
    decided_on: date, barred: bool
) -> None:
    """D16: the year starts the day after the repair and ends on the corresponding day, inclusive (民法典 201)."""
    issue = repeat_refusal(decided_on, [date(2020, 5, 1), REPAIRED])
    assert (issue.rule if issue else None) == ("repair.within_year_of_repair" if barred else None)


def test_a_subjects_repair_history_records_each_penalty_once_and_keeps_the_latest() -> None:
    history, refusal = record_repair({}, "penalty:a", DECIDED, REPAIRED)
    assert (history, refusal) == ({"penalty:a": "2027-01-09"}, None)
    # The same repair again (a redelivery, a second post) is not a second repair, and is not refused.
    assert record_repair(history, "penalty:a", DECIDED, date(2027, 2, 1)) == (history, None)
    # A penalty decided in the year after it: refused, nothing recorded.
    again, refusal = record_repair(history, "penalty:b", date(2027, 3, 1), date(2027, 6, 1))
    assert again == history and refusal is not None and refusal.rule == "repair.within_year_of_repair"
    later = history
    for i in range(REPAIRS_KEPT + 2):  # penalties decided before the repairs: each repairable
        later, refusal = record_repair(later, f"penalty:old{i}", date(2026, 1, 1), date(2027, 2, 1 + i))
        assert refusal is None
    assert len(later) == REPAIRS_KEPT and "penalty:a" not in later and "penalty:old0" not in later


def test_a_subject_is_its_id_number_or_its_credit_code_never_written_out() -> None:
    person = {"category": "NATURAL_PERSON", "id_no": "11010519491231002x", "uscc": None}
    assert subject_key(person) == subject_key({**person, "id_no": " 11010519491231002X"})
    assert "11010519491231002X" not in str(subject_key(person))  # D17: a digest, not the ID number
    firm = {"category": "LEGAL_PERSON", "uscc": "91310000MA1FL8XQ30", "org_code": "MA1FL8XQ3"}
    assert subject_key(firm) == subject_key({**firm, "org_code": None}) != subject_key(person)
    assert subject_key({"category": "LEGAL_PERSON", "org_code": "MA1FL8XQ3"}) != subject_key(firm)
    assert subject_key({"category": "LEGAL_PERSON"}) is None


@pytest.mark.parametrize(
    ("start", "months", "end"),
    [(date(2026, 11, 30), 3, date(2027, 2, 28)), (date(2027, 11, 30), 3, date(2028, 2, 29)),
     (date(2026, 10, 31), 1, date(2026, 11, 30)), (date(2026, 12, 15), 1, date(2027, 1, 15))],
)  # fmt: skip
def test_months_end_on_the_corresponding_day_or_the_last_of_the_month(
    start: date, months: int, end: date
) -> None:
    assert add_months(start, months) == end


def test_a_decision_is_read_by_field_names_or_chinese_columns_with_every_issue() -> None:
    body, issues = parse_decision(
        {
            "record_id": "penalty:913101150000000000:沪〔2026〕1号",
            "决定类型": "异议不成立，维持公示",
            "authority": "上海市浦东新区市场监督管理局",
            "决定机关统一社会信用代码": "12310000425014476n",
            "decided_on": "2026-11-02",
        },
        date(2026, 11, 3),
    )
    assert issues == []
    assert body is not None and (body["decision"], body["authority_uscc"]) == (
        "OBJECTION_KEPT",
        "12310000425014476N",
    )
    _, issues = parse_decision({"决定日期": "2026-11-04", "颜色": "红"}, date(2026, 11, 3))
    assert {(i.field, i.rule) for i in issues} >= {
        ("决定日期", "date.future"),
        ("颜色", "column.unknown"),
        ("记录标识", "required"),
        ("决定类型", "required"),
    }
    assert parse_decision(["not", "an", "object"], date(2026, 11, 3))[0] is None
