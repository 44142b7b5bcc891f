"""The codes that identify subjects and places, and their check characters (D3, D1/D2 division codes):
统一社会信用代码 (GB 32100-2015), 居民身份证号 (GB 11643-1999), 组织机构代码 (GB 11714) and the six-digit
division codes of GB/T 2260 (the table in sgs/data/gb2260.tsv). Each `*_issues` function returns what is wrong
with one value, as `Issue`s naming the column it came from."""

from __future__ import annotations

import datetime
import re
from functools import cache, lru_cache
from pathlib import Path

from stdnum.cn import ric, uscc

from sgs.domain.issues import Issue, quote

MAX_AGE_YEARS = 120
_DIVISIONS = Path(__file__).resolve().parent.parent / "data" / "gb2260.tsv"
_ORG_CODE = re.compile(r"^([0-9A-Z]{8})-?([0-9X])$")
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_RIC = re.compile(r"^[0-9]{17}[0-9X]$")
_USCC_ALPHABET = frozenset("0123456789ABCDEFGHJKLMNPQRTUWXY")  # GB 32100-2015 (no I, O, Z, S, V)


@cache
def _division_table() -> dict[str, bool]:
    """code -> in use today, from sgs/data/gb2260.tsv (GB/T 2260; source and date in its header)."""
    table: dict[str, bool] = {}
    for line in _DIVISIONS.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line:
            continue
        code, _name, _start, end = line.split("\t")
        table[code] = table.get(code, False) or not end
    return table


def is_division_code(code: str, *, include_abolished: bool = False) -> bool:
    """True when `code` is a six-digit GB/T 2260 division code in use today (or ever, with include_abolished)."""
    in_use = _division_table().get(code)
    return in_use is not None and (in_use or include_abolished)


def org_code_check_char(body: str) -> str:
    """GB 11714 check character of the 8-character body of an 组织机构代码 (weights 3,7,9,10,5,8,4,2, mod 11)."""
    total = sum(int(c, 36) * w for c, w in zip(body, _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


@lru_cache(maxsize=4096)  # authorities and source units repeat on every row of a file
def uscc_issues(column: str, value: str) -> tuple[Issue, ...]:
    """GB 32100-2015: 18 characters of its alphabet, the last a check character."""
    code = value.strip().upper()
    if len(code) != 18 or not code[:8].isdigit() or any(c not in _USCC_ALPHABET for c in code[8:]):
        message = "统一社会信用代码应为18位数字或大写字母（不含 I、O、Z、S、V）"
        return (Issue(column, "uscc.format", message, quote(value)),)
    if code[-1] != uscc.calc_check_digit(code[:17]):
        return (
            Issue(column, "uscc.check_char", "统一社会信用代码校验码错误（GB 32100-2015）", quote(value)),
        )
    return ()


def ric_issues(column: str, value: str, today: datetime.date) -> list[Issue]:
    """GB 11643-1999 居民身份证号: 18 characters, ISO 7064 MOD 11-2 check character, a plausible birth date."""
    number = value.strip().upper()
    if not _RIC.match(number):
        return [Issue(column, "ric.format", "居民身份证号应为18位（前17位数字，末位数字或X）", quote(value))]
    issues = []
    if number[-1] != ric.calc_check_digit(number):
        issues.append(
            Issue(column, "ric.check_char", "居民身份证号校验码错误（GB 11643-1999）", quote(value))
        )
    try:
        born = datetime.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        born = None
    if born is None or born > today or (today.year - born.year) > MAX_AGE_YEARS:
        issues.append(
            Issue(
                column,
                "id.birth_date",
                f"居民身份证号中的出生日期不存在、晚于今日或早于{MAX_AGE_YEARS}年前",
                quote(value),
            )
        )
    if not is_division_code(number[:6], include_abolished=True) and number[:2] not in ("81", "82", "83"):
        issues.append(
            Issue(column, "id.region", "居民身份证号前六位不是行政区划代码（GB/T 2260）", quote(value))
        )
    return issues


def org_code_issues(column: str, value: str) -> list[Issue]:
    m = _ORG_CODE.match(value.strip().upper())
    if m is None:
        return [
            Issue(
                column,
                "org_code.format",
                "组织机构代码应为8位数字或大写字母加1位校验码（如 12345678-9）",
                quote(value),
            )
        ]
    if org_code_check_char(m.group(1)) != m.group(2):
        return [Issue(column, "org_code.check_char", "组织机构代码校验码错误（GB 11714）", quote(value))]
    return []
