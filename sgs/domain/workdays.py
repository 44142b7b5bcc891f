"""The official working-day calendar of mainland China, for the deadlines of D5 (7 working days to publish) and D6
(2 working days to report upward).

Working days follow the State Council's annual holiday schedule (国务院办公厅关于部分节假日安排的通知), including
make-up working days on weekends (调休上班). Three sources, in this order:

1. an operator's override file (TOML, see `docs/calendar.md`) for the years it lists: the official schedule of a
   year `chinese-calendar` does not know yet, or a correction;
2. `chinese-calendar`, which carries the published schedules (2004-2026 in version 1.11);
3. otherwise weekends plus the statutory fixed-date holidays (元旦 1 Jan, 劳动节 1-2 May, 国庆节 1-3 Oct), and the
   answer is *provisional* (DOMAIN assumption: a year whose schedule is unknown says so until it is supplied).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import chinese_calendar

from sgs.config import ConfigError, Federation, read_toml

# 《全国年节及纪念日放假办法》: the statutory holidays that fall on the same calendar date every year. The lunar
# ones (春节, 清明, 端午, 中秋) and the 调休 arrangements are only known once the year's schedule is published.
# The calendar days of D5/D6 are days in China (UTC+8), not in UTC: a decision's date, a portal's publication
# time and the node's receipt time are all dated here.
CHINA = ZoneInfo("Asia/Shanghai")

FIXED_DATE_HOLIDAYS: tuple[tuple[int, int], ...] = ((1, 1), (5, 1), (5, 2), (10, 1), (10, 2), (10, 3))


def china_date(ts: datetime) -> date:
    """The date in China of an aware timestamp."""
    return ts.astimezone(CHINA).date()


class OverrideError(ConfigError):
    """An override file that cannot be used; the message names the file and the key."""

    def __init__(self, path: Path, key: str, message: str) -> None:
        super().__init__(path, key, message)
        self.path = path
        self.key = key


@dataclass(frozen=True)
class YearSchedule:
    """One year's official schedule: weekdays off (放假) and weekend days worked (调休上班)."""

    year: int
    holidays: frozenset[date]
    workdays: frozenset[date]


def _known_years() -> range:
    years = [d.year for d in chinese_calendar.holidays]
    return range(min(years), max(years) + 1)


CHINESE_CALENDAR_YEARS = _known_years()


def _dates(value: Any, year: int, key: str, path: Path) -> set[date]:
    """A list of TOML dates, ISO strings, or 'START..END' ranges (both ends included), all inside `year`."""
    if not isinstance(value, list):
        raise OverrideError(path, key, f"expected a list of dates, got {type(value).__name__}")
    days: set[date] = set()
    for i, item in enumerate(value):
        where = f"{key}[{i}]"
        if isinstance(item, date):
            first = last = item
        elif isinstance(item, str):
            start, _, end = item.partition("..")
            try:
                first = date.fromisoformat(start.strip())
                last = date.fromisoformat(end.strip()) if end else first
            except ValueError:
                raise OverrideError(
                    path, where, f"{item!r} is not YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD"
                ) from None
            if last < first:
                raise OverrideError(path, where, f"{item!r}: the range ends before it starts")
        else:
            raise OverrideError(path, where, f"expected a date, got {type(item).__name__} {item!r}")
        if first.year != year or last.year != year:
            raise OverrideError(path, where, f"{item!r} is not in {year}")
        days.update(first + timedelta(n) for n in range((last - first).days + 1))
    return days


def load_overrides(path: Path) -> dict[int, YearSchedule]:
    """Read and check an override file; every problem is an `OverrideError` naming the key.

    Format (docs/calendar.md)::

        [2027]
        holidays = ["2027-01-01", "2027-02-06..2027-02-13"]   # days off, weekends inside ranges allowed
        workdays = ["2027-02-14"]                             # 调休上班: must be a Saturday or Sunday
    """
    raw = read_toml(path, OverrideError)
    schedules: dict[int, YearSchedule] = {}
    for key, table in raw.items():
        if not (len(key) == 4 and key.isdigit()):
            raise OverrideError(path, key, "expected a year table such as [2027]")
        if not isinstance(table, dict):
            raise OverrideError(path, key, "expected a table with `holidays` and `workdays`")
        unknown = set(table) - {"holidays", "workdays"}
        if unknown:
            raise OverrideError(path, f"{key}.{sorted(unknown)[0]}", "unknown key; known: holidays, workdays")
        if "holidays" not in table:
            raise OverrideError(path, f"{key}.holidays", "missing (the whole year's days off must be listed)")
        year = int(key)
        holidays = _dates(table["holidays"], year, f"{key}.holidays", path)
        workdays = _dates(table.get("workdays", []), year, f"{key}.workdays", path)
        for day in sorted(workdays):
            if day.weekday() < 5:
                raise OverrideError(
                    path,
                    f"{key}.workdays",
                    f"{day} is a weekday: a make-up workday (调休上班) is a Saturday or Sunday",
                )
        both = holidays & workdays
        if both:
            raise OverrideError(
                path, f"{key}.workdays", f"{min(both)} is listed as both a holiday and a workday"
            )
        schedules[year] = YearSchedule(year, frozenset(holidays), frozenset(workdays))
    return schedules


