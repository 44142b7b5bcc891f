"""The district node's HTTP API in-process (no broker: the outbox fills up and stays): authentication, the
per-record answers of D4/D12, batches, files and hostile input."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from fastapi.testclient import TestClient

from services.node.api import Limits, create_app
from services.node.intake import Intake
from services.node.metrics import NodeMetrics
from services.node.sender import SenderState
from services.node.store import NodeStore, Pending, ReceiptUpdate
from sgs.config import Department, Federation
from sgs.domain.template import template_columns
from sgs.domain.workdays import Calendar
from sgs.serialization.codec import default_codec
from tests.support.node_records import clean, csv_bytes, of_one_department

DISTRICT = "310115"


@pytest.fixture
def node(federation: Federation, tmp_path: Path) -> Iterator[tuple[TestClient, NodeStore, NodeMetrics]]:
    store = NodeStore(tmp_path / "outbox.db")
    metrics = NodeMetrics(store, (DISTRICT,))
    intake = Intake(store, metrics, Calendar(), default_codec())
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    app = create_app(
        federation,
        (DISTRICT,),
        store,
        intake,
        metrics,
        lambda: SenderState(connected=False, last_error=None, last_error_at=None, last_sent_at=None),
        limits=Limits(max_body_bytes=256 * 1024, max_file_bytes=2 * 1024 * 1024, max_batch_records=50),
        tmp_dir=uploads,
        dev=True,
    )
    with TestClient(app) as client:
        yield client, store, metrics
    store.close()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def taken(store: NodeStore) -> list[Pending]:
    """The outbox entries bound for `sgs.submitted.*` (rejections wait there too, for `sgs.rejected`)."""
    return [p for p in store.pending(100) if not p.is_rejection]


def sample(metrics: NodeMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_valid_record_is_taken_202_with_a_receipt_and_waits_in_the_outbox(node, federation) -> None:
    client, store, metrics = node
    item = clean(federation, 1)[0]
    r = client.post(
        f"/v1/records/{item.kind}", json=item.http_body(), headers=auth(item.department.dev_token)
    )
    assert r.status_code == 202, r.text
    answer = r.json()
    assert answer["status"] == "taken" and answer["record_id"] == item.record_id and answer["version"] == 1
    (pending,) = store.pending(10)
    name, record = default_codec().decode(pending.payload)
    envelope = record["envelope"]
    assert name == ("sgs.PenaltyRecord" if item.kind == "penalty" else "sgs.LicenseRecord")
    assert envelope["record_id"] == item.record_id
    assert envelope["receipt_id"] == answer["receipt_id"]
    assert (envelope["source_node"], envelope["division_code"]) == (DISTRICT, DISTRICT)
    assert envelope["department"] == item.department.id
    assert envelope["decided_on"] == item.decided_on
    receipt = client.get(
        f"/v1/receipts/{answer['receipt_id']}", headers=auth(item.department.dev_token)
    ).json()
    assert receipt["status"] == "RECEIVED" and receipt["status_label"] == "已接收"
    labels = {"district": DISTRICT, "department": item.department.id, "kind": item.kind}
    assert sample(metrics, "sgs_node_records_received_total", **labels) == 1


def test_missing_or_unknown_token_is_401(node, federation) -> None:
    client, _, metrics = node
    item = clean(federation, 1)[0]
    assert client.post(f"/v1/records/{item.kind}", json=item.http_body()).status_code == 401
    r = client.post(f"/v1/records/{item.kind}", json=item.http_body(), headers=auth("not-a-token-at-all"))
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert client.get("/v1/receipts", headers={"Authorization": "Basic abc"}).status_code == 401
    assert sample(metrics, "sgs_node_unauthorized_total") == 3


def test_department_of_a_node_this_process_does_not_serve_is_403(node, federation) -> None:
    client, store, metrics = node
    item = clean(federation, 1, district="310101")[0]
    r = client.post(
        f"/v1/records/{item.kind}", json=item.http_body(), headers=auth(item.department.dev_token)
    )
    assert r.status_code == 403
    assert store.pending(10) == []
    assert sample(metrics, "sgs_node_forbidden_total", district="310101", department=item.department.id) == 1


def test_record_of_another_authority_is_403_counted_and_not_stored(node, federation) -> None:
    client, store, metrics = node
    item = clean(federation, 1)[0]
    other = next(d for d in federation.node(DISTRICT).departments if d != item.department)
    r = client.post(f"/v1/records/{item.kind}", json=item.http_body(), headers=auth(other.dev_token))
    assert r.status_code == 403
    assert r.json()["errors"][0]["rule"] == "authority.forbidden"
    assert store.pending(10) == [] and store.receipts(other.id)[0] == 0
    assert sample(metrics, "sgs_node_forbidden_total", district=DISTRICT, department=other.id) == 1


def test_invalid_record_is_422_with_every_reason_and_a_rejected_receipt(node, federation) -> None:
    client, store, metrics = node
    item = clean(federation, 1, kind="penalty")[0]
    body = item.http_body()
    body["处罚决定日期"] = "2026-13-45"
    body["处罚机关"] = ""
    body["version"] = "two"
    r = client.post("/v1/records/penalty", json=body, headers=auth(item.department.dev_token))
    assert r.status_code == 422
    answer = r.json()
    rules = {(e["field"], e["rule"]) for e in answer["errors"]}
    assert {
        ("处罚决定日期", "date.invalid"),
        ("处罚机关", "required"),
        ("version", "version.format"),
    } <= rules
    assert taken(store) == []
    (waiting,) = store.pending(10)  # D12/D8: the rejection travels upward too
    name, rejection = default_codec().decode(waiting.payload)
    assert (name, waiting.topic, rejection["stage"]) == ("sgs.Rejection", "sgs.rejected", "node")
    assert rejection["receipt_id"] == answer["receipt_id"] and waiting.record_id == item.record_id
    assert (rejection["source_node"], rejection["department"]) == (DISTRICT, item.department.id)
    assert {(e["field"], e["rule"]) for e in rejection["reasons"]} == rules
    assert json.loads(rejection["original"]) == json.loads(json.dumps(body))
    receipt = client.get(
        f"/v1/receipts/{answer['receipt_id']}", headers=auth(item.department.dev_token)
    ).json()
    assert receipt["status"] == "REJECTED" and {(e["field"], e["rule"]) for e in receipt["reasons"]} == rules


def test_mixed_batch_takes_the_valid_records_and_says_which_207(node, federation) -> None:
    client, store, _ = node
    items = of_one_department(federation, 4, "penalty")
    bodies = [i.http_body() for i in items]
    bodies[1]["行政相对人代码_1(统一社会信用代码)"] = "91310115MA0FKK9W3X"  # wrong check character
    bodies.insert(3, ["not", "a", "record"])
    r = client.post("/v1/records/penalty", json=bodies, headers=auth(items[0].department.dev_token))
    assert r.status_code == 207, r.text
    answer = r.json()
    assert (answer["taken"], answer["rejected"]) == (3, 2)
    assert [x["status"] for x in answer["results"]] == ["taken", "rejected", "taken", "rejected", "taken"]
    assert answer["results"][1]["errors"][0]["rule"] == "uscc.check_char"
    assert [p.record_id for p in taken(store)] == [
        items[0].record_id,
        items[2].record_id,
        items[3].record_id,
    ]
    rejections = [default_codec().decode(p.payload)[1] for p in store.pending(10) if p.is_rejection]
    assert [r["receipt_id"] for r in rejections] == [answer["results"][i]["receipt_id"] for i in (1, 3)]
    assert json.loads(rejections[1]["original"]) == ["not", "a", "record"]


def test_batch_of_only_valid_records_is_202_and_of_only_invalid_is_422(node, federation) -> None:
    client, _, _ = node
    items = of_one_department(federation, 5, "license")
    headers = auth(items[0].department.dev_token)
    r = client.post("/v1/records/license", json=[i.http_body() for i in items[:3]], headers=headers)
    assert r.status_code == 202 and r.json()["taken"] == 3
    bad = [{**i.http_body(), "许可决定日期": ""} for i in items[3:]]
    r = client.post("/v1/records/license", json=bad, headers=headers)
    assert r.status_code == 422 and r.json()["rejected"] == 2


def test_d4_same_version_same_content_returns_the_earlier_receipt_200(node, federation) -> None:
    client, store, _ = node
    item = clean(federation, 1)[0]
    headers = auth(item.department.dev_token)
    first = client.post(f"/v1/records/{item.kind}", json=item.http_body(), headers=headers).json()
    again = client.post(f"/v1/records/{item.kind}", json=item.http_body(), headers=headers)
    assert again.status_code == 200
    assert again.json()["status"] == "unchanged" and again.json()["receipt_id"] == first["receipt_id"]
    assert len(store.pending(10)) == 1


def test_d4_same_version_different_content_is_rejected_with_a_clear_reason(node, federation) -> None:
    client, store, _ = node
    item = clean(federation, 1, kind="penalty")[0]
    headers = auth(item.department.dev_token)
    client.post("/v1/records/penalty", json=item.http_body(), headers=headers)
    changed = {**item.http_body(), "违法事实": item.http_body()["违法事实"] + "（补充）"}
    r = client.post("/v1/records/penalty", json=changed, headers=headers)
    assert r.status_code == 422
    (error,) = r.json()["errors"]
    assert error["rule"] == "version.conflict" and "更高的版本号" in error["message"]
    assert len(taken(store)) == 1
    (rejection,) = [default_codec().decode(p.payload)[1] for p in store.pending(10) if p.is_rejection]
    assert rejection["record_id"] == item.record_id and rejection["reasons"][0]["rule"] == "version.conflict"


def test_d4_higher_version_is_an_update_and_a_lower_one_is_outdated(node, federation) -> None:
    client, store, _ = node
    item = clean(federation, 1, kind="penalty")[0]
    headers = auth(item.department.dev_token)
    client.post("/v1/records/penalty", json={**item.http_body(), "version": 2}, headers=headers)
    update = {**item.http_body(), "version": 3, "operation": "更新", "违法事实": "更正后的违法事实"}
    r = client.post("/v1/records/penalty", json=update, headers=headers)
    assert r.status_code == 202 and r.json()["version"] == 3
    _, record = default_codec().decode(store.pending(10)[1].payload)
    assert (record["envelope"]["version"], record["envelope"]["operation"]) == (3, "UPDATE")
    r = client.post("/v1/records/penalty", json={**item.http_body(), "version": 1}, headers=headers)
    assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "version.outdated"


def test_d6_portal_to_submission_working_days_on_receipt_and_metric(node, federation) -> None:
    client, _, metrics = node
    item = next(i for i in clean(federation, 20) if i.published_at is not None)
    r = client.post(
        f"/v1/records/{item.kind}", json=item.http_body(), headers=auth(item.department.dev_token)
    )
    answer = r.json()
    assert answer["portal_to_submit_working_days"] >= 0
    receipt = client.get(
        f"/v1/receipts/{answer['receipt_id']}", headers=auth(item.department.dev_token)
    ).json()
    assert receipt["portal_to_submit_working_days"] == answer["portal_to_submit_working_days"]
    assert receipt["reported_within_d6"] == (answer["portal_to_submit_working_days"] <= 2)
    labels = {"district": DISTRICT, "department": item.department.id, "kind": item.kind}
    assert sample(metrics, "sgs_node_portal_to_submit_working_days_count", **labels) == 1


def test_published_at_in_the_future_or_unreadable_is_rejected(node, federation) -> None:
    client, _, _ = node
    item = clean(federation, 1)[0]
    headers = auth(item.department.dev_token)
    for value, rule in (("2999-01-01T00:00:00", "published_at.future"), ("yesterday", "published_at.format")):
        r = client.post(
            f"/v1/records/{item.kind}", json={**item.http_body(), "published_at": value}, headers=headers
        )
        assert r.status_code == 422 and r.json()["errors"][0]["rule"] == rule


def test_receipts_list_is_the_departments_own(node, federation) -> None:
    client, _, _ = node
    items = of_one_department(federation, 3, "penalty")
    dept = items[0].department
    client.post("/v1/records/penalty", json=[i.http_body() for i in items], headers=auth(dept.dev_token))
    listing = client.get("/v1/receipts?status=received&limit=2", headers=auth(dept.dev_token)).json()
    assert listing["total"] == 3 and len(listing["receipts"]) == 2
    other = next(d for d in federation.node(DISTRICT).departments if d != dept)
    assert client.get(f"/v1/receipts?department={dept.id}", headers=auth(other.dev_token)).status_code == 403
    assert client.get("/v1/receipts", headers=auth(other.dev_token)).json()["total"] == 0
    receipt_id = listing["receipts"][0]["receipt_id"]
    assert client.get(f"/v1/receipts/{receipt_id}", headers=auth(other.dev_token)).status_code == 404
    assert client.get("/v1/receipts?status=LOST", headers=auth(dept.dev_token)).status_code == 422


def test_body_over_the_limit_is_413_with_or_without_content_length(node, federation) -> None:
    client, store, _ = node
    token = federation.node(DISTRICT).departments[0].dev_token
    big = b'{"x": "' + b"a" * 300_000 + b'"}'
    r = client.post(
        "/v1/records/penalty", content=big, headers={**auth(token), "Content-Type": "application/json"}
    )
    assert r.status_code == 413

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"a" * 10_000

    r = client.post(
        "/v1/records/penalty", content=chunks(), headers={**auth(token), "Content-Type": "application/json"}
    )
    assert r.status_code == 413
    assert store.pending(10) == []


def test_bad_json_wrong_content_type_and_non_records_get_clear_answers(node, federation) -> None:
    client, _, _ = node
    headers = {**auth(federation.node(DISTRICT).departments[0].dev_token), "Content-Type": "application/json"}
    r = client.post("/v1/records/penalty", content=b'{"a": ', headers=headers)
    assert r.status_code == 400 and r.json()["error"] == "bad_json"
    r = client.post("/v1/records/penalty", content=b"[" * 100_000, headers=headers)
    assert r.status_code == 400
    r = client.post("/v1/records/penalty", content=b"\xff\xfe", headers=headers)
    assert r.status_code == 400
    assert client.post("/v1/records/penalty", content=b'"text"', headers=headers).status_code == 422
    assert client.post("/v1/records/penalty", content=b"[]", headers=headers).status_code == 422
    assert client.post("/v1/records/fines", content=b"{}", headers=headers).status_code == 422
    r = client.post("/v1/records/penalty", content=b"a,b", headers={**headers, "Content-Type": "text/csv"})
    assert r.status_code == 415
    r = client.post("/v1/records/penalty", content=json.dumps([{}] * 51), headers=headers)
    assert r.status_code == 413 and r.json()["error"] == "batch_too_large"


def test_csv_file_with_a_bad_row_among_good_rows_takes_the_good_ones(node, federation) -> None:
    client, store, _ = node
    items = of_one_department(federation, 5, "penalty")
    rows = [i.row() for i in items]
    rows[2]["处罚机关统一社会信用代码"] = "not-a-code"
    r = client.post(
        "/v1/files/penalty",
        content=csv_bytes("penalty", rows),
        headers={**auth(items[0].department.dev_token), "Content-Type": "text/csv"},
    )
    assert r.status_code == 207, r.text
    answer = r.json()
    assert (answer["taken"], answer["forbidden"], answer["file_error"]) == (4, 1, None)
    assert [x["row"] for x in answer["results"]] == [2, 3, 4, 5, 6]
    assert answer["results"][2]["status"] == "forbidden"
    assert len(store.pending(10)) == 4


def test_xlsx_upload_as_multipart_reports_per_row(node, federation) -> None:
    client, store, _ = node
    items = of_one_department(federation, 3, "license")
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(template_columns("license"))
    for i, item in enumerate(items):
        row = item.row()
        if i == 1:
            row["许可决定日期"] = "not a date"
        sheet.append([row[c] for c in template_columns("license")])
    data = io.BytesIO()
    workbook.save(data)
    r = client.post(
        "/v1/files/license",
        files={"file": ("许可.xlsx", data.getvalue(), "application/octet-stream")},
        headers=auth(items[0].department.dev_token),
    )
    assert r.status_code == 207, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == ["taken", "rejected", "taken"]
    assert results[1]["errors"][0]["field"] == "许可决定日期"
    (waiting,) = [p for p in store.pending(10) if p.is_rejection]
    _, rejection = default_codec().decode(waiting.payload)
    original = json.loads(rejection["original"])  # the row as {column: cell}, before parsing
    assert original["许可决定日期"] == "not a date" and set(original) == set(template_columns("license"))


def test_file_with_a_wrong_header_or_type_or_size_is_refused(node, federation) -> None:
    client, store, _ = node
    token = federation.node(DISTRICT).departments[0].dev_token
    r = client.post(
        "/v1/files/penalty", content=b"a,b\n1,2\n", headers={**auth(token), "Content-Type": "text/csv"}
    )
    assert r.status_code == 422 and "表头" in r.json()["file_error"]
    r = client.post(
        "/v1/files/penalty", content=b"%PDF-1.4", headers={**auth(token), "Content-Type": "application/pdf"}
    )
    assert r.status_code == 415
    big = b"x" * (2 * 1024 * 1024 + 1)
    r = client.post("/v1/files/penalty", content=big, headers={**auth(token), "Content-Type": "text/csv"})
    assert r.status_code == 413
    assert store.pending(10) == []


def test_healthz_and_metrics(node) -> None:
    client, _, _ = node
    health = client.get("/healthz").json()
    assert health == {
        "status": "ok",
        "problems": [],
        "nodes": [DISTRICT],
        "broker_connected": False,
        "last_sent_at": None,
        "outbox_depth": 0,
        "outbox_oldest_at": None,
        "parked": 0,
    }
    text = client.get("/metrics").text
    assert 'sgs_node_outbox_depth{district="310115"} 0.0' in text
    assert "sgs_node_outbox_oldest_age_seconds" in text


def decision_body(record_id: str, department: Department, **fields: str) -> dict[str, str]:
    """A credit repair (D16) in the template's Chinese names, as a department would send it: its own decision."""
    return {
        "记录标识": record_id,
        "决定类型": "信用修复通过",
        "决定机关": department.name,
        "决定机关统一社会信用代码": department.uscc,
        "决定日期": "2026-01-15",
        **fields,
    }


