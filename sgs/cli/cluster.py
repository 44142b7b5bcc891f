"""`sgs cluster-setup`: on a running Apache Kafka cluster, the federation's topics and every principal's ACLs,
made as the admin principal (issue 16). What `sgs broker`, `sgs up` and `sgs bench` do for the cluster they start;
docker-compose.yml runs it once before the services, which may then neither create topics nor grant anything."""

from __future__ import annotations

import argparse
import sys

from sgs.cli.options import add_common_options
from sgs.kafka import security


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "cluster-setup",
        help="create the topics and every principal's ACLs on a running Kafka cluster (as the admin)",
        description=__doc__,
    )
    add_common_options(p)
    p.set_defaults(run=run, kafka_principal=security.ADMIN)


def run(args: argparse.Namespace) -> int:
    from kafka.errors import KafkaError

    from sgs.config import load_config
    from sgs.kafka.admin import prepare_cluster
    from sgs.kafka.launch import BrokerError, wait_for_broker

    federation = load_config(args.config)
    try:
        wait_for_broker(args.kafka_bootstrap, 120.0)
        created = prepare_cluster(args.kafka_bootstrap, federation)
    except (BrokerError, KafkaError) as exc:
        print(f"sgs cluster-setup: {args.kafka_bootstrap}: {exc}", file=sys.stderr)
        return 1
    grants = "and every principal's ACLs " if security.current().cert_dir else ""
    print(f"sgs cluster-setup: {len(created)} topic(s) created {grants}on {args.kafka_bootstrap}")
    return 0
