"""Licence and penalty records as departments write them: template rows in, Avro-shaped record bodies out (D1, D2).

A department fills in the national template, one row per decision (CSV, XLSX or JSON lines). `parse_row` turns a
row into the body of an `sgs.LicenseRecord` / `sgs.PenaltyRecord` (everything but `envelope` and `annotations`)
and reports what it could not read; `sgs.validation.validate` then checks the body against the standard (D12).
`check_row` does both and reports each column once.

Row keys may be, in any mix:
- the template column names (Chinese, `template_columns(kind)`), as in the CSV/XLSX header;
- the Avro field names, with the counterpart either nested (`{"counterpart": {"uscc": ...}}`) or flat
  (`{"uscc": ...}`; counterpart field names never clash with record field names).
`envelope` and `annotations` keys are ignored. Values are strings (CSV) or JSON/XLSX scalars; an empty string is
a missing value. Dates: YYYY-MM-DD or YYYY/MM/DD (month and day may have one digit). Amounts: decimal text or
numbers. Enums: the Chinese label or the symbol. 处罚类别: several values separated by ; or ；, or a JSON list.
"""

from __future__ import annotations

import codecs
import csv
import datetime
import io
import json
import re
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

from sgs.template import (
    DATE,
    DECIMAL,
    ENUM,
    ENUM_ARRAY,
    KINDS,
    SCHEMA_NAME,
    TemplateField,
    field_by_column,
    field_by_name,
    template_columns,
    template_fields,
)
from sgs.validation import ROW, Issue, quote, text_issue, validate

__all__ = [
    "KINDS",
    "SCHEMA_NAME",
    "TemplateError",
    "check_row",
    "parse_cell",
    "parse_row",
    "read_raw_rows",
    "read_rows",
    "record_id",
    "template_columns",
    "to_json",
]

IGNORED_KEYS = frozenset({"envelope", "annotations"})
# Bounds on a template file, so that one upload never costs the others (one node process serves many districts):
# rows and columns as Excel itself allows; a CSV / JSON lines line read with a bounded buffer, never whole; an XLSX
# archive's members checked before any parser sees them (sizes as the archive declares them, which is all Python's
# zipfile will ever inflate; the ratio catches a small file that expands hugely; no DOCTYPE, so no XML entities).
# openpyxl streams a worksheet but holds the shared strings whole, so they have a tighter bound of their own.
MAX_ROWS = 1_048_576
MAX_LINE_BYTES = 1024 * 1024
XLSX_MAX_MEMBERS = 1000
XLSX_MAX_TOTAL_BYTES = 2 * 1024 * 1024 * 1024
XLSX_MAX_SHARED_STRINGS_BYTES = 64 * 1024 * 1024
XLSX_MAX_RATIO = 100
_XML_HEAD_BYTES = 64 * 1024
_XML_ROOT = re.compile(rb"<[A-Za-z_]")
_DATE = re.compile(r"^(\d{4})([-/])(\d{1,2})\2(\d{1,2})$")
_MULTI = re.compile(r"[;；]")


class TemplateError(Exception):
    """A file that cannot be read as a template at all: unknown format, wrong encoding, wrong header."""


def record_id(kind: str, authority_uscc: str, decision_doc_no: str) -> str:
    """The identity every version of a record shares (DOMAIN assumption; D4)."""
    return f"{kind}:{authority_uscc}:{decision_doc_no}"


# --- one row ---------------------------------------------------------------------------------------------------


@cache
def _fields_by_key(kind: str) -> dict[str, TemplateField]:
    """Template column names and Avro field names (flat counterpart), to their field."""
    return {**field_by_name(kind), **field_by_column(kind)}


def _resolve(kind: str, key: str) -> TemplateField | None:
    return _fields_by_key(kind).get(key)


def _flatten(kind: str, row: Mapping[Any, Any], issues: list[Issue]) -> list[tuple[TemplateField, Any]]:
    """(field, raw value) pairs of a row, resolving column names, field names and a nested counterpart."""
    out: list[tuple[TemplateField, Any]] = []
    by_key = _fields_by_key(kind)
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
                        Issue(str(inner_key), "column.unknown", "模板中没有此列", quote(inner_value))
                    )
                else:
                    out.append((f, inner_value))
            continue
        f = _resolve(kind, name)
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


# --- files -----------------------------------------------------------------------------------------------------


def read_rows(path: Path, kind: str) -> Iterator[tuple[int, dict[str, Any] | None, list[Issue]]]:
    """Stream a template file: (row number, body, parse issues) per record, in constant memory.

    The row number is the one an editor shows: the header is row 1 of a CSV/XLSX file, so the first record is
    row 2; in JSON lines it is the line number. Raises TemplateError for an unreadable file, an unknown format,
    a wrong encoding or a wrong header (possibly after some rows, for an encoding error deep in a file)."""
    for number, row, issues in read_raw_rows(path, kind):
        if row is None:
            yield number, None, issues
            continue
        body, parse_issues = parse_row(kind, row)
        yield number, body, issues + parse_issues


