"""The worker process: the faust app with every stage, its web pages, and how it is started and stopped."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, cast

import faust
from faust.transport.consumer import Consumer
from kafka.errors import KafkaError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.worker import agents, aggregates, prompt
from services.worker.context import Context, app_topics, log
from services.worker.exactly_once import (
    GatedCommitConsumer,
    LongTransactionProducer,
    check_transactional_ids,
    roll_back_to_committed,
)
from services.worker.prompt import PromptFetchConsumer
from services.worker.reference_mirror import ReferenceBases
from services.worker.settings import WorkerSettings
from services.worker.stages import decide
from services.worker.tansu import TailMarkingConsumer
from sgs.kafka import security
from sgs.kafka.admin import ensure_federation_topics, ensure_topics
from sgs.kafka.partitioner import partition_by_key
from sgs.kafka.topics import MAX_MESSAGE_BYTES
from sgs.logs import configure_logging

STOP_GRACE_S = 10.0  # a clean stop (commit, flush) takes about a second; `sgs up` waits 15 s before SIGKILL
RESTART_AFTER_S = 5.0  # after a crash, and between start attempts while the cluster is still away
RESTARTED = "SGS_WORKER_RESTARTED"  # set in a restarted worker's environment: how many times it restarted
STOP_ASKED = (
    threading.Event()
)  # SIGINT or SIGTERM came: a crash then ends the process instead of restarting it


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
        # Under exactly-once no leader topic (nothing here runs on the leader only): faust numbers its topic groups
        # in order of partition count, and the leader topic, one partition, exists only from a second start on, so
        # it shifted the streams' group, hence their transactional ids, between the first start and a restart
        # (`exactly_once.py`). Without it every topic the app reads is in group 0, at every start. (On Tansu,
        # at-least-once, the ids do not exist and the app keeps faust's default.)
        topic_disable_leader=settings.engine.transactions,
        # Transactions do not work on Tansu (ARCHITECTURE.md): there, at-least-once with dedup.
        processing_guarantee="exactly_once" if settings.engine.transactions else "at_least_once",
        broker_rebalance_timeout=3,  # Tansu waits the whole rebalance timeout on every group join
        broker_session_timeout=6,
        broker_heartbeat_interval=1,
        consumer_auto_offset_reset="earliest",  # a new deployment processes what is already waiting
        table_standby_replicas=0,
        # batch the many small sends of records processed in a row (outputs, receipts, changelogs): every record
        # waits up to this long, every produce request costs CPU on both ends (`prompt`, issue 14)
        producer_linger=prompt.PRODUCER_LINGER_S,
        producer_max_batch_size=256 * 1024,  # fewer, larger produce requests: each costs Python on both sides
        producer_max_request_size=MAX_MESSAGE_BYTES,  # the federation's one message limit (sgs.kafka.topics)
        producer_partitioner=partition_by_key,
        # a decision behind a backlog waits for one poll's records, not for everything fetched (`prompt`, issue 14)
        broker_max_poll_records=prompt.POLL_MAX,
        web_port=settings.http_port,
        web_in_thread=False,
    )
    ctx = Context(settings, app)
    # faust takes the consumer class from the transport instance: on Tansu it marks the changelogs' tails
    # (`tansu.TailMarkingConsumer`), with transactions it commits at the context's gate (`exactly_once`); each
    # fetches with a short wait (`prompt.PromptFetchConsumer`, issue 14).
    if settings.engine.transactions:
        GatedCommitConsumer.gate = ctx.gate
        app.transport.Consumer = GatedCommitConsumer  # type: ignore[misc]
        app.transport.Producer = LongTransactionProducer  # type: ignore[misc]
    elif settings.engine.short_end_offsets:
        app.transport.Consumer = TailMarkingConsumer  # type: ignore[misc]
    else:
        app.transport.Consumer = PromptFetchConsumer  # type: ignore[misc]
    refs = ReferenceBases(settings.bootstrap, ctx.codec)
    engine = aggregates.open_store(settings.aggregates_url)

    agents.register(ctx, refs)
    decide.register(ctx)
    aggregates.register(ctx, engine)

    @app.task
    async def follow_reference_bases() -> None:
        await refs.follow()

    if settings.engine.transactions:

        @app.on_rebalance_complete.connect  # type: ignore[arg-type]  # an async receiver, which the signal awaits
        async def same_transactional_ids(sender: faust.App, *_: Any, **__: Any) -> None:
            """Under exactly-once a restart takes its predecessor's transactional ids (`exactly_once`)."""
            check_transactional_ids(sender, cast(Consumer, sender.consumer).assignment())

        @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # an async receiver, which the signal awaits
        async def roll_back(sender: faust.App, *_: Any, **__: Any) -> None:
            """Under exactly-once a rebalance starts again from what was committed (`exactly_once`, issue 13)."""
            await roll_back_to_committed(sender)
            log.info("worker.rolled_back_to_committed")

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]  # an async receiver, which the signal awaits
    async def rewind_never_committed(sender: faust.App, *_: Any, **__: Any) -> None:
        """After table recovery faust re-reads what it fetched meanwhile by seeking every partition to its
        committed offset, but aiokafka does not seek a partition the group never committed (None, or 0): its
        records fetched during recovery were skipped. Seek those to their beginning (at-least-once: dedup
        absorbs a record read twice). Found by the SIGKILL test: a worker killed before its first commit lost
        records on restart.

        First hold the flow until faust resumes it. faust sends this signal, then resumes the stream partitions
        and seeks them, and only then resumes the flow, which empties the streams' queues (`clear_on_resume`):
        a record handed to a stream in between was thrown away after its offset was consumed. A partition faust
        seeks then reads it again; one never committed, sought here before that, did not, and its commits
        stopped at the gap. The same SIGKILL test lost up to 87 records that way, about one run in two, once
        the bench's connections posted out of step (so more partitions had no commit when the worker died)."""
        sender.flow_control.suspend()
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
    _ensure_topics(settings)
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
    try:
        worker.execute_from_commandline()  # returns by SystemExit(0) after SIGINT/SIGTERM and a clean stop
    except SystemExit as done:
        if done.code not in (0, None) and not STOP_ASKED.is_set():
            if worker.crash_timer is not None:
                worker.crash_timer.cancel()  # the crashed app did stop in time
            restart("the app crashed")
        raise
    return 0


