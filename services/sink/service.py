"""The sink process: the relay consumer in the main thread, the HTTP server (API, page, metrics) beside it.

SIGINT/SIGTERM stop both: the consumer finishes its batch (or leaves it unstored, to be consumed again), the
server drains, the producer flushes the receipts it holds, the store closes; exit code 0.
"""

from __future__ import annotations

import argparse
import signal
import threading
import time

import uvicorn

from services.sink.api import create_app, parse_operator_tokens
from services.sink.cli import DEFAULT_PORTS
from services.sink.consumer import RelayConsumer
from services.sink.metrics import SinkMetrics
from services.sink.store import SinkStore, StoreError
from sgs.config import load_config, store_url
from sgs.kafka.engines import engine_of
from sgs.logs import configure_logging
from sgs.topics import RELAY


def serve(args: argparse.Namespace) -> int:
    tier = args.tier
    log = configure_logging(f"sink-{tier}", args.log_level)
    federation = load_config(args.config)
    sink = federation.sinks[tier]
    url = args.store_url or store_url(sink.store_url, args.data_dir)
    try:
        tokens = parse_operator_tokens(args.operator_token)
    except ValueError as exc:
        log.error("sink.bad_operator_token", error=str(exc))
        return 2
    try:
        store = SinkStore(url)
    except StoreError as exc:
        log.error("sink.store_failed", error=str(exc))
        return 1
    metrics = SinkMetrics(tier)
    app = create_app(store, metrics, tier=tier, sink_name=sink.name, operator_tokens=tokens)
    port = int(args.http_port or DEFAULT_PORTS[tier])
    server = uvicorn.Server(
        uvicorn.Config(app, host=args.http_host, port=port, log_config=None, lifespan="off", access_log=False)
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
        log.error("sink.http_failed", host=args.http_host, port=port)
        store.close()
        return 1

    topic = args.relay_topic or RELAY[tier]
    try:
        consumer = RelayConsumer(
            store,
            metrics,
            tier=tier,
            bootstrap=args.kafka_bootstrap,
            engine=engine_of(args),
            topic=topic,
            group_id=args.group_id or f"sgs-sink-{tier}",
        )
    except ConnectionError as exc:
        log.error("sink.kafka_unreachable", error=str(exc))
        server.should_exit = True
        http.join(10)
        store.close()
        return 1
    log.info(
        "sink.started", tier=tier, topic=topic, http=f"http://{args.http_host}:{port}/", store=store.url_text
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
