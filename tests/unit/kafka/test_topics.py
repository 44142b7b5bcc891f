"""The federation's topic names (sgs/kafka/topics.py): one receipts topic per node of the config (issue 16)."""

from __future__ import annotations

from sgs.config import Federation
from sgs.kafka.topics import RECEIPTS_PREFIX, TOPICS, federation_topics, receipts_topic


def test_a_nodes_receipts_topic_is_named_by_its_code_under_the_writers_prefix() -> None:
    assert receipts_topic("310101") == "sgs.receipts.310101"
    assert receipts_topic("310101").startswith(RECEIPTS_PREFIX)


def test_the_federations_topics_are_the_fixed_ones_and_a_single_partition_receipts_topic_per_node(
    federation: Federation,
) -> None:
    specs = federation_topics(n.code for n in federation.nodes)
    receipts = [s for s in specs if s.name.startswith(RECEIPTS_PREFIX)]
    assert specs[: len(TOPICS)] == TOPICS and not any(s.name.startswith(RECEIPTS_PREFIX) for s in TOPICS)
    assert [s.name for s in receipts] == [receipts_topic(n.code) for n in federation.nodes]
    assert {s.partitions for s in receipts} == {1}
    assert len(federation.nodes) == 17 and len({s.name for s in specs}) == len(specs)
