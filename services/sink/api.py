"""The sink's HTTP side: the public query API (JSON, OpenAPI at /docs), the public disclosure page (HTML), the
operator's logged access to full records (D17), `/healthz` and `/metrics`."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import sqlalchemy as sa
import structlog
from fastapi import FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse
from fastapi.templating import Jinja2Templates
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from services.sink.metrics import SinkMetrics
from services.sink.store import PUBLIC_PAGE_MAX, SinkStore
from services.sink.store import Query as StoreQuery
from services.sink.views import KIND_LABELS, labelled_fields, public_view, summary, tier_label
from sgs.domain.workdays import CHINA

ROLLING_DAYS = 10  # D7: the rolling list shows 10 days of publications
MAX_PAGE = 10**6  # paging bound: a 20-digit page overflowed SQLite's integer (a 500, issue 17); now a 422
TEMPLATES = Path(__file__).resolve().parent / "templates"
log = structlog.get_logger("sink")


def china_today() -> date:
    """Publicity periods end on calendar days in China, whatever the server's zone (D14)."""
    return datetime.now(CHINA).date()


class RecordSummary(BaseModel):
    record_id: str
    version: int
    kind: str
    counterpart_name: str
    uscc: str | None
    decision_doc_no: str
    authority: str
    division_code: str
    decided_on: date
    publicity_end: date | None
    published_at: datetime
    under_objection: bool
    rule_set: str | None = None  # the rule set that decided publication (rules.toml); null if stored before
    tier: str | None = None  # MINOR / GENERAL / SERIOUS as that rule set gave it; null for a licence


class SearchPage(BaseModel):
    total: int
    page: int
    size: int
    items: list[RecordSummary]


class PublicRecord(RecordSummary):
    record: dict[str, Any]


class Subject(BaseModel):
    uscc: str
    name: str | None
    licenses: list[RecordSummary]
    penalties: list[RecordSummary]


class OperatorRecord(RecordSummary):
    for_publication: bool
    withdrawn: bool
    withdrawal_reason: str | None
    record: dict[str, Any]


