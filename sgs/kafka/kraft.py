"""Apache Kafka (KRaft) on loopback: N combined broker+controller nodes (1 or 3), their logs under a data dir.

The jars come from Maven Central through `deploy/kafka/pom.xml` (`make kafka`; fetched on first use when `mvn` is
on the PATH). Storage is formatted on the first start of a data dir; later starts reuse it, its cluster id and its
ports (kept in `cluster.json`), so a restarted cluster holds every topic and committed offset it held before.

Every broker setting is in three places: `cluster_settings(n)` (what every node of a cluster shares; the same as
docker-compose.yml's `x-kafka-env`, checked by tests/unit/deploy/test_compose.py), `MACHINE_SETTINGS` (thread pools for
a 2-core machine) and `listener_settings()` (one place for the listeners: who talks on which, with which security
protocol, and with `--kafka-certs` the mutual TLS and the authorizer of issue 16).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import structlog
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from sgs.kafka.launch import BrokerError, free_port
from sgs.kafka.security import (
    ADMIN,
    BROKER,
    SUPER_USERS,
    Identity,
    kafka_settings,
    keystore_path,
    make_certs,
)
from sgs.kafka.topics import MAX_BATCH_BYTES

log = structlog.get_logger("kraft")

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kafka"
POM = DEPLOY / "pom.xml"
LIB = DEPLOY / "lib"  # git-ignored: `mvn dependency:copy-dependencies` fills it
LOG4J2 = DEPLOY / "log4j2.properties"

# Sized for a 2-core, 24 GiB machine that also runs the federation: 1 GiB of heap a node (3 GiB for three), the
# rest of memory left to the page cache, which is what Kafka reads from; G1 with short pauses as Kafka's own
# scripts start it, and the JIT held to the cores there are.
JVM_OPTIONS = (
    "-Xms512m",
    "-Xmx1g",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:CICompilerCount=2",
    "-Djava.awt.headless=true",
)
STOP_GRACE_S = 30.0  # a clean stop of every node (controlled shutdown, log flush) takes a few seconds


def cluster_settings(nodes: int) -> dict[str, str]:
    """What every node of an `nodes`-node cluster shares: replication of 3 (or the cluster's size) with two
    replicas in sync for a write to count on three nodes, internal topics replicated the same way."""
    replicas = min(nodes, 3)
    in_sync = 2 if nodes >= 3 else 1
    return {
        "process.roles": "broker,controller",
        "default.replication.factor": str(replicas),
        "min.insync.replicas": str(in_sync),
        "offsets.topic.replication.factor": str(replicas),
        "transaction.state.log.replication.factor": str(replicas),
        "transaction.state.log.min.isr": str(in_sync),
        "group.initial.rebalance.delay.ms": "0",
        # 50 partitions each by default: 300 replicas to lead and fetch on a small machine for nothing
        "offsets.topic.num.partitions": "8",
        "transaction.state.log.num.partitions": "8",
        "message.max.bytes": str(MAX_BATCH_BYTES),  # the federation's one message limit (sgs.kafka.topics)
    }


# Thread pools for the 2-core machines the project's clusters run on (a deployment sizes its own).
MACHINE_SETTINGS = {"num.network.threads": "2", "num.io.threads": "4"}


@dataclass(frozen=True)
class Node:
    id: int
    port: int  # clients and replication between brokers
    controller_port: int  # the KRaft quorum


def listener_settings(node: Node, voters: str, cert_dir: Path | None = None) -> dict[str, str]:
    """The listeners of one node, on loopback: one for clients and replication between brokers, CONTROLLER for the
    KRaft quorum. With `cert_dir` (issue 16) both are mutual TLS with the federation's CA, a certificate's CN is
    its principal, and the StandardAuthorizer refuses what no ACL allows (`sgs.kafka.security.acl_bindings`);
    the brokers (among themselves and to the controllers) and the admin are super users. Without it, PLAINTEXT
    and no authorizer."""
    if cert_dir is None:
        return {
            "listeners": f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "controller.quorum.voters": voters,
        }
    return {
        "listeners": f"SSL://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
        "advertised.listeners": f"SSL://127.0.0.1:{node.port}",
        "listener.security.protocol.map": "CONTROLLER:SSL,SSL:SSL",
        "inter.broker.listener.name": "SSL",
        "controller.listener.names": "CONTROLLER",
        "controller.quorum.voters": voters,
        **auth_settings(),
        "ssl.keystore.location": str(keystore_path(cert_dir, BROKER)),
        "ssl.truststore.location": str(cert_dir / "ca.pem"),
    }


def auth_settings() -> dict[str, str]:
    """What every node of an authenticated cluster shares, wherever its files are (docker-compose.yml's
    `x-kafka-auth` holds the same, checked by tests/unit/deploy/test_compose.py)."""
    return {
        "ssl.client.auth": "required",
        "ssl.keystore.type": "PEM",
        "ssl.truststore.type": "PEM",
        "ssl.endpoint.identification.algorithm": "https",
        "ssl.principal.mapping.rules": "RULE:^CN=([^,]+)$/$1/,DEFAULT",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": ";".join(f"User:{p}" for p in SUPER_USERS),
        "allow.everyone.if.no.acl.found": "false",
    }


def resolve_jars() -> None:
    """Copy the jars `deploy/kafka/pom.xml` names into `LIB`, replacing what was there (`make kafka`)."""
    if shutil.which("mvn") is None:
        raise BrokerError(
            f"Apache Kafka's jars are not in {LIB} and mvn is not installed (apt-get install maven)"
        )
    log.info("kraft.resolving", pom=str(POM))
    shutil.rmtree(LIB, ignore_errors=True)
    done = subprocess.run(
        ["mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies"], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise BrokerError(f"mvn could not resolve {POM}: {(done.stdout + done.stderr).strip()[-500:]}")


def classpath() -> str:
    """The broker's classpath, resolving the jars first when they are not there yet."""
    if not any(LIB.glob("kafka_2.13-*.jar")):
        resolve_jars()
    return str(LIB / "*")


def new_cluster_id() -> str:
    """A KRaft cluster id: a random UUID in Kafka's URL-safe base64 (one not starting with '-', which the storage
    tool would read as an option)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


class KraftCluster:
    """N combined-mode nodes under `data_dir`, started and stopped with this object (also a context manager).

    `kill`, `start_node`, `pause` and `resume` act on one node, for the fault injection of `sgs bench`."""

    def __init__(
        self, data_dir: Path, nodes: int = 1, log_dir: Path | None = None, cert_dir: Path | None = None
    ) -> None:
        if nodes not in (1, 3):
            raise ValueError(f"a KRaft cluster here has 1 or 3 nodes, not {nodes}")
        self.data_dir = data_dir.resolve()
        self.log_dir = (log_dir or self.data_dir).resolve()
        self.size = nodes
        # links authenticated (issue 16): the brokers' certificate and the admin's, made here when missing
        self.cert_dir = make_certs(cert_dir.resolve(), (BROKER, ADMIN)) if cert_dir else None
        self.admin = Identity(ADMIN, self.cert_dir)
        self.cluster_id, self.nodes = self._layout()
        self.bootstrap = ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)
        self._procs: dict[int, subprocess.Popen[bytes]] = {}

    def _layout(self) -> tuple[str, list[Node]]:
        """The cluster id and ports of this data dir: chosen on first use, the same on every later start (the
        quorum's voters and every client's metadata name them)."""
        state = self.data_dir / "cluster.json"
        if state.exists():
            saved = json.loads(state.read_text())
            if len(saved["nodes"]) != self.size:
                raise BrokerError(
                    f"{self.data_dir} holds a {len(saved['nodes'])}-node cluster, not {self.size}"
                )
            return saved["cluster_id"], [Node(**n) for n in saved["nodes"]]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        nodes = [Node(i + 1, free_port(), free_port()) for i in range(self.size)]
        cluster_id = new_cluster_id()
        state.write_text(json.dumps({"cluster_id": cluster_id, "nodes": [n.__dict__ for n in nodes]}))
        return cluster_id, nodes

    def properties(self, node: Node) -> dict[str, str]:
        voters = ",".join(f"{n.id}@127.0.0.1:{n.controller_port}" for n in self.nodes)
        return {
            "node.id": str(node.id),
            "log.dirs": str(self.data_dir / f"node-{node.id}"),
            **cluster_settings(self.size),
            **MACHINE_SETTINGS,
            **listener_settings(node, voters, self.cert_dir),
        }

    def _config(self, node: Node) -> Path:
        path = self.data_dir / f"node-{node.id}.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in self.properties(node).items()))
        return path

    def _java(self, main: str, *args: str) -> list[str]:
        java = Path(os.environ["JAVA_HOME"], "bin", "java") if "JAVA_HOME" in os.environ else "java"
        return [
            str(java),
            *JVM_OPTIONS,
            f"-Dlog4j2.configurationFile={LOG4J2}",
            "-cp",
            classpath(),
            main,
            *args,
        ]

    def _format(self, node: Node, config: Path) -> None:
        """Format the node's log dir on its first start; a formatted one is left as it is."""
        if (self.data_dir / f"node-{node.id}" / "meta.properties").exists():
            return
        done = subprocess.run(
            self._java("kafka.tools.StorageTool", "format", "-t", self.cluster_id, "-c", str(config)),
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise BrokerError(
                f"formatting node {node.id} failed: {(done.stdout + done.stderr).strip()[-500:]}"
            )

    def start_node(self, node_id: int) -> None:
        node = self.nodes[node_id - 1]
        config = self._config(node)
        self._format(node, config)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"kafka-{node.id}.log", "ab") as out:
            self._procs[node.id] = subprocess.Popen(
                self._java("kafka.Kafka", str(config)),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops the cluster last
            )

    def start(self, timeout_s: float = 120.0) -> KraftCluster:
        for node in self.nodes:
            self.start_node(node.id)
        try:
            self.wait_ready(timeout_s)
        except BrokerError:
            self.stop()
            raise
        log.info("kraft.started", bootstrap=self.bootstrap, nodes=self.size, data_dir=str(self.data_dir))
        return self

    def wait_ready(self, timeout_s: float) -> None:
        """Block until every node is registered with the quorum and answers clients, or raise `BrokerError`."""
        deadline = time.monotonic() + timeout_s
        last: object = None
        while time.monotonic() < deadline:
            dead = [i for i, p in self._procs.items() if p.poll() is not None]
            if dead:
                raise BrokerError(f"kafka node {dead[0]} exited; see {self.log_dir / f'kafka-{dead[0]}.log'}")
            if not all(_accepts(n.port) for n in self.nodes):
                last = "not listening yet"
                time.sleep(0.5)
                continue
            try:
                admin = KafkaAdminClient(
                    **kafka_settings(self.bootstrap, self.admin),
                    request_timeout_ms=3000,
                    reconnect_backoff_max_ms=500,
                )
                try:
                    brokers = len(admin.describe_cluster()["brokers"])
                finally:
                    admin.close()
                if brokers == self.size:
                    return
                last = f"{brokers} of {self.size} brokers registered"
            except (KafkaError, OSError) as exc:
                last = exc
            time.sleep(0.5)
        raise BrokerError(
            f"the kafka cluster on {self.bootstrap} was not ready within {timeout_s:.0f}s ({last})"
        )

    @property
    def pids(self) -> dict[int, int]:
        return {i: p.pid for i, p in self._procs.items() if p.poll() is None}

    def process_ids(self) -> dict[str, int]:
        """Each running node's process by name (`broker-N`), for CPU accounting."""
        return {f"broker-{i}": pid for i, pid in self.pids.items()}

    def kill(self, node_id: int) -> None:
        """SIGKILL one node: what a crashed machine looks like to the others."""
        proc = self._procs.get(node_id)
        if proc and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop_node(self, node_id: int) -> None:
        """SIGTERM one node (a controlled shutdown: its partitions' leadership moves first), SIGKILL after
        `STOP_GRACE_S`."""
        proc = self._procs.get(node_id)
        if proc and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def pause(self, node_id: int) -> None:
        os.killpg(self._procs[node_id].pid, signal.SIGSTOP)

    def resume(self, node_id: int) -> None:
        os.killpg(self._procs[node_id].pid, signal.SIGCONT)

    def stop(self) -> None:
        """SIGTERM every node at once (each shuts down in order and flushes its log), SIGKILL what is left after
        `STOP_GRACE_S`: the log recovers from that too, only slower."""
        running = {i: p for i, p in self._procs.items() if p.poll() is None}
        for proc in running.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGCONT)  # a paused node cannot stop
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for i, proc in running.items():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("kraft.stop_timeout", node=i)
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if running:
            log.info("kraft.stopped", bootstrap=self.bootstrap)
        self._procs.clear()

    def __enter__(self) -> KraftCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
