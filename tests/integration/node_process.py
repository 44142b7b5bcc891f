"""Run a real district node (`python -m services.node`) for the tests, and read what reached the broker."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from kafka import KafkaConsumer, TopicPartition
from polling import wait_until
from prometheus_client.parser import text_string_to_metric_families

from sgs.broker import free_port
from sgs.serialization import default_codec
from sgs.topics import SUBMITTED

ROOT = Path(__file__).resolve().parents[2]


class NodeProcess:
    """One `sgs node` subprocess with its outbox in `data_dir` (kept across restarts)."""

    def __init__(self, kafka: str, data_dir: Path, districts: tuple[str, ...] = ("310115",)) -> None:
        self.kafka = kafka
        self.data_dir = data_dir
        self.districts = districts
        self.port = free_port()
        self.log_path = data_dir / "node.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> NodeProcess:
        argv = [sys.executable, "-m", "services.node", "--http-port", str(self.port)]
        argv += ["--kafka-bootstrap", self.kafka, "--data-dir", str(self.data_dir)]
        for code in self.districts:
            argv += ["--district", code]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._healthy, 30, f"node on port {self.port} answering /healthz (log: {self.log_path})")
        return self

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(
                f"node exited with {self.proc.returncode}: {self.log_path.read_text()[-2000:]}"
            )
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs at all."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        """SIGTERM and the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(40)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of `name` matching `labels` on /metrics."""
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        return sum(
            s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )


def submitted_versions(kafka: str, wanted: set[str], timeout_s: float = 60) -> list[tuple[str, int]]:
    """Every (record_id, version) among `wanted` record ids on sgs.submitted.*, duplicates included, read from the
    beginning until each wanted id has been seen (other tests' records on the shared topics are skipped)."""
    consumer = KafkaConsumer(bootstrap_servers=kafka, enable_auto_commit=False, consumer_timeout_ms=1000)
    codec = default_codec()
    seen: list[tuple[str, int]] = []
    try:
        parts = [
            TopicPartition(t, p) for t in SUBMITTED.values() for p in consumer.partitions_for_topic(t) or ()
        ]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not wanted <= {rid for rid, _ in seen}:
            for messages in consumer.poll(timeout_ms=500, max_records=5000).values():
                for m in messages:
                    if m.key is None or m.key.decode() not in wanted:
                        continue
                    _, record = codec.decode(m.value)
                    assert record["envelope"]["record_id"] == m.key.decode()  # key = record identity
                    seen.append((record["envelope"]["record_id"], record["envelope"]["version"]))
        # Read a little further, so duplicates sent right after the last first copy are counted too.
        for messages in consumer.poll(timeout_ms=500, max_records=5000).values():
            for m in messages:
                if m.key is not None and m.key.decode() in wanted:
                    _, record = codec.decode(m.value)
                    seen.append((record["envelope"]["record_id"], record["envelope"]["version"]))
    finally:
        consumer.close()
    return seen
