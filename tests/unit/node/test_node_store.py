"""The node's SQLite store on a real file: outbox order and durability, the D4 resubmission rules, receipts."""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import uuid
from pathlib import Path

import pytest

from services.node.store import RANK, Candidate, NodeStore, ReceiptUpdate
from sgs.kafka.topics import REJECTED, SUBMITTED


def candidate(record_id: str, version: int = 1, content: str = "a", node: str = "310115") -> Candidate:
    return Candidate(
        receipt_id=uuid.uuid4().hex,
        record_id=record_id,
        version=version,
        kind="penalty",
        node=node,
        department=f"{node}-scjg",
        content_hash=content,
        payload=f"{record_id}@{version}".encode(),
        submitted_at=1_700_000_000_000 + version,
    )


@pytest.fixture
def store(tmp_path: Path) -> NodeStore:
    s = NodeStore(tmp_path / "outbox.db")
    yield s
    s.close()


def admit(store: NodeStore, c: Candidate) -> str:
    with store.transaction() as tx:
        return tx.admit(c).outcome


def test_store_runs_in_wal_mode_with_full_sync(store: NodeStore) -> None:
    assert store.durability() == ("wal", 2)  # FULL


def test_taken_record_is_durable_for_another_connection_as_soon_as_the_transaction_ends(
    store: NodeStore, tmp_path: Path
) -> None:
    c = candidate("penalty:X:1")
    assert admit(store, c) == "taken"
    other = sqlite3.connect(tmp_path / "outbox.db")
    assert other.execute("SELECT payload FROM outbox").fetchall() == [(c.payload,)]
    other.close()


def test_outbox_keeps_the_order_records_were_taken_in_across_reopen(tmp_path: Path) -> None:
    store = NodeStore(tmp_path / "outbox.db")
    ids = [f"penalty:X:{n}" for n in range(20)]
    for rid in ids:
        admit(store, candidate(rid))
    store.close()
    reopened = NodeStore(tmp_path / "outbox.db")
    assert [p.record_id for p in reopened.pending(100)] == ids
    reopened.close()


def test_mark_sent_removes_only_acknowledged_records_and_moves_their_receipt_to_sent(
    store: NodeStore,
) -> None:
    for n in range(3):
        admit(store, candidate(f"penalty:X:{n}"))
    first, second, third = store.pending(10)
    store.mark_sent([(first, 1_700_000_001_000), (third, 1_700_000_001_000)])
    assert [p.record_id for p in store.pending(10)] == [second.record_id]
    assert store.receipt(first.receipt_id).status == "SENT"
    assert store.receipt(second.receipt_id).status == "RECEIVED"
    assert [e["status"] for e in store.receipt(first.receipt_id).history] == ["RECEIVED", "SENT"]


def test_the_sender_reads_the_last_commit_while_a_writer_holds_the_store(store: NodeStore) -> None:
    """Issue 14: the sender waited half its time behind intake's and the receipt listener's transactions; it reads
    the outbox without them, and never sees what they have not committed."""
    admit(store, candidate("penalty:X:1"))
    writing, release = threading.Event(), threading.Event()

    def intake() -> None:
        with store.transaction() as tx:
            tx.admit(candidate("penalty:X:2"))
            writing.set()
            release.wait(30)

    writer = threading.Thread(target=intake)
    writer.start()
    try:
        assert writing.wait(30)
        read: list[list[str]] = []
        reader = threading.Thread(target=lambda: read.append([p.record_id for p in store.pending(10)]))
        reader.start()
        reader.join(10)
        assert read == [["penalty:X:1"]], "pending waited for the writer, or saw its uncommitted record"
    finally:
        release.set()
        writer.join(30)
    assert [p.record_id for p in store.pending(10)] == ["penalty:X:1", "penalty:X:2"]


def test_a_failed_transaction_takes_nothing(store: NodeStore) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.admit(candidate("penalty:X:1"))
        raise RuntimeError("crash in the middle of a batch")
    assert store.pending(10) == []
    assert store.receipts("310115-scjg") == (0, [])


