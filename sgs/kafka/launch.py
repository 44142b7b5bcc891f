"""What every broker launcher shares (the embedded Tansu in `tansu`, Apache Kafka in KRaft mode): a free loopback
port, and waiting until a broker answers."""

from __future__ import annotations

import contextlib
import logging
import socket
import subprocess
import time
from collections.abc import Iterator

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from sgs.kafka.security import kafka_settings


class BrokerError(Exception):
    """The broker could not be started or reached."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_broker(bootstrap: str, timeout_s: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Block until the broker answers a metadata request, or raise `BrokerError` (said once, with the last error).

    A starting broker refuses connections for a while; kafka-python logs each refusal at ERROR, which is noise
    while waiting is what is meant, so its loggers are quiet until the broker answers or the wait gives up."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    with _quiet(logging.getLogger("kafka")):
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise BrokerError(
                    f"broker exited with code {proc.returncode} before answering on {bootstrap}"
                )
            try:
                admin = KafkaAdminClient(**kafka_settings(bootstrap), request_timeout_ms=2000)
                admin.list_topics()
                admin.close()
                return
            except (KafkaError, OSError) as exc:
                last = exc
                time.sleep(0.2)
    raise BrokerError(f"no Kafka broker answered on {bootstrap} within {timeout_s:.0f}s ({last})")


@contextlib.contextmanager
def _quiet(logger: logging.Logger) -> Iterator[None]:
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)
