"""The sink's Prometheus metrics, labelled by tier and kind only (bounded)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class SinkMetrics:
    """One set per process (a registry of its own, so tests can run several sinks in one interpreter)."""

    def __init__(self, tier: str, registry: CollectorRegistry | None = None) -> None:
        self.tier = tier
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.held = Gauge(
            "sgs_sink_records_held", "Records held and not withdrawn.", ["tier", "kind"], registry=r
        )
        self.upserts = Counter(
            "sgs_sink_upserts_total", "Record versions stored (new or higher).", ["tier", "kind"], registry=r
        )
        self.withdrawals = Counter(
            "sgs_sink_withdrawals_total", "Records taken down by a withdrawal.", ["tier", "kind"], registry=r
        )
        self.duplicates = Counter(
            "sgs_sink_duplicates_total",
            "Messages absorbed because an equal or higher version was already held.",
            ["tier", "kind"],
            registry=r,
        )
        self.refused = Counter(
            "sgs_sink_refused_total",
            "Records this tier must not hold, refused defensively (D11 at the national tier).",
            ["tier", "kind", "rule"],
            registry=r,
        )
        self.ignored_withdrawals = Counter(
            "sgs_sink_withdrawals_ignored_total",
            "Withdrawals for a record not held, or older than the version held.",
            ["tier", "kind"],
            registry=r,
        )
        self.poison = Counter(
            "sgs_sink_poison_total", "Relay messages that could not be decoded or stored, skipped.", ["tier"],
            registry=r,
        )  # fmt: skip
        self.refused_signature = Counter(
            "sgs_sink_refused_signature_total",
            "Relay messages refused unread: not signed by the municipal worker (issue 16), by rule.",
            ["tier", "rule"],
            registry=r,
        )
        self.receipts = Counter("sgs_sink_receipts_total", "Receipts sent.", ["tier"], registry=r)
        self.receipts_parked = Counter(
            "sgs_sink_receipts_parked_total",
            "Receipts the broker refused for good (too large, invalid), moved aside so the others flow on.",
            ["tier"],
            registry=r,
        )
        self.query = Histogram(
            "sgs_sink_query_duration_seconds", "Time to answer a query (API or page).", ["tier"], registry=r
        )
        self.operator_reads = Counter(
            "sgs_sink_operator_reads_total", "Operator reads of full records (logged, D17).", ["tier", "outcome"],
            registry=r,
        )  # fmt: skip
        for kind in ("license", "penalty"):
            for metric in (self.held, self.upserts, self.withdrawals, self.duplicates):
                metric.labels(tier, kind)
        self.poison.labels(tier)