def test_d4_higher_version_is_an_update_and_is_queued_after_the_first(store: NodeStore) -> None:
    assert admit(store, candidate("penalty:X:1", 1, "a")) == "taken"
    assert admit(store, candidate("penalty:X:1", 2, "b")) == "taken"
    assert [p.payload for p in store.pending(10)] == [b"penalty:X:1@1", b"penalty:X:1@2"]


def test_d4_same_version_same_content_returns_the_earlier_receipt_and_queues_nothing(
    store: NodeStore,
) -> None:
    first = candidate("penalty:X:1", 1, "a")
    admit(store, first)
    with store.transaction() as tx:
        again = tx.admit(candidate("penalty:X:1", 1, "a"))
    assert (again.outcome, again.receipt_id) == ("unchanged", first.receipt_id)
    assert len(store.pending(10)) == 1


def test_d4_same_version_different_content_is_a_conflict(store: NodeStore) -> None:
    admit(store, candidate("penalty:X:1", 3, "a"))
    with store.transaction() as tx:
        answer = tx.admit(candidate("penalty:X:1", 3, "b"))
    assert (answer.outcome, answer.held_version) == ("conflict", 3)
    assert len(store.pending(10)) == 1


def test_d4_lower_version_than_the_one_taken_is_outdated(store: NodeStore) -> None:
    admit(store, candidate("penalty:X:1", 5, "a"))
    with store.transaction() as tx:
        answer = tx.admit(candidate("penalty:X:1", 4, "z"))
    assert (answer.outcome, answer.held_version) == ("outdated", 5)


def test_d4_still_applies_after_the_record_has_left_the_outbox(store: NodeStore) -> None:
    admit(store, candidate("penalty:X:1", 1, "a"))
    store.mark_sent([(p, 1) for p in store.pending(10)])
    assert admit(store, candidate("penalty:X:1", 1, "a")) == "unchanged"
    assert admit(store, candidate("penalty:X:1", 1, "b")) == "conflict"


def test_d4_two_versions_in_one_batch_see_each_other(store: NodeStore) -> None:
    with store.transaction() as tx:
        outcomes = [tx.admit(candidate("penalty:X:1", v, str(v))).outcome for v in (1, 2, 2, 1)]
    assert outcomes == ["taken", "taken", "unchanged", "outdated"]


def test_receipts_from_the_federation_move_status_forward_never_back_and_keep_history(
    store: NodeStore,
) -> None:
    c = candidate("penalty:X:1")
    admit(store, c)
    t = c.submitted_at
    batch = [  # one poll of the receipts topics, applied in one transaction
        ReceiptUpdate(c.receipt_id, "ACCEPTED", t + 2_000, "reconciled"),
        ReceiptUpdate(c.receipt_id, "SENT", t + 1_500),  # late: consumed after ACCEPTED
        ReceiptUpdate(c.receipt_id, "RELAYED_NATIONAL", t + 3_000),
        ReceiptUpdate(c.receipt_id, "RELAYED_NATIONAL", t + 3_000),  # redelivered
        ReceiptUpdate("f" * 32, "ACCEPTED", t),  # another process's record
        ReceiptUpdate(
            c.receipt_id, "RELAYED_PROVINCIAL", t + 3_500
        ),  # the province stored it after the nation
    ]
    assert store.apply_receipts(batch) == [True, True, True, True, False, True]
    view = store.receipt(c.receipt_id)
    assert view.status == "RELAYED_NATIONAL"  # the furthest stage reached (issue 15)
    assert [e["status"] for e in view.history] == [
        "RECEIVED", "SENT", "ACCEPTED", "RELAYED_NATIONAL", "RELAYED_PROVINCIAL"
    ]  # fmt: skip
    assert view.history[2]["detail"] == "reconciled"


def test_rejection_receipt_carries_its_reasons(store: NodeStore) -> None:
    reasons = [{"field": "处罚机关", "rule": "required", "message": "处罚机关为必填项", "value": None}]
    c = candidate("penalty:X:1")
    admit(store, c)
    assert store.apply_receipts(
        [ReceiptUpdate(c.receipt_id, "REJECTED", 2_000, "stage reconcile", reasons)]
    ) == [True]
    view = store.receipt(c.receipt_id)
    assert (view.status, view.reasons) == ("REJECTED", reasons)


