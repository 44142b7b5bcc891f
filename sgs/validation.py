"""Edge quality control (质量控制): every reason a licence or penalty record does not meet the national standard.

D12: data that does not meet the standard is held back at upload and the unit that produced it is told why, so it
can correct and resubmit. `validate` therefore returns *every* issue of a record, never only the first, and each
issue names the template column (Chinese), a stable rule id and a Chinese message.

Required columns by counterpart category (行政相对人类别, D1-D3; after the field notes of the national template):

| column                              | 法人及非法人组织 | 自然人    | 个体工商户                     |
|-------------------------------------|------------------|-----------|--------------------------------|
| 行政相对人名称, 行政相对人类别      | required         | required  | required                       |
| 行政相对人代码_1(统一社会信用代码)  | required         | must be empty | required (17 个 0 + X allowed while it has none; then 工商注册号 required) |
| 行政相对人代码_2 .. _6              | optional         | must be empty | optional                   |
| 法定代表人                          | required         | must be empty | required (经营者姓名)       |
| 法定代表人证件类型 / 证件号码      | optional, both or neither | must be empty | optional, both or neither |
| 证件类型, 证件号码                  | must be empty    | required  | must be empty                  |

Every other column is required or optional as its Avro schema says (a non-null type is required). Rule ids:
`required`, `type`, `enum`, `enum.duplicate`, `category.not_applicable`, `natural_person.uscc`, `uscc.format`,
`uscc.check_char`, `ric.format`, `ric.check_char`, `id.birth_date`, `id.region`, `org_code.format`,
`org_code.check_char`, `org_code.mismatch`, `date.future`, `date.order`, `amount.format`, `amount.negative`,
`amount.scale`, `amount.range`, `fine.amount_required`, `confiscation.amount_required`,
`license_suspension.required`. Parsing (sgs.records) adds `column.unknown`, `date.format`, `date.invalid`,
`row.columns`, `row.format`, and for every text cell `text.too_long` (over MAX_TEXT_CHARS) and `text.control`
(a control character such as NUL: it would end up in record ids and stores that refuse it). A record with more than
MAX_REASONS issues lists the first ones and then `reasons.truncated`.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from stdnum.cn import ric, uscc

from sgs.template import (
    DATE,
    DECIMAL,
    ENUM,
    ENUM_ARRAY,
    STRING,
    TemplateField,
    field_by_name,
    template_fields,
)

ROW = "(row)"  # the field of an issue about the record as a whole
MAX_VALUE_CHARS = (
    200  # an offending value is quoted up to this length, so a hostile cell cannot bloat a reason
)

# 证件类型 code list of the national template; the first two carry GB 11643 numbers (港澳台居民居住证 too).
ID_TYPES = (
    "身份证",
    "护照号",
    "港澳居民来往内地通行证",
    "台湾居民来往大陆通行证",
    "外国人永久居留身份证",
    "港澳台居民居住证",
)
RIC_ID_TYPES = ("身份证", "港澳台居民居住证")
# A 个体工商户 without a 统一社会信用代码 yet may fill 17 zeros + X (national template note), with its 工商注册号.
INDIVIDUAL_BUSINESS_PLACEHOLDER = "00000000000000000X"
MAX_AGE_YEARS = 120
# Bounds of our own (the seeds set none), far above any real cell, so that one record can never outgrow a message
# (sgs.topics.MAX_MESSAGE_BYTES): every text cell at most MAX_TEXT_CHARS characters, at most MAX_REASONS reasons.
MAX_TEXT_CHARS = 5000
MAX_REASONS = 50
# C0 controls but tab and line breaks (a long 违法事实 may keep its paragraphs), DEL and the C1 controls.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

_DIVISIONS = Path(__file__).resolve().parent / "data" / "gb2260.tsv"
_ORG_CODE = re.compile(r"^([0-9A-Z]{8})-?([0-9X])$")
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_RIC = re.compile(r"^[0-9]{17}[0-9X]$")
_USCC_ALPHABET = frozenset("0123456789ABCDEFGHJKLMNPQRTUWXY")  # GB 32100-2015 (no I, O, Z, S, V)


@dataclass(frozen=True)
class Issue:
    """One reason a record does not meet the standard (an `sgs.Reason`)."""

    field: str  # template column name (Chinese), or ROW
    rule: str  # stable rule id
    message: str  # Chinese message
    value: str | None = None

    def as_reason(self) -> dict[str, Any]:
        """The `sgs.Reason` Avro record."""
        return {"field": self.field, "rule": self.rule, "message": self.message, "value": self.value}


def quote(value: Any) -> str | None:
    """The offending value as text, cut to MAX_VALUE_CHARS."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + "…"


