"""The node's fast intake path (issue 14): msgspec reads request bodies and writes the answers to submissions
exactly as the standard library did, and receipt ids come in batches from one `os.urandom` call."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from starlette.responses import JSONResponse

from services.node.api import FastJSONResponse, parse_json
from services.node.intake import Outcome, content_bytes, random_ids
from sgs.domain.records import parse_envelope, parse_row, split_envelope
from sgs.domain.workdays import CHINA
from tests.support.node_records import clean


def stdlib(raw: bytes) -> Any:
    """What the node read bodies with before msgspec."""
    return json.loads(raw, parse_float=Decimal)


def outcome(raw: bytes) -> tuple[str, Any]:
    try:
        value = parse_json(raw)
    except (ValueError, RecursionError) as exc:
        return "error", (type(exc), str(exc))
    return "value", (value, repr(value))


def expected(raw: bytes) -> tuple[str, Any]:
    try:
        value = stdlib(raw)
    except (ValueError, RecursionError) as exc:
        return "error", (type(exc), str(exc))
    return "value", (value, repr(value))


def test_a_float_in_a_body_is_read_as_the_exact_decimal_of_its_text() -> None:
    raw = '{"罚款金额(万元)": 99999999999.999999, "b": 0.1000000000000000055511151231257827, "c": 1e400}'.encode()
    body = parse_json(raw)
    assert body == {
        "罚款金额(万元)": Decimal("99999999999.999999"),  # as a float: 100000000000.0
        "b": Decimal("0.1000000000000000055511151231257827"),
        "c": Decimal("1E+400"),
    }
    assert all(type(v) is Decimal for v in body.values())


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": 1.10, "b": -0.0, "c": 2.0, "d": 1E5, "e": 123456789012345678901234567890, "f": [1, true, null]}',
        b'{"a": 1, "a": 2}',
        '  {"违法事实": "\\u7f5a\\n\\t", "处罚机关": "上海市"}  '.encode(),
        b"18446744073709551616",
        b"-9223372036854775809",
        # what msgspec refuses and the standard library reads: the same value
        b"NaN",
        b'{"a": Infinity}',
        b'"\\ud800"',
        b'"\xed\xa0\x80"',
        b"\xef\xbb\xbf{}",
        '{"a": 1.5}'.encode("utf-16"),
        # what both refuse: the standard library's error, with its line and column
        b'{"a": ',
        b"[1,]",
        b'"\x01"',
        b"\xff\xfe",
        b"01",
        b"1 2",
        b"[" * 100_000,
    ],
)
def test_every_body_is_read_as_json_loads_with_decimals_read_it(raw: bytes) -> None:
    assert outcome(raw) == expected(raw)


def test_answers_are_the_bytes_starlettes_encoder_wrote() -> None:
    results = [
        {"index": 0, **Outcome("taken", "a" * 32, "penalty:X:沪市监罚〔2025〕1号", 1, [], 2, True).as_json()},
        {
            "index": 1,
            **Outcome(
                "rejected",
                "b" * 32,
                None,
                None,
                [
                    {
                        "field": "违法事实",
                        "rule": "required",
                        "message": "必填\n",
                        "value": '\x00\x1f\x7f"\\/\u2028😀',
                    }
                ],
            ).as_json(),
        },
    ]
    content = {"taken": 1, "unchanged": 0, "rejected": 1, "forbidden": 0, "results": results}
    assert FastJSONResponse(content).body == JSONResponse(content).body
    assert FastJSONResponse(content, status_code=207).status_code == 207


def test_random_ids_are_distinct_version_4_uuids() -> None:
    ids = list(random_ids(1000))
    assert len(ids) == len(set(ids)) == 1000
    for text in ids:
        parsed = uuid.UUID(hex=text)
        assert (parsed.version, parsed.variant, parsed.hex) == (4, uuid.RFC_4122, text)


def _content_bytes_as_before(kind: str, body: dict[str, Any], operation: str, published_at: Any) -> bytes:
    """How D4's content bytes were written before msgspec; the content hashes already stored are of these."""
    content = {"kind": kind, "body": body, "operation": operation, "published_at": published_at}
    return json.dumps(
        content, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":")
    ).encode()


def test_content_bytes_are_the_bytes_the_stored_hashes_were_made_of(federation) -> None:
    now = datetime.now(UTC)
    items = clean(federation, 300)
    assert any(i.published_at is not None for i in items) and {i.kind for i in items} == {
        "license",
        "penalty",
    }
    for item in items:
        rest, env = split_envelope(item.http_body())
        body, issues = parse_row(item.kind, rest)
        version, operation, published_at, _ = parse_envelope(env, now)
        assert body is not None and not issues and operation is not None
        assert content_bytes(item.kind, body, operation, published_at) == _content_bytes_as_before(
            item.kind, body, operation, published_at
        )
    odd = {
        "z": [Decimal("1E+5"), Decimal("-0.0"), Decimal("1.000000")],
        "counterpart": {"名称": '上海\\某"公司\n\x01\u2028😀', "a": None, "Z": date(2025, 1, 31)},
        "é": "～",
    }
    for published in (
        None,
        datetime(2025, 3, 4, 5, 6, 7, 890123, tzinfo=CHINA),
        datetime(2025, 3, 4, tzinfo=UTC),
    ):
        assert content_bytes("penalty", odd, "UPDATE", published) == _content_bytes_as_before(
            "penalty", odd, "UPDATE", published
        )
