"""The national 双公示 template, read from the Avro schemas: one `TemplateField` per template column (D1, D2).

The schemas in `schemas/` are the only place the columns are written down: each field that a department fills in
carries a custom `"column"` attribute (the Chinese column name) and each enum carries `"labels"` (the Chinese code
list). Everything here is derived from them, so a column added to a schema appears in the template, the parser and
the validator at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sgs.domain.kinds import KINDS, SCHEMA_NAME
from sgs.serialization.schemas import load_schemas

# How a template cell maps to Avro.
STRING, DATE, DECIMAL, ENUM, ENUM_ARRAY = "string", "date", "decimal", "enum", "enum_array"


@dataclass(frozen=True)
class TemplateField:
    """One template column: where it lives in the Avro record and what values it takes."""

    column: str  # Chinese template column name
    path: tuple[str, ...]  # ("decided_on",) or ("counterpart", "uscc")
    type: str  # STRING, DATE, DECIMAL, ENUM or ENUM_ARRAY
    nullable: bool
    symbols: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)  # symbol -> Chinese label
    precision: int = 0
    scale: int = 0

    @property
    def name(self) -> str:
        """The Avro field name (the last step of the path)."""
        return self.path[-1]

    def symbol_for(self, text: str) -> str | None:
        """The enum symbol for a Chinese label or a symbol; None when it is neither."""
        if text in self.symbols:
            return text
        for symbol, label in self.labels.items():
            if label == text:
                return symbol
        return None


def _classify(avro_type: Any) -> tuple[bool, dict[str, Any] | str]:
    """(nullable, the non-null branch) of a field type."""
    if isinstance(avro_type, list):
        branches = [t for t in avro_type if t != "null"]
        if len(branches) != 1:
            raise ValueError(f"template fields are T or [null, T], not {avro_type!r}")
        return True, branches[0]
    return False, avro_type


def _template_field(column: str, path: tuple[str, ...], avro_type: Any) -> TemplateField:
    nullable, t = _classify(avro_type)
    if t == "string":
        return TemplateField(column, path, STRING, nullable)
    if isinstance(t, dict):
        logical = t.get("logicalType")
        if logical == "date":
            return TemplateField(column, path, DATE, nullable)
        if logical == "decimal":
            return TemplateField(column, path, DECIMAL, nullable, precision=t["precision"], scale=t["scale"])
        if t.get("type") == "enum":
            return TemplateField(column, path, ENUM, nullable, tuple(t["symbols"]), dict(t.get("labels", {})))
        items = t.get("items")
        if t.get("type") == "array" and isinstance(items, dict) and items.get("type") == "enum":
            labels = dict(items.get("labels", {}))
            return TemplateField(column, path, ENUM_ARRAY, nullable, tuple(items["symbols"]), labels)
    raise ValueError(f"column {column!r}: unsupported Avro type {avro_type!r}")


@cache
def template_fields(kind: str) -> tuple[TemplateField, ...]:
    """The template's columns for `kind` ("license" or "penalty"), in template order."""
    if kind not in SCHEMA_NAME:
        raise ValueError(f"unknown record kind {kind!r}; expected one of {KINDS}")
    return schema_fields(SCHEMA_NAME[kind])


@cache
def schema_fields(schema_name: str) -> tuple[TemplateField, ...]:
    """The fields of any schema that carry a `column`, in order (a counterpart's flattened into them)."""
    schema = load_schemas()[schema_name]
    out: list[TemplateField] = []
    for f in schema["fields"]:
        if "column" in f:
            out.append(_template_field(f["column"], (f["name"],), f["type"]))
        elif isinstance(f["type"], dict) and f["type"].get("name") == "sgs.Counterpart":
            for cf in f["type"]["fields"]:
                out.append(_template_field(cf["column"], (f["name"], cf["name"]), cf["type"]))
    return tuple(out)


def template_columns(kind: str) -> list[str]:
    """The template header for `kind`, in order."""
    return [f.column for f in template_fields(kind)]


@cache
def field_by_column(kind: str) -> dict[str, TemplateField]:
    return {f.column: f for f in template_fields(kind)}


@cache
def field_by_name(kind: str) -> dict[str, TemplateField]:
    """By Avro field name; counterpart fields by their own name (the flat form), which never clash."""
    return {f.name: f for f in template_fields(kind)}


@cache
def field_by_key(kind: str) -> dict[str, TemplateField]:
    """Template column names and Avro field names (flat counterpart), to their field: how a row's keys resolve."""
    return {**field_by_name(kind), **field_by_column(kind)}