def text_issue(column: str, text: str) -> Issue | None:
    """A text cell too long for any message, or carrying a control character (NUL, ESC, ...)."""
    if len(text) > MAX_TEXT_CHARS:
        return Issue(
            column,
            "text.too_long",
            f"{column}超过 {MAX_TEXT_CHARS} 个字符（{len(text)} 个）/ longer than {MAX_TEXT_CHARS} characters",
            quote(text),
        )
    found = _CONTROL.search(text)
    if found is not None:
        return Issue(
            column,
            "text.control",
            f"{column}含控制字符 U+{ord(found.group()):04X}（第 {found.start() + 1} 个字符），请删除",
            quote(_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)),
        )
    return None


def bounded(issues: list[Issue]) -> list[Issue]:
    """At most MAX_REASONS issues: the first ones, then one saying how many more there are (D12 wants every reason,
    but a record of a million unknown columns must not make a rejection larger than a message)."""
    if len(issues) <= MAX_REASONS:
        return issues
    more = len(issues) - (MAX_REASONS - 1)
    return [
        *issues[: MAX_REASONS - 1],
        Issue(ROW, "reasons.truncated", f"另有 {more} 个问题未列出", str(more)),
    ]


# --- code lists and check characters -------------------------------------------------------------------------


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
def _uscc_issues(column: str, value: str) -> tuple[Issue, ...]:
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


def _ric_issues(column: str, value: str, today: datetime.date) -> list[Issue]:
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


def _org_code_issues(column: str, value: str) -> list[Issue]:
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


# --- the record ------------------------------------------------------------------------------------------------


def _get(body: dict[str, Any], f: TemplateField) -> Any:
    if len(f.path) == 1:
        return body.get(f.path[0])
    inner = body.get(f.path[0])
    return inner.get(f.path[1]) if isinstance(inner, dict) else None


def _type_ok(f: TemplateField, value: Any) -> bool:
    if f.type == STRING:
        return isinstance(value, str)
    if f.type == DATE:
        return isinstance(value, datetime.date) and not isinstance(value, datetime.datetime)
    if f.type == DECIMAL:
        return isinstance(value, Decimal)
    if f.type == ENUM:
        return isinstance(value, str)
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _present(value: Any) -> bool:
    return value is not None and value != [] and not (isinstance(value, str) and not value.strip())


