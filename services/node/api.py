"""The node's HTTP API (FastAPI; OpenAPI at /docs and /openapi.json).

Answers, per record (JSON) or per row (files):
- a single record: 202 taken, 200 unchanged (same version and content as before, the earlier receipt), 422 rejected
  with every reason, 403 another authority's record;
- a batch or a file: 202 when every record was taken (or unchanged), 422 when none was (403 when every one was
  another authority's), 207 for a mixed batch. Valid records of a mixed batch ARE taken: the answer lists, for
  each record by its index (JSON) or row number (file), its status, its receipt id and its errors, so the
  department resubmits only what failed.
Request problems: 401 no or unknown token; 403 the department's node is not served here; 413 body over the limit
(--max-body-bytes for JSON, --max-file-bytes for files) or a batch over --max-batch-records; 415 wrong content
type; 400 unreadable JSON; 422 a template file that cannot be read at all.

Decisions on a record already reported (`POST /v1/decisions`: an objection raised or its outcome, D15; an approved
credit repair, D16): 202 taken with a receipt of its own, 400 with every reason, 403 another authority's record, 404
a record this node never took, 409 a record the municipal platform has not accepted yet.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import anyio
import msgspec
import structlog
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.node.fairness import DepartmentLimits, FairShare
from services.node.intake import Intake, Outcome
from services.node.metrics import NodeMetrics
from services.node.sender import SenderState
from services.node.store import RANK, NodeStore, ReceiptView
from sgs.config import Department, Federation
from sgs.domain.lifecycle import DECISION_SCHEMA
from sgs.domain.template import schema_fields, template_fields
from sgs.domain.template_files import TemplateError
from sgs.domain.workdays import CHINA
from sgs.serialization.codec import default_codec
from sgs.tokens import TokenChecker

log = structlog.get_logger("node.api")
FILE_SUFFIX = {
    "text/csv": ".csv",
    "application/csv": ".csv",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/x-ndjson": ".jsonl",
    "application/jsonl": ".jsonl",
}
UPLOAD_SUFFIXES = (".csv", ".xlsx", ".jsonl", ".ndjson")
MAX_OFFSET = 10**9  # paging bound: a 35-digit offset overflowed SQLite's integer (a 500, issue 17); now a 422


class Kind(StrEnum):
    license = "license"
    penalty = "penalty"


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 16 * 1024 * 1024
    max_file_bytes: int = 512 * 1024 * 1024
    max_batch_records: int = 10_000


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        self.limit = limit


class BodyLimit:
    """ASGI middleware: 413 for a body over the limit, checked on Content-Length and again while it streams in
    (a chunked upload has no length), so no handler ever holds more than the limit."""

    def __init__(self, app: ASGIApp, limits: Limits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = (
            self.limits.max_file_bytes
            if scope["path"].startswith("/v1/files/")
            else self.limits.max_body_bytes
        )
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            await _too_large(limit)(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited, send)


_DECODER = msgspec.json.Decoder(float_hook=Decimal)


def parse_json(raw: bytes) -> Any:
    """A request body as `json.loads(raw, parse_float=Decimal)` reads it (numbers with a fraction or an exponent as
    exact Decimals, from their text: 罚款金额 must not pass through a float), by msgspec, which is several times
    faster. msgspec is the stricter: what it refuses (invalid JSON, but also NaN, a byte order mark, a lone
    surrogate, UTF-16) is read again by `json.loads`, so every body gets the value or the error it got before."""
    try:
        return _DECODER.decode(raw)
    except (msgspec.DecodeError, ValueError, RecursionError):
        return json.loads(raw, parse_float=Decimal)


class FastJSONResponse(JSONResponse):
    """The answer to a record submission, encoded by msgspec: the bytes Starlette's `JSONResponse` writes (compact,
    UTF-8 with no ASCII escapes) for what an `Outcome` holds (strings, integers, booleans, None, lists and dicts),
    some 30 times faster for the answer to a batch. Anything msgspec cannot encode goes to `JSONResponse`."""

    def render(self, content: Any) -> bytes:
        try:
            return msgspec.json.encode(content)
        except (TypeError, ValueError, msgspec.EncodeError):
            return super().render(content)


def _too_large(limit: int) -> JSONResponse:
    return _error(413, "too_large", f"请求体超过上限 {limit} 字节 / body over the limit of {limit} bytes")


def _error(status: int, error: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": error, "message": message, **extra}, status_code=status)


# Every endpoint a department calls answers these too (documented once, merged into each endpoint's own).
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "no or unknown department token"},
    403: {"description": "the department's node is not served here, or another authority's record"},
    429: {
        "description": "over the department's request rate or concurrent uploads: wait Retry-After seconds"
    },
}


def _status_labels() -> dict[str, str]:
    schema = default_codec().schemas["sgs.Receipt"]
    status = next(f for f in schema["fields"] if f["name"] == "status")
    return dict(status["type"]["labels"])


STATUS_LABELS = _status_labels()


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(CHINA).isoformat(timespec="milliseconds")


def _record_schema(kind: str) -> dict[str, Any]:
    """The OpenAPI schema of one record: template columns (Chinese) or Avro field names, plus envelope fields."""
    props: dict[str, Any] = {
        f.column: {
            "type": "string",
            "description": f"Avro field `{f.name}`" + ("" if f.nullable else "; required"),
        }
        for f in template_fields(kind)
    }
    props["version"] = {"type": "integer", "minimum": 1, "default": 1, "description": "版本号 (D4)"}
    props["operation"] = {"type": "string", "enum": ["CREATE", "UPDATE", "REVOKE"], "description": "操作类型"}
    props["published_at"] = {
        "type": "string",
        "format": "date-time",
        "description": "部门网站公示时间 (D6); Beijing time when no offset is given",
    }
    return {"type": "object", "properties": props, "additionalProperties": True}


def _records_openapi() -> dict[str, Any]:
    one = {"oneOf": [_record_schema("penalty"), _record_schema("license")]}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"oneOf": [one, {"type": "array", "items": one}]}}},
        }
    }


def _decision_openapi() -> dict[str, Any]:
    props = {
        f.column: {
            "type": "string",
            "description": f"Avro field `{f.name}`" + ("" if f.nullable else "; required"),
        }
        for f in schema_fields(DECISION_SCHEMA)
    }
    schema = {"type": "object", "properties": props}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _files_openapi() -> dict[str, Any]:
    binary: dict[str, Any] = {"type": "string", "format": "binary"}
    content: dict[str, Any] = {ctype: {"schema": binary} for ctype in FILE_SUFFIX}
    content["multipart/form-data"] = {
        "schema": {"type": "object", "properties": {"file": binary}, "required": ["file"]}
    }
    return {"requestBody": {"required": True, "content": content}}


def receipt_json(view: ReceiptView, report_working_days: int) -> dict[str, Any]:
    days = view.portal_to_submit_working_days
    return {
        "receipt_id": view.receipt_id,
        "record_id": view.record_id,
        "version": view.version,
        "kind": view.kind,
        "district": view.node,
        "department": view.department,
        "status": view.status,
        "status_label": STATUS_LABELS.get(view.status, view.status),
        "received_at": _iso(view.created_at),
        "updated_at": _iso(view.updated_at),
        "portal_to_submit_working_days": days,
        "reported_within_d6": None if days is None else days <= report_working_days,
        "calendar_provisional": view.calendar_provisional,
        "reasons": view.reasons,
        "history": [
            {
                "status": e["status"],
                "status_label": STATUS_LABELS.get(e["status"], e["status"]),
                "at": _iso(e["at"]),
                "detail": e["detail"],
                "reasons": e["reasons"],
            }
            for e in view.history
        ],
    }


def health(
    nodes: tuple[str, ...],
    sender: SenderState,
    outbox: dict[str, tuple[int, int | None]],
    parked: dict[str, int],
) -> dict[str, Any]:
    """/healthz: `status` ok or degraded, with `problems` naming the cause an operator should look at: the broker
    cannot be reached or refuses to acknowledge (records wait safely in the outbox), or messages are parked."""
    problems = []
    if not sender.connected and sender.last_error is not None:
        since = _iso(sender.last_error_at or 0)
        problems.append(f"broker: records wait in the outbox; last error at {since}: {sender.last_error}")
    parked_total = sum(parked.values())
    if parked_total:
        problems.append(
            f"parked: {parked_total} message(s) the broker can never take; see `sgs node parked list`"
        )
    oldest = min((at for _, at in outbox.values() if at is not None), default=None)
    return {
        "status": "degraded" if problems else "ok",
        "problems": problems,
        "nodes": list(nodes),
        "broker_connected": sender.connected,
        "last_sent_at": None if sender.last_sent_at is None else _iso(sender.last_sent_at),
        "outbox_depth": sum(count for count, _ in outbox.values()),
        "outbox_oldest_at": None if oldest is None else _iso(oldest),
        "parked": parked_total,
    }


def _summary_status(counts: dict[str, int]) -> int:
    """202 all taken (or unchanged), 422 none, 403 every one another authority's, 207 a mix."""
    ok = counts["taken"] + counts["unchanged"]
    total = sum(counts.values())
    if ok == total:
        return 202
    if ok:
        return 207
    return 403 if counts["forbidden"] == total else 422


