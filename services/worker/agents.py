"""The worker's agents: how messages reach the stages, top to bottom.

One agent takes each submitted record through every stage as plain function calls, in one partition, a batch of
records at a time (`prompt.TAKE_MAX`, issue 14):

    sgs.submitted.{license,penalty} -> validate -> dedup -> reconcile -> timeliness -> route
    <app>-held (subject not known yet, D13)  -> reconcile -> timeliness -> route
    <app>-expiry (the publicity sweep, D14)  -> expire

A stage that ends a record (a rejection, a duplicate, a hold) returns nothing and the record goes no further.
Stages used to be agents of their own chained through topics; every hop cost a produce, a fetch and a commit
for nothing a topic bought, so only the two hops that do buy something stay: `held` lets a record wait without
blocking its partition, and `expiry` lets the sweep (a timer, which may not write tables) reach an agent.
See docs/worker.md.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

import faust

from services.worker import holding, prompt
from services.worker.context import KIND_BY_TOPIC, WORKER_ONLY, Context, Step, guarded, guarded_batch
from services.worker.reference_mirror import ReferenceBases
from services.worker.stages import dedup, reconcile, route, timeliness, validate


def register(ctx: Context, refs: ReferenceBases) -> None:
    @ctx.app.agent(ctx.submitted, name="process")
    async def process_submissions(stream: faust.StreamT) -> None:
        async for events in _batches(stream):
            await refs.loaded.wait()
            await guarded_batch(ctx, "validate", events, _kind, _submitted)

    async def _batches(stream: faust.StreamT) -> AsyncIterator[Sequence[faust.EventT]]:
        """Batches of submitted records (`prompt.TAKE_MAX`, issue 14). Under exactly-once, one record at a time: a
        batch held in `take_events`' buffer across a rebalance lost records on Apache Kafka with a broker killed and
        the worker killed (the Kafka bench fault test: 181 of 450), and the rollback at a rebalance
        (`exactly_once.roll_back_to_committed`) was made for records taken one by one."""
        if ctx.settings.engine.transactions:
            async for event in stream.events():
                yield [event]
            return
        # the class has `take_events`, its type `StreamT` does not say so
        take = cast(faust.Stream, stream).take_events
        async for events in take(prompt.TAKE_MAX, within=prompt.TAKE_WITHIN_S):
            yield events

    @ctx.app.agent(ctx.held, name="held")
    async def retry_held(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await refs.loaded.wait()
            await holding.wait_for_retry(event)
            await guarded(ctx, "held", event, "unknown", _held)

    @ctx.app.agent(ctx.expiry, name="expire")
    async def withdraw_expired(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await guarded(ctx, "expire", event, "unknown", _expire)

    @ctx.app.timer(ctx.settings.sweep_interval_s, name="publicity_sweep")
    async def sweep_publicity() -> None:
        await route.sweep_publicity(ctx)

    def _kind(event: faust.EventT) -> str:
        return KIND_BY_TOPIC.get(event.message.topic, "unknown")

    async def _submitted(event: faust.EventT, step: Step) -> None:
        record = await validate.admit(ctx, event, _kind(event))
        if record is None:
            return
        step.enter("dedup")
        if not await dedup.admit(ctx, event, record):
            return
        await _from_reconcile(event, record, step, held_since=None)

    async def _held(event: faust.EventT, step: Step) -> None:
        if not await ctx.signed(event, "unknown", WORKER_ONLY):
            return
        held_since = holding.held_since(event)
        _, record = ctx.codec.decode(event.value)
        await _from_reconcile(event, record, step, held_since)

    async def _expire(event: faust.EventT, step: Step) -> None:
        if await ctx.signed(event, "unknown", WORKER_ONLY):
            await route.expire(ctx, event)

    async def _from_reconcile(
        event: faust.EventT, record: dict[str, Any], step: Step, held_since: int | None
    ) -> None:
        step.enter("reconcile")
        checked = await reconcile.check(ctx, refs, event.key, event.value, record, held_since)
        if checked is None:
            return
        step.enter("timeliness")
        accepted = await timeliness.annotate(ctx, record, checked)
        if accepted is None:
            return
        step.enter("route")
        await route.relay(ctx, *accepted)
