"""The municipal worker as a real process on the real broker: every rule of issue 5 with the records that decide
it. One worker serves the module (its own app id); tests filter the output topics by their own record ids."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from sgs.config import Federation
from sgs.kafka import topics
from sgs.kafka.receipts import receipts_in
from tests.support.worker_process import Outputs, Submitter, WorkerProcess
from tests.support.worker_records import new_resident_id, new_uscc, record

HOLD_S = 6


@pytest.fixture(scope="module")
def worker(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    w = WorkerProcess(
        kafka, tmp_path_factory.mktemp("worker"), unknown_subject_hold_s=HOLD_S, sweep_interval_s=2
    ).start()
    w.wait_ready()
    yield w
    assert w.stop() == 0, w.log_tail()


@pytest.fixture(scope="module")
def submitter(kafka: str) -> Iterator[Submitter]:
    s = Submitter(kafka)
    yield s
    s.close()


@pytest.fixture
def outputs(kafka: str) -> Iterator[Outputs]:
    o = Outputs(kafka)
    yield o
    o.close()


def known(submitter: Submitter, rec: dict) -> dict:
    """Register the record's counterpart in the right reference base, so it reconciles MATCHED (D13)."""
    cp = rec["counterpart"]
    if cp["category"] == "NATURAL_PERSON":
        submitter.person(cp["id_no"], cp["name"])
    else:
        submitter.legal_person(cp["uscc"], cp["name"])
    return rec


def accepted(outputs: Outputs, rid: str, kind: str) -> dict:
    outputs.wait(lambda: outputs.of({rid}, topics.ACCEPTED[kind]), what=f"{rid} accepted")
    return outputs.of({rid}, topics.ACCEPTED[kind])[-1].value


def withdrawals(outputs: Outputs, rid: str, tier: str) -> list[dict]:
    return [m.value for m in outputs.of({rid}, topics.RELAY[tier]) if m.schema == "sgs.Withdrawal"]


def test_working_days_around_national_day_decide_late(worker, submitter, outputs, federation: Federation):
    """D5: decided 2026-09-30; 国庆 1-8 Oct and the 调休 Saturday 10-10: the 15th is day 7, the 16th is day 8."""
    on_time = known(
        submitter,
        record(federation, "license", decided_on=date(2026, 9, 30), submitted_on=date(2026, 10, 15)),
    )
    late = known(
        submitter,
        record(federation, "license", decided_on=date(2026, 9, 30), submitted_on=date(2026, 10, 16)),
    )
    for rec in (on_time, late):
        submitter.submit("license", rec)
    a = accepted(outputs, on_time["envelope"]["record_id"], "license")["annotations"]
    b = accepted(outputs, late["envelope"]["record_id"], "license")["annotations"]
    assert (a["working_days_to_submit"], a["late"]) == (7, False)
    assert (b["working_days_to_submit"], b["late"]) == (8, True)
    assert a["reconciliation"] == "MATCHED"
    late_id = late["envelope"]["record_id"]
    outputs.wait(lambda: outputs.of({late_id}, topics.ALERTS), what="late alert")
    alert = outputs.of({late_id}, topics.ALERTS)[0]
    assert (alert.schema, alert.value["rule"], alert.value["working_days"], alert.value["limit"]) == (
        "sgs.LateAlert",
        "D5",
        8,
        7,
    )
    assert alert.key == late["envelope"]["division_code"]
    assert not outputs.of({on_time["envelope"]["record_id"]}, topics.ALERTS)
    outputs.wait(  # sent with the alert read above, on another partition, whose batch leaves on its own linger
        lambda: any(
            r["status"] == "ACCEPTED" and "D5 逾期" in r["detail"] for r in outputs.receipts({late_id})
        ),
        what="the late record's ACCEPTED receipt saying D5",
    )


def test_decision_in_a_year_without_schedule_is_provisional(worker, submitter, outputs, federation):
    """chinese-calendar knows 2026 only: a count running into 2027 is provisional (DOMAIN assumption)."""
    rec = known(
        submitter, record(federation, "penalty", decided_on=date(2026, 12, 28), submitted_on=date(2027, 1, 5))
    )
    submitter.submit("penalty", rec)
    ann = accepted(outputs, rec["envelope"]["record_id"], "penalty")["annotations"]
    assert ann["calendar_provisional"] is True
    assert ann["working_days_to_submit"] == 5  # 29, 30, 31 Dec, (1 Jan 元旦), 4, 5 Jan


