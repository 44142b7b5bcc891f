"""Exactly-once on an engine with transactions (Apache Kafka; `sgs.kafka.engines`): what faust leaves out.

faust commits a partition's transaction (its outputs with its input offsets) on a timer, while agents go on. Two
things can then land in the wrong transaction, and a crash between two commits shows them (the crash test did):
- table writes wait in faust's producer buffer and are sent later, so a commit could carry the offsets of a record
  whose `records` entry goes out in the next transaction: after the crash, the record was done and its state gone;
- a record half processed when the commit runs has some outputs in that transaction and the rest in the next:
  after the crash it is processed again and its first outputs reach the sinks twice.
So a commit waits at a gate: no record starts while it runs, the records under way finish (and are acked), the
buffer is drained into the open transactions, and only then are they committed.

A stop must not end the transactions early. faust "commits and ends" them (commits without beginning new ones)
twice on the way down: once when the app stops its consumer, again when the consumer service stops. A record acked
between the two found its partition's producer outside any transaction, and the second commit raised
`IllegalOperation('Not in the middle of a transaction')`, so the worker exited 1 on SIGTERM (the Kafka run of the
tests met it in every test that stopped a busy worker). So a commit on the way down keeps a transaction open
after it like any other, and the producer aborts what is open when it stops: whatever was sent after the last
commit belongs to records whose offsets were not committed, which the next start processes again, and an abort
(rather than leaving it open until the coordinator's timeout) lets committed readers of those partitions go on at
once.

A rebalance must roll back to what was committed. faust drops the acks of the revoked partitions (with the eager
protocol, every partition) before it commits at a rebalance, so the records done since the last commit are read
again afterwards, while their outputs and table writes wait in the open transactions: kept, they would reach the
sinks twice once committed; and where faust replaced a partition's producer, the new one fenced the old and its
transaction was aborted, but the in-memory tables kept its writes, so the records read again met state saying
they were done and their outputs were lost (issue 13: the bench's `broker:restart`, whose dead coordinator forced a
rebalance, lost withdrawals that way: the decisions, read again, met `not_published`). So at every rebalance the
worker aborts the open transactions and empties the tables, and forgets faust's recovery offsets for them, so
that faust recovers each table in full from its committed changelog (read_committed) before the streams go on
from the committed offsets (`roll_back_to_committed`): a restart of the processing state without a restart of
the process.

A transaction also has to outlive a cluster that is down for a while: the coordinator aborts one left open longer
than the producer's transaction timeout and fences its producer, and faust then crashes the worker. aiokafka's
default of 60 s was shorter than a 30 s outage plus the cluster's restart on two busy cores (the bench's
`cluster:stop` found it), so the producers ask for `TRANSACTION_TIMEOUT_MS`. A worker killed mid-transaction does
not hold readers that long: its successor takes the same transactional ids, which aborts what it left open.

That holds only if the ids are the same. faust names them `<app id>-<topic group>-<partition>`, and numbers the
topic groups by partition count at each assignment: the one-partition `<app id>-__assignor-__leader` topic, which
the broker creates on the first start's metadata request (after that start's assignment), came first from the
second start on, so a worker killed in its first run left `<app>-0-1..3` open while its successor fenced only
`<app>-0-0` and wrote as `<app>-1-*`: read-committed sinks stood at the dead transactions' first offsets for the
whole transaction timeout (the bench's `worker:restart` lost 407 of 491 outcomes). Under exactly-once the app runs
without the leader topic (`service.build_app`), so its topics are one group, `0`, at every start;
`check_transactional_ids` fails a start where that no longer holds rather than leave such transactions behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, cast

import faust
from aiokafka.errors import KafkaError
from aiokafka.producer.transaction_manager import TransactionState
from faust.transport.drivers import aiokafka as faust_aiokafka

from services.worker.prompt import PromptFetchConsumer


class CommitGate:
    """Records pass through (`enter`/`leave`) while it is open; `closed()` shuts it and waits until none is under
    way."""

    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._open.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._busy = 0

    async def enter(self) -> None:
        await self._open.wait()
        self._busy += 1
        self._idle.clear()

    def leave(self) -> None:
        self._busy -= 1
        if self._busy == 0:
            self._idle.set()

    @asynccontextmanager
    async def closed(self) -> AsyncIterator[None]:
        self._open.clear()
        try:
            await self._idle.wait()
            await asyncio.sleep(0)  # the agents step to their next event, which acks the one they finished
            yield
        finally:
            self._open.set()


TRANSACTION_TIMEOUT_MS = 5 * 60 * 1000  # within the broker's transaction.max.timeout.ms (15 min by default)


ABORT_TIMEOUT_S = 30.0  # an abort is one round trip to the coordinator; longer means the cluster is away
ABORT_ON_STOP_S = 5.0  # the worker's whole stop is bounded by `service.STOP_GRACE_S`


class LongTransactionProducer(faust_aiokafka.Producer):
    """faust's producer, its transactional producers allowed `TRANSACTION_TIMEOUT_MS`, and what they hold open
    aborted at a rebalance and when it stops."""

    def _settings_extra(self) -> Mapping[str, Any]:
        return {**super()._settings_extra(), "transaction_timeout_ms": TRANSACTION_TIMEOUT_MS}

    async def abort_open_transactions(self, timeout_s: float = ABORT_TIMEOUT_S) -> None:
        """Abort every transaction in progress; raises when one cannot be aborted within `timeout_s` or a producer
        failed for good, which at a rebalance faust turns into the app's crash and the worker's restart."""
        for transactional_id, producer in list(self._transaction_producers.items()):
            state = producer._txn_manager.state  # noqa: SLF001  (aiokafka has no public transaction state)
            if state == TransactionState.FATAL_ERROR:
                raise KafkaError(f"the transactional producer {transactional_id} failed for good")
            if state in (TransactionState.IN_TRANSACTION, TransactionState.ABORTABLE_ERROR):
                async with self._trn_locks[transactional_id]:
                    await asyncio.wait_for(producer.abort_transaction(), timeout_s)

    async def on_stop(self) -> None:
        for transactional_id in list(self._transaction_producers):
            try:  # faust's abort logs and swallows the producer's own errors (an empty transaction costs nothing)
                await asyncio.wait_for(self.abort_transaction(transactional_id), ABORT_ON_STOP_S)
            except TimeoutError:
                break  # the cluster is gone: the coordinator aborts them after the transaction timeout
        await super().on_stop()


async def roll_back_to_committed(app: faust.App) -> None:
    """At a rebalance (module docstring): abort the open transactions, empty every table and forget where faust's
    recovery had read each changelog to, so that faust recovers every table from the start of its committed
    changelog before the streams go on from the committed offsets."""
    await cast(LongTransactionProducer, app.producer).abort_open_transactions()
    for table in app.tables.values():
        # the memory store (`store="memory://"`): its dict and its keys' partitions
        store = cast(Any, table.data)
        store.data.clear()
        store._key_partition.clear()  # noqa: SLF001
    # The memory store persists no offset, so a changelog partition without one here is read from its start
    # (`Recovery._add`, `_build_offsets`); with one, only from there on.
    cast(Any, app.tables).recovery.active_offsets.clear()


def check_transactional_ids(app: Any, tps: Any) -> None:
    """Every partition the app was assigned is in topic group 0, so its transactional id (`<app id>-0-<partition>`)
    is the one any earlier run used for it, and taking it fences what that run left open (module docstring)."""
    groups = {tp.topic: app.assignor.group_for_topic(tp.topic) for tp in tps}
    moved = sorted(topic for topic, group in groups.items() if group != 0)
    if moved:
        raise RuntimeError(
            f"topics outside transactional group 0: {moved}; their transactional ids would not fence a killed "
            "worker's open transactions"
        )


class GatedCommitConsumer(PromptFetchConsumer):
    """faust's consumer, committing only at the gate, with the producer's buffer drained first."""

    gate = CommitGate()  # one per process: set before the app starts (`services.worker.service`)

    async def commit(self, *args: Any, **kwargs: Any) -> bool:
        async with self.gate.closed():
            await self.app.producer.flush()
            return await super().commit(*args, **kwargs)

    async def commit_and_end_transactions(self) -> None:
        """faust's stop commits with this, twice; each commit leaves a transaction open (module docstring)."""
        await self.commit()
