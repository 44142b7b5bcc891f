"""`sgs broker`: run the engine alone (embedded Tansu, or an Apache Kafka KRaft cluster), with the topics created;
on Apache Kafka its links are mutual TLS with every principal's ACLs (`--kafka-certs`, default DATA_DIR/tls)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from sgs.cli.options import add_cluster_options, add_engine_option, add_kafka_certs_option, add_option


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "broker",
        help="run the broker alone with the topics created: embedded Tansu, or Apache Kafka (--engine kafka)",
    )
    add_engine_option(p)
    add_cluster_options(p)
    add_option(p, "--broker-port", type=int, default=9092, help="loopback port Tansu listens on")
    add_option(
        p,
        "--data-dir",
        default="var",
        help="Apache Kafka's log lives under DATA_DIR/kafka (formatted on first start, kept after)",
    )
    add_option(
        p, "--partitions", type=int, default=None, help="partitions per topic (default: from the config)"
    )
    add_option(p, "--config", default=None, help="federation config file (TOML)")
    add_kafka_certs_option(p)
    add_option(
        p, "--log-level", default="info", choices=["debug", "info", "warning", "error"], help="log level"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from sgs.config import load_config
    from sgs.kafka.admin import prepare_cluster
    from sgs.kafka.engines import engine_of, start_engine
    from sgs.kafka.launch import BrokerError
    from sgs.logs import configure_logging
    from sgs.ops.supervisor import kafka_certs

    log = configure_logging("broker", args.log_level)
    federation = load_config(args.config)
    partitions = args.partitions or federation.partitions
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    data_dir = Path(args.data_dir)
    engine = engine_of(args)
    certs = kafka_certs(Path(args.kafka_certs) if args.kafka_certs else None, data_dir, federation, engine)
    try:
        broker = start_engine(
            engine,
            data_dir=data_dir,
            log_dir=data_dir / "logs",
            brokers=args.brokers,
            port=args.broker_port,
            cert_dir=certs,
        )
    except BrokerError as exc:
        print(f"sgs broker: {exc}", file=sys.stderr)
        return 1
    try:
        created = prepare_cluster(broker.bootstrap, replace(federation, partitions=partitions))
        log.info(
            "broker.ready",
            engine=engine.name,
            bootstrap=broker.bootstrap,
            topics_created=len(created),
            partitions=partitions,
        )
        print(f"sgs broker: {engine.name} on {broker.bootstrap}", flush=True)
        if certs:
            print(f"sgs broker: mutual TLS, each principal's certificate in {certs}", flush=True)
        stop.wait()
    finally:
        broker.stop()
    return 0