def _ensure_topics(settings: WorkerSettings) -> None:
    """The federation's and the app's own topics. A restarted worker waits here for a cluster that is away."""
    while True:
        try:
            ensure_federation_topics(settings.bootstrap, settings.federation)
            ensure_topics(settings.bootstrap, settings.federation.partitions, app_topics(settings.app_id))
            return
        except KafkaError as exc:
            if RESTARTED not in os.environ:
                raise  # a first start against no cluster says so (exit 1), as before
            log.warning("worker.cluster_unreachable", error=repr(exc), retry_s=RESTART_AFTER_S)
            _sleep_or_stop(RESTART_AFTER_S)


def restart(reason: str) -> None:
    """Start this worker again as a new program in the same process (same pid, arguments and log), after
    `RESTART_AFTER_S`. A crashed faust app is not restarted in place: under exactly-once its tables may hold writes
    of an aborted transaction, so only a fresh start, recovering them from the committed changelogs and reading on
    from the committed offsets, is right (docs/worker.md). A SIGTERM or SIGINT meanwhile ends it with 0: nothing is
    under way. From the stop timer's thread (the crashed app's stop hung) it starts again at once, unless a stop
    was asked for meanwhile."""
    count = int(os.environ.get(RESTARTED, "0")) + 1
    if threading.current_thread() is threading.main_thread():
        log.error("worker.restarting", reason=reason, after_s=RESTART_AFTER_S, restarts=count)
        _sleep_or_stop(RESTART_AFTER_S)
    elif STOP_ASKED.is_set():
        _give_up("crash")
    else:
        log.error("worker.restarting", reason=reason, after_s=0, restarts=count)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, sys.orig_argv, {**os.environ, RESTARTED: str(count)})


def _sleep_or_stop(seconds: float) -> None:
    def stop(signum: int, _frame: object) -> None:
        log.info("worker.stopped_while_waiting", signal=signal.Signals(signum).name)
        os._exit(0)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    time.sleep(seconds)


class BoundedStopWorker(faust.Worker):
    """faust's worker with a bound on how long a stop may take. With the broker gone, aiokafka's consumer and
    producer wait for it through faust's 60 s per-service shutdown timeouts, so SIGTERM seemed ignored. After
    `STOP_GRACE_S` the process exits with status 1: everything is at-least-once, so the next start redoes what was
    not committed and dedup absorbs what was. A crash (the app's own stop) is bounded the same way, and the worker
    then starts again (`restart`)."""

    crash_timer: threading.Timer | None = None

    def _on_sigint(self) -> None:
        STOP_ASKED.set()
        _after(STOP_GRACE_S, lambda: _give_up("SIGINT"))
        super()._on_sigint()

    def _on_sigterm(self) -> None:
        STOP_ASKED.set()
        _after(STOP_GRACE_S, lambda: _give_up("SIGTERM"))
        super()._on_sigterm()

    def _crash(self, reason: BaseException) -> None:
        """mode calls this on the root service when any service crashes: the app then stops itself."""
        if not STOP_ASKED.is_set() and not self.crashed:
            log.error("worker.crashed", reason=repr(reason))
            self.crash_timer = _after(
                STOP_GRACE_S, lambda: restart(f"the crashed app did not stop within {STOP_GRACE_S:.0f} s")
            )
        super()._crash(reason)


def _give_up(why: str) -> None:
    log.error("worker.stop_timeout", signal=why, grace_s=STOP_GRACE_S)
    logging.shutdown()
    os._exit(1)


def _after(seconds: float, then: Callable[[], None]) -> threading.Timer:
    timer = threading.Timer(seconds, then)
    timer.daemon = True
    timer.start()
    return timer
