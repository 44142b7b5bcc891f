"""Federation-wide totals read from the services' own `/metrics`: what `sgs up` prints every few seconds."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

# (column, service, sample name, required labels): each column sums the matching samples.
COLUMNS: tuple[tuple[str, str, str, dict[str, str]], ...] = (
    ("submitted", "node", "sgs_node_records_received_total", {}),
    ("accepted", "worker", "sgs_worker_records_total", {"stage": "timeliness", "outcome": "accepted"}),
    ("rejected", "node", "sgs_node_records_rejected_total", {}),
    ("rejected", "worker", "sgs_worker_records_total", {"outcome": "rejected"}),
    ("late", "worker", "sgs_worker_late_total", {"rule": "D5"}),
    ("relayed provincial", "provincial", "sgs_sink_upserts_total", {}),
    ("relayed national", "national", "sgs_sink_upserts_total", {}),
)


def scrape(url: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample of one `/metrics` page; an unreachable service yields none (it may be restarting)."""
    try:
        text = httpx.get(url, timeout=2.0).text
    except httpx.HTTPError:
        return []
    return [(s.name, s.labels, s.value) for fam in text_string_to_metric_families(text) for s in fam.samples]


class Totals:
    def __init__(self, ports: dict[str, int]) -> None:
        wanted = {service for _, service, _, _ in COLUMNS}
        self.urls = {
            service: f"http://127.0.0.1:{port}/metrics"
            for service, port in ports.items()
            if service in wanted
        }

    def read(self) -> dict[str, float]:
        samples = {service: scrape(url) for service, url in self.urls.items()}
        totals: dict[str, float] = {}
        for column, service, name, labels in COLUMNS:
            value = sum(
                v
                for n, lab, v in samples.get(service, [])
                if n == name and all(lab.get(k) == want for k, want in labels.items())
            )
            totals[column] = totals.get(column, 0.0) + value
        return totals

    def line(self) -> str:
        return "  ".join(f"{column} {value:,.0f}" for column, value in self.read().items())
