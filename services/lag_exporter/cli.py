"""`sgs lag-exporter`: export every consumer group's lag per partition for Prometheus (`sgs_consumer_lag`)."""

from __future__ import annotations

import argparse

from sgs.cli.options import add_common_options, add_option
from sgs.kafka import security


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lag-exporter", help="export Kafka consumer-group lag per partition on /metrics")
    add_common_options(p)
    add_option(p, "--http-port", type=int, default=9308, help="port serving /metrics and /healthz")
    add_option(
        p, "--group-prefix", default="", help="export only groups whose id starts with this (empty: all)"
    )
    p.set_defaults(run=run, kafka_principal=security.LAG_EXPORTER)


def run(args: argparse.Namespace) -> int:
    from services.lag_exporter.service import serve
    from services.lag_exporter.settings import LagExporterSettings

    return serve(LagExporterSettings.from_args(args))
