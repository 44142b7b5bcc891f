"""`sgs.kafka.receipts` (issue 14): receipts go several to a message, per group, in order, within the caps; the
reader flattens both schemas."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sgs.kafka.receipts import MAX_RECEIPTS, MAX_RECEIPTS_BYTES, batches, receipts_in
from sgs.serialization.codec import default_codec


def receipt(node: str, n: int, detail: str | None = None) -> dict[str, Any]:
    return {
        "receipt_id": f"r{n}",
        "record_id": f"license:x:{n}",
        "version": 1,
        "source_node": node,
        "status": "ACCEPTED",
        "at": datetime(2026, 11, 30, tzinfo=UTC),
        "detail": detail,
        "reasons": [],
    }


def flattened(value: bytes) -> list[str]:
    return [r["receipt_id"] for r in receipts_in(*default_codec().decode(value)) or ()]


def test_a_groups_receipts_go_together_in_order_and_groups_in_the_order_they_first_appear() -> None:
    given = [
        ("310101", receipt("310101", 0)),
        ("310115", receipt("310115", 1)),
        ("310101", receipt("310101", 2)),
    ]
    out = batches(default_codec(), given)
    assert [(group, carried, flattened(value)) for group, carried, value in out] == [
        ("310101", [0, 2], ["r0", "r2"]),
        ("310115", [1], ["r1"]),
    ]


def test_a_message_carries_at_most_max_receipts() -> None:
    given = [(("310101", None), receipt("310101", n)) for n in range(2 * MAX_RECEIPTS + 1)]
    out = batches(default_codec(), given)
    assert [len(carried) for _, carried, _ in out] == [MAX_RECEIPTS, MAX_RECEIPTS, 1]
    assert [r for _, _, value in out for r in flattened(value)] == [f"r{n}" for n in range(len(given))]


def test_large_receipts_are_split_under_the_byte_cap_and_one_too_large_goes_alone() -> None:
    big = "长" * (MAX_RECEIPTS_BYTES // 3 // 4)  # about a quarter of the cap in UTF-8
    given = [("310101", receipt("310101", n, big)) for n in range(10)]
    given.insert(5, ("310101", receipt("310101", 99, "长" * MAX_RECEIPTS_BYTES)))
    out = batches(default_codec(), given)
    assert all(len(value) <= MAX_RECEIPTS_BYTES for _, carried, value in out if len(carried) > 1)
    assert [carried for _, carried, _ in out if 5 in carried] == [[5]]
    assert [at for _, carried, _ in out for at in carried] == list(range(11))
    assert len(out) < len(given)


def test_the_reader_takes_one_receipt_or_several_and_nothing_else() -> None:
    one = receipt("310101", 0)
    assert receipts_in("sgs.Receipt", one) == [one]
    assert receipts_in("sgs.Receipts", {"receipts": [one, one]}) == [one, one]
    assert receipts_in("sgs.Rejection", {}) is None
