"""At-least-once end to end (issue 5 item 7): a worker killed mid-stream and restarted loses nothing, and after
deduplication by (record id, version) nothing is duplicated in what it relayed."""

from __future__ import annotations

from datetime import date

from worker_process import Outputs, Submitter, WorkerProcess
from worker_records import record

from sgs import topics
from sgs.broker import EmbeddedBroker, ensure_topics

N = 300


def test_killed_worker_restarts_without_loss_or_duplicates(kafka, federation, tmp_path):
    submitter, outputs = Submitter(kafka), Outputs(kafka)
    records = [
        record(federation, "license", decided_on=date(2026, 10, 9), submitted_on=date(2026, 10, 12))
        for _ in range(N)
    ]
    expected = {(r["envelope"]["record_id"], 1) for r in records}
    ids = {rid for rid, _ in expected}
    for rec in records:
        submitter.producer.send(
            topics.SUBMITTED["license"],
            key=rec["envelope"]["record_id"].encode(),
            value=submitter.codec.encode("sgs.LicenseRecord", rec),
        )
    submitter.producer.flush()

    first = WorkerProcess(kafka, tmp_path, unknown_subject_hold_s=0).start()
    outputs.wait(
        lambda: len(outputs.of(ids, topics.RELAY["national"])) >= N // 10, timeout_s=90, what="progress"
    )
    first.kill()  # SIGKILL: no commit, no flush, no goodbye
    seen_before_kill = len({m.record_id for m in outputs.of(ids, topics.RELAY["national"])})

    second = WorkerProcess(kafka, tmp_path, app_id=first.app_id, unknown_subject_hold_s=0).start()
    try:
        for tier in ("provincial", "national"):
            outputs.wait(
                lambda t=tier: {m.record_id for m in outputs.of(ids, topics.RELAY[t])} == ids,
                timeout_s=120,
                what=f"every record on {tier}",
            )
    finally:
        assert second.stop() == 0, second.log_tail()
    assert seen_before_kill < N, "the kill came too late to test anything"
    for topic in (topics.ACCEPTED["license"], topics.RELAY["provincial"], topics.RELAY["national"]):
        delivered = [(m.record_id, m.version) for m in outputs.of(ids, topic)]
        assert set(delivered) == expected, topic  # nothing lost, nothing foreign, no version invented
    accepted_receipts = {
        (m.value["record_id"], m.value["version"])
        for m in outputs.of(ids, topics.RECEIPTS)
        if m.value["status"] == "ACCEPTED"
    }
    assert accepted_receipts == expected
    submitter.close()
    outputs.close()


def test_a_worker_whose_broker_is_gone_still_stops_on_sigterm(federation, tmp_path):
    """faust waits for a vanished broker through 60 s shutdown timeouts per service; the worker bounds its stop
    (`STOP_GRACE_S`) and exits with status 1, the uncommitted work redone at-least-once by the next start."""
    broker = EmbeddedBroker().start()
    try:
        ensure_topics(broker.bootstrap, federation.partitions)
        worker = WorkerProcess(broker.bootstrap, tmp_path).start()
        worker.wait_ready()
    finally:
        broker.stop()
    assert worker.stop() == 1  # within the wrapper's 30 s, else it raises
    assert "worker.stop_timeout" in worker.log_tail(50)