def create_app(
    store: SinkStore,
    metrics: SinkMetrics,
    *,
    tier: str,
    sink_name: str,
    operator_tokens: dict[str, str] | None = None,
    today: Callable[[], date] = china_today,
) -> FastAPI:
    """One app per sink process. Operator access to full records exists at the provincial tier only (D17)."""
    app = FastAPI(
        title=f"{sink_name} 双公示信息查询",
        description="行政许可、行政处罚信息公示查询（公示期内、未撤下、可公示的记录）。",
        version="1",
    )
    templates = Jinja2Templates(directory=str(TEMPLATES))
    templates.env.filters["urlpart"] = lambda s: quote(str(s), safe="")
    tokens = operator_tokens or {}
    hist = metrics.query.labels(tier)

    def page_context(**extra: Any) -> dict[str, Any]:
        return {
            "sink_name": sink_name,
            "tier": tier,
            "kind_labels": KIND_LABELS,
            "tier_label": tier_label,
            **extra,
        }

    def store_query(
        name: str | None, uscc: str | None, doc_no: str | None, authority: str | None, kind: str | None,
        decided_from: date | None, decided_to: date | None, page: int, size: int,
    ) -> StoreQuery:  # fmt: skip
        return StoreQuery(
            name=name or None,
            uscc=uscc or None,
            doc_no=doc_no or None,
            authority=authority or None,
            kind=kind or None,
            decided_from=decided_from,
            decided_to=decided_to,
            page=page,
            size=size,
        )

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        with store.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return {"status": "ok", "tier": tier}

    @app.get("/metrics", include_in_schema=False)
    def prometheus() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/records", response_model=SearchPage, summary="检索公示记录")
    def search_records(
        name: Annotated[str | None, Query(description="行政相对人名称（包含）")] = None,
        uscc: Annotated[str | None, Query(description="统一社会信用代码")] = None,
        doc_no: Annotated[str | None, Query(description="决定书文号（包含）")] = None,
        authority: Annotated[str | None, Query(description="决定机关（包含）")] = None,
        kind: Annotated[
            str | None, Query(pattern="^(license|penalty)$", description="license 或 penalty")
        ] = None,
        decided_from: Annotated[date | None, Query(alias="from", description="决定日期起")] = None,
        decided_to: Annotated[date | None, Query(alias="to", description="决定日期止")] = None,
        page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
        size: Annotated[int, Query(ge=1, le=PUBLIC_PAGE_MAX)] = 20,
    ) -> dict[str, Any]:
        with hist.time():
            q = store_query(name, uscc, doc_no, authority, kind, decided_from, decided_to, page, size)
            total, rows = store.search(q, today())
            return {"total": total, "page": page, "size": size, "items": [summary(r) for r in rows]}

    @app.get(
        "/v1/records/{record_id:path}",
        response_model=PublicRecord,
        summary="一条公示记录",
        responses={404: {"description": "不存在、已撤下或已过公示期 / not published"}},
    )
    def get_record(record_id: str) -> dict[str, Any]:
        with hist.time():
            row = store.public_record(record_id, today())
            if row is None:
                raise HTTPException(404, "无此公示记录（不存在、已撤下或已过公示期）")
            return {**summary(row), "record": public_view(row.record)}

    @app.get("/v1/subjects/{uscc}", response_model=Subject, summary="主体的全部公示记录（D18）")
    def get_subject(uscc: str) -> dict[str, Any]:
        with hist.time():
            rows = store.subject(uscc, today())
            return {
                "uscc": uscc.strip().upper(),
                "name": rows[0].counterpart_name if rows else None,
                "licenses": [summary(r) for r in rows if r.kind == "license"],
                "penalties": [summary(r) for r in rows if r.kind == "penalty"],
            }

    @app.get(
        "/v1/operator/records/{record_id:path}",
        response_model=OperatorRecord,
        summary="操作员查阅完整记录",
        responses={
            401: {"description": "no or unknown operator token"},
            404: {"description": "no such record, or not the provincial tier"},
        },
    )
    def operator_record(
        record_id: str, request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> dict[str, Any]:
        if tier != "provincial":
            raise HTTPException(404, "完整记录查阅仅在省级平台提供")
        scheme, _, secret = (authorization or "").partition(" ")
        secret = secret.strip() if scheme.lower() == "bearer" else ""
        operator = next(
            (op for tok, op in tokens.items() if secret and hmac.compare_digest(tok, secret)), None
        )
        client = request.client.host if request.client else None
        if operator is None:
            # Refused attempts are on the access log like granted reads (D17, issue 16).
            store.operator_denied(record_id, client)
            metrics.operator_reads.labels(tier, "denied").inc()
            log.warning("sink.operator_denied", client=client)
            raise HTTPException(401, "需要操作员令牌", headers={"WWW-Authenticate": "Bearer"})
        row = store.operator_read(record_id, operator, client)
        metrics.operator_reads.labels(tier, "found" if row else "not_found").inc()
        log.info("sink.operator_read", operator=operator, record_id=record_id, found=row is not None)
        if row is None:
            raise HTTPException(404, "无此记录")
        return {
            **summary(row),
            "for_publication": row.for_publication,
            "withdrawn": row.withdrawn,
            "withdrawal_reason": row.withdrawal_reason,
            "record": json.loads(row.record),
        }

    # --- the public disclosure page (公示页面) ---

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def rolling_list(request: Request, page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1) -> HTMLResponse:
        with hist.time():
            since = datetime.combine(today() - timedelta(days=ROLLING_DAYS), time())
            total, rows = store.search(StoreQuery(published_since=since, page=page, size=50), today())
            return templates.TemplateResponse(
                request,
                "index.html",
                page_context(rows=rows, total=total, page=page, size=50, rolling_days=ROLLING_DAYS, q={}),
            )

    @app.get("/search", response_class=HTMLResponse, include_in_schema=False)
    def search_page(
        request: Request,
        name: str = "",
        uscc: str = "",
        doc_no: str = "",
        authority: str = "",
        kind: str = "",
        page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    ) -> HTMLResponse:
        with hist.time():
            q = store_query(
                name,
                uscc,
                doc_no,
                authority,
                kind if kind in KIND_LABELS else None,
                None,
                None,
                max(page, 1),
                20,
            )
            total, rows = store.search(q, today())
            form = {"name": name, "uscc": uscc, "doc_no": doc_no, "authority": authority, "kind": kind}
            return templates.TemplateResponse(
                request, "search.html", page_context(rows=rows, total=total, page=q.page, size=20, q=form)
            )

    @app.get("/record/{record_id:path}", response_class=HTMLResponse, include_in_schema=False)
    def record_page(request: Request, record_id: str) -> HTMLResponse:
        with hist.time():
            row = store.public_record(record_id, today())
            if row is None:
                return templates.TemplateResponse(
                    request, "missing.html", page_context(record_id=record_id, q={}), status_code=404
                )
            fields = labelled_fields(row.kind, public_view(row.record))
            return templates.TemplateResponse(
                request, "record.html", page_context(row=row, fields=fields, q={})
            )

    @app.get("/subject/{uscc}", response_class=HTMLResponse, include_in_schema=False)
    def subject_page(request: Request, uscc: str) -> HTMLResponse:
        with hist.time():
            rows = store.subject(uscc, today())
            return templates.TemplateResponse(
                request, "subject.html", page_context(uscc=uscc.strip().upper(), rows=rows, q={})
            )

    return app
