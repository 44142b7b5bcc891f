"""Template files as departments upload them (CSV, XLSX or JSON lines, D1/D2), streamed row by row in constant
memory: the header is checked against the national template, then each record comes out as the department wrote
it (`read_raw_rows`) or parsed (`read_rows`, through `records.parse_row`). A file that cannot be read as a template
at all is a `TemplateError`; a bad row is issues on that row, never an exception."""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from sgs.domain.issues import ROW, Issue, quote
from sgs.domain.kinds import KINDS, SCHEMA_NAME
from sgs.domain.records import ENVELOPE_COLUMNS, ENVELOPE_KEYS, parse_envelope, parse_row, split_envelope
from sgs.domain.template import field_by_key, template_fields

# Bounds on a template file, so that one upload never costs the others (one node process serves many districts):
# rows as Excel itself allows; a CSV / JSON lines line read with a bounded buffer, never whole; an XLSX archive's
# members checked before any parser sees them (sizes as the archive declares them, which is all Python's zipfile will
# ever inflate; the ratio catches a small file that expands hugely; no DOCTYPE, so no XML entities). openpyxl streams
# a worksheet but holds the shared strings whole, so they have a tighter bound of their own.
MAX_ROWS = 1_048_576
MAX_LINE_BYTES = 1024 * 1024
XLSX_MAX_MEMBERS = 1000
XLSX_MAX_TOTAL_BYTES = 2 * 1024 * 1024 * 1024
XLSX_MAX_SHARED_STRINGS_BYTES = 64 * 1024 * 1024
XLSX_MAX_RATIO = 100
_XML_HEAD_BYTES = 64 * 1024
# The longest text a worksheet or the shared strings may hold between two tags, in bytes: a cell over MAX_TEXT_CHARS
# is refused row by row anyway (text.too_long); beyond this its text alone would cost the parser its size in memory.
XLSX_MAX_TEXT_BYTES = 64 * 1024
_XML_ROOT = re.compile(rb"<[A-Za-z_]")


class TemplateError(Exception):
    """A file that cannot be read as a template at all: unknown format, wrong encoding, wrong header, over a bound."""


def read_rows(path: Path, kind: str) -> Iterator[tuple[int, dict[str, Any] | None, list[Issue]]]:
    """Stream a template file: (row number, body, parse issues) per record, in constant memory.

    The row number is the one an editor shows: the header is row 1 of a CSV/XLSX file, so the first record is
    row 2; in JSON lines it is the line number. Raises TemplateError for an unreadable file, an unknown format,
    a wrong encoding or a wrong header (possibly after some rows, for an encoding error deep in a file)."""
    now = datetime.now(UTC)
    for number, row, issues in read_raw_rows(path, kind):
        if row is None:
            yield number, None, issues
            continue
        rest, env = split_envelope(row)
        body, parse_issues = parse_row(kind, rest)
        yield number, body, issues + parse_issues + parse_envelope(env, now)[3]


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
    envelope = [ENVELOPE_COLUMNS.get(n, n) for n in names if ENVELOPE_COLUMNS.get(n, n) in ENVELOPE_KEYS]
    names = [n for n in names if ENVELOPE_COLUMNS.get(n, n) not in ENVELOPE_KEYS]  # optional columns
    known = [n for n in names if field_by_key(kind).get(n) is not None]
    unknown = [n for n in names if field_by_key(kind).get(n) is None]
    resolved = [field_by_key(kind).get(n) for n in known]
    missing = [f.column for f in template_fields(kind) if f not in resolved]
    duplicated = sorted({f.column for f in resolved if f is not None and resolved.count(f) > 1})
    duplicated += sorted({k for k in envelope if envelope.count(k) > 1})
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
            if m.filename.startswith("xl/worksheets/") or m.filename.endswith("sharedStrings.xml"):
                with archive.open(m) as fh:
                    if _longest_text(fh, XLSX_MAX_TEXT_BYTES) > XLSX_MAX_TEXT_BYTES:
                        raise TemplateError(
                            f"{path}: XLSX 部件 {m.filename} 有超过 {XLSX_MAX_TEXT_BYTES} 字节的单元格 / a cell "
                            f"longer than {XLSX_MAX_TEXT_BYTES} bytes"
                        )


def _longest_text(fh: IO[bytes], stop_over: int) -> int:
    """The longest run of bytes between two tags of an XML stream, read 1 MiB at a time (text cannot hold a raw
    `<`, so this bounds every cell's text before a parser builds it); it stops reading once a run is over
    `stop_over`."""
    longest = carried = 0
    while longest <= stop_over and (chunk := fh.read(1024 * 1024)):
        runs = chunk.split(b"<")
        if len(runs) == 1:
            carried += len(chunk)
        else:
            longest = max(longest, carried + len(runs[0]), max(map(len, runs[1:-1]), default=0))
            carried = len(runs[-1])
        longest = max(longest, carried)
    return longest


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
