"""Topic administration: the federation's topics exist, with its partition count, before anything uses them."""

from __future__ import annotations

import contextlib

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from sgs.kafka.topics import TOPICS, TopicSpec

MAX_REPLICATION_FACTOR = 3


def ensure_topics(bootstrap: str, partitions: int, topics: tuple[TopicSpec, ...] = TOPICS) -> list[str]:
    """Create the topics the federation uses, explicitly: auto-created topics get a broker-default partition
    count, which breaks faust tables (their changelogs must match the source partitions). Returns those created."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        existing = set(admin.list_topics())
        missing = [t for t in topics if t.name not in existing]
        if missing:
            # 3 replicas on a cluster of three or more, 1 on one broker (Tansu, or a 1-node Kafka); with three, a
            # write counts once two replicas hold it, so one broker can be lost with nothing acknowledged lost
            replicas = min(MAX_REPLICATION_FACTOR, len(admin.describe_cluster()["brokers"]))
            in_sync = {"min.insync.replicas": "2"} if replicas >= MAX_REPLICATION_FACTOR else {}
            with contextlib.suppress(TopicAlreadyExistsError):  # another process created them first
                admin.create_topics(
                    [
                        NewTopic(t.name, partitions, replicas, topic_configs=t.configs() | in_sync)
                        for t in missing
                    ],
                    timeout_ms=10000,
                )
        return [t.name for t in missing]
    finally:
        admin.close()
