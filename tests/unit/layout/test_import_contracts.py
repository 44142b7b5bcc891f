"""The layout's import rules (../shared/LAYOUT.md), as import-linter contracts in pyproject.toml: they hold for the
code, and they do catch a break (a domain module importing Kafka)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_the_code_keeps_every_import_contract() -> None:
    result = _lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_domain_module_importing_kafka_breaks_the_purity_contract(tmp_path: Path) -> None:
    for package in ("sgs", "services", "simulators"):
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    kinds = tmp_path / "sgs" / "domain" / "kinds.py"
    kinds.write_text(kinds.read_text(encoding="utf-8") + "\nimport kafka  # noqa\n", encoding="utf-8")
    result = _lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "sgs.domain is pure" in result.stdout and "BROKEN" in result.stdout
    assert "sgs.domain.kinds -> kafka" in result.stdout
