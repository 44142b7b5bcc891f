"""Stage 2, dedup and ordering (D4): only the newest version of a record goes on.

The record's state (`records` table, "seen") holds the highest version seen, the hash of its bytes and the offset it came from. A
lower version arriving late is absorbed (an older version never overwrites a newer one); the same version again
is a duplicate and absorbed too, unless it is the very message seen before (same offset): that is at-least-once
redelivery after a crash, and it goes on, because what it sent the first time may not have reached the broker.
"""

from __future__ import annotations

from typing import Any

import faust

from services.worker import metrics
from services.worker.context import Context, log, reason
from sgs.domain.kinds import content_hash


async def admit(ctx: Context, event: faust.EventT, record: dict[str, Any]) -> bool:
    """True when this version goes on; False when it was absorbed or rejected."""
    raw: bytes = event.value
    env = record["envelope"]
    record_id, version, kind = env["record_id"], env["version"], env["kind"].lower()
    digest, offset = content_hash(raw), event.message.offset
    state = ctx.state(record_id)
    seen = state.get("seen")
    district = ctx.labels(kind, env).district
    if seen is not None and (version, offset) != (seen["version"], seen["offset"]):
        if version < seen["version"]:
            metrics.labelled(metrics.RECORDS, "dedup", "superseded", kind, district).inc()
            log.info("record.superseded", record_id=record_id, version=version, newest=seen["version"])
            return False
        if version == seen["version"]:
            if digest == seen["hash"]:
                metrics.labelled(metrics.RECORDS, "dedup", "duplicate", kind, district).inc()
                return False
            await ctx.reject(
                "dedup",
                kind,
                event.key,
                raw,
                [reason("-", "version_conflict", "同一版本号的记录内容不同：更新记录须提高版本号", version)],
                env,
            )
            return False
    state["seen"] = {"version": version, "hash": digest, "offset": offset}
    metrics.labelled(metrics.RECORDS, "dedup", "passed", kind, district).inc()
    return True
