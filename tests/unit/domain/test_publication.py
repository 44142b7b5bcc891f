"""Publication rules for the relays: publicity periods (D14) and tiers (D11) as the shipped rule book gives them,
masking (D17). Both rule sets side by side, and the rule book's own behaviour: tests/unit/test_rulebook.py."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from stdnum.cn import ric

from sgs.config import load_rule_book
from sgs.domain.periods import add_years
from sgs.domain.publication import mask_id_number, mask_identifiers
from sgs.serialization.codec import default_codec

RULES = load_rule_book()
SEEDS_DAY = date(2026, 3, 20)  # decided before 2026-04-01: the seeds' rule set


def publicity_end(kind: str, body: dict[str, Any]) -> date | None:
    return RULES.ruling(kind, body).publicity_end


def relay_tiers(kind: str, body: dict[str, Any]) -> dict[str, bool]:
    return RULES.ruling(kind, body).relay


ID_NO = "11010519491231002X"  # GB 11643 example number, valid check character
REP_ID = "310101199003071230"
assert ric.is_valid(ID_NO) and ric.is_valid(REP_ID)


def envelope(kind: str) -> dict[str, Any]:
    now = datetime(2026, 5, 21, 9, 0, tzinfo=UTC)
    return {
        "record_id": f"{kind}:113100000000000191:沪市监罚〔2026〕1号",
        "version": 1,
        "operation": "CREATE",
        "kind": kind.upper(),
        "source_node": "310000",
        "department": "310000-scjg",
        "division_code": "310000",
        "decided_on": date(2026, 5, 20),
        "published_at": None,
        "submitted_at": now,
        "receipt_id": "r-1",
        "trace_id": "t-1",
    }


def counterpart(category: str = "LEGAL_PERSON") -> dict[str, Any]:
    if category == "NATURAL_PERSON":
        return {"name": "张三", "category": category, "id_type": "身份证", "id_no": ID_NO}
    return {
        "name": "上海某某贸易有限公司",
        "category": category,
        "uscc": "91310000MA1FL0000X",
        "legal_rep": "李四",
        "legal_rep_id_type": "身份证",
        "legal_rep_id_no": REP_ID,
    }


def penalty(
    severity: str = "GENERAL", procedure: str = "GENERAL", category: str = "LEGAL_PERSON", **fields: Any
) -> dict[str, Any]:
    return {
        "envelope": envelope("penalty"),
        "counterpart": counterpart(category),
        "decision_doc_no": "沪市监罚〔2026〕1号",
        "violation_type": "虚假宣传",
        "violation_facts": "当事人发布虚假广告",
        "legal_basis": "《广告法》第五十五条",
        "penalty_types": ["FINE"],
        "penalty_content": "罚款人民币五万元",
        "fine_amount": Decimal("5.000000"),
        "decided_on": date(2026, 5, 20),
        "authority": "上海市市场监督管理局",
        "authority_uscc": "113100000000000191",
        "source_unit": "上海市市场监督管理局",
        "source_unit_uscc": "113100000000000191",
        "procedure": procedure,
        "severity": severity,
        **fields,
    }


def licence(valid_to: date | None = date(2031, 5, 19), **fields: Any) -> dict[str, Any]:
    return {
        "envelope": envelope("license"),
        "counterpart": counterpart(),
        "decision_doc_no": "沪食许〔2026〕8号",
        "license_category": "ORDINARY",
        "license_content": "食品经营",
        "decided_on": date(2026, 5, 20),
        "valid_from": date(2026, 5, 20),
        "valid_to": valid_to,
        "authority": "上海市市场监督管理局",
        "authority_uscc": "113100000000000191",
        "status": "NORMAL",
        "source_unit": "上海市市场监督管理局",
        "source_unit_uscc": "113100000000000191",
        **fields,
    }


# ---------------------------------------------------------------------------------------------------- D14


def test_general_penalty_is_public_for_one_year_from_the_decision() -> None:
    """D14 / 003 (十四): 一般 -> 1 year from the decision date, the anniversary included."""
    assert publicity_end("penalty", penalty("GENERAL")) == date(2027, 5, 20)


def test_serious_penalty_is_public_for_three_years() -> None:
    """D14 / 003 (十四): 严重失信 -> 3 years."""
    assert publicity_end("penalty", penalty("SERIOUS")) == date(2029, 5, 20)


def test_under_the_seeds_a_source_given_publicity_end_wins_over_the_severity_default() -> None:
    """D14: 003 (十四) makes the deciding body state the period and defers to special rules (从其规定)."""
    body = penalty("GENERAL", publicity_end=date(2028, 1, 31), decided_on=SEEDS_DAY)
    assert publicity_end("penalty", body) == date(2028, 1, 31)


def test_penalty_decided_on_29_february_ends_on_28_february() -> None:
    """D14 counted in years: no corresponding day -> the month's last day (民法典 第二百零二条)."""
    assert add_years(date(2028, 2, 29), 1) == date(2029, 2, 28)
    body = penalty("SERIOUS")
    body["decided_on"] = date(2028, 2, 29)
    assert publicity_end("penalty", body) == date(2031, 2, 28)


