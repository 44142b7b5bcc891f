"""`sgs bench`: load-test the whole federation on one broker and prove, with numbers, that nothing is lost.

In one run on the same broker (the engine `--engine` names, started here: the embedded Tansu, or Apache Kafka with
`--brokers` nodes; unless `--kafka-bootstrap` names a cluster):
(a) raw pass-through: the same records, Avro-encoded as a node produces them, produced to a scratch topic, then a
    plain kafka-python consume-and-produce loop copies them to a second scratch topic — the floor any processor on
    this broker and client pays;
(b) end to end: the real processes (`sgs node --district all`, `--workers N` × `sgs worker`, both sinks, started as
    `sgs up` starts them) take `--records N` pre-generated decisions posted to the district node's HTTP API in
    batches, as departments do; records/s = records settled (held by the sinks they belong in, rejected, or
    deliberately not relayed) / wall time from the first post to the last settlement; and (b)/(a);
(c) latency from submission (the envelope's `submitted_at`, stamped by the node) to arrival in each sink (the
    sink store's `received_at`), p50/p95/p99;
(d) accounting (`simulators.bench.accounting`): every record sent accounted for, zero lost, zero duplicated —
    or exit 1 saying which.
`--fault ROLE:KIND@OFFSET[+DURATION]` (and `--faults K`) kills, stops or pauses the bench's own worker, node or
sinks, and on Apache Kafka one broker (`broker:`) or the whole cluster (`cluster:`), on a schedule from the first
post (sgs/ops/chaos/schedule.py, docs/chaos.md); the reconciliation must still balance.
"""

from __future__ import annotations

import argparse
import os

from sgs.cli.options import add_cluster_options, add_common_options, add_option
from sgs.kafka import security
from sgs.ops.chaos.schedule import add_fault_options


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="load-test the whole federation: raw broker vs end to end, latency, reconciliation",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_options(p)
    p.set_defaults(kafka_bootstrap=os.environ.get("SGS_KAFKA_BOOTSTRAP"))  # unset: start the engine
    add_cluster_options(p)
    add_option(p, "--records", type=int, default=10_000, help="decisions to send")
    add_option(
        p,
        "--workers",
        type=worker_counts,
        default="1",
        help="municipal worker processes (one consumer group); a list (1,2,4) runs the bench once per count and "
        "prints records/s for each",
    )
    add_option(p, "--batch", type=int, default=200, help="records per HTTP request (one department and kind)")
    add_option(p, "--concurrency", type=int, default=4, help="HTTP connections posting in parallel")
    add_option(
        p, "--rate", type=float, default=0.0, help="records per second offered; 0 = as fast as possible"
    )
    add_option(p, "--seed", type=int, default=1, help="seed of the decisions")
    add_option(p, "--clean", action="store_true", help="no faults (default: the simulator's fault mix)")
    add_option(
        p,
        "--unknown-subject-hold-s",
        type=float,
        default=30.0,
        help="the worker's hold for counterparts the reference base lacks (D13)",
    )
    add_option(p, "--timeout", type=float, default=3600.0, help="give up (exit 1) after this many seconds")
    add_option(
        p,
        "--stall-timeout",
        type=float,
        default=120.0,
        help="once everything is sent, give up when no record has settled for this many seconds",
    )
    add_option(
        p,
        "--tree",
        default="config",
        choices=["config", "national"],
        help="`config`: the federation config's nodes; `national`: a generated national tree (31 provinces, "
        "~2,800 county-level nodes) served by the one node process",
    )
    add_option(p, "--out", default=None, help="write results.json and results.png here")
    # sgs/ops/chaos/schedule.py: faults to the bench's own processes, offsets from the first post (docs/chaos.md)
    add_fault_options(p, window_flag="--fault-window", window_default=60.0)
    # the owner of the cluster it starts (topics, ACLs); on a cluster named by --kafka-bootstrap, `bench`
    p.set_defaults(run=run, kafka_principal=lambda a: security.BENCH if a.kafka_bootstrap else security.ADMIN)


def worker_counts(text: str) -> tuple[int, ...]:
    """`--workers`: one count, or several separated by commas (the scale-out curve)."""
    try:
        counts = tuple(int(part) for part in str(text).split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a worker count or a list of them (1,2,4)"
        ) from None
    if not counts or min(counts) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: worker counts must be positive")
    return counts


def run(args: argparse.Namespace) -> int:
    from simulators.bench.run import Bench, scale_out

    counts = tuple(args.workers)
    if len(counts) == 1:
        return Bench(argparse.Namespace(**{**vars(args), "workers": counts[0]})).run()
    return scale_out(args, counts)
