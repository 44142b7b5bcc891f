"""`sgs --help` lists every subcommand and each prints its own `--help` (issue 2)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sgs.cli import subcommands


def _subcommands() -> list[str]:
    return sorted(subcommands())


def test_top_level_help_lists_every_subcommand():
    result = subprocess.run(
        [sys.executable, "-m", "sgs", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    for name in _subcommands():
        assert name in result.stdout
    assert {"up", "broker"} <= set(_subcommands())


@pytest.mark.parametrize("name", _subcommands())
def test_each_subcommand_has_its_own_help(name):
    result = subprocess.run(
        [sys.executable, "-m", "sgs", name, "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert f"sgs {name}" in result.stdout