def test_simple_procedure_penalty_goes_to_the_province_only_not_for_publication(
    worker, submitter, outputs, federation
):
    """D11: collected and reported, not published; never to 信用中国."""
    rec = known(
        submitter,
        record(
            federation,
            "penalty",
            decided_on=date(2026, 10, 9),
            submitted_on=date(2026, 10, 12),
            procedure="SIMPLE",
        ),
    )
    rid = rec["envelope"]["record_id"]
    submitter.submit("penalty", rec)
    outputs.wait(lambda: outputs.of({rid}, topics.RELAY["provincial"]), what="provincial relay")
    relayed = outputs.of({rid}, topics.RELAY["provincial"])[0].value
    assert relayed["annotations"]["for_publication"] is False
    assert not outputs.of({rid}, topics.RELAY["national"])


def test_the_rules_of_the_decision_date_decide_publication_and_are_named_on_the_record_and_receipt(
    worker, submitter, outputs, federation
):
    """Issue 15: a 轻微 penalty decided under 令第36号 is collected by the province, not published, shown 3 months at
    most; a 一般 one decided before 2026-04-01 keeps the seeds' year. The annotations and the ACCEPTED receipt name
    the rule set and tier."""
    minor = known(
        submitter,
        record(
            federation,
            "penalty",
            decided_on=date(2026, 10, 9),
            submitted_on=date(2026, 10, 12),
            severity="MINOR",
        ),
    )
    seeds = known(
        submitter,
        record(federation, "penalty", decided_on=date(2026, 3, 20), submitted_on=date(2026, 3, 23)),
    )
    for rec in (minor, seeds):
        submitter.submit("penalty", rec)
    minor_id, seeds_id = minor["envelope"]["record_id"], seeds["envelope"]["record_id"]
    outputs.wait(lambda: outputs.of({minor_id}, topics.RELAY["provincial"]), what="provincial relay")
    relayed = outputs.of({minor_id}, topics.RELAY["provincial"])[0].value["annotations"]
    assert (relayed["rule_set"], relayed["tier"], relayed["for_publication"]) == (
        "ndrc-order-36",
        "MINOR",
        False,
    )
    assert relayed["publicity_end"] == date(2027, 1, 9)
    assert not outputs.of({minor_id}, topics.RELAY["national"])
    ann = accepted(outputs, seeds_id, "penalty")["annotations"]
    assert (ann["rule_set"], ann["tier"], ann["publicity_end"]) == ("seeds", "GENERAL", date(2027, 3, 20))

    def accepted_receipt() -> dict | None:
        found = [r for r in outputs.receipts({minor_id}) if r["status"] == "ACCEPTED"]
        return found[0] if found else None

    outputs.wait(lambda: accepted_receipt() is not None, what="the ACCEPTED receipt")
    assert "规则集 ndrc-order-36，失信程度 轻微" in accepted_receipt()["detail"]


def test_natural_person_penalty_never_goes_national_and_its_id_is_masked(
    worker, submitter, outputs, federation
):
    """D11 (信用中国 does not collect penalties on natural persons) and D17 (ID masked before publication)."""
    id_no = new_resident_id()
    rec = known(
        submitter,
        record(
            federation,
            "penalty",
            decided_on=date(2026, 10, 9),
            submitted_on=date(2026, 10, 12),
            person_id=id_no,
            counterpart_name="李四",
        ),
    )
    rid = rec["envelope"]["record_id"]
    submitter.submit("penalty", rec)
    outputs.wait(lambda: outputs.of({rid}, topics.RELAY["provincial"]), what="provincial relay")
    relayed = outputs.of({rid}, topics.RELAY["provincial"])[0]
    assert id_no not in relayed.value["counterpart"]["id_no"]
    assert id_no.encode() not in relayed.raw
    assert relayed.value["annotations"]["masked"] is True
    assert accepted(outputs, rid, "penalty")["counterpart"]["id_no"] == id_no  # the municipal copy keeps it
    assert not outputs.of({rid}, topics.RELAY["national"])


