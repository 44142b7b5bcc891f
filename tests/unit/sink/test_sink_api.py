"""The sink's query API and public disclosure page, over a real SQLite store (no broker)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from services.sink.api import create_app
from services.sink.consumer import ReceiptBuilder
from services.sink.metrics import SinkMetrics
from services.sink.settings import parse_operator_tokens
from services.sink.store import SinkStore
from sgs.cli.options import SettingsError
from tests.support.sink_records import decoded, license_record, penalty_record, person, unique_tag, withdrawal

TOKEN = "审核员甲=op-secret-123"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SinkStore]:
    s = SinkStore(f"sqlite:///{tmp_path}/sink.db")
    yield s
    s.close()


def client_for(store: SinkStore, tier: str = "provincial") -> TestClient:
    app = create_app(
        store,
        SinkMetrics(tier),
        tier=tier,
        sink_name="省公共信用信息中心",
        operator_tokens=parse_operator_tokens(TOKEN),
    )
    return TestClient(app)


@pytest.fixture
def client(store: SinkStore) -> TestClient:
    return client_for(store)


def put(store: SinkStore, *messages: dict[str, Any]) -> None:
    store.apply([decoded(m) for m in messages], {}, ReceiptBuilder("provincial"))


def rid(message: dict[str, Any]) -> str:
    return str(message["envelope"]["record_id"])


def test_search_by_name_finds_a_published_record_with_paging(store: SinkStore, client: TestClient) -> None:
    tag = unique_tag()
    put(store, *(license_record(f"许〔{tag}〕{i}号", f"上海{tag}商贸有限公司") for i in range(3)))
    body = client.get("/v1/records", params={"name": tag, "size": 2, "page": 2}).json()
    assert body["total"] == 3 and body["page"] == 2 and len(body["items"]) == 1
    assert body["items"][0]["counterpart_name"] == f"上海{tag}商贸有限公司"


def test_search_rejects_an_unknown_kind(client: TestClient) -> None:
    assert client.get("/v1/records", params={"kind": "lisence"}).status_code == 422


def test_date_range_uses_from_and_to(store: SinkStore, client: TestClient) -> None:
    tag = unique_tag()
    put(store, penalty_record(f"处〔{tag}〕1号", f"{tag}公司"))
    decided = (date.today() - timedelta(days=3)).isoformat()
    hit = client.get("/v1/records", params={"name": tag, "from": decided, "to": decided}).json()
    miss = client.get("/v1/records", params={"name": tag, "from": date.today().isoformat()}).json()
    assert hit["total"] == 1 and miss["total"] == 0


def test_a_public_record_keeps_masked_ids_masked_and_hides_the_legal_representative_id(
    store: SinkStore, client: TestClient
) -> None:
    tag = unique_tag()
    company = penalty_record(f"处〔{tag}〕1号", f"{tag}公司")
    individual = penalty_record(f"处〔{tag}〕2号", "李四", counterpart=person())
    individual["counterpart"]["id_no"] = "310104199001015678"  # arrived unmasked by mistake
    put(store, company, individual)
    cp = client.get(f"/v1/records/{rid(company)}").json()["record"]["counterpart"]
    assert "legal_rep_id_no" not in cp and "legal_rep_id_type" not in cp and cp["legal_rep"] == "张三"
    person_cp = client.get(f"/v1/records/{rid(individual)}").json()["record"]["counterpart"]
    assert person_cp["id_no"] == "310104********5678"


def test_a_withdrawn_record_is_gone_from_the_api_and_the_page(store: SinkStore, client: TestClient) -> None:
    tag = unique_tag()
    rec = license_record(f"许〔{tag}〕1号", f"{tag}公司", uscc="91310101MA1FPW0011")
    put(store, rec)
    assert client.get(f"/v1/records/{rid(rec)}").status_code == 200
    assert f"{tag}公司" in client.get("/").text
    put(store, withdrawal(rec))
    assert client.get(f"/v1/records/{rid(rec)}").status_code == 404
    assert client.get("/v1/records", params={"name": tag}).json()["total"] == 0
    assert client.get("/v1/subjects/91310101MA1FPW0011").json()["licenses"] == []
    assert f"{tag}公司" not in client.get("/").text
    assert f"{tag}公司" not in client.get("/search", params={"name": tag}).text
    assert client.get(f"/record/{quote(rid(rec), safe='')}").status_code == 404


def test_an_expired_record_is_gone_from_the_api_and_the_page(store: SinkStore, client: TestClient) -> None:
    tag = unique_tag()
    rec = penalty_record(f"处〔{tag}〕1号", f"{tag}公司", publicity_end=date.today() - timedelta(days=1))
    put(store, rec)
    assert client.get(f"/v1/records/{rid(rec)}").status_code == 404
    assert f"{tag}公司" not in client.get("/search", params={"name": tag}).text


def test_the_subject_view_gathers_licences_and_penalties_of_one_counterpart(
    store: SinkStore, client: TestClient
) -> None:
    """D18: all records of one subject under that subject."""
    tag = unique_tag()
    uscc = "91310101MA1FPW0012"
    put(store, license_record(f"许〔{tag}〕1号", f"{tag}公司", uscc=uscc))
    put(store, penalty_record(f"处〔{tag}〕2号", f"{tag}公司", uscc=uscc))
    body = client.get(f"/v1/subjects/{uscc.lower()}").json()
    assert body["uscc"] == uscc and body["name"] == f"{tag}公司"
    assert len(body["licenses"]) == 1 and len(body["penalties"]) == 1
    assert f"{tag}公司" in client.get(f"/subject/{uscc}").text


def test_not_for_publication_records_reach_operators_only_and_every_read_is_logged(
    store: SinkStore, client: TestClient
) -> None:
    """D11, D17: held at the provincial tier, never in a public answer; operator reads are logged."""
    tag = unique_tag()
    rec = penalty_record(f"处〔{tag}〕1号", f"{tag}公司", procedure="SIMPLE", for_publication=False)
    put(store, rec)
    assert client.get(f"/v1/records/{rid(rec)}").status_code == 404
    assert client.get("/v1/records", params={"name": tag}).json()["total"] == 0
    url = f"/v1/operator/records/{rid(rec)}"
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"Authorization": "Bearer wrong-secret"}).status_code == 401
    assert client.get(url, headers={"Authorization": "op-secret-123"}).status_code == 401  # Bearer, issue 16
    full = client.get(url, headers={"Authorization": "bearer op-secret-123"}).json()
    assert full["for_publication"] is False
    assert full["record"]["counterpart"]["legal_rep_id_no"] == "310101********1234"
    # Refused attempts are on the access log like the granted read (issue 16).
    assert [(e.operator, e.record_id, e.purpose) for e in store.access_entries()] == [
        ("", rid(rec), "operator.denied"),
        ("", rid(rec), "operator.denied"),
        ("", rid(rec), "operator.denied"),
        ("审核员甲", rid(rec), "operator.record"),
    ]


def test_the_national_tier_offers_no_operator_access(store: SinkStore) -> None:
    national = client_for(store, "national")
    resp = national.get("/v1/operator/records/x", headers={"Authorization": "Bearer op-secret-123"})
    assert resp.status_code == 404
    assert store.access_entries() == []


def test_the_record_page_shows_template_columns_in_chinese(store: SinkStore, client: TestClient) -> None:
    tag = unique_tag()
    rec = penalty_record(f"处〔{tag}〕1号", f"{tag}公司")
    put(store, rec)
    page = client.get(f"/record/{quote(rid(rec), safe='')}")
    assert page.status_code == 200
    html = page.text
    assert '<meta name="viewport"' in html
    for text in ("行政处罚决定书文号", f"处〔{tag}〕1号", "处罚类别", "警告；罚款", "程序类型", "一般程序"):
        assert text in html
    assert "310101********1234" not in html  # the legal representative's ID is not public


def test_the_page_the_list_and_the_api_show_the_tier_and_rule_set_that_decided_publication(
    store: SinkStore, client: TestClient
) -> None:
    """Issue 15: the rule book's tier (here 严重 under 令第36号) and set are stored with the record and shown."""
    tag = unique_tag()
    rec = penalty_record(f"处〔{tag}〕1号", f"{tag}公司", rule_set="ndrc-order-36", tier="SERIOUS")
    put(store, rec)
    page = client.get(f"/record/{quote(rid(rec), safe='')}").text
    assert "失信程度（适用规则认定）" in page and ">严重<" in page and "ndrc-order-36" in page
    assert "严重失信" in client.get("/").text  # the rolling list tags it
    found = client.get("/v1/records", params={"name": f"{tag}公司"}).json()["items"]
    assert [(i["rule_set"], i["tier"]) for i in found] == [("ndrc-order-36", "SERIOUS")]