def test_receipt_for_a_record_this_store_never_took_is_ignored(store: NodeStore) -> None:
    assert store.apply_receipts([ReceiptUpdate("f" * 32, "ACCEPTED", 1, None, [])]) == [False]
    assert store.receipt("f" * 32) is None


def test_receipts_list_filters_by_department_and_status_newest_first(store: NodeStore) -> None:
    taken = [candidate(f"penalty:X:{n}") for n in range(3)]
    for c in taken:
        admit(store, c)
    admit(store, candidate("penalty:Y:1", node="310101"))
    with store.transaction() as tx, tx.batch() as batch:
        batch.reject(
            "r" * 32,
            kind="penalty",
            node="310115",
            department="310115-scjg",
            at=1_800_000_000_000,
            reasons=[],
        )
    total, views = store.receipts("310115-scjg")
    assert total == 4
    assert views[0].receipt_id == "r" * 32
    total, views = store.receipts("310115-scjg", status="RECEIVED", limit=2, offset=0)
    assert (total, len(views)) == (3, 2)


def test_outbox_stats_per_node(store: NodeStore) -> None:
    admit(store, candidate("penalty:X:1"))
    admit(store, candidate("penalty:X:2"))
    admit(store, candidate("penalty:Y:1", node="310101"))
    stats = store.outbox_stats()
    assert stats["310115"][0] == 2 and stats["310101"][0] == 1
    assert stats["310115"][1] == 1_700_000_000_001


def reject(store: NodeStore, receipt_id: str, record_id: str | None, rejection: bytes) -> None:
    with store.transaction() as tx, tx.batch() as batch:
        batch.reject(
            receipt_id,
            kind="penalty",
            node="310115",
            department="310115-scjg",
            at=1_700_000_000_000,
            reasons=[{"field": "处罚机关", "rule": "required", "message": "必填", "value": None}],
            record_id=record_id,
            rejection=rejection,
        )


def test_rejection_waits_in_the_outbox_in_order_for_sgs_rejected_keyed_by_record_or_receipt(
    store: NodeStore,
) -> None:
    admit(store, candidate("penalty:X:1"))
    reject(store, "r-known", "penalty:X:2", b"rejection-2")
    reject(store, "r-unknown", None, b"rejection-3")
    first, second, third = store.pending(10)
    assert (first.topic, first.is_rejection) == ("sgs.submitted.penalty", False)
    assert (second.topic, second.record_id, second.payload) == ("sgs.rejected", "penalty:X:2", b"rejection-2")
    assert (third.topic, third.record_id, third.is_rejection) == ("sgs.rejected", "r-unknown", True)


def test_sent_rejection_leaves_the_outbox_and_its_receipt_stays_rejected(store: NodeStore) -> None:
    reject(store, "r-1", "penalty:X:9", b"rejection")
    store.mark_sent([(p, 1_700_000_000_500) for p in store.pending(10)])
    assert store.pending(10) == []
    view = store.receipt("r-1")
    assert view is not None and view.status == "REJECTED"
    assert [e["status"] for e in view.history] == ["REJECTED"]


def test_outbox_written_before_rejections_travelled_is_read_as_submitted_records(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, receipt_id TEXT NOT NULL, record_id TEXT "
        "NOT NULL, kind TEXT NOT NULL, node TEXT NOT NULL, department TEXT NOT NULL, payload BLOB NOT NULL, "
        "enqueued_at INTEGER NOT NULL)"
    )
    old.execute("INSERT INTO outbox VALUES (1, 'r', 'license:X:1', 'license', '310115', 'd', x'00', 5)")
    old.commit()
    old.close()
    store = NodeStore(path)
    (entry,) = store.pending(10)
    assert (entry.topic, entry.is_rejection) == ("sgs.submitted.license", False)
    store.close()


