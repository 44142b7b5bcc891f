"""`sgs chaos`: faults to a running compose deployment (docker-compose.yml), on a schedule, while `sgs bench` runs.

Stops and starts, kills and restarts, pauses, or takes off the network a Kafka broker, a worker, the node or a sink
(the containers of the compose project, found by their labels through the Docker SDK), at the offsets given:

    sgs chaos --fault broker:restart@30s+20s --fault broker:disconnect@90s+15s --fault worker:pause@120s+10s
    sgs chaos --faults 6 --duration 300 --seed 7           # a random schedule over five minutes

Each fault is `ROLE:KIND@OFFSET[+DURATION]` (roles broker, worker, node, sink; kinds restart, stop, pause,
disconnect; offsets from the start of `sgs chaos`). The schedule is printed first and each fault is logged as it
happens and is undone. With `--bench-results DIR/results.json` it then waits for that run of `sgs bench` to finish
and prints what it lost and duplicated (nothing, or exit 1). SIGINT/SIGTERM undo the fault in progress (unpause,
reconnect, start) before exiting. Exit 2 when no Docker engine is reachable. How to run it: docs/chaos.md.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path

from sgs.cli.options import add_option
from sgs.ops.chaos.schedule import add_fault_options


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "chaos",
        help="faults to a running compose deployment on a schedule: brokers, workers, node, sinks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_fault_options(p, window_flag="--duration", window_default=300.0)
    add_option(
        p, "--seed", type=int, default=1, help="seed of the random faults and of which container each hits"
    )
    add_option(
        p,
        "--compose-project",
        default=None,
        help="the compose project (default: COMPOSE_PROJECT_NAME, else this directory's name, as docker compose)",
    )
    add_option(
        p,
        "--bench-results",
        default=None,
        help="the results.json the concurrent `sgs bench --out DIR` writes: wait for it, print lost/duplicated",
    )
    add_option(p, "--results-timeout", type=float, default=3600.0, help="seconds to wait for --bench-results")
    add_option(
        p, "--log-level", default="info", choices=["debug", "info", "warning", "error"], help="log level"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from sgs.logs import configure_logging
    from sgs.ops.chaos import compose as chaos_compose
    from sgs.ops.chaos.schedule import Runner, ScheduleError, describe, schedule_from_args

    log = configure_logging("chaos", args.log_level)
    try:
        schedule = schedule_from_args(
            args.fault, int(args.seed), int(args.faults), float(args.duration), chaos_compose.SUPPORTED
        )
    except ScheduleError as exc:
        print(f"sgs chaos: {exc}", file=sys.stderr)
        return 2
    if not schedule:
        print("sgs chaos: no faults: give --fault ROLE:KIND@OFFSET or --faults K", file=sys.stderr)
        return 2
    try:
        client = chaos_compose.connect()
    except chaos_compose.NoEngine as exc:
        print(f"sgs chaos: {exc}", file=sys.stderr)
        return 2
    project = args.compose_project or chaos_compose.default_project()
    target = chaos_compose.ComposeTarget(client, project)
    if not target.containers():
        print(
            f"sgs chaos: compose project {project!r} has no containers (`docker compose up -d` first, or set "
            "--compose-project)",
            file=sys.stderr,
        )
        return 2

    print(f"sgs chaos: project {project}, faults in seconds from now:\n{describe(schedule)}", file=sys.stderr)
    started = time.time()
    bar = tqdm(total=len(schedule), unit="fault", desc="faults", file=sys.stderr)
    runner = Runner(schedule, target, int(args.seed), log, on_change=lambda: bar.update(1))
    interrupted = threading.Event()

    def interrupt(*_: object) -> None:
        interrupted.set()
        runner.stop.set()  # the runner undoes the fault in progress

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, interrupt)
    runner.start()
    while not runner.done():
        time.sleep(0.5)
    runner.finish()
    bar.close()
    for entry in runner.applied:
        print(
            f"  {entry['fault']} on {entry.get('victim', '-')}: {entry.get('error') or 'applied and undone'}"
        )
    if interrupted.is_set():
        print("sgs chaos: interrupted; the fault in progress was undone", file=sys.stderr)
        return 130
    code = 1 if runner.errors else 0
    if args.bench_results:
        code = max(
            code, _bench_verdict(Path(args.bench_results), started, float(args.results_timeout), interrupted)
        )
    return code


def _bench_verdict(path: Path, since: float, timeout_s: float, interrupted: threading.Event) -> int:
    """Wait for a results.json written after `since`, print what the bench lost and duplicated."""
    print(f"sgs chaos: waiting for {path} ...", file=sys.stderr)
    deadline = time.monotonic() + timeout_s
    while not (path.exists() and path.stat().st_mtime >= since):
        if interrupted.wait(2.0):
            return 130
        if time.monotonic() > deadline:
            print(f"sgs chaos: {path} not written within {timeout_s:.0f} s", file=sys.stderr)
            return 1
    results = json.loads(path.read_text())
    print(
        f"sgs bench under chaos: lost {results['lost']}, duplicated {results['duplicated']} ({results['status']})"
    )
    for sample in results.get("reconciliation", {}).get("samples", [])[:10]:
        print(f"  e.g. {sample}")
    return 0 if results["lost"] == 0 and results["duplicated"] == 0 else 1
