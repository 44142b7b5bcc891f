"""The district node's durable state: the outbox of messages not yet acknowledged by the broker (taken records for
`sgs.submitted.<kind>`, rejections for `sgs.rejected`), the messages parked because the broker can never take them,
the latest version taken of every record (D4), and every receipt with its history.

One SQLite file in WAL mode with `synchronous=FULL`: a record is acknowledged to its department (202) only after the
transaction that puts it in the outbox has committed, so a SIGKILL or a power cut after the answer loses nothing.
A record leaves the outbox only when the broker has acknowledged it (`mark_sent`).

All access goes through one connection behind one lock: the HTTP handlers, the sender thread and the receipt
listener share it. SQLite serialises writers anyway; one connection keeps the transactions simple and honest.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sgs.kafka.topics import DECISIONS, REJECTED, SUBMITTED

# Receipt statuses (sgs.Receipt.status) in the order a record normally moves through them. The current status of a
# receipt is the furthest one seen, so a receipt that arrives late (ACCEPTED consumed before the sender's own SENT,
# the province's RELAYED_PROVINCIAL after the nation's RELAYED_NATIONAL) never moves a record backwards; the
# history keeps every event. 信用中国 is the top of the tree (D10), so the nation is further than the province.
# PARKED, RESENT and DROPPED are the node's own (an operator's work on a message the broker refused for good,
# `sgs node parked`); they never travel on `sgs.receipts.<code>`.
RANK = {
    "RECEIVED": 0,
    "PARKED": 1,
    "RESENT": 1,
    "SENT": 1,
    "ACCEPTED": 2,
    "REJECTED": 2,
    "RELAYED_PROVINCIAL": 3,
    "RELAYED_NATIONAL": 4,
    "WITHDRAWN": 5,
    "DROPPED": 5,
}

# A receipt event is one message: the same receipt, status and millisecond from two senders (both sinks withdrawing a
# record within the same ms) are two events, told apart by their detail; a redelivered message is one.
_RECEIPT_EVENTS = """CREATE TABLE IF NOT EXISTS receipt_events (
    receipt_id TEXT NOT NULL,
    status TEXT NOT NULL,
    at INTEGER NOT NULL,
    detail TEXT,
    reasons TEXT NOT NULL DEFAULT '[]'
)"""
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS receipts (
    receipt_id TEXT PRIMARY KEY,
    record_id TEXT,
    version INTEGER,
    kind TEXT NOT NULL,
    node TEXT NOT NULL,
    department TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    content_hash TEXT,
    portal_to_submit_working_days INTEGER,
    calendar_provisional INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS receipts_by_department ON receipts (department, status, created_at);
CREATE INDEX IF NOT EXISTS receipts_by_record ON receipts (record_id);
{_RECEIPT_EVENTS};
CREATE UNIQUE INDEX IF NOT EXISTS receipt_events_once ON receipt_events (receipt_id, status, at, coalesce(detail, ''));
CREATE INDEX IF NOT EXISTS receipt_events_by_receipt ON receipt_events (receipt_id);
CREATE TABLE IF NOT EXISTS latest_versions (
    record_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    receipt_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    receipt_id TEXT NOT NULL,
    record_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    node TEXT NOT NULL,
    department TEXT NOT NULL,
    payload BLOB NOT NULL,
    enqueued_at INTEGER NOT NULL,
    topic TEXT
);
CREATE TABLE IF NOT EXISTS parked (
    seq INTEGER PRIMARY KEY,
    receipt_id TEXT NOT NULL,
    record_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    node TEXT NOT NULL,
    department TEXT NOT NULL,
    payload BLOB NOT NULL,
    enqueued_at INTEGER NOT NULL,
    topic TEXT NOT NULL,
    error TEXT NOT NULL,
    parked_at INTEGER NOT NULL
);
"""
# After the outbox has its `topic` (a store from before rejections travelled gets it on opening): the sender's lane
# of decisions (`NodeStore.pending`).
_OUTBOX_INDEXES = f"""
CREATE INDEX IF NOT EXISTS outbox_decisions ON outbox (seq) WHERE topic = '{DECISIONS}';
CREATE INDEX IF NOT EXISTS outbox_by_record ON outbox (record_id, seq);
"""
# An outbox row's `record_id` is its message key: the record id, or for a rejection of a record whose identity
# could not be read, its receipt id. `topic` NULL (rows written before rejections travelled) = sgs.submitted.<kind>.


