"""A small client of the Confluent Schema Registry, for the Confluent wire format (`codec`)."""

from __future__ import annotations

import json
import threading
from typing import Any
from urllib.parse import quote

import httpx

from sgs.serialization.codec import SerializationError

_REGISTRY_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


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
