"""The federation's processes as children of one supervisor: what `sgs up` and `sgs bench` both start.

One district-node process serves every node of the config (a deployment runs one per district), then the
municipal worker(s), the provincial and national sinks; the reference base is loaded first from the simulator's
snapshot. Children log to `<data dir>/logs/<name>.log`, each in its own session so a Ctrl-C reaches only the
supervisor, which stops them newest first.
"""

from __future__ import annotations

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

import structlog

from sgs.config import TIERS, Federation
from sgs.kafka import security
from sgs.kafka.engines import DEFAULT as DEFAULT_ENGINE
from sgs.kafka.engines import Engine
from sgs.kafka.security import ADMIN, Identity, make_certs, principals
from sgs.serialization.signing import local_keys

STOP_GRACE_S = 15.0


class StartFailed(Exception):
    """A setup step or a child process did not come up; the message says which and where its log is."""


@dataclass
class Child:
    name: str
    argv: list[str]
    port: int | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    log: IO[bytes] | None = field(default=None, repr=False)
    env: dict[str, str] | None = field(default=None, repr=False)  # as started, to start it again


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a live process has used so far, from /proc; None where there is no /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_http(port: int, proc: subprocess.Popen[bytes], timeout_s: float) -> bool:
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


SGS = [sys.executable, "-m", "sgs"]


def kafka_certs(given: Path | None, data_dir: Path, federation: Federation, engine: Engine) -> Path | None:
    """Where the Kafka certificates of a federation on one machine are, for the cluster this process starts
    (issue 16): `--kafka-certs`, else, on Apache Kafka, `<data dir>/tls`, with one made for every principal
    that has none; this process is then the admin (it creates the topics and ACLs). None on Tansu (no broker
    auth)."""
    if engine.name != "kafka":
        return None
    cert_dir = given or data_dir / "tls"
    make_certs(cert_dir, principals((n.code for n in federation.nodes), TIERS))
    security.use(Identity(ADMIN, cert_dir))
    return cert_dir


def child_env(
    bootstrap: str,
    data_dir: Path,
    federation: Federation,
    log_level: str,
    engine: Engine = DEFAULT_ENGINE,
    cert_dir: Path | None = None,
) -> dict[str, str]:
    """The environment every child reads its settings from (`SGS_*`, sgs.cli.options). The children accept the
    shipped development tokens (`SGS_DEV`), which nothing else does, and sign with keys made for one machine
    under `<data dir>/keys` (`local_keys`), unless the config lists keys of its own: then its signers' private
    keys are in `SGS_KEY_DIR` (issue 16). With `cert_dir`, each connects to Kafka as its own principal with its
    certificate from there (`SGS_KAFKA_CERTS`)."""
    keys: dict[str, str] = {"SGS_KAFKA_CERTS": str(cert_dir)} if cert_dir else {}
    config = federation.path
    if not federation.keys:
        config = local_keys(federation, data_dir / "keys")
        keys["SGS_KEY_DIR"] = str(data_dir / "keys")
    inherited = {k: v for k, v in os.environ.items() if k != "SGS_KAFKA_CERTS"}
    return dict(
        inherited,
        **keys,
        SGS_ENGINE=engine.name,
        SGS_KAFKA_BOOTSTRAP=bootstrap,
        SGS_DATA_DIR=str(data_dir),
        SGS_CONFIG=str(config),
        SGS_DEV="1",
        SGS_LOG_LEVEL=log_level,
        PYTHONUNBUFFERED="1",
    )