def test_a_decision_on_an_accepted_record_is_taken_with_a_receipt_of_its_own(node, federation) -> None:
    """D15/D16: POST /v1/decisions with the department's token; the decision waits in the outbox for
    sgs.decisions, keyed by the record id, and its receipt is the department's to follow."""
    client, store, _ = node
    item = clean(federation, 1)[0]
    headers = auth(item.department.dev_token)
    record = client.post(f"/v1/records/{item.kind}", json=item.http_body(), headers=headers).json()
    body = decision_body(item.record_id, item.department)
    assert client.post("/v1/decisions", json=body).status_code == 401
    assert client.post("/v1/decisions", json=body, headers=headers).status_code == 409  # not accepted yet
    store.apply_receipts([ReceiptUpdate(record["receipt_id"], "ACCEPTED", 1)])
    r = client.post("/v1/decisions", json=body, headers=headers)
    assert r.status_code == 202, r.text
    answer = r.json()
    assert answer["status"] == "taken" and answer["record_id"] == item.record_id
    (pending,) = [p for p in store.pending(10) if p.topic == "sgs.decisions"]
    assert pending.record_id == item.record_id and not pending.is_record
    name, decision = default_codec().decode(pending.payload)
    assert name == "sgs.LifecycleDecision"
    assert (decision["decision"], decision["receipt_id"]) == ("REPAIR_APPROVED", answer["receipt_id"])
    receipt = client.get(f"/v1/receipts/{answer['receipt_id']}", headers=headers).json()
    assert (receipt["status"], receipt["record_id"], receipt["version"]) == ("RECEIVED", item.record_id, None)


