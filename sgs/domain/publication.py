"""What a tier may publish of a record: personal data masked (D17).

Which tiers receive and publish a record, and for how long (D11, D14), is the rule book's to say
(`sgs.domain.rulebook`, `rules.toml`). Pure functions over the decoded `sgs.LicenseRecord` /
`sgs.PenaltyRecord` dicts; the route stage of the workers applies them when relaying to the sinks.
"""

from __future__ import annotations

import re
from typing import Any

from stdnum.cn import ric

PROVINCIAL, NATIONAL = "provincial", "national"


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
