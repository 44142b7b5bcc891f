"""Fair shares of one node process between departments (issue 17): one process serves every district, so one
department flooding it must not starve the others. Each department has a request rate (a token bucket: `rate` a
second, bursts of `burst`) and at most `uploads` template files in progress at once; beyond either, 429 with
Retry-After. Counted per department, never per process, so a quiet department is never refused for a loud one."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class FairShare:
    rate: float = 50.0  # requests a second, per department
    burst: int = 100  # requests at once after a quiet spell
    uploads: int = 2  # template files in progress at once


class DepartmentLimits:
    """Thread-safe: the HTTP handlers ask from the event loop and from worker threads."""

    def __init__(self, share: FairShare, clock: Callable[[], float] = time.monotonic) -> None:
        self.share = share
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # department -> (tokens, when counted)
        self._uploads: dict[str, int] = {}

    def admit(self, department: str) -> int | None:
        """None when the department may make this request now; else the seconds to wait (Retry-After)."""
        rate, burst = self.share.rate, self.share.burst
        with self._lock:
            now = self._clock()
            tokens, then = self._buckets.get(department, (float(burst), now))
            tokens = min(float(burst), tokens + (now - then) * rate)
            if tokens >= 1:
                self._buckets[department] = (tokens - 1, now)
                return None
            self._buckets[department] = (tokens, now)
            return max(1, math.ceil((1 - tokens) / rate))

    def start_upload(self, department: str) -> bool:
        """Whether another upload of this department may start; if so, `end_upload` must follow."""
        with self._lock:
            running = self._uploads.get(department, 0)
            if running >= self.share.uploads:
                return False
            self._uploads[department] = running + 1
            return True

    def end_upload(self, department: str) -> None:
        with self._lock:
            self._uploads[department] -= 1
