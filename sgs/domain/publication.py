"""What each tier may receive and publish, for how long, and with which personal data masked (D11, D14, D17).

Pure functions over the decoded `sgs.LicenseRecord` / `sgs.PenaltyRecord` dicts (`kind` is "license" or
"penalty"); the route stage of the workers applies them when relaying to the provincial and national sinks.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from stdnum.cn import ric

from sgs.domain.periods import add_years

PROVINCIAL, NATIONAL = "provincial", "national"

# D14 / 003 (十四): publicity on the credit portals, counted from the decision date.
PENALTY_PUBLICITY_YEARS = {"GENERAL": 1, "SERIOUS": 3}  # 003 (十四)
UNSTATED_VALIDITY_YEARS = 7  # 001 四(四)1


def publicity_end(kind: str, body: dict[str, Any]) -> date | None:
    """The last day the record is shown (inclusive); None = long-term (D14).

    How the seeds are reconciled:

    - Penalties: 003 (十四), the national rule on publicity on credit portals, sets 1 year from the decision date
      (一般) and 3 years (严重失信), "法律、法规、规章另有相关规定的，从其规定", and makes the deciding body state the
      period ("明确行政处罚信息的公示期限"). So a source-given 公示截止期 (`publicity_end`) wins: it is the deciding
      body's statement, possibly under such a special rule (谁产生、谁负责); without it, severity decides.
      Shanghai's data-list defaults (000 三清单 3: natural-person penalty 2 years, legal-person penalty 5 years) are
      the 有效期限 of an information item in the city's catalogue (sharing), not the public display period, so they
      do not shorten or lengthen publication.
    - Licences: 001 四(四)1 publishes a licence for its validity (信息有效期内查询式公示), so the end is 有效期至
      (`valid_to`); and "没有明确有效期的，公示期为7年": a licence whose 有效期至 is empty states no end of validity,
      so it is shown for 7 years from the decision (issue 5 spells this out: "7 years when none"). Shanghai's list
      default (000 三清单 3: 行政许可默认为长期) is the catalogue's information validity, like the penalty defaults
      above, not the public display period.
    """
    if kind == "penalty":
        given = body.get("publicity_end")
        if given is not None:
            return given  # type: ignore[no-any-return]
        return add_years(body["decided_on"], PENALTY_PUBLICITY_YEARS[body["severity"]])
    if kind == "license":
        valid_to: date | None = body.get("valid_to")
        return valid_to if valid_to is not None else add_years(body["decided_on"], UNSTATED_VALIDITY_YEARS)
    raise ValueError(f"unknown kind {kind!r}")


def relay_tiers(kind: str, body: dict[str, Any]) -> dict[str, bool]:
    """The tiers that receive the record, each with its for-publication flag (D11, D10).

    - Every accepted record goes to the province and the nation for publication (D10, 003 (八) 逐级上报).
    - A simple-procedure penalty (简易程序) is collected and reported but not published (001 四(一)): the province
      gets it marked not-for-publication; 信用中国 neither collects nor publishes it (003 (五)).
    - A penalty on a natural person (自然人) is not collected by 信用中国 (003 (五)): never the national tier. 个体工商户
      are registered market entities with a 统一社会信用代码 and are relayed like legal persons.
    """
    if kind == "license":
        return {PROVINCIAL: True, NATIONAL: True}
    if kind != "penalty":
        raise ValueError(f"unknown kind {kind!r}")
    if body["procedure"] == "SIMPLE":
        return {PROVINCIAL: False}
    if body["counterpart"]["category"] == "NATURAL_PERSON":
        return {PROVINCIAL: True}
    return {PROVINCIAL: True, NATIONAL: True}


def mask_id_number(value: str) -> str:
    """110101199003071234 -> 110101********1234: the division code and the last four stay (enough for a person to
    recognise their own record), the birth date goes (GB/T 35273 de-identification practice, D17). Shorter document
    numbers (passports, permits) keep a quarter at each end. Masking a masked number changes nothing."""
    n = len(value)
    head, tail = (6, 4) if n >= 15 else (n // 4, n // 4)
    return value[:head] + "*" * (n - head - tail) + value[n - tail :]


# An 18-character 居民身份证号 written inside free text; candidates are confirmed by their check character.
_ID_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])\d{17}[0-9Xx](?![0-9A-Za-z])")
_FREE_TEXT = ("remarks", "violation_facts", "penalty_content", "license_content")


def _mask_ids_in_text(text: str) -> str:
    return _ID_IN_TEXT.sub(lambda m: mask_id_number(m[0]) if ric.is_valid(m[0].upper()) else m[0], text)


def mask_identifiers(body: dict[str, Any]) -> dict[str, Any]:
    """A copy for publication with personal ID numbers masked (D17; 003 (十八) "发布前应进行必要的技术处理").

    Masked: 证件号码 (`counterpart.id_no`, whatever the document type), 法定代表人证件号码
    (`counterpart.legal_rep_id_no`), and any valid 居民身份证号 written in the free-text fields (备注, 违法事实, ...).
    Kept: names, including a natural person's. 行政相对人名称 is a field the national template publishes and the
    point of 双公示; 003 (十七) protects personal information by controlling queries and use, not by hiding who was
    penalised. The unmasked original stays at the municipal level; the input is not modified.
    """
    # Copied only as deep as it is changed (the top level and the counterpart): a deep copy cost the workers'
    # relay stage more than encoding the record.
    masked = dict(body)
    if isinstance(body.get("counterpart"), dict):
        counterpart = masked["counterpart"] = dict(body["counterpart"])
        for field in ("id_no", "legal_rep_id_no"):
            if counterpart.get(field):
                counterpart[field] = mask_id_number(counterpart[field])
    for field in _FREE_TEXT:
        if isinstance(masked.get(field), str):
            masked[field] = _mask_ids_in_text(masked[field])
    return masked


def is_expired(kind: str, body: dict[str, Any], annotations: dict[str, Any] | None, today: date) -> bool:
    """Whether the publicity period has ended: shown up to and including its last day (D14, 003 (十四)
    "公示期限届满的，应不再对外公示"). The annotated end is the one the record was relayed with; a record not yet
    annotated gets it computed. None (long-term) never expires."""
    end = annotations.get("publicity_end") if annotations is not None else publicity_end(kind, body)
    return end is not None and today > end
