"""The working-day calendar of D5/D6: the official 2026 schedule, provisional years, operator overrides, the CLI."""

from __future__ import annotations

import os
import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sgs.domain.workdays import Calendar, OverrideError, load_overrides
from tests.support.paths import REPO

SGS = [str(REPO / ".venv" / "bin" / "sgs")]

OVERRIDES_2027 = """
# 2027 as an operator would type it once the State Council publishes it (dates here are an example)
[2027]
holidays = [2027-01-01, "2027-02-06..2027-02-12", "2027-10-01..2027-10-07"]
workdays = ["2027-02-13", "2027-10-09"]
"""


CALENDAR = Calendar()


@pytest.fixture
def calendar() -> Calendar:
    return Calendar()


def test_decision_before_national_day_submitted_on_seventh_working_day_is_on_time(calendar: Calendar) -> None:
    """D5: counted from the day after the decision; 2026-10-01..07 are 国庆/中秋 holidays and Saturday 2026-10-10
    is a make-up workday (调休), so 2026-10-15 is the 7th working day after 2026-09-30."""
    assert calendar.working_days_between(date(2026, 9, 30), date(2026, 10, 15)) == (7, False)
    assert calendar.deadline(date(2026, 9, 30), 7) == (date(2026, 10, 15), False)


def test_submission_on_eighth_working_day_after_national_day_is_late(calendar: Calendar) -> None:
    """D5: 2026-10-16 is the 8th working day after a 2026-09-30 decision, one over the 7 allowed."""
    count, provisional = calendar.working_days_between(date(2026, 9, 30), date(2026, 10, 16))
    assert count == 8 and count > 7 and not provisional


def test_make_up_saturday_counts_and_holiday_weekday_does_not(calendar: Calendar) -> None:
    """D5: working days follow the State Council schedule, including 调休 on weekends."""
    assert calendar.is_working_day(date(2026, 10, 10))  # Saturday, 调休上班
    assert not calendar.is_working_day(date(2026, 10, 5))  # Monday, 国庆
    assert not calendar.is_working_day(date(2026, 10, 11))  # ordinary Sunday


def test_submission_on_decision_day_has_used_no_working_day(calendar: Calendar) -> None:
    """D5 counts from the day after the decision: the interval is (start, end]."""
    assert calendar.working_days_between(date(2026, 9, 30), date(2026, 9, 30)) == (0, False)
    assert calendar.working_days_between(date(2026, 9, 29), date(2026, 9, 30)) == (1, False)


def test_deadline_reaching_into_2027_is_provisional(calendar: Calendar) -> None:
    """DOMAIN assumption: a year chinese-calendar lacks counts weekends and fixed-date holidays (元旦 1 Jan) and
    says provisional. 2026-12-28 + 7: 29, 30, 31 Dec, then 4-7 Jan 2027 (1 Jan is 元旦)."""
    assert calendar.deadline(date(2026, 12, 28), 7) == (date(2027, 1, 7), True)
    assert calendar.is_provisional(date(2027, 1, 4))
    assert not calendar.is_provisional(date(2026, 12, 31))


def test_count_entirely_inside_a_known_year_is_not_provisional_even_near_its_end(calendar: Calendar) -> None:
    """D5: provisional only when a counted day lies in an unknown year."""
    assert calendar.working_days_between(date(2026, 12, 20), date(2026, 12, 31)) == (9, False)


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2027, 1, 1), False),  # 元旦, a Friday
        (date(2027, 5, 3), True),  # 劳动节 1-2 May fall on a weekend; no 调休 is guessed
        (date(2027, 10, 1), False),  # 国庆节, a Friday
        (date(2028, 10, 2), False),  # 国庆节, a Monday
    ],
)
def test_unknown_year_counts_weekends_and_statutory_fixed_date_holidays(
    calendar: Calendar, day: date, working: bool
) -> None:
    """DOMAIN assumption: without a schedule, 元旦 1 Jan, 劳动节 1-2 May and 国庆节 1-3 Oct are off, and provisional."""
    assert calendar.is_working_day(day) is working
    assert calendar.is_provisional(day)


def test_override_file_makes_a_year_official_with_its_make_up_days(tmp_path: Path) -> None:
    """D5 + DOMAIN assumption: an operator-supplied schedule ends the provisional marking and adds 调休."""
    path = tmp_path / "calendar.toml"
    path.write_text(OVERRIDES_2027, encoding="utf-8")
    cal = Calendar(path)
    assert not cal.is_provisional(date(2027, 2, 13))
    assert cal.is_working_day(date(2027, 2, 13))  # Saturday make-up day
    assert not cal.is_working_day(date(2027, 2, 8))  # Monday inside the 春节 range
    # 2026-12-28 + 7 with an official 2027: 29, 30, 31, 4, 5, 6, 7 Jan
    assert cal.deadline(date(2026, 12, 28), 7) == (date(2027, 1, 7), False)
    assert cal.deadline(date(2027, 2, 5), 1) == (date(2027, 2, 13), False)


