"""`services.worker.prompt`: the worker's consumers fetch with a short wait, not faust's 1500 ms (issue 14: on Tansu a
waiting aiokafka fetch is not answered when a record arrives, and that wait was most of a record's latency)."""

from __future__ import annotations

import asyncio
import inspect

import aiokafka
from faust.transport.drivers import aiokafka as faust_aiokafka

from services.worker.exactly_once import GatedCommitConsumer
from services.worker.prompt import FETCH_MAX_WAIT_MS, PromptFetchConsumer, PromptFetchThread
from services.worker.tansu import TailMarkingConsumer


def test_every_worker_consumer_fetches_promptly():
    assert issubclass(TailMarkingConsumer, PromptFetchConsumer)
    assert issubclass(GatedCommitConsumer, PromptFetchConsumer)


def test_the_aiokafka_consumer_gets_the_short_wait(monkeypatch):
    async def made() -> aiokafka.AIOKafkaConsumer:
        return aiokafka.AIOKafkaConsumer(bootstrap_servers="127.0.0.1:9")  # never started: no connection

    consumer = asyncio.run(made())
    assert consumer._fetch_max_wait_ms == 500  # noqa: SLF001 - aiokafka's default, in the attribute set here
    monkeypatch.setattr(
        faust_aiokafka.AIOKafkaConsumerThread, "_create_worker_consumer", lambda self, transport: consumer
    )
    thread = object.__new__(PromptFetchThread)
    assert thread._create_worker_consumer(None)._fetch_max_wait_ms == FETCH_MAX_WAIT_MS  # noqa: SLF001
    # and aiokafka builds its fetcher from that attribute when the consumer starts
    assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in inspect.getsource(aiokafka.AIOKafkaConsumer.start)
