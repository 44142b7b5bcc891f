"""Reading a base's CSV file (headers in docs/refbase.md): each row parsed and checked, a bad row yielded with its
reasons (never an exception), a file that cannot be read at all a `RefbaseError`."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from stdnum.cn import ric, uscc

from sgs.domain.validation import text_issue
from sgs.refbase.store import LEGAL_PERSONS, PERSONS, STATUS_LABELS, STATUSES, BaseSpec, RefbaseError


def _parse_date(value: str) -> date:
    text = value.strip().replace("/", "-")
    if re.fullmatch(r"\d{8}", text):
        text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return date.fromisoformat(text)


def _text_reasons(column: str, text: str) -> list[str]:
    """The records' bound on a text cell (too long for a message, control characters), so that every entry of a
    base can be published (issue 17)."""
    issue = text_issue(column, text)
    return [f"{issue.message} [{issue.rule}]"] if issue else []


def parse_legal_person(raw: Mapping[str, str | None]) -> tuple[dict[str, Any] | None, list[str]]:
    """One CSV row (column names already mapped) -> (row, []) or (None, reasons)."""
    reasons = []
    code = (raw.get("uscc") or "").strip().upper()
    if not uscc.is_valid(code):
        reasons.append(f"统一社会信用代码 {code!r} is not a valid GB 32100-2015 code")
    name = (raw.get("name") or "").strip()
    if not name:
        reasons.append("名称 is empty")
    reasons += _text_reasons("名称", name)
    label = (raw.get("status") or "").strip()
    status = STATUS_LABELS.get(label, label.upper())
    if status not in STATUSES:
        reasons.append(f"登记状态 {label!r} is not one of {'/'.join(STATUS_LABELS)}")
    since = None
    if (raw.get("status_since") or "").strip():
        try:
            since = _parse_date(raw["status_since"] or "")
        except ValueError:
            reasons.append(f"状态日期 {raw['status_since']!r} is not a date YYYY-MM-DD")
    if reasons:
        return None, reasons
    return {"uscc": code, "name": name, "status": status, "status_since": since}, []


def parse_person(raw: Mapping[str, str | None]) -> tuple[dict[str, Any] | None, list[str]]:
    """One CSV row (column names already mapped) -> (row, []) or (None, reasons)."""
    reasons = []
    id_no = (raw.get("id_no") or "").strip().upper()
    if not ric.is_valid(id_no):
        reasons.append(
            f"身份证号 {id_no[:6]}... is not a valid GB 11643-1999 number"
        )  # D17: never log it whole
    name = (raw.get("name") or "").strip()
    if not name:
        reasons.append("姓名 is empty")
    reasons += _text_reasons("姓名", name)
    if reasons:
        return None, reasons
    return {"id_no": id_no, "name": name}, []


PARSERS: dict[str, Callable[[Mapping[str, str | None]], tuple[dict[str, Any] | None, list[str]]]] = {
    LEGAL_PERSONS.name: parse_legal_person,
    PERSONS.name: parse_person,
}


@dataclass(frozen=True)
class CsvRow:
    line: int
    row: dict[str, Any] | None
    reasons: list[str]


def read_csv(spec: BaseSpec, path: Path, encoding: str = "utf-8-sig") -> Iterator[CsvRow]:
    """Rows of a base's CSV file (headers in docs/refbase.md); a bad row is yielded with its reasons."""
    try:
        handle = path.open(encoding=encoding, newline="")
    except OSError as exc:
        raise RefbaseError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with handle:
        reader = csv.DictReader(handle)
        try:
            header = reader.fieldnames or []
        except UnicodeDecodeError as exc:
            raise RefbaseError(f"{path}: not {encoding} text: {exc}") from None
        missing = [h for h in spec.required_headers if h not in header]
        if missing:
            raise RefbaseError(
                f"{path}: header: missing column(s) {', '.join(missing)}; found {', '.join(header)}"
            )
        parse = PARSERS[spec.name]
        try:
            for raw in reader:
                mapped = {col: raw.get(h) for h, col in spec.headers.items()}
                row, reasons = parse(mapped)
                yield CsvRow(reader.line_num, row, reasons)
        except UnicodeDecodeError as exc:
            raise RefbaseError(f"{path}: line {reader.line_num + 1}: not {encoding} text: {exc}") from None
        except csv.Error as exc:  # e.g. a cell over the csv module's field limit: one line, not a traceback
            raise RefbaseError(f"{path}: line {reader.line_num}: not valid CSV: {exc}") from None