def test_override_year_wins_over_chinese_calendar(tmp_path: Path) -> None:
    """A correction of a known year: the operator's list replaces the library's for that year."""
    path = tmp_path / "calendar.toml"
    path.write_text('[2026]\nholidays = ["2026-01-01"]\n', encoding="utf-8")
    assert Calendar(path).is_working_day(date(2026, 10, 5))
    assert not Calendar().is_working_day(date(2026, 10, 5))


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[2027]\nholidays = ["2027-13-01"]\n', "2027.holidays[0]"),
        ('[2027]\nholidays = ["2028-01-01"]\n', "2027.holidays[0]"),
        ('[2027]\nholidays = []\nworkdays = ["2027-02-10"]\n', "2027.workdays"),
        ('[2027]\nholidays = ["2027-02-13"]\nworkdays = ["2027-02-13"]\n', "2027.workdays"),
        ("[2027]\nholidays = []\nrest = []\n", "2027.rest"),
        ('[2027]\nworkdays = ["2027-02-13"]\n', "2027.holidays"),
        ("[next]\nholidays = []\n", "next"),
        ('[2027]\nholidays = ["2027-02-10..2027-02-01"]\n', "2027.holidays[0]"),
        ("[2027\n", "(file)"),
    ],
)
def test_bad_override_file_is_refused_naming_the_key(tmp_path: Path, text: str, key: str) -> None:
    """An override that cannot be trusted is refused with the key, never half-applied."""
    path = tmp_path / "calendar.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(OverrideError) as err:
        load_overrides(path)
    assert err.value.key == key
    assert f": {key}:" in str(err.value)


def _sgs(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SGS, *args], capture_output=True, text=True, timeout=60, cwd=REPO)


def test_cli_deadline_prints_iso_date_first() -> None:
    """`sgs calendar deadline` defaults to the config's 7 working days (D5)."""
    out = _sgs("calendar", "deadline", "2026-09-30")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "2026-10-15"


def test_cli_deadline_marks_provisional_and_takes_working_days() -> None:
    """D5/D6 from the command line; a 2027 deadline says provisional after the date."""
    out = _sgs("calendar", "deadline", "2026-12-28", "--working-days", "7")
    assert out.stdout.splitlines()[0] == "2027-01-07 provisional"
    out = _sgs("calendar", "deadline", "2026-09-30", "--working-days", "2")  # D6
    assert out.stdout.splitlines()[0] == "2026-10-09"


def test_cli_between_counts_from_the_day_after(tmp_path: Path) -> None:
    """D5: (2026-09-30, 2026-10-16] holds 8 working days; the override flag is honoured."""
    assert _sgs("calendar", "between", "2026-09-30", "2026-10-16").stdout.strip() == "8"
    path = tmp_path / "calendar.toml"
    path.write_text(OVERRIDES_2027, encoding="utf-8")
    out = _sgs("calendar", "between", "2027-02-05", "2027-02-13", "--calendar-overrides", str(path))
    assert out.stdout.strip() == "1"


def test_cli_check_rejects_bad_override_file_with_exit_2(tmp_path: Path) -> None:
    """A bad override file exits 2 and names the key."""
    path = tmp_path / "calendar.toml"
    path.write_text('[2027]\nholidays = []\nworkdays = ["2027-02-10"]\n', encoding="utf-8")
    out = _sgs("calendar", "check", "--overrides", str(path))
    assert out.returncode == 2
    assert "2027.workdays" in out.stderr
    path.write_text(OVERRIDES_2027, encoding="utf-8")
    assert _sgs("calendar", "check", "--overrides", str(path)).returncode == 0


def test_cli_reads_overrides_from_environment(tmp_path: Path) -> None:
    """Settings rule: `--calendar-overrides` reads SGS_CALENDAR_OVERRIDES."""
    path = tmp_path / "calendar.toml"
    path.write_text(OVERRIDES_2027, encoding="utf-8")
    env = {**os.environ, "SGS_CALENDAR_OVERRIDES": str(path)}
    out = subprocess.run(
        [*SGS, "calendar", "deadline", "2026-12-28"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=env,
    )
    assert out.stdout.splitlines()[0] == "2027-01-07"


@given(start=st.dates(date(2002, 1, 1), date(2029, 12, 31)), span=st.integers(-3, 900))
@settings(max_examples=100, deadline=None)
def test_count_equals_day_by_day_count_and_agrees_with_deadline(start: date, span: int) -> None:
    """D5 counting over any span, across year ends and provisional years: the per-year tables give the same count
    as walking the days, and the deadline of N working days has used exactly N."""
    end = start + timedelta(days=span)
    days = [start + timedelta(days=i) for i in range(1, span + 1)]
    expected = (sum(CALENDAR.is_working_day(d) for d in days), any(CALENDAR.is_provisional(d) for d in days))
    assert CALENDAR.working_days_between(start, end) == expected
    n = expected[0]
    due, provisional = CALENDAR.deadline(start, n)
    assert CALENDAR.working_days_between(start, due) == (n, provisional)
    assert n == 0 or CALENDAR.is_working_day(due)
