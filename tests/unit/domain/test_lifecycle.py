"""Credit-repair eligibility (D16) and the decision a department sends (D15, D16), as `sgs.domain.lifecycle` decides them."""

from __future__ import annotations

from datetime import date

import pytest

from sgs.config import load_rule_book
from sgs.domain.lifecycle import (
    REPAIRS_KEPT,
    parse_decision,
    record_repair,
    repair_refusal,
    repeat_refusal,
    subject_key,
)
from sgs.domain.periods import add_months
from sgs.domain.rulebook import Period

DECIDED = date(2026, 10, 9)  # under 令第36号 (from 2026-04-01)
SEEDS_DECIDED = date(2025, 10, 9)  # under the seeds
RULES = load_rule_book()


def rule(kind: str = "penalty", severity: str | None = "GENERAL", end: date | None = None,
         on: date = date(2027, 1, 9), decided: date = DECIDED, procedure: str = "GENERAL") -> str | None:  # fmt: skip
    ruling = RULES.decide(
        kind, decided, severity=severity if kind == "penalty" else None, procedure=procedure,
        subject_type="LEGAL_PERSON", stated_end=end,
    )  # fmt: skip
    issue = repair_refusal(ruling, on)
    return None if issue is None else issue.rule


def test_under_the_seeds_a_one_year_penalty_is_repairable_from_three_months_after_its_decision() -> None:
    """D16, 003 (十六): 最短公示期三个月后."""
    assert rule(decided=SEEDS_DECIDED, on=date(2026, 1, 9)) is None
    assert rule(decided=SEEDS_DECIDED, on=date(2026, 1, 8)) == "repair.too_early"


def test_under_the_seeds_only_a_general_one_year_penalty_is_repairable() -> None:
    """D16: 严重失信 is not repairable; nor is a penalty whose deciding body set a period beyond a year (D14)."""
    on = date(2026, 6, 1)
    assert rule(kind="license", decided=SEEDS_DECIDED, on=on) == "repair.not_penalty"
    assert rule(severity="SERIOUS", decided=SEEDS_DECIDED, on=on) == "repair.serious"
    assert rule(end=date(2027, 10, 9), decided=SEEDS_DECIDED, on=on) == "repair.beyond_max"
    assert rule(end=date(2026, 4, 9), decided=SEEDS_DECIDED, on=on) is None  # shorter: still within a year


def test_under_order_36_each_tier_is_repairable_once_its_minimum_publicity_has_passed() -> None:
    """令第36号: 一般 after 3 months, 严重 after 1 year (the seeds never repaired it), 轻微 once the obligation is
    met (from the decision date); a licence is not dishonesty information."""
    assert rule(on=date(2027, 1, 9)) is None
    assert rule(on=date(2027, 1, 8)) == "repair.too_early"
    assert rule(severity="SERIOUS", on=date(2027, 10, 8)) == "repair.too_early"
    assert rule(severity="SERIOUS", on=date(2027, 10, 9)) is None
    assert rule(severity="MINOR", on=DECIDED) is None
    assert rule(procedure="SIMPLE", on=DECIDED) is None  # 简易程序: 轻微 (as reported; a setting)
    assert rule(kind="license") == "repair.not_penalty"
    # A stated end beyond the tier's maximum is cut to it (自动停止公示), so the repair terms still hold.
    assert rule(end=date(2028, 10, 9)) is None


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
    issue = repeat_refusal(decided_on, [date(2020, 5, 1), REPAIRED], Period(1, "y"))
    assert (issue.rule if issue else None) == ("repair.within_year_of_repair" if barred else None)


def test_a_subjects_repair_history_records_each_penalty_once_and_keeps_the_latest() -> None:
    bar = RULES.in_force(SEEDS_DECIDED).repeat_bar
    assert bar == Period(1, "y")  # the seeds' bar (D16); 令第36号 has none confirmed
    history, refusal = record_repair({}, "penalty:a", DECIDED, REPAIRED, bar)
    assert (history, refusal) == ({"penalty:a": "2027-01-09"}, None)
    # The same repair again (a redelivery, a second post) is not a second repair, and is not refused.
    assert record_repair(history, "penalty:a", DECIDED, date(2027, 2, 1), bar) == (history, None)
    # A penalty decided in the year after it: refused, nothing recorded.
    again, refusal = record_repair(history, "penalty:b", date(2027, 3, 1), date(2027, 6, 1), bar)
    assert again == history and refusal is not None and refusal.rule == "repair.within_year_of_repair"
    later = history
    for i in range(REPAIRS_KEPT + 2):  # penalties decided before the repairs: each repairable
        later, refusal = record_repair(later, f"penalty:old{i}", date(2026, 1, 1), date(2027, 2, 1 + i), bar)
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
