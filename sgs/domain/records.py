"""Licence and penalty records as departments write them: template rows in, Avro-shaped record bodies out (D1, D2).

A department fills in the national template, one row per decision (CSV, XLSX or JSON lines; `template_files`
reads them). `parse_row` turns a row into the body of an `sgs.LicenseRecord` / `sgs.PenaltyRecord` (everything
but `envelope` and `annotations`) and reports what it could not read; `validation.validate` then checks the body
against the standard (D12).
`check_row` does both and reports each column once.

Row keys may be, in any mix:
- the template column names (Chinese, `template_columns(kind)`), as in the CSV/XLSX header;
- the Avro field names, with the counterpart either nested (`{"counterpart": {"uscc": ...}}`) or flat
  (`{"uscc": ...}`; counterpart field names never clash with record field names).
`annotations` keys are ignored; `envelope` keys and the optional columns 版本号, 操作类型 and 公示时间 are the
envelope a department may give (`split_envelope`, `parse_envelope`). Values are strings (CSV) or JSON/XLSX scalars; an empty string is
a missing value. Dates: YYYY-MM-DD or YYYY/MM/DD (month and day may have one digit). Amounts: decimal text or
numbers. Enums: the Chinese label or the symbol. 处罚类别: several values separated by ; or ；, or a JSON list.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from sgs.domain.issues import ROW, Issue, quote
from sgs.domain.kinds import KINDS, SCHEMA_NAME
from sgs.domain.template import (
    DATE,
    DECIMAL,
    ENUM,
    ENUM_ARRAY,
    TemplateField,
    field_by_key,
    field_by_name,
    template_fields,
)
from sgs.domain.validation import DECISION_DATE_FLOOR, text_issue, validate
from sgs.domain.workdays import CHINA

IGNORED_KEYS = frozenset({"envelope", "annotations"})
_DATE = re.compile(r"^(\d{4})([-/])(\d{1,2})\2(\d{1,2})$")
_MULTI = re.compile(r"[;；]")


# --- one row ---------------------------------------------------------------------------------------------------


def _flatten(kind: str, row: Mapping[Any, Any], issues: list[Issue]) -> list[tuple[TemplateField, Any]]:
    """(field, raw value) pairs of a row, resolving column names, field names and a nested counterpart."""
    out: list[tuple[TemplateField, Any]] = []
    by_key = field_by_key(kind)
    for key, value in row.items():
        f = by_key.get(key) if isinstance(key, str) else None
        if f is not None:  # the common case: an exact column name
            out.append((f, value))
            continue
        name = quote(str(key).strip().lstrip("\ufeff")) or ""  # a hostile key is quoted like a value
        if name in IGNORED_KEYS:
            continue
        if name == "counterpart" and isinstance(value, Mapping):
            for inner_key, inner_value in value.items():
                f = field_by_name(kind).get(str(inner_key))
                if f is None or f.path[0] != "counterpart":
                    issues.append(
                        Issue(
                            quote(str(inner_key)) or "",
                            "column.unknown",
                            "模板中没有此列",
                            quote(inner_value),
                        )
                    )
                else:
                    out.append((f, inner_value))
            continue
        f = field_by_key(kind).get(name)
        if f is None:
            issues.append(Issue(name, "column.unknown", "模板中没有此列", quote(value)))
        else:
            out.append((f, value))
    return out


def _text(value: Any) -> str | None:
    """A cell as stripped text; None when empty."""
    if value is None:
        return None
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))  # XLSX stores 12345 as 12345.0
    elif isinstance(value, datetime.datetime) and value.time() == datetime.time():
        text = value.date().isoformat()
    else:
        text = str(value)
    text = text.strip()
    return text or None


def _parse_date(f: TemplateField, value: Any) -> tuple[Any, Issue | None]:
    if isinstance(value, datetime.datetime):  # an XLSX date cell
        return value.date(), None
    if isinstance(value, datetime.date):
        return value, None
    text = _text(value)
    m = _DATE.match(text or "")
    if m is None or not isinstance(value, str):
        return None, Issue(f.column, "date.format", "日期格式应为 YYYY-MM-DD 或 YYYY/MM/DD", quote(value))
    try:
        return datetime.date(int(m.group(1)), int(m.group(3)), int(m.group(4))), None
    except ValueError:
        return None, Issue(f.column, "date.invalid", "日期不存在", quote(value))


def _parse_decimal(f: TemplateField, value: Any) -> tuple[Any, Issue | None]:
    if isinstance(value, bool):
        return None, Issue(f.column, "amount.format", "金额应为数字（万元）", quote(value))
    if isinstance(value, Decimal):
        return value, None
    if isinstance(value, int):
        return Decimal(value), None
    text = _text(value) or ""  # str() of a float is its shortest round-tripping text: 0.1 stays 0.1
    try:
        amount = Decimal(text.replace(",", ""))
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or len(text) > 64:
        return None, Issue(f.column, "amount.format", "金额应为数字（万元）", quote(value))
    return amount, None


def _parse_enum(f: TemplateField, value: Any) -> tuple[Any, Issue | None]:
    text = _text(value) if isinstance(value, str) else None
    symbol = f.symbol_for(text) if text else None
    if symbol is None:
        return None, Issue(f.column, "enum", f"{f.column}应为：{'；'.join(f.labels.values())}", quote(value))
    return symbol, None


def _parse_enum_array(f: TemplateField, value: Any) -> tuple[Any, Issue | None]:
    if isinstance(value, list):
        parts = [_text(v) if isinstance(v, str) else None for v in value]
    elif isinstance(value, str):
        parts = [p.strip() for p in _MULTI.split(value) if p.strip()]
    else:
        parts = [None]
    symbols = [f.symbol_for(p) if p else None for p in parts]
    if not symbols or any(s is None for s in symbols):
        shown = "；".join(f.labels.values())
        return None, Issue(f.column, "enum", f"{f.column}应为：{shown}（多个以 ; 分隔）", quote(value))
    return symbols, None


def parse_row(kind: str, row: Mapping[str, Any]) -> tuple[dict[str, Any] | None, list[Issue]]:
    """A department's row -> (Avro-shaped body without envelope/annotations, parse issues).

    The body always has every template field (None where the cell was empty or unreadable), so a later
    `validate` reports what is missing. The body is None only when the row is not a mapping at all."""
    if kind not in SCHEMA_NAME:
        raise ValueError(f"unknown record kind {kind!r}; expected one of {KINDS}")
    if not isinstance(row, Mapping):
        return None, [Issue(ROW, "row.format", "记录应为对象（列名到值）", quote(type(row).__name__))]
    issues: list[Issue] = []
    top, counterpart = _empty_body(kind)
    body: dict[str, Any] = {**top, "counterpart": dict(counterpart)}
    for f, raw in _flatten(kind, row, issues):
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            continue
        value, issue = parse_cell(f, raw)
        if issue is not None:
            issues.append(issue)
        _put(body, f, value)
    return body, issues


def parse_cell(f: TemplateField, raw: Any) -> tuple[Any, Issue | None]:
    """One non-empty cell as its Avro value, or the issue that it cannot be read."""
    if f.type == DATE:
        return _parse_date(f, raw)
    if f.type == DECIMAL:
        return _parse_decimal(f, raw)
    if f.type == ENUM:
        return _parse_enum(f, raw)
    if f.type == ENUM_ARRAY:
        return _parse_enum_array(f, raw)
    value = _text(raw) if not isinstance(raw, (dict, list)) else None
    if value is None:
        return None, Issue(f.column, "type", f"{f.column}应为文本", quote(raw))
    issue = text_issue(f.column, value)
    return (None, issue) if issue else (value, None)


@cache
def _empty_body(kind: str) -> tuple[dict[str, None], dict[str, None]]:
    """Every template field set to None: (record fields, counterpart fields)."""
    fields = template_fields(kind)
    return (
        {f.name: None for f in fields if len(f.path) == 1},
        {f.name: None for f in fields if len(f.path) == 2},
    )


def _put(body: dict[str, Any], f: TemplateField, value: Any) -> None:
    if len(f.path) == 1:
        body[f.path[0]] = value
    else:
        body[f.path[0]][f.path[1]] = value


def check_row(
    kind: str, row: Mapping[str, Any], *, today: datetime.date | None = None
) -> tuple[dict[str, Any] | None, list[Issue]]:
    """parse_row + validate: every issue of a row, one per column where parsing already failed."""
    body, issues = parse_row(kind, row)
    if body is None:
        return None, issues
    return body, combine(issues, validate(kind, body, today=today))


def combine(parse_issues: list[Issue], validation_issues: Iterable[Issue]) -> list[Issue]:
    """Parse issues, then validation issues of columns that parsed (a cell that could not be read is missing to
    the validator, and "required" would only repeat the parse issue)."""
    seen = {i.field for i in parse_issues}
    return parse_issues + [i for i in validation_issues if i.field not in seen]


def to_json(body: Any) -> Any:
    """A JSON-safe copy of a record (or any part of one): dates ISO, decimals as strings, bytes as hex."""
    if isinstance(body, dict):
        return {str(k): to_json(v) for k, v in body.items()}
    if isinstance(body, (list, tuple)):
        return [to_json(v) for v in body]
    if isinstance(body, (datetime.date, datetime.datetime)):
        return body.isoformat()
    if isinstance(body, Decimal):
        return str(body)
    if isinstance(body, bytes):
        return body.hex()
    return body


# --- the envelope a department may give ------------------------------------------------------------------------

OPERATIONS = {
    "CREATE": "CREATE",
    "UPDATE": "UPDATE",
    "REVOKE": "REVOKE",
    "新增": "CREATE",
    "更新": "UPDATE",
    "撤销": "REVOKE",
}
# The envelope fields a department may give, by Avro name, and the optional template columns that carry them in a
# file (D4: a later version updates or revokes the record; D6: the portal publication time). A row without them is
# version 1, 新增, with no publication time.
ENVELOPE_KEYS = ("version", "operation", "published_at")
ENVELOPE_COLUMNS = {"版本号": "version", "操作类型": "operation", "公示时间": "published_at"}
# Versions a department sets (D4): a record updated a million times is implausible, and a version near the Avro
# long's limit would leave it no room to be updated (issue 17).
MAX_VERSION = 1_000_000


def split_envelope(row: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the template fields, the envelope fields by Avro name) of a row: a JSON record's top-level or nested
    `envelope` keys, or a file row's optional envelope columns. Empty cells count as not given."""
    fields: dict[str, Any] = {}
    nested = row.get("envelope")
    if isinstance(nested, Mapping):
        fields.update({k: nested[k] for k in ENVELOPE_KEYS if k in nested})
    rest: dict[str, Any] = {}
    for key, value in row.items():
        name = ENVELOPE_COLUMNS.get(key.strip().lstrip("\ufeff"), key) if isinstance(key, str) else key
        if name in ENVELOPE_KEYS:
            if not (isinstance(value, str) and not value.strip()):
                fields[name] = value
        else:
            rest[key] = value
    return rest, fields


