"""The rule book (rules.toml, `sgs.domain.rulebook`): the rules in force on the decision date decide publication,
publicity and repair (D11, D14, D16; 国家发展改革委令第36号 from 2026-04-01), and `sgs rules publicity` answers
from it (issue 15)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from sgs.config import ConfigError, load_config, load_rule_book
from sgs.domain.lifecycle import repeat_refusal
from sgs.domain.rulebook import DEFAULT_RULE_BOOK
from tests.support.paths import REPO

RULES = load_rule_book()
BEFORE, ON, AFTER = date(2026, 3, 31), date(2026, 4, 1), date(2026, 5, 10)


def penalty(
    decided: date, severity: str = "GENERAL", procedure: str = "GENERAL", subject: str = "LEGAL_PERSON"
):  # noqa: ANN201
    return RULES.decide("penalty", decided, severity=severity, procedure=procedure, subject_type=subject)


# ------------------------------------------------------------------------------------ which set, by decision date


def test_the_set_in_force_is_the_one_of_the_decision_date_not_of_today() -> None:
    """A record decided before 2026-04-01 keeps the seeds' rules; from that day, 令第36号."""
    assert penalty(BEFORE).rule_set == "seeds"
    assert penalty(ON).rule_set == "ndrc-order-36"
    assert penalty(AFTER).rule_set == "ndrc-order-36"
    assert penalty(date(2015, 1, 1)).rule_set == "seeds"


# ------------------------------------------------------------------------------------------------ the seeds


def test_seeds_general_penalty_one_year_repairable_after_three_months() -> None:
    """D14 (003 (十四)) one year; D16 (003 (十六)) repair after three months."""
    r = penalty(BEFORE)
    assert (r.tier, r.published) == ("GENERAL", {"provincial": True, "national": True})
    assert (r.publicity_min_end, r.publicity_max_end, r.publicity_end) == (
        date(2026, 6, 30), date(2027, 3, 31), date(2027, 3, 31)
    )  # fmt: skip
    assert r.repair_earliest == date(2026, 6, 30) and r.repeat_bar is not None


def test_seeds_serious_penalty_three_years_never_repaired() -> None:
    """D14: 严重失信 three years; D16: not repairable."""
    r = penalty(BEFORE, "SERIOUS")
    assert r.publicity_end == date(2029, 3, 31)
    assert (
        r.repair_earliest is None and r.repair_refusal is not None and r.repair_refusal[0] == "repair.serious"
    )
    assert any("repair_earliest" in reason for reason in r.reasons)


def test_seeds_know_no_minor_tier_a_minor_penalty_is_general() -> None:
    """003 (十四) knows 一般 and 严重 only: 轻微 decided before 2026-04-01 is published a year as 一般."""
    r = penalty(BEFORE, "MINOR")
    assert r.tier == "GENERAL" and r.publicity_end == date(2027, 3, 31) and r.published["national"]


def test_seeds_simple_procedure_collected_by_the_province_not_published_nowhere_national() -> None:
    """D11: 001 四(一) collected and reported, not published; 003 (五) not at 信用中国."""
    assert penalty(BEFORE, procedure="SIMPLE").relay == {"provincial": False}


def test_seeds_natural_person_penalty_published_by_the_province_only() -> None:
    """D11, 003 (五): 涉及个人的行政处罚信息不在“信用中国”网站归集和公示."""
    r = penalty(BEFORE, subject="NATURAL_PERSON")
    assert r.relay == {"provincial": True} and r.published == {"provincial": True, "national": False}
    assert r.publicity_end == date(2027, 3, 31) and r.repair_earliest == date(2026, 6, 30)
    assert "003 (五)" in r.sources


def test_seeds_stated_end_wins_up_to_the_sets_limit() -> None:
    """003 (十四): 从其规定; the intake check's bound is the seeds' `stated_end_limit`, 5 years."""
    body = {"decided_on": BEFORE, "severity": "GENERAL", "procedure": "GENERAL", "publicity_end": date(2028, 1, 1),
            "counterpart": {"category": "LEGAL_PERSON"}}  # fmt: skip
    assert RULES.ruling("penalty", body).publicity_end == date(2028, 1, 1)
    assert RULES.longest_publicity("penalty", body) == date(2031, 3, 31)


# ---------------------------------------------------------------------------------------------- 令第36号


def test_order_36_general_penalty_three_months_to_a_year() -> None:
    """一般失信信息: 最短公示期为3个月，最长为1年; repair once the minimum has passed."""
    r = penalty(AFTER)
    assert (r.rule_set, r.tier, r.published) == (
        "ndrc-order-36",
        "GENERAL",
        {"provincial": True, "national": True},
    )
    assert (r.publicity_min_end, r.publicity_max_end, r.repair_earliest) == (
        date(2026, 8, 10), date(2027, 5, 10), date(2026, 8, 10)
    )  # fmt: skip