def test_licence_is_public_until_its_validity_ends() -> None:
    """D14 / 001 四(四)1: a licence is shown for its validity."""
    assert publicity_end("license", licence(date(2031, 5, 19))) == date(2031, 5, 19)


def test_licence_without_validity_end_is_public_for_seven_years() -> None:
    """D14 / 001 四(四)1 (没有明确有效期的，公示期为7年): 7 years from the decision, anniversary included."""
    body = licence(None)
    assert publicity_end("license", body) == body["decided_on"].replace(year=body["decided_on"].year + 7)


# ---------------------------------------------------------------------------------------------------- D11


def test_licence_and_general_procedure_penalty_go_to_both_tiers_for_publication() -> None:
    """D10: the municipal platform relays to the province and the nation."""
    assert relay_tiers("license", licence()) == {"provincial": True, "national": True}
    assert relay_tiers("penalty", penalty()) == {"provincial": True, "national": True}


def test_simple_procedure_penalty_goes_to_the_province_unpublished_and_never_to_the_nation() -> None:
    """D11: 简易程序 is collected and reported but not published (001 四(一)); 信用中国 does not take it (003 (五))."""
    assert relay_tiers("penalty", penalty(procedure="SIMPLE")) == {"provincial": False}
    assert relay_tiers("penalty", penalty(procedure="SIMPLE", category="NATURAL_PERSON")) == {
        "provincial": False
    }


def test_penalty_on_a_natural_person_never_goes_to_the_nation() -> None:
    """D11: 信用中国 does not collect penalties on natural persons (003 (五)); the province publishes it."""
    assert relay_tiers("penalty", penalty(category="NATURAL_PERSON")) == {"provincial": True}


def test_penalty_on_an_individual_business_goes_to_the_nation() -> None:
    """D11 names natural persons only; 个体工商户 are registered entities with a 统一社会信用代码."""
    assert relay_tiers("penalty", penalty(category="INDIVIDUAL_BUSINESS")) == {
        "provincial": True,
        "national": True,
    }


def test_licence_to_a_natural_person_goes_to_both_tiers() -> None:
    """D11 restricts penalties only."""
    body = licence()
    body["counterpart"] = counterpart("NATURAL_PERSON")
    assert relay_tiers("license", body) == {"provincial": True, "national": True}


# ---------------------------------------------------------------------------------------------------- D17


def test_id_number_keeps_division_code_and_last_four() -> None:
    """D17: the birth date is hidden; masking twice changes nothing."""
    assert mask_id_number(ID_NO) == "110105********002X"
    assert mask_id_number(mask_id_number(ID_NO)) == "110105********002X"
    assert mask_id_number("E12345678") == "E1*****78"


def test_published_copy_masks_natural_persons_and_legal_representatives_ids_and_keeps_names() -> None:
    """D17 / 003 (十八): ID numbers are processed before publication; names are the published subject."""
    person = penalty(category="NATURAL_PERSON")
    masked = mask_identifiers(person)
    assert masked["counterpart"]["id_no"] == "110105********002X"
    assert masked["counterpart"]["name"] == "张三"
    assert person["counterpart"]["id_no"] == ID_NO  # the municipal original is untouched

    company = mask_identifiers(licence())
    assert company["counterpart"]["legal_rep_id_no"] == "310101********1230"
    assert company["counterpart"]["legal_rep"] == "李四"
    assert company["counterpart"]["uscc"] == "91310000MA1FL0000X"  # an organisation's code is public


def test_id_numbers_written_in_free_text_are_masked_but_other_numbers_are_not() -> None:
    """D17: a 居民身份证号 in 备注 or 违法事实 is personal data too; a USCC or case number is not touched."""
    body = penalty(
        remarks=f"当事人身份证号{ID_NO}，统一社会信用代码113100000000000191",
        violation_facts=f"经营者（{ID_NO.lower()}）未亮照经营",
    )
    masked = mask_identifiers(body)
    assert masked["remarks"] == "当事人身份证号110105********002X，统一社会信用代码113100000000000191"
    assert masked["violation_facts"] == "经营者（110105********002x）未亮照经营"


def test_masked_record_still_fits_its_schema() -> None:
    """The relays carry `sgs.PenaltyRecord` / `sgs.LicenseRecord`: masking must keep the contract."""
    codec = default_codec()
    codec.encode("sgs.PenaltyRecord", mask_identifiers(penalty(category="NATURAL_PERSON", remarks=ID_NO)))
    codec.encode("sgs.LicenseRecord", mask_identifiers(licence()))
