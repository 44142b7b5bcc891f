"""Fault schedules for `sgs chaos` (a compose deployment) and `sgs bench --fault` (the bench's own processes).

A schedule is a list of faults, each `ROLE:KIND@OFFSET[+DURATION]`: at OFFSET seconds after the run starts, do
KIND to one process (or container) of ROLE, and undo it DURATION seconds later:

    restart     kill it (SIGKILL / `docker kill`), start it again
    stop        stop it gracefully (SIGTERM / `docker stop`), start it again
    pause       freeze it (SIGSTOP / `docker pause`), let it go on (SIGCONT / `docker unpause`)
    disconnect  take it off the compose network, put it back (compose only)

Roles: broker, cluster (every broker at once; the local target on Apache Kafka), worker, node, sink. Which process
of a role (e.g. which of three brokers) is chosen by the seeded
random generator. Faults run one after another on one thread: a fault never starts before the previous one is
undone (a late start is logged as `late_s`), so a process is never paused while it is down. Whatever is interrupted
(SIGINT/SIGTERM sets `stop`) is undone before the runner returns: nothing is left paused or stopped.

This module is the model and the runner; the two targets are `sgs.ops.chaos.local` and `sgs.ops.chaos.compose`.
"""

from __future__ import annotations

import argparse
import contextvars
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

ROLES = ("broker", "cluster", "worker", "node", "sink")
FAULT_KINDS = ("restart", "stop", "pause", "disconnect")
DEFAULT_DURATION_S = 5.0
RANDOM_DURATION_S = (2.0, 10.0)  # a random fault lasts this long, uniformly

_SPEC = re.compile(
    r"^(?P<role>[a-z]+):(?P<kind>[a-z]+)@(?P<at>[0-9.]+[sm]?)(?:\+(?P<duration>[0-9.]+[sm]?))?$"
)
_SECONDS = re.compile(r"^(?P<n>[0-9]+(?:\.[0-9]+)?)(?P<unit>[sm]?)$")


class ScheduleError(ValueError):
    """A fault spec that cannot be parsed or that the target cannot apply; the message says which and why."""


@dataclass(frozen=True, order=True)
class Fault:
    at_s: float
    role: str
    kind: str
    duration_s: float = DEFAULT_DURATION_S

    @property
    def spec(self) -> str:
        return f"{self.role}:{self.kind}@{_fmt(self.at_s)}+{_fmt(self.duration_s)}"


def _fmt(seconds: float) -> str:
    return f"{seconds:g}s"


def seconds(text: str) -> float:
    """`20`, `20s`, `1.5s`, `2m` -> seconds."""
    match = _SECONDS.match(text)
    if not match:
        raise ScheduleError(f"{text!r} is not a time (e.g. 20s, 1.5s, 2m)")
    return float(match["n"]) * (60 if match["unit"] == "m" else 1)


def parse_fault(text: str) -> Fault:
    match = _SPEC.match(text.strip())
    if not match:
        raise ScheduleError(f"{text!r} is not a fault: ROLE:KIND@OFFSET[+DURATION], e.g. worker:restart@20s")
    if match["role"] not in ROLES:
        raise ScheduleError(f"{text!r}: role must be one of {', '.join(ROLES)}")
    if match["kind"] not in FAULT_KINDS:
        raise ScheduleError(f"{text!r}: kind must be one of {', '.join(FAULT_KINDS)}")
    duration = seconds(match["duration"]) if match["duration"] else DEFAULT_DURATION_S
    return Fault(seconds(match["at"]), match["role"], match["kind"], duration)


def random_schedule(
    seed: int, count: int, window_s: float, allowed: Iterable[tuple[str, str]]
) -> list[Fault]:
    """`count` faults of the allowed (role, kind) pairs at random offsets within the first 80% of `window_s`."""
    rng = random.Random(seed)
    choices = sorted(allowed)
    faults = [
        Fault(
            round(rng.uniform(0.1, 0.8) * window_s, 1),
            *rng.choice(choices),
            round(rng.uniform(*RANDOM_DURATION_S), 1),
        )
        for _ in range(count)
    ]
    return sorted(faults)


def check_supported(faults: list[Fault], refused: Callable[[str, str], str | None], target: str) -> None:
    """Raise `ScheduleError` naming the first fault `target` cannot apply, with `refused(role, kind)`'s reason."""
    for fault in faults:
        reason = refused(fault.role, fault.kind)
        if reason:
            raise ScheduleError(f"{fault.spec}: not possible on the {target} target: {reason}")