def _single_status(outcome: Outcome) -> int:
    return {"taken": 202, "unchanged": 200, "rejected": 422, "forbidden": 403}[outcome.status]


async def current_department(request: Request) -> Department:
    """Bearer token -> department (401); the department's node must be served by this process (403); within its
    request rate (429 with Retry-After, services/node/fairness.py)."""
    state = request.app.state
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    dept_id = state.tokens.department(token.strip()) if scheme.lower() == "bearer" else None
    dept = state.departments.get(dept_id)
    if dept is None:
        state.metrics.unauthorized.inc()
        raise HTTPException(
            401, "需要有效的部门令牌 / a valid department token is required", {"WWW-Authenticate": "Bearer"}
        )
    if dept.node not in state.served:
        state.metrics.forbidden.labels(dept.node, dept.id).inc()
        raise HTTPException(403, f"本节点不受理 {dept.node} 的报送 / node {dept.node} is not served here")
    wait = state.department_limits.admit(dept.id)
    if wait is not None:
        raise _throttled(state.metrics, dept, "rate", wait)
    return dept


def _throttled(metrics: NodeMetrics, dept: Department, reason: str, wait: int) -> HTTPException:
    metrics.throttled.labels(dept.node, dept.id, reason).inc()
    what = (
        "请求过于频繁 / too many requests"
        if reason == "rate"
        else "同时上传的文件过多 / too many uploads at once"
    )
    return HTTPException(429, f"{what}: retry after {wait} s", {"Retry-After": str(wait)})


