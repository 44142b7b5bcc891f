"""Stage 2, dedup and ordering (D4): <app>-validated -> <app>-current.

A table keyed by record id holds the highest version seen, the hash of its bytes and the offset it came from. A
lower version arriving late is absorbed (an older version never overwrites a newer one); the same version again
is a duplicate and absorbed too, unless it is the very message seen before (same offset): that is at-least-once
redelivery after a crash, and it goes on, because what it sent the first time may not have reached the broker.
"""

from __future__ import annotations

import faust

from services.worker import metrics
from services.worker.pipeline import Pipeline, content_hash, guarded, log, reason


def register(pipe: Pipeline) -> None:
    @pipe.app.agent(pipe.validated, name="dedup")
    async def order_versions(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await guarded(pipe, "dedup", event, "unknown", lambda e: _dedup(pipe, e))


async def _dedup(pipe: Pipeline, event: faust.EventT) -> None:
    raw: bytes = event.value
    _, record = pipe.codec.decode(raw)
    env = record["envelope"]
    record_id, version, kind = env["record_id"], env["version"], env["kind"].lower()
    digest, offset = content_hash(raw), event.message.offset
    seen = pipe.versions.get(record_id)
    district = pipe.labels(kind, env).district
    if seen is not None and (version, offset) != (seen["version"], seen["offset"]):
        if version < seen["version"]:
            metrics.RECORDS.labels("dedup", "superseded", kind, district).inc()
            log.info("record.superseded", record_id=record_id, version=version, newest=seen["version"])
            return
        if version == seen["version"]:
            if digest == seen["hash"]:
                metrics.RECORDS.labels("dedup", "duplicate", kind, district).inc()
                return
            await pipe.reject(
                "dedup",
                kind,
                event.key,
                raw,
                [reason("-", "version_conflict", "同一版本号的记录内容不同：更新记录须提高版本号", version)],
                env,
            )
            return
    pipe.versions[record_id] = {"version": version, "hash": digest, "offset": offset}
    metrics.RECORDS.labels("dedup", "passed", kind, district).inc()
    await pipe.current.send(key=event.key, value=raw)