def load_refbase(env: dict[str, str], data_dir: Path, logs: Path, subjects_seed: int = 0) -> None:
    """Write the simulator's reference-base snapshot (法人库, 人口库) and load it onto the broker (D13), so the
    worker knows the subjects the simulated departments decide about."""
    refbase_dir = data_dir / "refbase"
    steps = [
        SGS + ["simulate", "--refbase-out", str(refbase_dir), "--subjects-seed", str(subjects_seed)],
        SGS + ["refbase", "load", "legal-persons", str(refbase_dir / "legal_persons.csv")],
        SGS + ["refbase", "load", "persons", str(refbase_dir / "persons.csv")],
    ]
    for argv in steps:
        with open(logs / "setup.log", "ab") as out:
            if subprocess.run(argv, env=env, stdout=out, stderr=subprocess.STDOUT).returncode != 0:
                raise StartFailed(f"setup step failed: {' '.join(argv[3:])} (see {logs / 'setup.log'})")


def federation_children(
    ports: dict[str, int], *, worker_ports: list[int] | None = None, worker_args: list[str] | None = None
) -> list[Child]:
    """Both sinks, the worker(s), the node, in the order they are started (consumers before the producer).

    `ports` has `node`, `provincial`, `national` and, for one worker, `worker`; `worker_ports` starts one
    worker per port instead, all in one consumer group (the app id), scaling by partitions."""
    workers = worker_ports if worker_ports is not None else [ports["worker"]]
    children = [
        Child(
            "provincial-sink",
            SGS + ["sink", "--tier", "provincial", "--http-port", str(ports["provincial"])],
            ports["provincial"],
        ),
        Child(
            "national-sink",
            SGS + ["sink", "--tier", "national", "--http-port", str(ports["national"])],
            ports["national"],
        ),
    ]
    for i, port in enumerate(workers):
        name = "worker" if len(workers) == 1 else f"worker-{i + 1}"
        children.append(Child(name, SGS + ["worker", "--http-port", str(port), *(worker_args or [])], port))
    children.append(
        Child("node", SGS + ["node", "--district", "all", "--http-port", str(ports["node"])], ports["node"])
    )
    return children


def start_children(
    children: list[Child],
    env: dict[str, str],
    logs: Path,
    stop: threading.Event,
    log: structlog.stdlib.BoundLogger,
    timeout_s: float = 60.0,
    extra_env: dict[str, dict[str, str]] | None = None,
) -> bool:
    """Start each child and wait for its `/healthz`; False if a stop arrived first. `extra_env[name]` adds to the
    environment of one child (e.g. a worker's own data dir)."""
    for child in children:
        if stop.is_set():
            return False
        launch(child, {**env, **(extra_env or {}).get(child.name, {})}, logs)
        assert child.proc is not None
        if child.port and not wait_http(child.port, child.proc, timeout_s):
            raise StartFailed(f"{child.name} did not come up; see {logs / child.name}.log")
        log.info("child.started", child=child.name, pid=child.proc.pid, port=child.port)
    return True


def launch(child: Child, env: dict[str, str], logs: Path) -> None:
    """Start `child` (or start it again after it stopped), its output appended to `<logs>/<name>.log`."""
    if child.log:
        child.log.close()
    child.log = open(logs / f"{child.name}.log", "ab")  # noqa: SIM115 - closed in stop_all
    child.env = env
    child.proc = subprocess.Popen(
        child.argv, env=env, stdout=child.log, stderr=subprocess.STDOUT, start_new_session=True
    )


def exited(children: list[Child]) -> Child | None:
    """The first child that has exited, if any."""
    return next((c for c in children if c.proc and c.proc.poll() is not None), None)


def stop_all(children: list[Child], who: str = "sgs", grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM newest first (the simulator, then the node, worker, sinks), then SIGKILL what outlives the grace."""
    running = [c for c in reversed(children) if c.proc and c.proc.poll() is None]
    for child in running:
        assert child.proc is not None
        child.proc.terminate()
        try:
            child.proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            print(f"{who}: {child.name} did not stop in {grace_s:.0f}s; killing it", file=sys.stderr)
            os.killpg(child.proc.pid, signal.SIGKILL)
            child.proc.wait()
    for child in children:
        if child.log:
            child.log.close()