Dept = Annotated[Department, Depends(current_department)]


def create_app(
    federation: Federation,
    nodes: tuple[str, ...],
    store: NodeStore,
    intake: Intake,
    metrics: NodeMetrics,
    sender_state: Callable[[], SenderState],
    *,
    limits: Limits,
    tmp_dir: Path,
    share: FairShare | None = None,
    dev: bool = False,
) -> FastAPI:
    """`dev`: the development tokens of the shipped config are accepted (`sgs up`, `--dev`; issue 16)."""
    report_days = federation.timeliness.report_working_days
    app = FastAPI(
        title="双公示 district node (区县信用子平台)",
        description=__doc__,
        version="1",
    )
    app.add_middleware(BodyLimit, limits=limits)
    app.state.federation = federation
    app.state.served = frozenset(nodes)
    app.state.tokens = TokenChecker(federation.token_hashes(), dev=dev)
    app.state.departments = {d.id: d for n in federation.nodes for d in n.departments}
    app.state.metrics = metrics
    app.state.department_limits = department_limits = DepartmentLimits(share or FairShare())
    # /healthz and /metrics have threads of their own, so they answer while every intake thread is busy
    probe_threads: list[anyio.CapacityLimiter] = []

    async def probe(fn: Callable[[], Any]) -> Any:
        if not probe_threads:
            probe_threads.append(anyio.CapacityLimiter(2))
        return await anyio.to_thread.run_sync(fn, limiter=probe_threads[0])

    @app.exception_handler(BodyTooLarge)
    async def body_too_large(_: Request, exc: BodyTooLarge) -> JSONResponse:
        return _too_large(exc.limit)

    def media_type(request: Request) -> str:
        return request.headers.get("content-type", "").split(";")[0].strip().lower()

    async def read_json(request: Request) -> Any:
        """The JSON body, or the error answer: 415 not application/json, 400 unreadable (with line and column)."""
        if media_type(request) != "application/json":
            return _error(415, "content_type", "请以 application/json 提交 / send application/json")
        raw = await request.body()
        try:  # in a worker thread: a large batch must not hold up the event loop (and /healthz)
            return await run_in_threadpool(parse_json, raw)
        except (ValueError, RecursionError) as exc:
            where = {"line": exc.lineno, "column": exc.colno} if isinstance(exc, json.JSONDecodeError) else {}
            return _error(400, "bad_json", f"请求体不是有效的 JSON / body is not valid JSON: {exc}", **where)

    @app.post(
        "/v1/records/{kind}",
        summary="Submit one record (JSON object) or a batch (JSON array)",
        openapi_extra=_records_openapi(),
        responses={
            **AUTH_RESPONSES,
            200: {"description": "unchanged: the same version was taken before"},
            207: {"description": "a batch, partly taken"},
            400: {"description": "unreadable JSON"},
            413: {"description": "body or batch too large"},
            415: {"description": "not application/json"},
        },
        status_code=202,
    )
    async def submit_records(kind: Kind, request: Request, dept: Dept) -> JSONResponse:
        data = await read_json(request)
        if isinstance(data, JSONResponse):
            return data
        if isinstance(data, list):
            if not data:
                return _error(422, "empty_batch", "批量记录为空 / the batch is empty")
            if len(data) > limits.max_batch_records:
                return _error(
                    413,
                    "batch_too_large",
                    f"一批最多 {limits.max_batch_records} 条 / at most {limits.max_batch_records} records per batch",
                )
            outcomes = await run_in_threadpool(intake.submit_records, dept, kind.value, data)
            counts = {s: 0 for s in ("taken", "unchanged", "rejected", "forbidden")}
            results = []
            for index, outcome in enumerate(outcomes):
                counts[outcome.status] += 1
                results.append({"index": index, **outcome.as_json()})
            return FastJSONResponse({**counts, "results": results}, status_code=_summary_status(counts))
        if not isinstance(data, dict):
            return _error(
                422,
                "not_a_record",
                "请求体应为一条记录（对象）或一批记录（数组）/ expected an object or an array",
            )
        (outcome,) = await run_in_threadpool(intake.submit_records, dept, kind.value, [data])
        return FastJSONResponse(outcome.as_json(), status_code=_single_status(outcome))

    @app.post(
        "/v1/decisions",
        summary="A decision on one of the department's records: objection raised or its outcome (D15), credit repair (D16)",
        openapi_extra=_decision_openapi(),
        responses={
            **AUTH_RESPONSES,
            400: {"description": "unreadable JSON, or a decision with issues (every reason)"},
            404: {"description": "no version of the record was taken by this node"},
            409: {"description": "the municipal platform has not accepted the record yet"},
            415: {"description": "not application/json"},
        },
        status_code=202,
    )
    async def submit_decision(request: Request, dept: Dept) -> JSONResponse:
        data = await read_json(request)
        if isinstance(data, JSONResponse):
            return data
        outcome = await run_in_threadpool(intake.submit_decision, dept, data)
        if outcome.status == "rejected":
            return _error(400, "bad_decision", "决定有误 / the decision has issues", reasons=outcome.errors)
        if outcome.status == "forbidden":
            return _error(
                403,
                "forbidden",
                "只能报送本机关的记录和决定 / not this authority's record or decision",
                reasons=outcome.errors,
            )
        if outcome.status == "unknown":
            return _error(404, "unknown_record", "本节点没有报送过此记录 / no such record was taken here")
        if outcome.status == "not_accepted":
            return _error(
                409,
                "not_accepted",
                "市平台尚未受理此记录，请受理后再报送决定 / the municipal platform has not accepted the record yet",
            )
        return JSONResponse(outcome.as_json(), status_code=202)

    @app.post(
        "/v1/files/{kind}",
        summary="Upload a template file (CSV UTF-8, XLSX or JSON lines), raw or as multipart field `file`",
        openapi_extra=_files_openapi(),
        responses={
            **AUTH_RESPONSES,
            207: {"description": "partly taken"},
            400: {"description": "a malformed multipart body"},
            413: {"description": "file too large"},
            415: {"description": "unknown file type"},
            422: {"description": "a file that cannot be read as a template (`file_error`), or no row taken"},
        },
        status_code=202,
    )
    async def submit_file(kind: Kind, request: Request, dept: Dept) -> Response:
        if not department_limits.start_upload(dept.id):
            raise _throttled(metrics, dept, "uploads", 5)
        try:
            return await take_file(kind, request, dept)
        finally:
            department_limits.end_upload(dept.id)

    async def take_file(kind: Kind, request: Request, dept: Department) -> Response:
        ctype = media_type(request)
        if ctype == "multipart/form-data":
            path = await _spool_multipart(request, tmp_dir)
        elif ctype in FILE_SUFFIX:
            path = await _spool(request.stream(), tmp_dir, FILE_SUFFIX[ctype])
        else:
            path = None
        if path is None:
            return _error(
                415,
                "content_type",
                "请上传 CSV（text/csv）、XLSX 或 JSON lines（application/x-ndjson）文件 / unsupported file type",
                accepted=[*FILE_SUFFIX, "multipart/form-data"],
            )
        results = tempfile.NamedTemporaryFile("w+", dir=tmp_dir, suffix=".jsonl", delete=False)  # noqa: SIM115
        try:
            counts, file_error = await _until_disconnected(
                request,
                lambda gone: _take_file(intake, dept, kind.value, path, results, gone),
            )
        finally:
            path.unlink(missing_ok=True)
        results.flush()
        status = _summary_status(counts) if sum(counts.values()) else 422
        if file_error and status == 202:
            status = 207
        head = {**counts, "file_error": file_error}
        return StreamingResponse(
            _stream_results(head, results.name),
            status_code=status,
            media_type="application/json",
            background=BackgroundTask(_close_and_remove, results),
        )

    @app.get(
        "/v1/receipts/{receipt_id}",
        summary="One receipt: the record's status and its history",
        responses={**AUTH_RESPONSES, 404: {"description": "no such receipt of this department"}},
    )
    async def get_receipt(receipt_id: str, dept: Dept) -> JSONResponse:
        view = await run_in_threadpool(store.receipt, receipt_id)
        if view is None or view.department != dept.id:
            return _error(404, "not_found", "没有此回执 / no such receipt")
        return JSONResponse(receipt_json(view, report_days))

    @app.get(
        "/v1/receipts",
        summary="The department's receipts, newest first",
        responses={**AUTH_RESPONSES, 422: {"description": "a query parameter out of range"}},
    )
    async def list_receipts(
        dept: Dept,
        department: str | None = None,
        status: Annotated[str | None, Query(description=f"one of {', '.join(RANK)}")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ) -> JSONResponse:
        if department not in (None, dept.id):
            return _error(403, "forbidden", "只能查询本部门的回执 / a department reads only its own receipts")
        if status is not None and status.upper() not in RANK:
            return _error(422, "status", f"status 应为 {', '.join(RANK)}")
        total, views = await run_in_threadpool(
            store.receipts, dept.id, status.upper() if status else None, limit, offset
        )
        return JSONResponse(
            {
                "total": total,
                "limit": limit,
                "offset": offset,
                "receipts": [receipt_json(v, report_days) for v in views],
            }
        )

    @app.get(
        "/healthz",
        summary="Liveness (always 200 while the process serves: it takes records even while the broker is away), "
        "and what is wrong on the way upward",
    )
    async def healthz() -> dict[str, Any]:
        stats, parked = await probe(lambda: (store.outbox_stats(), store.parked_counts()))
        return health(nodes, sender_state(), stats, parked)

    @app.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "the Prometheus text format"}},
    )
    async def prometheus() -> Response:
        body = await probe(lambda: generate_latest(metrics.registry))
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return app


async def _spool(chunks: AsyncIterator[bytes], tmp_dir: Path, suffix: str) -> Path:
    """Stream an upload to a temp file (the body limit is enforced by BodyLimit as it streams)."""
    fd, name = tempfile.mkstemp(dir=tmp_dir, suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in chunks:
                out.write(chunk)
    except BaseException:
        os.unlink(name)
        raise
    return Path(name)


async def _spool_multipart(request: Request, tmp_dir: Path) -> Path | None:
    """The `file` part of a multipart upload, as a temp file whose suffix tells `read_rows` the format."""
    async with request.form(max_files=1, max_fields=5) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            return None
        suffix = Path(upload.filename or "").suffix.lower()
        if suffix not in UPLOAD_SUFFIXES:
            suffix = FILE_SUFFIX.get((upload.content_type or "").split(";")[0].strip().lower(), "")
        if not suffix:
            return None

        async def chunks() -> AsyncIterator[bytes]:
            while chunk := await upload.read(1 << 20):
                yield chunk

        return await _spool(chunks(), tmp_dir, suffix)


async def _until_disconnected(request: Request, work: Callable[[threading.Event], Any]) -> Any:
    """Run `work(gone)` in a worker thread; `gone` is set when the client disconnects, so a long file stops being
    parsed for nobody (the rows taken before stay taken: their receipts are in GET /v1/receipts)."""
    gone = threading.Event()

    async def watch() -> None:
        while not await request.is_disconnected():
            await asyncio.sleep(0.5)
        gone.set()

    watcher = asyncio.create_task(watch())
    try:
        return await run_in_threadpool(work, gone)
    finally:
        watcher.cancel()


def _take_file(
    intake: Intake, dept: Department, kind: str, path: Path, results: Any, gone: threading.Event
) -> tuple[dict[str, int], str | None]:
    """Run a file through the intake, writing one JSON line per row to `results` (bounded memory); stop when the
    client is `gone`."""
    counts = {s: 0 for s in ("taken", "unchanged", "rejected", "forbidden")}
    try:
        for row, outcome in intake.submit_file(dept, kind, path):
            if gone.is_set():
                log.warning("node.upload_abandoned", department=dept.id, row=row, **counts)
                break
            counts[outcome.status] += 1
            results.write(json.dumps({"row": row, **outcome.as_json()}, ensure_ascii=False))
            results.write("\n")
    except TemplateError as exc:  # rows before the problem are taken and listed
        return counts, str(exc).replace(str(path), "(upload)")
    return counts, None


def _stream_results(head: dict[str, Any], results_path: str) -> Iterator[bytes]:
    yield json.dumps(head, ensure_ascii=False)[:-1].encode() + b', "results": ['
    with open(results_path, encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            yield (b"," if i else b"") + line.rstrip("\n").encode()
    yield b"]}"


def _close_and_remove(results: Any) -> None:
    results.close()
    Path(results.name).unlink(missing_ok=True)