def _one_by_one(db: sqlite3.Connection, items: list[Candidate | tuple[str, str | None]]) -> list[str]:
    """The store's writes as they were before they were batched (issue 14): one execute per row, each event
    followed by its status update. A tuple is a rejection (receipt id, record id)."""
    outcomes = []
    for item in items:
        if isinstance(item, tuple):
            receipt_id, record_id = item
            db.execute(
                "INSERT INTO receipts (receipt_id, record_id, version, kind, node, department, status, created_at, "
                "updated_at) VALUES (?, ?, NULL, 'penalty', '310115', '310115-scjg', 'REJECTED', 7, 7)",
                (receipt_id, record_id),
            )
            db.execute(
                "INSERT OR IGNORE INTO receipt_events (receipt_id, status, at, detail, reasons) "
                "VALUES (?, 'REJECTED', 7, NULL, ?)",
                (receipt_id, json.dumps([{"rule": "规则", "value": None}], ensure_ascii=False)),
            )
            db.execute(
                "UPDATE receipts SET status = 'REJECTED', updated_at = 7 WHERE receipt_id = ?", (receipt_id,)
            )
            db.execute(
                "INSERT INTO outbox (receipt_id, record_id, kind, node, department, payload, enqueued_at, topic) "
                "VALUES (?, ?, 'penalty', '310115', '310115-scjg', ?, 7, ?)",
                (receipt_id, record_id or receipt_id, b"rejection", REJECTED),
            )
            outcomes.append("rejected")
            continue
        c = item
        held = db.execute(
            "SELECT version, content_hash, receipt_id FROM latest_versions WHERE record_id = ?",
            (c.record_id,),
        ).fetchone()
        if held is not None and c.version <= held[0]:
            outcomes.append(
                "outdated"
                if c.version < held[0]
                else "unchanged"
                if c.content_hash == held[1]
                else "conflict"
            )
            continue
        db.execute(
            "INSERT INTO receipts (receipt_id, record_id, version, kind, node, department, status, created_at, "
            "updated_at, content_hash, portal_to_submit_working_days, calendar_provisional) "
            "VALUES (?, ?, ?, ?, ?, ?, 'RECEIVED', ?, ?, ?, ?, ?)",
            (
                c.receipt_id,
                c.record_id,
                c.version,
                c.kind,
                c.node,
                c.department,
                c.submitted_at,
                c.submitted_at,
                c.content_hash,
                c.portal_to_submit_working_days,
                int(c.calendar_provisional),
            ),
        )
        db.execute(
            "INSERT OR IGNORE INTO receipt_events (receipt_id, status, at, detail, reasons) "
            "VALUES (?, 'RECEIVED', ?, NULL, '[]')",
            (c.receipt_id, c.submitted_at),
        )
        db.execute(
            "UPDATE receipts SET status = 'RECEIVED', updated_at = ? WHERE receipt_id = ?",
            (c.submitted_at, c.receipt_id),
        )
        db.execute(
            "INSERT INTO latest_versions (record_id, version, content_hash, receipt_id) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (record_id) DO UPDATE SET version = excluded.version, "
            "content_hash = excluded.content_hash, receipt_id = excluded.receipt_id",
            (c.record_id, c.version, c.content_hash, c.receipt_id),
        )
        db.execute(
            "INSERT INTO outbox (receipt_id, record_id, kind, node, department, payload, enqueued_at, topic) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                c.receipt_id,
                c.record_id,
                c.kind,
                c.node,
                c.department,
                c.payload,
                c.submitted_at,
                SUBMITTED[c.kind],
            ),
        )
        outcomes.append("taken")
    return outcomes


def _dump(path: Path) -> dict[str, list[tuple[object, ...]]]:
    db = sqlite3.connect(path)
    tables = ("receipts", "receipt_events", "latest_versions", "outbox")
    dump = {t: db.execute(f"SELECT rowid, * FROM {t} ORDER BY rowid").fetchall() for t in tables}
    db.close()
    return dump


