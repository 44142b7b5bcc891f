"""The legal-person base (法人库, keyed by 统一社会信用代码) and the population base (人口库, keyed by 居民身份证号),
and the check of D13 against them.

The bases are relational tables (SQLAlchemy Core; SQLite by default, PostgreSQL in deployment). Every row that a
load changes is also published, as `sgs.LegalPerson` / `sgs.Person`, to the compacted topics `sgs.ref.legal_persons`
/ `sgs.ref.persons` keyed by the code, so the workers hold the bases in tables and see changes without a restart.
`reconcile` is the pure check the workers apply to each record.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
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
from stdnum.cn import ric, uscc

from sgs import topics
from sgs.validation import text_issue

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


class PublishError(RefbaseError):
    """The broker did not acknowledge the change stream; the load's transaction is rolled back."""


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


# ---------------------------------------------------------------------------------------------------- rows and CSV


def _parse_date(value: str) -> date:
    text = value.strip().replace("/", "-")
    if re.fullmatch(r"\d{8}", text):
        text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return date.fromisoformat(text)


def _text_reasons(column: str, text: str) -> list[str]:
    """The records' bound on a text cell (too long for a message, control characters), so that every entry of a
    base can be published (issue 17)."""
    issue = text_issue(column, text)
    return [f"{issue.message} [{issue.rule}]"] if issue else []


def parse_legal_person(raw: Mapping[str, str | None]) -> tuple[dict[str, Any] | None, list[str]]:
    """One CSV row (column names already mapped) -> (row, []) or (None, reasons)."""
    reasons = []
    code = (raw.get("uscc") or "").strip().upper()
    if not uscc.is_valid(code):
        reasons.append(f"统一社会信用代码 {code!r} is not a valid GB 32100-2015 code")
    name = (raw.get("name") or "").strip()
    if not name:
        reasons.append("名称 is empty")
    reasons += _text_reasons("名称", name)
    label = (raw.get("status") or "").strip()
    status = STATUS_LABELS.get(label, label.upper())
    if status not in STATUSES:
        reasons.append(f"登记状态 {label!r} is not one of {'/'.join(STATUS_LABELS)}")
    since = None
    if (raw.get("status_since") or "").strip():
        try:
            since = _parse_date(raw["status_since"] or "")
        except ValueError:
            reasons.append(f"状态日期 {raw['status_since']!r} is not a date YYYY-MM-DD")
    if reasons:
        return None, reasons
    return {"uscc": code, "name": name, "status": status, "status_since": since}, []


def parse_person(raw: Mapping[str, str | None]) -> tuple[dict[str, Any] | None, list[str]]:
    """One CSV row (column names already mapped) -> (row, []) or (None, reasons)."""
    reasons = []
    id_no = (raw.get("id_no") or "").strip().upper()
    if not ric.is_valid(id_no):
        reasons.append(
            f"身份证号 {id_no[:6]}... is not a valid GB 11643-1999 number"
        )  # D17: never log it whole
    name = (raw.get("name") or "").strip()
    if not name:
        reasons.append("姓名 is empty")
    reasons += _text_reasons("姓名", name)
    if reasons:
        return None, reasons
    return {"id_no": id_no, "name": name}, []


PARSERS: dict[str, Callable[[Mapping[str, str | None]], tuple[dict[str, Any] | None, list[str]]]] = {
    LEGAL_PERSONS.name: parse_legal_person,
    PERSONS.name: parse_person,
}


@dataclass(frozen=True)
class CsvRow:
    line: int
    row: dict[str, Any] | None
    reasons: list[str]


