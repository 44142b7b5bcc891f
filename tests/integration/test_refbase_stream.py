"""`sgs refbase load` / `publish` against the real broker: the bases reach the workers as change streams (D13)."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition
from stdnum.cn import ric, uscc

from sgs.kafka.security import kafka_settings
from sgs.kafka.topics import REF_LEGAL_PERSONS, REF_PERSONS
from sgs.serialization.codec import default_codec
from tests.support.paths import REPO

SGS = str(REPO / ".venv" / "bin" / "sgs")


def unique_uscc() -> str:
    body = f"91310000MA{uuid.uuid4().int % 10**7:07d}"
    return body + uscc.calc_check_digit(body)


def unique_id_no() -> str:
    body = f"3101011990{uuid.uuid4().int % 12 + 1:02d}{uuid.uuid4().int % 28 + 1:02d}{uuid.uuid4().int % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")


class Reader:
    """A reader of every partition of a topic (assigned, no group: a slow step cannot rebalance it back to the
    start), up to the topic's current end, keeping our keys' records."""

    def __init__(self, kafka: str, topic: str, keys: set[str]) -> None:
        self.topic, self.keys = topic, keys
        self.consumer = KafkaConsumer(**kafka_settings(kafka), enable_auto_commit=False)
        self.partitions = [
            TopicPartition(topic, p) for p in sorted(self.consumer.partitions_for_topic(topic) or ())
        ]
        self.consumer.assign(self.partitions)
        self.consumer.seek_to_beginning(*self.partitions)

    def read_to_end(self) -> list[tuple[str, dict[str, Any]]]:
        ends = self.consumer.end_offsets(self.partitions)
        got: list[tuple[str, dict[str, Any]]] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for records in self.consumer.poll(500).values():
                for m in records:
                    key = m.key.decode()
                    if key in self.keys:
                        got.append((key, default_codec().decode(m.value)[1]))
            if all(self.consumer.position(tp) >= ends[tp] for tp in self.partitions):
                return got
        raise AssertionError(f"did not reach the end of {self.topic}")

    def close(self) -> None:
        self.consumer.close()


@pytest.fixture
def run_sgs(kafka: str, data_dir: Path) -> Iterator[Any]:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [SGS, "refbase", *args, "--kafka-bootstrap", kafka, "--data-dir", str(data_dir)]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO)

    yield run


def test_load_publishes_new_rows_then_only_the_changed_row(run_sgs: Any, kafka: str, tmp_path: Path) -> None:
    """D13: every changed row of the legal-person base reaches a running reader, unchanged rows are not
    republished, and an invalid row is reported without stopping the load (exit 1)."""
    a, b, c = unique_uscc(), unique_uscc(), unique_uscc()
    csv = tmp_path / "lp.csv"
    csv.write_text(
        "统一社会信用代码,名称,登记状态,状态日期\n"
        f"{a},上海甲贸易有限公司,存续,\n{b},上海乙物流有限公司,存续,\n{c},上海丙餐饮有限公司,吊销,2025-06-30\n"
        f"{a[:-1]}?,坏代码,存续,\n",
        encoding="utf-8",
    )
    reader = Reader(kafka, REF_LEGAL_PERSONS, {a, b, c})
    try:
        out = run_sgs("load", "legal-persons", str(csv))
        assert out.returncode == 1, out.stderr
        assert "3 inserted, 0 updated, 0 unchanged, 1 invalid, 3 published" in out.stdout
        assert f"{csv}:5:" in out.stderr
        first = dict(reader.read_to_end())
        assert set(first) == {a, b, c}
        assert first[c]["status"] == "REVOKED" and first[c]["status_since"] == date(2025, 6, 30)
        assert first[a]["name"] == "上海甲贸易有限公司"

        csv.write_text(
            "统一社会信用代码,名称,登记状态,状态日期\n"
            f"{a},上海甲贸易有限公司,存续,\n{b},上海乙物流有限公司,注销,2026-10-09\n{c},上海丙餐饮有限公司,吊销,2025-06-30\n",
            encoding="utf-8",
        )
        out = run_sgs("load", "legal-persons", str(csv))
        assert out.returncode == 0, out.stderr
        assert "0 inserted, 1 updated, 2 unchanged, 0 invalid, 1 published" in out.stdout
        second = reader.read_to_end()
        assert [(k, r["status"], r["status_since"]) for k, r in second] == [
            (b, "DEREGISTERED", date(2026, 10, 9))
        ]
    finally:
        reader.close()


def test_persons_load_and_full_republish_reach_the_reader(run_sgs: Any, kafka: str, tmp_path: Path) -> None:
    """D13: the population base streams to `sgs.ref.persons`; `sgs refbase publish` resends the whole base for a
    fresh broker, unchanged rows included."""
    p, q = unique_id_no(), unique_id_no()
    csv = tmp_path / "persons.csv"
    csv.write_text(f"身份证号,姓名\n{p},张三\n{q},李四\n", encoding="utf-8")
    reader = Reader(kafka, REF_PERSONS, {p, q})
    try:
        out = run_sgs("load", "persons", str(csv))
        assert out.returncode == 0, out.stderr
        assert sorted((k, r["name"]) for k, r in reader.read_to_end()) == sorted([(p, "张三"), (q, "李四")])
        out = run_sgs("publish", "persons")
        assert out.returncode == 0, out.stderr
        assert "persons: 2 published" in out.stdout
        assert sorted(k for k, _ in reader.read_to_end()) == sorted([p, q])
    finally:
        reader.close()


def test_load_against_an_unreachable_broker_fails_with_exit_2_and_stores_nothing(
    data_dir: Path, tmp_path: Path
) -> None:
    """The store and the stream stay in step: nothing is stored that was not published."""
    from sgs.kafka.launch import free_port
    from sgs.refbase.store import PERSONS, RefBase

    p = unique_id_no()
    csv = tmp_path / "persons.csv"
    csv.write_text(f"身份证号,姓名\n{p},张三\n", encoding="utf-8")
    cmd = [SGS, "refbase", "load", "persons", str(csv), "--data-dir", str(data_dir)]
    out = subprocess.run(
        [*cmd, "--kafka-bootstrap", f"127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert out.returncode == 2
    assert "broker" in out.stderr
    with RefBase(f"sqlite:///{data_dir}/refbase.db") as base:
        assert base.get(PERSONS, p) is None


def test_an_entry_the_broker_can_never_take_is_named_at_once_not_retried(kafka: str) -> None:
    """Issue 17: the publisher sorts its errors; an entry over the message limit fails at once, naming its code."""
    from sgs.refbase.publisher import ChangePublisher, UnsendableEntry
    from sgs.refbase.store import LEGAL_PERSONS

    code = "91310115MA1K4CQ00" + uscc.calc_check_digit("91310115MA1K4CQ00")
    entry = {"uscc": code, "name": "某" * 600_000, "status": "ACTIVE", "status_since": None}
    entry["updated_at"] = datetime.now(UTC)
    started = time.monotonic()
    with ChangePublisher(kafka) as publish, pytest.raises(UnsendableEntry, match=code):
        publish(LEGAL_PERSONS, [entry])
    assert time.monotonic() - started < 10
