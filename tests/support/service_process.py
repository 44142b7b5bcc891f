"""One service (`python -m services.<name>`) as a real process for the tests, started and stopped by the product's
own supervisor code (sgs/ops/supervisor.py: `launch`, `wait_http`, `stop_all`), so the tests exercise what `sgs up` and
`sgs bench` do. A wrapper says only what differs: its module and flags, its environment and its grace to stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Self

import httpx
from prometheus_client.parser import text_string_to_metric_families

from sgs.kafka.launch import free_port
from sgs.ops.supervisor import Child, launch, stop_all, wait_http


class ServiceProcess:
    """A service subprocess on its own port, its output appended to `<data_dir>/<name>.log` (kept across
    restarts). `start()` returns once `/healthz` answers; `kill()` is SIGKILL, `stop()` SIGTERM."""

    module = ""  # e.g. "services.node"
    start_timeout_s = 60.0
    stop_grace_s = 30.0

    def __init__(self, name: str, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.child = Child(name, [], self.port)
        self.env = env or {}

    def flags(self) -> list[str]:
        """The command-line flags after `python -m <module>`."""
        raise NotImplementedError

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return self.child.proc

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / f"{self.child.name}.log"

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def start(self) -> Self:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.child.argv = [sys.executable, "-m", self.module, *self.flags()]
        launch(self.child, {**os.environ, **self.env}, self.data_dir)
        assert self.proc is not None
        if not wait_http(self.port, self.proc, self.start_timeout_s):
            raise AssertionError(
                f"{self.child.name} did not answer /healthz within {self.start_timeout_s:.0f}s "
                f"(exit code {self.proc.poll()}; log {self.log_path}):\n{self.log_tail()}"
            )
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs at all."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)
        if self.child.log:
            self.child.log.close()

    def stop(self) -> int:
        """SIGTERM and the exit code (0 when it stopped cleanly); fails if it outlived `stop_grace_s` and had to
        be killed."""
        if self.proc is None:
            return 0
        running = self.proc.poll() is None
        stop_all([self.child], who="test", grace_s=self.stop_grace_s)
        code = self.proc.wait()
        if running and code == -signal.SIGKILL:
            raise AssertionError(
                f"{self.child.name} did not stop within {self.stop_grace_s:.0f}s of SIGTERM:\n{self.log_tail()}"
            )
        return code

    def metrics(self) -> str:
        return httpx.get(f"{self.url}/metrics", timeout=5).text

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of `name` matching `labels` on /metrics."""
        return sum(
            s.value
            for family in text_string_to_metric_families(self.metrics())
            for s in family.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )
