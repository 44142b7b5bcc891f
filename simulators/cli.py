"""`sgs simulate`: play the departments of N district nodes, through the nodes' HTTP API or straight onto Kafka.

    sgs simulate --refbase-out var/ref                    # write the reference-base snapshot and exit
    sgs simulate --target http://127.0.0.1:8100 --rate 5  # a live feed until stopped
    sgs simulate --via kafka --count 200000 --rate 0      # as fast as possible, as a node would produce
    sgs simulate --files-out var/files --count 5000       # template CSV files per department, no sending

Decisions are deterministic for `--seed`; the subjects (and so the snapshot) for `--subjects-seed`. Without
`--count` or `--duration` it runs until SIGINT/SIGTERM, then prints the summary (stderr, and one JSON line on
stdout). Exit 1 when the target cannot be reached at all or nothing sent arrived.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING

from sgs.cli.options import add_common_options, add_option, key_dir
from sgs.kafka import security

if TYPE_CHECKING:
    import threading

    import structlog

    from sgs.config import Federation
    from simulators.driver import Summary
    from simulators.generator import FaultMix, Generator

# The fault flags, one per `FaultMix` field (kept here so `sgs --help` does not import the generator).
FAULT_FLAGS = {
    "late": "share of decisions submitted 1-20 working days after the D5 limit",
    "invalid": "share with one broken field (check character, missing, date order, ...): rejected (D12)",
    "name_mismatch": "share whose counterpart name differs from the reference base (D13)",
    "unknown_code": "share whose counterpart code the reference base lacks (D13)",
    "deregistered": "share whose counterpart was 注销/吊销 before the decision (D13)",
    "duplicate": "share of earlier records sent again with the same version",
    "update": "share of earlier records sent again as version + 1 (D4)",
    "revoke": "share of earlier records revoked, version + 1 (D4)",
    "objection": "share of earlier licences put under objection, version + 1 (D15)",
    "objection_taken_down": "share of records with an objection raised, then upheld: withdrawn (D15; HTTP only)",
    "objection_kept": "share of records with an objection raised, then not upheld: stays published (D15; HTTP only)",
    "repaired": "share of penalties decided months ago whose credit repair is approved: withdrawn (D16; HTTP only)",
    "repair_refused": "share of penalties with a credit repair D16 refuses: too early, or 严重失信 (HTTP only)",
}
FILE_FAULTS_UNSUPPORTED = (
    "update",
    "revoke",
    "objection",
)  # a template file carries no version (node: v1 only)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate",
        help="simulated departments: realistic licences and penalties, with faults, to nodes or Kafka",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_options(p)
    add_option(
        p, "--via", default="http", choices=["http", "kafka"], help="post to the nodes, or produce as one"
    )
    add_option(p, "--target", default="http://127.0.0.1:8100", help="base URL of the node(s) (--via http)")
    add_option(p, "--rate", type=float, default=0.0, help="records per second; 0 = as fast as possible")
    add_option(p, "--count", type=int, default=None, help="stop after this many records")
    add_option(p, "--duration", type=float, default=None, help="stop after this many seconds")
    add_option(p, "--seed", type=int, default=None, help="seed of the decisions (default: from the clock)")
    add_option(p, "--subjects-seed", type=int, default=0, help="seed of the subjects and the reference base")
    add_option(
        p, "--districts", default="all", help="comma-separated division codes, or `all` (municipal included)"
    )
    add_option(p, "--penalty-share", type=float, default=0.6, help="share of penalties among decisions")
    add_option(p, "--batch", type=int, default=1, help="records per HTTP request (one department and kind)")
    add_option(p, "--concurrency", type=int, default=4, help="HTTP connections in parallel")
    add_option(
        p, "--connect-timeout", type=float, default=10.0, help="seconds to wait for the node to answer"
    )
    add_option(
        p,
        "--decision-wait",
        type=float,
        default=300.0,
        help="seconds a decision on a record waits for the record to be accepted and for its own receipt",
    )
    add_option(p, "--clean", action="store_true", help="no faults, except those given by a fault flag")
    for name, text in FAULT_FLAGS.items():
        add_option(p, "--" + name.replace("_", "-"), type=float, default=None, help=text)
    add_option(p, "--refbase-out", default=None, help="write legal_persons.csv and persons.csv here")
    add_option(
        p, "--files-out", default=None, help="write template files per department here instead of sending"
    )
    add_option(p, "--files-format", default="csv", choices=["csv", "xlsx"], help="format of --files-out")
    p.set_defaults(run=run, kafka_principal=security.NODES)  # `--via kafka` produces as the nodes


def fault_mix(args: argparse.Namespace) -> FaultMix:
    """The fault flags over the default mix (or none, with --clean); a file cannot carry versions, and decisions
    on records (D15, D16) travel only through the node's HTTP API, once the record is accepted (which neither a
    file nor a producer straight onto Kafka can wait for)."""
    from simulators.generator import FaultMix

    base = FaultMix.none() if args.clean else FaultMix()
    given = {
        f.name: float(getattr(args, f.name)) for f in fields(FaultMix) if getattr(args, f.name) is not None
    }
    values = {f.name: given.get(f.name, getattr(base, f.name)) for f in fields(FaultMix)}
    if args.files_out:
        values.update({name: 0.0 for name in FILE_FAULTS_UNSUPPORTED})
    mix = FaultMix(**values)
    return mix.without_decisions() if args.files_out or args.via == "kafka" else mix


def run(args: argparse.Namespace) -> int:
    import signal
    import threading
    import time

    # First thing, so a stop that arrives while the population is being built still ends with a summary.
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    from sgs.config import load_config
    from sgs.logs import configure_logging
    from simulators.generator import Generator, federation_population

    log = configure_logging("simulate", args.log_level)
    federation = load_config(args.config)
    count = int(args.count) if args.count is not None else None
    duration = float(args.duration) if args.duration is not None else None
    seed = int(args.seed) if args.seed is not None else time.time_ns() % 2**31
    districts = (
        None if args.districts.strip() == "all" else [c.strip() for c in args.districts.split(",") if c]
    )
    try:
        faults = fault_mix(args)
        generator = Generator(
            federation,
            seed,
            faults,
            districts=districts,
            subjects_seed=int(args.subjects_seed),
            penalty_share=float(args.penalty_share),
        )
    except ValueError as exc:
        print(f"sgs simulate: {exc}", file=sys.stderr)
        return 2

    if args.refbase_out:
        from simulators.files import write_refbase

        written = write_refbase(
            federation_population(federation, int(args.subjects_seed)), Path(args.refbase_out)
        )
        log.info("simulate.refbase_written", dir=args.refbase_out, **written)
        if count is None and duration is None and not args.files_out:
            return 0

    if args.files_out:
        return _write_files(generator, Path(args.files_out), args.files_format, count, log)
    return _drive(args, federation, generator, count, duration, stop, log)


def _write_files(
    generator: Generator, out: Path, fmt: str, count: int | None, log: structlog.stdlib.BoundLogger
) -> int:
    from simulators.files import TemplateFiles

    if count is None:
        print("sgs simulate: --files-out needs --count", file=sys.stderr)
        return 2
    files = TemplateFiles(out, fmt)
    files.add_all(generator.take(count))
    paths = files.close()
    log.info("simulate.files_written", dir=str(out), files=len(paths), records=count)
    return 0


def _drive(
    args: argparse.Namespace,
    federation: Federation,
    generator: Generator,
    count: int | None,
    duration: float | None,
    stop: threading.Event,
    log: structlog.stdlib.BoundLogger,
) -> int:
    import asyncio

    from tqdm import tqdm

    from sgs.serialization.signing import Keyring
    from simulators.driver import TargetUnreachable, drive_http, drive_kafka

    log.info(
        "simulate.started", via=args.via, seed=generator.seed, count=count, duration=duration, rate=args.rate
    )
    bar = tqdm(total=count, unit="rec", file=sys.stderr, disable=None, mininterval=0.5, desc="simulate")
    try:
        if args.via == "kafka":
            summary = drive_kafka(
                generator,
                args.kafka_bootstrap,
                count=count,
                duration=duration,
                rate=float(args.rate),
                stop=stop,
                signers=Keyring.of(federation).node_signers(
                    key_dir(args), (n.code for n in federation.nodes)
                ),
                progress=bar.update,
            )
        else:

            async def main() -> Summary:
                return await drive_http(
                    generator,
                    args.target,
                    count=count,
                    duration=duration,
                    rate=float(args.rate),
                    batch=max(1, int(args.batch)),
                    concurrency=max(1, int(args.concurrency)),
                    stop=stop,
                    progress=bar.update,
                    connect_timeout_s=float(args.connect_timeout),
                    decision_wait_s=float(args.decision_wait),
                )

            summary = asyncio.run(main())
    except TargetUnreachable as exc:
        bar.close()
        log.error("simulate.unreachable", error=str(exc))
        print(f"sgs simulate: cannot reach the target: {exc}", file=sys.stderr)
        return 1
    bar.close()
    print(summary.render(), file=sys.stderr)
    print(json.dumps(summary.as_dict(), ensure_ascii=False))
    log.info("simulate.done", sent=summary.sent, taken=summary.taken, errors=summary.errors)
    return 1 if summary.sent and summary.errors == summary.sent else 0