def read_raw_rows(path: Path, kind: str) -> Iterator[tuple[int, dict[str, Any] | None, list[Issue]]]:
    """Like `read_rows`, but each record as the file has it (header -> cell, before parsing), so a node can send
    a refused row upward as the department wrote it (D12). None for a JSON lines row that is not an object."""
    if kind not in SCHEMA_NAME:
        raise ValueError(f"unknown record kind {kind!r}; expected one of {KINDS}")
    path = Path(path)
    fmt = _detect_format(path)
    return {"csv": _csv_rows, "xlsx": _xlsx_rows, "jsonl": _jsonl_rows}[fmt](path, kind)


def _detect_format(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
    except OSError as exc:
        raise TemplateError(f"无法读取文件 / cannot read {path}: {exc.strerror or exc}") from None
    suffix = path.suffix.lower()
    if head.startswith(b"PK\x03\x04"):
        if suffix in (".xlsx", ".xlsm", ""):
            return "xlsx"
        raise TemplateError(f"{path}: 文件是压缩包而不是 {suffix} / a zip archive, not {suffix}")
    if suffix in (".xlsx", ".xlsm"):
        raise TemplateError(f"{path}: 不是有效的 XLSX 文件 / not an XLSX workbook")
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv", ".txt"):
        return "csv"
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return "jsonl"
    if b"\x00" in head:
        raise TemplateError(f"{path}: 未知的文件格式（应为 CSV、XLSX 或 JSON lines）/ unknown format")
    return "csv"


def _check_header(path: Path, kind: str, header: list[str]) -> None:
    names = [h.strip().lstrip("\ufeff") for h in header]
    known = [n for n in names if _resolve(kind, n) is not None]
    unknown = [n for n in names if _resolve(kind, n) is None]
    resolved = [_resolve(kind, n) for n in known]
    missing = [f.column for f in template_fields(kind) if f not in resolved]
    duplicated = sorted({f.column for f in resolved if f is not None and resolved.count(f) > 1})
    problems = []
    if unknown:
        problems.append(f"未知列 unknown columns: {', '.join(unknown[:10])}")
    if missing:
        problems.append(f"缺少列 missing columns: {', '.join(missing[:10])}")
    if duplicated:
        problems.append(f"重复列 duplicate columns: {', '.join(duplicated)}")
    if problems:
        kind_label = "行政许可" if kind == "license" else "行政处罚"
        raise TemplateError(
            f"{path}: 表头与{kind_label}模板不符 / header does not match the {kind} template: "
            + "; ".join(problems)
        )


def _too_many_rows(path: Path, number: int) -> TemplateError:
    return TemplateError(f"{path}: 超过 {MAX_ROWS} 行（第 {number} 行）/ more than {MAX_ROWS} rows")


def _utf8_lines(path: Path, fh: io.BufferedReader) -> Iterator[str]:
    """Decode line by line, each read with a bounded buffer (MAX_LINE_BYTES), so a wrong encoding is reported with
    its line number and a line of 50 MiB costs 1 MiB before it is refused."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    number = 0
    while raw := fh.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(raw) > MAX_LINE_BYTES:
            raise TemplateError(
                f"{path}: 第 {number} 行超过 {MAX_LINE_BYTES} 字节 / line {number} is longer than {MAX_LINE_BYTES} bytes"
            )
        if number > MAX_ROWS + 1:
            raise _too_many_rows(path, number)
        try:
            yield decoder.decode(raw)
        except UnicodeDecodeError:
            raise TemplateError(
                f"{path}: 第 {number} 行不是 UTF-8 编码（请另存为 UTF-8，如“CSV UTF-8”）/ line {number} is not UTF-8"
            ) from None


def _csv_rows(path: Path, kind: str) -> Iterator[tuple[int, dict[str, Any] | None, list[Issue]]]:
    with path.open("rb") as fh:
        lines = _utf8_lines(path, fh)  # type: ignore[arg-type]
        reader = csv.reader(lines)
        try:
            header = next(reader, None)
            if not header:
                raise TemplateError(f"{path}: 文件为空，没有表头 / empty file, no header")
            _check_header(path, kind, header)
            start = reader.line_num + 1
            for cells in reader:
                number, start = start, reader.line_num + 1
                if not any(c.strip() for c in cells):
                    continue
                issues = []
                if len(cells) != len(header):
                    issues.append(
                        Issue(ROW, "row.columns", f"本行有 {len(cells)} 列，表头有 {len(header)} 列", None)
                    )
                yield number, dict(zip(header, cells, strict=False)), issues
        except csv.Error as exc:
            raise TemplateError(
                f"{path}: 第 {reader.line_num} 行不是有效的 CSV / line {reader.line_num}: {exc}"
            ) from None


def check_xlsx_archive(path: Path) -> None:
    """Refuse a zip bomb or an XML entity bomb before openpyxl opens it (TemplateError, naming the limit)."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise TemplateError(f"{path}: 不是有效的 XLSX 文件 / not a readable XLSX workbook: {exc}") from None
    with archive:
        members = archive.infolist()
        if len(members) > XLSX_MAX_MEMBERS:
            raise TemplateError(f"{path}: XLSX 含 {len(members)} 个部件 / more than {XLSX_MAX_MEMBERS} parts")
        total = 0
        for m in members:
            total += m.file_size
            ratio = m.file_size / max(m.compress_size, 1)
            limit = XLSX_MAX_SHARED_STRINGS_BYTES if m.filename.endswith("sharedStrings.xml") else None
            if (limit and m.file_size > limit) or total > XLSX_MAX_TOTAL_BYTES:
                limit = limit if limit and m.file_size > limit else XLSX_MAX_TOTAL_BYTES
                raise TemplateError(
                    f"{path}: XLSX 解压后超过 {limit} 字节（{m.filename}）/ expands beyond {limit} bytes "
                    "(send large data as CSV, or in several files)"
                )
            if m.file_size > 1024 * 1024 and ratio > XLSX_MAX_RATIO:
                raise TemplateError(
                    f"{path}: XLSX 部件 {m.filename} 压缩比 {ratio:.0f}:1，超过 {XLSX_MAX_RATIO}:1 / compression "
                    f"ratio over {XLSX_MAX_RATIO}:1, a zip bomb"
                )
        for m in members:
            if m.filename.endswith((".xml", ".rels")):
                with archive.open(m) as fh:
                    head = fh.read(_XML_HEAD_BYTES)
                root = _XML_ROOT.search(head)
                if root is None or b"<!DOCTYPE" in head[: root.start()].upper():
                    raise TemplateError(
                        f"{path}: XLSX 部件 {m.filename} 含 DOCTYPE 或没有根元素 / has a DOCTYPE (XML entities) or "
                        "no root element"
                    )


def _xlsx_rows(path: Path, kind: str) -> Iterator[tuple[int, dict[str, Any] | None, list[Issue]]]:
    import openpyxl

    check_xlsx_archive(path)
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged workbook; all mean the same here
        raise TemplateError(f"{path}: 不是有效的 XLSX 文件 / not a readable XLSX workbook: {exc}") from None
    try:
        yield from _sheet_rows(path, kind, workbook.worksheets[0].iter_rows(values_only=True))
    except TemplateError:
        raise
    except Exception as exc:  # a damaged sheet shows only while streaming it
        raise TemplateError(f"{path}: XLSX 工作表已损坏 / damaged worksheet: {exc}") from None
    finally:
        workbook.close()


def _sheet_rows(
    path: Path, kind: str, rows: Iterator[tuple[Any, ...]]
) -> Iterator[tuple[int, dict[str, Any] | None, list[Issue]]]:
    """One worksheet: its header (row 1) checked, then its records."""
    header_cells = next(rows, None)
    header = [("" if c is None else str(c)) for c in (header_cells or ())]
    while header and not header[-1].strip():
        header.pop()
    if not header:
        raise TemplateError(f"{path}: 第一个工作表为空，没有表头 / the first sheet is empty, no header")
    _check_header(path, kind, header)
    for number, cells in enumerate(rows, start=2):
        if number > MAX_ROWS:
            raise _too_many_rows(path, number)
        if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
            continue
        issues = []
        extra = [c for c in cells[len(header) :] if c is not None and str(c).strip()]
        if extra:
            issues.append(Issue(ROW, "row.columns", f"本行在表头之外还有 {len(extra)} 个单元格有值", None))
        yield number, dict(zip(header, cells, strict=False)), issues


def _jsonl_rows(path: Path, kind: str) -> Iterator[tuple[int, dict[str, Any] | None, list[Issue]]]:
    with path.open("rb") as fh:
        for number, line in enumerate(_utf8_lines(path, fh), start=1):  # type: ignore[arg-type]
            if not line.strip():
                continue
            try:
                row = json.loads(line, parse_float=Decimal)
            except (json.JSONDecodeError, RecursionError):
                yield number, None, [Issue(ROW, "row.format", "本行不是有效的 JSON", quote(line.strip()))]
                continue
            if not isinstance(row, dict):
                yield number, None, [Issue(ROW, "row.format", "本行应为 JSON 对象", quote(line.strip()))]
                continue
            yield number, row, []


# --- JSON ------------------------------------------------------------------------------------------------------


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
