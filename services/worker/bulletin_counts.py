"""Counts the monthly bulletin (D8) needs beyond the stages' own, from two topics the worker does not otherwise read.

- `sgs.rejected`: a rejection at stage `node` (the district node held the record back at upload, D12) never reached
  the worker, so it is counted here: `rejected` (records) and `rejected.<rule>` (once per rule, like the worker's
  own). A rejection at a worker stage was already counted by rule there; here it adds `rejected_municipal`
  (records), so the bulletin's rejected share counts each refused record once. Idempotent by (receipt id, stage);
  a rejection without a receipt id (bytes that were never a record) has no department to count against.
  Month: `rejected_at` (China), which for the node is the upload.
- `sgs.accepted.<kind>` (what the worker accepted, with `annotations`): `published` (for publication: D11's
  exceptions are not), `portal_dated` (the department said when its portal published it, so D6 is measurable) and
  `clean` (优质数据, 003 (十三): reconciliation MATCHED, not late by D5, not late by D6). Idempotent by (record id,
  version) through the pipeline's `counted` table; month of submission, like every other measure.

Both topics are keyed and partitioned like `sgs.submitted.*`, so their counts land in the same table partitions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import faust

from services.worker.pipeline import Pipeline, Step, guarded, log
from sgs import topics


def register(pipe: Pipeline) -> None:
    def raw_topic(*names: str) -> faust.TopicT:
        return pipe.app.topic(
            *names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )

    rejected = raw_topic(topics.REJECTED)
    accepted = raw_topic(*topics.ACCEPTED.values())
    accepted_kind = {name: kind for kind, name in topics.ACCEPTED.items()}
    report_days = pipe.settings.federation.timeliness.report_working_days

    @pipe.app.agent(rejected, name="bulletin_rejections")
    async def count_rejections(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await guarded(pipe, "bulletin", event, "unknown", _rejection)

    @pipe.app.agent(accepted, name="bulletin_accepted")
    async def count_accepted(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await guarded(
                pipe, "bulletin", event, accepted_kind.get(event.message.topic, "unknown"), _accepted
            )

    async def _rejection(event: faust.EventT, step: Step) -> None:
        try:
            name, rejection = pipe.codec.decode(event.value)
        except Exception:  # a foreign message on the topic: not ours to count, nor to reject again
            return
        if name != "sgs.Rejection" or not rejection.get("receipt_id"):
            return
        record_id = rejection.get("record_id") or ""
        kind = record_id.split(":", 1)[0] if record_id.split(":", 1)[0] in topics.KINDS else "unknown"
        labels = pipe.labels(kind, rejection)
        at: datetime = rejection["rejected_at"]
        # The (receipt, stage) is the identity here: one receipt is refused at most once per stage.
        identity: dict[str, Any] = {
            "record_id": f"rejection:{rejection['receipt_id']}",
            "version": rejection["stage"],
            "submitted_at": at,
        }
        if rejection["stage"] == "node":
            pipe.count(identity, labels, "rejected")
            for rule in sorted({r["rule"] for r in rejection["reasons"]}):
                pipe.count(identity, labels, f"rejected.{rule}")
        else:
            pipe.count(identity, labels, "rejected_municipal")

    async def _accepted(event: faust.EventT, step: Step) -> None:
        kind = accepted_kind.get(event.message.topic, "unknown")
        try:
            _, record = pipe.codec.decode(event.value)
        except Exception:
            log.warning("bulletin.undecodable_accepted", topic=event.message.topic)
            return
        env, notes = record.get("envelope"), record.get("annotations")
        if not isinstance(env, dict) or not isinstance(notes, dict):
            return
        labels = pipe.labels(kind, env)
        if notes.get("for_publication"):
            pipe.count(env, labels, "published")
        portal_days = notes.get("portal_to_submit_working_days")
        if portal_days is not None:
            pipe.count(env, labels, "portal_dated")
        on_time_d6 = portal_days is None or portal_days <= report_days
        if notes.get("reconciliation") == "MATCHED" and not notes.get("late") and on_time_d6:
            pipe.count(env, labels, "clean")
