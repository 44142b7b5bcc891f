"""The district node as a real process against a real broker: nothing accepted is ever lost (broker down, SIGKILL),
receipts come back, and it stops cleanly."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from sgs.config import Federation
from sgs.kafka.admin import ensure_federation_topics
from sgs.kafka.launch import free_port
from sgs.kafka.security import kafka_settings
from sgs.kafka.tansu import EmbeddedBroker
from sgs.kafka.topics import REJECTED, SUBMITTED, receipts_topic
from sgs.serialization.codec import default_codec
from tests.support.node_process import NodeProcess, submitted_versions
from tests.support.node_records import clean, of_one_department
from tests.support.polling import wait_until
from tests.support.signed import headers as signed_headers

DISTRICT = "310115"


def post_batches(node: NodeProcess, items: list, batch: int = 50) -> list[dict]:
    """Post `items` in batches of `batch`, each batch under its department's token; every record must be taken."""
    by_department: dict[str, list] = {}
    for item in items:
        by_department.setdefault(item.department.dev_token, []).append(item)
    results = []
    with httpx.Client(base_url=node.url, timeout=30) as client:
        for token, group in by_department.items():
            for start in range(0, len(group), batch):
                chunk = group[start : start + batch]
                r = client.post(
                    f"/v1/records/{chunk[0].kind}",
                    json=[i.http_body() for i in chunk],
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert r.status_code == 202, r.text
                results.extend(r.json()["results"])
    return results


def post_grouped(node: NodeProcess, items: list) -> list[dict]:
    results = []
    for kind in ("license", "penalty"):
        results += post_batches(node, [i for i in items if i.kind == kind])
    return results


@pytest.mark.engine("tansu")  # a broker of its own, to stop; the node's outbox is the same on either engine
def test_records_posted_while_the_broker_is_down_all_arrive_once_it_is_back(
    federation: Federation, tmp_path: Path
) -> None:
    port = free_port()
    broker = EmbeddedBroker(port, log_path=tmp_path / "tansu.log").start()
    ensure_federation_topics(broker.bootstrap, federation)
    node = NodeProcess(broker.bootstrap, tmp_path).start()
    try:
        broker.stop()
        items = clean(federation, 1000, DISTRICT)
        results = post_grouped(node, items)
        assert len(results) == 1000 and {r["status"] for r in results} == {"taken"}
        assert node.metric("sgs_node_outbox_depth", district=DISTRICT) == 1000  # waiting on disk
        assert httpx.get(f"{node.url}/healthz").json()["broker_connected"] is False
        wait_until(
            lambda: node.metric("sgs_node_broker_errors_total") > 0, 30, "the sender finding the broker gone"
        )

        broker = EmbeddedBroker(port, log_path=tmp_path / "tansu.log").start()  # empty: it kept nothing
        ensure_federation_topics(broker.bootstrap, federation)
        wanted = {i.record_id for i in items}
        seen = submitted_versions(broker.bootstrap, wanted, timeout_s=90)
        assert set(seen) == {
            (i.record_id, 1) for i in items
        }  # all 1,000, after dedup by (record_id, version)
        wait_until(lambda: node.metric("sgs_node_outbox_depth") == 0, 30, "outbox drained")
        assert node.metric("sgs_node_records_sent_total") >= 1000
        some = results[0]["receipt_id"]
        token = next(i.department.dev_token for i in items if i.record_id == results[0]["record_id"])
        receipt = httpx.get(
            f"{node.url}/v1/receipts/{some}", headers={"Authorization": f"Bearer {token}"}
        ).json()
        assert receipt["status"] == "SENT"
        assert node.stop() == 0
    finally:
        node.stop()
        broker.stop()


def test_node_killed_mid_send_and_restarted_loses_nothing_it_accepted(
    kafka: str, federation: Federation, tmp_path: Path
) -> None:
    node = NodeProcess(kafka, tmp_path).start()
    items = of_one_department(federation, 3000, "penalty", DISTRICT)
    token = items[0].department.dev_token
    accepted: list[str] = []
    attempted: set[str] = set()
    stop = threading.Event()

    def post_until_killed() -> None:
        with httpx.Client(base_url=node.url, timeout=10) as client:
            for start in range(0, len(items), 25):
                if stop.is_set():
                    return
                chunk = items[start : start + 25]
                attempted.update(i.record_id for i in chunk)
                try:
                    r = client.post(
                        "/v1/records/penalty",
                        json=[i.http_body() for i in chunk],
                        headers={"Authorization": f"Bearer {token}"},
                    )
                except httpx.HTTPError:
                    return  # the node died under this request: no answer, no promise
                assert r.status_code == 202, r.text
                accepted.extend(i.record_id for i in chunk)

    poster = threading.Thread(target=post_until_killed)
    poster.start()
    # Kill while the sender is busy: some records acknowledged by the broker, some still in the outbox.
    wait_until(lambda: node.metric("sgs_node_records_sent_total") >= 200, 60, "sender under way")
    node.kill()
    stop.set()
    poster.join(30)
    assert accepted, "nothing was accepted before the kill"

    node.start()  # same data dir: the same outbox
    seen = submitted_versions(kafka, set(accepted), timeout_s=90)
    assert {rid for rid, _ in seen} >= set(accepted)  # nothing accepted is lost
    assert {rid for rid, _ in seen} <= attempted  # and nothing is invented
    wait_until(lambda: node.metric("sgs_node_outbox_depth") == 0, 30, "outbox drained after restart")
    assert node.stop() == 0


def post_taken(node: NodeProcess, items: list) -> list[tuple]:
    """Each item posted and taken (202): (item, its receipt id)."""
    taken = []
    for item in items:
        r = httpx.post(
            f"{node.url}/v1/records/{item.kind}",
            json=item.http_body(),
            headers={"Authorization": f"Bearer {item.department.dev_token}"},
        )
        assert r.status_code == 202, r.text
        taken.append((item, r.json()["receipt_id"]))
    return taken


def test_receipts_from_the_federation_update_the_department_view(
    kafka: str, federation: Federation, tmp_path: Path
) -> None:
    """Receipts one to a message (`sgs.Receipt`), as written before issue 14 and still on the topics: applied."""
    node = NodeProcess(kafka, tmp_path, districts=("all",)).start()
    try:
        items = [clean(federation, 1, DISTRICT)[0], clean(federation, 1, "310101")[0]]
        taken = post_taken(node, items)
        now = datetime.now(UTC)
        producer = KafkaProducer(**kafka_settings(kafka), acks="all")
        codec = default_codec()

        def send(topic: str, key: bytes, value: bytes) -> None:
            producer.send(topic, key=key, value=value, headers=signed_headers("worker", topic, key, value))

        def receipt(item, receipt_id: str, status: str) -> bytes:
            return codec.encode(
                "sgs.Receipt",
                {
                    "receipt_id": receipt_id,
                    "record_id": item.record_id,
                    "version": 1,
                    "source_node": item.node,
                    "status": status,
                    "at": now,
                    "detail": "测试",
                    "reasons": [],
                },
            )

        # on another node's topic, before that node's own receipts: skipped, never applied (issue 16)
        send(receipts_topic("310101"), DISTRICT.encode(), receipt(*taken[0], "RELAYED_NATIONAL"))
        for item, receipt_id in taken:
            for status in ("ACCEPTED", "RELAYED_PROVINCIAL"):
                send(receipts_topic(item.node), item.node.encode(), receipt(item, receipt_id, status))
        send(receipts_topic(DISTRICT), DISTRICT.encode(), b"x")  # must not stop the listener
        producer.flush(10)
        producer.close()

        def status(item, receipt_id: str) -> str:
            headers = {"Authorization": f"Bearer {item.department.dev_token}"}
            return httpx.get(f"{node.url}/v1/receipts/{receipt_id}", headers=headers).json()["status"]

        for item, receipt_id in taken:
            wait_until(lambda: status(item, receipt_id) == "RELAYED_PROVINCIAL", 60, "receipt applied")  # noqa: B023
            headers = {"Authorization": f"Bearer {item.department.dev_token}"}
            view = httpx.get(f"{node.url}/v1/receipts/{receipt_id}", headers=headers).json()
            statuses = [e["status"] for e in view["history"]]
            assert statuses[0] == "RECEIVED" and {"SENT", "ACCEPTED", "RELAYED_PROVINCIAL"} <= set(statuses)
            assert "RELAYED_NATIONAL" not in statuses
    finally:
        assert node.stop() == 0


def test_a_batch_of_receipts_is_applied_and_a_member_for_another_node_refused_alone(
    kafka: str, federation: Federation, tmp_path: Path
) -> None:
    """Issue 14: receipts travel several to a message (`sgs.Receipts`). The signature says who wrote the message,
    not that each receipt in it belongs on the topic: one naming another source node than the topic's is refused
    and counted (outcome `wrong_node`), even for a record this process serves, and the others are applied."""
    node = NodeProcess(kafka, tmp_path, districts=("all",)).start()
    try:
        items = [*clean(federation, 2, DISTRICT), clean(federation, 1, "310101")[0]]
        taken = post_taken(node, items)

        def receipt(item, receipt_id: str, status: str) -> dict:
            return {
                "receipt_id": receipt_id,
                "record_id": item.record_id,
                "version": 1,
                "source_node": item.node,
                "status": status,
                "at": datetime.now(UTC),
                "detail": "测试",
                "reasons": [],
            }

        (a, a_id), (b, b_id), (other, other_id) = taken
        batch = [
            receipt(a, a_id, "ACCEPTED"),
            receipt(other, other_id, "WITHDRAWN"),  # on 310115's topic: not 310115's to hear
            receipt(b, b_id, "ACCEPTED"),
            receipt(a, a_id, "RELAYED_PROVINCIAL"),
        ]
        topic, key = receipts_topic(DISTRICT), DISTRICT.encode()
        value = default_codec().encode("sgs.Receipts", {"receipts": batch})
        producer = KafkaProducer(**kafka_settings(kafka), acks="all")
        producer.send(topic, key=key, value=value, headers=signed_headers("worker", topic, key, value))
        producer.flush(10)
        producer.close()

        def status(item, receipt_id: str) -> str:
            headers = {"Authorization": f"Bearer {item.department.dev_token}"}
            return httpx.get(f"{node.url}/v1/receipts/{receipt_id}", headers=headers).json()["status"]

        wait_until(lambda: status(a, a_id) == "RELAYED_PROVINCIAL", 60, "the batch applied")
        assert status(b, b_id) == "ACCEPTED"
        assert status(other, other_id) != "WITHDRAWN"

        def applied() -> dict[str, float]:  # counted by receipt, not by message
            return {
                outcome: node.metric("sgs_node_receipts_applied_total", district=DISTRICT, outcome=outcome)
                for outcome in ("accepted", "relayed_provincial", "wrong_node")
            }

        expected = {"accepted": 2, "relayed_provincial": 1, "wrong_node": 1}
        wait_until(lambda: applied() == expected, 10, f"{expected} counted")
    finally:
        assert node.stop() == 0


def test_record_rejected_at_the_node_reaches_sgs_rejected_with_every_reason(
    kafka: str, federation: Federation, tmp_path: Path
) -> None:
    """D12 + D8: what the node holds back is also sent upward, so the municipal bulletin can count it."""
    node = NodeProcess(kafka, tmp_path).start()
    try:
        item = clean(federation, 1, DISTRICT, kind="penalty")[0]
        body = {**item.http_body(), "处罚机关": "", "处罚决定日期": "2026-13-45"}
        r = httpx.post(
            f"{node.url}/v1/records/penalty",
            json=body,
            headers={"Authorization": f"Bearer {item.department.dev_token}"},
        )
        assert r.status_code == 422, r.text
        answer = r.json()
        found = rejections_with_receipt(kafka, answer["receipt_id"], timeout_s=60)
        key, rejection = found
        assert key == item.record_id.encode()
        assert (rejection["stage"], rejection["source_node"], rejection["department"]) == (
            "node",
            DISTRICT,
            item.department.id,
        )
        assert {e["rule"] for e in rejection["reasons"]} == {e["rule"] for e in answer["errors"]}
        assert json.loads(rejection["original"]) == json.loads(json.dumps(body))
        wait_until(lambda: node.metric("sgs_node_outbox_depth") == 0, 30, "outbox drained")
    finally:
        assert node.stop() == 0


def rejections_with_receipt(kafka: str, receipt_id: str, timeout_s: float) -> tuple[bytes, dict]:
    """The (key, sgs.Rejection) on sgs.rejected carrying `receipt_id`, read from the beginning."""
    consumer = KafkaConsumer(**kafka_settings(kafka), enable_auto_commit=False, consumer_timeout_ms=1000)
    codec = default_codec()
    try:
        parts = [TopicPartition(REJECTED, p) for p in consumer.partitions_for_topic(REJECTED) or ()]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for messages in consumer.poll(timeout_ms=500).values():
                for m in messages:
                    try:
                        name, value = codec.decode(m.value)
                    except Exception:  # foreign messages on the shared topic
                        continue
                    if name == "sgs.Rejection" and value["receipt_id"] == receipt_id:
                        return m.key, value
    finally:
        consumer.close()
    raise AssertionError(f"no rejection with receipt {receipt_id} on {REJECTED} within {timeout_s}s")


@pytest.mark.timeout(
    600
)  # ~40 s alone on 2 cores (the node's intake costs ~0.3 ms a row); longer on a busy one
def test_file_of_100000_rows_is_taken_in_bounded_memory(federation: Federation, tmp_path: Path) -> None:
    # No broker: the rows wait in the outbox, where they are counted below. That the outbox reaches the broker is
    # proven by the tests above (broker down and back, SIGKILL, a rejection on sgs.rejected); a sender draining
    # 100,000 records (and a broker taking them) during the upload would cost this test a third of its time.
    node = NodeProcess(f"127.0.0.1:{free_port()}", tmp_path).start()
    try:
        item = of_one_department(federation, 1, "penalty", DISTRICT)[0]
        path = tmp_path / "big.csv"
        _write_csv(path, item.row(), 100_000, bad_row=50_000)
        rss_before = _rss_kib(node)
        with path.open("rb") as fh:
            r = httpx.post(
                f"{node.url}/v1/files/penalty",
                content=fh,
                headers={"Authorization": f"Bearer {item.department.dev_token}", "Content-Type": "text/csv"},
                timeout=600,
            )
        assert r.status_code == 207
        answer = r.json()
        assert (answer["taken"], answer["rejected"]) == (99_999, 1)
        bad = [x for x in answer["results"] if x["status"] != "taken"]
        assert [(x["row"], x["errors"][0]["rule"]) for x in bad] == [(50_002, "date.invalid")]
        # The file (~60 MB) and its answer never sit in the node's memory whole.
        assert _peak_rss_kib(node) - rss_before < 150 * 1024
    finally:
        assert node.stop() == 0
    # Every row is accounted for on disk: each taken row once in the outbox as a record of its own, and the bad
    # row's rejection waiting for sgs.rejected (D12).
    with closing(sqlite3.connect(f"file:{tmp_path / 'outbox.db'}?mode=ro", uri=True)) as db:
        waiting = {
            topic: (count, distinct)
            for topic, count, distinct in db.execute(
                "SELECT topic, count(*), count(DISTINCT record_id) FROM outbox GROUP BY topic"
            )
        }
    assert waiting == {SUBMITTED["penalty"]: (99_999, 99_999), REJECTED: (1, 1)}


def _write_csv(path: Path, row: dict[str, str], rows: int, bad_row: int) -> None:
    """A template file of `rows` copies of `row`, each with a decision number of its own; row `bad_row` (counting
    from 0) has an impossible date. Written from one encoded line, so 100,000 rows take a fraction of a second."""
    doc_no = "行政处罚决定书文号"
    header, line = _csv_lines({**row, doc_no: f"{row[doc_no]}-#N#"})
    before, after = line.split("#N#")
    with path.open("w", encoding="utf-8") as out:
        out.write(header)
        for n in range(rows):
            if n == bad_row:
                out.write(_csv_lines({**row, doc_no: f"{row[doc_no]}-{n}", "处罚决定日期": "2026-02-30"})[1])
            else:
                out.write(f"{before}{n}{after}")


def _csv_lines(row: dict[str, str]) -> tuple[str, str]:
    import csv
    import io

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(row))
    writer.writeheader()
    writer.writerow(row)
    header, line, _ = out.getvalue().split("\r\n")
    return header + "\r\n", line + "\r\n"


def _rss_kib(node: NodeProcess) -> int:
    return _status_field(node, "VmRSS")


def _peak_rss_kib(node: NodeProcess) -> int:
    return _status_field(node, "VmHWM")


def _status_field(node: NodeProcess, field: str) -> int:
    assert node.proc is not None
    for line in Path(f"/proc/{node.proc.pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc status")