class Calendar:
    """Answers "is this a working day?" and counts working days for D5 and D6.

    `overrides` is the operator's TOML file (docs/calendar.md); the years it lists win over `chinese-calendar`.
    """

    def __init__(self, overrides: Path | None = None) -> None:
        self.overrides_path = overrides
        self.overrides: dict[int, YearSchedule] = load_overrides(overrides) if overrides else {}
        self._cum: dict[int, list[int]] = {}
        # a worker counts for every record, and a day's records share their decision dates and their day
        self.working_days_between = lru_cache(maxsize=4096)(self._working_days_between)

    @classmethod
    def for_federation(cls, federation: Federation, overrides: Path | str | None = None) -> Calendar:
        """The calendar a process of `federation` counts with: an explicit override file (`--calendar-overrides`)
        wins over the config's `timeliness.calendar_overrides`."""
        return cls(Path(overrides) if overrides else federation.timeliness.calendar_overrides)

    def is_provisional(self, d: date) -> bool:
        """True when `d`'s year has no official schedule here: neither the override file nor chinese-calendar."""
        return d.year not in self.overrides and d.year not in CHINESE_CALENDAR_YEARS

    def is_working_day(self, d: date) -> bool:
        cum = self._cumulative(d.year)
        i = d.timetuple().tm_yday
        return cum[i] > cum[i - 1]

    def _classify(self, d: date) -> bool:
        schedule = self.overrides.get(d.year)
        if schedule is not None:
            return d in schedule.workdays or (d.weekday() < 5 and d not in schedule.holidays)
        if d.year in CHINESE_CALENDAR_YEARS:
            return bool(chinese_calendar.is_workday(d))
        return d.weekday() < 5 and (d.month, d.day) not in FIXED_DATE_HOLIDAYS

    def _cumulative(self, year: int) -> list[int]:
        """cum[i] = working days among the first i days of `year`; built once per year, so every count is O(years)
        (chinese-calendar's own lookup costs ~60 µs a day, too slow for a count per record on the workers)."""
        cum = self._cum.get(year)
        if cum is None:
            cum = [0]
            day = date(year, 1, 1)
            while day.year == year:
                cum.append(cum[-1] + self._classify(day))
                day += timedelta(days=1)
            self._cum[year] = cum
        return cum

    def _through(self, d: date) -> int:
        """Working days from 1 January of d's year through d."""
        return self._cumulative(d.year)[d.timetuple().tm_yday]

    def _working_days_between(self, start: date, end: date) -> tuple[int, bool]:
        """Working days in (start, end]: D5 counts from the day after the decision, so a record submitted on the
        decision day has used 0. Also whether any counted day lies in a provisional year. `end <= start` is 0."""
        if end <= start:
            return 0, False
        count = self._through(end) - self._through(start)
        for year in range(start.year, end.year):
            count += self._cumulative(year)[-1]
        first = start + timedelta(days=1)
        provisional = any(self.is_provisional(date(y, 1, 1)) for y in range(first.year, end.year + 1))
        return count, provisional

    def deadline(self, start: date, working_days: int) -> tuple[date, bool]:
        """The `working_days`-th working day after `start` (D5: decided 2026-09-30, 7 days -> 2026-10-15), and
        whether any day up to it lies in a provisional year. 0 working days is `start` itself."""
        if working_days < 0:
            raise ValueError(f"working_days must be >= 0, got {working_days}")
        day, left, provisional = start, working_days, False
        while left:
            day += timedelta(days=1)
            provisional = provisional or self.is_provisional(day)
            if self.is_working_day(day):
                left -= 1
        return day, provisional