def test_revocation_after_relay_withdraws_from_every_tier(worker, submitter, outputs, federation):
    """D4: a revoked decision is taken down wherever it was relayed."""
    rec = known(
        submitter,
        record(federation, "penalty", decided_on=date(2026, 10, 9), submitted_on=date(2026, 10, 12)),
    )
    rid = rec["envelope"]["record_id"]
    submitter.submit("penalty", rec)
    both = lambda: all(outputs.of({rid}, topics.RELAY[t]) for t in ("provincial", "national"))  # noqa: E731
    outputs.wait(both, what="relayed to both tiers")
    revoke = {**rec, "envelope": {**rec["envelope"], "version": 2, "operation": "REVOKE"}}
    submitter.submit("penalty", revoke)
    for tier in ("provincial", "national"):
        outputs.wait(lambda t=tier: withdrawals(outputs, rid, t), what=f"withdrawal on {tier}")
        withdrawal = withdrawals(outputs, rid, tier)[0]
        assert (withdrawal["reason"], withdrawal["version"]) == ("REVOKED", 2)
    # receipts: ACCEPTED from the worker; RELAYED_* and WITHDRAWN only from the sinks, once stored (docs/sinks.md)
    statuses = {r["status"] for r in outputs.receipts({rid})}
    assert "ACCEPTED" in statuses and not statuses & {"RELAYED_PROVINCIAL", "RELAYED_NATIONAL", "WITHDRAWN"}


def test_older_version_arriving_after_a_newer_one_is_absorbed(worker, submitter, outputs, federation):
    """D4: v2 then v1: v1 never replaces v2 downstream."""
    v1 = known(
        submitter,
        record(federation, "license", decided_on=date(2026, 10, 9), submitted_on=date(2026, 10, 12)),
    )
    rid = v1["envelope"]["record_id"]
    v2 = {
        **v1,
        "license_content": "食品经营许可（变更）",
        "envelope": {**v1["envelope"], "version": 2, "operation": "UPDATE"},
    }
    submitter.submit("license", v2)
    submitter.submit("license", v1)
    marker = known(
        submitter,
        record(
            federation,
            "license",
            decided_on=date(2026, 10, 9),
            submitted_on=date(2026, 10, 12),
            doc_no=v1["decision_doc_no"] + "-marker",
        ),
    )
    submitter.submit(
        "license", marker
    )  # same partition as nothing in particular: wait until v1 surely passed
    outputs.wait(lambda: outputs.of({rid}, topics.ACCEPTED["license"]), what="v2 accepted")
    outputs.wait(
        lambda: outputs.of({marker["envelope"]["record_id"]}, topics.ACCEPTED["license"]), timeout_s=60
    )
    outputs.wait(lambda: len(outputs.of({rid}, topics.RELAY["national"])) >= 1)
    for topic in (topics.ACCEPTED["license"], topics.RELAY["provincial"], topics.RELAY["national"]):
        assert {m.version for m in outputs.of({rid}, topic)} == {2}
    assert "sgs_worker_records_total" in worker.metrics()
    assert 'outcome="superseded"' in worker.metrics()


def test_a_burst_is_taken_as_batches_and_each_record_in_it_still_ends_right(
    worker, submitter, outputs, federation, engine
):
    """Issue 14: records that arrive together are taken through the stages together, so their outputs share one
    signature; inside a batch, a record's second version still wins (D4) and each is accepted once. (Under
    exactly-once, on Apache Kafka, the worker takes one record at a time: `agents._batches`.)"""
    burst = [
        known(
            submitter,
            record(federation, "license", decided_on=date(2026, 10, 9), submitted_on=date(2026, 10, 12)),
        )
        for _ in range(13)
    ]
    # The last counterpart registered is known to the worker once its record is MATCHED, so are the others (one
    # topic, read in order): the burst is not held for its subjects (D13), which the held agent takes one by one.
    scout = burst.pop()
    submitter.submit("license", scout)
    assert (
        accepted(outputs, scout["envelope"]["record_id"], "license")["annotations"]["reconciliation"]
        == "MATCHED"
    )
    v2 = {
        **burst[0],
        "license_content": "食品经营许可（变更）",
        "envelope": {**burst[0]["envelope"], "version": 2, "operation": "UPDATE"},
    }
    submitter.submit("license", *burst, v2)
    ids = {rec["envelope"]["record_id"] for rec in burst}
    outputs.wait(
        lambda: (
            {m.record_id for m in outputs.of(ids, topics.RELAY["provincial"])} == ids
            and {2}
            <= {m.version for m in outputs.of({v2["envelope"]["record_id"]}, topics.RELAY["provincial"])}
        ),
        what="every record of the burst relayed, and the second version",
    )
    relays = outputs.of(ids, topics.RELAY["provincial"])
    by_signature: dict[bytes, set[str]] = {}
    for m in relays:
        by_signature.setdefault(m.headers["sgs-signature"], set()).add(str(m.record_id))
    batched = max(len(records) for records in by_signature.values()) > 1
    assert batched is not engine.transactions, (
        "signed in batches" if batched else "each record signed on its own"
    )
    first = [m.version for m in relays if m.record_id == v2["envelope"]["record_id"]]
    assert first[-1] == 2 and sorted(first) == first
    outputs.wait(
        lambda: len(outputs.of(ids, topics.ACCEPTED["license"])) >= len(ids) + 1,
        what="every version accepted",
    )
    accepted_versions = sorted(
        (str(m.record_id), m.version) for m in outputs.of(ids, topics.ACCEPTED["license"])
    )
    assert accepted_versions == sorted([(rid, 1) for rid in ids] + [(v2["envelope"]["record_id"], 2)])


