"""What every broker launcher shares (the embedded Tansu in `tansu`, Apache Kafka in KRaft mode): a free loopback
port, and waiting until a broker answers."""

from __future__ import annotations

import socket
import subprocess
import time

from kafka import KafkaAdminClient
from kafka.errors import KafkaError


class BrokerError(Exception):
    """The broker could not be started or reached."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
