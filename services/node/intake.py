"""Taking records from departments: parse and check each record (D12), refuse another authority's records (D10),
apply the resubmission rules (D4), measure D6, and commit what is taken to the outbox before anyone is told so.

A department sends the template fields (Chinese column names or Avro field names, see `sgs.domain.records`) plus, for
JSON, optional envelope fields: `version` (default 1), `operation` (CREATE/UPDATE/REVOKE or 新增/更新/撤销; default
CREATE for version 1, else UPDATE) and `published_at` (its portal publication time, ISO 8601; without an offset it
is Beijing time). They may also come nested as `"envelope": {...}`. The node fills in the rest of `sgs.Envelope`.

Every record gets one of four outcomes:
- `taken`: durably in the outbox, with a new receipt (RECEIVED);
- `unchanged`: the same version with the same content was taken before — the earlier receipt, nothing new (D4);
- `rejected`: every reason, stored as a REJECTED receipt the department can look up (D12, D4), and sent upward as
  an `sgs.Rejection` (stage `node`) through the outbox, so the monthly bulletin counts it (D8). Its `original` is
  the record as the department sent it, as UTF-8 JSON: a JSON record re-serialised (numbers with decimals as
  strings, which the node reads back the same), a CSV/XLSX row as {column: cell} (dates ISO), a JSON lines row that
  is not an object as the line quoted in its reason;
- `forbidden`: the record names another deciding authority (许可机关/处罚机关统一社会信用代码); nothing is stored.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import islice
from pathlib import Path
from typing import Any

import msgspec

from services.node.metrics import NodeMetrics
from services.node.store import Candidate, NodeStore, now_ms
from sgs.config import Department
from sgs.domain.issues import ROW, Issue, bounded, quote
from sgs.domain.kinds import SCHEMA_NAME, content_hash, record_id
from sgs.domain.lifecycle import DECISION_SCHEMA, parse_decision
from sgs.domain.records import combine, parse_envelope, parse_row, split_envelope, to_json
from sgs.domain.rulebook import RuleBook
from sgs.domain.template_files import read_raw_rows
from sgs.domain.validation import authority_issues, validate
from sgs.domain.workdays import CHINA, Calendar, china_date
from sgs.kafka.topics import MAX_MESSAGE_BYTES
from sgs.serialization.codec import Codec, SerializationError

# What the node takes, bounded well below a message (MAX_MESSAGE_BYTES, the broker's and the producer's limit), so
# that nothing it takes can be refused by the broker and block the outbox: a record's Avro bytes (rule
# `record.too_large`), and the original a rejection carries upward (cut down beyond this, see `original_bytes`).
MAX_RECORD_BYTES = MAX_MESSAGE_BYTES // 2
MAX_ORIGINAL_BYTES = MAX_MESSAGE_BYTES // 4
FILE_CHUNK_ROWS = 500  # rows per transaction while taking a file: bounded memory, few fsyncs


@dataclass
class Outcome:
    """What happened to one record of a request; `as_json` is what the department reads."""

    status: str  # taken | unchanged | rejected | forbidden; for a decision also unknown | not_accepted
    receipt_id: str | None = None
    record_id: str | None = None
    version: int | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    portal_to_submit_working_days: int | None = None
    calendar_provisional: bool = False

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status}
        for key in ("receipt_id", "record_id", "version", "portal_to_submit_working_days"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.calendar_provisional:
            out["calendar_provisional"] = True
        if self.errors:
            out["errors"] = self.errors
        return out


@dataclass
class _Prepared:
    """A record after the checks that need no store: a candidate to admit, or a final outcome."""

    outcome: Outcome
    candidate: Candidate | None = None
    reasons: list[dict[str, Any]] = field(default_factory=list)  # for a rejection to store
    source: Any = None  # what the department sent for this record, for a rejection sent upward (`original`)

    @property
    def original(self) -> bytes:
        """`source` as a rejection carries it: made only for a record refused, not for every record."""
        return original_bytes(self.source)


# uuid4's bits: version 4 and the RFC 4122 variant
_V4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_V4_SET = (0x4000 << 64) | (0x8000 << 48)


def random_ids(count: int) -> Iterator[str]:
    """`count` random ids of the form `uuid.uuid4().hex` (receipt and trace ids), from one `os.urandom` call.
    uuid4 calls it once per id, and each call lets go of the GIL: under load the intake thread then waited for
    the GIL again per record (a fifth of the node's samples, issue 14)."""
    raw = os.urandom(16 * count)
    for start in range(0, 16 * count, 16):
        yield f"{int.from_bytes(raw[start : start + 16], 'big') & _V4_CLEAR | _V4_SET:032x}"


def original_bytes(row: Any) -> bytes:
    """A department's record (a JSON value, or a file row as {column: cell}) as UTF-8 JSON, for `sgs.Rejection`.
    Beyond MAX_ORIGINAL_BYTES it becomes {"truncated_from_bytes": n, "head": the text's beginning}, so that a
    rejection always fits in a message."""
    data = json.dumps(to_json(row), ensure_ascii=False, default=str).encode()
    if len(data) <= MAX_ORIGINAL_BYTES:
        return data
    head = data[: MAX_ORIGINAL_BYTES // 2].decode(errors="ignore")
    return json.dumps({"truncated_from_bytes": len(data), "head": head}, ensure_ascii=False).encode()


_CONTENT = msgspec.json.Encoder(order="sorted")


def content_bytes(kind: str, body: dict[str, Any], operation: str, published_at: datetime | None) -> bytes:
    """What D4 compares between two submissions of one version: the department's content, not the envelope the
    node adds (receipt id, times). Canonical JSON, so key order and number formatting do not matter.

    The bytes of `json.dumps(content, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))`,
    which the hashes already stored were made of, written by msgspec some seven times faster (issue 14). They are
    the same for what a validated body holds (text, Decimals, dates, lists and dicts of them; msgspec writes a
    Decimal and a date as their str() too); `published_at`, a datetime msgspec would write in ISO form with a
    `T`, goes in as its str(). Anything msgspec refuses goes to `json.dumps`."""
    content = {
        "kind": kind,
        "body": body,
        "operation": operation,
        "published_at": None if published_at is None else str(published_at),
    }
    try:
        return _CONTENT.encode(content)
    except (TypeError, ValueError, msgspec.EncodeError):
        return json.dumps(
            content, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":")
        ).encode()


class Intake:
    """Turns department submissions into outcomes; shared by the JSON and the file endpoints."""

    def __init__(
        self,
        store: NodeStore,
        metrics: NodeMetrics,
        calendar: Calendar,
        codec: Codec,
        on_taken: Callable[[], None] = lambda: None,
        max_record_bytes: int = MAX_RECORD_BYTES,
        rules: RuleBook | None = None,
    ) -> None:
        self.max_record_bytes = max_record_bytes
        self.rules = rules
        self.store = store
        self.metrics = metrics
        self.calendar = calendar
        self.codec = codec
        self.on_taken = on_taken

    def submit_records(self, department: Department, kind: str, rows: list[Any]) -> list[Outcome]:
        """A JSON record or batch: checked one by one, then committed in one transaction."""
        now = datetime.now(UTC)
        ids = random_ids(2 * len(rows))
        prepared = []
        for row in rows:
            if isinstance(row, Mapping):
                rest, env = split_envelope(row)
                body, issues = parse_row(kind, rest)
            else:
                env, (body, issues) = {}, parse_row(kind, row)
            p = self._prepare(department, kind, body, issues, env, now, ids)
            p.source = row
            prepared.append(p)
        return self._commit(department, kind, prepared)

    def submit_file(self, department: Department, kind: str, path: Path) -> Iterator[tuple[int, Outcome]]:
        """A template file, row by row, committed every FILE_CHUNK_ROWS rows: (row number, outcome).

        A row may carry the optional envelope columns 版本号, 操作类型 and 公示时间
        (`sgs.domain.records.ENVELOPE_COLUMNS`); without them it is version 1, 新增, with no publication time.
        Raises `sgs.domain.template_files.TemplateError` for an unreadable file."""
        rows = read_raw_rows(path, kind)
        while chunk := list(islice(rows, FILE_CHUNK_ROWS)):
            now = datetime.now(UTC)
            ids = random_ids(2 * len(chunk))
            prepared = [
                self._prepare_row(department, kind, row, issues, now, ids) for _, row, issues in chunk
            ]
            outcomes = self._commit(department, kind, prepared)
            yield from zip((number for number, _, _ in chunk), outcomes, strict=True)

    def _prepare_row(
        self,
        department: Department,
        kind: str,
        row: dict[str, Any] | None,
        issues: list[Issue],
        now: datetime,
        ids: Iterator[str],
    ) -> _Prepared:
        """One file row, parsed here rather than by `read_rows` so that a refused row keeps its cells."""
        if row is None:  # a JSON lines row that is not an object: its reason quotes the line
            p = self._prepare(department, kind, None, issues, {}, now, ids)
            p.source = issues[0].value if issues else None
            return p
        rest, env = split_envelope(row)
        body, parse_issues = parse_row(kind, rest)
        p = self._prepare(department, kind, body, issues + parse_issues, env, now, ids)
        p.source = row
        return p

    def _prepare(
        self,
        department: Department,
        kind: str,
        body: dict[str, Any] | None,
        issues: list[Issue],
        env: Mapping[str, Any],
        now: datetime,
        ids: Iterator[str],
    ) -> _Prepared:
        """`ids`: two random ids per record (`random_ids`), for its receipt and its trace."""
        receipt_id = next(ids)
        authority = body.get("authority_uscc") if body else None
        foreign = authority_issues(body, department.name, department.uscc) if body else []
        if foreign:
            return _Prepared(Outcome("forbidden", errors=[i.as_reason() for i in foreign]))
        if body is not None and isinstance(authority, str):
            body["authority_uscc"] = department.uscc  # the canonical spelling: it is part of the identity
        version, operation, published_at, envelope_issues = parse_envelope(env, now)
        if body is not None:
            issues = combine(issues, validate(kind, body, today=china_date(now), rules=self.rules))
            decided_on = body.get("decided_on")
            if (
                published_at is not None
                and isinstance(decided_on, date)
                and china_date(published_at) < decided_on
            ):
                envelope_issues.append(
                    Issue(
                        "published_at",
                        "published_at.before_decision",
                        "公示时间早于决定日期",
                        quote(env.get("published_at")),
                    )
                )
        issues = issues + envelope_issues
        rid = None
        if body is not None and isinstance(body.get("decision_doc_no"), str) and authority:
            rid = record_id(kind, department.uscc, body["decision_doc_no"])
        if issues or body is None or version is None or operation is None:
            reasons = [i.as_reason() for i in bounded(issues)]
            return _Prepared(Outcome("rejected", receipt_id, rid, version, errors=reasons), reasons=reasons)
        assert rid is not None  # validate() reported a missing authority or document number otherwise
        submitted = now.astimezone(CHINA)
        days: int | None = None
        provisional = False
        if published_at is not None:
            days, provisional = self.calendar.working_days_between(
                china_date(published_at), submitted.date()
            )  # D6: reported upward within 2 working days of the portal publication
        envelope = {
            "record_id": rid,
            "version": version,
            "operation": operation,
            "kind": kind.upper(),
            "source_node": department.node,
            "department": department.id,
            "division_code": department.node,
            "decided_on": body["decided_on"],
            "published_at": published_at,
            "submitted_at": now,
            "receipt_id": receipt_id,
            "trace_id": next(ids),
        }
        try:
            payload = self.codec.encode(
                SCHEMA_NAME[kind], {**body, "envelope": envelope, "annotations": None}
            )
        except SerializationError as exc:  # validate() should have caught it; never let it escape the batch
            reason = Issue(ROW, "schema", "记录不符合数据标准的结构", quote(str(exc))).as_reason()
            return _Prepared(Outcome("rejected", receipt_id, rid, version, errors=[reason]), reasons=[reason])
        if len(payload) > self.max_record_bytes:
            limit = self.max_record_bytes
            reason = Issue(
                ROW,
                "record.too_large",
                f"记录编码后 {len(payload)} 字节，超过上限 {limit} 字节 / record over {limit} bytes",
                str(len(payload)),
            ).as_reason()
            return _Prepared(Outcome("rejected", receipt_id, rid, version, errors=[reason]), reasons=[reason])
        candidate = Candidate(
            receipt_id=receipt_id,
            record_id=rid,
            version=version,
            kind=kind,
            node=department.node,
            department=department.id,
            content_hash=content_hash(content_bytes(kind, body, operation, published_at)),
            payload=payload,
            submitted_at=int(now.timestamp() * 1000),
            portal_to_submit_working_days=days,
            calendar_provisional=provisional,
        )
        outcome = Outcome("taken", receipt_id, rid, version, [], days, provisional)
        return _Prepared(outcome, candidate)

    def _commit(self, department: Department, kind: str, prepared: Iterable[_Prepared]) -> list[Outcome]:
        """Admit the candidates and store the rejections in one durable transaction, then count them."""
        outcomes = []
        at = now_ms()
        prepared = list(prepared)
        with self.store.transaction() as tx, tx.batch() as batch:
            batch.prefetch(p.candidate.record_id for p in prepared if p.candidate is not None)
            for p in prepared:
                outcome = p.outcome
                if p.candidate is not None:
                    admission = batch.admit(p.candidate)
                    if admission.outcome == "unchanged":
                        outcome = Outcome(
                            "unchanged", admission.receipt_id, outcome.record_id, outcome.version
                        )
                    elif admission.outcome in ("conflict", "outdated"):
                        reason = _version_issue(
                            admission.outcome, p.candidate.version, admission.held_version
                        )
                        outcome = Outcome(
                            "rejected",
                            outcome.receipt_id,
                            outcome.record_id,
                            outcome.version,
                            [reason.as_reason()],
                        )
                        p.reasons = outcome.errors
                if outcome.status == "rejected":
                    receipt_id = outcome.receipt_id or uuid.uuid4().hex
                    batch.reject(
                        receipt_id,
                        kind=kind,
                        node=department.node,
                        department=department.id,
                        at=at,
                        reasons=p.reasons,
                        record_id=outcome.record_id,
                        version=outcome.version,
                        rejection=self._rejection(department, receipt_id, outcome, p, at),
                    )
                outcomes.append(outcome)
        self._count(department, kind, outcomes)
        return outcomes

    def _rejection(
        self, department: Department, receipt_id: str, outcome: Outcome, p: _Prepared, at: int
    ) -> bytes:
        """The `sgs.Rejection` (stage `node`) that tells the municipal platform what this node held back (D12)."""
        return self.codec.encode(
            "sgs.Rejection",
            {
                "receipt_id": receipt_id,
                "record_id": outcome.record_id,
                "version": outcome.version,
                "source_node": department.node,
                "department": department.id,
                "stage": "node",
                "original": p.original,
                "reasons": p.reasons,
                "rejected_at": datetime.fromtimestamp(at / 1000, UTC),
            },
        )

    def submit_decision(self, department: Department, data: Any) -> Outcome:
        """A decision on one of the department's records (D15, D16), committed to the outbox for `sgs.decisions`.

        Outcomes: `taken` (with its own receipt), `rejected` (every issue of the body; nothing stored: a decision
        is not a record, so the bulletin does not count it), `forbidden` (another authority's record, D10),
        `unknown` (no version of the record was taken here) or `not_accepted` (the municipal platform has not
        accepted it yet: a decision travels on its own topic and must not overtake its record there)."""
        now = datetime.now(UTC)
        body, issues = parse_decision(data, china_date(now))
        if body is None or issues:
            return Outcome("rejected", errors=[i.as_reason() for i in issues])
        rid = body["record_id"]
        kind, _, rest = rid.partition(":")
        authority = rest.partition(":")[0]
        if kind not in SCHEMA_NAME or authority.upper() != department.uscc:
            return Outcome("forbidden", record_id=rid, errors=[_forbidden(authority).as_reason()])
        foreign = authority_issues(body, department.name, department.uscc)  # 决定机关 too (issue 16)
        if foreign:
            return Outcome("forbidden", record_id=rid, errors=[i.as_reason() for i in foreign])
        accepted = self.store.record_accepted(rid)
        if not accepted:
            return Outcome("unknown" if accepted is None else "not_accepted", record_id=rid)
        receipt_id = uuid.uuid4().hex
        payload = self.codec.encode(
            DECISION_SCHEMA,
            {
                **body,
                "receipt_id": receipt_id,
                "source_node": department.node,
                "department": department.id,
                "submitted_at": now,
            },
        )
        with self.store.transaction() as tx, tx.batch() as batch:
            batch.take_decision(
                receipt_id,
                record_id=rid,
                kind=kind,
                node=department.node,
                department=department.id,
                at=int(now.timestamp() * 1000),
                payload=payload,
            )
        self.on_taken()
        return Outcome("taken", receipt_id, rid)

    def _count(self, department: Department, kind: str, outcomes: list[Outcome]) -> None:
        """The metrics of a request's outcomes: each series looked up and added to once, not once per record."""
        m, node, dept = self.metrics, department.node, department.id
        statuses = Counter(o.status for o in outcomes)
        if statuses["forbidden"]:
            m.forbidden.labels(node, dept).inc(statuses["forbidden"])
        received = len(outcomes) - statuses["forbidden"]
        if received:
            m.received.labels(node, dept, kind).inc(received)
        taken = statuses["taken"]
        if taken:
            m.taken.labels(node, dept, kind).inc(taken)
            days = [o.portal_to_submit_working_days for o in outcomes if o.status == "taken"]
            if any(d is not None for d in days):
                histogram = m.portal_to_submit.labels(node, dept, kind)
                for d in days:
                    if d is not None:
                        histogram.observe(d)
        if statuses["rejected"]:
            # Once per record, by its first reason, so the series add up to the records refused.
            rules = Counter(
                o.errors[0]["rule"] if o.errors else "unknown" for o in outcomes if o.status == "rejected"
            )
            for rule, count in rules.items():
                m.rejected.labels(node, dept, kind, rule).inc(count)
        if taken:
            self.on_taken()


def _forbidden(authority: str) -> Issue:
    return Issue(
        "authority_uscc",
        "authority.forbidden",
        "只能报送本机关作出的决定：许可机关/处罚机关统一社会信用代码与本部门不符",
        quote(authority),
    )


def _version_issue(outcome: str, version: int, held: int | None) -> Issue:
    """D4: a record already taken at `held` can only be replaced by a higher version."""
    if outcome == "conflict":
        return Issue(
            "version",
            "version.conflict",
            f"版本 {version} 已报送且内容不同：修改后的记录请使用更高的版本号（当前为 {held}）",
            str(version),
        )
    return Issue(
        "version",
        "version.outdated",
        f"已报送更高的版本 {held}：不能用较低的版本 {version} 替换",
        str(version),
    )
