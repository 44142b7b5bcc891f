"""Wiring of one node process: store, sender, receipt listener and the HTTP server, started and stopped in order.

SIGINT/SIGTERM: the HTTP server stops taking requests and finishes the ones in flight, then the sender and the
listener stop and the store closes. What is still in the outbox stays there for the next start; exit code 0.
"""

from __future__ import annotations

import signal

import uvicorn

from services.node.api import Limits, create_app
from services.node.intake import Intake
from services.node.metrics import NodeMetrics
from services.node.receipts import ReceiptListener, group_id
from services.node.sender import OutboxSender
from services.node.settings import NodeSettings
from services.node.store import NodeStore
from sgs.domain.workdays import Calendar
from sgs.logs import configure_logging
from sgs.serialization.codec import default_codec
from sgs.serialization.signing import Keyring


def serve(settings: NodeSettings) -> int:
    log = configure_logging("node", settings.log_level)
    federation = settings.federation
    keyring = Keyring.of(federation)
    signers = keyring.node_signers(settings.key_dir, settings.nodes)
    store = NodeStore(settings.outbox)
    metrics = NodeMetrics(store, settings.nodes)
    sender = OutboxSender(
        store,
        metrics,
        settings.kafka_bootstrap,
        federation,
        batch=settings.send_batch,
        signers=signers,
    )
    listener = ReceiptListener(store, metrics, settings.kafka_bootstrap, settings.nodes, keyring=keyring)
    intake = Intake(
        store,
        metrics,
        Calendar.for_federation(federation),
        default_codec(),
        on_taken=sender.wake,
        rules=federation.rules,
    )
    tmp_dir = settings.data_dir / "node-uploads"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(
        federation,
        settings.nodes,
        store,
        intake,
        metrics,
        sender.state,
        limits=Limits(settings.max_body_bytes, settings.max_file_bytes, settings.max_batch_records),
        tmp_dir=tmp_dir,
        share=settings.fair_share,
        dev=settings.dev,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.http_host,
            port=settings.http_port,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=10,
            # uvicorn's 5 s closed a busy client's idle keep-alive connection just as it sent its next request
            # (a dropped connection under load, issue 17); clients close theirs first with this.
            timeout_keep_alive=30,
        )
    )
    # uvicorn re-raises the signal that stopped it once it has shut down; with these handlers in place that is a
    # no-op, so the cleanup below runs and the exit code is 0.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    sender.start()
    listener.start()
    log.info(
        "node.started",
        nodes=list(settings.nodes),
        http=f"http://{settings.http_host}:{settings.http_port}",
        outbox=str(settings.outbox),
        kafka=settings.kafka_bootstrap,
        receipts_group=group_id(settings.nodes),
    )
    try:
        server.run()
    finally:
        sender.stop(timeout_s=30)
        listener.stop()
        waiting = sum(count for count, _ in store.outbox_stats().values())
        store.close()
        log.info("node.stopped", outbox_waiting=waiting)
    return 0 if server.started else 1
