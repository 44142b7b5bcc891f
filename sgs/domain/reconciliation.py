"""D13: a record's counterpart checked against the legal-person base (法人库) and the population base (人口库): the
code exists, the name matches the registered name, the entity is not deregistered. Pure: the bases come in as
mappings (the worker's in-memory mirror of `sgs.ref.*`)."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from datetime import date
from typing import Any

_BRACKETS = str.maketrans({c: "(" for c in "（【[〔［｛{"} | {c: ")" for c in "）】]〕］｝}"})


def normalise_name(name: str) -> str:
    """The form in which two spellings of one registered name compare equal (D13): full-width -> half-width
    (NFKC), every kind of bracket unified to ( ), all whitespace removed, case-folded."""
    text = unicodedata.normalize("NFKC", name).translate(_BRACKETS)
    return "".join(text.split()).casefold()


def reconcile(
    counterpart: Mapping[str, Any],
    decided_on: date,
    legal_persons: Mapping[str, Mapping[str, Any]],
    persons: Mapping[str, Mapping[str, Any]],
) -> tuple[str, str | None]:
    """D13: check a record's counterpart (`sgs.Counterpart`) against the bases; returns (outcome, registered name).

    Outcome is an `sgs.Reconciliation` symbol. Natural persons (自然人) are looked up in the population base by
    证件号码; legal persons and 个体工商户 in the legal-person base by 统一社会信用代码 (transition-period codes cannot
    be checked: the base is keyed by USCC, so they are UNKNOWN_CODE). An entity deregistered (注销) or revoked
    (吊销) on or before the decision date is DEREGISTERED, and that outranks a name mismatch; one deregistered later
    was still registered when decided, so it is judged by its name. A deregistration without a date is taken as
    before any decision. Names compare after `normalise_name`.
    """
    if counterpart.get("category") == "NATURAL_PERSON":
        code = (counterpart.get("id_no") or "").strip().upper()
        entry = persons.get(code) if code else None
    else:
        code = (counterpart.get("uscc") or "").strip().upper()
        entry = legal_persons.get(code) if code else None
    if entry is None:
        return "UNKNOWN_CODE", None
    registered = entry["name"]
    status = entry.get("status", "ACTIVE")
    if status != "ACTIVE":
        since = entry.get("status_since")
        if since is None or since <= decided_on:
            return "DEREGISTERED", registered
    if normalise_name(counterpart.get("name") or "") != normalise_name(registered):
        return "NAME_MISMATCH", registered
    return "MATCHED", registered
