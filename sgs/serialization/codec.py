"""Avro on the wire: single-object encoding (0xC3 0x01 + CRC-64-AVRO fingerprint + body), resolved against the
schemas in `schemas/` with no server; or, when a schema registry is configured (`SGS_SCHEMA_REGISTRY_URL`), the
Confluent wire format (0x00 + 4-byte big-endian schema id + body). A codec decodes both framings, whatever it
encodes with. Every library error becomes a `SerializationError`, so callers catch one thing.

Bodies are written, and read when written with our own schema, by code compiled from each schema
(`sgs.serialization.compiled`: byte for byte fastavro's, writing two to four times and reading about twice as fast);
fastavro reads what another schema version wrote (the registry's), and any schema the compiler does not take.
"""

from __future__ import annotations

import io
import os
import struct
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import fingerprint, to_parsing_canonical_form

from sgs.serialization.compiled import Reader, Unsupported, Writer, compile_schema
from sgs.serialization.schemas import SCHEMA_DIR, load_schemas, plain_schema

if TYPE_CHECKING:
    from sgs.serialization.registry import SchemaRegistry

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"
_CONFLUENT_HEADER = struct.Struct(">bI")  # magic byte, schema id


class SerializationError(Exception):
    """Bytes that are not a record we know, or a record that does not fit its schema."""


class Codec:
    """Encodes and decodes every schema in a directory of `.avsc` files named `<namespace>.<Name>.avsc`.

    `registry`: when given, `encode` writes the Confluent wire format, registering the schema under the subject
    `<topic>-value` (TopicNameStrategy) when a topic is given, else under the schema's full name
    (RecordNameStrategy). Without it, `encode` writes single-object encoding. `decode` reads both."""

    def __init__(self, schema_dir: Path = SCHEMA_DIR, registry: SchemaRegistry | None = None) -> None:
        self.registry = registry
        self._writers: dict[int, tuple[str, Any, Any]] = {}  # schema id -> (name, writer, reader)
        self.schemas: dict[str, Any] = dict(
            load_schemas(schema_dir)
        )  # a copy: a codec may hold its own version
        self._by_fingerprint: dict[bytes, str] = {}
        self._header: dict[str, bytes] = {}
        self._compiled: dict[str, tuple[Any, tuple[Writer, Reader] | None]] = {}  # name -> (schema, its code)
        for name, schema in self.schemas.items():
            fp = bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))
            self._by_fingerprint[fp] = name
            self._header[name] = SINGLE_OBJECT_MAGIC + fp

    def encode(self, name: str, record: dict[str, Any], *, topic: str | None = None) -> bytes:
        """`name` is the full schema name, e.g. `sgs.PenaltyRecord`; `topic` names the registry subject."""
        try:
            schema, header = self.schemas[name], self._header[name]
        except KeyError:
            raise SerializationError(f"unknown schema {name!r}") from None
        if self.registry is not None:
            subject = f"{topic}-value" if topic else name
            header = _CONFLUENT_HEADER.pack(0, self.registry.register(subject, plain_schema(schema)))
        try:
            compiled = self._code(name, schema)
            if compiled is not None:
                return header + compiled[0](record)
            buf = io.BytesIO()
            buf.write(header)
            schemaless_writer(buf, schema, record)
            return buf.getvalue()
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            raise SerializationError(f"{name}: record does not fit the schema: {exc!r}") from exc

    def decode(self, data: bytes) -> tuple[str, dict[str, Any]]:
        """Returns (schema name, record), from either framing."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise SerializationError(f"expected bytes, got {type(data).__name__}")
        data = bytes(data)
        if data[:2] == SINGLE_OBJECT_MAGIC and len(data) >= 10:
            name = self._by_fingerprint.get(data[2:10])
            if name is None:
                raise SerializationError(f"unknown schema fingerprint {data[2:10].hex()}")
            writer, reader, start = self.schemas[name], None, 10
        elif data[:1] == CONFLUENT_MAGIC and len(data) >= _CONFLUENT_HEADER.size:
            name, writer, reader = self._confluent_schemas(_CONFLUENT_HEADER.unpack_from(data)[1])
            start = _CONFLUENT_HEADER.size
        else:
            raise SerializationError(
                "neither Avro single-object encoding (C3 01 + fingerprint) nor the Confluent wire format "
                f"(00 + schema id); starts with {data[:4].hex() or 'nothing'}"
            )
        compiled = self._code(name, writer) if reader is None else None
        record: Any
        try:
            if compiled is not None:
                record, end = compiled[1](data, start)
            else:
                buf = io.BytesIO(data)
                buf.seek(start)
                record = schemaless_reader(buf, writer, reader)
                end = buf.tell()
        except Exception as exc:  # corrupt input raises many types here; all mean the same
            raise SerializationError(f"{name}: corrupt body: {exc!r}") from exc
        if end != len(data):
            raise SerializationError(f"{name}: {len(data) - end} trailing bytes after the record")
        return name, record

    def _code(self, name: str, schema: Any) -> tuple[Writer, Reader] | None:
        """The compiled writer and reader of `schema` (compiled on first use, and again if the codec's copy of the
        schema was replaced), or None where fastavro does the work."""
        held = self._compiled.get(name)
        if held is None or held[0] is not schema:
            try:
                held = (schema, compile_schema(schema))
            except Unsupported:
                held = (schema, None)
            self._compiled[name] = held
        return held[1]

    def _confluent_schemas(self, schema_id: int) -> tuple[str, Any, Any]:
        """(name, writer schema, reader schema) for a registry id; the reader is our schema of that name, so
        records written with an older or newer compatible schema arrive in the shape of ours."""
        if schema_id not in self._writers:
            if self.registry is None:
                raise SerializationError(
                    f"Confluent wire format (schema id {schema_id}) but no schema registry is configured"
                )
            try:
                writer = parse_schema(self.registry.schema(schema_id))
            except SerializationError:
                raise
            except Exception as exc:  # fastavro rejects a bad schema with many types
                raise SerializationError(f"schema id {schema_id}: not a usable Avro schema: {exc}") from exc
            name = writer.get("name", "") if isinstance(writer, dict) else str(writer)
            self._writers[schema_id] = (name, writer, self.schemas.get(name))
        return self._writers[schema_id]


@cache
def default_codec() -> Codec:
    """The process's codec: Confluent framing when `SGS_SCHEMA_REGISTRY_URL` is set, single-object otherwise."""
    url = os.environ.get("SGS_SCHEMA_REGISTRY_URL")
    if not url:
        return Codec()
    from sgs.serialization.registry import SchemaRegistry

    return Codec(registry=SchemaRegistry(url))
