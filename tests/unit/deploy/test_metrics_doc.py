"""docs/metrics.md is the list of metrics: in step with the code, and with what dashboards and rules read."""

from __future__ import annotations

import ast
import json
import re

import yaml

from tests.support.paths import REPO

ROOT = REPO
DOC = (ROOT / "docs" / "metrics.md").read_text()
METRIC_CLASSES = {"Counter", "Gauge", "Histogram", "Summary", "GaugeMetricFamily", "CounterMetricFamily"}
COUNTERS = {"Counter", "CounterMetricFamily"}
BOUNDED_LABELS = {"district", "department", "kind", "rule", "tier", "stage", "outcome", "reason"}
BOUNDED_LABELS |= {"group", "topic", "partition"}  # consumer lag: fixed by the deployment


def _defined() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Exposed name -> (class, labels) of every `sgs_` metric the code defines (read with `ast`, not imported)."""
    found: dict[str, tuple[str, tuple[str, ...]]] = {}
    for package in ("sgs", "services", "simulators"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                cls = getattr(node.func, "id", getattr(node.func, "attr", None))
                first = node.args[0]
                if cls not in METRIC_CLASSES or not isinstance(first, ast.Constant):
                    continue
                if not str(first.value).startswith("sgs_"):
                    continue
                name = str(first.value)
                if cls in COUNTERS and not name.endswith("_total"):
                    name += "_total"  # prometheus-client adds the suffix when it exposes a counter
                labels_node = node.args[2] if len(node.args) > 2 else None
                for keyword in node.keywords:
                    if keyword.arg in ("labelnames", "labels"):
                        labels_node = keyword.value
                labels: tuple[str, ...] = ()
                if isinstance(labels_node, (ast.List, ast.Tuple)):
                    labels = tuple(str(e.value) for e in labels_node.elts if isinstance(e, ast.Constant))
                found[name] = (cls, labels)
    return found


def _documented() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Name -> (type, labels) from the tables of docs/metrics.md."""
    rows = re.findall(
        r"^\| `(sgs_[a-z0-9_]+)` \| (counter|gauge|histogram) \|\s*([a-z, ]*?)\s*\|", DOC, re.MULTILINE
    )
    return {
        name: (kind, tuple(x.strip() for x in labels.split(",") if x.strip())) for name, kind, labels in rows
    }


def _read_by_dashboards_and_rules() -> set[str]:
    exprs = [
        target["expr"]
        for path in (ROOT / "deploy" / "grafana" / "dashboards").glob("*.json")
        for panel in json.loads(path.read_text())["panels"]
        for target in panel.get("targets", [])
    ]
    for path in (ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"):
        exprs += [
            rule["expr"] for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]
        ]
    names = {n for expr in exprs for n in re.findall(r"(?<![:\w])(sgs_[a-z0-9_]+)", expr)}
    return {re.sub(r"_(bucket|sum|count)$", "", n) for n in names}


def test_every_metric_the_code_defines_is_documented_with_its_labels() -> None:
    documented = _documented()
    for name, (_, labels) in _defined().items():
        assert name in documented, f"{name} is defined in the code but missing from docs/metrics.md"
        assert set(documented[name][1]) == set(labels), f"{name}: labels {labels} in the code"


def test_every_documented_metric_still_exists_in_the_code() -> None:
    assert set(_documented()) - set(_defined()) == set()


def test_dashboards_and_rules_read_only_documented_metrics() -> None:
    read = _read_by_dashboards_and_rules()
    assert read, "no metric found in the dashboards and rules"
    assert read - set(_documented()) == set()


def test_metric_names_follow_the_conventions() -> None:
    for name, (cls, labels) in _defined().items():
        assert name.startswith("sgs_")
        assert (cls in COUNTERS) == name.endswith("_total"), f"{name}: only counters end in _total"
        if cls == "Histogram":
            assert name.endswith(("_seconds", "_working_days")), f"{name}: histograms are in base units"
        assert set(labels) <= BOUNDED_LABELS, f"{name}: unbounded label {set(labels) - BOUNDED_LABELS}"
