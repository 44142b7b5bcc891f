"""Issue 16: messages produced straight to the broker by someone who is not their writer — the forgeries the issue
found against `sgs up` — are refused where they are read, counted, and kept on `sgs.rejected` with their bytes;
no sink, node or bulletin changes. Real processes on the session's embedded Tansu broker, which has no
authentication at all: the signatures are all that stops them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from kafka import KafkaProducer

from services.sink.store import SinkStore
from sgs.config import Federation
from sgs.kafka import topics
from sgs.kafka.security import kafka_settings
from sgs.serialization.codec import default_codec
from tests.support.node_process import NodeProcess
from tests.support.node_records import clean
from tests.support.polling import wait_until
from tests.support.signed import headers
from tests.support.sink_process import SinkProcess, produce, relay_topic
from tests.support.sink_records import encoded, license_record, unique_tag, withdrawal
from tests.support.worker_process import Output, Outputs, Submitter, WorkerProcess
from tests.support.worker_records import new_uscc, record

HUANGPU, XUHUI = "310101", "310104"
FORGED_MONTH = date(2023, 4, 10)  # this module's own month in the bulletin


@pytest.fixture(scope="module")
def worker(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    w = WorkerProcess(kafka, tmp_path_factory.mktemp("worker"), unknown_subject_hold_s=2).start()
    w.wait_ready()
    yield w
    assert w.stop() == 0, w.log_tail()


@pytest.fixture
def outputs(kafka: str) -> Iterator[Outputs]:
    o = Outputs(kafka)
    yield o
    o.close()


@pytest.fixture
def producer(kafka: str) -> Iterator[KafkaProducer]:
    p = KafkaProducer(**kafka_settings(kafka), acks="all")
    yield p
    p.close()


def send(producer: KafkaProducer, topic: str, key: bytes, value: bytes, signed: Any = None) -> None:
    producer.send(topic, key=key, value=value, headers=signed)
    producer.flush(10)


def refusals(outputs: Outputs, original: bytes) -> list[Output]:
    """What `sgs.rejected` holds about a message refused unread, found by its bytes."""
    return [
        m
        for m in outputs.messages
        if m.topic == topics.REJECTED and m.value and m.value["original"] == original
    ]


def refused_rule(outputs: Outputs, original: bytes) -> str:
    outputs.wait(lambda: refusals(outputs, original), what="the forgery on sgs.rejected")
    (rejection,) = refusals(outputs, original)
    assert rejection.value is not None and rejection.value["stage"] == "signature"
    return str(rejection.value["reasons"][0]["rule"])


def penalty_of(federation: Federation, district: str, **kw: Any) -> dict[str, Any]:
    dept = federation.node(district).departments[0]
    return record(
        federation,
        "penalty",
        decided_on=date(2026, 10, 9),
        submitted_on=date(2026, 10, 12),
        department=dept,
        **kw,
    )


def test_records_and_decisions_not_from_their_district_node_never_reach_a_sink(
    worker: WorkerProcess, kafka: str, federation: Federation, outputs: Outputs, producer: KafkaProducer
) -> None:
    """A record of 徐汇 signed by 黄浦's node, the same unsigned, a record 黄浦's node signs for its own department
    that names 徐汇's bureau as 处罚机关, a decision withdrawing a published record with no signature, and a
    message on the worker's own held topic: each refused, none accepted or relayed, the genuine record untouched."""
    codec = default_codec()
    submitter = Submitter(kafka)
    try:
        genuine = penalty_of(federation, HUANGPU)
        submitter.legal_person(genuine["counterpart"]["uscc"], genuine["counterpart"]["name"])
        submitter.submit("penalty", genuine)
        gid = genuine["envelope"]["record_id"]
        outputs.wait(lambda: outputs.of({gid}, topics.RELAY["national"]), what="the genuine record relayed")

        forged: dict[str, tuple[bytes, str]] = {}  # record id -> (bytes, expected rule)
        xuhui = penalty_of(federation, XUHUI)
        value = codec.encode("sgs.PenaltyRecord", xuhui)
        key = xuhui["envelope"]["record_id"].encode()
        topic = topics.SUBMITTED["penalty"]
        send(producer, topic, key, value, headers(f"node.{HUANGPU}", topic, key, value))
        forged[key.decode()] = (value, "signature.wrong_signer")

        unsigned = penalty_of(federation, XUHUI)
        value = codec.encode("sgs.PenaltyRecord", unsigned)
        key = unsigned["envelope"]["record_id"].encode()
        send(producer, topic, key, value)
        forged[key.decode()] = (value, "signature.missing")

        for rid, (value, rule) in forged.items():
            assert refused_rule(outputs, value) == rule, rid

        # 黄浦's node may sign for 黄浦's departments, but the record names 徐汇's bureau: D10, rule authority.forbidden.
        xuhui_bureau = federation.node(XUHUI).departments[0]
        foreign_name = penalty_of(federation, HUANGPU, counterpart_uscc=new_uscc())
        foreign_name["authority"] = xuhui_bureau.name
        submitter.submit("penalty", foreign_name)
        fid = foreign_name["envelope"]["record_id"]
        outputs.wait(lambda: outputs.of({fid}, topics.REJECTED), what="the foreign-named record rejected")
        (rejection,) = outputs.of({fid}, topics.REJECTED)
        assert rejection.value is not None
        assert {r["rule"] for r in rejection.value["reasons"]} == {"authority.forbidden"}

        decision = {
            "record_id": gid,
            "decision": "OBJECTION_TAKEN_DOWN",
            "authority": genuine["authority"],
            "authority_uscc": genuine["authority_uscc"],
            "decided_on": date(2026, 11, 1),
            "note": None,
            "receipt_id": uuid.uuid4().hex,
            "source_node": HUANGPU,
            "department": genuine["envelope"]["department"],
            "submitted_at": datetime.now(UTC),
        }
        value = codec.encode("sgs.LifecycleDecision", decision)
        send(producer, topics.DECISIONS, gid.encode(), value)
        assert refused_rule(outputs, value) == "signature.missing"

        held = f"{worker.app_id}-held"
        value = codec.encode("sgs.PenaltyRecord", penalty_of(federation, HUANGPU))
        send(producer, held, b"x", value, headers(f"node.{HUANGPU}", held, b"x", value))
        assert refused_rule(outputs, value) == "signature.wrong_signer"
    finally:
        submitter.close()

    outputs.poll()
    for rid in (*forged, fid):
        assert not outputs.of({rid}, topics.ACCEPTED["penalty"]), rid
        assert not outputs.of({rid}, topics.RELAY["national"]), rid
    assert not [m for m in outputs.of({gid}, topics.RELAY["national"]) if m.schema == "sgs.Withdrawal"]
    assert worker.metric("sgs_worker_refused_signature_total", topic=topic) == 2
    assert worker.metric("sgs_worker_refused_signature_total", topic=topics.DECISIONS) == 1
    assert worker.metric("sgs_worker_refused_signature_total", topic=held) == 1


