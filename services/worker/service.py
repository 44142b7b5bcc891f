"""The worker process: the faust app with every stage, its web pages, and how it is started and stopped."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, cast

import faust
from faust.transport.consumer import Consumer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.worker import agents, aggregates
from services.worker.context import Context, app_topics, log
from services.worker.exactly_once import GatedCommitConsumer, LongTransactionProducer
from services.worker.reference_mirror import ReferenceBases
from services.worker.settings import WorkerSettings
from services.worker.stages import decide
from services.worker.tansu import TailMarkingConsumer
from sgs.kafka import security
from sgs.kafka.admin import ensure_topics
from sgs.kafka.partitioner import partition_by_key
from sgs.kafka.topics import MAX_MESSAGE_BYTES
from sgs.logs import configure_logging

STOP_GRACE_S = 10.0  # a clean stop (commit, flush) takes about a second; `sgs up` waits 15 s before SIGKILL


def _credentials() -> faust.SSLCredentials | None:
    """The worker principal's mutual TLS (`sgs.kafka.security`), for every client faust opens; None: plaintext."""
    context = security.current().ssl_context()
    return None if context is None else faust.SSLCredentials(context)


def build_app(settings: WorkerSettings) -> tuple[faust.App, ReferenceBases]:
    """The faust app with its topics, tables and agents (see `agents.py`)."""
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.bootstrap}",
        broker_credentials=_credentials(),
        store="memory://",  # tables recover from their changelog topics
        datadir=str(settings.data_dir / f"faust-{settings.app_id}"),
        autodiscover=False,
        topic_partitions=settings.federation.partitions,
        topic_replication_factor=1,
        # Every topic the app uses exists before it starts (`ensure_topics`), with the federation's partition
        # count: faust must not create one with a broker default.
        topic_allow_declare=False,
        # Transactions do not work on Tansu (ARCHITECTURE.md): there, at-least-once with dedup.
        processing_guarantee="exactly_once" if settings.engine.transactions else "at_least_once",
        broker_rebalance_timeout=3,  # Tansu waits the whole rebalance timeout on every group join
        broker_session_timeout=6,
        broker_heartbeat_interval=1,
        consumer_auto_offset_reset="earliest",  # a new deployment processes what is already waiting
        table_standby_replicas=0,
        producer_linger=0.2,  # batch the many small sends of one record (outputs, receipts, changelogs)
        producer_max_batch_size=256 * 1024,  # fewer, larger produce requests: each costs Python on both sides
        producer_max_request_size=MAX_MESSAGE_BYTES,  # the federation's one message limit (sgs.kafka.topics)
        producer_partitioner=partition_by_key,
        web_port=settings.http_port,
        web_in_thread=False,
    )
    ctx = Context(settings, app)
    # faust takes the consumer class from the transport instance: on Tansu it marks the changelogs' tails
    # (`tansu.TailMarkingConsumer`), with transactions it commits at the context's gate (`exactly_once`).
    if settings.engine.transactions:
        GatedCommitConsumer.gate = ctx.gate
        app.transport.Consumer = GatedCommitConsumer  # type: ignore[misc]
        app.transport.Producer = LongTransactionProducer  # type: ignore[misc]
    elif settings.engine.short_end_offsets:
        app.transport.Consumer = TailMarkingConsumer  # type: ignore[misc]
    refs = ReferenceBases(settings.bootstrap, ctx.codec)
    engine = aggregates.open_store(settings.aggregates_url)

    agents.register(ctx, refs)
    decide.register(ctx)
    aggregates.register(ctx, engine)

    @app.task
    async def follow_reference_bases() -> None:
        await refs.follow()

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]  # an async receiver, which the signal awaits
    async def rewind_never_committed(sender: faust.App, *_: Any, **__: Any) -> None:
        """After table recovery faust re-reads what it fetched meanwhile by seeking every partition to its
        committed offset, but aiokafka does not seek a partition the group never committed (None, or 0): its
        records fetched during recovery were skipped. Seek those to their beginning (at-least-once: dedup
        absorbs a record read twice). Found by the SIGKILL test: a worker killed before its first commit lost
        records on restart."""
        consumer = cast(Consumer, sender.consumer)
        inputs = {
            name for agent in sender.agents.values() for name in cast(faust.TopicT, agent.channel).topics
        }
        streams = {tp for tp in consumer.assignment() if tp.topic in inputs}
        committed = await consumer.seek_to_committed()
        never = [tp for tp in streams if not committed.get(tp)]
        if never:
            for tp, offset in (await consumer.earliest_offsets(*never)).items():
                await consumer.seek(tp, offset)
            log.info("worker.rewound_uncommitted", partitions=len(never))

    @app.page("/metrics")
    async def metrics_page(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/healthz")
    async def healthz(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        assigned = len(app.consumer.assignment()) if app.consumer else 0
        return web.json(
            {
                "status": "ok",
                "app_id": settings.app_id,
                "reference_bases_loaded": refs.loaded.is_set(),
                "legal_persons": len(refs.legal_persons),
                "persons": len(refs.persons),
                "assigned_partitions": assigned,
                "ready": refs.loaded.is_set() and assigned > 0,
            }
        )

    return app, refs


def serve(settings: WorkerSettings) -> int:
    log = configure_logging("worker", settings.log_level)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    ensure_topics(settings.bootstrap, settings.federation.partitions)
    ensure_topics(settings.bootstrap, settings.federation.partitions, app_topics(settings.app_id))
    app, _ = build_app(settings)
    log.info(
        "worker.starting", app_id=settings.app_id, bootstrap=settings.bootstrap, http_port=settings.http_port
    )
    worker = BoundedStopWorker(
        app,
        loglevel=settings.log_level.upper(),
        override_logging=False,
        redirect_stdouts=False,
        quiet=True,
    )
    worker.execute_from_commandline()  # returns by SystemExit(0) after SIGINT/SIGTERM and a clean stop
    return 0


class BoundedStopWorker(faust.Worker):
    """faust's worker with a bound on how long a stop may take. With the broker gone, aiokafka's consumer and
    producer wait for it through faust's 60 s per-service shutdown timeouts, so SIGTERM seemed ignored. After
    `STOP_GRACE_S` the process exits with status 1: everything is at-least-once, so the next start redoes what was
    not committed and dedup absorbs what was."""

    def _on_sigint(self) -> None:
        _exit_after(STOP_GRACE_S, "SIGINT")
        super()._on_sigint()

    def _on_sigterm(self) -> None:
        _exit_after(STOP_GRACE_S, "SIGTERM")
        super()._on_sigterm()


def _exit_after(grace_s: float, signal_name: str) -> None:
    def give_up() -> None:
        log.error("worker.stop_timeout", signal=signal_name, grace_s=grace_s)
        logging.shutdown()
        os._exit(1)

    timer = threading.Timer(grace_s, give_up)
    timer.daemon = True
    timer.start()