def parse_envelope(
    env: Mapping[str, Any], now: datetime.datetime
) -> tuple[int | None, str | None, datetime.datetime | None, list[Issue]]:
    """(version, operation, portal publication time, issues) of what a department gave (D4, D6, D12): version
    defaults to 1, operation to CREATE for version 1 and UPDATE otherwise; a time without an offset is China's."""
    version, version_issue = _parse_version(env.get("version"))
    operation, operation_issue = _parse_operation(env.get("operation"), version or 1)
    published_at, published_issue = _parse_published_at(env.get("published_at"), now)
    issues = [i for i in (version_issue, operation_issue, published_issue) if i is not None]
    return version, operation, published_at, issues


def _parse_version(value: Any) -> tuple[int | None, Issue | None]:
    if value is None:
        return 1, None
    if isinstance(value, float) and value.is_integer():  # XLSX stores 2 as 2.0
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        version = value
    elif isinstance(value, str) and value.strip().isdigit():
        version = int(value.strip())
    else:
        return None, Issue("version", "version.format", "版本号应为正整数", quote(value))
    if not 1 <= version <= MAX_VERSION:
        return None, Issue(
            "version",
            "version.range",
            f"版本号应为 1 至 {MAX_VERSION} 的整数 / from 1 to {MAX_VERSION}",
            quote(value),
        )
    return version, None