def test_forged_rejections_do_not_change_the_bulletin(
    worker: WorkerProcess, kafka: str, federation: Federation, outputs: Outputs, producer: KafkaProducer
) -> None:
    """Forged node rejections (unsigned, and signed by another district's node) are not counted against the
    department they name; a genuine one of its own node, sent after them, is."""
    dept = federation.node(HUANGPU).departments[1]

    def rejection() -> tuple[bytes, bytes]:
        receipt_id = f"forgery-{uuid.uuid4().hex}"
        value = default_codec().encode(
            "sgs.Rejection",
            {
                "receipt_id": receipt_id,
                "record_id": None,
                "version": None,
                "source_node": dept.node,
                "department": dept.id,
                "stage": "node",
                "original": b"{}",
                "reasons": [{"field": "处罚机关", "rule": "required", "message": "必填", "value": None}],
                "rejected_at": datetime(2023, 4, 10, 2, tzinfo=UTC),
            },
        )
        return receipt_id.encode(), value

    forged = [rejection(), rejection()]
    send(producer, topics.REJECTED, *forged[0])
    send(producer, topics.REJECTED, *forged[1], headers(f"node.{XUHUI}", topics.REJECTED, *forged[1]))
    key, value = rejection()
    send(producer, topics.REJECTED, key, value, headers(f"node.{HUANGPU}", topics.REJECTED, key, value))

    assert refused_rule(outputs, forged[0][1]) == "signature.missing"
    url = f"sqlite:///{(worker.data_dir / 'aggregates.db').resolve()}"

    def rejected_in_month() -> int:
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                return int(
                    conn.execute(
                        sa.text(
                            "SELECT coalesce(sum(count), 0) FROM worker_aggregates WHERE period = '2023-04' "
                            "AND department = :dept AND measure = 'rejected'"
                        ),
                        {"dept": dept.id},
                    ).scalar_one()
                )
        except sa.exc.OperationalError:  # the worker has not written the store yet
            return 0
        finally:
            engine.dispose()

    wait_until(lambda: rejected_in_month() >= 1, 60, "the genuine rejection counted")
    assert rejected_in_month() == 1
    assert worker.metric("sgs_worker_refused_signature_total", topic=topics.REJECTED) == 2


