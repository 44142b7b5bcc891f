"""Counts the monthly bulletin (D8) needs beyond the stages' own, from a topic the worker does not otherwise read.

- `sgs.rejected`: a rejection at stage `node` (the district node held the record back at upload, D12) never reached
  the worker, so it is counted here: `rejected` (records) and `rejected.<rule>` (once per rule, like the worker's
  own). A rejection at a worker stage was already counted by rule there; here it adds `rejected_municipal`
  (records), so the bulletin's rejected share counts each refused record once. Idempotent by (receipt id, stage);
  a rejection without a receipt id (bytes that were never a record) has no department to count against.
  Month: `rejected_at` (China), which for the node is the upload.

The bulletin's counts of accepted records (`published`, `portal_dated`, `clean`) are made by the timeliness stage,
where the annotations they read are decided: reading `sgs.accepted.*` back cost a second pass over every record.

`sgs.rejected` is keyed and partitioned like `sgs.submitted.*`, so its counts land in the same table partitions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import faust

from services.worker.context import WORKER_ONLY, Context, Step, guarded
from sgs.config import TIERS
from sgs.kafka import topics
from sgs.serialization.signing import WORKER, sink_signer


def register(ctx: Context) -> None:
    writers = ctx.node_signers | WORKER_ONLY | {sink_signer(tier) for tier in TIERS}

    def raw_topic(*names: str) -> faust.TopicT:
        return ctx.app.topic(
            *names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )

    rejected = raw_topic(topics.REJECTED)

    @ctx.app.agent(rejected, name="bulletin_rejections")
    async def count_rejections(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await guarded(ctx, "bulletin", event, "unknown", _rejection)

    async def _rejection(event: faust.EventT, step: Step) -> None:
        # Every process that refuses messages writes here (issue 16); only the worker's own rejections and those of
        # the department's node count, which is checked once the rejection is decoded.
        signer = await ctx.signed(event, "unknown", writers)
        if signer is None:
            return
        try:
            name, rejection = ctx.codec.decode(event.value)
        except Exception:  # a foreign message on the topic: not ours to count, nor to reject again
            return
        if name != "sgs.Rejection" or not rejection.get("receipt_id") or rejection["stage"] == "decision":
            return  # a decision on a record (D15, D16) is not a record: the bulletin counts records
        if signer != WORKER and signer != ctx.node_signer_of(rejection):
            await ctx.refuse(event, "unknown", "signature.wrong_signer", f"{signer} 不是部门的节点")
            return
        record_id = rejection.get("record_id") or ""
        kind = record_id.split(":", 1)[0] if record_id.split(":", 1)[0] in topics.KINDS else "unknown"
        labels = ctx.labels(kind, rejection)
        at: datetime = rejection["rejected_at"]
        # The (receipt, stage) is the identity here: one receipt is refused at most once per stage.
        identity: dict[str, Any] = {
            "record_id": f"rejection:{rejection['receipt_id']}",
            "version": rejection["stage"],
            "submitted_at": at,
        }
        if rejection["stage"] == "node":
            ctx.count(identity, labels, "rejected")
            for rule in sorted({r["rule"] for r in rejection["reasons"]}):
                ctx.count(identity, labels, f"rejected.{rule}")
        else:
            ctx.count(identity, labels, "rejected_municipal")