def test_a_bad_decision_is_400_with_every_reason_and_nothing_is_stored(node, federation) -> None:
    client, store, _ = node
    item = clean(federation, 1)[0]
    body = decision_body(item.record_id, item.department, 决定类型="撤回", 决定日期="2026-02-30")
    del body["决定机关"]
    r = client.post("/v1/decisions", json=body, headers=auth(item.department.dev_token))
    assert r.status_code == 400 and r.json()["error"] == "bad_decision"
    assert {(e["field"], e["rule"]) for e in r.json()["reasons"]} == {
        ("决定类型", "enum"),
        ("决定日期", "date.invalid"),
        ("决定机关", "required"),
    }
    assert client.post("/v1/decisions", content=b"{", headers={**auth(item.department.dev_token),
                       "Content-Type": "application/json"}).status_code == 400  # fmt: skip
    assert store.pending(10) == []


def test_a_decision_on_an_unknown_or_foreign_record_is_refused(node, federation) -> None:
    client, store, _ = node
    item = clean(federation, 1)[0]
    other = next(d for d in federation.node(DISTRICT).departments if d != item.department)
    headers = auth(item.department.dev_token)
    assert (
        client.post(
            "/v1/decisions", json=decision_body(item.record_id, item.department), headers=headers
        ).status_code
        == 404
    )
    foreign = item.record_id.replace(item.department.uscc, other.uscc)
    r = client.post("/v1/decisions", json=decision_body(foreign, item.department), headers=headers)
    assert r.status_code == 403 and store.pending(10) == []