def test_a_bursts_receipts_travel_several_to_a_message_each_once_and_in_order(
    worker, submitter, outputs, federation, engine
):
    """Issue 14: the receipts of records taken together go to their node's topic several to an `sgs.Receipts`
    message, in the order they were made: every record's receipt arrives once, a record's second version's after
    its first. (Under exactly-once, on Apache Kafka, the worker takes one record at a time, and a receipt stays in
    the transaction of the record that caused it: one to a message.)"""
    burst = [
        known(
            submitter,
            record(federation, "license", decided_on=date(2026, 10, 9), submitted_on=date(2026, 10, 12)),
        )
        for _ in range(13)
    ]
    scout = burst.pop()  # as in the test above: once it is MATCHED, so are the others (D13), none is held
    submitter.submit("license", scout)
    accepted(outputs, scout["envelope"]["record_id"], "license")
    v2 = {
        **burst[0],
        "license_content": "食品经营许可（变更）",
        "envelope": {**burst[0]["envelope"], "version": 2, "operation": "UPDATE"},
    }
    submitter.submit("license", *burst, v2)
    ids = {rec["envelope"]["record_id"] for rec in burst}
    expected = sorted([(rid, 1) for rid in ids] + [(v2["envelope"]["record_id"], 2)])
    outputs.wait(lambda: len(outputs.receipts(ids)) >= len(expected), what="a receipt for every version")
    outputs.read_to_end()
    receipts = outputs.receipts(ids)
    assert sorted((r["record_id"], r["version"]) for r in receipts) == expected  # each once
    assert {r["status"] for r in receipts} == {"ACCEPTED"}
    assert [r["version"] for r in receipts if r["record_id"] == v2["envelope"]["record_id"]] == [1, 2]
    carrying = [
        m
        for m in outputs.receipt_messages()
        if any(r["record_id"] in ids for r in receipts_in(str(m.schema), m.value or {}) or ())
    ]
    assert {m.schema for m in carrying} == {"sgs.Receipts"}
    batched = len(carrying) < len(receipts)
    assert batched is not engine.transactions, (
        f"{len(receipts)} receipts in {len(carrying)} messages" if batched else "one receipt to a message"
    )


def test_poison_message_is_rejected_with_its_bytes_and_the_worker_keeps_going(
    worker, submitter, outputs, federation
):
    """An undecodable message is a rejection (stage decode), never a crash or a restart loop."""
    poison_key = f"poison-{new_uscc()}".encode()
    garbage = b"\x00\xffnot avro at all" + poison_key
    submitter.raw(topics.SUBMITTED["penalty"], poison_key, garbage, signer="node.310115")  # a node's bug
    after = known(
        submitter,
        record(federation, "penalty", decided_on=date(2026, 10, 9), submitted_on=date(2026, 10, 12)),
    )
    submitter.submit("penalty", after)
    key = poison_key.decode()
    outputs.wait(
        lambda: [m for m in outputs.messages if m.topic == topics.REJECTED and m.key == key], what="rejection"
    )
    rejection = next(m.value for m in outputs.messages if m.topic == topics.REJECTED and m.key == key)
    assert rejection["original"] == garbage
    assert rejection["stage"] == "decode" and rejection["reasons"]
    accepted(outputs, after["envelope"]["record_id"], "penalty")


