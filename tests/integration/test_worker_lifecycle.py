"""Decisions on records already relayed (D15 objections, D16 credit repair) and versions that leave a tier (D11),
through a real worker process on the real broker. The submitter and outputs fixtures are test_worker's (imported,
hence F811 on every test that takes them); the worker is this module's own, without the publicity sweep."""

# ruff: noqa: F811

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from test_worker import HOLD_S, known, outputs, submitter, withdrawals  # noqa: F401  (fixtures)

from services.sink.consumer import ReceiptBuilder
from services.sink.store import SinkStore
from sgs.config import Federation
from sgs.kafka import topics
from tests.support.worker_process import Outputs, Submitter, WorkerProcess
from tests.support.worker_records import new_uscc, record

TIERS = ("provincial", "national")
DECIDED = date(2026, 10, 9)  # 令第36号, a general penalty: published up to a year, repairable from 2027-01-09
# The seeds' rule set: 严重失信 never repairable, a bar of a year after a repair (D16).
SEEDS_DECIDED = date(2025, 12, 1)
RECORD_HOLD_S = 4  # --unknown-record-hold-s: how long a decision waits for a record the worker does not hold


@pytest.fixture(scope="module")
def worker(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    """No publicity sweep during these tests (an hour's interval): a penalty decided under the seeds (before
    2026-04-01) has a year of publicity at most, so on the real calendar the sweep would soon withdraw every one
    these tests decide on. The sweep has its own test (test_worker)."""
    w = WorkerProcess(
        kafka,
        tmp_path_factory.mktemp("worker"),
        unknown_subject_hold_s=HOLD_S,
        unknown_record_hold_s=RECORD_HOLD_S,
        sweep_interval_s=3600,
    ).start()
    w.wait_ready()
    yield w
    assert w.stop() == 0, w.log_tail()


def relayed_penalty(
    submitter: Submitter, outputs: Outputs, federation: Federation, decided_on: date = DECIDED, **kw: Any
) -> dict:
    submitted_on = decided_on + timedelta(days=3)
    rec = known(
        submitter, record(federation, "penalty", decided_on=decided_on, submitted_on=submitted_on, **kw)
    )
    submitter.submit("penalty", rec)
    rid = rec["envelope"]["record_id"]
    outputs.wait(lambda: all(outputs.of({rid}, topics.RELAY[t]) for t in TIERS), what="relayed to both tiers")
    return rec


def receipts(outputs: Outputs, receipt_id: str) -> list[dict]:
    return outputs.receipts(receipt_id=receipt_id)


def wait_receipt(outputs: Outputs, receipt_id: str, status: str) -> dict:
    outputs.wait(
        lambda: any(r["status"] == status for r in receipts(outputs, receipt_id)), what=f"{status} receipt"
    )
    return next(r for r in receipts(outputs, receipt_id) if r["status"] == status)


def wait_withdrawn(outputs: Outputs, rid: str) -> None:
    """Until a withdrawal of `rid` is read at both tiers, then on to the outputs' end, so a second one sent with it
    is read too. A receipt read first says nothing of them: each partition's batch leaves the worker's producer
    on its own linger."""
    outputs.wait(lambda: all(withdrawals(outputs, rid, t) for t in TIERS), what="withdrawn from both tiers")
    outputs.read_to_end()


def test_an_approved_repair_after_three_months_withdraws_from_both_tiers(
    worker, submitter, outputs, federation
):
    """D16: a 1-year penalty, repaired after 3 months of publicity, is taken down everywhere (REPAIRED)."""
    rec = relayed_penalty(submitter, outputs, federation)
    rid = rec["envelope"]["record_id"]
    decision = submitter.decide(rec, "REPAIR_APPROVED", date(2027, 1, 9))
    assert "REPAIRED" in wait_receipt(outputs, decision["receipt_id"], "ACCEPTED")["detail"]
    wait_withdrawn(outputs, rid)
    for tier in TIERS:
        assert [(w["reason"], w["version"]) for w in withdrawals(outputs, rid, tier)] == [("REPAIRED", 1)]


def test_a_repair_too_early_or_of_a_serious_penalty_is_rejected_with_its_reason(
    worker, submitter, outputs, federation
):
    """D16 by the rule set of the penalty's decision date: 一般 not before 3 months of publicity; 严重失信 never
    under the seeds (3 years, D14), not before a year under 令第36号. Nothing is withdrawn."""
    early = relayed_penalty(submitter, outputs, federation)
    serious = relayed_penalty(submitter, outputs, federation, SEEDS_DECIDED, severity="SERIOUS")
    serious_36 = relayed_penalty(submitter, outputs, federation, severity="SERIOUS")
    cases = [
        ("repair.too_early", early, submitter.decide(early, "REPAIR_APPROVED", date(2027, 1, 8))),
        ("repair.serious", serious, submitter.decide(serious, "REPAIR_APPROVED", date(2026, 6, 1))),
        ("repair.too_early", serious_36, submitter.decide(serious_36, "REPAIR_APPROVED", date(2027, 10, 8))),
    ]
    for rule, rec, decision in cases:
        rejected = wait_receipt(outputs, decision["receipt_id"], "REJECTED")
        assert [r["rule"] for r in rejected["reasons"]] == [rule]
        rid = rec["envelope"]["record_id"]
        # the receipt and the rejection are on two topics: one may be read before the other
        outputs.wait(lambda r=rid: outputs.of({r}, topics.REJECTED), what=f"the rejection ({rule})")
        (rejection,) = [m.value for m in outputs.of({rid}, topics.REJECTED)]
        assert (rejection["stage"], rejection["receipt_id"]) == ("decision", decision["receipt_id"])
        assert not any(withdrawals(outputs, rid, t) for t in TIERS)


def test_an_upheld_objection_withdraws_everywhere(worker, submitter, outputs, federation):
    """D15: checked with the deciding body and taken down (OBJECTION_UPHELD)."""
    rec = relayed_penalty(submitter, outputs, federation)
    rid = rec["envelope"]["record_id"]
    submitter.decide(rec, "OBJECTION_RAISED", date(2026, 11, 2))
    submitter.decide(rec, "OBJECTION_TAKEN_DOWN", date(2026, 11, 20))
    for tier in TIERS:
        outputs.wait(lambda t=tier: withdrawals(outputs, rid, t), what=f"withdrawal on {tier}")
        assert [w["reason"] for w in withdrawals(outputs, rid, tier)] == ["OBJECTION_UPHELD"]


def test_a_kept_record_stays_published_and_its_objection_mark_clears_at_the_sink(
    worker, submitter, outputs, federation, tmp_path: Path
):
    """D15: raised marks the held version under objection at the sinks; kept clears the mark, nothing is taken down.
    The worker's relay messages are applied to a real sink store in the order the sink reads them."""
    rec = relayed_penalty(submitter, outputs, federation)
    rid = rec["envelope"]["record_id"]
    submitter.decide(rec, "OBJECTION_RAISED", date(2026, 11, 2))
    kept = submitter.decide(rec, "OBJECTION_KEPT", date(2026, 11, 20))
    wait_receipt(outputs, kept["receipt_id"], "ACCEPTED")
    outputs.wait(lambda: len(outputs.of({rid}, topics.RELAY["national"])) >= 3, what="relayed three times")
    outputs.read_to_end()
    relayed = outputs.of({rid}, topics.RELAY["national"])
    assert [m.value["annotations"]["under_objection"] for m in relayed] == [False, True, False]
    store = SinkStore(f"sqlite:///{tmp_path}/national.db")
    try:
        for i, message in enumerate(relayed):
            store.apply([(message.schema, message.value)], {("t", 0): i + 1}, ReceiptBuilder("national"))
            row = store.public_record(rid, date(2026, 12, 1))
            assert row is not None and row.under_objection is (i == 1)
    finally:
        store.close()


def test_a_penalty_updated_to_simple_procedure_is_withdrawn_from_the_nation(
    worker, submitter, outputs, federation
):
    """D11: 信用中国 never holds a simple-procedure penalty; the province keeps it, not for publication."""
    rec = relayed_penalty(submitter, outputs, federation)
    rid = rec["envelope"]["record_id"]
    v2 = {**rec, "procedure": "SIMPLE", "envelope": {**rec["envelope"], "version": 2, "operation": "UPDATE"}}
    submitter.submit("penalty", v2)
    outputs.wait(lambda: withdrawals(outputs, rid, "national"), what="national withdrawal")
    assert [(w["reason"], w["version"]) for w in withdrawals(outputs, rid, "national")] == [("SUPERSEDED", 1)]
    outputs.wait(lambda: any(m.version == 2 for m in outputs.of({rid}, topics.RELAY["provincial"])))
    provincial = outputs.of({rid}, topics.RELAY["provincial"])
    assert provincial[-1].version == 2 and provincial[-1].value["annotations"]["for_publication"] is False
    assert all(
        m.version == 1 for m in outputs.of({rid}, topics.RELAY["national"]) if m.schema != "sgs.Withdrawal"
    )


def test_the_same_decision_twice_withdraws_once(worker, submitter, outputs, federation):
    """At-least-once: a decision delivered again emits nothing again, and its receipt says why."""
    rec = relayed_penalty(submitter, outputs, federation)
    rid = rec["envelope"]["record_id"]
    first = submitter.decide(rec, "OBJECTION_TAKEN_DOWN", date(2026, 11, 20))
    again = submitter.decide(rec, "OBJECTION_TAKEN_DOWN", date(2026, 11, 20))
    assert "已处理" in wait_receipt(outputs, again["receipt_id"], "ACCEPTED")["detail"]
    wait_receipt(outputs, first["receipt_id"], "ACCEPTED")
    wait_withdrawn(outputs, rid)
    for tier in TIERS:
        assert len(withdrawals(outputs, rid, tier)) == 1


def test_a_decision_on_a_record_the_worker_does_not_hold_is_rejected_after_the_hold(
    worker, submitter, outputs, federation
):
    rec = record(federation, "penalty", decided_on=DECIDED, submitted_on=date(2026, 10, 12))
    decision = submitter.decide(rec, "OBJECTION_RAISED", date(2026, 11, 2))
    rejected = wait_receipt(outputs, decision["receipt_id"], "REJECTED")
    assert [r["rule"] for r in rejected["reasons"]] == ["unknown_record"]
    assert (rejected["at"] - decision["submitted_at"]).total_seconds() >= RECORD_HOLD_S  # after the hold


def test_a_decision_read_before_its_record_waits_for_it(worker, submitter, outputs, federation):
    """After a worker's crash, a decision can be read again before the record it follows (another topic): it is
    held until the record is known, not refused (`--unknown-record-hold-s`)."""
    rec = known(submitter, record(federation, "penalty", decided_on=DECIDED, submitted_on=date(2026, 10, 12)))
    rid = rec["envelope"]["record_id"]
    decision = submitter.decide(rec, "OBJECTION_TAKEN_DOWN", date(2026, 11, 20))
    submitter.submit("penalty", rec)
    wait_receipt(outputs, decision["receipt_id"], "ACCEPTED")
    wait_withdrawn(outputs, rid)
    for tier in TIERS:
        assert [w["reason"] for w in withdrawals(outputs, rid, tier)] == ["OBJECTION_UPHELD"]
    assert not [r for r in receipts(outputs, decision["receipt_id"]) if r["status"] == "REJECTED"]


def test_a_penalty_decided_in_the_year_after_a_repair_of_its_subject_is_not_repairable(
    worker, submitter, outputs, federation
):
    """D16 (the seeds' rule set): subject S had penalty A repaired on 2026-03-01 (A's repair sent twice: one
    repair, withdrawn once). B, decided on S in the year after, is refused; C, decided on S after that year, and a
    penalty on another subject in that year are repaired at both tiers."""
    subject, repaired = new_uscc(), date(2026, 3, 1)
    a = relayed_penalty(submitter, outputs, federation, SEEDS_DECIDED, counterpart_uscc=subject)
    b = relayed_penalty(
        submitter, outputs, federation, decided_on=date(2026, 3, 15), counterpart_uscc=subject
    )
    c = relayed_penalty(submitter, outputs, federation, decided_on=date(2027, 3, 2), counterpart_uscc=subject)
    other = relayed_penalty(submitter, outputs, federation, decided_on=date(2026, 3, 15))
    first = submitter.decide(a, "REPAIR_APPROVED", repaired)
    again = submitter.decide(a, "REPAIR_APPROVED", repaired)
    assert "REPAIRED" in wait_receipt(outputs, first["receipt_id"], "ACCEPTED")["detail"]
    assert "已处理" in wait_receipt(outputs, again["receipt_id"], "ACCEPTED")["detail"]
    # A's repair is recorded for S before these reach S's partition (its receipt came after).
    refused = submitter.decide(b, "REPAIR_APPROVED", date(2026, 6, 15))
    approved = [
        submitter.decide(rec, "REPAIR_APPROVED", add)
        for rec, add in ((c, date(2027, 6, 2)), (other, date(2026, 6, 15)))
    ]
    for decision in approved:
        assert "REPAIRED" in wait_receipt(outputs, decision["receipt_id"], "ACCEPTED")["detail"]
    rejected = wait_receipt(outputs, refused["receipt_id"], "REJECTED")
    assert [r["rule"] for r in rejected["reasons"]] == ["repair.within_year_of_repair"]
    assert "2026-03-01" in rejected["reasons"][0]["message"]
    b_id = b["envelope"]["record_id"]
    outputs.wait(
        lambda: outputs.of({b_id}, topics.REJECTED), what="the rejection"
    )  # read apart from the receipt
    (rejection,) = [m.value for m in outputs.of({b_id}, topics.REJECTED)]
    assert (rejection["stage"], rejection["receipt_id"]) == ("decision", refused["receipt_id"])
    assert [r["status"] for r in receipts(outputs, refused["receipt_id"])] == ["REJECTED"]
    for rec in (a, c, other):
        wait_withdrawn(outputs, rec["envelope"]["record_id"])
    for tier in TIERS:
        assert not withdrawals(outputs, b_id, tier)
        for rec in (a, c, other):
            rid = rec["envelope"]["record_id"]
            assert [(w["reason"], w["version"]) for w in withdrawals(outputs, rid, tier)] == [("REPAIRED", 1)]
