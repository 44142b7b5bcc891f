"""`Context.receipt` (issue 16): a receipt goes to its source node's own topic; one for a node not in the federation
config, which has no topic, is counted and dropped, and the next receipt still goes."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from prometheus_client import REGISTRY

from services.worker.context import Context
from sgs.kafka.receipts import receipts_in
from sgs.serialization.codec import default_codec


def _envelope(node: str) -> dict[str, Any]:
    return {"receipt_id": "r1", "record_id": "license:x:1", "version": 1, "source_node": node}


def test_a_receipt_goes_to_its_nodes_topic_and_one_for_an_unknown_node_is_counted_not_sent() -> None:
    sent: list[tuple[str, bytes | None, bytes]] = []

    async def emit(topic: str, key: bytes | None, value: bytes) -> None:
        sent.append((topic, key, value))

    ctx = SimpleNamespace(_nodes={"310101"}, emit=emit, codec=default_codec(), _transaction=lambda: None)
    ctx.receipt_messages = lambda receipts: Context.receipt_messages(ctx, receipts)  # type: ignore[arg-type]
    unsent = lambda: REGISTRY.get_sample_value("sgs_worker_receipts_unsent_total") or 0  # noqa: E731
    before = unsent()

    async def both() -> None:
        await Context.receipt(ctx, _envelope("319999"), "ACCEPTED")  # type: ignore[arg-type]
        await Context.receipt(ctx, _envelope("310101"), "ACCEPTED")  # type: ignore[arg-type]

    asyncio.run(both())
    assert unsent() == before + 1
    # outside an agent a receipt goes at once, alone, as the one schema receipts travel in (issue 14)
    decoded = [(topic, key, receipts_in(*default_codec().decode(value))) for topic, key, value in sent]
    assert [(topic, key, [r["source_node"] for r in rs or ()]) for topic, key, rs in decoded] == [
        ("sgs.receipts.310101", b"310101", ["310101"])
    ]
