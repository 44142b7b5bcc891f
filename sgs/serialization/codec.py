"""Avro on the wire: single-object encoding (0xC3 0x01 + CRC-64-AVRO fingerprint + body), resolved against the
schemas in `schemas/` with no server; or, when a schema registry is configured (`SGS_SCHEMA_REGISTRY_URL`), the
Confluent wire format (0x00 + 4-byte big-endian schema id + body). A codec decodes both framings, whatever it
encodes with. Every library error becomes a `SerializationError`, so callers catch one thing.
"""

from __future__ import annotations

import io
import json
import os
import struct
import threading
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import fingerprint, load_schema, to_parsing_canonical_form

SCHEMA_DIR = Path(os.environ.get("SGS_SCHEMA_DIR", Path(__file__).resolve().parents[2] / "schemas"))
SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"
_CONFLUENT_HEADER = struct.Struct(">bI")  # magic byte, schema id
_REGISTRY_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class SerializationError(Exception):
    """Bytes that are not a record we know, or a record that does not fit its schema."""


def plain_schema(schema: Any) -> Any:
    """A schema loaded by fastavro as plain Avro JSON (named types inlined once, fastavro's own keys dropped)."""
    if isinstance(schema, dict):
        return {k: plain_schema(v) for k, v in schema.items() if not k.startswith("__")}
    if isinstance(schema, list):
        return [plain_schema(v) for v in schema]
    return schema


class SchemaRegistry:
    """A small client of the Confluent Schema Registry REST API: register a subject's schema, fetch one by id.

    Both answers are cached, so a process asks once per (subject, schema) and once per id. `url` is the
    registry's base URL (e.g. `http://127.0.0.1:8081`); `timeout` is per request, in seconds."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url, timeout=timeout, headers={"Accept": _REGISTRY_CONTENT_TYPE}
        )
        self._ids: dict[tuple[str, str], int] = {}
        self._schemas: dict[int, Any] = {}
        self._lock = threading.Lock()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise SerializationError(f"schema registry {self.url}: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict):
            detail = body.get("message") if isinstance(body, dict) else response.text[:200]
            raise SerializationError(
                f"schema registry {self.url}{path}: HTTP {response.status_code}: {detail}"
            )
        return body

    def register(self, subject: str, schema: Any) -> int:
        """The id of `schema` under `subject`, registering it if the registry does not have it yet."""
        text = json.dumps(schema, ensure_ascii=False, sort_keys=True)
        key = (subject, text)
        with self._lock:
            if key in self._ids:
                return self._ids[key]
        body = self._call(
            "POST",
            f"/subjects/{quote(subject, safe='')}/versions",
            content=json.dumps({"schema": text}).encode(),
            headers={"Content-Type": _REGISTRY_CONTENT_TYPE},
        )
        schema_id = body.get("id")
        if not isinstance(schema_id, int):
            raise SerializationError(
                f"schema registry {self.url}: no id in the answer to registering {subject}"
            )
        with self._lock:
            self._ids[key] = schema_id
        return schema_id

    def schema(self, schema_id: int) -> Any:
        """The schema with this id (parsed JSON)."""
        with self._lock:
            if schema_id in self._schemas:
                return self._schemas[schema_id]
        body = self._call("GET", f"/schemas/ids/{schema_id}")
        try:
            schema = json.loads(body["schema"])
        except (KeyError, TypeError, ValueError) as exc:
            raise SerializationError(
                f"schema registry {self.url}: schema {schema_id} is not Avro JSON"
            ) from exc
        with self._lock:
            self._schemas[schema_id] = schema
        return schema

    def close(self) -> None:
        self._http.close()


class Codec:
    """Encodes and decodes every schema in a directory of `.avsc` files named `<namespace>.<Name>.avsc`.

    `registry`: when given, `encode` writes the Confluent wire format, registering the schema under the subject
    `<topic>-value` (TopicNameStrategy) when a topic is given, else under the schema's full name
    (RecordNameStrategy). Without it, `encode` writes single-object encoding. `decode` reads both."""

    def __init__(self, schema_dir: Path = SCHEMA_DIR, registry: SchemaRegistry | None = None) -> None:
        self.registry = registry
        self._writers: dict[int, tuple[str, Any, Any]] = {}  # schema id -> (name, writer, reader)
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

    def encode(self, name: str, record: dict[str, Any], *, topic: str | None = None) -> bytes:
        """`name` is the full schema name, e.g. `sgs.PenaltyRecord`; `topic` names the registry subject."""
        try:
            schema, header = self.schemas[name], self._header[name]
        except KeyError:
            raise SerializationError(f"unknown schema {name!r}") from None
        if self.registry is not None:
            subject = f"{topic}-value" if topic else name
            header = _CONFLUENT_HEADER.pack(0, self.registry.register(subject, plain_schema(schema)))
        buf = io.BytesIO()
        buf.write(header)
        try:
            schemaless_writer(buf, schema, record)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise SerializationError(f"{name}: record does not fit the schema: {exc}") from exc
        return buf.getvalue()

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
        buf = io.BytesIO(data)
        buf.seek(start)
        try:
            record = schemaless_reader(buf, writer, reader)
        except Exception as exc:  # fastavro raises many types on corrupt input; all mean the same here
            raise SerializationError(f"{name}: corrupt body: {exc}") from exc
        if buf.tell() != len(data):
            raise SerializationError(f"{name}: {len(data) - buf.tell()} trailing bytes after the record")
        return name, record  # type: ignore[return-value]

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
    return Codec(registry=SchemaRegistry(url) if url else None)