class _Check:
    """The values of one record by Avro field name, and the issues found so far."""

    def __init__(self, kind: str, body: dict[str, Any]) -> None:
        self.fields = field_by_name(kind)
        self.values: dict[str, Any] = {}
        self.issues: list[Issue] = []
        self.bad: set[str] = set()  # fields already reported, so one mistake gives one issue per field
        for f in template_fields(kind):
            value = _get(body, f)
            if not _present(value):
                if not f.nullable:
                    self.add(f.name, "required", f"{f.column}为必填项", None)
                continue
            if not _type_ok(f, value):
                self.add(f.name, "type", f"{f.column}的值类型不对（应为 {f.type}）", value)
                continue
            if f.type == ENUM and value not in f.symbols:
                self.add(f.name, "enum", f"{f.column}应为：{'；'.join(f.labels.values())}", value)
                continue
            if f.type == ENUM_ARRAY:
                unknown = [v for v in value if v not in f.symbols]
                if unknown:
                    self.add(
                        f.name, "enum", f"{f.column}应为：{'；'.join(f.labels.values())}", ";".join(unknown)
                    )
                    continue
                if len(set(value)) != len(value):
                    self.add(f.name, "enum.duplicate", f"{f.column}有重复的值", ";".join(value))
            self.values[f.name] = value

    def add(self, name: str, rule: str, message: str, value: Any) -> None:
        self.issues.append(Issue(self.fields[name].column, rule, message, quote(value)))
        self.bad.add(name)

    def has(self, name: str) -> bool:
        return name in self.values and name not in self.bad

    def column(self, name: str) -> str:
        return self.fields[name].column

    def extend(self, name: str, issues: Iterable[Issue]) -> None:
        for issue in issues:
            self.issues.append(issue)
            self.bad.add(name)


def validate(kind: str, body: dict[str, Any], *, today: datetime.date | None = None) -> list[Issue]:
    """Every issue of an Avro-shaped licence or penalty record (envelope and annotations are ignored)."""
    if not isinstance(body, dict):
        return [Issue(ROW, "type", "记录应为对象（字段名到值）", quote(type(body).__name__))]
    today = today or datetime.date.today()
    check = _Check(kind, body)
    counterpart = body.get("counterpart")
    if counterpart is not None and not isinstance(counterpart, dict):
        check.issues.append(Issue(ROW, "type", "counterpart 应为对象", quote(type(counterpart).__name__)))
    _counterpart_rules(check, today)
    for name in ("authority_uscc", "source_unit_uscc"):
        if check.has(name):
            check.extend(name, _uscc_issues(check.column(name), check.values[name]))
    _date_rules(kind, check, today)
    if kind == "penalty":
        _penalty_rules(check)
    return check.issues


def _counterpart_rules(check: _Check, today: datetime.date) -> None:
    """D3 and the category table of the module docstring."""
    v = check.values
    category = v.get("category") if check.has("category") else None
    if category == "NATURAL_PERSON":
        if "uscc" in v:
            check.add("uscc", "natural_person.uscc", "自然人不应填写统一社会信用代码", v["uscc"])
        for name in ("business_reg_no", "org_code", "tax_reg_no", "institution_cert_no", "social_org_reg_no",
                     "legal_rep", "legal_rep_id_type", "legal_rep_id_no"):  # fmt: skip
            if name in v:
                check.add(
                    name,
                    "category.not_applicable",
                    f"行政相对人为自然人时{check.column(name)}应为空",
                    v[name],
                )
        for name in ("id_type", "id_no"):
            if name not in v and name not in check.bad:
                check.add(name, "required", f"行政相对人为自然人时{check.column(name)}为必填项", None)
    elif category in ("LEGAL_PERSON", "INDIVIDUAL_BUSINESS"):
        label = check.fields["category"].labels[category]
        for name in ("uscc", "legal_rep"):
            if name not in v and name not in check.bad:
                check.add(name, "required", f"行政相对人为{label}时{check.column(name)}为必填项", None)
        for name in ("id_type", "id_no"):
            if name in v:
                check.add(
                    name,
                    "category.not_applicable",
                    f"行政相对人为{label}时{check.column(name)}应为空",
                    v[name],
                )
        for pair in (("legal_rep_id_type", "legal_rep_id_no"), ("legal_rep_id_no", "legal_rep_id_type")):
            if pair[0] in v and pair[1] not in v and pair[1] not in check.bad:
                check.add(
                    pair[1], "required", f"填写{check.column(pair[0])}时{check.column(pair[1])}为必填项", None
                )
        placeholder = category == "INDIVIDUAL_BUSINESS" and v.get("uscc", "").strip().upper() == (
            INDIVIDUAL_BUSINESS_PLACEHOLDER
        )
        if placeholder:
            if "business_reg_no" not in v and "business_reg_no" not in check.bad:
                check.add(
                    "business_reg_no",
                    "required",
                    "个体工商户统一社会信用代码填写17个0加X时工商注册号为必填项",
                    None,
                )
        elif check.has("uscc"):
            check.extend("uscc", _uscc_issues(check.column("uscc"), v["uscc"]))
        if check.has("org_code"):
            check.extend("org_code", _org_code_issues(check.column("org_code"), v["org_code"]))
        if check.has("org_code") and check.has("uscc") and not placeholder:
            embedded = v["uscc"].strip().upper()[8:17]
            if v["org_code"].strip().upper().replace("-", "") != embedded:
                check.add(
                    "org_code",
                    "org_code.mismatch",
                    "组织机构代码与统一社会信用代码第9-17位不一致",
                    v["org_code"],
                )
    for type_name, no_name in (("id_type", "id_no"), ("legal_rep_id_type", "legal_rep_id_no")):
        if not check.has(type_name):
            continue
        id_type = v[type_name].strip()
        if id_type not in ID_TYPES:
            check.add(
                type_name, "enum", f"{check.column(type_name)}应为：{'；'.join(ID_TYPES)}", v[type_name]
            )
        elif id_type in RIC_ID_TYPES and check.has(no_name):
            check.extend(no_name, _ric_issues(check.column(no_name), v[no_name], today))


