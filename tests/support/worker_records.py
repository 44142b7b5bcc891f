"""Licence and penalty records for the worker's tests, valid by `sgs.domain.validation` unless a test spoils them."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from stdnum.cn import uscc

from sgs.config import Department, Federation

SHANGHAI_OFFSET = timedelta(hours=8)


def new_uscc() -> str:
    """A valid 统一社会信用代码 no other test uses (GB 32100-2015 check character)."""
    body = "91310000" + uuid.uuid4().hex[:9].upper().replace("I", "J").replace("O", "P")
    return body + uscc.calc_check_digit(body)


def new_resident_id(birth: str = "19800101") -> str:
    """A valid 居民身份证号 (GB 11643-1999, ISO 7064 MOD 11-2)."""
    body = "310101" + birth + f"{uuid.uuid4().int % 1000:03d}"
    total = sum(int(c) * (2 ** (17 - i) % 11) for i, c in enumerate(body))
    return body + "10X98765432"[total % 11]


def at_shanghai(day: date, hour: int = 10) -> datetime:
    """`day` at `hour` o'clock in China, as an aware UTC datetime (what timestamp-millis decodes to)."""
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC) - SHANGHAI_OFFSET


def record(
    federation: Federation,
    kind: str,
    *,
    decided_on: date,
    submitted_on: date,
    counterpart_name: str = "上海测试贸易有限公司",
    counterpart_uscc: str | None = None,
    person_id: str | None = None,
    version: int = 1,
    operation: str = "CREATE",
    procedure: str = "GENERAL",
    severity: str = "GENERAL",
    doc_no: str | None = None,
    published_on: date | None = None,
    department: Department | None = None,
) -> dict[str, Any]:
    """One record of `kind` ("license" or "penalty") from `department`, by default the first department of the
    first district."""
    dept = department or federation.districts[0].departments[0]
    doc_no = doc_no or f"测试〔2026〕{uuid.uuid4().hex[:10]}号"
    record_id = f"{kind}:{dept.uscc}:{doc_no}"
    if person_id:
        counterpart = {
            "name": counterpart_name,
            "category": "NATURAL_PERSON",
            "id_type": "身份证",
            "id_no": person_id,
        }
    else:
        counterpart = {
            "name": counterpart_name,
            "category": "LEGAL_PERSON",
            "uscc": counterpart_uscc or new_uscc(),
            "legal_rep": "张三",
        }
    envelope = {
        "record_id": record_id,
        "version": version,
        "operation": operation,
        "kind": kind.upper(),
        "source_node": dept.node,
        "department": dept.id,
        "division_code": dept.node,
        "decided_on": decided_on,
        "published_at": at_shanghai(published_on) if published_on else None,
        "submitted_at": at_shanghai(submitted_on),
        "receipt_id": uuid.uuid4().hex,
        "trace_id": uuid.uuid4().hex,
    }
    common = {
        "envelope": envelope,
        "counterpart": counterpart,
        "decision_doc_no": doc_no,
        "decided_on": decided_on,
        "authority": dept.name,
        "authority_uscc": dept.uscc,
        "source_unit": dept.name,
        "source_unit_uscc": dept.uscc,
        "remarks": None,
        "annotations": None,
    }
    if kind == "license":
        return common | {
            "decision_doc_name": "准予行政许可决定书",
            "license_category": "ORDINARY",
            "license_cert_name": None,
            "license_no": None,
            "license_content": "食品经营许可",
            "valid_from": decided_on,
            "valid_to": None,
            "status": "NORMAL",
        }
    return common | {
        "violation_type": "未按规定公示信息",
        "violation_facts": "经查，当事人未按规定公示信息。",
        "legal_basis": "《企业信息公示暂行条例》第十八条",
        "penalty_types": ["FINE"],
        "penalty_content": "罚款人民币五千元",
        "fine_amount": Decimal("0.500000"),
        "confiscated_amount": None,
        "license_suspended": None,
        "valid_to": None,
        "publicity_end": None,
        "procedure": procedure,
        "severity": severity,
    }