def test_a_batch_stores_the_rows_writing_them_one_by_one_stored(tmp_path: Path) -> None:
    """Two versions of a record, repeats, a conflict, an outdated version and rejections in one request, on top
    of versions already held: the same outcomes, and the same rows in the same order, as one execute per row."""
    held = [candidate("penalty:X:held", 2, "h"), candidate("penalty:X:old", 1, "o")]
    items: list[Candidate | tuple[str, str | None]] = [
        candidate("penalty:X:1", 1, "a"),
        ("r1" * 16, None),  # a record the node could not read
        candidate("penalty:X:1", 2, "b"),  # an update of the record taken just before
        candidate("penalty:X:1", 2, "b"),  # a repeat of the update: unchanged
        candidate("penalty:X:held", 2, "h"),  # a repeat of a version the store holds
        candidate("penalty:X:held", 2, "changed"),  # conflict
        candidate("penalty:X:1", 1, "a"),  # outdated by the update above
        candidate("penalty:X:old", 3, "p"),  # update of a held record
        ("r2" * 16, "penalty:X:9"),
        candidate("penalty:X:2", 1, "c"),
    ]
    stores = {}
    for name in ("batched", "one_by_one"):
        stores[name] = NodeStore(tmp_path / f"{name}.db")
        for c in held:
            admit(stores[name], c)
    with stores["batched"].transaction() as tx, tx.batch() as batch:
        batch.prefetch(i.record_id for i in items if isinstance(i, Candidate))
        batched = []
        for item in items:
            if isinstance(item, tuple):
                batch.reject(
                    item[0],
                    kind="penalty",
                    node="310115",
                    department="310115-scjg",
                    at=7,
                    reasons=[{"rule": "规则", "value": None}],
                    record_id=item[1],
                    rejection=b"rejection",
                )
                batched.append("rejected")
            else:
                batched.append(batch.admit(item).outcome)
    with stores["one_by_one"].transaction() as tx:
        expected = _one_by_one(tx.db, items)
    for s in stores.values():
        s.close()
    assert (
        batched
        == expected
        == [
            "taken",
            "rejected",
            "taken",
            "unchanged",
            "unchanged",
            "conflict",
            "outdated",
            "taken",
            "rejected",
            "taken",
        ]
    )
    assert _dump(tmp_path / "batched.db") == _dump(tmp_path / "one_by_one.db")


def test_the_unchanged_repeat_of_a_record_taken_earlier_in_a_batch_gets_that_records_receipt(
    store: NodeStore,
) -> None:
    first, repeat = candidate("penalty:X:1", 2, "b"), candidate("penalty:X:1", 2, "b")
    with store.transaction() as tx, tx.batch() as batch:
        answers = [batch.admit(first), batch.admit(repeat)]
    assert [(a.outcome, a.receipt_id) for a in answers] == [
        ("taken", first.receipt_id),
        ("unchanged", first.receipt_id),
    ]
    assert [p.receipt_id for p in store.pending(10)] == [first.receipt_id]


def test_events_added_together_change_what_adding_them_one_by_one_changed(tmp_path: Path) -> None:
    """`add_events` of many (the sender's SENT, a poll of receipts) against one at a time: repeats, events earlier
    in the list, late lower statuses, unknown statuses and receipts, over receipts in every status."""
    rnd = random.Random(14)  # 60 events on 12 receipts, 3 times: repeats, and statuses left at every rank
    statuses = [*RANK, "SOMETHING_NEW"]
    events = [
        ReceiptUpdate(
            f"r{rnd.randrange(12)}",
            rnd.choice(statuses),
            1_000 + rnd.randrange(3),
            rnd.choice([None, "详情"]),
            rnd.choice([[], [{"rule": "规则", "value": "值"}]]),
        )
        for _ in range(60)
    ]
    # a repeat after another event of the same rank changes nothing (PARKED stays)
    events += [ReceiptUpdate("quiet", "SENT", 2_000), ReceiptUpdate("quiet", "PARKED", 2_001)]
    events += [ReceiptUpdate("quiet", "SENT", 2_000)]
    stores = {}
    for name in ("together", "one_by_one"):
        stores[name] = NodeStore(tmp_path / f"{name}.db")
        with stores[name].transaction() as tx:
            for n in range(10):  # r10 and r11 are not receipts of this store
                c = candidate(f"penalty:X:{n}")
                tx.admit(Candidate(**{**c.__dict__, "receipt_id": f"r{n}"}))
                tx.add_event(f"r{n}", statuses[n % len(statuses)], 1_002)
            tx.admit(Candidate(**{**candidate("penalty:X:quiet").__dict__, "receipt_id": "quiet"}))
    with stores["together"].transaction() as tx:
        tx.add_events(events[:30])
        tx.add_events(events[30:])
    with stores["one_by_one"].transaction() as tx:
        for e in events:
            tx.add_event(e.receipt_id, e.status, e.at, e.detail, e.reasons)
    for s in stores.values():
        s.close()
    together, one_by_one = _dump(tmp_path / "together.db"), _dump(tmp_path / "one_by_one.db")
    assert together == one_by_one
    assert len({row[7] for row in together["receipts"]}) > 3  # the statuses did move


