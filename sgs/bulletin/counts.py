"""Reading the worker's aggregates table (`worker_aggregates`, SQLite or PostgreSQL) for the bulletin."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from sgs.domain.bulletin import Counts, ReportError


def read_counts(url: str, months: Iterable[str]) -> dict[str, Counts]:
    """The aggregates of `months`, summed over partitions and kinds. Never creates a store: a missing SQLite
    file or an unreachable server is a ReportError, not an empty bulletin."""
    from sqlalchemy import bindparam, create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ReportError(f"汇总库地址无效 / invalid aggregates URL {url!r}: {exc}") from None
    if parsed.get_backend_name() == "sqlite" and not (parsed.database and Path(parsed.database).is_file()):
        raise ReportError(f"汇总库不存在 / no aggregates store at {url}")
    wanted = list(months)
    out: dict[str, Counts] = {m: {} for m in wanted}
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT period, district, department, measure, SUM(count) FROM worker_aggregates "
                    "WHERE period IN :months GROUP BY period, district, department, measure"
                ).bindparams(bindparam("months", expanding=True)),
                {"months": wanted},
            )
            for period, district, department, measure, count in rows:
                out[period].setdefault((district, department), Counter())[measure] += int(count)
    except SQLAlchemyError as exc:
        raise ReportError(f"无法读取汇总库 / cannot read the aggregates store {url}: {exc}") from None
    finally:
        engine.dispose()
    return out
