"""Stage 1, validate (D12): a submitted record is decoded and checked again, or rejected to sgs.rejected with a
receipt.

The district node validated already, but a node may be old or foreign: the shared validator runs again here,
and so does the node's check that the record's authority and source unit are its department's own (D10). First
of all, the record must be signed by the node of its department's district (issue 16). Bytes that cannot even be
decoded are a rejection too (stage `decode`), never an agent crash.
"""

from __future__ import annotations

from typing import Any

import faust

from services.worker import metrics
from services.worker.context import Context, reason
from sgs.domain.kinds import SCHEMA_NAME
from sgs.domain.validation import authority_issues, validate
from sgs.domain.workdays import china_date
from sgs.serialization.codec import SerializationError


async def admit(ctx: Context, event: faust.EventT, kind: str) -> dict[str, Any] | None:
    """The decoded record when it is valid; None when it was rejected."""
    raw = event.value if isinstance(event.value, bytes) else b""
    signer = await ctx.signed(event, kind, ctx.node_signers)
    if signer is None:
        return None
    try:
        schema, record = ctx.codec.decode(raw)
    except SerializationError as exc:
        await ctx.reject("decode", kind, event.key, raw, [reason("-", "decode", f"无法解析的消息：{exc}")])
        return None
    envelope = record.get("envelope") if isinstance(record, dict) else None
    if schema != SCHEMA_NAME.get(kind) or not isinstance(envelope, dict):
        await ctx.reject(
            "decode",
            kind,
            event.key,
            raw,
            [reason("-", "schema", f"{kind} 主题不接受 {schema} 记录", schema)],
        )
        return None
    if signer != ctx.node_signer_of(envelope):
        # A node speaks only for its own district's departments (D10, issue 16).
        await ctx.refuse(
            event, kind, "signature.wrong_signer", f"{signer} 不是部门 {envelope['department']} 的节点"
        )
        return None
    labels = ctx.labels(kind, envelope)
    ctx.count(envelope, labels, "submitted")
    # Judged as of the day the district node accepted it, as the node did: re-running the check weeks later
    # (a replay, a backlog) must not turn a good record bad, nor may a clock decide the outcome.
    today = china_date(envelope["submitted_at"])
    reasons = [
        issue.as_reason()
        for issue in validate(kind, record, today=today, rules=ctx.settings.federation.rules)
    ]
    dept = ctx.department(envelope["department"])
    reasons += [issue.as_reason() for issue in authority_issues(record, dept.name, dept.uscc)]
    key = event.key.decode("utf-8", "replace") if isinstance(event.key, bytes) else None
    if key != envelope["record_id"]:
        # The key decides the partition: a record under a foreign key would escape dedup and ordering (D4).
        reasons.append(reason("-", "key_mismatch", "消息键与记录标识不一致", key))
    if reasons:
        await ctx.reject("validate", kind, event.key, raw, reasons, envelope)
        return None
    metrics.labelled(metrics.RECORDS, "validate", "passed", kind, labels.district).inc()
    return record
