"""Topic and ACL administration: the federation's topics exist, with its partition count, before anything uses
them; on a cluster with links authenticated, its principals hold their grants (`sgs.kafka.security`)."""

from __future__ import annotations

import contextlib
import time

from kafka import KafkaAdminClient
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    NewTopic,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
)
from kafka.errors import KafkaError, TopicAlreadyExistsError

from sgs.config import TIERS, Federation
from sgs.kafka.security import ADMIN, Grant, acl_bindings, current, kafka_settings
from sgs.kafka.topics import TopicSpec, federation_topics

MAX_REPLICATION_FACTOR = 3
ACL_WAIT_S = 30.0
ACL_SETTLE_S = 2.0
ANY_ACL = ACLFilter(
    None,
    None,
    ACLOperation.ANY,
    ACLPermissionType.ANY,
    ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY),
)


def ensure_topics(bootstrap: str, partitions: int, topics: tuple[TopicSpec, ...]) -> list[str]:
    """Create `topics` explicitly, with `partitions` unless a topic has its own: auto-created topics get a
    broker-default partition count, which breaks faust tables (their changelogs must match the source
    partitions). Returns those created."""
    admin = KafkaAdminClient(**kafka_settings(bootstrap), request_timeout_ms=10000)
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
                        NewTopic(
                            t.name, t.partitions or partitions, replicas, topic_configs=t.configs() | in_sync
                        )
                        for t in missing
                    ],
                    timeout_ms=10000,
                )
        return [t.name for t in missing]
    finally:
        admin.close()


def ensure_federation_topics(bootstrap: str, federation: Federation) -> list[str]:
    """The topics the federation uses (`sgs.kafka.topics.federation_topics`); returns those created."""
    return ensure_topics(
        bootstrap, federation.partitions, federation_topics(n.code for n in federation.nodes)
    )


def ensure_acls(bootstrap: str, grants: list[Grant]) -> None:
    """Create the ACLs `grants` names (as the admin principal; an existing one is left as it is)."""
    acls = [
        ACL(
            f"User:{g.principal}",
            "*",
            ACLOperation[g.operation],
            ACLPermissionType.ALLOW,
            ResourcePattern(
                ResourceType[g.resource.upper()],
                g.name,
                ACLResourcePatternType.PREFIXED if g.prefixed else ACLResourcePatternType.LITERAL,
            ),
        )
        for g in grants
    ]
    admin = KafkaAdminClient(**kafka_settings(bootstrap), request_timeout_ms=10000)
    try:
        failed = admin.create_acls(acls)["failed"]
        if failed:
            raise KafkaError(f"{len(failed)} ACL(s) not created, e.g. {failed[0]}")
        # Each broker applies them from the metadata log a moment later, and the one asked is any of them: wait
        # until several answers in a row hold them all, and a little longer for the slowest broker, so that a
        # process started next is not refused what it is allowed.
        wanted = {(a.principal, a.operation, a.resource_pattern.resource_name) for a in acls}
        deadline, seen = time.monotonic() + ACL_WAIT_S, 0
        while time.monotonic() < deadline:
            present, _ = admin.describe_acls(ANY_ACL)
            held = wanted <= {(a.principal, a.operation, a.resource_pattern.resource_name) for a in present}
            seen = seen + 1 if held else 0
            if seen >= 3:
                time.sleep(ACL_SETTLE_S)
                return
            time.sleep(0.3)
        raise KafkaError(f"the ACLs created were not in force within {ACL_WAIT_S:.0f}s")
    finally:
        admin.close()


def prepare_cluster(bootstrap: str, federation: Federation) -> list[str]:
    """The federation's topics, and, when this process's links are authenticated (it is the admin principal),
    every principal's ACLs: what `sgs broker`, `sgs up`, `sgs bench` and the tests do once a cluster is up.
    Returns the topics created."""
    created = ensure_federation_topics(bootstrap, federation)
    if current().cert_dir is not None and current().principal == ADMIN:
        ensure_acls(bootstrap, acl_bindings((n.code for n in federation.nodes), TIERS))
    return created
