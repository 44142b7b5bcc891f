"""A worker killed mid-stream and restarted loses nothing (issue 5 item 7). On Tansu (at-least-once) what it
relayed is duplicate-free after deduplication by (record id, version); on Apache Kafka (exactly-once, issue 13) a
committed reader finds every output once: the killed worker's open transactions were aborted."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import date

import pytest
from aiokafka import TopicPartition
from kafka import KafkaConsumer
from kafka import TopicPartition as KafkaPartition

from sgs.kafka import topics
from sgs.kafka.admin import ensure_federation_topics
from sgs.kafka.offsets import fetched_end_offsets
from sgs.kafka.security import kafka_settings
from sgs.kafka.tansu import EmbeddedBroker
from tests.support.polling import wait_until
from tests.support.signed import headers
from tests.support.worker_process import Outputs, Submitter, WorkerProcess
from tests.support.worker_records import record

N = 300


def test_killed_worker_restarts_without_loss_or_duplicates(kafka, federation, engine, tmp_path):
    submitter, outputs = Submitter(kafka), Outputs(kafka)
    records = [
        record(federation, "license", decided_on=date(2026, 10, 9), submitted_on=date(2026, 10, 12))
        for _ in range(N)
    ]
    expected = {(r["envelope"]["record_id"], 1) for r in records}
    ids = {rid for rid, _ in expected}

    def feed() -> None:  # about 100 records/s, so the kill lands mid-stream however fast the worker is
        for i, rec in enumerate(records):
            topic, key = topics.SUBMITTED["license"], rec["envelope"]["record_id"].encode()
            value = submitter.codec.encode("sgs.LicenseRecord", rec)
            node = f"node.{rec['envelope']['source_node']}"
            submitter.producer.send(topic, key=key, value=value, headers=headers(node, topic, key, value))
            if i % 10 == 9:
                submitter.producer.flush()
                time.sleep(0.1)

    outputs.poll()  # the reader is assigned before anything is relayed
    first = WorkerProcess(kafka, tmp_path, unknown_subject_hold_s=0).start()
    first.wait_ready()
    feeder = threading.Thread(target=feed)
    feeder.start()
    outputs.wait(
        lambda: len(outputs.of(ids, topics.RELAY["national"])) >= N // 10, timeout_s=90, what="progress"
    )
    first.kill()  # SIGKILL: no commit, no flush, no goodbye
    seen_before_kill = len({m.record_id for m in outputs.of(ids, topics.RELAY["national"])})
    feeder.join()

    second = WorkerProcess(kafka, tmp_path, app_id=first.app_id, unknown_subject_hold_s=0).start()
    try:
        for tier in ("provincial", "national"):
            outputs.wait(
                lambda t=tier: {m.record_id for m in outputs.of(ids, topics.RELAY[t])} == ids,
                timeout_s=120,
                what=f"every record on {tier}",
            )
        # The restarted worker holds the state of every record, also of those whose offsets the first one had
        # committed: its tables recovered from their changelogs to the end (`offsets.FetchedHighwaterConsumer`;
        # Tansu reports a short end). A decision needs that state (D15): each one takes its record down.
        for rec in records:
            submitter.decide(rec, "OBJECTION_TAKEN_DOWN", date(2026, 10, 20))
        submitter.producer.flush()
        outputs.wait(
            lambda: (
                {
                    m.record_id
                    for m in outputs.of(ids, topics.RELAY["national"])
                    if m.schema == "sgs.Withdrawal"
                }
                == ids
            ),
            timeout_s=120,
            what="every record taken down",
        )
    finally:
        assert second.stop() == 0, second.log_tail()
    assert seen_before_kill < N, "the kill came too late to test anything"
    for topic in (topics.ACCEPTED["license"], topics.RELAY["provincial"], topics.RELAY["national"]):
        delivered = [(m.record_id, m.version) for m in outputs.of(ids, topic)]
        assert set(delivered) == expected, topic  # nothing lost, nothing foreign, no version invented
        if engine.transactions:
            bodies = [m.record_id for m in outputs.of(ids, topic) if m.schema != "sgs.Withdrawal"]
            assert len(bodies) == len(ids), f"{topic}: a record reached it twice"
    accepted_receipts = {
        (r["record_id"], r["version"])
        for r in outputs.receipts(ids)
        if r["status"] == "ACCEPTED" and r["version"] is not None  # not the decisions' receipts
    }
    assert accepted_receipts == expected
    submitter.close()
    outputs.close()


@pytest.mark.engine("tansu")  # a broker of its own, to stop; the bound is the same on either engine
def test_a_worker_whose_broker_is_gone_still_stops_on_sigterm(federation, tmp_path):
    """faust waits for a vanished broker through 60 s shutdown timeouts per service; the worker bounds its stop
    (`STOP_GRACE_S`) and exits with status 1, the uncommitted work redone at-least-once by the next start."""
    broker = EmbeddedBroker().start()
    try:
        ensure_federation_topics(broker.bootstrap, federation)
        worker = WorkerProcess(broker.bootstrap, tmp_path).start()
        worker.wait_ready()
    finally:
        broker.stop()
    assert worker.stop() == 1  # within the wrapper's 30 s, else it raises
    assert "worker.stop_timeout" in worker.log_tail(50)


@pytest.mark.engine("tansu")  # a broker of its own, started late on a port chosen first
def test_a_restarted_worker_waits_for_its_cluster_instead_of_exiting(tmp_path):
    """A worker whose app crashed starts again in the same process (`SGS_WORKER_RESTARTED` set); while the whole
    cluster is away (the outage that crashed it) it waits and retries, and goes on once the cluster is back."""
    broker = EmbeddedBroker()  # its port is chosen; nothing listens there yet
    worker = WorkerProcess(broker.bootstrap, tmp_path)
    worker.env = {"SGS_WORKER_RESTARTED": "1"}
    worker.start_timeout_s = 120
    # later than kafka-python's admin client waits for a bootstrap (35 s): a first start would have exited 1
    back = threading.Timer(40, broker.start)
    back.start()
    try:
        worker.start()
        worker.wait_ready()
        assert "worker.cluster_unreachable" in worker.log_path.read_text()
    finally:
        stopped = worker.stop()  # also when it failed: a restarted worker waits for its cluster for ever
        back.join()
        broker.stop()
    assert stopped == 0, worker.log_tail()


def test_a_restarted_worker_recovers_the_state_of_every_committed_record(kafka, federation, tmp_path):
    """The state of records whose offsets were committed comes back only from the tables' changelogs; on Tansu faust
    read them only up to the last batch's first message (`offsets.TailMarkingConsumer`). A decision needs that
    state (D15): after the restart each one still finds its record and takes it down."""
    submitter, outputs = Submitter(kafka), Outputs(kafka)
    records = [
        record(federation, "license", decided_on=date(2026, 10, 9), submitted_on=date(2026, 10, 12))
        for _ in range(100)
    ]
    ids = {r["envelope"]["record_id"] for r in records}
    first = WorkerProcess(kafka, tmp_path, unknown_subject_hold_s=0).start()
    try:
        first.wait_ready()
        for rec in records:
            submitter.submit("license", rec)
        submitter.producer.flush()
        outputs.wait(
            lambda: {m.record_id for m in outputs.of(ids, topics.RELAY["national"])} == ids, what="relayed"
        )
        parts = [TopicPartition(topics.SUBMITTED["license"], p) for p in range(federation.partitions)]
        ends = asyncio.run(fetched_end_offsets(kafka, parts))  # Tansu's ListOffsets answer is short
        group = KafkaConsumer(**kafka_settings(kafka), group_id=first.app_id, enable_auto_commit=False)
        wait_until(
            lambda: all((group.committed(KafkaPartition(*tp)) or 0) >= end for tp, end in ends.items()),
            60,
            "every offset committed",
        )
        group.close()
    finally:
        first.kill()  # SIGKILL, once everything is committed

    second = WorkerProcess(kafka, tmp_path, app_id=first.app_id, unknown_subject_hold_s=0).start()
    try:
        second.wait_ready()
        for rec in records:
            submitter.decide(rec, "OBJECTION_TAKEN_DOWN", date(2026, 10, 20))
        submitter.producer.flush()
        taken_down = lambda: {  # noqa: E731
            m.record_id for m in outputs.of(ids, topics.RELAY["national"]) if m.schema == "sgs.Withdrawal"
        }
        outputs.wait(lambda: taken_down() == ids, timeout_s=60, what="every record taken down")
    finally:
        assert second.stop() == 0, second.log_tail()
    assert not outputs.of(ids, topics.REJECTED)  # no decision met unknown_record
    submitter.close()