def add_fault_options(p: argparse.ArgumentParser, *, window_flag: str, window_default: float) -> None:
    """`--fault SPEC` (repeatable) and `--faults K` over `window_flag` seconds; `SGS_FAULT` may list specs."""
    from sgs.cli.options import add_option

    p.add_argument(
        "--fault",
        action="append",
        default=None,
        metavar="ROLE:KIND@OFFSET[+DURATION]",
        help="a fault, e.g. worker:restart@20s, node:pause@40s+10s (repeatable; roles broker, cluster, worker, node, sink; "
        "kinds restart, stop, pause, disconnect) [env SGS_FAULT, space- or comma-separated]",
    )
    add_option(p, "--faults", type=int, default=0, help="also this many random faults, from --seed")
    add_option(
        p, window_flag, type=float, default=window_default, help="seconds the random faults are spread over"
    )


def schedule_from_args(
    specs: list[str] | None, seed: int, count: int, window_s: float, allowed: Iterable[tuple[str, str]]
) -> list[Fault]:
    """The `--fault` specs (else those of SGS_FAULT) and `count` random faults, in time order."""
    if specs is None:
        specs = os.environ.get("SGS_FAULT", "").replace(",", " ").split()
    faults = [parse_fault(spec) for spec in specs]
    if count < 0 or window_s <= 0:
        raise ScheduleError("--faults must be 0 or more and the window positive")
    return sorted(faults + random_schedule(seed, count, window_s, allowed))


def describe(faults: list[Fault]) -> str:
    """The schedule as printed before a run."""
    if not faults:
        return "no faults"
    return "\n".join(f"  {i + 1:>2}. {f.spec}" for i, f in enumerate(faults))


class Target(Protocol):
    """Where faults happen: the bench's processes or a compose project's containers."""

    def victims(self, role: str) -> list[str]:
        """The names of the processes or containers of `role` that a fault may hit."""

    def apply(self, fault: Fault, victim: str) -> dict[str, Any]:
        """Do the fault; returns what to log (pid, container id ...)."""

    def restore(self, fault: Fault, victim: str) -> dict[str, Any]:
        """Undo it: start again, continue, reconnect; returns what to log."""


@dataclass
class Runner:
    """Applies a schedule to a target on its own thread, offsets counted from `start()`."""

    faults: list[Fault]
    target: Target
    seed: int
    log: structlog.stdlib.BoundLogger
    stop: threading.Event = field(default_factory=threading.Event)
    applied: list[dict[str, Any]] = field(default_factory=list)
    on_change: Callable[[], None] | None = None  # called after each fault is undone (progress bars)
    _done: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Runner:
        context = contextvars.copy_context()  # the logs' bound fields (service=...) follow the thread
        self._thread = threading.Thread(target=context.run, args=(self._run,), name="chaos", daemon=True)
        self._thread.start()
        return self

    def done(self) -> bool:
        """Every fault was applied and undone (or the runner was stopped and undid what it had started)."""
        return self._done.is_set() or not self.faults

    def finish(self, timeout_s: float = 120.0) -> None:
        """Stop: skip the faults not yet started, undo the current one, wait for that."""
        self.stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def errors(self) -> list[str]:
        return [
            f"fault {a['fault']} on {a.get('victim', '-')}: {a['error']}"
            for a in self.applied
            if "error" in a
        ]

    def _run(self) -> None:
        rng = random.Random(self.seed)
        t0 = time.monotonic()
        try:
            for fault in self.faults:
                if self.stop.wait(max(0.0, t0 + fault.at_s - time.monotonic())):
                    break
                self.applied.append(self._one(fault, rng, time.monotonic() - t0))
                if self.on_change:
                    self.on_change()
        finally:
            skipped = len(self.faults) - len(self.applied)
            if skipped:
                self.log.info("chaos.skipped", faults=skipped, reason="stopped")
            self._done.set()

    def _one(self, fault: Fault, rng: random.Random, offset: float) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "fault": fault.spec,
            "started_s": round(offset, 1),
            "late_s": round(max(0.0, offset - fault.at_s), 1),
        }
        victims = self.target.victims(fault.role)
        if not victims:
            entry["error"] = f"no {fault.role} to hit"
            self.log.error("chaos.no_victim", **entry)
            return entry
        entry["victim"] = victim = rng.choice(sorted(victims))
        started = time.monotonic()
        try:
            entry |= self.target.apply(fault, victim)
        except Exception as exc:  # noqa: BLE001 - a fault that cannot be applied is reported, the run goes on
            entry["error"] = f"apply: {type(exc).__name__}: {exc}"
            self.log.error("chaos.apply_failed", **entry)
            return entry
        self.log.warning("chaos.fault", **entry)
        self.stop.wait(fault.duration_s)  # cut short on stop: undo at once
        try:
            entry |= self.target.restore(fault, victim)
        except Exception as exc:  # noqa: BLE001 - said loudly: something may have stayed down
            entry["error"] = f"restore: {type(exc).__name__}: {exc}"
            self.log.error("chaos.restore_failed", **entry)
            return entry
        entry["restored_s"] = round(offset + time.monotonic() - started, 1)
        self.log.warning("chaos.restored", **entry)
        return entry