def test_invalid_record_is_rejected_with_every_reason_and_a_receipt(worker, submitter, outputs, federation):
    """D12: the shared validator runs again at the municipal platform."""
    rec = record(federation, "license", decided_on=date(2026, 10, 9), submitted_on=date(2026, 10, 12))
    rec["counterpart"]["uscc"] = "91310000MA1FL00000"  # wrong check character
    rec["authority_uscc"] = "123"
    rid = rec["envelope"]["record_id"]
    submitter.submit("license", rec)
    outputs.wait(lambda: outputs.of({rid}, topics.REJECTED) and outputs.receipts({rid}), what="rejection")
    rejection = outputs.of({rid}, topics.REJECTED)[0].value
    assert rejection["stage"] == "validate" and len(rejection["reasons"]) >= 2
    assert outputs.receipts({rid})[0]["status"] == "REJECTED"
    assert not outputs.of({rid}, topics.ACCEPTED["license"])


def test_reference_base_change_reaches_the_worker_without_restart(worker, submitter, outputs, federation):
    """D13 and the stream-table race: an unknown subject is held; once the base names it, the record matches;
    a subject still unknown after the hold is UNKNOWN_CODE, and a different registered name is a mismatch."""
    late_subject = record(
        federation, "license", decided_on=date(2026, 10, 9), submitted_on=date(2026, 10, 12)
    )
    never = record(federation, "license", decided_on=date(2026, 10, 9), submitted_on=date(2026, 10, 12))
    renamed = record(federation, "license", decided_on=date(2026, 10, 9), submitted_on=date(2026, 10, 12))
    submitter.legal_person(renamed["counterpart"]["uscc"], "上海另一个名字有限公司")
    for rec in (late_subject, never, renamed):
        submitter.submit("license", rec)
    known(submitter, late_subject)  # the base learns the subject after the record arrived
    ids = {r["envelope"]["record_id"]: r for r in (late_subject, never, renamed)}
    outcomes = {rid: accepted(outputs, rid, "license")["annotations"]["reconciliation"] for rid in ids}
    assert outcomes == {
        late_subject["envelope"]["record_id"]: "MATCHED",
        never["envelope"]["record_id"]: "UNKNOWN_CODE",
        renamed["envelope"]["record_id"]: "NAME_MISMATCH",
    }
    rid = renamed["envelope"]["record_id"]
    mismatch = lambda: [m.value for m in outputs.of({rid}, topics.ALERTS) if m.schema == "sgs.MismatchAlert"]  # noqa: E731
    # on its own topic, the alert may be read after the accepted record
    outputs.wait(mismatch, what="mismatch alert")
    alert = mismatch()[0]
    assert alert["registered_name"] == "上海另一个名字有限公司"
    accepted_receipt = next(r for r in outputs.receipts({rid}) if r["status"] == "ACCEPTED")
    assert "NAME_MISMATCH" in accepted_receipt["detail"]


def test_publicity_period_ended_is_withdrawn_by_the_sweep(worker, submitter, outputs, federation):
    """D14: the sweep withdraws a relayed record once its publicity end has passed."""
    rec = known(
        submitter, record(federation, "penalty", decided_on=date(2024, 3, 1), submitted_on=date(2024, 3, 5))
    )
    rid = rec["envelope"]["record_id"]
    submitter.submit("penalty", rec)
    for tier in ("provincial", "national"):
        outputs.wait(lambda t=tier: withdrawals(outputs, rid, t), what=f"expiry on {tier}")
        withdrawal = withdrawals(outputs, rid, tier)[0]
        assert withdrawal["reason"] == "EXPIRED"


def test_aggregates_reach_the_bulletin_store(worker, submitter, outputs, federation):
    """D8: counts per district, department, kind and month, in the SQL store the bulletin reads."""
    from services.worker.aggregates import monthly_bulletin

    rec = known(
        submitter, record(federation, "license", decided_on=date(2026, 8, 3), submitted_on=date(2026, 8, 20))
    )
    submitter.submit("license", rec)
    accepted(outputs, rec["envelope"]["record_id"], "license")
    url = f"sqlite:///{Path(worker.data_dir).resolve()}/aggregates.db"
    dept = federation.districts[0].departments[0]

    def counted() -> dict[str, int]:
        rows = monthly_bulletin(url, "2026-08")
        return {
            r["measure"]: r["count"] for r in rows if r["department"] == dept.id and r["kind"] == "license"
        }

    outputs.wait(
        lambda: counted().get("late.D5", 0) >= 1 and counted().get("relayed.national", 0) >= 1, timeout_s=30
    )
    assert counted()["submitted"] >= counted()["accepted"] >= 1
