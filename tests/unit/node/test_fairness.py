"""Per-department fair shares (issue 17): a department over its rate or its concurrent uploads waits, and is told how
long; another department is never refused for it."""

from __future__ import annotations

from services.node.fairness import DepartmentLimits, FairShare


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_taken_then_the_rate_and_the_wait_is_told() -> None:
    clock = Clock()
    limits = DepartmentLimits(FairShare(rate=2.0, burst=3, uploads=1), clock)
    assert [limits.admit("loud") for _ in range(3)] == [None, None, None]
    assert limits.admit("loud") == 1  # half a second to the next token, rounded up for Retry-After
    assert limits.admit("quiet") is None  # its own bucket
    clock.now += 0.5
    assert limits.admit("loud") is None
    assert limits.admit("loud") == 1
    clock.now += 60
    assert [limits.admit("loud") for _ in range(4)] == [None, None, None, 1]  # the burst again, never more


def test_uploads_are_counted_per_department_and_given_back() -> None:
    limits = DepartmentLimits(FairShare(rate=100, burst=100, uploads=2))
    assert limits.start_upload("a") and limits.start_upload("a")
    assert not limits.start_upload("a")
    assert limits.start_upload("b")
    limits.end_upload("a")
    assert limits.start_upload("a")
