"""The worker's Prometheus metrics (prefix `sgs_worker_`, bounded labels only: never a record id or a name)."""

from __future__ import annotations

import functools
from typing import Any

from prometheus_client import Counter, Histogram

RECORDS = Counter(
    "sgs_worker_records_total",
    "Records by stage and outcome (accepted, rejected, duplicate, superseded, held, ...).",
    ["stage", "outcome", "kind", "district"],
)
LATE = Counter(
    "sgs_worker_late_total",
    "Records over the working-day limit: rule D5 (publish in 7) or D6 (report in 2).",
    ["district", "department", "kind", "rule"],
)
RECONCILIATION = Counter(
    "sgs_worker_reconciliation_total",
    "Outcomes of the check against the legal-person and population bases (D13).",
    ["outcome", "kind"],
)
RELAYED = Counter("sgs_worker_relayed_total", "Records relayed to a sink tier (D10, D11).", ["tier", "kind"])
WITHDRAWN = Counter(
    "sgs_worker_withdrawn_total", "Withdrawals sent to a sink tier (D4, D14, D16).", ["tier", "reason"]
)
REFUSED_SIGNATURE = Counter(
    "sgs_worker_refused_signature_total",
    "Messages refused unread because their signature is missing, wrong or not their writer's (issue 16).",
    ["topic", "rule"],
)
RECEIPTS_UNSENT = Counter(
    "sgs_worker_receipts_unsent_total",
    "Receipts not sent: their source node is not in the federation config, so it has no receipts topic (issue 16).",
)
WORKING_DAYS = Histogram(
    "sgs_worker_working_days",
    "Working days from decision (D5) or portal publication (D6) to submission: event-time delay.",
    ["rule"],
    buckets=(0, 1, 2, 3, 5, 7, 10, 15, 20, 30, 60),
)
STAGE_LATENCY = Histogram(
    "sgs_worker_stage_latency_seconds",
    "Processing time of one record in one stage.",
    ["stage"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)


@functools.cache
def labelled(metric: Any, *values: str) -> Any:
    """`metric.labels(*values)`, looked up once: `labels` validates and locks on every call, several times per
    record, and the label values here are bounded so the cache is too."""
    return metric.labels(*values)
