"""`sgs node`: one process serving one or more nodes of the federation config (区县信用子平台, D10).

A deployment runs one process per district (`--district 310115`); `sgs up` runs one process for all 17 nodes
(`--district all`) to save memory on one machine. The nodes share the process's HTTP port, outbox and sender.

`sgs node parked list|resend|drop` is the operator's hand on messages the broker refused for good (docs/node.md,
"Parked messages"); it works on the node's store while the node runs.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from sgs.cli.options import add_common_options, add_option
from sgs.kafka import security

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
    add_option(
        p, "--department-rate", type=float, default=50.0, help="requests a second per department (429 beyond)"
    )
    add_option(
        p, "--department-burst", type=int, default=100, help="requests at once per department after a pause"
    )
    add_option(
        p,
        "--department-uploads",
        type=int,
        default=2,
        help="template files in progress at once per department",
    )
    add_option(
        p,
        "--dev",
        action="store_true",
        help="accept the development tokens of the shipped config (dev-…); `sgs up` sets it, nothing else should",
    )
    p.set_defaults(run=run, kafka_principal=_principal)
    parked = p.add_subparsers(dest="node_command", metavar="parked").add_parser(
        "parked",
        help="messages the broker refused for good: list, resend or drop them",
        description="Messages the node's sender moved aside because the broker can never take them "
        "(too large, invalid). Each has its outbox sequence number (SEQ).",
    )
    actions = parked.add_subparsers(dest="parked_action", required=True, metavar="ACTION")
    for name, help_text in (
        ("list", "list the parked messages, oldest first"),
        (
            "resend",
            "put them back at the end of the outbox (after fixing the cause, e.g. a larger broker limit)",
        ),
        ("drop", "forget them for good (the department resubmits a corrected record); receipts say DROPPED"),
    ):
        action = actions.add_parser(name, help=help_text, description=help_text)
        # also accepted after the action; SGS_OUTBOX / SGS_DATA_DIR are read by `sgs node` itself
        action.add_argument("--outbox", default=argparse.SUPPRESS, help="the node's SQLite store")
        action.add_argument("--data-dir", default=argparse.SUPPRESS, help="the store is {data_dir}/outbox.db")
        if name != "list":
            action.add_argument(
                "seqs", nargs="*", type=int, metavar="SEQ", help="sequence numbers from `list`"
            )
            action.add_argument("--all", action="store_true", help="every parked message")
        action.set_defaults(run=run_parked)


def run_parked(args: argparse.Namespace) -> int:
    """`sgs node parked list|resend|drop`: exit 2 with one line for a missing store or an unknown SEQ."""
    import sys

    from services.node.store import NodeStore, now_ms

    path = Path(args.outbox) if args.outbox else Path(args.data_dir) / "outbox.db"
    if not path.is_file():
        print(f"sgs node parked: no node store at {path} (--outbox, --data-dir)", file=sys.stderr)
        return 2
    store = NodeStore(path)
    try:
        parked = store.parked()
        if args.parked_action == "list":
            for m in parked:
                print(
                    f"{m.seq}\t{m.node}\t{m.department}\t{m.topic}\t{m.size} bytes\t"
                    f"parked {datetime.fromtimestamp(m.parked_at / 1000, UTC).isoformat(timespec='seconds')}\t"
                    f"receipt {m.receipt_id}\t{m.record_id[:120]}\t{m.error}"
                )
            print(f"{len(parked)} parked", file=sys.stderr)
            return 0
        known = {m.seq for m in parked}
        seqs = sorted(known) if args.all else args.seqs
        unknown = [seq for seq in seqs if seq not in known]
        if unknown or not seqs:
            what = f"not parked: {' '.join(map(str, unknown))}" if unknown else "give SEQ... or --all"
            print(f"sgs node parked {args.parked_action}: {what}", file=sys.stderr)
            return 2
        act = store.resend if args.parked_action == "resend" else store.drop
        done = act(seqs, now_ms())
        print(
            f"{'resent' if args.parked_action == 'resend' else 'dropped'} {len(done)}: {' '.join(map(str, done))}"
        )
        return 0
    finally:
        store.close()


def _principal(args: argparse.Namespace) -> str:
    """`node.<code>` for a process serving one district, `nodes` for one serving several (issue 16)."""
    values = args.district if isinstance(args.district, list) else [args.district or ""]
    codes = [c.strip() for v in values for c in str(v).split(",") if c.strip()]
    return security.NODES if codes == ["all"] else security.node_principal(codes)


def run(args: argparse.Namespace) -> int:
    from services.node.service import serve
    from services.node.settings import NodeSettings

    return serve(NodeSettings.from_args(args))
