"""Edge quality control (D12): every rule of sgs.domain.validation with a passing and a failing example."""

from __future__ import annotations

import copy
import datetime
from decimal import Decimal
from typing import Any

import pytest
from stdnum.cn import ric, uscc

from sgs.domain.identifiers import is_division_code, org_code_check_char
from sgs.domain.issues import Issue
from sgs.domain.validation import validate
from sgs.serialization.codec import default_codec

TODAY = datetime.date(2024, 12, 31)
AUTHORITY = "113101010010100169"  # 黄浦区市场监督管理局 in federation.toml
COMPANY = "91310101MA1FP0009D"  # embeds the organisation code MA1FP000-9
PERSON = "31010119800101123X"


def make_uscc(first17: str) -> str:
    return first17 + uscc.calc_check_digit(first17)


def make_ric(first17: str) -> str:
    return first17 + ric.calc_check_digit(first17 + "0")


def counterpart(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = dict.fromkeys(
        ["uscc", "business_reg_no", "org_code", "tax_reg_no", "institution_cert_no", "social_org_reg_no",
         "legal_rep", "legal_rep_id_type", "legal_rep_id_no", "id_type", "id_no"]
    )  # fmt: skip
    base.update(name="上海示例有限公司", category="LEGAL_PERSON", uscc=COMPANY, legal_rep="王明")
    base.update(over)
    return base


def natural_person(**over: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"name": "李华", "category": "NATURAL_PERSON", "uscc": None, "legal_rep": None}
    fields.update(id_type="身份证", id_no=PERSON)
    fields.update(over)
    return counterpart(**fields)


def licence(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "counterpart": counterpart(),
        "decision_doc_name": None,
        "decision_doc_no": "沪黄市监许〔2024〕0001号",
        "license_category": "ORDINARY",
        "license_cert_name": None,
        "license_no": None,
        "license_content": "预包装食品销售",
        "decided_on": datetime.date(2024, 3, 5),
        "valid_from": datetime.date(2024, 3, 5),
        "valid_to": datetime.date(2029, 3, 4),
        "authority": "黄浦区市场监督管理局",
        "authority_uscc": AUTHORITY,
        "status": "NORMAL",
        "source_unit": "黄浦区市场监督管理局",
        "source_unit_uscc": AUTHORITY,
        "remarks": None,
    }
    body.update(over)
    return body


def penalty(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "counterpart": counterpart(),
        "decision_doc_no": "沪市监黄处〔2024〕0001号",
        "violation_type": "发布虚假广告",
        "violation_facts": "当事人发布含有虚假内容的广告。",
        "legal_basis": "《中华人民共和国广告法》第五十五条",
        "penalty_types": ["WARNING", "FINE"],
        "penalty_content": "警告，罚款壹万伍仟元",
        "fine_amount": Decimal("1.5"),
        "confiscated_amount": None,
        "license_suspended": None,
        "decided_on": datetime.date(2024, 4, 1),
        "valid_to": None,
        "publicity_end": datetime.date(2025, 4, 1),
        "authority": "黄浦区市场监督管理局",
        "authority_uscc": AUTHORITY,
        "source_unit": "黄浦区市场监督管理局",
        "source_unit_uscc": AUTHORITY,
        "remarks": None,
        "procedure": "GENERAL",
        "severity": "GENERAL",
    }
    body.update(over)
    return body


def found(kind: str, body: dict[str, Any]) -> set[tuple[str, str]]:
    return {(i.field, i.rule) for i in validate(kind, body, today=TODAY)}


CP_USCC = "行政相对人代码_1(统一社会信用代码)"
CP_ORG = "行政相对人代码_3(组织机构代码)"


def test_valid_licence_and_penalty_have_no_issues() -> None:
    assert validate("license", licence(), today=TODAY) == []
    assert validate("penalty", penalty(), today=TODAY) == []
    assert validate("penalty", penalty(counterpart=natural_person()), today=TODAY) == []


def test_envelope_and_annotations_are_ignored() -> None:
    assert validate("license", licence(envelope={"anything": 1}, annotations=None), today=TODAY) == []


def test_every_issue_is_reported_not_only_the_first() -> None:
    body = licence(
        license_content=None, authority_uscc="12345", status="BOGUS", decided_on=datetime.date(2025, 1, 1)
    )
    assert found("license", body) >= {
        ("许可内容", "required"),
        ("许可机关统一社会信用代码", "uscc.format"),
        ("当前状态", "enum"),
        ("许可决定日期", "date.future"),
    }


def test_required_fields_come_from_the_schema() -> None:
    body = licence()
    del body["decision_doc_no"]
    assert ("行政许可决定文书号", "required") in found("license", body)
    assert ("违法事实", "required") in found("penalty", penalty(violation_facts="  "))
    assert ("处罚类别", "required") in found("penalty", penalty(penalty_types=[]))


def test_wrong_value_types_are_issues_not_exceptions() -> None:
    body = licence(decided_on="2024-03-05", license_content=42)
    assert found("license", body) >= {("许可决定日期", "type"), ("许可内容", "type")}
    assert ("罚款金额(万元)", "type") in found("penalty", penalty(fine_amount=1.5))
    assert [i.rule for i in validate("license", [], today=TODAY)] == ["type"]  # type: ignore[arg-type]
    assert ("(row)", "type") in found("license", licence(counterpart="x"))


@pytest.mark.parametrize(
    ("kind", "field", "column", "bad"),
    [
        ("license", "license_category", "许可类别", "普通许可"),
        ("license", "status", "当前状态", "NORMALISH"),
        ("penalty", "procedure", "程序类型", "快速程序"),
        ("penalty", "severity", "失信严重程度", "很严重"),
        ("penalty", "penalty_types", "处罚类别", ["WARNING", "PRISON"]),
    ],
)
def test_closed_code_lists(kind: str, field: str, column: str, bad: Any) -> None:
    make = licence if kind == "license" else penalty
    assert (column, "enum") in found(kind, make(**{field: bad}))


def test_counterpart_category_is_a_closed_code_list() -> None:
    assert ("行政相对人类别", "enum") in found("license", licence(counterpart=counterpart(category="企业")))


def test_id_type_is_a_closed_code_list() -> None:
    assert ("证件类型", "enum") in found("license", licence(counterpart=natural_person(id_type="驾驶证")))
    passport = natural_person(id_type="护照号", id_no="E12345678")
    assert found("license", licence(counterpart=passport)) == set()


def test_duplicate_penalty_types_are_an_issue() -> None:
    assert ("处罚类别", "enum.duplicate") in found("penalty", penalty(penalty_types=["FINE", "FINE"]))


def test_natural_person_carries_no_uscc_and_needs_an_id() -> None:
    assert (CP_USCC, "natural_person.uscc") in found(
        "license", licence(counterpart=natural_person(uscc=COMPANY))
    )
    no_id = natural_person(id_type=None, id_no=None)
    assert found("license", licence(counterpart=no_id)) == {
        ("证件类型", "required"),
        ("证件号码", "required"),
    }


def test_natural_person_has_no_organisation_fields() -> None:
    cp = natural_person(legal_rep="王明", org_code="MA1FP000-9")
    assert found("license", licence(counterpart=cp)) == {
        ("法定代表人", "category.not_applicable"),
        (CP_ORG, "category.not_applicable"),
    }


def test_legal_person_needs_uscc_and_legal_representative() -> None:
    cp = counterpart(uscc=None, legal_rep=None)
    assert found("license", licence(counterpart=cp)) == {(CP_USCC, "required"), ("法定代表人", "required")}


def test_legal_person_carries_no_personal_id() -> None:
    cp = counterpart(id_type="身份证", id_no=PERSON)
    assert found("license", licence(counterpart=cp)) == {
        ("证件类型", "category.not_applicable"),
        ("证件号码", "category.not_applicable"),
    }


def test_legal_representative_id_type_and_number_go_together_and_are_checked() -> None:
    ok = counterpart(legal_rep_id_type="身份证", legal_rep_id_no=PERSON)
    assert found("license", licence(counterpart=ok)) == set()
    half = counterpart(legal_rep_id_type="身份证")
    assert found("license", licence(counterpart=half)) == {("法定代表人证件号码", "required")}
    bad = counterpart(legal_rep_id_type="身份证", legal_rep_id_no=PERSON[:-1] + "1")
    assert ("法定代表人证件号码", "ric.check_char") in found("license", licence(counterpart=bad))


def test_individual_business_may_use_the_placeholder_code_with_a_registration_number() -> None:
    ib = counterpart(
        category="INDIVIDUAL_BUSINESS", uscc="00000000000000000X", business_reg_no="310101600123456"
    )
    assert found("license", licence(counterpart=ib)) == set()
    ib_without = counterpart(category="INDIVIDUAL_BUSINESS", uscc="00000000000000000X")
    assert found("license", licence(counterpart=ib_without)) == {("行政相对人代码_2(工商注册号)", "required")}
    # the placeholder is not a code for a legal person
    lp = counterpart(uscc="00000000000000000X", business_reg_no="310101600123456")
    assert (CP_USCC, "uscc.check_char") in found("license", licence(counterpart=lp))


@pytest.mark.parametrize("code", ["91110000600037341L", "914403001922038216", "9144030071526726XG", COMPANY])
def test_uscc_check_character_accepts_published_codes(code: str) -> None:
    assert found("license", licence(counterpart=counterpart(uscc=code))) == set()


@pytest.mark.parametrize(
    ("field", "column"),
    [("authority_uscc", "许可机关统一社会信用代码"), ("source_unit_uscc", "数据来源单位统一社会信用代码")],
)
def test_uscc_check_character_of_authority_and_source_unit(field: str, column: str) -> None:
    assert (column, "uscc.check_char") in found("license", licence(**{field: AUTHORITY[:-1] + "8"}))
    assert (column, "uscc.format") in found("license", licence(**{field: "11310101001010016I"}))
    assert (column, "uscc.format") in found("license", licence(**{field: "1131"}))


def test_uscc_check_character_of_counterpart() -> None:
    assert (CP_USCC, "uscc.check_char") in found(
        "license", licence(counterpart=counterpart(uscc=COMPANY[:-1] + "0"))
    )
    assert (CP_USCC, "uscc.format") in found("license", licence(counterpart=counterpart(uscc="9131010")))


def test_resident_id_check_character() -> None:
    # GB 11643-1999's own example number
    assert ric.calc_check_digit("11010519491231002X") == "X"
    assert found("license", licence(counterpart=natural_person(id_no="11010519491231002X"))) == set()
    bad = natural_person(id_no="110105194912310021")
    assert found("license", licence(counterpart=bad)) == {("证件号码", "ric.check_char")}
    assert found("license", licence(counterpart=natural_person(id_no="1101051949123100"))) == {
        ("证件号码", "ric.format")
    }


@pytest.mark.parametrize("birth", ["20250101", "18900101", "19800230"])
def test_resident_id_birth_date_must_be_plausible(birth: str) -> None:
    cp = natural_person(id_no=make_ric("310101" + birth + "123"))
    assert found("license", licence(counterpart=cp)) == {("证件号码", "id.birth_date")}


def test_resident_id_region_must_be_a_division_code() -> None:
    assert found("license", licence(counterpart=natural_person(id_no=make_ric("99999919800101123")))) == {
        ("证件号码", "id.region")
    }
    # a code abolished since (卢湾区, 2011) stays valid in the numbers issued there
    assert found("license", licence(counterpart=natural_person(id_no=make_ric("31010319800101123")))) == set()


@pytest.mark.parametrize(
    ("body", "check"),
    # published codes: the 9th-17th characters of a USCC are the organisation code (GB 32100-2015)
    [("60003734", "1"), ("19220382", "1"), ("71526726", "X"), ("71610585", "2")],
)
def test_org_code_check_character_matches_published_codes(body: str, check: str) -> None:
    assert org_code_check_char(body) == check


def test_org_code_is_checked_and_must_match_the_uscc() -> None:
    assert found("license", licence(counterpart=counterpart(org_code="MA1FP000-9"))) == set()
    assert found("license", licence(counterpart=counterpart(org_code="MA1FP0009"))) == set()
    assert found("license", licence(counterpart=counterpart(org_code="MA1FP000-1"))) == {
        (CP_ORG, "org_code.check_char")
    }
    assert found("license", licence(counterpart=counterpart(org_code="MA1FP-0"))) == {
        (CP_ORG, "org_code.format")
    }
    other = counterpart(org_code="60003734-1")
    assert found("license", licence(counterpart=other)) == {(CP_ORG, "org_code.mismatch")}


def test_decision_may_not_be_in_the_future() -> None:
    assert found("license", licence(decided_on=TODAY, valid_from=TODAY)) == set()
    tomorrow = TODAY + datetime.timedelta(days=1)
    assert ("许可决定日期", "date.future") in found(
        "license", licence(decided_on=tomorrow, valid_from=tomorrow)
    )


def test_licence_dates_are_in_order() -> None:
    assert found("license", licence(valid_to=None)) == set()
    early_start = licence(valid_from=datetime.date(2024, 3, 4))
    assert found("license", early_start) == {("有效期自", "date.order")}
    end_before_start = licence(valid_to=datetime.date(2024, 3, 4))
    assert ("有效期至", "date.order") in found("license", end_before_start)


def test_penalty_dates_are_in_order() -> None:
    assert found("penalty", penalty(valid_to=datetime.date(2024, 3, 1))) == {("处罚有效期", "date.order")}
    assert found("penalty", penalty(publicity_end=datetime.date(2024, 3, 1))) == {
        ("公示截止期", "date.order")
    }


@pytest.mark.parametrize(
    ("amount", "rule"),
    [
        (Decimal("-0.5"), "amount.negative"),
        (Decimal("1.1234567"), "amount.scale"),
        (Decimal("1000000000000"), "amount.range"),
        (Decimal("NaN"), "amount.format"),
    ],
)
def test_amounts_are_non_negative_with_at_most_six_decimals(amount: Decimal, rule: str) -> None:
    assert found("penalty", penalty(fine_amount=amount)) == {("罚款金额(万元)", rule)}


@pytest.mark.parametrize("amount", ["0", "1.123456", "1.1234560", "999999999999.999999"])
def test_amounts_within_the_standard_pass(amount: str) -> None:
    assert found("penalty", penalty(fine_amount=Decimal(amount))) == set()


def test_a_fine_has_a_fine_amount() -> None:
    assert found("penalty", penalty(fine_amount=None)) == {("罚款金额(万元)", "fine.amount_required")}
    assert found("penalty", penalty(penalty_types=["WARNING"], fine_amount=None)) == set()


def test_confiscation_has_an_amount_and_suspension_names_the_licence() -> None:
    assert found("penalty", penalty(penalty_types=["CONFISCATION"])) == {
        ("没收违法所得、没收非法财物的金额(万元)", "confiscation.amount_required")
    }
    assert (
        found("penalty", penalty(penalty_types=["CONFISCATION"], confiscated_amount=Decimal("0.3"))) == set()
    )
    types = ["LICENSE_SUSPENSION_OR_REVOCATION"]
    assert found("penalty", penalty(penalty_types=types)) == {
        ("暂扣或吊销证照名称及编号", "license_suspension.required")
    }
    assert found("penalty", penalty(penalty_types=types, license_suspended="食品经营许可证 JY1")) == set()


def test_division_codes_come_from_gb2260() -> None:
    assert is_division_code("310101")  # 黄浦区
    assert is_division_code("310000")
    assert not is_division_code("310103")  # 卢湾区, merged into 黄浦区 in 2011
    assert is_division_code("310103", include_abolished=True)
    assert not is_division_code("999999")
    assert not is_division_code("31010")


def test_issue_is_an_sgs_reason() -> None:
    issue = Issue("许可内容", "required", "许可内容为必填项", None)
    reason = issue.as_reason()
    assert reason == {"field": "许可内容", "rule": "required", "message": "许可内容为必填项", "value": None}
    rejection = {"stage": "validate", "original": b"x", "reasons": [reason], "rejected_at": 0}
    name, decoded = default_codec().decode(default_codec().encode("sgs.Rejection", rejection))
    assert decoded["reasons"] == [reason]


def test_long_offending_values_are_cut() -> None:
    issues = validate("license", licence(authority_uscc="9" * 10_000), today=TODAY)
    assert issues[0].value is not None and len(issues[0].value) <= 201


def test_validate_does_not_modify_the_body() -> None:
    body = penalty(fine_amount=None)
    before = copy.deepcopy(body)
    validate("penalty", body, today=TODAY)
    assert body == before


def test_a_stated_publicity_end_is_bounded_by_the_rule_book_in_force_on_the_decision_date() -> None:
    """D14 and 令第36号: under the set in force from 2026-04-01 a 一般 penalty is shown a year at most, so stating two
    is refused at intake; under the seeds a stated end wins (从其规定) up to the longest any seed gives (5 years)."""
    from sgs.config import load_config

    rules = load_config().rules
    today = datetime.date(2026, 11, 30)
    decided = datetime.date(2026, 5, 10)
    too_long = penalty(decided_on=decided, valid_from=decided, publicity_end=datetime.date(2028, 5, 10))
    issues = validate("penalty", too_long, today=today, rules=rules)
    assert [(i.rule, i.field) for i in issues] == [("publicity_end.too_late", "公示截止期")], issues
    assert "2027-05-10" in issues[0].message
    within = penalty(decided_on=decided, valid_from=decided, publicity_end=datetime.date(2027, 5, 10))
    assert validate("penalty", within, today=today, rules=rules) == []
    seeds = penalty(publicity_end=datetime.date(2027, 4, 1))  # decided 2024-04-01: three years, stated
    assert validate("penalty", seeds, today=today, rules=rules) == []
    forever = penalty(publicity_end=datetime.date(9999, 12, 31))
    assert [i.rule for i in validate("penalty", forever, today=today, rules=rules)] == [
        "publicity_end.too_late"
    ]
