"""Waiting for behaviour in tests: a timeout means the behaviour never happened, not that it was slow."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_until(condition: Callable[[], Any], timeout_s: float = 60, what: str = "condition") -> Any:
    """Poll until `condition()` is truthy and return its value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout_s:.0f}s")
