"""The embedded Tansu broker: starts on a free loopback port, gets every topic with the configured partitions,
and leaves no port bound when stopped (issue 2)."""

from __future__ import annotations

import socket

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from sgs.kafka.admin import ensure_federation_topics, ensure_topics
from sgs.kafka.producer import durable_producer
from sgs.kafka.security import kafka_settings
from sgs.kafka.tansu import EmbeddedBroker
from sgs.kafka.topics import TopicSpec, federation_topics, receipts_topic


def test_every_topic_exists_with_the_configured_partitions(kafka, federation):
    consumer = KafkaConsumer(**kafka_settings(kafka))
    try:
        for spec in federation_topics(n.code for n in federation.nodes):
            partitions = spec.partitions or federation.partitions
            assert consumer.partitions_for_topic(spec.name) == set(range(partitions)), spec.name
        assert consumer.partitions_for_topic(receipts_topic(federation.municipal.code)) == {0}
    finally:
        consumer.close()


def test_ensure_topics_is_idempotent(kafka, federation):
    assert ensure_federation_topics(kafka, federation) == []


def test_records_keyed_alike_land_in_one_partition_in_order(kafka, federation):
    topic = "sgs.test.broker-order"  # not a federation topic: its values are not Avro
    ensure_topics(kafka, federation.partitions, (TopicSpec(topic),))
    producer = KafkaProducer(**kafka_settings(kafka), acks="all")
    metas = [producer.send(topic, key=b"order", value=str(i).encode()).get(10) for i in range(5)]
    producer.close()
    assert len({m.partition for m in metas}) == 1
    offsets = [m.offset for m in metas]
    assert offsets == sorted(offsets)
    consumer = KafkaConsumer(**kafka_settings(kafka), enable_auto_commit=False)
    tp = TopicPartition(topic, metas[0].partition)
    consumer.assign([tp])
    consumer.seek(tp, offsets[0])
    seen: list[bytes] = []
    while len(seen) < 5:
        for records in consumer.poll(2000).values():
            seen += [r.value for r in records if r.key == b"order"]
    consumer.close()
    assert seen == [b"0", b"1", b"2", b"3", b"4"]


@pytest.mark.engine("tansu")
def test_stopped_broker_frees_its_port(tmp_path):
    broker = EmbeddedBroker(log_path=tmp_path / "tansu.log").start()
    port = broker.port
    broker.stop()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # raises if still bound


def test_the_federations_producer_puts_each_key_where_kafkas_default_partitioner_does(kafka, federation):
    """`durable_producer` hashes with the compiled murmur2 (issue 14): every key lands in the partition Kafka's Java
    clients, and every other producer of the federation, pick for it (ARCHITECTURE: keys)."""
    topic = "sgs.test.broker-partitioner"
    ensure_topics(kafka, federation.partitions, (TopicSpec(topic),))
    producer = durable_producer(kafka)
    keys = [f"penalty:113101010010100169:沪黄市监罚〔2026〕{i}号".encode() for i in range(40)]
    landed = {key: producer.send(topic, key=key, value=b"v").get(10).partition for key in keys}
    unkeyed = producer.send(topic, value=b"v").get(10).partition
    producer.close()
    partitions = list(range(federation.partitions))
    assert landed == {key: (kafka_python_murmur2(key) & 0x7FFFFFFF) % len(partitions) for key in keys}
    assert len(set(landed.values())) > 1 and unkeyed in partitions
