"""Every PromQL query of the Grafana dashboards, sent to a real Prometheus (Debian's `prometheus` binary).

The Prometheus runs with the repo's rule files, so a dashboard reading a recording rule reads the real one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from sgs.kafka.launch import free_port
from tests.support.paths import REPO

ROOT = REPO
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
RULES = ROOT / "deploy" / "prometheus" / "rules"
PROMETHEUS = shutil.which("prometheus")

# What Grafana substitutes before sending a query; `$district` is a multi-value variable with all-value `.*`.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__range": "1h", "$district": ".*"}

pytestmark = pytest.mark.skipif(
    PROMETHEUS is None, reason="prometheus not installed (Debian: apt-get install prometheus)"
)


def live_panel_queries() -> list[tuple[str, str, str, str]]:
    """(dashboard file, panel title, refId, PromQL as Grafana sends it) for every target of every panel."""
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"]
                for variable, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(variable, value)
                found.append((path.name, panel["title"], target["refId"], expr))
    return found


def panel_queries() -> list[tuple[str, str, str]]:
    return [(dashboard, panel, expr) for dashboard, panel, _, expr in live_panel_queries()]


def start_prometheus(directory: Path, jobs: dict[str, list[str]]) -> tuple[subprocess.Popen[bytes], str]:
    """A Prometheus on a free loopback port with the repo's rules, scraping each job's targets every second."""
    assert PROMETHEUS is not None
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in sorted(RULES.glob("*.yml"))],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": targets}]} for job, targets in jobs.items()
        ],
    }
    (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = (directory / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, (directory / "prometheus.log").read_text()[-2000:]
        try:
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(
        "prometheus did not become ready: " + (directory / "prometheus.log").read_text()[-2000:]
    )


@pytest.fixture(scope="module")
def prometheus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc, url = start_prometheus(tmp_path_factory.mktemp("prometheus"), {})
    yield url
    proc.terminate()
    proc.wait(10)


def test_dashboards_have_queries_to_check() -> None:
    assert len(panel_queries()) >= 30


@pytest.mark.parametrize(("dashboard", "panel", "expr"), panel_queries())
def test_panel_query_parses_in_prometheus(prometheus_url: str, dashboard: str, panel: str, expr: str) -> None:
    answer = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", f"{dashboard} / {panel}: {answer.get('error')}\n{expr}"


def test_prometheus_loaded_every_rule_file(prometheus_url: str) -> None:
    groups = httpx.get(f"{prometheus_url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    loaded = {Path(g["file"]).name for g in groups}
    assert loaded == {p.name for p in RULES.glob("*.yml")}


# Panels whose series exist only when something goes wrong, which a healthy simulated federation does not do.
FAULT_ONLY = {
    (
        "quality.json",
        "Refused at the sinks by rule",
        "A",
    ): "sgs_sink_refused_total: only a record a tier must not hold",
    ("quality.json", "Node requests refused (401/403)", "B"): "sgs_node_forbidden_total: only a 403",
    (
        "quality.json",
        "Rejected at the worker by stage",
        "A",
    ): "the node refuses what the simulator gets wrong first",
    (
        "relays.json",
        "Withdrawals sent by tier and reason",
        "A",
    ): "sgs_worker_withdrawn_total: only after a revocation reaches the worker, which a minute of traffic may lack",
}


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"exited with {proc.returncode} before {url} answered"
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {timeout_s:.0f}s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def live_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`sgs up` (embedded broker, every service including the lag exporter, simulated departments), scraped by a
    real Prometheus with the scrape jobs of deploy/prometheus/prometheus-local.yml on free ports."""
    directory = tmp_path_factory.mktemp("live")
    ports = {8100: free_port(), 6066: free_port(), 8201: free_port(), 8202: free_port(), 9308: free_port()}
    sgs = [sys.executable, "-m", "sgs"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SGS_")}
    up_log = (directory / "up.log").open("w+b")
    up = subprocess.Popen(
        [*sgs, "up", "--data-dir", str(directory / "var"), "--rate", "30", "--status-interval", "5"]
        + ["--node-port", str(ports[8100]), "--worker-port", str(ports[6066])]
        + ["--provincial-port", str(ports[8201]), "--national-port", str(ports[8202])]
        + ["--lag-exporter-port", str(ports[9308])],
        stdout=up_log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    procs = [up]
    try:
        _wait_healthy(f"http://127.0.0.1:{ports[9308]}/healthz", up, 180)  # the lag exporter starts last

        config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus-local.yml").read_text())
        targets = {
            job["job_name"]: [
                f"127.0.0.1:{ports[int(t.rsplit(':', 1)[1])]}"
                for s in job["static_configs"]
                for t in s["targets"]
            ]
            for job in config["scrape_configs"]
        }
        prom, url = start_prometheus(directory, targets)
        procs.append(prom)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # records went the whole way and a rate() has two samples
            answer = httpx.get(
                f"{url}/api/v1/query", params={"query": "rate(sgs_sink_upserts_total[1m]) > 0"}
            )
            if answer.json()["data"]["result"]:
                break
            time.sleep(2)
        else:
            raise AssertionError("no record reached a sink within 120s")
        time.sleep(5)  # a few more evaluations of the recording rules
        yield url
    finally:
        for proc in reversed(procs):
            _stop(proc)


@pytest.mark.parametrize(("dashboard", "panel", "ref", "expr"), live_panel_queries())
def test_panel_query_returns_series_from_a_live_federation(
    live_prometheus: str, dashboard: str, panel: str, ref: str, expr: str
) -> None:
    """A series may need more traffic than the first minute gives (records with an unknown subject are 1 in 100),
    so each query is asked again for up to two minutes before it counts as empty."""
    deadline = time.monotonic() + 120
    while True:
        answer = httpx.get(f"{live_prometheus}/api/v1/query", params={"query": expr}, timeout=10).json()
        assert answer["status"] == "success", answer.get("error")
        if (dashboard, panel, ref) in FAULT_ONLY or answer["data"]["result"]:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(2)
    raise AssertionError(f"{dashboard} / {panel} ({ref}) returned no series in 120 s:\n{expr}")
