"""Files the simulators write: the reference-base snapshot for `sgs refbase load` (docs/refbase.md) and template
files per department for the node's file upload or `sgs validate`, with a manifest of what each row should become.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sgs.domain.template import template_columns
from simulators.generator import Submission
from simulators.subjects import Population

LEGAL_PERSONS_CSV = "legal_persons.csv"
PERSONS_CSV = "persons.csv"
MANIFEST = "manifest.jsonl"


def write_refbase(population: Population, out_dir: Path) -> dict[str, int]:
    """`legal_persons.csv` (统一社会信用代码,名称,登记状态,状态日期) and `persons.csv` (身份证号,姓名), UTF-8;
    returns the row count of each."""
    out_dir.mkdir(parents=True, exist_ok=True)
    organisations = population.organisations()
    with (out_dir / LEGAL_PERSONS_CSV).open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["统一社会信用代码", "名称", "登记状态", "状态日期"])
        for s in organisations:
            writer.writerow([s.uscc, s.name, s.status, s.status_since.isoformat() if s.status_since else ""])
    persons = population.persons()
    with (out_dir / PERSONS_CSV).open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["身份证号", "姓名"])
        writer.writerows([p.id_no, p.name] for p in persons)
    return {LEGAL_PERSONS_CSV: len(organisations), PERSONS_CSV: len(persons)}


def manifest_entry(item: Submission) -> dict[str, Any]:
    """What a test or benchmark needs to reconcile one item with what the federation made of it."""
    return {
        "record_id": item.record_id,
        "version": item.version,
        "kind": item.kind,
        "department": item.department.id,
        "expect": item.expect,
        "flags": sorted(item.flags),
        "fault": item.fault,
        "expected_issue": list(item.expected_issue) if item.expected_issue else None,
        "tiers": sorted(item.tiers),
    }


class TemplateFiles:
    """One template file per department and kind (`<department id>-<kind>.csv|xlsx`), rows in generation order,
    plus `manifest.jsonl`: file, row number (as an editor shows it: the header is row 1) and the expectation."""

    def __init__(self, out_dir: Path, fmt: str = "csv") -> None:
        if fmt not in ("csv", "xlsx"):
            raise ValueError(f"unknown file format {fmt!r}; expected csv or xlsx")
        out_dir.mkdir(parents=True, exist_ok=True)
        self.out_dir, self.fmt = out_dir, fmt
        self._rows: dict[str, list[list[str]]] = {}
        self._kinds: dict[str, str] = {}
        self._manifest = (out_dir / MANIFEST).open("w", encoding="utf-8")

    def add(self, item: Submission) -> None:
        name = f"{item.department.id}-{item.kind}.{self.fmt}"
        rows = self._rows.setdefault(name, [])
        self._kinds[name] = item.kind
        rows.append(list(item.row().values()))
        entry = {"file": name, "row": len(rows) + 1, **manifest_entry(item)}
        self._manifest.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def add_all(self, items: Iterable[Submission]) -> None:
        for item in items:
            self.add(item)

    def close(self) -> list[Path]:
        """Write the files; returns their paths."""
        self._manifest.close()
        paths = []
        for name, rows in sorted(self._rows.items()):
            path = self.out_dir / name
            header = template_columns(self._kinds[name])
            if self.fmt == "csv":
                with path.open("w", encoding="utf-8-sig", newline="") as fh:  # the BOM Excel needs for UTF-8
                    writer = csv.writer(fh)
                    writer.writerow(header)
                    writer.writerows(rows)
            else:
                import openpyxl

                book = openpyxl.Workbook(write_only=True)
                sheet = book.create_sheet(self._kinds[name])
                sheet.append(header)
                for row in rows:
                    sheet.append(row)
                book.save(path)
            paths.append(path)
        return paths
