"""Schema evolution: every schema stays FULL-compatible with its last released version (issue 3, ARCHITECTURE).

The released versions are a frozen copy in tests/schemas_baseline/ (works on fresh and shallow clones, unlike
`git show <base>:...`). Compatibility is decided by the `avro` package's ReaderWriterCompatibilityChecker.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import avro.schema
import pytest
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
from fastavro.schema import load_schema

from sgs.serialization.schemas import plain_schema
from tests.support.paths import REPO

ROOT = REPO
CURRENT, BASELINE = ROOT / "schemas", ROOT / "tests" / "schemas_baseline"


def expanded(path: Path) -> dict[str, Any]:
    """The schema with the named types it uses inlined, as the avro package needs one self-contained JSON."""
    return plain_schema(load_schema(str(path)))  # type: ignore[no-any-return]


def problems(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Why `new` is not FULL-compatible with `old`; empty when it is."""
    old_s, new_s = avro.schema.parse(json.dumps(old)), avro.schema.parse(json.dumps(new))
    out = []
    for direction, reader, writer in (("backward", new_s, old_s), ("forward", old_s, new_s)):
        result = ReaderWriterCompatibilityChecker().get_compatibility(reader, writer)
        if result.compatibility is not SchemaCompatibilityType.compatible:
            out.append(f"{direction}: {'; '.join(result.messages)} at {', '.join(result.locations)}")
    return out


def test_no_released_schema_was_removed() -> None:
    assert {p.name for p in BASELINE.glob("*.avsc")} <= {p.name for p in CURRENT.glob("*.avsc")}


@pytest.mark.parametrize("name", sorted(p.name for p in CURRENT.glob("*.avsc")))
def test_schema_is_compatible_with_its_released_version(name: str) -> None:
    if not (BASELINE / name).exists():
        pytest.skip(f"{name} is new: no released version yet")
    assert problems(expanded(BASELINE / name), expanded(CURRENT / name)) == []


def penalty() -> dict[str, Any]:
    return copy.deepcopy(expanded(CURRENT / "sgs.PenaltyRecord.avsc"))


def field(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in schema["fields"] if f["name"] == name)


def test_adding_an_optional_field_with_a_default_is_compatible() -> None:
    new = penalty()
    new["fields"].append({"name": "case_no", "type": ["null", "string"], "default": None})
    assert problems(penalty(), new) == []


def test_adding_a_required_field_without_default_is_caught() -> None:
    new = penalty()
    new["fields"].append({"name": "case_no", "type": "string"})
    assert any(p.startswith("backward") for p in problems(penalty(), new))


def test_changing_a_field_type_is_caught() -> None:
    new = penalty()
    field(new, "violation_type")["type"] = "int"
    assert len(problems(penalty(), new)) == 2


def test_removing_an_enum_symbol_is_caught() -> None:
    new = penalty()
    procedure = field(new, "procedure")["type"]
    procedure["symbols"] = ["GENERAL"]
    assert any(p.startswith("backward") for p in problems(penalty(), new))
