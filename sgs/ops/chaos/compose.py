"""The `compose` fault target: the containers of a running `docker compose` project, through the Docker SDK.

Containers are found by the labels compose puts on them (`com.docker.compose.project`, `com.docker.compose.service`),
so scaled services (`--scale worker=4`) count every replica. restart = `docker kill` then `docker start`;
stop = `docker stop` then `docker start`; pause = `docker pause` / `unpause` (the cgroup freezer);
disconnect = off every network of the project it is on, then back on with the same DNS aliases.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from sgs.ops.chaos.schedule import FAULT_KINDS, Fault

# The services of docker-compose.yml each role hits (tests/unit/test_chaos.py checks they exist there).
ROLE_SERVICES = {
    "broker": ("kafka-1", "kafka-2", "kafka-3"),
    "worker": ("worker",),
    "node": ("node",),
    "sink": ("sink-provincial", "sink-national"),
}
SUPPORTED = frozenset((role, kind) for role in ROLE_SERVICES for kind in FAULT_KINDS)
STOP_TIMEOUT_S = 30  # docker stop: SIGTERM, then SIGKILL after this
PROJECT = "com.docker.compose.project"
SERVICE = "com.docker.compose.service"


class NoEngine(Exception):
    """No Docker engine answered; the message says where it was looked for."""


def engine_address() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def default_project() -> str:
    """What `docker compose` calls the project run from here: COMPOSE_PROJECT_NAME, else the directory's name."""
    name = os.environ.get("COMPOSE_PROJECT_NAME") or Path.cwd().name
    return re.sub(r"[^a-z0-9_-]", "", name.lower())


def connect() -> Any:
    """A Docker client that has answered a ping, or `NoEngine`."""
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env()
        client.ping()
    except DockerException as exc:
        raise NoEngine(
            f"no Docker engine at {engine_address()}; start one or set DOCKER_HOST ({exc})"
        ) from exc
    return client


class ComposeTarget:
    def __init__(self, client: Any, project: str) -> None:
        self.client = client
        self.project = project
        self.aliases: dict[
            str, dict[str, list[str]]
        ] = {}  # container -> network -> aliases, while disconnected

    def containers(self, services: tuple[str, ...] | None = None) -> list[Any]:
        found = self.client.containers.list(all=True, filters={"label": f"{PROJECT}={self.project}"})
        return [c for c in found if services is None or c.labels.get(SERVICE) in services]

    def victims(self, role: str) -> list[str]:
        return [c.name for c in self.containers(ROLE_SERVICES[role]) if c.status == "running"]

    def apply(self, fault: Fault, victim: str) -> dict[str, Any]:
        container = self.client.containers.get(victim)
        if fault.kind == "restart":
            container.kill()
        elif fault.kind == "stop":
            container.stop(timeout=STOP_TIMEOUT_S)
        elif fault.kind == "pause":
            container.pause()
        else:
            networks = container.attrs["NetworkSettings"]["Networks"]
            self.aliases[victim] = {name: list(net.get("Aliases") or []) for name, net in networks.items()}
            for name in networks:
                self.client.networks.get(name).disconnect(container)
            return {"container": container.short_id, "networks": sorted(networks)}
        return {"container": container.short_id}

    def restore(self, fault: Fault, victim: str) -> dict[str, Any]:
        container = self.client.containers.get(victim)
        if fault.kind == "pause":
            container.unpause()
            return {}
        if fault.kind == "disconnect":
            for name, aliases in self.aliases.pop(victim).items():
                self.client.networks.get(name).connect(container, aliases=aliases)
            return {}
        container.reload()
        if container.status == "running":  # the restart policy was quicker
            return {"restarted_by": "docker"}
        container.start()
        return {"restarted_by": "sgs chaos"}
