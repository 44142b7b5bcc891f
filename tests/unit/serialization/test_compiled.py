"""The compiled Avro code (`sgs.serialization.compiled`, issue 14) writes and reads exactly what fastavro does, for
every schema of the federation, and fails as the codec promises on bad records and bad bytes."""

from __future__ import annotations

import contextlib
import io
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from fastavro import schemaless_reader, schemaless_writer
from hypothesis import given, settings
from hypothesis import strategies as st

from sgs.serialization.codec import Codec, SerializationError
from sgs.serialization.compiled import Unsupported, compile_schema
from sgs.serialization.schemas import load_schemas, plain_schema

SCHEMAS = {name: s for name, s in load_schemas().items() if s["type"] == "record"}  # what travels (not enums)
CODEC = Codec()


def values(t: Any, named: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Any value of Avro type `t` that fastavro writes (`named`: the named types met so far, by full name)."""
    if isinstance(t, str) and t in named:
        return values(named[t], named)
    if isinstance(t, list):
        return st.one_of(*(values(branch, named) for branch in t))
    if isinstance(t, dict):
        if "name" in t:
            named.setdefault(t["name"], t)
        logical = t.get("logicalType")
        if logical == "date":
            return st.dates()
        if logical == "timestamp-millis":
            return st.datetimes(datetime(1900, 1, 1), datetime(2200, 1, 1), timezones=st.just(UTC))
        if logical == "decimal":
            bound = Decimal(10) ** (t["precision"] - t["scale"]) - 1
            return st.decimals(-bound, bound, places=t["scale"], allow_nan=False, allow_infinity=False)
        if t["type"] == "record":
            fields = {f["name"]: values(f["type"], named) for f in t["fields"]}
            return st.fixed_dictionaries(fields)
        if t["type"] == "enum":
            return st.sampled_from(t["symbols"])
        if t["type"] == "array":
            return st.lists(values(t["items"], named), max_size=3)
        return values(t["type"], named)
    return {
        "null": st.none(),
        "boolean": st.booleans(),
        "int": st.integers(-(2**31), 2**31 - 1),
        "long": st.integers(-(2**63), 2**63 - 1),
        "string": st.text(max_size=70),  # past 63 UTF-8 bytes a length takes two bytes
        "bytes": st.binary(max_size=70),
    }[t]


def fastavro_bytes(name: str, record: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    schemaless_writer(buf, SCHEMAS[name], record)
    return buf.getvalue()


def test_every_record_schema_of_the_federation_is_compiled() -> None:
    for schema in SCHEMAS.values():
        compile_schema(schema)  # Unsupported would mean fastavro still does that schema's work


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_bytes_and_records_are_fastavros(name: str, data: st.DataObject) -> None:
    record = data.draw(values(SCHEMAS[name], {}))
    encoded = CODEC.encode(name, record)
    assert encoded[10:] == fastavro_bytes(name, record)
    decoded = schemaless_reader(io.BytesIO(encoded[10:]), SCHEMAS[name], None)
    assert CODEC.decode(encoded) == (name, decoded)


def test_fields_left_out_are_written_as_their_defaults_or_null_as_fastavro_writes_them() -> None:
    receipt = {"receipt_id": "r-1", "source_node": "310101", "status": "SENT", "at": datetime.now(UTC)}
    assert CODEC.encode("sgs.Receipt", receipt)[10:] == fastavro_bytes("sgs.Receipt", receipt)
    assert CODEC.decode(CODEC.encode("sgs.Receipt", receipt))[1]["reasons"] == []


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"status": "LOST"}, "KeyError"),  # not a symbol of the enum
        ({"source_node": 310101}, "AttributeError"),  # a number where a string goes
        ({"version": "7"}, "AttributeError"),  # a string where a long goes
        ({"version": 2**63}, "OverflowError"),
        ({"receipt_id": None}, "AttributeError"),  # null where the schema has no null
        ({"reasons": [{"field": "f"}]}, "KeyError"),  # a nested record without its required fields
    ],
)
def test_a_record_that_does_not_fit_raises_serialization_error(change: dict[str, Any], why: str) -> None:
    receipt = {"receipt_id": "r-1", "source_node": "310101", "status": "SENT", "at": datetime.now(UTC)}
    with pytest.raises(SerializationError, match=f"sgs.Receipt: record does not fit the schema: {why}"):
        CODEC.encode("sgs.Receipt", {**receipt, **change})


def test_a_required_field_left_out_raises_serialization_error() -> None:
    with pytest.raises(SerializationError, match="KeyError.*receipt_id"):
        CODEC.encode("sgs.Receipt", {"source_node": "310101", "status": "SENT", "at": datetime.now(UTC)})


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_a_body_cut_short_or_followed_by_junk_is_a_serialization_error(
    name: str, data: st.DataObject
) -> None:
    encoded = CODEC.encode(name, data.draw(values(SCHEMAS[name], {})))
    cut = data.draw(st.integers(10, len(encoded) - 1))
    with pytest.raises(SerializationError):
        CODEC.decode(encoded[:cut])
    with pytest.raises(SerializationError, match="trailing bytes"):
        CODEC.decode(encoded + data.draw(st.binary(min_size=1, max_size=5)))


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@settings(max_examples=80, deadline=None)
@given(data=st.data(), body=st.binary(max_size=300))
def test_random_bytes_after_any_header_raise_only_serialization_error(
    name: str, data: st.DataObject, body: bytes
) -> None:
    header = CODEC.encode(name, data.draw(values(SCHEMAS[name], {})))[:10]
    with contextlib.suppress(SerializationError):
        CODEC.decode(header + body)


def test_a_schema_outside_what_is_compiled_is_left_to_fastavro() -> None:
    floats = {"type": "record", "name": "t.F", "fields": [{"name": "x", "type": "double"}]}
    with pytest.raises(Unsupported):
        compile_schema(floats)
    codec = Codec()
    codec.schemas["sgs.Reason"] = floats  # a codec's own copy of a schema, as the registry test replaces one
    assert codec.encode("sgs.Reason", {"x": 0.5})[10:] == b"\x00\x00\x00\x00\x00\x00\xe0?"


PLAIN_PENALTY_WRITER, _ = compile_schema(plain_schema(SCHEMAS["sgs.PenaltyRecord"]))


@settings(max_examples=20, deadline=None)
@given(record=values(SCHEMAS["sgs.PenaltyRecord"], {}))
def test_the_plain_json_of_a_schema_compiles_to_the_same_bytes(record: dict[str, Any]) -> None:
    """A schema as plain Avro JSON (named types inlined once, referred to by name after: the registry's form)."""
    assert PLAIN_PENALTY_WRITER(record) == fastavro_bytes("sgs.PenaltyRecord", record)