def test_order_36_serious_penalty_one_to_three_years_repairable_after_one() -> None:
    """严重失信信息: 最短公示期为1年，最长为3年 (the seeds never repaired it)."""
    r = penalty(ON, "SERIOUS")
    assert (r.publicity_min_end, r.publicity_max_end, r.repair_earliest) == (
        date(2027, 4, 1), date(2029, 4, 1), date(2027, 4, 1)
    )  # fmt: skip


def test_order_36_minor_penalty_not_published_at_most_three_months_repairable_at_once() -> None:
    """轻微失信信息原则上不予公示；确有必要的最长不超过3个月，法定责任履行完毕即可申请修复."""
    r = penalty(AFTER, "MINOR")
    assert r.tier == "MINOR" and r.published == {"provincial": False, "national": False}
    assert r.relay == {"provincial": False}  # still collected by the province (归集), not published
    assert (r.publicity_max_end, r.repair_earliest) == (date(2026, 8, 10), AFTER)


def test_order_36_simple_procedure_is_minor_unless_the_department_says_serious() -> None:
    """As reported of the measure (not confirmed from its text, a setting): 简易程序 penalties are 轻微."""
    assert penalty(AFTER, procedure="SIMPLE").tier == "MINOR"
    assert penalty(AFTER, "SERIOUS", procedure="SIMPLE").tier == "SERIOUS"


def test_order_36_bounds_a_stated_end_and_stops_at_the_maximum() -> None:
    """最长公示期届满后，相关信息自动停止公示: a longer stated end is cut; a shorter one waits for the minimum."""
    longer = RULES.decide("penalty", AFTER, severity="GENERAL", stated_end=date(2029, 1, 1))
    shorter = RULES.decide("penalty", AFTER, severity="GENERAL", stated_end=date(2026, 6, 1))
    assert (longer.publicity_end, shorter.publicity_end) == (date(2027, 5, 10), date(2026, 8, 10))
    body = {"decided_on": AFTER, "severity": "SERIOUS", "procedure": "GENERAL", "publicity_end": None,
            "counterpart": {"category": "LEGAL_PERSON"}}  # fmt: skip
    assert RULES.longest_publicity("penalty", body) == date(2029, 5, 10)


def test_the_longest_stated_end_is_the_tier_maximum_or_the_sets_limit() -> None:
    """The intake check's bound (publicity_end.too_late): 令第36号 bounds by tier; the seeds let a stated end win up
    to 5 years; an unruleable tier gets its set's limit; a licence has none (its end is 有效期至)."""

    def body(decided: date, severity: str = "GENERAL", procedure: str = "GENERAL") -> dict:
        return {"decided_on": decided, "severity": severity, "procedure": procedure, "publicity_end": None,
                "counterpart": {"category": "LEGAL_PERSON"}}  # fmt: skip

    assert RULES.longest_publicity("penalty", body(AFTER)) == date(2027, 5, 10)
    assert RULES.longest_publicity("penalty", body(AFTER, procedure="SIMPLE")) == date(2026, 8, 10)
    assert RULES.longest_publicity("penalty", body(BEFORE, "SERIOUS")) == date(2031, 3, 31)
    assert (RULES.stated_end_limit(BEFORE), RULES.stated_end_limit(AFTER)) == (
        date(2031, 3, 31),
        date(2029, 5, 10),
    )
    assert RULES.longest_publicity("license", {**body(AFTER), "valid_to": None}) is None


def test_order_36_has_no_confirmed_bar_on_a_repair_soon_after_another() -> None:
    """The seeds bar a repair within a year after the last (003 (十六)); 令第36号's text could not be confirmed."""
    assert RULES.in_force(AFTER).repeat_bar is None
    assert repeat_refusal(date(2026, 6, 1), [date(2026, 5, 1)], None) is None


def test_licences_are_published_for_their_validity_under_both_sets_and_never_repaired() -> None:
    """D14, 001 四(四)1: 7 years when no validity is stated; a licence is not dishonesty information."""
    for day in (BEFORE, AFTER):
        r = RULES.decide("license", day, subject_type="NATURAL_PERSON")
        assert r.published == {"provincial": True, "national": True} and r.tier is None
        assert r.publicity_end == day.replace(year=day.year + 7)
        assert r.repair_refusal is not None and r.repair_refusal[0] == "repair.not_penalty"
        assert RULES.decide("license", day, stated_end=date(2030, 1, 1)).publicity_end == date(2030, 1, 1)


