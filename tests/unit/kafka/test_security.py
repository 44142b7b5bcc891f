"""The Kafka link identities and grants (sgs/kafka/security.py, issue 16): what each certificate says, what each
client is given, and who the ACLs let write what. The brokers' side is tests/integration/test_kafka_acls.py."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sgs.config import TIERS
from sgs.kafka.security import (
    NODES,
    WORKER,
    CredentialsError,
    Identity,
    acl_bindings,
    make_certs,
    node_principal,
    principals,
)
from sgs.kafka.topics import RELAY, SUBMITTED, receipts_topic

CODES = ("310101", "310104")


def test_each_principal_holds_a_certificate_naming_it_signed_by_the_federations_ca(tmp_path: Path) -> None:
    certs = make_certs(tmp_path, principals(CODES, TIERS))
    ca = x509.load_pem_x509_certificate((certs / "ca.pem").read_bytes())
    ca_key = ca.public_key()
    assert isinstance(ca_key, ec.EllipticCurvePublicKey)
    for principal in principals(CODES, TIERS):
        cert = x509.load_pem_x509_certificate((certs / f"{principal}.pem").read_bytes())
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == principal
        cert.verify_directly_issued_by(ca)
        assert (certs / f"{principal}.key").stat().st_mode & 0o077 == 0  # the key is its owner's only
    assert (certs / "broker.keystore.pem").exists()  # Kafka's PEM key store


def test_made_certificates_are_kept_across_runs(tmp_path: Path) -> None:
    make_certs(tmp_path, ["worker"])
    first = (tmp_path / "worker.pem").read_bytes()
    make_certs(tmp_path, ["worker", "admin"])
    assert (tmp_path / "worker.pem").read_bytes() == first


def test_a_client_gets_mutual_tls_settings_and_a_context_that_loads(tmp_path: Path) -> None:
    make_certs(tmp_path, ["worker"])
    identity = Identity(WORKER, tmp_path)
    settings = identity.kafka_python()
    assert settings["security_protocol"] == "SSL"
    assert settings["ssl_certfile"] == str(tmp_path / "worker.pem")
    assert isinstance(identity.ssl_context(), ssl.SSLContext)
    assert Identity(WORKER).kafka_python() == {}  # no certificate directory: plaintext (Tansu)


def test_a_missing_certificate_is_named(tmp_path: Path) -> None:
    make_certs(tmp_path, ["worker"])
    with pytest.raises(CredentialsError, match="sink.national.pem"):
        Identity("sink.national", tmp_path).kafka_python()


def test_a_process_serving_one_district_is_that_nodes_principal() -> None:
    assert node_principal(["310101"]) == "node.310101"
    assert node_principal(CODES) == NODES


def _allowed(operation: str, topic: str) -> set[str]:
    """Principals an ACL lets do `operation` (or ALL) on `topic` (super users aside)."""
    return {
        g.principal
        for g in acl_bindings(CODES, TIERS)
        if g.resource == "topic"
        and g.operation in (operation, "ALL")
        and (topic.startswith(g.name) if g.prefixed else topic == g.name)
    }


def test_only_the_worker_writes_relays_and_a_node_writes_submissions() -> None:
    for topic in RELAY.values():
        assert _allowed("WRITE", topic) == {WORKER}
    assert _allowed("WRITE", SUBMITTED["penalty"]) == {NODES, "node.310101", "node.310104"}
    assert _allowed("READ", SUBMITTED["penalty"]) == {WORKER}
    assert _allowed("READ", RELAY["national"]) == {"sink.national"}


def test_a_node_reads_its_own_receipts_only_and_the_worker_and_sinks_write_every_nodes() -> None:
    for code in CODES:
        assert _allowed("READ", receipts_topic(code)) == {f"node.{code}", NODES}  # issue 16
        assert _allowed("WRITE", receipts_topic(code)) == {WORKER, "sink.provincial", "sink.national"}
    own = [
        g for g in acl_bindings(CODES, TIERS) if g.principal == "node.310101" and g.name.startswith("sgs.rec")
    ]
    assert [(g.operation, g.name, g.prefixed) for g in own] == [("READ", "sgs.receipts.310101", False)]


def test_every_principal_may_see_the_federations_topic_names() -> None:
    described = _allowed("DESCRIBE", SUBMITTED["license"])
    assert set(principals(CODES, TIERS)) - {"broker", "admin"} <= described