def test_a_receipt_status_never_moves_backward(tmp_path: Path) -> None:
    """A late SENT (the sender's acknowledgement read after the sinks' receipts) leaves a record RELAYED_NATIONAL,
    and its history keeps every event in the order of its time."""
    store = NodeStore(tmp_path / "node.db")
    c = candidate("penalty:X:late")
    with store.transaction() as tx:
        tx.admit(c)
        at = c.submitted_at
        tx.add_events(
            [
                ReceiptUpdate(c.receipt_id, "ACCEPTED", at + 2),
                ReceiptUpdate(c.receipt_id, "RELAYED_NATIONAL", at + 3),
            ]
        )
        tx.add_event(c.receipt_id, "SENT", at + 1)
    view = store.receipt(c.receipt_id)
    store.close()
    assert view is not None and view.status == "RELAYED_NATIONAL"
    assert [e["status"] for e in view.history] == ["RECEIVED", "SENT", "ACCEPTED", "RELAYED_NATIONAL"]


def _withdrawn_by_both_tiers_in_one_ms(store: NodeStore, c: Candidate) -> list[str | None]:
    """Both sinks withdraw the record within the same millisecond (their receipts carry the same `at`); the
    provincial one is also redelivered. The withdrawn details of the history, in order."""
    at = c.submitted_at + 5
    province = ReceiptUpdate(c.receipt_id, "WITHDRAWN", at, "省级平台已撤下：撤销")
    nation = ReceiptUpdate(c.receipt_id, "WITHDRAWN", at, "信用中国已撤下：撤销")
    assert store.apply_receipts([province, nation, province]) == [True, True, True]
    view = store.receipt(c.receipt_id)
    assert view is not None and view.status == "WITHDRAWN"
    return [e["detail"] for e in view.history if e["status"] == "WITHDRAWN"]


def test_two_tiers_withdrawing_in_the_same_millisecond_are_two_events_and_a_redelivery_is_none(
    store: NodeStore,
) -> None:
    c = candidate("penalty:X:both")
    admit(store, c)
    assert _withdrawn_by_both_tiers_in_one_ms(store, c) == ["省级平台已撤下：撤销", "信用中国已撤下：撤销"]


