"""The sink store: what one tier (省 / 国家) holds, its consumer offsets, its receipt outbox and its access log.

SQLAlchemy 2 Core, so the same code runs on SQLite (the embedded default) and PostgreSQL (the deployment).
Every write of a relay message happens in one transaction together with the consumer offset it came from
(`apply_batch`), so a crash between the write and the Kafka commit neither loses nor duplicates: on start the
consumer seeks to the offsets stored here.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from sgs.domain.kinds import KINDS

PUBLIC_PAGE_MAX = 100


class StoreError(Exception):
    """The store cannot be opened or used (bad URL, unreachable database)."""


def normalise_name(text: str) -> str:
    """Search key for names and document numbers: NFKC folds full-width forms （ＡＢＣ） and brackets, spaces go,
    Latin letters lower-case, so `上海 某某（集团）` finds `上海某某(集团)`."""
    return "".join(unicodedata.normalize("NFKC", text).split()).lower()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


def record_json(record: dict[str, Any]) -> str:
    """The stored copy of a record (the pages and the API read it back). orjson writes dates and times as
    `isoformat` does, so rows stored before it read the same; it costs a sixth of `json.dumps` (issue 14)."""
    return orjson.dumps(record, default=_json_default, option=orjson.OPT_SORT_KEYS).decode()


def kind_of(record_id: str) -> str:
    """The bounded metrics label of a record id `<kind>:<authority uscc>:<doc no>`."""
    prefix = record_id.split(":", 1)[0]
    return prefix if prefix in KINDS else "other"


@dataclass(frozen=True)
class Row:
    """The searchable columns of one relayed record, extracted from the Avro record (D1, D2, D14, D17)."""

    record_id: str
    version: int
    kind: str
    counterpart_name: str
    counterpart_category: str
    uscc: str | None
    decision_doc_no: str
    authority: str
    authority_uscc: str
    division_code: str
    source_node: str
    receipt_id: str
    decided_on: date
    publicity_end: date | None
    published_at: datetime
    for_publication: bool
    simple_procedure: bool
    under_objection: bool
    revoked: bool
    record: str
    rule_set: str | None = None  # the rule set and tier that decided publication (rules.toml, D11, D14)
    tier: str | None = None

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Row:
        env, cp = record["envelope"], record["counterpart"]
        ann = record.get("annotations") or {}
        kind = env["kind"].lower()
        accepted_at = ann.get("accepted_at") or env["submitted_at"]
        simple = record.get("procedure") == "SIMPLE"
        return cls(
            record_id=env["record_id"],
            version=int(env["version"]),
            kind=kind,
            counterpart_name=cp["name"],
            counterpart_category=cp["category"],
            uscc=(cp.get("uscc") or None) and cp["uscc"].upper(),
            decision_doc_no=record["decision_doc_no"],
            authority=record["authority"],
            authority_uscc=record["authority_uscc"],
            division_code=env["division_code"],
            source_node=env["source_node"],
            receipt_id=env["receipt_id"],
            decided_on=record["decided_on"],
            # D14: the municipal processors set the publicity end; a penalty's own 公示截止期 is the fallback.
            publicity_end=ann.get("publicity_end") if ann else record.get("publicity_end"),
            # D7: published centrally when the municipal platform accepted it; stable across replays and tiers.
            published_at=accepted_at.astimezone(UTC).replace(tzinfo=None),
            # D11: the rule book decided at the municipal platform (annotations, per tier); a record relayed
            # without annotations falls back to the seeds' rule: 简易程序 is not published.
            for_publication=bool(ann["for_publication"]) if ann else not simple,
            simple_procedure=simple,
            under_objection=bool(ann.get("under_objection", False)),
            revoked=env["operation"] == "REVOKE",
            record=record_json(record),
            rule_set=ann.get("rule_set"),
            tier=ann.get("tier"),
        )


# A decoded relay message: (schema name, record), or with its `Row` when the caller made it already.
Relayed = tuple[str, dict[str, Any]] | tuple[str, dict[str, Any], Row]


def _tables(metadata: sa.MetaData) -> dict[str, sa.Table]:
    records = sa.Table(
        "sink_records",
        metadata,
        sa.Column("record_id", sa.String(400), primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("counterpart_name", sa.Text, nullable=False),
        sa.Column("name_key", sa.Text, nullable=False),
        sa.Column("counterpart_category", sa.String(32), nullable=False),
        sa.Column("uscc", sa.String(32), index=True),
        sa.Column("decision_doc_no", sa.Text, nullable=False),
        sa.Column("doc_no_key", sa.Text, nullable=False),
        sa.Column("authority", sa.Text, nullable=False),
        sa.Column("authority_key", sa.Text, nullable=False),
        sa.Column("authority_uscc", sa.String(32), nullable=False),
        sa.Column("division_code", sa.String(16), nullable=False),
        sa.Column("source_node", sa.String(32), nullable=False),
        sa.Column("receipt_id", sa.String(200), nullable=False),
        sa.Column("decided_on", sa.Date, nullable=False, index=True),
        sa.Column("publicity_end", sa.Date),
        sa.Column("published_at", sa.DateTime, nullable=False, index=True),
        sa.Column("for_publication", sa.Boolean, nullable=False),
        sa.Column("simple_procedure", sa.Boolean, nullable=False),
        sa.Column("under_objection", sa.Boolean, nullable=False),
        sa.Column("withdrawn", sa.Boolean, nullable=False),
        sa.Column("withdrawn_version", sa.BigInteger),
        sa.Column("withdrawal_reason", sa.String(32)),
        sa.Column("withdrawn_at", sa.DateTime, index=True),
        sa.Column("received_at", sa.DateTime, nullable=False, index=True),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("rule_set", sa.String(64)),
        sa.Column("tier", sa.String(16)),
        # The records-held gauge counts by these every second (`held_by_kind`): from the index, not the rows.
        sa.Index("ix_sink_records_held", "withdrawn", "kind"),
    )
    offsets = sa.Table(
        "sink_offsets",
        metadata,
        sa.Column("topic", sa.String(250), primary_key=True),
        sa.Column("partition", sa.Integer, primary_key=True),
        sa.Column("next_offset", sa.BigInteger, nullable=False),
    )
    # The cluster id of the broker the stored offsets belong to: offsets mean nothing on another broker, or on the
    # embedded broker after a restart (it keeps topics in memory and gets a new id each start).
    broker = sa.Table(
        "sink_broker",
        metadata,
        sa.Column("cluster_id", sa.String(200), primary_key=True),
    )
    outbox = sa.Table(
        "sink_receipt_outbox",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.LargeBinary, nullable=False),
    )
    # Receipts the broker refused for good (issue 17): kept with their error for an operator, out of the way.
    parked = sa.Table(
        "sink_receipt_parked",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column("error", sa.String(1000), nullable=False),
        sa.Column("parked_at", sa.DateTime, nullable=False),
    )
    access_log = sa.Table(
        "sink_access_log",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("operator", sa.String(200), nullable=False),
        sa.Column("record_id", sa.String(400), nullable=False),
        sa.Column("version", sa.BigInteger),
        sa.Column("client", sa.String(200)),
        sa.Column("purpose", sa.String(200), nullable=False),
    )
    return {
        "records": records,
        "offsets": offsets,
        "broker": broker,
        "outbox": outbox,
        "parked": parked,
        "access_log": access_log,
    }


@dataclass
class Outcome:
    """What one batch did, for metrics and receipts."""

    upserted: list[Row] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)  # kinds
    withdrawn: list[dict[str, Any]] = field(default_factory=list)  # the withdrawals that took a record down
    ignored_withdrawals: list[dict[str, Any]] = field(
        default_factory=list
    )  # unknown record or newer version held


@dataclass(frozen=True)
class Query:
    """A public search (all criteria optional, combined with AND)."""

    name: str | None = None
    uscc: str | None = None
    doc_no: str | None = None
    authority: str | None = None
    kind: str | None = None
    decided_from: date | None = None
    decided_to: date | None = None
    published_since: datetime | None = None
    page: int = 1
    size: int = 20


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class SinkStore:
    """One tier's store. `schema` puts the tables in a PostgreSQL schema (tests use one per test)."""

    def __init__(self, url: str, *, schema: str | None = None) -> None:
        try:
            parsed = sa.engine.make_url(url)
        except sa.exc.ArgumentError as exc:
            raise StoreError(f"not a database URL: {url!r}") from exc
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.engine: Engine = sa.create_engine(url, pool_pre_ping=True)
            self.url_text = parsed.render_as_string(hide_password=True)
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise StoreError(f"cannot open {parsed.render_as_string(hide_password=True)}: {exc}") from exc
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self.metadata = sa.MetaData(schema=schema)
        t = _tables(self.metadata)
        self.records, self.offsets, self.broker, self.outbox, self.access_log = (
            t["records"],
            t["offsets"],
            t["broker"],
            t["outbox"],
            t["access_log"],
        )
        self.parked = t["parked"]
        self.upsert = self._upsert_statement()
        self.withdraw, self.withdrawn_held = self._withdrawal_statements()
        # built once: built per call, coercing up to a thousand ids into the IN clause cost more than the delete
        self.outbox_sent = self.outbox.delete().where(
            self.outbox.c.id.in_(sa.bindparam("ids", expanding=True))
        )
        try:
            self.metadata.create_all(self.engine)
            self._add_new_columns_and_indexes()
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cannot create the sink tables: {exc}") from exc

    def _add_new_columns_and_indexes(self) -> None:
        """A store created before a nullable column was added gets it (rule_set, tier: issue 15); rows stored
        before have NULL there, which the page shows as not known. So with an index (issue 14: the held count,
        and what changed since a time, which `sgs bench` polls), which `create_all` makes only with its table."""
        have = {
            c["name"] for c in sa.inspect(self.engine).get_columns(self.records.name, self.records.schema)
        }
        with self.engine.begin() as conn:
            for column in self.records.c:
                if column.name not in have and column.nullable:
                    table = self.engine.dialect.identifier_preparer.format_table(self.records)
                    kind = column.type.compile(self.engine.dialect)
                    conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN {column.name} {kind}"))
            for index in self.records.indexes:
                index.create(conn, checkfirst=True)

    def close(self) -> None:
        self.engine.dispose()

    # --- writes (the consumer) ---

    def _upsert_statement(self) -> Any:
        """The one INSERT .. ON CONFLICT DO UPDATE every row goes through, built once: built per row, SQLAlchemy's
        statement construction and cache-key work cost the sink more than the database did. It returns the
        record id of each row it wrote; a row the WHERE skipped returns nothing, so an executemany of a run of
        rows (`_upsert_run`) tells which of them were written."""
        r = self.records
        insert = (postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert)(r)
        # Higher replaces lower (D4); a version at or below a withdrawal's stays withdrawn. The same version again
        # replaces the row only when its objection mark changed: the municipal platform relays the held version
        # again when an objection is raised or settled (D15); any other repeat is a duplicate.
        newer = sa.and_(
            sa.or_(
                r.c.version < insert.excluded.version,
                sa.and_(
                    r.c.version == insert.excluded.version,
                    r.c.under_objection != insert.excluded.under_objection,
                ),
            ),
            sa.func.coalesce(r.c.withdrawn_version, -1) < insert.excluded.version,
        )
        return insert.on_conflict_do_update(
            index_elements=[r.c.record_id],
            set_={c.name: insert.excluded[c.name] for c in r.c if c.name != "record_id"},
            where=newer,
        ).returning(r.c.record_id)

    @staticmethod
    def _upsert_values(row: Row, now: datetime) -> dict[str, Any]:
        return {
            "record_id": row.record_id,
            "version": row.version,
            "kind": row.kind,
            "counterpart_name": row.counterpart_name,
            "name_key": normalise_name(row.counterpart_name),
            "counterpart_category": row.counterpart_category,
            "uscc": row.uscc,
            "decision_doc_no": row.decision_doc_no,
            "doc_no_key": normalise_name(row.decision_doc_no),
            "authority": row.authority,
            "authority_key": normalise_name(row.authority),
            "authority_uscc": row.authority_uscc,
            "division_code": row.division_code,
            "source_node": row.source_node,
            "receipt_id": row.receipt_id,
            "decided_on": row.decided_on,
            "publicity_end": row.publicity_end,
            "published_at": row.published_at,
            "for_publication": row.for_publication,
            "simple_procedure": row.simple_procedure,
            "under_objection": row.under_objection,
            # D4: a REVOKE version is held (so older versions stay absorbed) but is not shown.
            "withdrawn": row.revoked,
            "withdrawn_version": row.version if row.revoked else None,
            "withdrawal_reason": "REVOKED" if row.revoked else None,
            "withdrawn_at": now if row.revoked else None,
            "received_at": now,
            "record": row.record,
            "rule_set": row.rule_set,
            "tier": row.tier,
        }

    def _withdrawal_statements(self) -> tuple[Any, Any]:
        """The withdrawal's UPDATE and its duplicate check, built once like the upsert (built per withdrawal, their
        construction cost more than the rest of the withdrawal)."""
        r = self.records
        version = sa.bindparam("w_version", type_=sa.BigInteger)
        withdraw = (
            r.update()
            .where(
                r.c.record_id == sa.bindparam("w_record_id"),
                r.c.version <= version,
                sa.func.coalesce(r.c.withdrawn_version, -1) < version,
            )
            .values(
                withdrawn=True,
                withdrawn_version=version,
                withdrawal_reason=sa.bindparam("w_reason", type_=r.c.withdrawal_reason.type),
                withdrawn_at=sa.bindparam("w_at", type_=r.c.withdrawn_at.type),
            )
        )
        held = sa.select(r.c.withdrawn_version).where(r.c.record_id == sa.bindparam("w_record_id"))
        return withdraw, held

    def _withdraw(self, conn: Connection, w: dict[str, Any], now: datetime) -> bool:
        """A withdrawal for version v takes down the held record if it is at version <= v (D4, D14-D16);
        a later, higher version publishes again (a corrected decision travels as a new version, D15)."""
        result = conn.execute(
            self.withdraw,
            {
                "w_record_id": w["record_id"],
                "w_version": int(w["version"]),
                "w_reason": w["reason"],
                "w_at": now,
            },
        )
        return result.rowcount == 1

    def _withdrawal_is_duplicate(self, conn: Connection, w: dict[str, Any]) -> bool:
        held = conn.execute(self.withdrawn_held, {"w_record_id": w["record_id"]}).first()
        return (
            held is not None and held.withdrawn_version is not None and held.withdrawn_version >= w["version"]
        )

    def apply(
        self,
        messages: Sequence[Relayed],
        offsets: dict[tuple[str, int], int],
        receipt_for: Any,
        *,
        now: datetime | None = None,
    ) -> Outcome:
        """Apply decoded relay messages (schema name, record) and advance the stored offsets, in ONE
        transaction; the receipts that `receipt_for(kind_of_event, record)` builds go to the outbox in the same
        transaction, so none is lost if the process dies before sending them. A record's `Row` may come with it,
        when the caller already made it (the consumer does, to refuse what cannot be stored).

        The messages take effect in order, as if applied one by one, but the records go to the database in runs
        (issue 14): consecutive records with distinct record ids are upserted by one executemany (SQLAlchemy's
        insertmanyvalues: one multi-row INSERT .. ON CONFLICT .. RETURNING), since no row of a run can change
        what another one does. A record id seen again in the run, or a withdrawal, ends the run first: PostgreSQL
        refuses one statement that updates a row twice, and a withdrawal must see the records before it. The
        receipts are queued with one executemany per batch, in the order of the messages."""
        now = now or datetime.now(UTC).replace(tzinfo=None)
        outcome = Outcome()
        receipts: list[dict[str, Any]] = []
        with self.engine.begin() as conn:
            run: dict[str, tuple[Row, dict[str, Any]]] = {}  # record id -> (row, record), in message order
            for name, record, *made in messages:
                if name == "sgs.Withdrawal":
                    self._upsert_run(conn, run, now, outcome, receipts, receipt_for)
                    run = {}
                    if self._withdraw(conn, record, now):
                        outcome.withdrawn.append(record)
                        self._queue(receipts, receipt_for("withdrawn", record))
                    elif self._withdrawal_is_duplicate(conn, record):
                        outcome.duplicates.append(kind_of(record["record_id"]))
                    else:
                        outcome.ignored_withdrawals.append(record)
                    continue
                row = made[0] if made else Row.from_record(record)
                if row.record_id in run:
                    self._upsert_run(conn, run, now, outcome, receipts, receipt_for)
                    run = {}
                run[row.record_id] = (row, record)
            self._upsert_run(conn, run, now, outcome, receipts, receipt_for)
            if receipts:
                conn.execute(self.outbox.insert(), receipts)
            self._store_offsets(conn, offsets)
        return outcome

    def _upsert_run(
        self,
        conn: Connection,
        run: dict[str, tuple[Row, dict[str, Any]]],
        now: datetime,
        outcome: Outcome,
        receipts: list[dict[str, Any]],
        receipt_for: Any,
    ) -> None:
        """Upsert a run of records with distinct ids in one statement; those it wrote are upserted (a receipt
        each), the others duplicates, in the run's order."""
        if not run:
            return
        values = [self._upsert_values(row, now) for row, _ in run.values()]
        written = set(conn.execute(self.upsert, values).scalars())
        for row, record in run.values():
            if row.record_id in written:
                outcome.upserted.append(row)
                self._queue(receipts, receipt_for("withdrawn" if row.revoked else "relayed", record))
            else:
                outcome.duplicates.append(row.kind)

    @staticmethod
    def _queue(receipts: list[dict[str, Any]], receipt: tuple[str, bytes] | None) -> None:
        if receipt is not None:
            receipts.append({"key": receipt[0], "value": receipt[1]})

    def _store_offsets(self, conn: Connection, offsets: dict[tuple[str, int], int]) -> None:
        """The next offset to read, as consumed: a consumer that lost its partition writing an older offset only
        makes the next start re-read messages the store absorbs as duplicates."""
        o = self.offsets
        for (topic, partition), next_offset in offsets.items():
            updated = conn.execute(
                o.update()
                .where(o.c.topic == topic, o.c.partition == partition)
                .values(next_offset=next_offset)
            )
            if updated.rowcount == 0:
                conn.execute(o.insert().values(topic=topic, partition=partition, next_offset=next_offset))

    def skip(self, offsets: dict[tuple[str, int], int]) -> None:
        """Advance past messages that carry nothing to store (poison, refused): the offsets alone."""
        with self.engine.begin() as conn:
            self._store_offsets(conn, offsets)

    def adopt_broker(self, cluster_id: str) -> int:
        """Make `cluster_id` the broker the stored offsets belong to. Offsets stored for another broker (or before
        the broker was recorded) are forgotten, so the relay is read again from the start and the store absorbs
        what it already holds; returns how many were forgotten."""
        with self.engine.begin() as conn:
            known = conn.execute(sa.select(self.broker.c.cluster_id)).scalars().all()
            if known == [cluster_id]:
                return 0
            forgotten = conn.execute(self.offsets.delete()).rowcount
            conn.execute(self.broker.delete())
            conn.execute(self.broker.insert(), {"cluster_id": cluster_id})
            return int(forgotten)

    def stored_offsets(self, topic: str) -> dict[int, int]:
        o = self.offsets
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(o.c.partition, o.c.next_offset).where(o.c.topic == topic))
            return {r.partition: r.next_offset for r in rows}

    def pending_receipts(self, limit: int = 1000) -> list[tuple[int, str, bytes]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(self.outbox).order_by(self.outbox.c.id).limit(limit))
            return [(r.id, r.key, bytes(r.value)) for r in rows]

    def receipts_sent(self, ids: Sequence[int]) -> None:
        if ids:
            with self.engine.begin() as conn:
                conn.execute(self.outbox_sent, {"ids": list(ids)})

    def park_receipt(self, receipt: int, error: str) -> None:
        """A receipt the broker can never take: out of the outbox, kept with its error, so the others flow on."""
        o, p = self.outbox, self.parked
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(o).where(o.c.id == receipt)).first()
            if row is None:
                return
            conn.execute(
                p.insert(),
                {
                    "id": row.id,
                    "key": row.key,
                    "value": row.value,
                    "error": error[:1000],
                    "parked_at": datetime.now(UTC).replace(tzinfo=None),
                },
            )
            conn.execute(o.delete().where(o.c.id == receipt))

    # --- reads ---

    def held_by_kind(self) -> dict[str, int]:
        """Records held and not withdrawn, per kind (the records-held gauge)."""
        r = self.records
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(r.c.kind, sa.func.count()).where(r.c.withdrawn.is_(False)).group_by(r.c.kind)
            )
            return {kind: int(n) for kind, n in rows}

    def _public(self, today: date) -> Any:
        """D7, D11, D14, D17: shown only while in the publicity period, not withdrawn, and for publication."""
        r = self.records
        return sa.and_(
            r.c.withdrawn.is_(False),
            r.c.for_publication.is_(True),
            sa.or_(r.c.publicity_end.is_(None), r.c.publicity_end >= today),
        )

    def search(self, q: Query, today: date) -> tuple[int, list[sa.Row[Any]]]:
        """Public search; returns (total matches, the page of rows)."""
        r = self.records
        where = [self._public(today)]
        if q.name:
            where.append(r.c.name_key.like(_like(normalise_name(q.name)), escape="\\"))
        if q.uscc:
            where.append(r.c.uscc == q.uscc.strip().upper())
        if q.doc_no:
            where.append(r.c.doc_no_key.like(_like(normalise_name(q.doc_no)), escape="\\"))
        if q.authority:
            where.append(r.c.authority_key.like(_like(normalise_name(q.authority)), escape="\\"))
        if q.kind:
            where.append(r.c.kind == q.kind)
        if q.decided_from:
            where.append(r.c.decided_on >= q.decided_from)
        if q.decided_to:
            where.append(r.c.decided_on <= q.decided_to)
        if q.published_since:
            where.append(r.c.published_at >= q.published_since)
        size = max(1, min(q.size, PUBLIC_PAGE_MAX))
        page = max(1, q.page)
        with self.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(r).where(*where)).scalar_one()
            rows = conn.execute(
                sa.select(r)
                .where(*where)
                .order_by(r.c.published_at.desc(), r.c.decided_on.desc(), r.c.record_id)
                .limit(size)
                .offset((page - 1) * size)
            ).all()
        return int(total), list(rows)

    def public_record(self, record_id: str, today: date) -> sa.Row[Any] | None:
        r = self.records
        with self.engine.connect() as conn:
            return conn.execute(sa.select(r).where(r.c.record_id == record_id, self._public(today))).first()

    def subject(self, uscc: str, today: date) -> list[sa.Row[Any]]:
        """Every public record of one counterpart (D18: 红黑名单归集到主体)."""
        r = self.records
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    sa.select(r)
                    .where(r.c.uscc == uscc.strip().upper(), self._public(today))
                    .order_by(r.c.decided_on.desc(), r.c.record_id)
                ).all()
            )

    def operator_read(self, record_id: str, operator: str, client: str | None) -> sa.Row[Any] | None:
        """The full held record, whatever its publication state, for an authenticated operator; the read is
        logged (who, when, what) in the same transaction (D17)."""
        r = self.records
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(r).where(r.c.record_id == record_id)).first()
            conn.execute(
                self.access_log.insert().values(
                    at=datetime.now(UTC).replace(tzinfo=None),
                    operator=operator,
                    record_id=record_id,
                    version=row.version if row else None,
                    client=client,
                    purpose="operator.record" if row else "operator.record.not_found",
                )
            )
            return row

    def operator_denied(self, record_id: str, client: str | None) -> None:
        """A refused attempt at a full record, logged like a read: no operator, purpose `operator.denied`."""
        with self.engine.begin() as conn:
            conn.execute(
                self.access_log.insert().values(
                    at=datetime.now(UTC).replace(tzinfo=None),
                    operator="",
                    record_id=record_id,
                    version=None,
                    client=client,
                    purpose="operator.denied",
                )
            )

    def access_entries(self) -> list[sa.Row[Any]]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(self.access_log).order_by(self.access_log.c.id)).all())

    def dump_records(self, prefix: str = "") -> Iterator[tuple[Any, ...]]:
        """Every held row (tests compare stores with it), ordered by record id."""
        r = self.records
        with self.engine.connect() as conn:
            yield from (
                tuple(row)
                for row in conn.execute(
                    sa.select(r)
                    .where(r.c.record_id.startswith(prefix, autoescape=True))
                    .order_by(r.c.record_id)
                )
            )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets the query API read while the consumer writes; busy_timeout waits instead of failing."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
