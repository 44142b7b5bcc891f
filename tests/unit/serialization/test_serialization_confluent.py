"""The Confluent wire format against a real (tiny) schema registry over HTTP, and a decoder for both framings."""

from __future__ import annotations

import datetime
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sgs.serialization.codec import Codec, SerializationError
from sgs.serialization.registry import SchemaRegistry
from sgs.serialization.schemas import plain_schema

RECEIPT = {
    "receipt_id": "r-confluent-1",
    "record_id": "penalty:113101010010100169:沪罚〔2024〕1号",
    "version": 3,
    "source_node": "310101",
    "status": "ACCEPTED",
    "at": datetime.datetime(2024, 4, 1, 9, 30, tzinfo=datetime.UTC),
    "detail": None,
    "reasons": [{"field": "许可内容", "rule": "required", "message": "许可内容为必填项", "value": None}],
}


class TinyRegistry(ThreadingHTTPServer):
    """The two calls of the Confluent Schema Registry REST API the codec uses, with the same JSON shapes."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.ids: dict[str, int] = {}  # schema text -> id
        self.subjects: dict[str, list[int]] = {}
        self.requests: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: TinyRegistry

    def _answer(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.server.requests.append(f"POST {self.path}")
        parts = self.path.strip("/").split("/")
        if len(parts) != 3 or parts[0] != "subjects" or parts[2] != "versions":
            return self._answer(404, {"error_code": 404, "message": "HTTP 404 Not Found"})
        text = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["schema"]
        schema_id = self.server.ids.setdefault(text, len(self.server.ids) + 1)
        self.server.subjects.setdefault(parts[1], []).append(schema_id)
        self._answer(200, {"id": schema_id})

    def do_GET(self) -> None:  # noqa: N802
        self.server.requests.append(f"GET {self.path}")
        by_id = {i: text for text, i in self.server.ids.items()}
        prefix = "/schemas/ids/"
        if (
            self.path.startswith(prefix)
            and self.path[len(prefix) :].isdigit()
            and int(self.path[len(prefix) :]) in by_id
        ):
            return self._answer(200, {"schema": by_id[int(self.path[len(prefix) :])]})
        self._answer(404, {"error_code": 40403, "message": "Schema not found"})

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def registry() -> Iterator[TinyRegistry]:
    server = TinyRegistry()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_confluent_framing_registers_the_topic_subject_and_round_trips(registry: TinyRegistry) -> None:
    client = SchemaRegistry(registry.url)
    codec = Codec(registry=client)
    data = codec.encode("sgs.Receipt", RECEIPT, topic="sgs.receipts")
    assert data[0] == 0 and int.from_bytes(data[1:5], "big") == 1
    assert registry.subjects == {"sgs.receipts-value": [1]}
    # a fresh codec (another process) learns the writer schema from the registry by id
    reader = Codec(registry=SchemaRegistry(registry.url))
    assert reader.decode(data) == ("sgs.Receipt", RECEIPT)
    assert "GET /schemas/ids/1" in registry.requests
    client.close()


def test_registry_ids_and_schemas_are_cached(registry: TinyRegistry) -> None:
    codec = Codec(registry=SchemaRegistry(registry.url))
    for _ in range(3):
        codec.decode(codec.encode("sgs.Receipt", RECEIPT, topic="sgs.receipts"))
    assert registry.requests.count("POST /subjects/sgs.receipts-value/versions") == 1
    assert sum(r.startswith("GET") for r in registry.requests) == 1


def test_without_a_topic_the_subject_is_the_record_name(registry: TinyRegistry) -> None:
    Codec(registry=SchemaRegistry(registry.url)).encode("sgs.Receipt", RECEIPT)
    assert list(registry.subjects) == ["sgs.Receipt"]


def test_a_codec_decodes_both_framings(registry: TinyRegistry) -> None:
    single = Codec().encode("sgs.Receipt", RECEIPT)
    confluent = Codec(registry=SchemaRegistry(registry.url)).encode("sgs.Receipt", RECEIPT, topic="t")
    both = Codec(registry=SchemaRegistry(registry.url))
    assert both.decode(single) == both.decode(confluent) == ("sgs.Receipt", RECEIPT)


def test_a_writer_schema_older_than_ours_is_resolved_to_ours(registry: TinyRegistry) -> None:
    """Schema evolution on the wire: a producer still on a schema without `detail` (which has a default)."""
    older = plain_schema(Codec().schemas["sgs.Receipt"])
    older["fields"] = [f for f in older["fields"] if f["name"] != "detail"]
    writer = Codec(registry=SchemaRegistry(registry.url))
    writer.schemas["sgs.Receipt"] = older  # this producer's copy of the schema
    old_record = {k: v for k, v in RECEIPT.items() if k != "detail"}
    data = writer.encode("sgs.Receipt", old_record, topic="sgs.receipts")
    name, decoded = Codec(registry=SchemaRegistry(registry.url)).decode(data)
    assert name == "sgs.Receipt" and decoded == {**old_record, "detail": None}


def test_confluent_bytes_without_a_registry_fail_clearly(registry: TinyRegistry) -> None:
    data = Codec(registry=SchemaRegistry(registry.url)).encode("sgs.Receipt", RECEIPT, topic="t")
    with pytest.raises(SerializationError, match="no schema registry is configured"):
        Codec().decode(data)


def test_unknown_schema_id_and_unreachable_registry_fail_clearly(registry: TinyRegistry) -> None:
    with pytest.raises(SerializationError, match="HTTP 404: Schema not found"):
        Codec(registry=SchemaRegistry(registry.url)).decode(b"\x00\x00\x00\x00\x63\x02")
    registry.shutdown()
    registry.server_close()
    with pytest.raises(SerializationError, match="schema registry"):
        Codec(registry=SchemaRegistry(registry.url, timeout=2)).encode("sgs.Receipt", RECEIPT, topic="t")


@pytest.mark.parametrize("data", [b"", b"\x01\x02\x03", b'{"json": true}', b"\xc3\x01\x00", b"\x00\x00"])
def test_bytes_in_neither_framing_fail_clearly(data: bytes) -> None:
    with pytest.raises(SerializationError, match="neither Avro single-object encoding"):
        Codec().decode(data)
