"""A hand-made aggregates table with known numbers, written by the worker's own writer (`store_counts`) into a real
SQLite file, for the bulletin's unit and browser tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services.worker.aggregates import open_store, store_counts

MONTH, PREVIOUS = "2026-10", "2026-09"

# (partition, month, district, department, kind, measure, count); 310101-scjg is split over two partitions and
# two kinds so that the bulletin must sum them.
ROWS: list[tuple[int, str, str, str, str, str, int]] = [
    (0, MONTH, "310101", "310101-scjg", "penalty", "submitted", 5),
    (1, MONTH, "310101", "310101-scjg", "license", "submitted", 3),
    (0, MONTH, "310101", "310101-scjg", "penalty", "rejected", 2),
    (1, MONTH, "310101", "310101-scjg", "license", "rejected_municipal", 1),
    (0, MONTH, "310101", "310101-scjg", "penalty", "rejected.required", 2),
    (1, MONTH, "310101", "310101-scjg", "license", "rejected.uscc.check_char", 1),
    (0, MONTH, "310101", "310101-scjg", "penalty", "accepted", 4),
    (1, MONTH, "310101", "310101-scjg", "license", "accepted", 3),
    (0, MONTH, "310101", "310101-scjg", "penalty", "late.D5", 1),
    (0, MONTH, "310101", "310101-scjg", "penalty", "portal_dated", 4),
    (0, MONTH, "310101", "310101-scjg", "penalty", "late.D6", 1),
    (1, MONTH, "310101", "310101-scjg", "license", "mismatched", 1),
    (0, MONTH, "310101", "310101-scjg", "penalty", "published", 3),
    (1, MONTH, "310101", "310101-scjg", "license", "published", 3),
    (0, MONTH, "310101", "310101-scjg", "penalty", "clean", 3),
    (1, MONTH, "310101", "310101-scjg", "license", "clean", 2),
    (0, MONTH, "310101", "310101-scjg", "penalty", "tier.ndrc-order-36.GENERAL", 2),
    (1, MONTH, "310101", "310101-scjg", "penalty", "tier.ndrc-order-36.GENERAL", 1),
    (0, MONTH, "310101", "310101-scjg", "penalty", "tier.seeds.GENERAL", 1),
    (2, MONTH, "310101", "310101-sthj", "penalty", "tier.ndrc-order-36.SERIOUS", 4),
    (2, MONTH, "310101", "310101-sthj", "penalty", "submitted", 4),
    (2, MONTH, "310101", "310101-sthj", "penalty", "accepted", 4),
    (2, MONTH, "310101", "310101-sthj", "penalty", "published", 4),
    (2, MONTH, "310101", "310101-sthj", "penalty", "clean", 4),
    (3, MONTH, "310104", "310104-scjg", "license", "submitted", 2),
    (3, MONTH, "310104", "310104-scjg", "license", "accepted", 2),
    (3, MONTH, "310104", "310104-scjg", "license", "published", 2),
    (3, MONTH, "310104", "310104-scjg", "license", "clean", 1),
    (0, MONTH, "unknown", "unknown", "penalty", "submitted", 1),
    (0, PREVIOUS, "310101", "310101-scjg", "penalty", "submitted", 5),
    (0, PREVIOUS, "310101", "310101-scjg", "penalty", "accepted", 5),
    (0, PREVIOUS, "310101", "310101-scjg", "penalty", "published", 5),
    (0, PREVIOUS, "310101", "310101-scjg", "penalty", "clean", 5),
    (0, PREVIOUS, "310101", "310101-scjg", "penalty", "tier.seeds.MINOR", 5),
    (0, "2026-10-15", "310101", "310101-scjg", "penalty", "submitted", 99),  # a daily row: not the month's
]


def write_aggregates(store: Path | str, rows: list[tuple[int, str, str, str, str, str, int]] = ROWS) -> str:
    """Into a SQLite file at `store`, or the database URL `store`; returns the URL."""
    url = store if isinstance(store, str) else f"sqlite:///{store}"
    engine = open_store(url)
    keys = ("partition", "period", "district", "department", "kind", "measure", "count")
    records: list[dict[str, Any]] = [dict(zip(keys, row, strict=True)) for row in rows]
    store_counts(engine, records)
    engine.dispose()
    return url
