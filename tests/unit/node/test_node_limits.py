"""Issue 17: what the node takes, and what it sends upward about what it refuses, always fits in one Kafka message,
so no record can stop the outbox; hostile cells get a clear reason with their rule."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.node.api import Limits, create_app
from services.node.fairness import FairShare
from services.node.intake import Intake
from services.node.metrics import NodeMetrics
from services.node.sender import SenderState
from services.node.store import NodeStore
from sgs.config import Department, Federation
from sgs.domain.workdays import Calendar
from sgs.kafka.topics import MAX_MESSAGE_BYTES, REJECTED
from sgs.serialization.codec import default_codec
from tests.support.node_records import clean

DISTRICT = "310115"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[NodeStore]:
    s = NodeStore(tmp_path / "outbox.db")
    yield s
    s.close()


def intake(store: NodeStore, **kwargs: Any) -> Intake:
    return Intake(store, NodeMetrics(store, (DISTRICT,)), Calendar(), default_codec(), **kwargs)


def submit(store: NodeStore, department: Department, body: dict, **kwargs: Any) -> dict:
    (outcome,) = intake(store, **kwargs).submit_records(department, "penalty", [body])
    return outcome.as_json()


def rejection_sent_upward(store: NodeStore) -> dict:
    (entry,) = [p for p in store.pending(10) if p.topic == REJECTED]
    assert len(entry.payload) < MAX_MESSAGE_BYTES // 2
    return default_codec().decode(entry.payload)[1]


def test_a_1_2_mb_cell_is_refused_with_its_rule_and_its_rejection_fits_in_a_message(
    store: NodeStore, federation: Federation
) -> None:
    item = clean(federation, 1, DISTRICT, kind="penalty")[0]
    body = item.http_body()
    body["违法事实"] = "违" * 400_000
    answer = submit(store, item.department, body)
    assert answer["status"] == "rejected"
    (reason,) = answer["errors"]
    assert (reason["field"], reason["rule"]) == ("违法事实", "text.too_long")
    assert "5000" in reason["message"] and len(reason["value"]) <= 201
    original = json.loads(rejection_sent_upward(store)["original"])
    assert original["truncated_from_bytes"] > 1_200_000 and original["head"].startswith("{")


@pytest.mark.parametrize(
    "column", ["行政相对人名称", "行政处罚决定书文号", "处罚机关", "违法事实"], ids=lambda c: c
)
def test_a_control_character_in_any_text_cell_is_refused(
    store: NodeStore, federation: Federation, column: str
) -> None:
    item = clean(federation, 1, DISTRICT, kind="penalty")[0]
    body = item.http_body()
    body[column] = "上海\x00某公司"
    answer = submit(store, item.department, body)
    assert answer["status"] == "rejected"
    reasons = {(r["field"], r["rule"]) for r in answer["errors"]}
    assert (column, "text.control") in reasons
    assert all("\x00" not in (r["value"] or "") for r in answer["errors"])
    assert not [p for p in store.pending(10) if p.topic != REJECTED]  # nothing taken, so no id with a NUL


def test_line_breaks_in_free_text_are_kept(store: NodeStore, federation: Federation) -> None:
    item = clean(federation, 1, DISTRICT, kind="penalty")[0]
    body = item.http_body()
    body["违法事实"] = "一、……\n二、……\t（附表）"
    assert submit(store, item.department, body)["status"] == "taken"


def test_a_record_of_100_000_unknown_columns_gets_50_reasons_and_a_rejection_that_fits(
    store: NodeStore, federation: Federation
) -> None:
    department = federation.node(DISTRICT).departments[0]
    body = {f"列{i}" * 50: "x" * 100 for i in range(100_000)}
    answer = submit(store, department, body)
    assert answer["status"] == "rejected" and len(answer["errors"]) == 50
    last = answer["errors"][-1]
    assert last["rule"] == "reasons.truncated" and int(last["value"]) > 99_000
    assert all(len(r["field"]) <= 201 for r in answer["errors"])
    rejection = rejection_sent_upward(store)
    assert len(rejection["reasons"]) == 50


def test_a_record_whose_bytes_exceed_the_bound_is_refused_as_too_large(
    store: NodeStore, federation: Federation
) -> None:
    item = clean(federation, 1, DISTRICT, kind="penalty")[0]
    answer = submit(store, item.department, item.http_body(), max_record_bytes=200)
    assert answer["status"] == "rejected"
    (reason,) = answer["errors"]
    assert reason["rule"] == "record.too_large" and "200" in reason["message"]


def app_for(store: NodeStore, federation: Federation, tmp_path: Path, share: FairShare | None = None) -> Any:
    return create_app(
        federation,
        (DISTRICT,),
        store,
        intake(store),
        NodeMetrics(store, (DISTRICT,)),
        lambda: SenderState(connected=True, last_error=None, last_error_at=None, last_sent_at=None),
        limits=Limits(),
        tmp_dir=tmp_path,
        share=share,
        dev=True,
    )


@pytest.fixture
def client(store: NodeStore, federation: Federation, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(app_for(store, federation, tmp_path)) as c:
        yield c


def test_over_its_rate_a_department_gets_429_with_retry_after_and_another_does_not(
    store: NodeStore, federation: Federation, tmp_path: Path
) -> None:
    loud, quiet = federation.node(DISTRICT).departments[:2]
    with TestClient(app_for(store, federation, tmp_path, FairShare(rate=1, burst=2, uploads=0))) as c:
        statuses = [
            c.get("/v1/receipts", headers={"Authorization": f"Bearer {loud.dev_token}"}).status_code
            for _ in range(3)
        ]
        assert statuses == [200, 200, 429]
        r = c.get("/v1/receipts", headers={"Authorization": f"Bearer {loud.dev_token}"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert (
            c.get("/v1/receipts", headers={"Authorization": f"Bearer {quiet.dev_token}"}).status_code == 200
        )
        r = c.post(
            "/v1/files/penalty",
            content=b"x",
            headers={"Authorization": f"Bearer {quiet.dev_token}", "Content-Type": "text/csv"},
        )
        assert r.status_code == 429 and "uploads" in r.json()["detail"] and r.headers["retry-after"]


def rules(answer: dict) -> set[tuple[str, str]]:
    return {(r["field"], r["rule"]) for r in answer["errors"]}


def test_a_35_digit_receipts_offset_is_a_422_not_a_500(client: TestClient, federation: Federation) -> None:
    token = federation.node(DISTRICT).departments[0].dev_token
    r = client.get("/v1/receipts", params={"offset": "1" * 35}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "offset"]


def test_a_record_decided_0001_01_01_published_at_plus_14_00_is_a_422_with_its_reasons(
    client: TestClient, federation: Federation
) -> None:
    """Issue 17: the time zone arithmetic overflowed (a 500)."""
    item = clean(federation, 1, DISTRICT, kind="penalty")[0]
    body = {**item.http_body(), "处罚决定日期": "0001-01-01", "published_at": "0001-01-01T00:00:00+14:00"}
    r = client.post(
        "/v1/records/penalty", json=body, headers={"Authorization": f"Bearer {item.department.dev_token}"}
    )
    assert r.status_code == 422, r.text
    assert {("处罚决定日期", "date.floor"), ("published_at", "published_at.floor")} <= rules(r.json())
    body["published_at"] = "9999-12-31T23:59:59-14:00"
    r = client.post(
        "/v1/records/penalty", json=body, headers={"Authorization": f"Bearer {item.department.dev_token}"}
    )
    assert r.status_code == 422 and ("published_at", "published_at.future") in rules(r.json())


def test_a_penalty_shown_until_9999_12_31_is_refused_beyond_the_longest_publicity(
    store: NodeStore, federation: Federation
) -> None:
    """Issue 17: decided 0001-01-01, shown until 9999-12-31: on 信用中国 for ever (D14)."""
    item = clean(federation, 1, DISTRICT, kind="penalty")[0]
    body = {**item.http_body(), "处罚决定日期": "0001-01-01", "公示截止期": "9999-12-31"}
    answer = submit(store, item.department, body)
    assert answer["status"] == "rejected" and ("处罚决定日期", "date.floor") in rules(answer)
    # the longest the rule book in force on the decision date allows this record (issue 15: its tier's maximum)
    longest = federation.rules.longest_publicity("penalty", item.record)
    assert longest is not None
    body = {**item.http_body(), "公示截止期": "9999-12-31"}
    answer = submit(store, item.department, body, rules=federation.rules)
    (reason,) = answer["errors"]
    assert reason["rule"] == "publicity_end.too_late"
    assert longest.isoformat() in reason["message"]
    body["公示截止期"] = longest.isoformat()
    assert submit(store, item.department, body, rules=federation.rules)["status"] == "taken"


@pytest.mark.parametrize("version", [2**62 - 1, 1_000_001, 0])
def test_an_implausible_version_is_refused_with_its_bound(
    store: NodeStore, federation: Federation, version: int
) -> None:
    item = clean(federation, 1, DISTRICT, kind="penalty")[0]
    answer = submit(store, item.department, {**item.http_body(), "version": version})
    (reason,) = answer["errors"]
    assert reason["rule"] == "version.range" and "1000000" in reason["message"]