def _parse_operation(value: Any, version: int) -> tuple[str | None, Issue | None]:
    if value is None:
        return ("CREATE" if version == 1 else "UPDATE"), None
    operation = OPERATIONS.get(value.strip().upper() if isinstance(value, str) else "")
    if operation is None:
        return None, Issue(
            "operation",
            "operation.enum",
            "操作类型应为：CREATE（新增）、UPDATE（更新）、REVOKE（撤销）",
            quote(value),
        )
    return operation, None


def _parse_published_at(value: Any, now: datetime.datetime) -> tuple[datetime.datetime | None, Issue | None]:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, None
    at: datetime.datetime | None = None
    if isinstance(value, datetime.datetime):  # an XLSX date-time cell
        at = value
    elif isinstance(value, str):
        try:
            at = datetime.datetime.fromisoformat(value.strip())
        except ValueError:
            at = None
    if at is None:
        return None, Issue(
            "published_at",
            "published_at.format",
            "公示时间应为 ISO 8601 时间，如 2026-05-06T09:30:00+08:00",
            quote(value),
        )
    if at.tzinfo is None:
        at = at.replace(tzinfo=CHINA)
    # before any decision; dates compared as written, so nothing overflows
    if at.date() < DECISION_DATE_FLOOR:
        return None, Issue(
            "published_at",
            "published_at.floor",
            f"公示时间早于 {DECISION_DATE_FLOOR.isoformat()} / before {DECISION_DATE_FLOOR}",
            quote(value),
        )
    # a little clock skew between the department and the node; the dates first, so 9999-12-31 cannot overflow
    if at.date() > now.date() + datetime.timedelta(days=1) or at > now + datetime.timedelta(minutes=5):
        return None, Issue("published_at", "published_at.future", "公示时间晚于报送时间", quote(value))
    return at, None