def test_a_sink_takes_relays_and_withdrawals_only_from_the_worker(
    kafka: str, data_dir: Path, outputs: Outputs, producer: KafkaProducer
) -> None:
    """A record written straight to the relay topic (unsigned, or signed by a node), a forged withdrawal of a
    published record, a genuine withdrawal of the worker's replayed from another topic, and genuine bytes under
    another record's key: the sink stores none of them and keeps publishing the genuine record."""
    topic = relay_topic(kafka, partitions=1)
    tag = unique_tag()
    genuine = license_record(f"许〔{tag}〕1号", f"{tag}真实公司")
    sent = produce(kafka, topic, [genuine])
    sink = SinkProcess(kafka, topic, data_dir).start()
    try:
        store = SinkStore(sink.store_url)
        wait_until(lambda: sink.caught_up(store, sent), what="the genuine record stored")

        direct = license_record(f"许〔{tag}〕2号", f"{tag}伪造公司")
        key, value = encoded(direct)
        forgeries: list[tuple[bytes, bytes, Any, str]] = [
            (key, value, None, "signature.missing"),
            (key, value, headers(f"node.{HUANGPU}", topic, key, value), "signature.wrong_signer"),
        ]
        wkey, wvalue = encoded(withdrawal(genuine, reason="OBJECTION_UPHELD"))
        forgeries.append((wkey, wvalue, None, "signature.missing"))
        other = topics.RELAY["provincial"]
        forgeries.append((wkey, wvalue, headers("worker", other, wkey, wvalue), "signature.invalid"))
        gkey, gvalue = encoded(genuine)
        forgeries.append((key, gvalue, headers("worker", topic, gkey, gvalue), "signature.invalid"))
        for k, v, h, _ in forgeries:
            send(producer, topic, k, v, h)
        last = produce(kafka, topic, [license_record(f"许〔{tag}〕3号", f"{tag}后来公司")])
        wait_until(lambda: sink.caught_up(store, last), what="the sink past the forgeries")

        ids = [row[0] for row in store.dump_records()]
        assert genuine["envelope"]["record_id"] in ids and direct["envelope"]["record_id"] not in ids
        assert sink.metric("sgs_sink_withdrawals_total", tier="provincial") == 0
        by_rule: dict[str, int] = {}
        for *_, rule in forgeries:
            by_rule[rule] = by_rule.get(rule, 0) + 1
        for rule, count in by_rule.items():
            assert sink.metric("sgs_sink_refused_signature_total", tier="provincial", rule=rule) == count
        outputs.wait(lambda: len([m for m in outputs.messages if m.topic == topics.REJECTED and m.key in
                                  (key.decode(), wkey.decode())]) >= len(forgeries), what="refusals")  # fmt: skip
        assert refusals(outputs, value) and refusals(outputs, wvalue)
        store.close()
    finally:
        assert sink.stop() == 0


def test_a_node_applies_receipts_only_from_the_worker_or_a_sink(
    kafka: str, federation: Federation, tmp_path: Path, outputs: Outputs, producer: KafkaProducer
) -> None:
    """A forged receipt telling a department its record was withdrawn (unsigned), rejected (signed by a node), or
    a worker's receipt replayed from another topic (another node's receipts): the department's view does not
    change; a genuine receipt signed by the worker, sent after them, is applied."""
    district = "310115"
    node = NodeProcess(kafka, tmp_path, districts=(district,)).start()
    try:
        item = clean(federation, 1, district)[0]
        auth = {"Authorization": f"Bearer {item.department.dev_token}"}
        r = httpx.post(f"{node.url}/v1/records/{item.kind}", json=item.http_body(), headers=auth)
        assert r.status_code == 202, r.text
        receipt_id = r.json()["receipt_id"]
        codec = default_codec()

        def receipt(status: str) -> bytes:
            return codec.encode(
                "sgs.Receipt",
                {
                    "receipt_id": receipt_id,
                    "record_id": item.record_id,
                    "version": 1,
                    "source_node": district,
                    "status": status,
                    "at": datetime.now(UTC),
                    "detail": "伪造",
                    "reasons": [],
                },
            )

        key, own = district.encode(), topics.receipts_topic(district)
        withdrawn, rejected, replayed = receipt("WITHDRAWN"), receipt("REJECTED"), receipt("RELAYED_NATIONAL")
        send(producer, own, key, withdrawn)
        send(producer, own, key, rejected, headers(f"node.{district}", own, key, rejected))
        other = topics.receipts_topic("310101")
        send(producer, own, key, replayed, headers("worker", other, key, replayed))
        accepted = receipt("ACCEPTED")
        send(producer, own, key, accepted, headers("worker", own, key, accepted))

        def view() -> dict[str, Any]:
            return httpx.get(f"{node.url}/v1/receipts/{receipt_id}", headers=auth).json()

        wait_until(lambda: view()["status"] == "ACCEPTED", 60, "the genuine receipt applied")
        statuses = {e["status"] for e in view()["history"]}
        assert not statuses & {"WITHDRAWN", "REJECTED", "RELAYED_NATIONAL"}, statuses
        assert node.metric("sgs_node_refused_signature_total", district=district) == 3
        for value, rule in (
            (withdrawn, "signature.missing"),
            (rejected, "signature.wrong_signer"),
            (replayed, "signature.invalid"),
        ):
            assert refused_rule(outputs, value) == rule
    finally:
        assert node.stop() == 0
