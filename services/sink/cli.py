"""`sgs sink --tier provincial|national`: one tier's sink, its query API and its public disclosure page."""

from __future__ import annotations

import argparse

from sgs.cli.options import add_common_options, add_option
from sgs.config import TIERS
from sgs.kafka import security


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sink", help="run a provincial or national sink: relay topic -> store -> query API and page"
    )
    add_common_options(p)
    add_option(
        p,
        "--tier",
        choices=list(TIERS),
        required=False,
        default=None,
        help="which sink: provincial or national",
    )
    add_option(
        p, "--http-port", type=int, default=None, help="HTTP port (default 8201 provincial, 8202 national)"
    )
    add_option(p, "--http-host", default="127.0.0.1", help="HTTP address to listen on")
    add_option(
        p, "--store-url", default=None, help="SQLAlchemy URL of the store (default: sinks.<tier>.store_url)"
    )
    add_option(
        p, "--operator-token", default=None, help="operator tokens, name=secret[,...] (provincial tier, D17)"
    )
    add_option(p, "--group-id", default=None, help="Kafka consumer group (default sgs-sink-<tier>)")
    add_option(p, "--relay-topic", default=None, help="topic to consume (default sgs.relay.<tier>)")
    p.set_defaults(run=run, kafka_principal=lambda a: security.sink_principal(a.tier))


def run(args: argparse.Namespace) -> int:
    from services.sink.service import serve
    from services.sink.settings import SinkSettings

    return serve(SinkSettings.from_args(args))
