"""One way to start a service (issue 12): `python -m services.X` and `sgs X` take one path, so a bad config stops
each the same way: exit 2 and one line naming the file and the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import REPO

SGS = Path(sys.executable).parent / "sgs"
SERVICES = {
    "node": ["--district", "all"],
    "worker": [],
    "sink": ["--tier", "provincial"],
    "lag-exporter": [],
}


@pytest.fixture(scope="module")
def bad_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped config with its `[federation]` section broken."""
    text = (REPO / "federation.toml").read_text(encoding="utf-8")
    path = tmp_path_factory.mktemp("config") / "broken.toml"
    path.write_text(text.replace("partitions = 4", 'partitions = "four"', 1), encoding="utf-8")
    return path


def _module(service: str) -> str:
    return "services." + service.replace("-", "_")


def _stopped_with_one_line(argv: list[str], bad_config: Path, cwd: Path) -> None:
    """Exit 2 and one line on stderr naming the file and the broken key."""
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=cwd)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(bad_config) in lines[0] and "federation.partitions" in lines[0], lines[0]


@pytest.mark.parametrize("service", sorted(SERVICES))
@pytest.mark.parametrize("way", ["python -m services.X", "sgs X"])
def test_a_bad_config_stops_every_service_with_one_line_and_exit_2(service, way, bad_config, tmp_path):
    start = [sys.executable, "-m", _module(service)] if way.startswith("python") else [str(SGS), service]
    argv = [*start, "--config", str(bad_config), "--data-dir", str(tmp_path), *SERVICES[service]]
    _stopped_with_one_line(argv, bad_config, tmp_path)


@pytest.mark.parametrize(
    "command",
    [
        ["up"],
        ["broker"],
        ["simulate"],
        ["bench"],
        ["report", "--month", "2026-10"],
        ["calendar", "deadline", "2026-10-01"],
        ["refbase", "load", "persons", "persons.csv"],
        ["refbase", "publish"],
    ],
    ids=" ".join,
)
def test_a_bad_config_stops_every_command_that_reads_it_before_anything_starts(command, bad_config, tmp_path):
    argv = [str(SGS), *command, "--config", str(bad_config)]  # cwd: the default --data-dir var/ is the test's
    _stopped_with_one_line(argv, bad_config, tmp_path)