def test_a_decision_naming_another_authority_is_403_and_not_stored(node, federation) -> None:
    """Issue 16: the 决定机关 of a decision, name and code, is the department's own, as for records."""
    client, store, _ = node
    item = clean(federation, 1)[0]
    headers = auth(item.department.dev_token)
    record = client.post(f"/v1/records/{item.kind}", json=item.http_body(), headers=headers).json()
    store.apply_receipts([ReceiptUpdate(record["receipt_id"], "ACCEPTED", 1)])
    before = len(store.pending(100))
    for changed in (
        {"决定机关": "上海市公共信用信息服务中心"},
        {"决定机关统一社会信用代码": "12310000425014476N"},
    ):
        r = client.post("/v1/decisions", json={**decision_body(item.record_id, item.department), **changed},
                        headers=headers)  # fmt: skip
        assert r.status_code == 403, r.text
        assert r.json()["reasons"][0]["rule"] == "authority.forbidden"
    assert len(store.pending(100)) == before


@pytest.mark.parametrize(
    "column, value",
    [
        ("处罚机关", "徐汇区市场监督管理局"),
        ("数据来源单位", "徐汇区市场监督管理局"),
        ("数据来源单位统一社会信用代码", "11310104001040012F"),
    ],
)
def test_a_record_naming_another_authority_or_source_is_403_and_not_stored(
    node, federation, column: str, value: str
) -> None:
    """Issue 16: the authority's name and the data source unit (name and code) are the department's own; a
    record that names 徐汇's bureau with 浦东's token is refused whole and nothing of it is stored."""
    client, store, metrics = node
    item = clean(federation, 1, kind="penalty")[0]
    body = {**item.http_body(), column: value}
    r = client.post("/v1/records/penalty", json=body, headers=auth(item.department.dev_token))
    assert r.status_code == 403, r.text
    assert {e["rule"] for e in r.json()["errors"]} == {"authority.forbidden"}
    assert store.pending(10) == []