def _key_receipt_events_by_message(db: sqlite3.Connection) -> None:
    """A store written when receipt events were unique on (receipt, status, at) without the detail gets its
    events table rebuilt without that constraint (SQLite cannot drop it in place); rows and their order stay."""
    if not db.execute(
        "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_autoindex_receipt_events_1'"
    ).fetchone():
        return
    db.execute("BEGIN IMMEDIATE")
    db.execute("ALTER TABLE receipt_events RENAME TO receipt_events_keyed_by_time")
    db.execute(_RECEIPT_EVENTS)
    db.execute(
        "INSERT INTO receipt_events (rowid, receipt_id, status, at, detail, reasons) "
        "SELECT rowid, receipt_id, status, at, detail, reasons FROM receipt_events_keyed_by_time"
    )
    db.execute("DROP TABLE receipt_events_keyed_by_time")
    db.execute("COMMIT")


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Candidate:
    """A record that passed validation and is ready to be taken: its Avro bytes and what D4 compares."""

    receipt_id: str
    record_id: str
    version: int
    kind: str
    node: str
    department: str
    content_hash: str  # of what the department sent (fields, operation, published_at), not of the envelope
    payload: bytes  # Avro single-object bytes of the whole record, envelope included
    submitted_at: int  # ms
    portal_to_submit_working_days: int | None = None
    calendar_provisional: bool = False


@dataclass(frozen=True)
class Admission:
    """What the store made of a candidate (D4).

    outcome: "taken" (new record or higher version), "unchanged" (same version, same content: the earlier receipt),
    "conflict" (same version, different content) or "outdated" (lower than the version already taken)."""

    outcome: str
    receipt_id: str
    held_version: int | None = None  # the version already taken, for "conflict" / "outdated"


@dataclass(frozen=True)
class Pending:
    """One outbox entry waiting for the broker's acknowledgement: a taken record or a rejection (D12)."""

    seq: int
    receipt_id: str
    record_id: str  # the message key
    kind: str
    node: str
    department: str
    payload: bytes
    enqueued_at: int
    topic: str

    @property
    def is_rejection(self) -> bool:
        return self.topic == REJECTED

    @property
    def is_record(self) -> bool:
        """A taken record (not a rejection or a decision travelling upward)."""
        return self.topic in SUBMITTED.values()


@dataclass(frozen=True)
class Parked:
    """An outbox message the broker refused for good (too large, invalid), moved aside so the rest flows on."""

    seq: int  # its outbox sequence number, which `sgs node parked resend|drop` take
    receipt_id: str
    record_id: str
    node: str
    department: str
    topic: str
    size: int  # bytes
    enqueued_at: int
    error: str
    parked_at: int


@dataclass
class ReceiptView:
    """A receipt as the department reads it: current status plus the full history."""

    receipt_id: str
    record_id: str | None
    version: int | None
    kind: str
    node: str
    department: str
    status: str
    created_at: int
    updated_at: int
    portal_to_submit_working_days: int | None
    calendar_provisional: bool
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def reasons(self) -> list[dict[str, Any]]:
        """The reasons of the latest rejection, if any (D12: the department must be told why)."""
        for event in reversed(self.history):
            if event["status"] == "REJECTED":
                return list(event["reasons"])
        return []


@dataclass(frozen=True)
class ReceiptUpdate:
    """One `sgs.Receipt` as the store applies it (`at` in epoch milliseconds)."""

    receipt_id: str
    status: str
    at: int
    detail: str | None = None
    reasons: list[dict[str, Any]] = field(default_factory=list)


