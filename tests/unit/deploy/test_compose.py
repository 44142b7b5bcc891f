"""docker-compose.yml checked without a Docker engine: the compose schema, and that it fits the code.

Every sgs service must run a subcommand registered in `sgs.cli`, set only `SGS_*` variables that subcommand
reads (its flags through the env rule of `sgs.cli.options`, or a variable the code reads directly), and serve the
port Prometheus scrapes. The schema is the Compose Specification as shipped in the docker-compose 1.29.2 wheel
(compose/config/compose_spec.json), pinned in tests/data/compose-spec.json.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from sgs.cli import build_parser, subcommands
from sgs.cli.options import env_name
from sgs.kafka.kraft import Node, cluster_settings, listener_settings
from tests.support.paths import REPO

ROOT = REPO
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict] = COMPOSE["services"]
SGS_SERVICES = {name: s for name, s in SERVICES.items() if s.get("image") == "sgs-federation:latest"}
LONG_RUNNING = {name: s for name, s in SERVICES.items() if "profiles" not in s and s.get("restart") != "no"}
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"


def _interpolate(value: object) -> str:
    """Compose's `${VAR:-default}` with the defaults, as an unconfigured `docker compose up` sees it (and `$$`, a
    literal `$`)."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value)).replace("$$", "$")


def _long_flags(parser: argparse.ArgumentParser) -> set[str]:
    """The `--flags` a parser takes, as its help lists them."""
    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", parser.format_help()))


def _parser_of(command: list[str]) -> argparse.ArgumentParser:
    """The parser of a command line's (sub)subcommand, e.g. `keys local`."""
    parser = subcommands()[command[0]]
    for word in command[1:]:
        nested = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]  # noqa: SLF001
        if not nested or word not in nested[0].choices:
            break
        parser = nested[0].choices[word]
    return parser


def _env(service: dict) -> dict[str, str]:
    return {key: _interpolate(value) for key, value in service.get("environment", {}).items()}


def _variables_read_directly() -> set[str]:
    """`SGS_*` names the code reads from the environment itself, not through a flag."""
    found: set[str] = set()
    for package in ("sgs", "services", "simulators"):
        for path in (ROOT / package).rglob("*.py"):
            found |= set(
                re.findall(r"""environ(?:\.get)?[\[(]\s*["'](SGS_[A-Z0-9_]+)["']""", path.read_text())
            )
    return found


def _scrape_targets(config: str) -> list[tuple[str, str, int]]:
    """(job, host, port) of every static and DNS target in a Prometheus config."""
    targets = []
    for job in yaml.safe_load((PROMETHEUS_DIR / config).read_text())["scrape_configs"]:
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, port = target.rsplit(":", 1)
                targets.append((job["job_name"], host, int(port)))
        for dns in job.get("dns_sd_configs", []):
            targets += [(job["job_name"], name, int(dns["port"])) for name in dns["names"]]
    return targets


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    schema = json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text())
    errors = [
        f"{list(e.path)}: {e.message}" for e in jsonschema.Draft201909Validator(schema).iter_errors(COMPOSE)
    ]
    assert errors == []


def test_the_deployment_has_every_part_of_the_federation() -> None:
    commands = {service["command"][0] for service in SGS_SERVICES.values()}
    assert {"node", "worker", "sink", "lag-exporter"} <= commands
    assert {"kafka-1", "kafka-2", "kafka-3", "schema-registry", "postgres", "prometheus", "grafana"} <= set(
        SERVICES
    )
    tiers = {_env(s).get("SGS_TIER") for s in SGS_SERVICES.values() if s["command"][0] == "sink"}
    assert tiers == {"provincial", "national"}


@pytest.mark.parametrize("name", sorted(SGS_SERVICES))
def test_service_command_is_a_registered_sgs_subcommand(name: str) -> None:
    assert SGS_SERVICES[name]["command"][0] in subcommands()


