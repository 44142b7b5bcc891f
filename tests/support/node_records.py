"""Valid department submissions for the district node's tests, from the simulator's generator."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator

from sgs.config import Federation
from sgs.domain.template import template_columns
from simulators.generator import FaultMix, Generator, Submission

_seeds = itertools.count(1000)


def clean(
    federation: Federation, count: int, district: str = "310115", kind: str | None = None
) -> list[Submission]:
    """`count` valid, on-time submissions of `district`'s departments, with record ids no other call returns
    (each call uses a fresh seed; the generator numbers documents per seed)."""
    generator = Generator(federation, seed=next(_seeds), faults=FaultMix.none(), districts=[district])
    out: list[Submission] = []
    for item in generator:
        if kind is None or item.kind == kind:
            out.append(item)
        if len(out) == count:
            return out
    return out


def of_one_department(
    federation: Federation, count: int, kind: str, district: str = "310115"
) -> list[Submission]:
    """Valid submissions of one department and kind (what one file upload carries)."""
    items: list[Submission] = []
    for item in _stream(federation, district, kind):
        if not items or item.department == items[0].department:
            items.append(item)
        if len(items) == count:
            return items
    return items


def _stream(federation: Federation, district: str, kind: str) -> Iterator[Submission]:
    generator = Generator(federation, seed=next(_seeds), faults=FaultMix.none(), districts=[district])
    return (item for item in generator if item.kind == kind)


def csv_bytes(kind: str, rows: list[dict[str, str]]) -> bytes:
    """A template CSV (UTF-8 with BOM, as Excel saves it)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=template_columns(kind))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8-sig")
