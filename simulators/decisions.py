"""Decisions on records (objections D15, credit repair D16) as departments post them: `POST /v1/decisions` once the
municipal platform has accepted the record, then the decision's receipt followed to its final status.

The district node answers 409 `not_accepted` until the record's ACCEPTED receipt is back (a decision must not
overtake its record, docs/worker.md): the lane tries again with a growing pause, and gives up `wait_s` after it was
handed the item. A decision that never got in, or whose receipt never became final (ACCEPTED or REJECTED), is
recorded with the reason (`Observed.error`): the accounting counts it as lost.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx

from simulators.generator import APPLIED, Submission

FINAL = ("ACCEPTED", "REJECTED")


@dataclass
class Observed:
    """What became of one decision."""

    receipt_id: str | None = None  # once the node took it
    status: str | None = None  # the receipt's final status: ACCEPTED or REJECTED
    rules: tuple[str, ...] = ()  # a REJECTED receipt's rule ids
    error: str | None = None  # why it never got in, or never became final


def observed_outcome(seen: Observed | None) -> str | None:
    """APPLIED, the rule a refused decision was rejected with, or None when it never became final."""
    if seen is None or seen.status is None:
        return None
    return APPLIED if seen.status == "ACCEPTED" else (seen.rules[0] if seen.rules else "rejected")


@dataclass
class _Pending:
    item: Submission
    deadline: float
    due: float
    pause: float
    posted: int = 0  # decisions of the item the node took so far (they go in order)


@dataclass
class DecisionLane:
    """One thread posting the decisions of the items it is handed (`add`, once the record was taken by the node)
    and following their receipts; `outcomes[decision.key]` says what became of each. After `close` (nothing more
    to hand over) the thread ends once every item is done; `stop` ends it at once."""

    target: str
    stop: threading.Event
    wait_s: float = 300.0
    first_pause_s: float = 1.0
    max_pause_s: float = 8.0
    outcomes: dict[tuple[str, str], Observed] = field(default_factory=dict)
    _pending: list[_Pending] = field(default_factory=list)
    _handed: int = 0
    _finished: int = 0
    _closed: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, item: Submission) -> None:
        now = time.monotonic()
        with self._lock:
            self._handed += 1
            self._pending.append(
                _Pending(item, now + self.wait_s, now + self.first_pause_s, self.first_pause_s)
            )

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def idle(self) -> bool:
        """Every item handed over is finished: each decision final, or given up."""
        with self._lock:
            return self._finished == self._handed

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name="decisions", daemon=True)
        thread.start()
        return thread

    def _run(self) -> None:
        with httpx.Client(base_url=self.target, timeout=30.0) as client:
            while not self.stop.wait(0.2) and not (self._closed and self.idle()):
                now = time.monotonic()
                with self._lock:
                    due = [p for p in self._pending if p.due <= now]
                for p in due:
                    if self._step(client, p):
                        with self._lock:
                            self._pending.remove(p)
                            self._finished += 1
        with self._lock:  # stopped: whatever is not final will not be
            for p in self._pending:
                self._give_up(p, "the run stopped first")

    def _step(self, client: httpx.Client, p: _Pending) -> bool:
        """Post what is left of the item's decisions, then read their receipts; True when the item is done."""
        headers = {"Authorization": f"Bearer {p.item.department.dev_token}"}
        decisions = p.item.decisions
        try:
            while p.posted < len(decisions):
                decision = decisions[p.posted]
                reply = client.post("/v1/decisions", json=decision.http_body(), headers=headers)
                if reply.status_code == 409:  # not accepted by the municipal platform yet
                    return self._later(p, "the node answered 409 not_accepted until then")
                if reply.status_code != 202:
                    self._give_up(p, f"HTTP {reply.status_code}: {reply.text[:200]}")
                    return True
                self.outcomes[decision.key] = Observed(receipt_id=reply.json()["receipt_id"])
                p.posted += 1
            for decision in decisions:
                seen = self.outcomes[decision.key]
                if seen.status is None:
                    answer = client.get(f"/v1/receipts/{seen.receipt_id}", headers=headers).json()
                    if answer.get("status") in FINAL:
                        seen.status = answer["status"]
                        seen.rules = tuple(str(r.get("rule")) for r in answer.get("reasons") or ())
        except (httpx.HTTPError, ValueError, KeyError) as exc:  # the node may be paused or restarting
            return self._later(p, f"{type(exc).__name__}: {exc}")
        if all(self.outcomes[d.key].status is not None for d in decisions):
            return True
        return self._later(p, "its receipt was not final by then")

    def _later(self, p: _Pending, why: str) -> bool:
        now = time.monotonic()
        if now >= p.deadline:
            self._give_up(p, f"gave up after {self.wait_s:.0f} s: {why}")
            return True
        p.pause = min(self.max_pause_s, p.pause * 2)
        p.due = now + p.pause
        return False

    def _give_up(self, p: _Pending, why: str) -> None:
        for decision in p.item.decisions:
            seen = self.outcomes.setdefault(decision.key, Observed())
            if seen.status is None:
                seen.error = why
