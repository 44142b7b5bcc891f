"""Aggregates for the monthly bulletin (D8): the `daily` faust table copied into a SQLAlchemy table.

Each worker counts in a table keyed by `partition|day|district|department|kind` whose value is {measure: count}
(one table write per record, whatever it counts), so a key is written from one partition only and recovers from
its own changelog partition, whichever worker holds it. A timer copies every day row, and every month row (the
sum of its days), whose count changed since the last copy into `worker_aggregates` with its absolute count (an
upsert: repeating it changes nothing), so the store is idempotent and any number of workers can share it. The
bulletin sums over partitions: `monthly_bulletin(url, "2026-10")`.

Measures: submitted, accepted, mismatched, rejected.<rule>, late.D5, late.D6, relayed.<tier>,
withdrawn.<tier>.<reason>; from `bulletin_counts`: rejected, rejected_municipal, published, portal_dated, clean.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, create_engine, func, select
from sqlalchemy.dialects import postgresql, sqlite

from services.worker.context import Context, log

metadata = MetaData()
aggregates = Table(
    "worker_aggregates",
    metadata,
    Column("partition", Integer, primary_key=True),
    Column("period", String(10), primary_key=True),  # YYYY-MM-DD or YYYY-MM, by submission date (China)
    Column("district", String(16), primary_key=True),
    Column("department", String(64), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("measure", String(96), primary_key=True),
    Column("count", Integer, nullable=False),
)
_KEY_COLUMNS = ("partition", "period", "district", "department", "kind", "measure")
FLUSH_INTERVAL_S = 5.0


def open_store(url: str) -> Engine:
    engine = create_engine(url)
    metadata.create_all(engine)
    return engine


def store_counts(engine: Engine, rows: list[dict[str, Any]]) -> None:
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(aggregates)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(_KEY_COLUMNS), set_={"count": stmt.excluded["count"]}
    )
    with engine.begin() as conn:
        conn.execute(stmt, rows)


def _rows(daily: dict[str, dict[str, int]]) -> dict[tuple[Any, ...], int]:
    """`partition|day|district|department|kind` -> {measure: count} as rows keyed like the SQL table, with
    each month's row the sum of its days."""
    rows: dict[tuple[Any, ...], int] = {}
    for key, measures in daily.items():
        partition, day, district, department, kind = key.split("|", 4)
        for measure, count in measures.items():
            rows[(int(partition), day, district, department, kind, measure)] = count
            month = (int(partition), day[:7], district, department, kind, measure)
            rows[month] = rows.get(month, 0) + count
    return rows


def register(ctx: Context, engine: Engine) -> None:
    from services.worker import bulletin_counts

    bulletin_counts.register(ctx)  # node rejections, publication and quality counts (D8, docs/report.md)
    written: dict[tuple[Any, ...], int] = {}

    @ctx.app.timer(FLUSH_INTERVAL_S, name="aggregates_flush")
    async def flush_aggregates() -> None:
        rows = _rows(dict(ctx.daily.items()))
        changed = [
            dict(zip((*_KEY_COLUMNS, "count"), (*k, v), strict=True))
            for k, v in rows.items()
            if written.get(k) != v
        ]
        if not changed:
            return
        await asyncio.to_thread(store_counts, engine, changed)
        written.update({k: v for k, v in rows.items()})
        log.debug("aggregates.flushed", rows=len(changed))


def monthly_bulletin(url: str, month: str) -> list[dict[str, Any]]:
    """The month's counts per district, department, kind and measure (summed over partitions), for 按月通报."""
    engine = open_store(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(
                    aggregates.c.district,
                    aggregates.c.department,
                    aggregates.c.kind,
                    aggregates.c.measure,
                    func.sum(aggregates.c.count).label("count"),
                )
                .where(aggregates.c.period == month)
                .group_by(
                    aggregates.c.district, aggregates.c.department, aggregates.c.kind, aggregates.c.measure
                )
                .order_by(
                    aggregates.c.district, aggregates.c.department, aggregates.c.kind, aggregates.c.measure
                )
            )
            return [dict(r) for r in rows.mappings()]
    finally:
        engine.dispose()
