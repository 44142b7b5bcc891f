"""The Apache Kafka engine's links (issue 16, item 2): every client is a principal proven by its certificate, and
what no ACL allows is refused by the brokers. Each refusal is paired with what the same principal may do, so a
test cannot pass because nothing works. Nothing is written to the federation's shared topics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaTimeoutError, TopicAuthorizationFailedError

from sgs.config import Federation
from sgs.kafka.security import Identity, kafka_settings, make_certs, node_principal, sink_principal
from sgs.kafka.topics import RELAY, SUBMITTED, receipts_topic

pytestmark = pytest.mark.engine("kafka")


def _producer(kafka: str, identity: Identity) -> KafkaProducer:
    return KafkaProducer(**kafka_settings(kafka, identity), acks="all", max_block_ms=10_000)


def _read(kafka: str, identity: Identity, topic: str) -> None:
    consumer = KafkaConsumer(**kafka_settings(kafka, identity), enable_auto_commit=False)
    try:
        consumer.assign([TopicPartition(topic, 0)])
        consumer.seek_to_beginning()
        consumer.poll(timeout_ms=5000)
    finally:
        consumer.close()


def test_a_nodes_principal_is_refused_a_relay_write(
    kafka: str, kafka_certs: Path, federation: Federation
) -> None:
    """What the node may write it writes in every node test of this run (each node process is its own principal);
    here nothing is written to a shared topic, which fresh workers of later tests would read and count."""
    code = federation.nodes[0].code
    node = Identity(node_principal([code]), kafka_certs)
    _read(kafka, node, receipts_topic(code))  # authenticated, and allowed what its ACLs grant
    producer = _producer(kafka, node)
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            producer.send(RELAY["national"], key=b"acl-test", value=b"forged").get(30)
    finally:
        producer.close()


def test_a_node_reads_no_submissions_and_a_sink_no_other_tiers_relay(
    kafka: str, kafka_certs: Path, federation: Federation
) -> None:
    node = Identity(node_principal([federation.nodes[0].code]), kafka_certs)
    with pytest.raises(TopicAuthorizationFailedError):
        _read(kafka, node, SUBMITTED["penalty"])  # another district's records are not a node's to read
    provincial = Identity(sink_principal("provincial"), kafka_certs)
    _read(kafka, provincial, RELAY["provincial"])  # its own relay: allowed
    with pytest.raises(TopicAuthorizationFailedError):
        _read(kafka, provincial, RELAY["national"])


def test_a_node_reads_its_own_receipts_and_not_another_districts(
    kafka: str, kafka_certs: Path, federation: Federation
) -> None:
    """Receipts may quote a record's personal data in their reasons: one topic per node, READ on its own (issue
    16). The process serving several districts (`nodes`) reads each of theirs."""
    own, other = (d.code for d in federation.districts[:2])
    node = Identity(node_principal([own]), kafka_certs)
    _read(kafka, node, receipts_topic(own))
    with pytest.raises(TopicAuthorizationFailedError):
        _read(kafka, node, receipts_topic(other))
    _read(kafka, Identity(node_principal([own, other]), kafka_certs), receipts_topic(other))


def _connects(kafka: str, **link: Any) -> None:
    """A metadata request over `link`; the client raises when no broker lets it bootstrap."""
    admin = KafkaAdminClient(
        bootstrap_servers=kafka, request_timeout_ms=3000, bootstrap_timeout_ms=5000, **link
    )
    try:
        admin.list_topics()
    finally:
        admin.close()


def test_a_client_without_a_certificate_of_the_federations_ca_cannot_connect(
    kafka: str, kafka_certs: Path, tmp_path: Path
) -> None:
    ca = str(kafka_certs / "ca.pem")
    with pytest.raises(KafkaTimeoutError):  # plaintext to a TLS listener
        _connects(kafka)
    with pytest.raises(KafkaTimeoutError):  # TLS showing no certificate (ssl.client.auth=required)
        _connects(kafka, security_protocol="SSL", ssl_cafile=ca)
    forged = make_certs(tmp_path / "forged", ["worker"])  # a real principal's name, from another CA
    with pytest.raises(KafkaTimeoutError):
        _connects(
            kafka,
            security_protocol="SSL",
            ssl_cafile=ca,
            ssl_certfile=str(forged / "worker.pem"),
            ssl_keyfile=str(forged / "worker.key"),
        )
    _connects(kafka, **Identity("worker", kafka_certs).kafka_python())  # the federation's own connects