class StoreError(Exception):
    """The node's store cannot be opened or written (disk full, corrupt file, wrong path)."""


class NodeStore:
    """The SQLite file behind a district node (or several nodes served by one process)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=10000")
            _key_receipt_events_by_message(self._db)
            self._db.executescript(_SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(outbox)")}
            if "topic" not in columns:  # a store written before rejections travelled upward
                self._db.execute("ALTER TABLE outbox ADD COLUMN topic TEXT")
            self._db.executescript(_OUTBOX_INDEXES)
            # A second connection for the counts /healthz and /metrics read: in WAL mode it reads the last commit
            # without waiting for the writers' lock, so the probes answer while departments flood the node.
            self._reader = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._reader.execute("PRAGMA query_only=ON")
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open the node store {path}: {exc}") from exc
        self._lock = threading.RLock()
        self._reader_lock = threading.Lock()

    def close(self) -> None:
        with self._lock, self._reader_lock:
            self._reader.close()
            self._db.close()

    def durability(self) -> tuple[str, int]:
        """The journal mode and synchronous level the store runs with: ("wal", 2) is WAL with FULL fsync."""
        with self._lock:
            mode = self._db.execute("PRAGMA journal_mode").fetchone()[0]
            return str(mode), int(self._db.execute("PRAGMA synchronous").fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One durable transaction: committed (and fsynced) when the block ends, rolled back if it raises."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot write the node store {self.path}: {exc}") from exc
            try:
                yield Transaction(self._db)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise StoreError(f"cannot write the node store {self.path}: {exc}") from exc
            except BaseException:
                self._rollback()
                raise

    def _rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    # --- the sender's side -------------------------------------------------------------------------------------

    def pending(self, limit: int) -> list[Pending]:
        """At most `limit` messages not yet acknowledged by the broker: first the decisions on records none of
        whose messages wait before them (`_DECISIONS_FIRST`), then the rest in the order they were enqueued.

        A decision is a department's answer about a record already accepted upward (D15, D16); queued behind
        a backlog of other records it waited up to 129 s in `sgs bench --records 200000` (issue 14). It never
        passes a message of its own record, which keeps its place in that record's order (the message key).

        Read through the reader connection, in one snapshot: only the sender takes messages out of the outbox, so the
        last commit is all it needs, and it does not wait while intake and the receipt listener write (issue 14: it
        spent half its time waiting for the writers' lock in `sgs bench --records 30000`)."""
        with self._reader_lock:
            self._reader.execute("BEGIN")
            try:
                first = self._reader.execute(_DECISIONS_FIRST, (limit,)).fetchall()
                rest = self._reader.execute(
                    f"SELECT {_PENDING_COLUMNS} FROM outbox ORDER BY seq LIMIT ?", (limit,)
                ).fetchall()
            finally:
                self._reader.execute("COMMIT")
        chosen = {row[0] for row in first}
        rows = first + [row for row in rest if row[0] not in chosen][: limit - len(first)]
        return [
            Pending(seq, receipt_id, key, kind, node, department, payload, at, topic or SUBMITTED[kind])
            for seq, receipt_id, key, kind, node, department, payload, at, topic in rows
        ]

    def mark_sent(self, sent: list[tuple[Pending, int]]) -> None:
        """The broker acknowledged these (entry, ack time ms): they leave the outbox and the receipts of taken
        records say SENT (a rejection sent upward stays REJECTED for its department)."""
        if not sent:
            return
        with self.transaction() as tx:
            tx.db.executemany("DELETE FROM outbox WHERE seq = ?", [(entry.seq,) for entry, _ in sent])
            tx.add_events(
                [ReceiptUpdate(entry.receipt_id, "SENT", at) for entry, at in sent if not entry.is_rejection]
            )

    def park(self, entry: Pending, error: str, at: int) -> None:
        """Move a message the broker can never take out of the outbox, with its error; its receipt says PARKED."""
        with self.transaction() as tx:
            tx.db.execute(
                "INSERT INTO parked (seq, receipt_id, record_id, kind, node, department, payload, enqueued_at, "
                "topic, error, parked_at) SELECT seq, receipt_id, record_id, kind, node, department, payload, "
                "enqueued_at, ?, ?, ? FROM outbox WHERE seq = ?",
                (entry.topic, error, at, entry.seq),
            )
            tx.db.execute("DELETE FROM outbox WHERE seq = ?", (entry.seq,))
            tx.add_event(entry.receipt_id, "PARKED", at, error)

    def parked(self) -> list[Parked]:
        """Every parked message, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, receipt_id, record_id, node, department, topic, length(payload), enqueued_at, error, "
                "parked_at FROM parked ORDER BY seq"
            ).fetchall()
        return [Parked(*row) for row in rows]

    def parked_counts(self) -> dict[str, int]:
        """Per node: messages parked (the `sgs_node_parked` gauge and /healthz)."""
        with self._reader_lock:
            rows = self._reader.execute("SELECT node, count(*) FROM parked GROUP BY node").fetchall()
        return dict(rows)

    def resend(self, seqs: list[int], at: int) -> list[int]:
        """Put parked messages back at the end of the outbox (after the cause was fixed, e.g. a larger broker
        limit); returns the sequence numbers found. Their receipts say RESENT until the broker acknowledges."""
        return self._unpark(seqs, at, "RESENT")

    def drop(self, seqs: list[int], at: int) -> list[int]:
        """Forget parked messages for good (the department resubmits a corrected record); receipts say DROPPED."""
        return self._unpark(seqs, at, "DROPPED")

    def _unpark(self, seqs: list[int], at: int, event: str) -> list[int]:
        done = []
        with self.transaction() as tx:
            for seq in seqs:
                row = tx.db.execute(
                    "SELECT receipt_id, record_id, kind, node, department, payload, topic FROM parked "
                    "WHERE seq = ?",
                    (seq,),
                ).fetchone()
                if row is None:
                    continue
                receipt_id, key, kind, node, department, payload, topic = row
                tx.db.execute("DELETE FROM parked WHERE seq = ?", (seq,))
                if event == "RESENT":
                    tx.enqueue(receipt_id, key, kind, node, department, payload, at, topic)
                tx.add_event(receipt_id, event, at)
                done.append(seq)
        return done

    def outbox_stats(self) -> dict[str, tuple[int, int | None]]:
        """Per node: (records waiting, enqueue time ms of the oldest) — the outbox depth and age metrics."""
        with self._reader_lock:
            rows = self._reader.execute(
                "SELECT node, count(*), min(enqueued_at) FROM outbox GROUP BY node"
            ).fetchall()
        return {node: (count, oldest) for node, count, oldest in rows}

    def record_accepted(self, record_id: str) -> bool | None:
        """Whether the municipal platform accepted a version of this record taken here (an ACCEPTED or later
        receipt of a record, not of a decision, which has no version); None when no version was ever taken here."""
        with self._lock:
            if not self._db.execute(
                "SELECT 1 FROM latest_versions WHERE record_id = ?", (record_id,)
            ).fetchone():
                return None
            return bool(
                self._db.execute(
                    "SELECT 1 FROM receipts WHERE record_id = ? AND version IS NOT NULL AND status IN "
                    "('ACCEPTED', 'RELAYED_PROVINCIAL', 'RELAYED_NATIONAL', 'WITHDRAWN') LIMIT 1",
                    (record_id,),
                ).fetchone()
            )

    # --- receipts ----------------------------------------------------------------------------------------------

    def apply_receipts(self, receipts: list[ReceiptUpdate]) -> list[bool]:
        """Receipts from the municipal platform or the sinks, in one transaction (one fsync for a polled batch,
        not one per receipt: a record brings about five). For each, False when this store never issued its
        `receipt_id` (another process's record); a receipt seen twice (at-least-once delivery) changes nothing."""
        with self.transaction() as tx:
            ours = set(
                _in_chunks(tx.db, "SELECT receipt_id FROM receipts WHERE receipt_id IN ({})", _ids(receipts))
            )
            known = [(r.receipt_id,) in ours for r in receipts]
            tx.add_events([r for r, k in zip(receipts, known, strict=True) if k])
        return known

    def refused(self, node: str, key: str, rejection: bytes, at: int) -> None:
        """A message from the federation refused unread, its signature not its writer's (issue 16): `rejection`
        (an encoded `sgs.Rejection`, stage `signature`) waits in the outbox for `sgs.rejected`, like the node's
        own rejections, so what reached this node is on record where operators look."""
        with self.transaction() as tx:
            tx.db.execute(
                "INSERT INTO outbox (receipt_id, record_id, kind, node, department, payload, enqueued_at, topic) "
                "VALUES (?, ?, 'receipt', ?, '', ?, ?, ?)",
                (f"refused-{at}", key, node, rejection, at, REJECTED),
            )

    def receipt(self, receipt_id: str) -> ReceiptView | None:
        """A receipt with its history, as last committed. Receipts are read on the reader connection, like the
        probes' counts: a department asking after its records does not wait for the writers' fsyncs while the
        node takes a flood (issue 14)."""
        with self._reader_lock:
            row = self._reader.execute(
                f"SELECT {_RECEIPT_COLUMNS} FROM receipts WHERE receipt_id = ?", (receipt_id,)
            )
            found = row.fetchone()
            if found is None:
                return None
            view = _view(found)
            view.history = self._history(receipt_id)
        return view

    def receipts(
        self, department: str, status: str | None = None, limit: int = 100, offset: int = 0
    ) -> tuple[int, list[ReceiptView]]:
        """A department's receipts, newest first, with the total count matching the filter."""
        where, params = "department = ?", [department]
        if status:
            where += " AND status = ?"
            params.append(status)
        with self._reader_lock:
            total = self._reader.execute(f"SELECT count(*) FROM receipts WHERE {where}", params).fetchone()[0]
            rows = self._reader.execute(
                f"SELECT {_RECEIPT_COLUMNS} FROM receipts WHERE {where} "
                "ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
                [*params, limit, offset],
            ).fetchall()
            views = [_view(row) for row in rows]
            for view in views:
                view.history = self._history(view.receipt_id)
        return total, views

    def decision_answers(self) -> list[tuple[int, int]]:
        """(taken, answered), epoch ms, of each decision the municipal platform has answered: when the node took
        it, and its first ACCEPTED or REJECTED event. A decision's receipt has no version and starts RECEIVED
        (`take_decision`); a record the node rejected unread has no version either, but starts REJECTED."""
        with self._reader_lock:
            return self._reader.execute(_DECISION_ANSWERS).fetchall()

    def record_trails(self) -> list[tuple[str, dict[str, int]]]:
        """(record id, {event: first time, epoch ms}) of each version of a record taken here, for the events of
        `TRAIL_EVENTS` it has reached: where its time went on the way up (`sgs bench`)."""
        with self._reader_lock:
            rows = self._reader.execute(_RECORD_TRAILS).fetchall()
        return [
            (record_id, {event: at for event, at in zip(TRAIL_EVENTS, times, strict=True) if at is not None})
            for record_id, *times in rows
        ]

    def _history(self, receipt_id: str) -> list[dict[str, Any]]:
        rows = self._reader.execute(
            "SELECT status, at, detail, reasons FROM receipt_events WHERE receipt_id = ? ORDER BY at, rowid",
            (receipt_id,),
        ).fetchall()
        return [{"status": s, "at": at, "detail": d, "reasons": json.loads(r)} for s, at, d, r in rows]


_DECISION_ANSWERS = """
SELECT r.created_at, min(e.at) FROM receipts r JOIN receipt_events e ON e.receipt_id = r.receipt_id
WHERE r.version IS NULL AND e.status IN ('ACCEPTED', 'REJECTED')
  AND EXISTS (SELECT 1 FROM receipt_events t WHERE t.receipt_id = r.receipt_id AND t.status = 'RECEIVED')
GROUP BY r.receipt_id
"""
# The events `record_trails` gives the first time of, for each record version.
TRAIL_EVENTS = ("RECEIVED", "SENT", "ACCEPTED", "RELAYED_PROVINCIAL", "RELAYED_NATIONAL")
_RECORD_TRAILS = (
    "SELECT r.record_id, "
    + ", ".join(f"min(CASE WHEN e.status = '{event}' THEN e.at END)" for event in TRAIL_EVENTS)
    + " FROM receipts r JOIN receipt_events e ON e.receipt_id = r.receipt_id"
    " WHERE r.version IS NOT NULL GROUP BY r.receipt_id"
)
_RECEIPT_COLUMNS = (
    "receipt_id, record_id, version, kind, node, department, status, created_at, updated_at, "
    "portal_to_submit_working_days, calendar_provisional"
)


def _view(row: tuple[Any, ...]) -> ReceiptView:
    receipt_id, record_id, version, kind, node, department, status, created, updated, days, provisional = row
    return ReceiptView(
        receipt_id,
        record_id,
        version,
        kind,
        node,
        department,
        status,
        created,
        updated,
        days,
        bool(provisional),
    )


class Transaction:
    """The writes of one transaction; obtained from `NodeStore.transaction()`."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    @contextmanager
    def batch(self) -> Iterator[Batch]:
        """Records and rejections admitted together (a request, a chunk of a file), written when the block ends
        without an error: one executemany per table, not one execute per record."""
        batch = Batch(self.db)
        yield batch
        batch.write()

    def admit(self, c: Candidate) -> Admission:
        """One candidate: `Batch.admit`, written at once."""
        with self.batch() as batch:
            return batch.admit(c)

    def enqueue(
        self,
        receipt_id: str,
        key: str,
        kind: str,
        node: str,
        department: str,
        payload: bytes,
        at: int,
        topic: str,
    ) -> None:
        self.db.execute(
            "INSERT INTO outbox (receipt_id, record_id, kind, node, department, payload, enqueued_at, topic) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (receipt_id, key, kind, node, department, payload, at, topic),
        )

    def add_events(self, events: list[ReceiptUpdate]) -> None:
        """Append each event to its receipt's history and move the receipt's status forward (never backward, see
        RANK), in order, with one executemany per statement (issue 14): an event already held (or earlier in the
        list) is left out, and the status moves in SQL (`_ADVANCE`)."""
        seen = set(
            _in_chunks(
                self.db,
                "SELECT receipt_id, status, at, coalesce(detail, '') FROM receipt_events WHERE receipt_id IN ({})",
                _ids(events),
            )
        )
        new = []
        for e in events:
            key = (e.receipt_id, e.status, e.at, e.detail or "")  # receipt_events_once
            if key not in seen:
                seen.add(key)
                new.append(e)
        if not new:
            return
        self.db.executemany(
            "INSERT OR IGNORE INTO receipt_events (receipt_id, status, at, detail, reasons) VALUES (?, ?, ?, ?, ?)",
            [
                (e.receipt_id, e.status, e.at, e.detail, json.dumps(e.reasons or [], ensure_ascii=False))
                for e in new
            ],
        )
        self.db.executemany(_ADVANCE, [(e.status, e.at, e.receipt_id, RANK.get(e.status, 0)) for e in new])

    def add_event(
        self,
        receipt_id: str,
        status: str,
        at: int,
        detail: str | None = None,
        reasons: list[dict[str, Any]] | None = None,
    ) -> None:
        """One event: `add_events`."""
        self.add_events([ReceiptUpdate(receipt_id, status, at, detail, reasons or [])])


_PENDING_COLUMNS = "seq, receipt_id, record_id, kind, node, department, payload, enqueued_at, topic"
# The topic is written into the statement, not bound, so that SQLite uses the partial index `outbox_decisions`.
_DECISIONS_FIRST = (
    f"SELECT {_PENDING_COLUMNS} FROM outbox AS d WHERE d.topic = '{DECISIONS}' AND NOT EXISTS "
    "(SELECT 1 FROM outbox AS o WHERE o.record_id = d.record_id AND o.seq < d.seq) ORDER BY d.seq LIMIT ?"
)
_KEYS_PER_QUERY = 500  # ids per `IN (...)` query (well under SQLite's parameter limit)
# add_event's "never backward" in SQL: RANK.get(current, 0) <= RANK.get(new, 0)
_ADVANCE = (
    "UPDATE receipts SET status = ?, updated_at = ? WHERE receipt_id = ? AND (CASE status "
    + " ".join(f"WHEN '{status}' THEN {rank}" for status, rank in RANK.items())
    + " ELSE 0 END) <= ?"
)


def _ids(items: list[ReceiptUpdate]) -> list[str]:
    return list(dict.fromkeys(i.receipt_id for i in items))


def _in_chunks(db: sqlite3.Connection, sql: str, keys: list[str]) -> Iterator[tuple[Any, ...]]:
    """The rows of `sql` (with `IN ({})` for the keys) for every key, asking for _KEYS_PER_QUERY at a time."""
    for start in range(0, len(keys), _KEYS_PER_QUERY):
        chunk = keys[start : start + _KEYS_PER_QUERY]
        yield from db.execute(sql.format(", ".join("?" * len(chunk))), chunk)


_INSERT_RECEIPT = (
    "INSERT INTO receipts (receipt_id, record_id, version, kind, node, department, status, created_at, updated_at, "
    "content_hash, portal_to_submit_working_days, calendar_provisional) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_EVENT = (
    "INSERT OR IGNORE INTO receipt_events (receipt_id, status, at, detail, reasons) VALUES (?, ?, ?, NULL, ?)"
)
_UPSERT_LATEST = (
    "INSERT INTO latest_versions (record_id, version, content_hash, receipt_id) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (record_id) DO UPDATE SET version = excluded.version, "
    "content_hash = excluded.content_hash, receipt_id = excluded.receipt_id"
)
_INSERT_OUTBOX = (
    "INSERT INTO outbox (receipt_id, record_id, kind, node, department, payload, enqueued_at, topic) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


class Batch:
    """Records and rejections taken together (`Transaction.batch`): each decided in the order given, against the
    versions the store holds and those taken earlier in the batch (D4: a second version of a record in the same
    request is an update of the first, a repeat of it is unchanged), then written with one executemany per table
    (receipts, their first events, latest versions, outbox). Rows go in in the order they were added, so outbox
    sequence numbers and receipt row ids are what writing them one by one gave, and so are the stored rows: a new
    receipt's first event is its status, so the status update `Transaction.add_event` makes after an event is
    not needed here."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self._held: dict[
            str, tuple[int, str, str] | None
        ] = {}  # record id -> (version, content hash, receipt)
        self._receipts: list[tuple[Any, ...]] = []
        self._events: list[tuple[Any, ...]] = []
        self._latest: list[tuple[Any, ...]] = []
        self._outbox: list[tuple[Any, ...]] = []

    def prefetch(self, record_ids: Iterable[str]) -> None:
        """Read the versions held of these records in a few queries rather than one per record."""
        wanted = [rid for rid in dict.fromkeys(record_ids) if rid not in self._held]
        self._held.update(dict.fromkeys(wanted))
        sql = (
            "SELECT record_id, version, content_hash, receipt_id FROM latest_versions WHERE record_id IN ({})"
        )
        for record_id, version, content_hash, receipt_id in _in_chunks(self.db, sql, wanted):
            self._held[record_id] = (version, content_hash, receipt_id)

    def admit(self, c: Candidate) -> Admission:
        """Take `c` into the outbox unless D4 says otherwise.

        D4 (and the DOMAIN assumption on versions): same identity with a higher version is an update; the same
        version with the same content is a resubmission that changes nothing and gets the earlier receipt; the same
        version with different content, or a lower version, is refused (the caller records the rejection)."""
        if c.record_id not in self._held:
            self.prefetch((c.record_id,))
        held = self._held[c.record_id]
        if held is not None:
            version, content_hash, receipt_id = held
            if c.version == version:
                if c.content_hash == content_hash:
                    return Admission("unchanged", receipt_id, version)
                return Admission("conflict", c.receipt_id, version)
            if c.version < version:
                return Admission("outdated", c.receipt_id, version)
        self._receipt(
            c.receipt_id,
            c.record_id,
            c.version,
            c.kind,
            c.node,
            c.department,
            "RECEIVED",
            c.submitted_at,
            c.content_hash,
            c.portal_to_submit_working_days,
            int(c.calendar_provisional),
        )
        self._held[c.record_id] = (c.version, c.content_hash, c.receipt_id)
        self._latest.append((c.record_id, c.version, c.content_hash, c.receipt_id))
        self._outbox.append(
            (
                c.receipt_id,
                c.record_id,
                c.kind,
                c.node,
                c.department,
                c.payload,
                c.submitted_at,
                SUBMITTED[c.kind],
            )
        )
        return Admission("taken", c.receipt_id)

    def reject(
        self,
        receipt_id: str,
        *,
        kind: str,
        node: str,
        department: str,
        at: int,
        reasons: list[dict[str, Any]],
        record_id: str | None = None,
        version: int | None = None,
        rejection: bytes | None = None,
    ) -> None:
        """Record a rejection at the node (D12): the department can look it up later by its receipt id, and
        `rejection` (an encoded `sgs.Rejection`) waits in the outbox for `sgs.rejected`, so the municipal platform
        counts what the node held back (D8) — keyed by the record id, or the receipt id when that is unknown."""
        self._receipt(receipt_id, record_id, version, kind, node, department, "REJECTED", at, reasons=reasons)
        if rejection is not None:
            self._outbox.append(
                (receipt_id, record_id or receipt_id, kind, node, department, rejection, at, REJECTED)
            )

    def take_decision(
        self,
        receipt_id: str,
        *,
        record_id: str,
        kind: str,
        node: str,
        department: str,
        at: int,
        payload: bytes,
    ) -> None:
        """A decision on a record (`sgs.LifecycleDecision`, D15, D16): a receipt of its own (RECEIVED; no version,
        which tells it from the record's receipts) and the outbox, for `sgs.decisions` keyed by the record id."""
        self._receipt(receipt_id, record_id, None, kind, node, department, "RECEIVED", at)
        self._outbox.append((receipt_id, record_id, kind, node, department, payload, at, DECISIONS))

    def _receipt(
        self,
        receipt_id: str,
        record_id: str | None,
        version: int | None,
        kind: str,
        node: str,
        department: str,
        status: str,
        at: int,
        content_hash: str | None = None,
        portal_to_submit_working_days: int | None = None,
        calendar_provisional: int = 0,
        reasons: list[dict[str, Any]] | None = None,
    ) -> None:
        self._receipts.append(
            (
                receipt_id,
                record_id,
                version,
                kind,
                node,
                department,
                status,
                at,
                at,
                content_hash,
                portal_to_submit_working_days,
                calendar_provisional,
            )
        )
        self._events.append(
            (receipt_id, status, at, json.dumps(reasons, ensure_ascii=False) if reasons else "[]")
        )

    def write(self) -> None:
        """Write what was added since the last write, one executemany per table."""
        for sql, rows in (
            (_INSERT_RECEIPT, self._receipts),
            (_INSERT_EVENT, self._events),
            (_UPSERT_LATEST, self._latest),
            (_INSERT_OUTBOX, self._outbox),
        ):
            if rows:
                self.db.executemany(sql, rows)
                rows.clear()
