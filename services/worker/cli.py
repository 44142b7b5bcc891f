"""`sgs worker`: the municipal platform's stream processors (市信用平台数据处理), a faust-streaming worker."""

from __future__ import annotations

import argparse

from sgs.cli.options import add_calendar_overrides_option, add_common_options, add_option
from sgs.kafka import security


def add_options(p: argparse.ArgumentParser) -> None:
    add_common_options(p)
    add_option(p, "--http-port", type=int, default=6066, help="worker web server: /metrics, /healthz")
    add_option(
        p, "--app-id", default="sgs-municipal", help="faust app id: consumer group and state topic prefix"
    )
    add_calendar_overrides_option(p)
    add_option(
        p,
        "--unknown-subject-hold-s",
        type=float,
        default=30.0,
        help="how long a record whose counterpart is not (yet) in the reference base is held and retried "
        "before it is concluded UNKNOWN_CODE (D13)",
    )
    add_option(
        p,
        "--unknown-record-hold-s",
        type=float,
        default=30.0,
        help="how long a decision on a record this worker does not hold (yet) is held and retried before it is "
        "refused as unknown_record (after a crash, a decision can be read before its record is read again)",
    )
    add_option(
        p,
        "--sweep-interval-s",
        type=float,
        default=86400.0,
        help="interval of the sweep that withdraws records whose publicity period has ended (D14)",
    )
    add_option(
        p,
        "--aggregates-url",
        default="sqlite:///{data_dir}/aggregates.db",
        help="SQLAlchemy URL of the aggregates store read by the monthly bulletin (D8)",
    )


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "worker", help="municipal stream processors: validate, reconcile, time, relay (D5-D18)"
    )
    add_options(p)
    p.set_defaults(run=run, kafka_principal=security.WORKER)


def run(args: argparse.Namespace) -> int:
    from services.worker.service import serve
    from services.worker.settings import WorkerSettings

    return serve(WorkerSettings.from_args(args))
