"""The federation config: the default file loads, and every mistake names the file and the key (issue 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sgs.config import DEFAULT_CONFIG, ConfigError, load_config


def test_default_config_describes_shanghai_tree(federation):
    assert federation.municipal.code == "310000"
    assert len(federation.districts) == 16
    assert {d.code for d in federation.districts} >= {"310101", "310115", "310151"}
    assert federation.timeliness.publish_working_days == 7  # D5
    assert federation.timeliness.report_working_days == 2  # D6
    assert set(federation.sinks) == {"provincial", "national"}


def test_every_department_uscc_has_a_valid_check_character(federation):
    from stdnum.cn import uscc

    for node in federation.nodes:
        for dept in node.departments:
            assert uscc.is_valid(dept.uscc), dept.id


def _write_variant(tmp_path: Path, old: str, new: str) -> Path:
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "federation.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('code = "310115"', 'code = "31011"', "districts[10].code"),
        ("partitions = 4", 'partitions = "four"', "federation.partitions"),
        (  # a token in plain text is refused: the config keeps only hashes (issue 16)
            'uscc = "113101010010100169" }',
            'uscc = "113101010010100169", token = "dev-310101-scjg" }',
            "districts[0].departments[0].token",
        ),
        (
            'uscc = "113101010010100169" }',
            'uscc = "113101010010100169", token_hash = "md5$abc" }',
            "districts[0].departments[0].token_hash",
        ),
        ("[sinks.national]", "[sinks.nation]", "sinks.national"),
        ('uscc = "113101010010100169"', 'uscc = "11310101001010016"', "districts[0].departments[0].uscc"),
    ],
)
def test_bad_config_names_the_key(tmp_path, old, new, key):
    path = _write_variant(tmp_path, old, new)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert key in str(err.value) and str(path) in str(err.value)


def test_bad_config_exits_2_with_one_clear_line_and_no_traceback(tmp_path):
    path = _write_variant(tmp_path, "partitions = 4", "partitions = 0")
    result = subprocess.run(
        [sys.executable, "-m", "sgs", "broker", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "federation.partitions" in result.stderr and str(path) in result.stderr
    assert "Traceback" not in result.stderr


def test_unreadable_config_exits_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "sgs", "up", "--config", str(tmp_path / "missing.toml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "missing.toml" in result.stderr and "Traceback" not in result.stderr
