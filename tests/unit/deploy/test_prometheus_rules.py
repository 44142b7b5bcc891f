"""The Prometheus configs and rules in deploy/prometheus, checked by the real `promtool`.

promtool ships in Debian's `prometheus` package (`apt-get install prometheus`); without it these tests skip."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tests.support.paths import REPO

PROMETHEUS = REPO / "deploy" / "prometheus"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian: apt-get install prometheus)"
)


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120)


@needs_promtool
def test_alert_rules_pass_their_promtool_unit_tests() -> None:
    result = _promtool("test", "rules", str(PROMETHEUS / "tests" / "sgs-alerts.test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus-local.yml"])
def test_prometheus_config_and_its_rule_files_pass_promtool_check(config: str) -> None:
    result = _promtool("check", "config", str(PROMETHEUS / config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 rule files found" in result.stdout  # the rule_files glob reaches deploy/prometheus/rules


def test_every_alert_has_a_unit_test_that_expects_it_to_fire() -> None:
    alerts = {
        rule["alert"]
        for path in (PROMETHEUS / "rules").glob("*.yml")
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    suite = yaml.safe_load((PROMETHEUS / "tests" / "sgs-alerts.test.yml").read_text())
    fired = {
        case["alertname"]
        for test in suite["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts - fired == set()
    assert {
        "SgsLateSubmissionRateHigh",
        "SgsRejectedShareHigh",
        "SgsRelayStalled",
        "SgsConsumerLagGrowing",
        "SgsOutboxStuck",
        "SgsNodeDown",
    } <= alerts
