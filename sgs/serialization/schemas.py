"""The Avro schemas of the federation, from `schemas/` (`<namespace>.<Name>.avsc`, one per record and event): the only
place the wire format and the template's columns are written down."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

from fastavro.schema import load_schema

SCHEMA_DIR = Path(os.environ.get("SGS_SCHEMA_DIR", Path(__file__).resolve().parents[2] / "schemas"))


@cache
def load_schemas(schema_dir: Path = SCHEMA_DIR) -> dict[str, Any]:
    """Every schema of the directory by full name, parsed by fastavro (named types resolved)."""
    schemas: dict[str, Any] = {}
    for path in sorted(schema_dir.glob("*.avsc")):
        schema = load_schema(str(path))
        schemas[schema["name"] if isinstance(schema, dict) else path.stem] = schema
    return schemas


def plain_schema(schema: Any) -> Any:
    """A schema loaded by fastavro as plain Avro JSON (named types inlined once, fastavro's own keys dropped)."""
    if isinstance(schema, dict):
        return {k: plain_schema(v) for k, v in schema.items() if not k.startswith("__")}
    if isinstance(schema, list):
        return [plain_schema(v) for v in schema]
    return schema
