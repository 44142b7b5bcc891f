"""`Context.receipt` (issue 16): a receipt goes to its source node's own topic; one for a node not in the federation
config, which has no topic, is counted and dropped, and the next receipt still goes."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from prometheus_client import REGISTRY

from services.worker.context import Context


def _envelope(node: str) -> dict[str, Any]:
    return {"receipt_id": "r1", "record_id": "license:x:1", "version": 1, "source_node": node}


def test_a_receipt_goes_to_its_nodes_topic_and_one_for_an_unknown_node_is_counted_not_sent() -> None:
    sent: list[tuple[str, str, str, dict[str, Any]]] = []

    async def send(topic: str, key: str, schema: str, value: dict[str, Any]) -> None:
        sent.append((topic, key, schema, value))

    ctx = SimpleNamespace(_nodes={"310101"}, send=send)
    unsent = lambda: REGISTRY.get_sample_value("sgs_worker_receipts_unsent_total") or 0  # noqa: E731
    before = unsent()

    async def both() -> None:
        await Context.receipt(ctx, _envelope("319999"), "ACCEPTED")  # type: ignore[arg-type]
        await Context.receipt(ctx, _envelope("310101"), "ACCEPTED")  # type: ignore[arg-type]

    asyncio.run(both())
    assert unsent() == before + 1
    assert [(topic, key, value["source_node"]) for topic, key, _, value in sent] == [
        ("sgs.receipts.310101", "310101", "310101")
    ]
