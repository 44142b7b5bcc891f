"""Periods in months and years as the civil code counts them (民法典 第二百零一、二百零二条): publicity (D14),
the waiting time before a credit repair and the year after one (D16)."""

from __future__ import annotations

import calendar
from datetime import date


def add_months(start: date, months: int) -> date:
    """The same day `months` later, or the last day of that month when it has no such day (民法典 第二百零一、
    二百零二条: a period in months or years ends on the corresponding day, else on the month's last day)."""
    month0 = start.month - 1 + months
    year, month = start.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def add_years(start: date, years: int) -> date:
    """The same day `years` later; a 29 February without a counterpart ends on 28 February (`add_months`)."""
    return add_months(start, 12 * years)
