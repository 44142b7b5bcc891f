"""The worker's two waits that a record pays at a light load (issue 14), and their values.

- **Fetch.** faust builds its aiokafka consumer with `fetch_max_wait_ms=1500` and no setting to change it. The
  embedded broker (Tansu) does not answer such a waiting fetch as soon as a record arrives: measured with aiokafka
  against Tansu, a record produced while a fetch waited reached the consumer after 0.38 s at the median (0.73 s at
  worst) with 1500 ms, 0.12 s with 500 ms, 25 ms with 200 ms, 8 ms with 50 ms. `PromptFetchConsumer` waits
  `FETCH_MAX_WAIT_MS`. Under load a fetch finds records waiting and is answered at once, so the shorter wait costs
  only the empty fetches of an idle worker (at most 20 a second); Apache Kafka answers a waiting fetch as soon as
  data arrives either way.
- **Producer linger** (`PRODUCER_LINGER_S`). A record makes about eight messages on six topics; a batch closes
  when full (256 KiB) or after the linger, and aiokafka sends one request at a time, so while one is in flight the
  next batches grow. Every produce request costs CPU in the worker, the broker and (smaller relay batches) the
  sinks. Measured at 500 records/s offered on 2 cores (docs/bench.md, "Latency at a light load"): 200 ms cost
  6.3 CPU ms a record end to end, 5 ms cost 10.7 and the end-to-end rate fell from 177 to 112 records/s; at
  100 records/s, 200 ms was a fifth of a record's 0.75 s. 50 ms keeps the requests at most 20 a second.
"""

from __future__ import annotations

from typing import Any

import aiokafka
from faust.transport.drivers import aiokafka as faust_aiokafka

FETCH_MAX_WAIT_MS = 200
PRODUCER_LINGER_S = 0.05


class PromptFetchThread(faust_aiokafka.AIOKafkaConsumerThread):
    """faust's consumer thread, its aiokafka consumer waiting at most `FETCH_MAX_WAIT_MS` for a fetch."""

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # noqa: SLF001 - read by `start`, which builds the fetcher
        return consumer


class PromptFetchConsumer(faust_aiokafka.Consumer):
    """faust's consumer with `PromptFetchThread`: the base of the worker's consumers (`tansu`, `exactly_once`)."""

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return PromptFetchThread(self, loop=self.loop, beacon=self.beacon)
