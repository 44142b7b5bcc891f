"""The worker's waits: the three that a record pays at a light load, and the one a decision paid behind a backlog
(issue 14), and their values.

- **Fetch** (`FETCH_MAX_WAIT_MS`). faust builds its aiokafka consumer with `fetch_max_wait_ms=1500` and no setting
  to change it. The embedded broker (Tansu) does not answer aiokafka's waiting fetch as soon as a record arrives:
  measured against Tansu, a record produced while a fetch waited reached the consumer after 0.38 s at the median
  (0.73 s at worst) with 1500 ms, 0.12 s with 500 ms, 25 ms (52 ms) with 200 ms, 8 ms with 50 ms. A long wait is
  also a batch, though: a worker that has caught up waits, and the next fetch brings what came meanwhile. 50 ms
  cost about 1.5 CPU ms a record more at 500 records/s offered; 200 ms cost about 0.3 and takes most of the wait
  away. Apache Kafka answers a waiting fetch as soon as data arrives either way.
- **Producer linger** (`PRODUCER_LINGER_S`), kept at 200 ms. A record makes about eight messages on six topics; a
  batch closes when full (256 KiB) or after the linger. Every produce request costs CPU in the worker and the
  broker, and smaller relay batches cost the sinks more per record: at 500 records/s offered, 5 ms (with a 50 ms
  fetch wait) cost 10.7 CPU ms a record instead of 6.8, and 50 ms cost 8.0, for 0.1 s less at a light load
  (docs/bench.md, "Latency at a light load").
- **Send now** (`SEND_NOW_AT`, `send_now`). The linger is for a light load, where a batch holds a few records and
  their messages gather over the linger into one produce request. A batch of `SEND_NOW_AT` records or more (a
  backlog, a burst of requests at the node) fills produce requests on its own, so its messages leave as soon as
  the batch is done rather than waiting out the linger: in `sgs bench --rate 500` the records at the tail of a
  burst waited that linger on top of the burst (docs/bench.md, issue 14, seventh step).
- **Batch** (`TAKE_MAX`, `TAKE_WITHIN_S`). The agent of submitted records takes them in batches
  (`Stream.take_events`): a batch's outputs share one signature (a sink or a node then checks one signature for
  many messages) and its table writes one changelog message per record and per day row. A batch closes when it has
  `TAKE_MAX` records or `TAKE_WITHIN_S` after the agent asked for it, so at a light load a record waits at most
  that.
- **Decisions first** (`POLL_MAX`, `PromptFetchThread._fetch_records`). faust hands what one poll of the consumer
  returns to the agents' queues, and waits while a queue is full; the next poll waits until then. Unbounded, a poll
  returned everything aiokafka had fetched (up to 1 MiB a partition: about 13,000 submitted records), so behind a
  backlog a decision waited for all of them at each hop through the worker (`sgs.decisions`, and a credit repair's
  `<app>-repairs` and `<app>-repair-outcomes`): up to 100 s with `sgs bench --records 200000`, whose bench gave up
  on some. Bounding the poll is not enough: aiokafka fills a bounded poll from the partitions in the order their
  data arrived, so the submitted partitions, always holding more, came first every time. So each poll now takes
  what is waiting on the other topics first (decisions, held records, the sweep's expiries: a few), and only when
  there is none, at most `POLL_MAX` submitted records.
"""

from __future__ import annotations

from typing import Any

import aiokafka
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from sgs.kafka.topics import SUBMITTED

FETCH_MAX_WAIT_MS = 200
PRODUCER_LINGER_S = 0.2
TAKE_MAX = 200
TAKE_WITHIN_S = 0.02
POLL_MAX = 400
SEND_NOW_AT = 50


def send_now(producer: Any) -> None:
    """Let the messages handed to faust's default producer (`producer`, a `faust_aiokafka.Producer`) leave now
    instead of after the linger, without waiting for the broker: what aiokafka's `flush_for_commit` does before it
    waits (close the open batches, wake the sender). aiokafka has no public call for it."""
    client = producer._producer  # noqa: SLF001 - None until faust has started the producer
    if client is None:
        return
    accumulator = client._message_accumulator  # noqa: SLF001
    for batches in accumulator._batches.values():  # noqa: SLF001
        for batch in batches:
            batch._builder.close()  # noqa: SLF001 - a closed batch lingers no more (`MessageBatch.remaining_linger`)
    if not accumulator._waiter_future.done():  # noqa: SLF001
        accumulator._waiter_future.set_result(None)  # noqa: SLF001 - the sender waits on it between drains


class PromptFetchThread(faust_aiokafka.AIOKafkaConsumerThread):
    """faust's consumer thread, its aiokafka consumer waiting at most `FETCH_MAX_WAIT_MS` for a fetch, and each poll
    taking what waits on the other topics before the submitted records (`POLL_MAX`)."""

    bulk_topics = frozenset(SUBMITTED.values())  # what a poll takes only when nothing else waits

    async def _fetch_records(
        self,
        consumer: aiokafka.AIOKafkaConsumer,
        active_partitions: set[TP],
        timeout: float | None = None,
        max_records: int | None = None,
    ) -> Any:
        lanes = {tp for tp in active_partitions or () if tp.topic not in self.bulk_topics}
        if lanes and len(lanes) < len(active_partitions):
            records = await super()._fetch_records(consumer, lanes, timeout=0, max_records=max_records)
            if records:
                return records
        return await super()._fetch_records(
            consumer, active_partitions, timeout=timeout, max_records=max_records
        )

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # noqa: SLF001 - read by `start`, which builds the fetcher
        return consumer


class PromptFetchConsumer(faust_aiokafka.Consumer):
    """faust's consumer with `PromptFetchThread`: the base of the worker's consumers (`tansu`, `exactly_once`)."""

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return PromptFetchThread(self, loop=self.loop, beacon=self.beacon)
