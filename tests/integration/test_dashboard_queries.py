"""Every PromQL query of the Grafana dashboards, sent to a real Prometheus (Debian's `prometheus` binary).

The Prometheus runs with the repo's rule files, so a dashboard reading a recording rule reads the real one."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from sgs.broker import free_port

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
RULES = ROOT / "deploy" / "prometheus" / "rules"
PROMETHEUS = shutil.which("prometheus")

# What Grafana substitutes before sending a query; `$district` is a multi-value variable with all-value `.*`.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__range": "1h", "$district": ".*"}

pytestmark = pytest.mark.skipif(
    PROMETHEUS is None, reason="prometheus not installed (Debian: apt-get install prometheus)"
)


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, PromQL as Grafana sends it) for every target of every panel."""
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"]
                for variable, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(variable, value)
                found.append((path.name, panel["title"], expr))
    return found


def start_prometheus(directory: Path, scrape_targets: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    """A Prometheus on a free loopback port with the repo's rules, scraping `scrape_targets` every second."""
    assert PROMETHEUS is not None
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in sorted(RULES.glob("*.yml"))],
        "scrape_configs": [{"job_name": "sgs-test", "static_configs": [{"targets": scrape_targets}]}],
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
    proc, url = start_prometheus(tmp_path_factory.mktemp("prometheus"), [])
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