def read_csv(spec: BaseSpec, path: Path, encoding: str = "utf-8-sig") -> Iterator[CsvRow]:
    """Rows of a base's CSV file (headers in docs/refbase.md); a bad row is yielded with its reasons."""
    try:
        handle = path.open(encoding=encoding, newline="")
    except OSError as exc:
        raise RefbaseError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with handle:
        reader = csv.DictReader(handle)
        try:
            header = reader.fieldnames or []
        except UnicodeDecodeError as exc:
            raise RefbaseError(f"{path}: not {encoding} text: {exc}") from None
        missing = [h for h in spec.required_headers if h not in header]
        if missing:
            raise RefbaseError(
                f"{path}: header: missing column(s) {', '.join(missing)}; found {', '.join(header)}"
            )
        parse = PARSERS[spec.name]
        try:
            for raw in reader:
                mapped = {col: raw.get(h) for h, col in spec.headers.items()}
                row, reasons = parse(mapped)
                yield CsvRow(reader.line_num, row, reasons)
        except UnicodeDecodeError as exc:
            raise RefbaseError(f"{path}: line {reader.line_num + 1}: not {encoding} text: {exc}") from None


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


# ---------------------------------------------------------------------------------------------------- the store


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


# ---------------------------------------------------------------------------------------------------- the change stream


class ChangePublisher:
    """Publishes base entries to their compacted topic, key = code, acks=all, and waits for every ack."""

    def __init__(self, bootstrap: str) -> None:
        from kafka.errors import KafkaError

        from sgs.broker import durable_producer
        from sgs.serialization import default_codec

        self._codec = default_codec()
        self._kafka_error = KafkaError
        try:
            self._producer = durable_producer(
                bootstrap,
                retries=5,
                request_timeout_ms=15000,
                bootstrap_timeout_ms=10000,  # an operator's typo in the address fails fast, not after 30 s
            )
        except KafkaError as exc:
            raise PublishError(f"broker {bootstrap}: {exc}") from None

    def __call__(self, spec: BaseSpec, records: list[dict[str, Any]]) -> None:
        try:
            futures = [
                self._producer.send(
                    spec.topic, key=r[spec.key].encode("utf-8"), value=self._codec.encode(spec.schema, r)
                )
                for r in records
            ]
            self._producer.flush(timeout=30)
            for f in futures:
                f.get(timeout=30)
        except self._kafka_error as exc:
            raise PublishError(f"{spec.topic}: {exc}") from None

    def close(self) -> None:
        self._producer.close(timeout=10)

    def __enter__(self) -> ChangePublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------------- D13


_BRACKETS = str.maketrans({c: "(" for c in "（【[〔［｛{"} | {c: ")" for c in "）】]〕］｝}"})


def normalise_name(name: str) -> str:
    """The form in which two spellings of one registered name compare equal (D13): full-width -> half-width
    (NFKC), every kind of bracket unified to ( ), all whitespace removed, case-folded."""
    text = unicodedata.normalize("NFKC", name).translate(_BRACKETS)
    return "".join(text.split()).casefold()


def reconcile(
    counterpart: Mapping[str, Any],
    decided_on: date,
    legal_persons: Mapping[str, Mapping[str, Any]],
    persons: Mapping[str, Mapping[str, Any]],
) -> tuple[str, str | None]:
    """D13: check a record's counterpart (`sgs.Counterpart`) against the bases; returns (outcome, registered name).

    Outcome is an `sgs.Reconciliation` symbol. Natural persons (自然人) are looked up in the population base by
    证件号码; legal persons and 个体工商户 in the legal-person base by 统一社会信用代码 (transition-period codes cannot
    be checked: the base is keyed by USCC, so they are UNKNOWN_CODE). An entity deregistered (注销) or revoked
    (吊销) on or before the decision date is DEREGISTERED, and that outranks a name mismatch; one deregistered later
    was still registered when decided, so it is judged by its name. A deregistration without a date is taken as
    before any decision. Names compare after `normalise_name`.
    """
    if counterpart.get("category") == "NATURAL_PERSON":
        code = (counterpart.get("id_no") or "").strip().upper()
        entry = persons.get(code) if code else None
    else:
        code = (counterpart.get("uscc") or "").strip().upper()
        entry = legal_persons.get(code) if code else None
    if entry is None:
        return "UNKNOWN_CODE", None
    registered = entry["name"]
    status = entry.get("status", "ACTIVE")
    if status != "ACTIVE":
        since = entry.get("status_since")
        if since is None or since <= decided_on:
            return "DEREGISTERED", registered
    if normalise_name(counterpart.get("name") or "") != normalise_name(registered):
        return "NAME_MISMATCH", registered
    return "MATCHED", registered