def test_a_store_whose_events_were_unique_on_receipt_status_and_time_keeps_them_and_takes_both_tiers(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    old = NodeStore(path)
    c = candidate("penalty:X:old")
    admit(old, c)
    old.apply_receipts([ReceiptUpdate(c.receipt_id, "SENT", c.submitted_at + 1)])
    old.close()
    db = sqlite3.connect(path)  # the events table as it was written before it was keyed by message
    db.executescript(
        "DROP INDEX receipt_events_once; ALTER TABLE receipt_events RENAME TO e; "
        "CREATE TABLE receipt_events (receipt_id TEXT NOT NULL, status TEXT NOT NULL, at INTEGER NOT NULL, "
        "detail TEXT, reasons TEXT NOT NULL DEFAULT '[]', UNIQUE (receipt_id, status, at)); "
        "INSERT INTO receipt_events SELECT * FROM e; DROP TABLE e;"
    )
    db.close()
    store = NodeStore(path)
    assert _withdrawn_by_both_tiers_in_one_ms(store, c) == ["省级平台已撤下：撤销", "信用中国已撤下：撤销"]
    view = store.receipt(c.receipt_id)
    store.close()
    assert [e["status"] for e in view.history] == ["RECEIVED", "SENT", "WITHDRAWN", "WITHDRAWN"]


def test_a_decision_is_sent_before_other_records_waiting_but_never_before_its_own_record(
    store: NodeStore,
) -> None:
    """Issue 14: a decision (D15, D16) waited behind every record taken before it; it now goes first, except past a
    message of its own record, whose order it keeps (they share the message key)."""
    waiting = [candidate("penalty:X:a"), candidate("penalty:X:b")]
    for c in waiting:
        admit(store, c)
    with store.transaction() as tx, tx.batch() as batch:
        for receipt_id, record in (("dec-a", "penalty:X:a"), ("dec-c", "penalty:X:c")):  # c: sent long ago
            batch.take_decision(
                receipt_id, record_id=record, kind="penalty", node="310115", department="310115-scjg",
                at=9, payload=receipt_id.encode(),
            )  # fmt: skip
    order = [(e.receipt_id, e.topic) for e in store.pending(10)]
    assert order == [
        ("dec-c", "sgs.decisions"),
        (waiting[0].receipt_id, SUBMITTED["penalty"]),
        (waiting[1].receipt_id, SUBMITTED["penalty"]),
        ("dec-a", "sgs.decisions"),
    ]
    assert [e.receipt_id for e in store.pending(2)] == ["dec-c", waiting[0].receipt_id]
    store.mark_sent([(e, 10) for e in store.pending(2)])  # a's record has left: its decision goes first now
    assert [e.receipt_id for e in store.pending(10)] == ["dec-a", waiting[1].receipt_id]


def test_a_decisions_wait_runs_from_the_node_taking_it_to_the_platforms_first_answer(
    store: NodeStore,
) -> None:
    """What `sgs bench` reports as decisions' latency (issue 14): a record's receipts, a record the node rejected
    unread and a decision not answered yet are not decisions answered."""
    record = candidate("penalty:X:a")
    admit(store, record)
    with store.transaction() as tx, tx.batch() as batch:
        for receipt_id, at in (("dec-answered", 1_000), ("dec-waiting", 1_500)):
            batch.take_decision(
                receipt_id, record_id=record.record_id, kind="penalty", node="310115",
                department="310115-scjg", at=at, payload=receipt_id.encode(),
            )  # fmt: skip
        batch.reject("unread", kind="penalty", node="310115", department="310115-scjg", at=1_200, reasons=[])
    store.apply_receipts(
        [
            ReceiptUpdate(record.receipt_id, "ACCEPTED", 900),
            ReceiptUpdate("dec-answered", "SENT", 1_100),
            ReceiptUpdate("dec-answered", "ACCEPTED", 4_000),
            ReceiptUpdate("dec-answered", "ACCEPTED", 4_500, "同一决定已处理，未重复执行"),  # sent again
            ReceiptUpdate("dec-waiting", "SENT", 1_600),
        ]
    )
    assert store.decision_answers() == [(1_000, 4_000)]


def test_a_records_trail_has_the_first_time_it_reached_each_step_on_its_way_up(store: NodeStore) -> None:
    """What `sgs bench` reports hop by hop (issue 14): each version its own trail; a receipt delivered twice keeps
    its first time; a step not reached yet is left out; a decision has no trail."""
    t = 1_700_000_000_000
    first, second = candidate("penalty:X:t", 1), candidate("penalty:X:t", 2, content="b")
    admit(store, first)
    admit(store, second)
    with store.transaction() as tx, tx.batch() as batch:
        batch.take_decision(
            "dec", record_id=first.record_id, kind="penalty", node="310115", department="310115-scjg",
            at=t + 50, payload=b"dec",
        )  # fmt: skip
    store.mark_sent([(e, t + 100) for e in store.pending(10)])
    store.apply_receipts(
        [
            ReceiptUpdate(first.receipt_id, "ACCEPTED", t + 300),
            ReceiptUpdate(first.receipt_id, "RELAYED_PROVINCIAL", t + 500),
            ReceiptUpdate(first.receipt_id, "RELAYED_NATIONAL", t + 600),
            ReceiptUpdate(first.receipt_id, "RELAYED_PROVINCIAL", t + 900, "再次入库"),  # delivered again
            ReceiptUpdate("dec", "ACCEPTED", t + 400),
        ]
    )
    assert sorted(store.record_trails(), key=lambda trail: trail[1]["RECEIVED"]) == [
        (
            "penalty:X:t",
            {"RECEIVED": t + 1, "SENT": t + 100, "ACCEPTED": t + 300, "RELAYED_PROVINCIAL": t + 500,
             "RELAYED_NATIONAL": t + 600},
        ),
        ("penalty:X:t", {"RECEIVED": t + 2, "SENT": t + 100}),
    ]  # fmt: skip
