"""Hostile input never crashes the edge (D12): random rows, random record bodies, random bytes.

Bad input is data: parse_row/validate return issues, Codec.decode raises only SerializationError."""

from __future__ import annotations

import contextlib
import datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sgs.domain.issues import Issue
from sgs.domain.kinds import KINDS
from sgs.domain.records import check_row, to_json
from sgs.domain.template import template_columns, template_fields
from sgs.domain.validation import validate
from sgs.serialization.codec import SINGLE_OBJECT_MAGIC, Codec, SerializationError, default_codec

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(
        ["2024-02-30", "2024/1/1", "0000-00-00", "罚款；警告", "自然人", "NaN", "1e999", "-0", " "]
    ),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.dates(),
    st.datetimes(),
    st.binary(max_size=10),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
kinds = st.sampled_from(KINDS)
all_keys = sorted(
    {c for k in KINDS for c in template_columns(k)} | {f.name for k in KINDS for f in template_fields(k)}
)
keys = st.one_of(st.sampled_from(all_keys + ["counterpart", "envelope", ""]), st.text(max_size=10))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=kinds, row=st.dictionaries(keys, values, max_size=40))
def test_parse_and_validate_never_crash_on_random_rows(kind: str, row: dict[str, Any]) -> None:
    body, issues = check_row(kind, row, today=datetime.date(2024, 12, 31))
    assert all(
        isinstance(i, Issue) and isinstance(i.field, str) and isinstance(i.message, str) for i in issues
    )
    assert body is not None
    to_json(body)


@settings(max_examples=100, deadline=None)
@given(kind=kinds, data=st.data())
def test_validate_never_crashes_on_random_bodies(kind: str, data: st.DataObject) -> None:
    body: dict[str, Any] = {"counterpart": data.draw(st.one_of(st.none(), st.just({}), values))}
    for f in template_fields(kind):
        value = data.draw(values)
        target = body if len(f.path) == 1 else body["counterpart"]
        if isinstance(target, dict):
            target[f.path[-1]] = value
    issues = validate(kind, body)
    assert all(i.value is None or len(i.value) <= 201 for i in issues)


@settings(max_examples=150, deadline=None)
@given(kind=kinds, data=st.data())
def test_well_typed_random_bodies_give_issues_that_fit_the_reason_schema(
    kind: str, data: st.DataObject
) -> None:
    """Right types, random contents: every issue can travel as an sgs.Reason."""
    body: dict[str, Any] = {"counterpart": {}}
    for f in template_fields(kind):
        strategy = {
            "string": st.text(max_size=20),
            "date": st.dates(),
            "decimal": st.decimals(places=None, allow_nan=False, allow_infinity=False),
            "enum": st.sampled_from(list(f.symbols) + ["BOGUS"]),
            "enum_array": st.lists(st.sampled_from(list(f.symbols) + ["BOGUS"]), max_size=3),
        }[f.type]
        value = data.draw(st.one_of(st.none(), strategy))
        (body if len(f.path) == 1 else body["counterpart"])[f.path[-1]] = value
    rejection = {"stage": "validate", "original": b"", "rejected_at": 0}
    rejection["reasons"] = [i.as_reason() for i in validate(kind, body)]
    default_codec().encode("sgs.Rejection", rejection)


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=200))
def test_decode_random_bytes_raises_only_serialization_error(data: bytes) -> None:
    with contextlib.suppress(SerializationError):
        default_codec().decode(data)


REASON = {"field": "f", "rule": "r", "message": "m", "value": None}
RECEIPT = {"receipt_id": "r", "source_node": "310101", "status": "SENT", "at": 0}
# single-object headers (C3 01 + fingerprint) of small, nested and bytes-carrying schemas
fingerprints = [
    default_codec().encode("sgs.Reason", REASON)[:10],
    default_codec().encode("sgs.Receipt", RECEIPT)[:10],
    default_codec().encode("sgs.Rejection", {"stage": "s", "original": b"", "reasons": [], "rejected_at": 0})[
        :10
    ],
]
NO_REGISTRY = Codec()


@settings(max_examples=500, deadline=None)
@given(header=st.sampled_from(fingerprints), body=st.binary(max_size=300))
def test_decode_known_header_with_random_body_raises_only_serialization_error(
    header: bytes, body: bytes
) -> None:
    assert header.startswith(SINGLE_OBJECT_MAGIC)
    with contextlib.suppress(SerializationError):
        default_codec().decode(header + body)


@settings(max_examples=100, deadline=None)
@given(body=st.binary(max_size=50))
def test_decode_confluent_bytes_without_registry_raises_only_serialization_error(body: bytes) -> None:
    with contextlib.suppress(SerializationError):
        NO_REGISTRY.decode(b"\x00" + body)


def test_random_decimal_strings_are_amount_issues_not_crashes() -> None:
    for text in ("1e999999999", "-1e-999999999", "1" * 100, "0x10", "１２"):
        body, _ = check_row("penalty", {"罚款金额(万元)": text, "处罚类别": "罚款"})
        assert body is not None
        if (
            body["fine_amount"] is not None
        ):  # Decimal accepted it: the amount rules must reject it, not overflow
            assert validate("penalty", body)
