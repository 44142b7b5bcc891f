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
`license_suspension.required`, `date.floor` (a decision before DECISION_DATE_FLOOR), `publicity_end.too_late`
(公示截止期 beyond the longest publicity the rules allow, D14). Parsing (sgs.domain.records) adds `column.unknown`, `date.format`, `date.invalid`,
`row.columns`, `row.format`, and for every text cell `text.too_long` (over MAX_TEXT_CHARS) and `text.control`
(a control character such as NUL: it would end up in record ids and stores that refuse it). A record with more than
MAX_REASONS issues lists the first ones and then `reasons.truncated`.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sgs.domain.identifiers import org_code_issues, ric_issues, uscc_issues
from sgs.domain.issues import ROW, Issue, quote
from sgs.domain.template import (
    DATE,
    DECIMAL,
    ENUM,
    ENUM_ARRAY,
    STRING,
    TemplateField,
    field_by_name,
    template_fields,
)

if TYPE_CHECKING:
    from sgs.domain.rulebook import RuleBook

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
# A bound of our own (the seeds set none), far above any real cell, so that one record can never outgrow a message
# (sgs.kafka.topics.MAX_MESSAGE_BYTES): every text cell at most MAX_TEXT_CHARS characters.
MAX_TEXT_CHARS = 5000
# No decision predates this (our floor; the seeds set none): 双公示 publishes decisions still in force, and the
# oldest laws they rest on, 《行政处罚法》 (1996) and 《行政许可法》 (2004), are later. It keeps dates like 0001-01-01
# out, which overflow time zone arithmetic and would publish nonsense.
DECISION_DATE_FLOOR = datetime.date(1990, 1, 1)
# C0 controls but tab and line breaks (a long 违法事实 may keep its paragraphs), DEL and the C1 controls.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def text_issue(column: str, text: str) -> Issue | None:
    """A text cell too long for any message, or carrying a control character (NUL, ESC, ...): it would end up in
    record ids and in stores that refuse it. Held back at upload with its reason, like every other defect (D12)."""
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
        self.body = body
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


def validate(
    kind: str, body: dict[str, Any], *, today: datetime.date | None = None, rules: RuleBook | None = None
) -> list[Issue]:
    """Every issue of an Avro-shaped licence or penalty record (envelope and annotations are ignored). `rules`, the
    federation's rule book, bounds a stated 公示截止期 by the set in force on the decision date (without it, that
    check is not made)."""
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
            check.extend(name, uscc_issues(check.column(name), check.values[name]))
    _date_rules(kind, check, today, rules)
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
            check.extend("uscc", uscc_issues(check.column("uscc"), v["uscc"]))
        if check.has("org_code"):
            check.extend("org_code", org_code_issues(check.column("org_code"), v["org_code"]))
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
            check.extend(no_name, ric_issues(check.column(no_name), v[no_name], today))


def _date_rules(kind: str, check: _Check, today: datetime.date, rules: RuleBook | None) -> None:
    """Dates in order (decision <= validity start <= validity end), no decision in the future or before the floor,
    and no publicity longer than the rules allow (D14)."""
    v = check.values
    if check.has("decided_on") and v["decided_on"] < DECISION_DATE_FLOOR:
        check.add(
            "decided_on",
            "date.floor",
            f"{check.column('decided_on')}早于 {DECISION_DATE_FLOOR.isoformat()} / before {DECISION_DATE_FLOOR}",
            v["decided_on"],
        )
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
    # the rule book rules on the record's facts, so only on facts that passed their checks; a record whose tier
    # cannot be told is held to its set's limit for any tier
    longest = None
    if rules is not None and kind == "penalty" and check.has("decided_on") and check.has("publicity_end"):
        ruled = all(check.has(name) for name in ("severity", "procedure", "category"))
        longest = (
            rules.longest_publicity(kind, check.body) if ruled else rules.stated_end_limit(v["decided_on"])
        )
    if longest is not None and v["publicity_end"] > longest:
        check.add(
            "publicity_end",
            "publicity_end.too_late",
            f"{check.column('publicity_end')}晚于规则允许的最长公示期（至 {longest.isoformat()}，D14）/ "
            f"later than the longest publicity the rules allow ({longest})",
            v["publicity_end"].isoformat(),
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


# The fields that say who decided and who supplied a record or a decision, with the department's attribute each
# must equal: 许可机关/处罚机关/决定机关 and 数据来源单位, name and 统一社会信用代码.
_OWN_FIELDS = (
    ("authority", "name"),
    ("authority_uscc", "uscc"),
    ("source_unit", "name"),
    ("source_unit_uscc", "uscc"),
)


def authority_issues(body: dict[str, Any], name: str, uscc: str) -> list[Issue]:
    """D10, "谁产生、谁公示、谁负责": a department reports only what it decided itself, so the deciding authority and
    the data source unit, by name and by code, are the department's own as the federation config names it
    (`name`, `uscc`); rule `authority.forbidden`. A field the body leaves empty claims no one (issue 16)."""
    own = {"name": name, "uscc": uscc.upper()}
    issues = []
    for field_name, attribute in _OWN_FIELDS:
        value = body.get(field_name)
        if value is None or value == "":
            continue
        given = value.strip().upper() if attribute == "uscc" and isinstance(value, str) else value
        if given != own[attribute]:
            issues.append(
                Issue(
                    field_name,
                    "authority.forbidden",
                    f"只能报送本机关作出并提供的决定：应为「{own[attribute]}」",
                    quote(value),
                )
            )
    return issues
