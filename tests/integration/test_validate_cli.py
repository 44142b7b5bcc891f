"""`sgs validate` as a user runs it: a real process, JSON lines on stdout, exit codes 0 / 1 / 2 (D12)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import openpyxl

from sgs.domain.template import template_columns
from tests.support.paths import REPO

EXAMPLES = REPO / "docs" / "examples"


def sgs_validate(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sgs", "validate", "--today", "2024-12-31", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def lines(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines()]


def test_valid_files_exit_0_with_one_object_per_record() -> None:
    result = sgs_validate("--kind", "penalty", EXAMPLES / "penalty-valid.csv")
    assert result.returncode == 0, result.stderr
    records = lines(result.stdout)
    assert [(r["row"], r["ok"], r["errors"]) for r in records] == [
        (2, True, []),
        (3, True, []),
        (4, True, []),
    ]
    assert records[0]["file"] == str(EXAMPLES / "penalty-valid.csv")


def test_invalid_records_exit_1_with_every_reason() -> None:
    result = sgs_validate(
        "--kind", "license", EXAMPLES / "license-valid.csv", EXAMPLES / "license-invalid.csv"
    )
    assert result.returncode == 1, result.stderr
    records = lines(result.stdout)
    assert len(records) == 6 and [r["ok"] for r in records] == [True] * 3 + [False] * 3
    first_bad = records[3]["errors"]
    assert isinstance(first_bad, list) and len(first_bad) >= 2
    assert set(first_bad[0]) == {"field", "rule", "message", "value"}
    rules = {(e["field"], e["rule"]) for r in records for e in r["errors"]}  # type: ignore[attr-defined]
    assert ("行政相对人代码_1(统一社会信用代码)", "uscc.check_char") in rules
    assert ("许可决定日期", "date.invalid") in rules


def test_xlsx_and_bom_csv_are_read(tmp_path: Path) -> None:
    with (EXAMPLES / "penalty-valid.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    bom = tmp_path / "bom.csv"
    bom.write_bytes("\n".join(",".join(r) for r in rows).encode("utf-8-sig"))
    wb = openpyxl.Workbook()
    for r in rows:
        wb.active.append(r)
    xlsx = tmp_path / "p.xlsx"
    wb.save(xlsx)
    result = sgs_validate("--kind", "penalty", bom, xlsx)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(lines(result.stdout)) == 6


def test_wrong_header_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    result = sgs_validate("--kind", "penalty", EXAMPLES / "license-valid.csv")
    assert result.returncode == 2
    assert "表头与行政处罚模板不符" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_wrong_encoding_exits_2(tmp_path: Path) -> None:
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes(",".join(template_columns("penalty")).encode("gbk"))
    result = sgs_validate("--kind", "penalty", gbk)
    assert result.returncode == 2 and "UTF-8" in result.stderr and "Traceback" not in result.stderr


def test_unknown_format_and_missing_file_exit_2_and_other_files_are_still_checked(tmp_path: Path) -> None:
    binary = tmp_path / "photo.bin"
    binary.write_bytes(b"\x00\x01\x02\xff" * 100)
    result = sgs_validate(
        "--kind", "penalty", binary, tmp_path / "missing.csv", EXAMPLES / "penalty-valid.csv"
    )
    assert result.returncode == 2
    assert "未知的文件格式" in result.stderr and "missing.csv" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines(result.stdout)) == 3


def test_usage_errors_exit_2() -> None:
    assert sgs_validate("--kind", "permit", EXAMPLES / "penalty-valid.csv").returncode == 2
    assert sgs_validate("--kind", "penalty").returncode == 2
    bad_today = subprocess.run(
        [
            sys.executable,
            "-m",
            "sgs",
            "validate",
            "--kind",
            "penalty",
            "--today",
            "tomorrow",
            str(EXAMPLES / "penalty-valid.csv"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad_today.returncode == 2 and "Traceback" not in bad_today.stderr


def test_a_large_file_streams_in_bounded_memory(tmp_path: Path) -> None:
    """A CSV bigger than the memory the check may use: rows are read, checked and written one at a time."""
    with (EXAMPLES / "penalty-valid.csv").open(encoding="utf-8", newline="") as fh:
        header, *rows = list(csv.reader(fh))
    facts = header.index("违法事实")
    big = tmp_path / "big.csv"
    with big.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for i in range(10_000):
            row = list(rows[i % len(rows)])
            row[facts] = f"第{i}条：" + "违法事实" * 750  # ~9 KB a row
            writer.writerow(row)
    file_kib = big.stat().st_size // 1024
    # VmHWM is this program's peak resident memory; ru_maxrss would include the parent's from before the fork
    code = (
        "import re, sys; from sgs.cli import main; rc = main(sys.argv[1:]); "
        "status = open('/proc/self/status').read(); "
        "print(re.search(r'VmHWM:\\s+(\\d+)', status).group(1), file=sys.stderr); sys.exit(rc)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "validate", "--kind", "penalty", "--today", "2024-12-31", str(big)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-500:]
    assert result.stdout.count("\n") == 10_000
    max_rss_kib = int(result.stderr.strip().splitlines()[-1])
    assert file_kib > 85_000 and max_rss_kib < file_kib, (max_rss_kib, file_kib)
