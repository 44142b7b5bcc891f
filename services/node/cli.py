"""`sgs node`: one process serving one or more nodes of the federation config (区县信用子平台, D10).

A deployment runs one process per district (`--district 310115`); `sgs up` runs one process for all 17 nodes
(`--district all`) to save memory on one machine. The nodes share the process's HTTP port, outbox and sender.
"""

from __future__ import annotations

import argparse

from sgs.cli.options import add_common_options, add_option

DISTRICT_GIVEN = "district_given_on_command_line"


class _DistrictAction(argparse.Action):
    """Repeatable `--district`: the codes given on the command line replace SGS_DISTRICT, then accumulate."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values, option_string=None
    ):  # type: ignore[no-untyped-def]
        given = getattr(namespace, DISTRICT_GIVEN, False)
        codes = list(getattr(namespace, self.dest)) if given else []
        setattr(namespace, self.dest, [*codes, values])
        setattr(namespace, DISTRICT_GIVEN, True)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "node",
        help="a district node: HTTP and file ingest, durable outbox, receipts",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_options(p)
    add_option(
        p,
        "--district",
        action=_DistrictAction,
        help="division code of a node to serve (repeat, or comma-separate), or `all` for every node of the config",
    )
    add_option(p, "--http-host", default="127.0.0.1", help="address to listen on")
    add_option(p, "--http-port", type=int, default=8100, help="API, /metrics and /healthz port")
    add_option(p, "--outbox", default=None, help="the node's SQLite store (default: {data_dir}/outbox.db)")
    add_option(
        p, "--max-body-bytes", type=int, default=16 * 1024 * 1024, help="largest JSON request body (413)"
    )
    add_option(
        p, "--max-file-bytes", type=int, default=512 * 1024 * 1024, help="largest template file upload (413)"
    )
    add_option(
        p, "--max-batch-records", type=int, default=10_000, help="most records in one JSON batch (413)"
    )
    add_option(p, "--send-batch", type=int, default=500, help="records the sender publishes per round")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from services.node.service import serve
    from services.node.settings import NodeSettings

    return serve(NodeSettings.from_args(args))
