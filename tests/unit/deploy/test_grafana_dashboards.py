"""The Grafana dashboards: checked-in JSON equal to the generator, all wired to the provisioned datasource."""

from __future__ import annotations

import importlib.util
import json
from types import ModuleType

import yaml

from tests.support.paths import REPO

GRAFANA = REPO / "deploy" / "grafana"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sgs_grafana_build", GRAFANA / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _dashboards() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted((GRAFANA / "dashboards").glob("*.json"))}


def test_checked_in_dashboards_equal_the_generator_output() -> None:
    rendered = _generator().render()
    on_disk = {p.name: p.read_text() for p in (GRAFANA / "dashboards").glob("*.json")}
    assert sorted(on_disk) == sorted(rendered), "run: python deploy/grafana/build.py"
    for name, text in rendered.items():
        assert on_disk[name] == text, f"{name} is stale: run python deploy/grafana/build.py"


def test_the_six_operator_views_exist_with_unique_uids() -> None:
    uids = [board["uid"] for board in _dashboards().values()]
    assert len(uids) == len(set(uids))
    assert set(uids) == {
        "sgs-overview",
        "sgs-timeliness",
        "sgs-quality",
        "sgs-reconciliation",
        "sgs-relays",
        "sgs-kafka",
    }


def test_every_panel_queries_the_provisioned_prometheus_datasource() -> None:
    provisioned = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    uid = provisioned["datasources"][0]["uid"]
    for name, board in _dashboards().items():
        panels = [p for p in board["panels"] if p["type"] != "row"]
        assert panels, name
        for panel in panels:
            assert panel["targets"], f"{name}: {panel['title']} has no query"
            ids = [t["refId"] for t in panel["targets"]]
            assert len(ids) == len(set(ids)), f"{name}: {panel['title']} repeats a refId"
            for target in panel["targets"]:
                assert target["datasource"] == {"type": "prometheus", "uid": uid}, f"{name}: {panel['title']}"
                assert target["expr"].strip()


def test_dashboard_provider_path_is_where_compose_mounts_the_json() -> None:
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "sgs.yml").read_text())["providers"][
        0
    ]
    compose = yaml.safe_load((GRAFANA.parents[1] / "docker-compose.yml").read_text())
    volumes = compose["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{provider['options']['path']}:ro" in volumes
