"""The two kinds of record (行政许可 license, 行政处罚 penalty, D1/D2), the Avro schema of each, a record's identity
(DOMAIN assumption; D4) and its content fingerprint."""

from __future__ import annotations

import hashlib

KINDS = ("license", "penalty")
SCHEMA_NAME = {"license": "sgs.LicenseRecord", "penalty": "sgs.PenaltyRecord"}
KIND_OF_SCHEMA = {schema: kind for kind, schema in SCHEMA_NAME.items()}


def record_id(kind: str, authority_uscc: str, decision_doc_no: str) -> str:
    """The identity every version of a record shares (DOMAIN assumption; D4)."""
    return f"{kind}:{authority_uscc}:{decision_doc_no}"


def content_hash(data: bytes) -> str:
    """The fingerprint D4 compares to tell "the same version again" from "different content under one version":
    SHA-256 of the bytes, as hex."""
    return hashlib.sha256(data).hexdigest()
