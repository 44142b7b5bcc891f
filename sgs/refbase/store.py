"""The legal-person base (法人库, keyed by 统一社会信用代码) and the population base (人口库, keyed by 居民身份证号),
the store the check of D13 (`sgs.domain.reconciliation`) is made against.

The bases are relational tables (SQLAlchemy Core; SQLite by default, PostgreSQL in deployment). Every row that a
load changes is also published, as `sgs.LegalPerson` / `sgs.Person`, to the compacted topics `sgs.ref.legal_persons`
/ `sgs.ref.persons` keyed by the code, so the workers hold the bases in tables and see changes without a restart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Engine,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    func,
    select,
)
from sqlalchemy.exc import SQLAlchemyError

from sgs.kafka import topics

metadata = MetaData()

legal_persons = Table(
    "legal_persons",
    metadata,
    Column("uscc", String(18), primary_key=True),
    Column("name", String(512), nullable=False),
    Column("status", String(16), nullable=False),  # sgs.RegistrationStatus symbol
    Column("status_since", Date, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

persons = Table(
    "persons",
    metadata,
    Column("id_no", String(18), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

STATUS_LABELS = {"存续": "ACTIVE", "注销": "DEREGISTERED", "吊销": "REVOKED"}  # sgs.RegistrationStatus labels
STATUSES = frozenset(STATUS_LABELS.values())


class RefbaseError(Exception):
    """A store or file that cannot be used at all (as opposed to a bad row, which is reported as data)."""


@dataclass(frozen=True)
class BaseSpec:
    """What differs between the two bases: table, key, CSV headers, Avro schema and topic."""

    name: str  # as on the command line
    table: Table
    key: str
    compared: tuple[str, ...]  # the columns whose change makes a row "changed" (republished)
    headers: dict[str, str]  # CSV header -> column
    required_headers: tuple[str, ...]
    schema: str
    topic: str


LEGAL_PERSONS = BaseSpec(
    name="legal-persons",
    table=legal_persons,
    key="uscc",
    compared=("name", "status", "status_since"),
    headers={"统一社会信用代码": "uscc", "名称": "name", "登记状态": "status", "状态日期": "status_since"},
    required_headers=("统一社会信用代码", "名称", "登记状态"),
    schema="sgs.LegalPerson",
    topic=topics.REF_LEGAL_PERSONS,
)
PERSONS = BaseSpec(
    name="persons",
    table=persons,
    key="id_no",
    compared=("name",),
    headers={"身份证号": "id_no", "姓名": "name"},
    required_headers=("身份证号", "姓名"),
    schema="sgs.Person",
    topic=topics.REF_PERSONS,
)
BASES = {spec.name: spec for spec in (LEGAL_PERSONS, PERSONS)}


def to_avro(spec: BaseSpec, row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored row as the `sgs.LegalPerson` / `sgs.Person` record of the change stream."""
    record = {c.name: row[c.name] for c in spec.table.columns}
    record["updated_at"] = _utc(record["updated_at"])
    return record


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)  # timestamp-millis on the wire


@dataclass
class LoadCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    published: int = 0
    invalid: int = 0

    @property
    def changed(self) -> int:
        return self.inserted + self.updated


Publish = Callable[[BaseSpec, list[dict[str, Any]]], None]


class RefBase:
    """The two bases in one database. `schema` puts the tables in a PostgreSQL schema (tests use their own)."""

    def __init__(self, url: str, schema: str | None = None) -> None:
        try:
            engine = create_engine(url)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise RefbaseError(f"refbase store {url!r}: {exc}") from None
        self.engine: Engine = (
            engine.execution_options(schema_translate_map={None: schema}) if schema else engine
        )
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        try:
            metadata.create_all(self.engine)
        except SQLAlchemyError as exc:
            raise RefbaseError(f"refbase store: cannot create tables: {exc}") from None

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> RefBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, spec: BaseSpec, code: str) -> dict[str, Any] | None:
        """One entry as its Avro record, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(spec.table).where(spec.table.c[spec.key] == code)).mappings().first()
        return to_avro(spec, dict(row)) if row else None

    def count(self, spec: BaseSpec) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(spec.table)).scalar_one())

    def upsert(
        self, spec: BaseSpec, rows: Sequence[dict[str, Any]], publish: Publish | None = None
    ) -> LoadCounts:
        """Insert new rows and update changed ones, in one transaction; `publish` gets the changed rows (as Avro
        records) before the commit, so a broker failure leaves the store as it was and a rerun publishes them."""
        latest = {row[spec.key]: row for row in rows}  # a code twice in one batch: the later line wins
        counts = LoadCounts()
        table, key = spec.table, spec.table.c[spec.key]
        try:
            with self.engine.begin() as conn:
                existing = {
                    r[spec.key]: r
                    for r in conn.execute(select(table).where(key.in_(latest))).mappings().all()
                }
                now = _now()
                inserts, updates = [], []
                for code, row in latest.items():
                    old = existing.get(code)
                    if old is None:
                        inserts.append({**row, "updated_at": now})
                    elif any(old[c] != row[c] for c in spec.compared):
                        updates.append({**row, "updated_at": now})
                    else:
                        counts.unchanged += 1
                if inserts:
                    conn.execute(table.insert(), inserts)
                if updates:
                    values: dict[str, Any] = {c: bindparam(f"v_{c}") for c in (*spec.compared, "updated_at")}
                    stmt = table.update().where(key == bindparam("v_key")).values(values)
                    conn.execute(
                        stmt,
                        [{"v_key": u[spec.key], **{f"v_{c}": u[c] for c in values}} for u in updates],
                    )
                counts.inserted, counts.updated = len(inserts), len(updates)
                changed = [to_avro(spec, r) for r in (*inserts, *updates)]
                if publish and changed:
                    publish(spec, changed)
                    counts.published = len(changed)
        except SQLAlchemyError as exc:
            raise RefbaseError(f"refbase store: {exc}") from None
        return counts

    def batches(self, spec: BaseSpec, size: int = 1000) -> Iterator[list[dict[str, Any]]]:
        """The whole base as Avro records, in key order, `size` at a time (for `sgs refbase publish`)."""
        key = spec.table.c[spec.key]
        after: str | None = None
        while True:
            query = select(spec.table).order_by(key).limit(size)
            if after is not None:
                query = query.where(key > after)
            with self.engine.connect() as conn:
                rows = conn.execute(query).mappings().all()
            if not rows:
                return
            yield [to_avro(spec, dict(r)) for r in rows]
            after = rows[-1][spec.key]
