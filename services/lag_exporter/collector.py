"""Consumer lag (消费滞后): how far each consumer group is behind the end of each partition it reads.

No service of the federation can see its own lag from outside its process, and faust's and kafka-python's client
metrics are not exported, so one small exporter asks the cluster on every Prometheus scrape: the committed offset
of every consumer group (OffsetFetch) against the end offset of each partition (ListOffsets). Lag is exported per
(group, topic, partition); these labels are bounded by the deployment (topics and groups are fixed, partitions are
configured), never by data.

Known limit of the embedded Tansu broker: its ListOffsets(latest) answers the base offset of the last record batch
plus one, not the high watermark, so with batching producers it under-reports lag (a lag that would be negative is
exported as 0). Apache Kafka answers the high watermark.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator

import structlog
from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import OffsetSpec
from kafka.errors import KafkaError
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from sgs.kafka.security import kafka_settings

log = structlog.get_logger("lag")


class ConsumerLagCollector(Collector):
    """Prometheus collector reading consumer-group offsets from Kafka at scrape time.

    `group_prefix` limits the groups exported (e.g. `sgs` for the federation's own); empty means every group."""

    def __init__(self, bootstrap: str, group_prefix: str = "", request_timeout_ms: int = 5000) -> None:
        self.bootstrap = bootstrap
        self.group_prefix = group_prefix
        self.request_timeout_ms = request_timeout_ms
        self._admin: KafkaAdminClient | None = None
        self._lock = threading.Lock()  # one scrape at a time shares one admin connection

    def collect(self) -> Iterator[Metric]:
        lag = GaugeMetricFamily(
            "sgs_consumer_lag",
            "Messages a consumer group has not yet committed, per topic partition (end offset - committed offset).",
            labels=["group", "topic", "partition"],
        )
        up = GaugeMetricFamily(
            "sgs_lag_exporter_up", "1 if the last scrape read the consumer-group offsets from Kafka, else 0."
        )
        with self._lock:
            try:
                for group, tp, value in self.read_lag():
                    lag.add_metric([group, tp.topic, str(tp.partition)], value)
                up.add_metric([], 1)
            except KafkaError as exc:
                log.warning("lag.scrape_failed", bootstrap=self.bootstrap, error=repr(exc))
                self.close()
                up.add_metric([], 0)
        yield lag
        yield up

    def read_lag(self) -> Iterable[tuple[str, TopicPartition, int]]:
        """(group, partition, lag) for every committed offset of every matching group."""
        admin = self._connect()
        groups = sorted(
            g["group_id"] for g in admin.list_groups() if str(g["group_id"]).startswith(self.group_prefix)
        )
        if not groups:
            return []
        committed: dict[str, dict[TopicPartition, int]] = {}
        for group in groups:
            offsets = admin.list_group_offsets(group).get(group, {})
            # offset -1: the group holds the partition but never committed; nothing to measure yet
            committed[group] = {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
        partitions = {tp for offsets in committed.values() for tp in offsets}
        if not partitions:
            return []
        ends = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in partitions})
        return [
            (group, tp, max(0, ends[tp].offset - offset))
            for group, offsets in committed.items()
            for tp, offset in sorted(offsets.items())
            if tp in ends
        ]

    def _connect(self) -> KafkaAdminClient:
        if self._admin is None:
            self._admin = KafkaAdminClient(
                **kafka_settings(self.bootstrap),
                client_id="sgs-lag-exporter",
                request_timeout_ms=self.request_timeout_ms,
                bootstrap_timeout_ms=self.request_timeout_ms,
            )
        return self._admin

    def close(self) -> None:
        if self._admin is not None:
            with contextlib.suppress(KafkaError):
                self._admin.close()
            self._admin = None