def test_the_rolling_list_shows_only_the_last_ten_days_of_publications(
    store: SinkStore, client: TestClient
) -> None:
    """D7: rolling for 10 days after publication, then searchable only."""
    tag = unique_tag()
    recent = license_record(f"许〔{tag}〕1号", f"{tag}近期公司")
    older = license_record(
        f"许〔{tag}〕2号", f"{tag}早期公司", accepted_at=datetime.now(UTC) - timedelta(days=12)
    )
    put(store, recent, older)
    home = client.get("/").text
    assert f"{tag}近期公司" in home and f"{tag}早期公司" not in home
    assert f"{tag}早期公司" in client.get("/search", params={"name": tag}).text


def test_openapi_health_and_metrics_are_served(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/records", "/v1/records/{record_id}", "/v1/subjects/{uscc}"} <= set(paths)
    assert client.get("/healthz").json()["status"] == "ok"
    client.get("/v1/records")
    metrics = client.get("/metrics").text
    assert 'sgs_sink_query_duration_seconds_count{tier="provincial"} 1.0' in metrics
    assert 'sgs_sink_records_held{kind="penalty",tier="provincial"}' in metrics


def test_operator_tokens_need_a_real_secret() -> None:
    assert parse_operator_tokens("张=abcdefgh,李=ijklmnop") == {"abcdefgh": "张", "ijklmnop": "李"}
    assert parse_operator_tokens("abcdefgh") == {"abcdefgh": "operator"}
    with pytest.raises(SettingsError, match="--operator-token"):
        parse_operator_tokens("张=short")


@pytest.mark.parametrize("path", ["/v1/records", "/search", "/"])
def test_a_20_digit_page_is_a_422_with_its_reason_not_a_500(client: TestClient, path: str) -> None:
    """Issue 17: SQLite overflowed on the offset of page 10^19 (OverflowError, a 500)."""
    r = client.get(path, params={"page": "1" + "0" * 19})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["query", "page"]
    assert client.get(path, params={"page": 1_000_000}).status_code == 200
