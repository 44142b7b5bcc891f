"""`sgs broker`: run the embedded Tansu broker alone, with the federation's topics created."""

from __future__ import annotations

import argparse
import signal
import threading

from sgs.cli.options import add_option


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "broker", help="run the embedded Kafka-protocol broker (Tansu) with the topics created"
    )
    add_option(p, "--broker-port", type=int, default=9092, help="loopback port to listen on")
    add_option(
        p, "--partitions", type=int, default=None, help="partitions per topic (default: from the config)"
    )
    add_option(p, "--config", default=None, help="federation config file (TOML)")
    add_option(
        p, "--log-level", default="info", choices=["debug", "info", "warning", "error"], help="log level"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from sgs.config import load_config
    from sgs.kafka.admin import ensure_topics
    from sgs.kafka.tansu import EmbeddedBroker
    from sgs.logs import configure_logging

    log = configure_logging("broker", args.log_level)
    partitions = args.partitions or load_config(args.config).partitions
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with EmbeddedBroker(args.broker_port) as broker:
        created = ensure_topics(broker.bootstrap, partitions)
        log.info(
            "broker.ready", bootstrap=broker.bootstrap, topics_created=len(created), partitions=partitions
        )
        stop.wait()
    return 0
