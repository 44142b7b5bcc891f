"""Relay messages built by hand for the sink tests: what the municipal relay worker sends (annotated, masked)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sgs.serialization.codec import default_codec

AUTHORITY_USCC = "113101010010100169"  # 黄浦区市场监督管理局 in federation.toml


def unique_tag() -> str:
    """A prefix that keeps one test's records apart from every other test's on the shared broker."""
    return uuid.uuid4().hex[:10]


def _envelope(kind: str, doc_no: str, version: int, operation: str = "CREATE") -> dict[str, Any]:
    record_id = f"{kind}:{AUTHORITY_USCC}:{doc_no}"
    return {
        "record_id": record_id,
        "version": version,
        "operation": operation,
        "kind": kind.upper(),
        "source_node": "310101",
        "department": "310101-scjg",
        "division_code": "310101",
        "decided_on": date.today() - timedelta(days=3),
        "published_at": None,
        "submitted_at": datetime.now(UTC) - timedelta(days=2),
        "receipt_id": f"r-{doc_no}",
        "trace_id": f"t-{doc_no}",
    }


def _annotations(**overrides: Any) -> dict[str, Any]:
    ann = {
        "reconciliation": "MATCHED",
        "working_days_to_submit": 1,
        "late": False,
        "portal_to_submit_working_days": None,
        "calendar_provisional": False,
        "publicity_end": None,
        "for_publication": True,
        "masked": True,
        "under_objection": False,
        "accepted_at": datetime.now(UTC) - timedelta(days=1),
    }
    ann.update(overrides)
    return ann


def company(name: str, uscc: str = "91310101MA1FPX1234") -> dict[str, Any]:
    return {
        "name": name,
        "category": "LEGAL_PERSON",
        "uscc": uscc,
        "business_reg_no": None,
        "org_code": None,
        "tax_reg_no": None,
        "institution_cert_no": None,
        "social_org_reg_no": None,
        "legal_rep": "张三",
        "legal_rep_id_type": "身份证",
        "legal_rep_id_no": "310101********1234",
        "id_type": None,
        "id_no": None,
    }


def person(name: str = "李四") -> dict[str, Any]:
    cp = company(name, uscc="")
    cp.update(
        category="NATURAL_PERSON", uscc=None, legal_rep=None, legal_rep_id_type=None, legal_rep_id_no=None
    )
    cp.update(id_type="身份证", id_no="310104********5678")
    return cp


def license_record(doc_no: str, name: str, *, version: int = 1, uscc: str = "91310101MA1FPX1234",
                   operation: str = "CREATE", **annotations: Any) -> dict[str, Any]:  # fmt: skip
    env = _envelope("license", doc_no, version, operation)
    return {
        "envelope": env,
        "counterpart": company(name, uscc),
        "decision_doc_name": "食品经营许可决定书",
        "decision_doc_no": doc_no,
        "license_category": "ORDINARY",
        "license_cert_name": "食品经营许可证",
        "license_no": f"JY{doc_no[-6:]}",
        "license_content": f"预包装食品销售（版本 {version}）",
        "decided_on": env["decided_on"],
        "valid_from": env["decided_on"],
        "valid_to": None,
        "authority": "黄浦区市场监督管理局",
        "authority_uscc": AUTHORITY_USCC,
        "status": "NORMAL",
        "source_unit": "黄浦区市场监督管理局",
        "source_unit_uscc": AUTHORITY_USCC,
        "remarks": None,
        "annotations": _annotations(**annotations),
    }


def penalty_record(doc_no: str, name: str, *, version: int = 1, uscc: str = "91310101MA1FPX1234",
                   counterpart: dict[str, Any] | None = None, procedure: str = "GENERAL",
                   **annotations: Any) -> dict[str, Any]:  # fmt: skip
    env = _envelope("penalty", doc_no, version)
    annotations.setdefault("publicity_end", date.today() + timedelta(days=365))
    return {
        "envelope": env,
        "counterpart": counterpart or company(name, uscc),
        "decision_doc_no": doc_no,
        "violation_type": "未按规定公示信息",
        "violation_facts": "经查，当事人未按规定公示年度报告。",
        "legal_basis": "《企业信息公示暂行条例》第十八条",
        "penalty_types": ["WARNING", "FINE"],
        "penalty_content": "警告，罚款人民币五千元",
        "fine_amount": Decimal("0.500000"),
        "confiscated_amount": None,
        "license_suspended": None,
        "decided_on": env["decided_on"],
        "valid_to": None,
        "publicity_end": annotations["publicity_end"],
        "authority": "黄浦区市场监督管理局",
        "authority_uscc": AUTHORITY_USCC,
        "source_unit": "黄浦区市场监督管理局",
        "source_unit_uscc": AUTHORITY_USCC,
        "remarks": None,
        "procedure": procedure,
        "severity": "GENERAL",
        "annotations": _annotations(**annotations),
    }


def withdrawal(record: dict[str, Any], reason: str = "REVOKED", version: int | None = None) -> dict[str, Any]:
    env = record["envelope"]
    return {
        "record_id": env["record_id"],
        "version": env["version"] if version is None else version,
        "receipt_id": env["receipt_id"],
        "source_node": env["source_node"],
        "reason": reason,
        "at": datetime.now(UTC),
    }


def schema_of(message: dict[str, Any]) -> str:
    if "envelope" not in message:
        return "sgs.Withdrawal"
    return "sgs.LicenseRecord" if message["envelope"]["kind"] == "LICENSE" else "sgs.PenaltyRecord"


def encoded(message: dict[str, Any]) -> tuple[bytes, bytes]:
    """(key, value) as the relay worker produces them."""
    record_id = message["record_id"] if "record_id" in message else message["envelope"]["record_id"]
    return record_id.encode(), default_codec().encode(schema_of(message), message)


def decoded(message: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """What the sink's decoder hands the store: the record after an Avro round trip."""
    return default_codec().decode(encoded(message)[1])
