"""A real sink process on the real broker: receipts, replays, D11 at the national tier, crash and restart."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from services.sink.store import SinkStore
from sgs.kafka.receipts import receipts_in
from sgs.kafka.security import kafka_settings
from sgs.kafka.topics import MAX_MESSAGE_BYTES, receipts_topic
from sgs.serialization.codec import SerializationError, default_codec
from tests.support.polling import wait_until
from tests.support.signed import headers
from tests.support.sink_process import SinkProcess, produce, relay_topic
from tests.support.sink_records import license_record, penalty_record, person, unique_tag, withdrawal

RECEIPTS = receipts_topic("310101")  # the source node of tests.support.sink_records


@pytest.fixture
def sinks() -> Iterator[list[SinkProcess]]:
    started: list[SinkProcess] = []
    yield started
    for sink in started:
        sink.stop()


def receipts_start(kafka: str) -> dict[int, int]:
    """Where to start reading receipts: the reported end offsets (on Tansu a lower bound, which only means reading
    a few more receipts of other tests, filtered out by record id)."""
    consumer = KafkaConsumer(**kafka_settings(kafka))
    try:
        tps = [TopicPartition(RECEIPTS, p) for p in (consumer.partitions_for_topic(RECEIPTS) or set())]
        return {tp.partition: off for tp, off in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def receipts_for(
    kafka: str, record_ids: set[str], start: dict[int, int], expected: int
) -> list[dict[str, Any]]:
    """The receipts for these records on their node's receipts topic, read from `start` (other tests write there
    too), in order."""
    return [r for message in receipt_messages(kafka, record_ids, start, expected) for r in message]


def receipt_messages(
    kafka: str, record_ids: set[str], start: dict[int, int], expected: int
) -> list[list[dict[str, Any]]]:
    """The messages carrying receipts for these records, each as the receipts for them it carries (several since
    issue 14), read from `start` until `expected` receipts were found."""
    consumer = KafkaConsumer(**kafka_settings(kafka), consumer_timeout_ms=1000)
    tps = [TopicPartition(RECEIPTS, p) for p in (consumer.partitions_for_topic(RECEIPTS) or set())]
    consumer.assign(tps)
    for tp in tps:
        consumer.seek(tp, start.get(tp.partition, 0))
    found: list[list[dict[str, Any]]] = []

    def more() -> bool:
        for message in consumer:
            try:
                receipts = receipts_in(*default_codec().decode(message.value)) or []
            except SerializationError:
                continue  # another test's deliberately bad message on the shared receipts topic
            if ours := [r for r in receipts if r.get("record_id") in record_ids]:
                found.append(ours)
        return sum(map(len, found)) >= expected

    try:
        wait_until(more, 60, f"{expected} receipts")
    finally:
        consumer.close()
    return found


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[str]:
    """A SQLite file, or a PostgreSQL schema of the test's own (through the connection's search_path)."""
    if request.param == "sqlite":
        yield f"sqlite:///{data_dir}/sink.db"
        return
    url, schema = request.getfixturevalue("postgres_url"), request.getfixturevalue("postgres_schema")
    yield f"{url}?options=-csearch_path%3D{schema}"


def test_the_sink_stores_the_relay_sends_receipts_and_a_replay_changes_nothing(
    kafka: str, data_dir: Path, store_url: str, sinks: list[SinkProcess]
) -> None:
    topic = relay_topic(kafka)
    tag = unique_tag()
    lic = license_record(f"许〔{tag}〕1号", f"{tag}公司")
    pen = penalty_record(f"处〔{tag}〕2号", f"{tag}公司")
    stream = [lic, pen, license_record(f"许〔{tag}〕1号", f"{tag}公司", version=2), withdrawal(pen)]
    start = receipts_start(kafka)
    sink = SinkProcess(kafka, topic, data_dir, store_url=store_url).start()
    sinks.append(sink)
    sent = produce(kafka, topic, stream)
    store = SinkStore(sink.store_url)
    wait_until(lambda: sink.caught_up(store, sent), what="the sink consuming the stream")

    ids = {lic["envelope"]["record_id"], pen["envelope"]["record_id"]}
    statuses = sorted(
        (r["record_id"].split(":")[0], r["version"], r["status"])
        for r in receipts_for(kafka, ids, start, expected=4)
    )
    assert statuses == [
        ("license", 1, "RELAYED_PROVINCIAL"),
        ("license", 2, "RELAYED_PROVINCIAL"),
        ("penalty", 1, "RELAYED_PROVINCIAL"),
        ("penalty", 1, "WITHDRAWN"),
    ]
    body = httpx.get(f"{sink.url}/v1/records", params={"name": tag}).json()
    assert [(i["record_id"], i["version"]) for i in body["items"]] == [(lic["envelope"]["record_id"], 2)]

    before = list(store.dump_records())
    sent = produce(kafka, topic, stream)
    wait_until(lambda: sink.caught_up(store, sent), what="the sink consuming the replay")
    assert list(store.dump_records()) == before
    assert sink.metric("sgs_sink_duplicates_total", tier="provincial", kind="license") == 2
    assert sink.metric("sgs_sink_duplicates_total", tier="provincial", kind="penalty") == 2
    assert sink.stop() == 0
    store.close()


def test_the_national_sink_never_holds_a_natural_persons_or_simple_procedure_penalty(
    kafka: str, data_dir: Path, sinks: list[SinkProcess]
) -> None:
    """D11: 信用中国 does not collect them, even if a relay sends them by mistake."""
    topic = relay_topic(kafka, tier="national")
    tag = unique_tag()
    natural = penalty_record(f"处〔{tag}〕1号", "李四", counterpart=person())
    simple = penalty_record(f"处〔{tag}〕2号", f"{tag}公司", procedure="SIMPLE")
    company = penalty_record(f"处〔{tag}〕3号", f"{tag}公司")
    sink = SinkProcess(kafka, topic, data_dir, tier="national").start()
    sinks.append(sink)
    sent = produce(kafka, topic, [natural, simple, company])
    store = SinkStore(sink.store_url)
    wait_until(lambda: sink.caught_up(store, sent), what="the national sink consuming the stream")
    assert [row[0] for row in store.dump_records()] == [company["envelope"]["record_id"]]
    assert sink.metric("sgs_sink_refused_total", tier="national", kind="penalty", rule="D11") == 2
    assert httpx.get(f"{sink.url}/v1/records", params={"name": "李四"}).json()["total"] == 0
    store.close()


def test_a_poison_message_is_counted_and_skipped(
    kafka: str, data_dir: Path, sinks: list[SinkProcess]
) -> None:
    topic = relay_topic(kafka, partitions=1)
    tag = unique_tag()
    producer = KafkaProducer(**kafka_settings(kafka))
    garbage = b"not avro at all"
    producer.send(
        topic, key=b"penalty:x:y", value=garbage, headers=headers("worker", topic, b"penalty:x:y", garbage)
    )
    producer.flush(10)
    producer.close()
    after = license_record(f"许〔{tag}〕1号", f"{tag}公司")
    sent = produce(kafka, topic, [after])
    sink = SinkProcess(kafka, topic, data_dir).start()
    sinks.append(sink)
    store = SinkStore(sink.store_url)
    wait_until(lambda: sink.caught_up(store, sent), what="the sink getting past the poison message")
    assert sink.metric("sgs_sink_poison_total", tier="provincial") == 1
    assert [row[0] for row in store.dump_records()] == [after["envelope"]["record_id"]]
    store.close()


def test_a_sink_killed_mid_stream_neither_loses_nor_duplicates_after_restart(
    kafka: str, data_dir: Path, sinks: list[SinkProcess]
) -> None:
    topic = relay_topic(kafka)
    tag = unique_tag()
    stream: list[dict[str, Any]] = []
    expected: dict[str, tuple[int, bool]] = {}  # record id -> (version, withdrawn)
    for i in range(1500):
        rec = license_record(f"许〔{tag}〕{i}号", f"{tag}公司{i}")
        stream.append(rec)
        expected[rec["envelope"]["record_id"]] = (1, False)
        if i % 3 == 0:
            stream.append(license_record(f"许〔{tag}〕{i}号", f"{tag}公司{i}", version=2))
            expected[rec["envelope"]["record_id"]] = (2, False)
        if i % 5 == 0:
            stream.append(withdrawal(stream[-1]))
            expected[rec["envelope"]["record_id"]] = (expected[rec["envelope"]["record_id"]][0], True)
    sent = produce(kafka, topic, stream)

    first = SinkProcess(kafka, topic, data_dir).start()
    store = SinkStore(first.store_url)
    wait_until(lambda: store.stored_offsets(topic), what="a first batch stored")
    first.kill()
    resumed_from = sum(store.stored_offsets(topic).values())

    second = SinkProcess(kafka, topic, data_dir)
    second.group = first.group  # the same deployment, restarted
    second.start()
    sinks.append(second)
    wait_until(lambda: second.caught_up(store, sent), what="the restarted sink catching up")

    held = {row.record_id: (row.version, row.withdrawn) for row in _rows(store)}
    assert held == expected
    # Whatever the first process stored was not read again: the restart resumed at the stored offsets.
    duplicates = sum(
        second.metric("sgs_sink_duplicates_total", tier="provincial", kind=k) for k in ("license", "penalty")
    )
    assert duplicates == 0
    upserts = second.metric("sgs_sink_upserts_total", tier="provincial", kind="license")
    withdrawals = second.metric("sgs_sink_withdrawals_total", tier="provincial", kind="license")
    assert upserts + withdrawals == len(stream) - resumed_from
    assert second.stop() == 0
    store.close()


def _rows(store: SinkStore) -> list[Any]:
    with store.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(store.records.c.record_id, store.records.c.version, store.records.c.withdrawn)
            )
        )


@pytest.mark.engine("tansu")  # the cluster-id reset is the embedded broker's workaround (Kafka keeps its log)
@pytest.mark.parametrize("stored_offset", [1000, 2], ids=["beyond-the-new-end", "inside-the-new-topic"])
def test_offsets_stored_for_an_earlier_broker_are_forgotten_and_the_relay_read_from_the_start(
    kafka: str, data_dir: Path, sinks: list[SinkProcess], stored_offset: int
) -> None:
    """The embedded broker keeps topics in memory and gets a new cluster id each start: after its restart the relay
    starts again at offset 0 while the store remembers the old broker's offsets. Whether the recreated topic is
    shorter than the stored offset or has already grown past it, the sink reads it from the start."""
    topic = relay_topic(kafka, partitions=1)
    tag = unique_tag()
    records = [license_record(f"许〔{tag}〕{i}号", f"{tag}公司") for i in range(3)]
    sink = SinkProcess(kafka, topic, data_dir)
    store = SinkStore(sink.store_url)
    store.adopt_broker("sgs-embedded-an-earlier-start")
    store.skip({(topic, 0): stored_offset})  # what the store held before the broker lost the topic
    produce(kafka, topic, records)
    sink.start()
    sinks.append(sink)
    wait_until(lambda: store.stored_offsets(topic) == {0: 3}, what="the sink re-reading the recreated topic")
    assert len([r for r in store.dump_records() if tag in r[0]]) == 3
    assert "sink.broker_changed" in sink.log_path.read_text()
    store.close()


def test_a_receipt_the_broker_can_never_take_is_parked_and_the_others_flow(
    kafka: str, data_dir: Path, sinks: list[SinkProcess]
) -> None:
    """Issue 17: every sender sorts its errors; a receipt over the message limit, for a node the config does not
    know (issue 16), or whose bytes are no receipt, must not stop the ones after it."""
    topic = relay_topic(kafka, partitions=1)
    tag = unique_tag()
    store = SinkStore(f"sqlite:///{data_dir}/sink.db")
    huge = {
        "receipt_id": f"r-{tag}",
        "record_id": None,
        "version": None,
        "source_node": "310115",
        "status": "RELAYED_PROVINCIAL",
        "at": datetime.now(UTC),
        "detail": "长" * MAX_MESSAGE_BYTES,
        "reasons": [],
    }
    with store.engine.begin() as conn:
        conn.execute(
            store.outbox.insert(), {"key": "310115", "value": default_codec().encode("sgs.Receipt", huge)}
        )
        # a node not in the federation config has no receipts topic, and none is made for it (issue 16)
        conn.execute(store.outbox.insert(), {"key": "319999", "value": b"\0"})
        conn.execute(store.outbox.insert(), {"key": "310115", "value": b"\0"})
    record = license_record(f"许〔{tag}〕1号", f"{tag}公司")
    start = receipts_start(kafka)
    sink = SinkProcess(kafka, topic, data_dir, store_url=f"sqlite:///{data_dir}/sink.db").start()
    sinks.append(sink)
    produce(kafka, topic, [record])
    (receipt,) = receipts_for(kafka, {record["envelope"]["record_id"]}, start, expected=1)
    assert receipt["status"] == "RELAYED_PROVINCIAL"
    assert sink.metric("sgs_sink_receipts_parked_total", tier="provincial") == 3
    with store.engine.connect() as conn:
        errors = sorted(p.error for p in conn.execute(sa.select(store.parked)))
    assert errors[0].startswith("LookupError: node 319999 is not in the federation config")
    assert "MessageSizeTooLargeError" in errors[1]
    assert errors[2].startswith("SerializationError: ")
    store.close()


def test_a_sinks_receipts_for_many_records_travel_several_to_a_message(
    kafka: str, data_dir: Path, sinks: list[SinkProcess]
) -> None:
    """Issue 14: the receipts of one poll go to their node's topic as `sgs.Receipts` messages, not one message
    each; every record's receipt arrives once, in the relay's order."""
    topic = relay_topic(kafka, partitions=1)
    tag = unique_tag()
    records = [license_record(f"许〔{tag}〕{n}号", f"{tag}公司") for n in range(30)]
    start = receipts_start(kafka)
    sent = produce(kafka, topic, records)  # before the sink starts: its first poll takes them all
    sink = SinkProcess(kafka, topic, data_dir).start()
    sinks.append(sink)
    ids = [r["envelope"]["record_id"] for r in records]
    messages = receipt_messages(kafka, set(ids), start, expected=len(ids))
    assert [r["record_id"] for message in messages for r in message] == ids
    assert {r["status"] for message in messages for r in message} == {"RELAYED_PROVINCIAL"}
    assert len(messages) < len(ids), [len(m) for m in messages]
    store = SinkStore(sink.store_url)
    wait_until(lambda: sink.caught_up(store, sent), what="the sink consuming the relay")
    store.close()
    # counted by receipt, not by message
    wait_until(lambda: sink.metric("sgs_sink_receipts_total", tier="provincial") == len(ids), 10, "counted")
