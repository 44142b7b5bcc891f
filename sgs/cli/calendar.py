"""`sgs calendar`: the working-day calendar of D5/D6 from the command line (deadline, between, check)."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from sgs.cli.options import add_calendar_overrides_option, add_option

if TYPE_CHECKING:
    from sgs.domain.workdays import Calendar


def calendar_from_args(args: argparse.Namespace) -> Calendar:
    """`--calendar-overrides` wins; else the federation config's `timeliness.calendar_overrides`; else none."""
    from sgs.config import load_config
    from sgs.domain.workdays import Calendar

    return Calendar.for_federation(load_config(args.config), args.calendar_overrides)


def _iso(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date YYYY-MM-DD") from None


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calendar", help="working days on the official calendar (D5, D6): deadlines, counts, overrides"
    )
    csub = p.add_subparsers(dest="calendar_command", required=True, metavar="ACTION")

    def common(cp: argparse.ArgumentParser) -> None:
        add_option(cp, "--config", default=None, help="federation config file (TOML)")
        add_calendar_overrides_option(cp)

    d = csub.add_parser(
        "deadline", help="the Nth working day after DATE; prints the ISO date, then 'provisional'"
    )
    d.add_argument("date", type=_iso, help="decision (or portal publication) date, YYYY-MM-DD")
    add_option(
        d,
        "--working-days",
        type=int,
        default=None,
        help="working days allowed (default: the config's timeliness.publish_working_days, D5)",
    )
    common(d)
    d.set_defaults(run=run_deadline)

    b = csub.add_parser(
        "between", help="working days in (START, END], counting from the day after START (D5)"
    )
    b.add_argument("start", type=_iso, help="YYYY-MM-DD")
    b.add_argument("end", type=_iso, help="YYYY-MM-DD")
    common(b)
    b.set_defaults(run=run_between)

    c = csub.add_parser("check", help="validate an override file; exit 2 with a message naming the key")
    c.add_argument("--overrides", required=True, type=Path, help="the override TOML file to check")
    c.set_defaults(run=run_check)


def _calendar(args: argparse.Namespace) -> Calendar | None:
    from sgs.domain.workdays import OverrideError

    try:
        return calendar_from_args(args)
    except OverrideError as exc:
        print(f"sgs calendar: override file error: {exc}", file=sys.stderr)
        return None


def _provisional(flag: bool) -> str:
    return " provisional" if flag else ""


def run_deadline(args: argparse.Namespace) -> int:
    from sgs.config import load_config

    cal = _calendar(args)
    if cal is None:
        return 2
    n = (
        args.working_days
        if args.working_days is not None
        else load_config(args.config).timeliness.publish_working_days
    )
    if n < 0:
        print("sgs calendar deadline: --working-days must be >= 0", file=sys.stderr)
        return 2
    day, provisional = cal.deadline(args.date, n)
    print(f"{day.isoformat()}{_provisional(provisional)}")
    return 0


def run_between(args: argparse.Namespace) -> int:
    cal = _calendar(args)
    if cal is None:
        return 2
    count, provisional = cal.working_days_between(args.start, args.end)
    print(f"{count}{_provisional(provisional)}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from sgs.domain.workdays import OverrideError, load_overrides

    try:
        schedules = load_overrides(args.overrides)
    except OverrideError as exc:
        print(f"sgs calendar check: {exc}", file=sys.stderr)
        return 2
    for year, s in sorted(schedules.items()):
        print(f"{year}: {len(s.holidays)} holidays, {len(s.workdays)} make-up workdays")
    print(f"{args.overrides}: ok")
    return 0
