"""Holding a message that arrived before what it needs (a stream-table race), and retrying it later without blocking
its partition: a record whose subject is not in the reference bases yet (D13, `stages/reconcile.py`), and a
decision on a record not in `records` yet (`stages/decide.py`: after a crash, the decision can be read before the
record it follows is read again).

A held message goes to a worker-only topic (`<app>-held`, `<app>-held-decisions`, keyed by record id) with the time
it was first held and the time it is due; that topic's agent sleeps until then and takes it through its stages
again. Once the hold has lasted its setting, the stage concludes without it (UNKNOWN_CODE, `unknown_record`).
"""

from __future__ import annotations

import asyncio
import time

import faust

from services.worker.context import Context

HELD_SINCE = "sgs-held-since"  # ms since the epoch when the message was first held
RETRY_AT = "sgs-retry-at"  # ms since the epoch when the held message is checked again


def retry_interval_s(hold_s: float) -> float:
    """How often a held message is checked again: often enough to notice what it waits for soon after it arrives,
    rarely enough that a burst of held messages does not flood the held topic."""
    return min(5.0, max(0.5, hold_s / 6))


async def hold(
    ctx: Context,
    topic: str,
    key: bytes | None,
    raw: bytes,
    hold_s: float,
    since: int | None,
    headers: dict[str, bytes] | None = None,
) -> bool:
    """Send the message to `topic` to be retried, unless it has been held `hold_s` already (False: conclude now).
    `since` is when it was first held (None: not yet)."""
    now_ms = int(time.time() * 1000)
    since = since or now_ms
    if now_ms - since >= hold_s * 1000:
        return False
    retry_at = now_ms + int(retry_interval_s(hold_s) * 1000)
    stamps = {HELD_SINCE: str(since).encode(), RETRY_AT: str(retry_at).encode()}
    await ctx.emit(topic, key, raw, headers={**(headers or {}), **stamps})
    return True


def header(event: faust.EventT, name: str) -> str | None:
    value = (event.headers or {}).get(name)
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


async def wait_for_retry(event: faust.EventT) -> None:
    """Sleep until the held message's retry time (one that cannot be read is now). Held messages are in the order
    they were held, each waiting one retry interval, so sleeping on the head of a partition delays none past its
    time. The agent sleeps before it takes the message through its stages: a commit under transactions waits for
    the messages under way (`exactly_once.CommitGate`), and must not wait out a retry interval too."""
    try:
        delay = int(header(event, RETRY_AT) or 0) / 1000 - time.time()
    except ValueError:
        delay = 0
    if delay > 0:
        await asyncio.sleep(delay)


def held_since(event: faust.EventT) -> int:
    """When the held message was first held (epoch ms)."""
    return int(header(event, HELD_SINCE) or time.time() * 1000)
