"""Avro on the wire: single-object encoding (0xC3 0x01 + CRC-64-AVRO fingerprint + body), resolved against the
schemas in `schemas/` with no server. Every library error becomes a `SerializationError`, so callers catch one thing.
"""

from __future__ import annotations

import io
import os
from functools import cache
from pathlib import Path
from typing import Any

from fastavro import schemaless_reader, schemaless_writer
from fastavro.schema import fingerprint, load_schema, to_parsing_canonical_form

SCHEMA_DIR = Path(os.environ.get("SGS_SCHEMA_DIR", Path(__file__).resolve().parent.parent / "schemas"))
SINGLE_OBJECT_MAGIC = b"\xc3\x01"


class SerializationError(Exception):
    """Bytes that are not a record we know, or a record that does not fit its schema."""


class Codec:
    """Encodes and decodes every schema in a directory of `.avsc` files named `<namespace>.<Name>.avsc`."""

    def __init__(self, schema_dir: Path = SCHEMA_DIR) -> None:
        self.schemas: dict[str, Any] = {}
        self._by_fingerprint: dict[bytes, str] = {}
        self._header: dict[str, bytes] = {}
        for path in sorted(schema_dir.glob("*.avsc")):
            schema = load_schema(str(path))
            name = schema["name"] if isinstance(schema, dict) else path.stem
            fp = bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))
            self.schemas[name] = schema
            self._by_fingerprint[fp] = name
            self._header[name] = SINGLE_OBJECT_MAGIC + fp

    def encode(self, name: str, record: dict[str, Any]) -> bytes:
        """`name` is the full schema name, e.g. `sgs.PenaltyRecord`."""
        try:
            schema, header = self.schemas[name], self._header[name]
        except KeyError:
            raise SerializationError(f"unknown schema {name!r}") from None
        buf = io.BytesIO()
        buf.write(header)
        try:
            schemaless_writer(buf, schema, record)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise SerializationError(f"{name}: record does not fit the schema: {exc}") from exc
        return buf.getvalue()

    def decode(self, data: bytes) -> tuple[str, dict[str, Any]]:
        """Returns (schema name, record)."""
        if len(data) < 10 or data[:2] != SINGLE_OBJECT_MAGIC:
            raise SerializationError("not Avro single-object encoding (no C3 01 header)")
        name = self._by_fingerprint.get(data[2:10])
        if name is None:
            raise SerializationError(f"unknown schema fingerprint {data[2:10].hex()}")
        buf = io.BytesIO(data)
        buf.seek(10)
        try:
            record = schemaless_reader(buf, self.schemas[name], None)
        except Exception as exc:  # fastavro raises many types on corrupt input; all mean the same here
            raise SerializationError(f"{name}: corrupt body: {exc}") from exc
        if buf.tell() != len(data):
            raise SerializationError(f"{name}: {len(data) - buf.tell()} trailing bytes after the record")
        return name, record  # type: ignore[return-value]


@cache
def default_codec() -> Codec:
    return Codec()