def app_for(federation: Federation, tmp_path: Path, *, dev: bool) -> TestClient:
    store = NodeStore(tmp_path / "outbox.db")
    metrics = NodeMetrics(store, (DISTRICT,))
    (tmp_path / "uploads").mkdir(exist_ok=True)
    app = create_app(
        federation,
        (DISTRICT,),
        store,
        Intake(store, metrics, Calendar(), default_codec()),
        metrics,
        lambda: False,
        limits=Limits(max_body_bytes=256 * 1024, max_file_bytes=2 * 1024 * 1024, max_batch_records=50),
        tmp_dir=tmp_path / "uploads",
        dev=dev,
    )
    return TestClient(app)


def test_a_token_from_sgs_tokens_new_works_and_only_its_hash_is_in_the_config(
    federation: Federation, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Issue 16: `sgs tokens new DEPT` prints the token once and writes its scrypt hash; a node without --dev
    takes that token and refuses the development one, a wrong secret, and another department's id."""
    from sgs.cli import main
    from sgs.config import load_config

    config = tmp_path / "federation.toml"
    config.write_text(federation.path.read_text(encoding="utf-8"), encoding="utf-8")
    item = clean(federation, 1)[0]
    dept = item.department
    assert main(["tokens", "new", dept.id, "--config", str(config)]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert token.startswith(f"{dept.id}.") and token not in config.read_text(encoding="utf-8")
    hashed = load_config(config)
    assert [d.id for n in hashed.nodes for d in n.departments if d.token_hash] == [dept.id]
    with app_for(hashed, tmp_path, dev=False) as client:
        post = lambda t: client.post(f"/v1/records/{item.kind}", json=item.http_body(), headers=auth(t))  # noqa: E731
        assert post(dept.dev_token).status_code == 401  # development tokens need --dev
        assert post(token[:-1] + ("A" if token[-1] != "A" else "B")).status_code == 401
        other = next(d for d in federation.node(DISTRICT).departments if d != dept)
        assert post(other.id + token[len(dept.id) :]).status_code == 401  # the secret under another id
        assert post(token).status_code == 202
        assert post(token).status_code == 200  # checked once, then remembered: same answer (unchanged)
    assert main(["tokens", "new", "999999-nobody", "--config", str(config)]) == 2


def test_a_node_without_dev_refuses_to_start_with_departments_that_have_no_hash(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from sgs.cli import main

    monkeypatch.delenv("SGS_DEV", raising=False)
    assert main(["node", "--district", DISTRICT]) == 2
    err = capsys.readouterr().err
    assert "without a token_hash" in err and "--dev" in err and len(err.strip().splitlines()) == 1


def test_a_batch_with_two_versions_of_a_record_and_repeats_is_answered_and_stored_as_one_by_one(
    node, federation
) -> None:
    """D4 inside one request (its records are written together, issue 14): version 2 after version 1 is an
    update, a repeat is unchanged with the earlier receipt, version 1 again is outdated, a changed version 2 a
    conflict; the outbox holds the two versions and the two rejections in the order of the batch."""
    client, store, metrics = node
    item, other = of_one_department(federation, 2, "penalty")
    v1 = item.http_body()
    v2 = {**v1, "version": 2, "operation": "更新", "违法事实": "更正后的违法事实"}
    batch = [v1, v2, v2, v1, {**v2, "违法事实": "又一次更正"}, other.http_body()]
    r = client.post("/v1/records/penalty", json=batch, headers=auth(item.department.dev_token))
    assert r.status_code == 207, r.text
    answer = r.json()
    assert (answer["taken"], answer["unchanged"], answer["rejected"]) == (3, 1, 2)
    results = answer["results"]
    assert [x["status"] for x in results] == ["taken", "taken", "unchanged", "rejected", "rejected", "taken"]
    assert results[2]["receipt_id"] == results[1]["receipt_id"]
    assert [x["errors"][0]["rule"] for x in results[3:5]] == ["version.outdated", "version.conflict"]
    assert len({x["receipt_id"] for x in results}) == 5
    pending = store.pending(10)
    assert [p.receipt_id for p in pending] == [results[i]["receipt_id"] for i in (0, 1, 3, 4, 5)]
    assert [p.is_rejection for p in pending] == [False, False, True, True, False]
    versions = [
        default_codec().decode(p.payload)[1]["envelope"]["version"] for p in pending if not p.is_rejection
    ]
    assert versions == [1, 2, 1]
    for x in results:
        view = store.receipt(x["receipt_id"])
        assert view is not None and view.status == ("REJECTED" if x["status"] == "rejected" else "RECEIVED")
        assert [e["status"] for e in view.history] == [view.status]
    labels = {"district": DISTRICT, "department": item.department.id, "kind": "penalty"}
    assert sample(metrics, "sgs_node_records_received_total", **labels) == 6
    assert sample(metrics, "sgs_node_records_taken_total", **labels) == 3
    assert sample(metrics, "sgs_node_records_rejected_total", rule="version.conflict", **labels) == 1


def test_a_fine_in_a_json_number_reaches_the_avro_record_exactly(node, federation) -> None:
    """A number with more digits than a float holds (99999999999.999999 is 100000000000.0 as one) is read as
    the Decimal of its text, all the way into the record sent upward."""
    client, store, _ = node
    item = clean(federation, 1, kind="penalty")[0]
    body = json.dumps({**item.http_body(), "罚款金额(万元)": "FINE"}, ensure_ascii=False)
    raw = body.replace('"FINE"', "99999999999.999999").encode()
    headers = {**auth(item.department.dev_token), "Content-Type": "application/json"}
    r = client.post("/v1/records/penalty", content=raw, headers=headers)
    assert r.status_code == 202, r.text
    (pending,) = store.pending(10)
    assert default_codec().decode(pending.payload)[1]["fine_amount"] == Decimal("99999999999.999999")
