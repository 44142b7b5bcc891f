"""Run a real sink process (`python -m services.sink`) on its own relay topic, and feed it, for the tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from kafka import KafkaProducer
from polling import wait_until
from sink_records import encoded, unique_tag

from services.sink.store import SinkStore
from sgs.broker import ensure_topics, free_port
from sgs.topics import TopicSpec

ROOT = Path(__file__).resolve().parents[2]


def relay_topic(kafka: str, partitions: int = 4) -> str:
    """A relay topic of the test's own, so other tests' records never reach this sink (and its receipts)."""
    name = f"sgs.relay.test-{unique_tag()}"
    ensure_topics(kafka, partitions, (TopicSpec(name, compacted=True),))
    return name


def produce(kafka: str, topic: str, messages: list[dict[str, Any]]) -> dict[int, int]:
    """Send the messages; returns, per partition, the offset after the last one sent (the broker's own end
    offsets are not exact on Tansu: it reports the last batch's base offset + 1)."""
    producer = KafkaProducer(bootstrap_servers=kafka, acks="all", linger_ms=5)
    try:
        futures = [producer.send(topic, key=encoded(m)[0], value=encoded(m)[1]) for m in messages]
        producer.flush(30)
        ends: dict[int, int] = {}
        for f in futures:
            meta = f.get(timeout=30)
            ends[meta.partition] = max(ends.get(meta.partition, 0), meta.offset + 1)
        return ends
    finally:
        producer.close(10)


class SinkProcess:
    """One sink subprocess with a SQLite store in `data_dir` (or the given store URL); the test reads the same
    store directly."""

    def __init__(
        self, kafka: str, topic: str, data_dir: Path, tier: str = "provincial", store_url: str | None = None
    ) -> None:
        self.kafka, self.topic, self.tier = kafka, topic, tier
        self.store_url = store_url or f"sqlite:///{data_dir}/sink-{tier}.db"
        self.port = free_port()
        self.group = f"sgs-sink-test-{unique_tag()}"
        self.log_path = data_dir / f"sink-{tier}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SinkProcess:
        env = {**os.environ, "SGS_OPERATOR_TOKEN": "测试员=op-secret-123"}
        cmd = [sys.executable, "-m", "services.sink", "--tier", self.tier, "--kafka-bootstrap", self.kafka]
        cmd += ["--relay-topic", self.topic, "--group-id", self.group, "--store-url", self.store_url]
        cmd += ["--http-port", str(self.port), "--data-dir", str(Path(self.log_path).parent)]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._healthy, 60, f"sink {self.tier} answering /healthz (log: {self.log_path})")
        return self

    def _healthy(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, self.log_path.read_text()[-3000:]
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def caught_up(self, store: SinkStore, sent: dict[int, int]) -> bool:
        """Every message sent (per partition, the offset after the last one, from `produce`) is reflected in the
        store's offsets."""
        stored = store.stored_offsets(self.topic)
        return all(stored.get(p, 0) >= off for p, off in sent.items())

    def metric(self, name: str, **labels: str) -> float:
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in httpx.get(f"{self.url}/metrics", timeout=5).text.splitlines():
            if line.startswith(f"{name}{{{wanted}}} "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        """SIGTERM, and the exit code (0 when it stopped cleanly)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.terminate()
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
