"""Sustained accepted records per second of a district node, for single posts and for batch posts.

A benchmark script, not a test: `python benchmarks/bench_node.py [--seconds 20] [--clients 4] [--batch 100]`.
It starts its own embedded broker and a real node process (`python -m services.node`) with a fresh outbox,
posts valid records (from the simulator's generator) for the given time in each mode, and counts only answers
that say the record was taken (202, committed to the outbox with synchronous=FULL). The node keeps sending to the
broker while it takes records, as it does in service. Figures depend on the disk's fsync latency and on the CPU.
Each mode also prints the node process's CPU time (user + system, from /proc/<pid>/stat, Linux only) per record
taken: its HTTP server, intake and store, and the sender and receipt threads running meanwhile.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from sgs.config import load_config
from sgs.kafka.admin import ensure_federation_topics
from sgs.kafka.launch import free_port
from sgs.kafka.tansu import EmbeddedBroker
from sgs.serialization.signing import local_keys
from simulators.generator import FaultMix, Generator, Submission

ROOT = Path(__file__).resolve().parent.parent
DISTRICT = "310115"


def start_node(bootstrap: str, data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    argv = [sys.executable, "-m", "services.node", "--district", DISTRICT, "--http-port", str(port)]
    argv += ["--kafka-bootstrap", bootstrap, "--data-dir", str(data_dir), "--log-level", "warning"]
    # the node's ceiling, not a department's fair share
    argv += ["--department-rate", "1000000", "--department-burst", "1000000"]
    # signing keys made for this run (issue 16), and the development tokens the generated records carry
    keys = data_dir / "keys"
    config = local_keys(load_config(), keys)
    argv += ["--config", str(config), "--key-dir", str(keys), "--dev"]
    log = open(data_dir / "node.log", "ab")  # noqa: SIM115 - owned by the child
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    tail = (data_dir / "node.log").read_text(errors="replace")[-3000:]
    raise SystemExit(f"the node did not start; its log ends:\n{tail}")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (Linux /proc), or None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def records(count: int, seed: int) -> list[Submission]:
    federation = load_config()
    generator = Generator(federation, seed=seed, faults=FaultMix.none(), districts=[DISTRICT])
    return list(generator.take(count))


def run_mode(
    url: str, items: list[Submission], seconds: float, clients: int, batch: int
) -> tuple[int, float]:
    """Post from `clients` threads for `seconds`; returns (records taken, elapsed seconds)."""
    taken = [0] * clients
    stop = time.monotonic() + seconds
    # Each client posts only one department's records of one kind, so a batch is one department's.
    groups: dict[tuple[str, str], list[Submission]] = {}
    for item in items:
        groups.setdefault((item.department.dev_token, item.kind), []).append(item)
    queues = sorted(groups.items(), key=lambda kv: -len(kv[1]))[:clients]

    def client(n: int) -> None:
        (token, kind), group = queues[n % len(queues)]
        position = 0
        with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {token}"}) as http:
            while time.monotonic() < stop and position < len(group):
                chunk = group[position : position + batch]
                position += batch
                body = chunk[0].http_body() if batch == 1 else [i.http_body() for i in chunk]
                r = http.post(f"/v1/records/{kind}", json=body)
                if r.status_code == 202:
                    taken[n] += batch if batch > 1 else 1
        # A client that ran out of records stops early; the others carry on.

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(len(queues))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(taken), time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20, help="duration of each mode")
    parser.add_argument("--clients", type=int, default=4, help="concurrent departments posting")
    parser.add_argument("--batch", type=int, default=100, help="records per batch post")
    parser.add_argument(
        "--records", type=int, default=60_000, help="records generated per mode (upper bound)"
    )
    args = parser.parse_args()

    print(
        f"# bench_node  {platform.python_implementation()} {platform.python_version()}  {os.cpu_count()} CPUs"
    )
    print("generating records ...", flush=True)
    single_items, batch_items = records(args.records // 4, 11), records(args.records, 12)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        ensure_federation_topics(broker.bootstrap, load_config())
        proc, url = start_node(broker.bootstrap, Path(tmp))
        try:
            for mode, items, batch in (
                ("single", single_items, 1),
                (f"batch of {args.batch}", batch_items, args.batch),
            ):
                cpu_before = cpu_seconds(proc.pid)
                taken, elapsed = run_mode(url, items, args.seconds, args.clients, batch)
                cpu_after = cpu_seconds(proc.pid)
                cpu = ""
                if cpu_before is not None and cpu_after is not None and taken:
                    used = cpu_after - cpu_before
                    cpu = f"; node CPU {used:5.1f} s = {used / taken * 1e6:,.0f} µs per record"
                print(
                    f"{mode:>14}: {taken:>8,} records taken in {elapsed:5.1f} s = {taken / elapsed:>8,.0f} records/s"
                    + cpu
                )
            sent = [
                line
                for line in httpx.get(f"{url}/metrics").text.splitlines()
                if line.startswith("sgs_node_records_sent_total")
            ]
            print("sent to the broker meanwhile:", ", ".join(line.split()[-1] for line in sent) or "0")
        finally:
            proc.terminate()
            proc.wait(60)


if __name__ == "__main__":
    main()
