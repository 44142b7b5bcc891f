"""`sgs up`: the whole federation on one machine.

Starts the embedded broker (unless `--kafka-bootstrap`/`SGS_KAFKA_BOOTSTRAP` names a cluster), creates the topics,
loads a simulated reference base, then runs each deployable process as a child: one district-node process serving
every node of the config (17 processes would cost ~1 GiB for nothing on one machine; a deployment runs one per
district), the municipal worker, the provincial and national sinks, the consumer-lag exporter, and a simulator
feeding records. Prints where everything is, then a line of totals every few seconds. Ctrl-C (or SIGTERM) stops the
children newest first, then the broker, and exits 0.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from sgs.settings import add_common_options, add_option

STOP_GRACE_S = 15.0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("up", help="run the whole federation on this machine (embedded broker, all services)")
    add_common_options(p)
    p.set_defaults(kafka_bootstrap=os.environ.get("SGS_KAFKA_BOOTSTRAP"))  # unset: start the embedded broker
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


@dataclass
class Child:
    name: str
    argv: list[str]
    port: int | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    log: IO[bytes] | None = field(default=None, repr=False)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_http(port: int, proc: subprocess.Popen[bytes], timeout_s: float) -> bool:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1.0).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    return False


def run(args: argparse.Namespace) -> int:
    from sgs.broker import EmbeddedBroker, ensure_topics
    from sgs.config import load_config
    from sgs.logs import configure_logging
    from sgs.totals import Totals

    log = configure_logging("up", args.log_level)
    federation = load_config(args.config)
    data_dir = Path(args.data_dir).resolve()
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    ports = {
        "node": args.node_port,
        "worker": args.worker_port,
        "provincial": args.provincial_port,
        "national": args.national_port,
        "lag-exporter": args.lag_exporter_port,
    }
    busy = [f"{name} port {port}" for name, port in ports.items() if not _port_free(port)]
    if busy:
        print(
            f"sgs up: already in use: {', '.join(busy)} (another `sgs up` running? set --*-port)",
            file=sys.stderr,
        )
        return 2

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    broker = None
    bootstrap = args.kafka_bootstrap
    if not bootstrap:
        broker = EmbeddedBroker(log_path=logs / "broker.log").start()
        bootstrap = broker.bootstrap
    ensure_topics(bootstrap, federation.partitions)

    env = dict(
        os.environ,
        SGS_KAFKA_BOOTSTRAP=bootstrap,
        SGS_DATA_DIR=str(data_dir),
        SGS_CONFIG=str(federation.path),
        SGS_LOG_LEVEL=args.log_level,
        PYTHONUNBUFFERED="1",
    )
    sgs = [sys.executable, "-m", "sgs"]
    refbase_dir = data_dir / "refbase"
    setup = [
        sgs + ["simulate", "--refbase-out", str(refbase_dir)],
        sgs + ["refbase", "load", "legal-persons", str(refbase_dir / "legal_persons.csv")],
        sgs + ["refbase", "load", "persons", str(refbase_dir / "persons.csv")],
    ]
    children = [
        Child(
            "provincial-sink",
            sgs + ["sink", "--tier", "provincial", "--http-port", str(args.provincial_port)],
            args.provincial_port,
        ),
        Child(
            "national-sink",
            sgs + ["sink", "--tier", "national", "--http-port", str(args.national_port)],
            args.national_port,
        ),
        Child("worker", sgs + ["worker", "--http-port", str(args.worker_port)], args.worker_port),
        Child(
            "node", sgs + ["node", "--district", "all", "--http-port", str(args.node_port)], args.node_port
        ),
        Child(
            "lag-exporter",
            sgs + ["lag-exporter", "--http-port", str(args.lag_exporter_port)],
            args.lag_exporter_port,
        ),
    ]
    if args.rate > 0:
        seed = [] if args.seed is None else ["--seed", str(args.seed)]
        feed = ["simulate", "--target", f"http://127.0.0.1:{args.node_port}", "--rate", str(args.rate), *seed]
        children.append(Child("simulator", sgs + feed))
    code = 0
    try:
        for argv in setup:
            with open(logs / "setup.log", "ab") as out:
                if subprocess.run(argv, env=env, stdout=out, stderr=subprocess.STDOUT).returncode != 0:
                    print(
                        f"sgs up: setup step failed: {' '.join(argv[2:])} (see {logs / 'setup.log'})",
                        file=sys.stderr,
                    )
                    return 1
        for child in children:
            if stop.is_set():
                return 0
            child.log = open(logs / f"{child.name}.log", "ab")  # noqa: SIM115 - closed in _stop_all
            child.proc = subprocess.Popen(
                child.argv, env=env, stdout=child.log, stderr=subprocess.STDOUT, start_new_session=True
            )
            if child.port and not _wait_http(child.port, child.proc, 60):
                print(f"sgs up: {child.name} did not come up; see {logs / child.name}.log", file=sys.stderr)
                return 1
            log.info("child.started", child=child.name, pid=child.proc.pid, port=child.port)

        print(
            f"\n  federation: {federation.name} — {len(federation.nodes)} nodes, "
            f"{sum(len(n.departments) for n in federation.nodes)} departments"
        )
        print(f"  broker:            {bootstrap}{' (embedded Tansu, in memory)' if broker else ''}")
        print(f"  district nodes:    http://127.0.0.1:{args.node_port}/docs   (API)   /metrics")
        print(f"  municipal worker:  http://127.0.0.1:{args.worker_port}/metrics")
        print(
            f"  provincial sink:   http://127.0.0.1:{args.provincial_port}/   (public page)   /docs   /metrics"
        )
        print(
            f"  national sink:     http://127.0.0.1:{args.national_port}/   (public page)   /docs   /metrics"
        )
        print(f"  consumer lag:      http://127.0.0.1:{args.lag_exporter_port}/metrics")
        print(f"  logs:              {logs}/")
        print("  Ctrl-C stops everything.\n", flush=True)

        totals = Totals(ports)
        while not stop.wait(args.status_interval):
            for child in children:
                if child.proc and child.proc.poll() is not None:
                    print(
                        f"sgs up: {child.name} exited with code {child.proc.returncode}; "
                        f"see {logs / child.name}.log — stopping",
                        file=sys.stderr,
                    )
                    code = 1
                    stop.set()
            if not stop.is_set():
                print(totals.line(), flush=True)
    finally:
        _stop_all(children)
        if broker:
            broker.stop()
    print("sgs up: stopped", flush=True)
    return code


def _stop_all(children: list[Child]) -> None:
    """SIGTERM newest first (the simulator, then the node, worker, sinks), then SIGKILL what outlives the grace."""
    running = [c for c in reversed(children) if c.proc and c.proc.poll() is None]
    for child in running:
        assert child.proc is not None
        child.proc.terminate()
        try:
            child.proc.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            print(f"sgs up: {child.name} did not stop in {STOP_GRACE_S:.0f}s; killing it", file=sys.stderr)
            os.killpg(child.proc.pid, signal.SIGKILL)
            child.proc.wait()
    for child in children:
        if child.log:
            child.log.close()
