"""The sink process: the relay consumer in the main thread, the HTTP server (API, page, metrics) beside it.

SIGINT/SIGTERM stop both: the consumer finishes its batch (or leaves it unstored, to be consumed again), the
server drains, the producer flushes the receipts it holds, the store closes; exit code 0.
"""

from __future__ import annotations

import signal
import threading
import time

import uvicorn

from services.sink.api import create_app
from services.sink.consumer import RelayConsumer
from services.sink.metrics import SinkMetrics
from services.sink.settings import SinkSettings
from services.sink.store import SinkStore, StoreError
from sgs.logs import configure_logging
from sgs.serialization.signing import Keyring, sink_signer


def serve(settings: SinkSettings) -> int:
    tier = settings.tier
    log = configure_logging(f"sink-{tier}", settings.log_level)
    keyring = Keyring.of(settings.federation)
    signer = keyring.signer(settings.key_dir, sink_signer(tier))
    try:
        store = SinkStore(settings.store_url)
    except StoreError as exc:
        log.error("sink.store_failed", error=str(exc))
        return 1
    metrics = SinkMetrics(tier)
    app = create_app(
        store, metrics, tier=tier, sink_name=settings.name, operator_tokens=settings.operator_tokens
    )
    port = settings.http_port
    server = uvicorn.Server(
        uvicorn.Config(
            app, host=settings.http_host, port=port, log_config=None, lifespan="off", access_log=False
        )
    )
    http = threading.Thread(target=server.run, name="sink-http", daemon=True)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    http.start()
    deadline = time.monotonic() + 15
    while not server.started and http.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.started:
        log.error("sink.http_failed", host=settings.http_host, port=port)
        store.close()
        return 1

    topic = settings.relay_topic
    try:
        consumer = RelayConsumer(
            store,
            metrics,
            tier=tier,
            rules=settings.federation.rules,
            bootstrap=settings.kafka_bootstrap,
            engine=settings.engine,
            topic=topic,
            group_id=settings.group_id,
            nodes=frozenset(n.code for n in settings.federation.nodes),
            keyring=keyring,
            signer=signer,
        )
    except ConnectionError as exc:
        log.error("sink.kafka_unreachable", error=str(exc))
        server.should_exit = True
        http.join(10)
        store.close()
        return 1
    log.info(
        "sink.started",
        tier=tier,
        topic=topic,
        http=f"http://{settings.http_host}:{port}/",
        store=store.url_text,
    )
    try:
        consumer.run(stop)
    finally:
        consumer.close()
        server.should_exit = True
        http.join(10)
        store.close()
        log.info("sink.stopped", tier=tier, processed=consumer.processed)
    return 0
