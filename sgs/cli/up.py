"""`sgs up`: the whole federation on one machine (the run itself is `sgs.ops.up`)."""

from __future__ import annotations

import argparse
import os

from sgs.cli.options import add_cluster_options, add_common_options, add_option


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("up", help="run the whole federation on this machine (embedded broker, all services)")
    add_common_options(p)
    p.set_defaults(kafka_bootstrap=os.environ.get("SGS_KAFKA_BOOTSTRAP"))  # unset: start the engine
    add_cluster_options(p)
    add_option(p, "--node-port", type=int, default=8100, help="district node API and /metrics")
    add_option(p, "--worker-port", type=int, default=6066, help="municipal worker web server and /metrics")
    add_option(p, "--provincial-port", type=int, default=8201, help="provincial sink API, page and /metrics")
    add_option(p, "--national-port", type=int, default=8202, help="national sink API, page and /metrics")
    add_option(p, "--lag-exporter-port", type=int, default=9308, help="consumer-lag exporter /metrics")
    add_option(p, "--rate", type=float, default=5.0, help="simulated records per second (0: no simulator)")
    add_option(p, "--status-interval", type=float, default=5.0, help="seconds between totals lines")
    add_option(
        p,
        "--seed",
        type=int,
        default=None,
        help="simulator seed (default: from the clock, so a rerun on the same --data-dir sends new records)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from sgs.ops.up import run_federation

    return run_federation(args)
