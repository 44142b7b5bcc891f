"""`sgs lag-exporter`: export every consumer group's lag per partition for Prometheus (`sgs_consumer_lag`)."""

from __future__ import annotations

import argparse
import signal
import threading

from sgs.cli.options import add_common_options, add_option


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lag-exporter", help="export Kafka consumer-group lag per partition on /metrics")
    add_common_options(p)
    add_option(p, "--http-port", type=int, default=9308, help="port serving /metrics and /healthz")
    add_option(
        p, "--group-prefix", default="", help="export only groups whose id starts with this (empty: all)"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from prometheus_client import CollectorRegistry

    from sgs.lag import ConsumerLagCollector, serve_metrics
    from sgs.logs import configure_logging

    log = configure_logging("lag-exporter", args.log_level)
    collector = ConsumerLagCollector(args.kafka_bootstrap, group_prefix=args.group_prefix)
    registry = CollectorRegistry()
    registry.register(collector)
    server = serve_metrics(registry, args.http_port)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True)
    thread.start()
    log.info("lag_exporter.ready", bootstrap=args.kafka_bootstrap, http_port=args.http_port)
    stop.wait()
    server.shutdown()
    server.server_close()
    collector.close()
    log.info("lag_exporter.stopped")
    return 0
