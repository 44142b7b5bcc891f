"""Signing in the tests (issue 16): the session's throwaway keys (made by `tests/conftest.py`, found through
`SGS_KEY_DIR`), so a test can write a message as a node, the worker or a sink would, or forge one."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from sgs.serialization.signing import Signer, key_path


@cache
def signer(name: str) -> Signer:
    """`node.<code>`, `worker`, `sink.<tier>`: that signer's key, as the session made it."""
    return Signer.from_file(name, key_path(Path(os.environ["SGS_KEY_DIR"]), name))


def headers(name: str, topic: str, key: bytes | None, value: bytes) -> list[tuple[str, bytes]]:
    """The headers `name` sends `value` with on `topic` under `key`."""
    return signer(name).headers(topic, key, value)