def _date_rules(kind: str, check: _Check, today: datetime.date) -> None:
    """Dates in order (decision <= validity start <= validity end) and no decision in the future."""
    v = check.values
    if check.has("decided_on") and v["decided_on"] > today:
        check.add(
            "decided_on",
            "date.future",
            f"{check.column('decided_on')}晚于今日（{today.isoformat()}）",
            v["decided_on"],
        )
    order = (
        [("decided_on", "valid_from"), ("valid_from", "valid_to"), ("decided_on", "valid_to")]
        if kind == "license"
        else [("decided_on", "valid_to"), ("decided_on", "publicity_end")]
    )
    for earlier, later in order:
        if check.has(earlier) and check.has(later) and v[earlier] > v[later]:
            check.add(
                later,
                "date.order",
                f"{check.column(later)}早于{check.column(earlier)}（{v[earlier].isoformat()}）",
                v[later].isoformat(),
            )


def _penalty_rules(check: _Check) -> None:
    """Amounts (万元, at most 6 decimals, D2) and what each 处罚类别 needs."""
    v = check.values
    for name in ("fine_amount", "confiscated_amount"):
        if check.has(name):
            f = check.fields[name]
            check.extend(name, amount_issues(f.column, v[name], f.precision, f.scale))
    types = v.get("penalty_types", []) if check.has("penalty_types") else []
    needs = (
        ("FINE", "fine_amount", "fine.amount_required"),
        ("CONFISCATION", "confiscated_amount", "confiscation.amount_required"),
        ("LICENSE_SUSPENSION_OR_REVOCATION", "license_suspended", "license_suspension.required"),
    )
    for symbol, name, rule in needs:
        if symbol in types and name not in v and name not in check.bad:
            label = check.fields["penalty_types"].labels[symbol]
            check.add(name, rule, f"处罚类别含“{label}”时{check.column(name)}为必填项", None)


def amount_issues(column: str, value: Decimal, precision: int = 18, scale: int = 6) -> list[Issue]:
    """An amount in 万元: finite, not negative, at most `scale` decimals, fits decimal(precision, scale)."""
    if not value.is_finite():
        return [Issue(column, "amount.format", "金额应为数字", quote(value))]
    if value < 0:
        return [Issue(column, "amount.negative", "金额不能为负数", quote(value))]
    if value != 0 and value.adjusted() >= precision - scale:
        return [
            Issue(column, "amount.range", f"金额超出范围（整数部分至多{precision - scale}位）", quote(value))
        ]
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -scale:
        return [Issue(column, "amount.scale", f"金额（万元）至多{scale}位小数", quote(value))]
    return []