@pytest.mark.parametrize("name", sorted(SGS_SERVICES))
def test_service_sets_only_variables_its_subcommand_reads(name: str) -> None:
    service = SGS_SERVICES[name]
    parser = _parser_of(service["command"])
    from_flags = {env_name(flag) for flag in _long_flags(parser)}
    unread = set(_env(service)) - from_flags - _variables_read_directly()
    assert unread == set(), f"{name} sets variables `sgs {service['command'][0]}` never reads"


@pytest.mark.parametrize("name", sorted(SGS_SERVICES))
def test_service_command_line_parses_under_its_environment(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Values pass the flags' types and choices (e.g. SGS_TIER, SGS_LOG_LEVEL), as `sgs` reads them at start."""
    for key, value in _env(SGS_SERVICES[name]).items():
        monkeypatch.setenv(key, value)
    args = build_parser().parse_args(SGS_SERVICES[name]["command"])
    if "SGS_HTTP_PORT" in _env(SGS_SERVICES[name]):
        assert args.http_port == int(_env(SGS_SERVICES[name])["SGS_HTTP_PORT"])


@pytest.mark.parametrize("name", sorted(SGS_SERVICES))
def test_service_listens_beyond_loopback_when_its_command_can_bind_loopback(name: str) -> None:
    """Prometheus and the healthcheck reach a container from outside its loopback."""
    parser = subcommands()[SGS_SERVICES[name]["command"][0]]
    if "--http-host" in _long_flags(parser):
        assert _env(SGS_SERVICES[name]).get("SGS_HTTP_HOST") == "0.0.0.0"


def test_every_compose_scrape_target_is_a_port_its_service_serves() -> None:
    for job, host, port in _scrape_targets("prometheus.yml"):
        if job == "prometheus":
            assert (host, port) == ("localhost", 9090)
            continue
        assert host in SGS_SERVICES, f"{job}: {host} is not an sgs service of docker-compose.yml"
        assert int(_env(SGS_SERVICES[host])["SGS_HTTP_PORT"]) == port, f"{job}: {host}:{port}"


def test_every_sgs_service_serving_metrics_is_scraped() -> None:
    scraped = {host for _, host, _ in _scrape_targets("prometheus.yml")}
    serving = {name for name, s in SGS_SERVICES.items() if "SGS_HTTP_PORT" in _env(s)}
    assert serving - scraped == set()


def test_local_scrape_targets_are_the_ports_sgs_up_and_the_lag_exporter_use() -> None:
    commands = subcommands()
    up = commands["up"].parse_args([])
    expected = {
        "sgs-node": {up.node_port},
        "sgs-worker": {up.worker_port},
        "sgs-sink": {up.provincial_port, up.national_port},
        "sgs-lag-exporter": {commands["lag-exporter"].parse_args([]).http_port},
    }
    found: dict[str, set[int]] = {}
    for job, host, port in _scrape_targets("prometheus-local.yml"):
        assert host == "127.0.0.1"
        found.setdefault(job, set()).add(port)
    assert found == expected


@pytest.mark.parametrize("name", sorted(LONG_RUNNING))
def test_long_running_service_restarts_and_has_a_healthcheck(name: str) -> None:
    service = LONG_RUNNING[name]
    assert service.get("restart") == "unless-stopped"
    assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


@pytest.mark.parametrize("name", sorted(n for n in SGS_SERVICES if "healthcheck" in SGS_SERVICES[n]))
def test_sgs_healthcheck_probes_the_port_the_service_serves(name: str) -> None:
    probe = " ".join(SGS_SERVICES[name]["healthcheck"]["test"])
    port = _env(SGS_SERVICES[name])["SGS_HTTP_PORT"]
    assert f"http://127.0.0.1:{port}/healthz" in probe


def test_kafka_is_three_kraft_brokers_with_three_replicas_and_two_in_sync() -> None:
    brokers = {
        name: _env(s) for name, s in SERVICES.items() if s.get("image", "").startswith("apache/kafka:")
    }
    assert len(brokers) == 3
    assert len({env["CLUSTER_ID"] for env in brokers.values()}) == 1
    assert sorted(env["KAFKA_NODE_ID"] for env in brokers.values()) == ["1", "2", "3"]
    voters = {env["KAFKA_CONTROLLER_QUORUM_VOTERS"] for env in brokers.values()}
    assert voters == {"1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"}
    for env in brokers.values():
        assert "controller" in env["KAFKA_PROCESS_ROLES"]
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
    bootstrap = {_env(s)["SGS_KAFKA_BOOTSTRAP"] for s in SGS_SERVICES.values() if s["command"][0] != "keys"}
    assert bootstrap == {"kafka-1:9092,kafka-2:9092,kafka-3:9092"}


def _kafka_settings(env: dict[str, str]) -> dict[str, str]:
    """The broker properties the apache/kafka image makes of its KAFKA_* variables (KAFKA_FOO_BAR -> foo.bar)."""
    return {k[len("KAFKA_") :].lower().replace("_", "."): v for k, v in env.items() if k.startswith("KAFKA_")}


def test_compose_kafka_is_the_cluster_the_tests_run_on() -> None:
    """Issue 13: the deployment's brokers have the settings of the 3-node cluster `make test` starts
    (sgs/kafka/kraft.py), of the same Apache Kafka version, and the services run exactly-once on it."""
    pom = (ROOT / "deploy/kafka/pom.xml").read_text()
    version = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
    assert version
    for name, service in SERVICES.items():
        if not service.get("image", "").startswith("apache/kafka:"):
            continue
        assert service["image"] == f"apache/kafka:{version[1]}", name
        settings = _kafka_settings(_env(service))
        assert {k: settings.get(k) for k in cluster_settings(3)} == cluster_settings(3), name
        node = Node(int(settings["node.id"]), 9092, 9093)
        tls = Path("/var/lib/sgs-tls")  # the `tls` volume, where every container mounts it
        for key, value in listener_settings(node, settings["controller.quorum.voters"], tls).items():
            if key in ("listener.security.protocol.map",):  # compose adds HOST, for clients outside it
                assert set(value.split(",")) <= set(settings[key].split(",")), (name, key)
            elif key not in ("listeners", "advertised.listeners"):  # host names and ports differ by design
                assert settings[key] == value, (name, key)
    engines = {_env(s).get("SGS_ENGINE") for s in SGS_SERVICES.values() if s["command"][0] != "keys"}
    assert engines == {"kafka"}  # the one-shot `keys` services never talk to Kafka


def test_compose_kafka_has_no_plaintext_listener_and_publishes_only_on_loopback() -> None:
    """Issue 16: every listener is mutual TLS, what a broker publishes is bound to the host's loopback, and every
    service that talks to Kafka is given the certificates."""
    for name, service in SERVICES.items():
        if not service.get("image", "").startswith("apache/kafka:"):
            continue
        settings = _kafka_settings(_env(service))
        protocols = {entry.split(":")[1] for entry in settings["listener.security.protocol.map"].split(",")}
        assert protocols == {"SSL"}, name
        assert all(str(port).startswith("127.0.0.1:") for port in service["ports"]), name
    for name, service in SGS_SERVICES.items():
        if "SGS_KAFKA_BOOTSTRAP" in _env(service):
            assert _env(service)["SGS_KAFKA_CERTS"] == "/var/lib/sgs-tls", name


def test_worker_scales_without_fixed_names_or_host_ports() -> None:
    worker = SERVICES["worker"]
    assert "container_name" not in worker and "ports" not in worker
    assert ("sgs-worker", "worker", 6066) in _scrape_targets("prometheus.yml")


def test_bind_mounts_exist_in_the_repository() -> None:
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
    assert (ROOT / "Dockerfile").exists()
