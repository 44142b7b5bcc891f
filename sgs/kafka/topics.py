"""Topic names and their settings: `<domain>.<stage>.<kind>`, keyed for ordering (see ARCHITECTURE in the README)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sgs.domain.kinds import KINDS

DAY_MS = 24 * 3600 * 1000
# The largest message any producer of the federation sends, and what every broker and topic takes: the one place
# both limits are set. Producers: `max_request_size` in `sgs.kafka.producer.durable_producer` and the worker's faust
# app. Brokers: `message.max.bytes` in `sgs.kafka.kraft.cluster_settings` (and docker-compose.yml's x-kafka-env,
# checked against it), topics: `max.message.bytes` below; both MAX_BATCH_BYTES, a message of the largest size plus
# the record batch around it. The node bounds what it takes well below (docs/node.md, "Limits"), so a message that
# still exceeds it is parked, never retried for ever.
MAX_MESSAGE_BYTES = 1024 * 1024
MAX_BATCH_BYTES = MAX_MESSAGE_BYTES + 1024

SUBMITTED = {kind: f"sgs.submitted.{kind}" for kind in KINDS}  # key: record id; as the node received it
ACCEPTED = {kind: f"sgs.accepted.{kind}" for kind in KINDS}  # key: record id; validated, reconciled, timed
REJECTED = "sgs.rejected"  # key: record id (or none); original bytes + every reason
ALERTS = "sgs.alerts"  # key: division code; late submissions, reconciliation mismatches
RELAY = {"provincial": "sgs.relay.provincial", "national": "sgs.relay.national"}  # key: record id
RECEIPTS_PREFIX = "sgs.receipts."  # `receipts_topic`; the writers' ACL is prefixed by it
DECISIONS = "sgs.decisions"  # key: record id; objection outcomes and credit repairs on a record (D15, D16)
REF_LEGAL_PERSONS = "sgs.ref.legal_persons"  # key: 统一社会信用代码
REF_PERSONS = "sgs.ref.persons"  # key: 居民身份证号


@dataclass(frozen=True)
class TopicSpec:
    name: str
    compacted: bool = False
    retention_days: int = 7
    partitions: int | None = None  # None: the federation's partition count

    def configs(self) -> dict[str, str]:
        size = {"max.message.bytes": str(MAX_BATCH_BYTES)}
        if self.compacted:
            return {"cleanup.policy": "compact", **size}
        return {"cleanup.policy": "delete", "retention.ms": str(self.retention_days * DAY_MS), **size}


# The topics every federation has; `federation_topics` adds those of its nodes.
TOPICS: tuple[TopicSpec, ...] = (
    *(TopicSpec(name) for name in SUBMITTED.values()),
    *(TopicSpec(name, compacted=True) for name in ACCEPTED.values()),
    TopicSpec(REJECTED, retention_days=30),
    TopicSpec(ALERTS, retention_days=30),
    *(TopicSpec(name, compacted=True) for name in RELAY.values()),
    TopicSpec(DECISIONS, retention_days=30),
    TopicSpec(REF_LEGAL_PERSONS, compacted=True),
    TopicSpec(REF_PERSONS, compacted=True),
)


def receipts_topic(node_code: str) -> str:
    """Where the receipts for one node's records go (key: the node code; per-record outcome for the sender): one
    topic per node, so that a node principal may read its own receipts and no other district's (issue 16)."""
    return f"{RECEIPTS_PREFIX}{node_code}"


def federation_topics(node_codes: Iterable[str]) -> tuple[TopicSpec, ...]:
    """Every topic of a federation with these nodes: `TOPICS` and each node's receipts topic, one partition (a
    node's receipts stay in order; a few a record, 2,850 such topics for the national tree, docs/security.md)."""
    return TOPICS + tuple(TopicSpec(receipts_topic(c), partitions=1) for c in node_codes)
