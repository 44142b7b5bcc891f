"""Department tokens as secrets (issue 16): `sgs tokens new` and the node's token checker."""

from __future__ import annotations

from pathlib import Path

import pytest

from sgs.cli import main
from sgs.config import Federation, load_config
from sgs.tokens import TokenChecker, matches


def test_a_new_token_replaces_the_old_hash_and_the_old_token_stops_working(
    federation: Federation, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    config = tmp_path / "federation.toml"
    config.write_text(federation.path.read_text(encoding="utf-8"), encoding="utf-8")  # rules.book absolute
    tokens = []
    for _ in range(2):
        assert main(["tokens", "new", "310104-sthj", "--config", str(config)]) == 0
        tokens.append(capsys.readouterr().out.strip().splitlines()[-1])
    text = config.read_text(encoding="utf-8")
    assert text.count('token_hash = "') == 1 and not any(t in text for t in tokens)
    (dept,) = [d for n in load_config(config).nodes for d in n.departments if d.token_hash]
    assert dept.id == "310104-sthj" and dept.token_hash is not None
    assert matches(tokens[1], dept.token_hash) and not matches(tokens[0], dept.token_hash)


def test_development_tokens_only_with_dev_and_unknown_tokens_never(federation: Federation) -> None:
    hashes = federation.token_hashes()
    assert TokenChecker(hashes, dev=False).department("dev-310101-scjg") is None
    assert TokenChecker(hashes, dev=True).department("dev-310101-scjg") == "310101-scjg"
    for token in ("dev-999999-x", "310101-scjg.guess", "nobody", ""):
        assert TokenChecker(hashes, dev=True).department(token) is None
