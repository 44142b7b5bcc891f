"""Aggregates for the monthly bulletin (D8): the `daily` and `monthly` faust tables copied into a SQLAlchemy table.

Each worker counts in tables keyed by `partition|period|district|department|kind|measure`, so a key is written
from one partition only and recovers from its own changelog partition, whichever worker holds it. A timer copies
every row whose count changed since the last copy into `worker_aggregates` with its absolute count (an upsert:
repeating it changes nothing), so the store is idempotent and any number of workers can share it. The bulletin
sums over partitions: `monthly_bulletin(url, "2026-10")`.

Measures: submitted, accepted, mismatched, rejected.<rule>, late.D5, late.D6, relayed.<tier>,
withdrawn.<tier>.<reason>.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, create_engine, func, select
from sqlalchemy.dialects import postgresql, sqlite

from services.worker.pipeline import Pipeline, log

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


def _upsert(engine: Engine, rows: list[dict[str, Any]]) -> None:
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(aggregates)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(_KEY_COLUMNS), set_={"count": stmt.excluded["count"]}
    )
    with engine.begin() as conn:
        conn.execute(stmt, rows)


def _row(key: str, count: int) -> dict[str, Any]:
    partition, period, district, department, kind, measure = key.split("|", 5)
    return {
        "partition": int(partition),
        "period": period,
        "district": district,
        "department": department,
        "kind": kind,
        "measure": measure,
        "count": count,
    }


def register(pipe: Pipeline, engine: Engine) -> None:
    written: dict[str, int] = {}

    @pipe.app.timer(FLUSH_INTERVAL_S, name="aggregates_flush")
    async def flush_aggregates() -> None:
        await flush(pipe.daily, pipe.monthly)

    async def flush(*tables: faust.Table) -> None:
        changed = {k: v for t in tables for k, v in list(t.items()) if written.get(k) != v}
        if not changed:
            return
        await asyncio.to_thread(_upsert, engine, [_row(k, v) for k, v in changed.items()])
        written.update(changed)
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
            return [dict(r._mapping) for r in rows]
    finally:
        engine.dispose()
