"""The node's Prometheus metrics, in a registry of its own (so several nodes can live in one test process).

Labels are bounded: `district` (the node's division code), `department` (config id), `kind`, `rule`, `stage`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from services.node.store import NodeStore


class OutboxCollector(Collector):
    """Outbox depth, the age of its oldest record and the parked messages, read from the store at scrape time, per
    node served."""

    def __init__(self, store: NodeStore, nodes: tuple[str, ...]) -> None:
        self.store = store
        self.nodes = nodes

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stats = self.store.outbox_stats()
        parked_counts = self.store.parked_counts()
        now = time.time()
        depth = GaugeMetricFamily(
            "sgs_node_outbox_depth",
            "Records taken but not yet acknowledged by the broker.",
            labels=["district"],
        )
        age = GaugeMetricFamily(
            "sgs_node_outbox_oldest_age_seconds",
            "Age of the oldest record not yet acknowledged by the broker (0 when the outbox is empty).",
            labels=["district"],
        )
        parked = GaugeMetricFamily(
            "sgs_node_parked",
            "Messages the broker refused for good, parked until an operator resends or drops them.",
            labels=["district"],
        )
        for node in self.nodes:
            count, oldest = stats.get(node, (0, None))
            depth.add_metric([node], count)
            age.add_metric([node], max(0.0, now - oldest / 1000) if oldest is not None else 0.0)
            parked.add_metric([node], parked_counts.get(node, 0))
        yield depth
        yield age
        yield parked


class NodeMetrics:
    def __init__(self, store: NodeStore, nodes: tuple[str, ...]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.received = Counter(
            "sgs_node_records_received",
            "Records received from departments (taken, unchanged or rejected).",
            ["district", "department", "kind"],
            registry=r,
        )
        self.taken = Counter(
            "sgs_node_records_taken",
            "Records durably taken into the outbox (new records and higher versions).",
            ["district", "department", "kind"],
            registry=r,
        )
        self.rejected = Counter(
            "sgs_node_records_rejected",
            "Records refused at the node, by the rule that refused them (D4, D12).",
            ["district", "department", "kind", "rule"],
            registry=r,
        )
        self.sent = Counter(
            "sgs_node_records_sent",
            "Records acknowledged by the broker.",
            ["district", "kind"],
            registry=r,
        )
        self.parked = Counter(
            "sgs_node_messages_parked",
            "Outbox messages the broker can never take (too large, invalid), moved aside, by error.",
            ["district", "topic", "reason"],
            registry=r,
        )
        self.forbidden = Counter(
            "sgs_node_forbidden",
            "Attempts refused with 403: another authority's records, or a node this process does not serve.",
            ["district", "department"],
            registry=r,
        )
        self.throttled = Counter(
            "sgs_node_throttled",
            "Requests answered 429: over the department's request rate or concurrent uploads, by reason.",
            ["district", "department", "reason"],
            registry=r,
        )
        self.unauthorized = Counter(
            "sgs_node_unauthorized", "Requests refused with 401 (no or unknown token).", registry=r
        )
        self.send_latency = Histogram(
            "sgs_node_send_latency_seconds",
            "From taking a record to the broker's acknowledgement.",
            ["district"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
            registry=r,
        )
        self.broker_errors = Counter(
            "sgs_node_broker_errors",
            "Broker errors, by stage (connect, send, receipts).",
            ["stage"],
            registry=r,
        )
        self.receipts_applied = Counter(
            "sgs_node_receipts_applied",
            "Receipts from the federation applied to this node's store, by status.",
            ["district", "outcome"],
            registry=r,
        )
        self.refused_signature = Counter(
            "sgs_node_refused_signature",
            "Receipts refused unread: not signed by the worker or a sink (issue 16), by rule.",
            ["district", "rule"],
            registry=r,
        )
        self.portal_to_submit = Histogram(
            "sgs_node_portal_to_submit_working_days",
            "D6: working days from the department's portal publication to the node taking the record.",
            ["district", "department", "kind"],
            buckets=(0, 1, 2, 3, 5, 7, 10, 20, 60),
            registry=r,
        )
        r.register(OutboxCollector(store, nodes))