# --------------------------------------------------------------------------------------- floors, checking


def _config(tmp_path: Path, extra: str) -> Path:
    text = (REPO / "federation.toml").read_text(encoding="utf-8")
    text = text.replace('book = "rules.toml"', f'book = "{DEFAULT_RULE_BOOK}"') + extra
    path = tmp_path / "federation.toml"
    path.write_text(text, encoding="utf-8")
    return path


FLOOR = """
[[rules.floors]]
id = "samr-test"
departments = ["scjg"]
tiers = ["一般"]
from = 2025-12-25
min = "6m"
sources = ["市场监管总局令第107号"]
"""


def test_a_department_floor_lengthens_the_minimum_and_is_named(tmp_path: Path) -> None:
    """The config's stricter floor for a sector: market regulation's penalties wait six months here."""
    rules = load_config(_config(tmp_path, FLOOR)).rules
    floored = rules.decide("penalty", AFTER, severity="GENERAL", department="310101-scjg")
    assert (floored.rule_set, floored.floor) == ("ndrc-order-36", "samr-test")
    assert floored.publicity_min_end == floored.repair_earliest == date(2026, 11, 10)
    assert "市场监管总局令第107号" in floored.sources
    other = rules.decide("penalty", AFTER, severity="GENERAL", department="310101-sthj")
    assert other.floor is None and other.repair_earliest == date(2026, 8, 10)
    assert rules.decide("penalty", date(2025, 12, 1), severity="GENERAL", department="scjg").floor is None
    assert rules.decide("penalty", AFTER, severity="SERIOUS", department="scjg").floor is None


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (('min = "3m"\n  max = "1y"\n  end_field = "publicity_end"\n  end_field_bounded = true', 'min = "3 months"'),
         "sets[1].rules[1].min"),
        (('when = { kind = "penalty", tier = "严重" }', 'when = { kind = "penalty", tier = "很严重" }'),
         "sets[1].rules[4].when.tier"),
        (('from = 2026-04-01', 'from = "2026-04-01"'), "sets[1].from"),
        (("  auto_stop = true\n  repairable = true  #", "  repairable = true  #"), "sets.ndrc-order-36"),
    ],
)  # fmt: skip
def test_a_mistake_in_the_rule_book_names_the_file_and_key(
    tmp_path: Path, edit: tuple[str, str], key: str
) -> None:
    text = DEFAULT_RULE_BOOK.read_text(encoding="utf-8")
    assert edit[0] in text
    path = tmp_path / "rules.toml"
    path.write_text(text.replace(edit[0], edit[1], 1), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_rule_book(path)
    assert str(caught.value).startswith(f"{path}: {key}: ")


def test_a_bad_floor_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"rules\.floors\[0\]\.min"):
        load_config(_config(tmp_path, FLOOR.replace('min = "6m"', 'min = "half a year"')))


# ------------------------------------------------------------------------------------------ sgs rules publicity


def _sgs(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sgs", "rules", "publicity", *args], capture_output=True, text=True, timeout=60
    )


def test_sgs_rules_publicity_answers_for_a_general_penalty_under_order_36() -> None:
    """The issue's example: 一般, decided 2026-05-10."""
    result = _sgs("--kind", "penalty", "--decided", "2026-05-10", "--severity", "一般")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["rule_set"] == "ndrc-order-36" and answer["tier"] == "一般"
    assert answer["published"] == {"provincial": True, "national": True}
    assert (answer["publicity_min_end"], answer["publicity_max_end"], answer["repair_earliest"]) == (
        "2026-08-10", "2027-05-10", "2026-08-10"
    )  # fmt: skip
    assert answer["reasons"] == [] and any("第36号" in s for s in answer["sources"])


def test_sgs_rules_publicity_says_why_a_date_is_null() -> None:
    result = _sgs(
        "--kind", "penalty", "--decided", "2026-03-01", "--severity", "严重", "--subject-type", "自然人"
    )
    answer = json.loads(result.stdout)
    assert answer["rule_set"] == "seeds" and answer["published"] == {"provincial": True, "national": False}
    assert answer["repair_earliest"] is None and any("不予信用修复" in r for r in answer["reasons"])


@pytest.mark.parametrize(
    "args",
    [("--kind", "penalty", "--decided", "2026-02-30"), ("--kind", "fine", "--decided", "2026-05-10"),
     ("--kind", "penalty", "--decided", "2026-05-10", "--severity", "很重"), ("--kind", "penalty")],
)  # fmt: skip
def test_sgs_rules_publicity_exits_2_with_one_line_on_a_bad_argument(args: tuple[str, ...]) -> None:
    result = _sgs(*args)
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("sgs rules publicity: ")
