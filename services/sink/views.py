"""How a held record is shown: the public view (D17) and its fields with the national template's Chinese column
names, taken from the schemas' "column" and "labels" attributes so the page always matches the data contract."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import sqlalchemy as sa

from sgs.domain.publication import mask_identifiers
from sgs.domain.rulebook import label
from sgs.serialization.codec import default_codec

# D17: personal data of the legal representative is not part of the public answer; operators see it (logged).
HIDDEN_FROM_PUBLIC = {("counterpart", "legal_rep_id_type"), ("counterpart", "legal_rep_id_no")}
# Bookkeeping of the federation, not part of the published decision.
INTERNAL = ("envelope", "annotations")
SCHEMA_OF_KIND = {"license": "sgs.LicenseRecord", "penalty": "sgs.PenaltyRecord"}
KIND_LABELS = {"license": "行政许可", "penalty": "行政处罚"}


def tier_label(tier: str | None) -> str:
    """轻微 / 一般 / 严重 for the page; empty for a licence or a record stored before tiers were kept."""
    return label("tier", tier) or ""


def public_view(stored: str) -> dict[str, Any]:
    """The published decision: the template fields, without the federation's bookkeeping and without the
    legal representative's ID. ID numbers are masked again with the municipal platform's own rule, which leaves a
    masked number as it is: only one that arrived unmasked by mistake changes (D17)."""
    record = mask_identifiers(json.loads(stored))
    view = {k: v for k, v in record.items() if k not in INTERNAL}
    view["counterpart"] = {
        k: v for k, v in view["counterpart"].items() if ("counterpart", k) not in HIDDEN_FROM_PUBLIC
    }
    return view


def summary(row: sa.Row[Any]) -> dict[str, Any]:
    """The searchable columns, as the list and search answers show them."""
    return {
        "record_id": row.record_id,
        "version": row.version,
        "kind": row.kind,
        "counterpart_name": row.counterpart_name,
        "uscc": row.uscc,
        "decision_doc_no": row.decision_doc_no,
        "authority": row.authority,
        "division_code": row.division_code,
        "decided_on": row.decided_on,
        "publicity_end": row.publicity_end,
        "published_at": row.published_at,
        "under_objection": row.under_objection,
        # Which rules decided publication and publicity: the rule set and the dishonesty tier (rules.toml, D14).
        "rule_set": row.rule_set,
        "tier": row.tier,
    }


def _schema_fields(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return list(schema["fields"])


def _enum_labels(ftype: Any) -> dict[str, str] | None:
    for t in ftype if isinstance(ftype, list) else [ftype]:
        if isinstance(t, dict) and t.get("type") == "enum":
            return dict(t.get("labels", {}))
        if isinstance(t, dict) and t.get("type") == "array":
            return _enum_labels(t["items"])
    return None


def _render(value: Any, labels: dict[str, str] | None) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, list):
        return "；".join(_render(v, labels) for v in value)
    if labels and isinstance(value, str):
        return labels.get(value, value)
    return str(value)


@cache
def _record_schema(kind: str) -> dict[str, Any]:
    return default_codec().schemas[SCHEMA_OF_KIND[kind]]  # type: ignore[no-any-return]


def labelled_fields(kind: str, view: dict[str, Any]) -> list[tuple[str, str]]:
    """(Chinese column name, displayed value) for every non-empty field of the view, in template order."""
    out: list[tuple[str, str]] = []
    for f in _schema_fields(_record_schema(kind)):
        if f["name"] not in view:
            continue
        if f["name"] == "counterpart":
            cp_schema = f["type"]
            for cf in _schema_fields(cp_schema):
                text = _render(view["counterpart"].get(cf["name"]), _enum_labels(cf["type"]))
                if text:
                    out.append((cf.get("column", cf["name"]), text))
            continue
        text = _render(view[f["name"]], _enum_labels(f["type"]))
        if text:
            out.append((f.get("column", f["name"]), text))
    return out
