"""Who a process is on the Apache Kafka engine, and the one place every Kafka client takes its link settings from
(issue 16, item 2).

Read in this order: the principals, `make_certs` (what `sgs keys tls` and `sgs up` make), `Identity` (a
process's certificate and the client settings it gives kafka-python, aiokafka and faust), `use`/`current` (set
once by `sgs.cli.main` from `--kafka-certs` and the command), `acl_bindings` (who may do what; applied by
`sgs.kafka.admin.ensure_acls`).

Links are mutual TLS: the brokers and every client hold a certificate from the federation's own CA, and a
certificate's CN is the principal (`ssl.principal.mapping.rules`). mTLS rather than SASL/SCRAM because it needs
nothing registered in the cluster before a client can connect (SCRAM users live in the metadata log and must be
added by an admin, or at format time), the same files serve brokers, controllers and clients, and TLS is needed
for SCRAM anyway. Without `--kafka-certs` a client speaks plaintext: the embedded Tansu has no broker auth (the
signatures cover it, docs/security.md).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sgs.kafka.topics import ALERTS, DECISIONS, RECEIPTS_PREFIX, REJECTED, RELAY, SUBMITTED, receipts_topic

if (
    TYPE_CHECKING
):  # `cryptography` is imported where certificates are made, so every `sgs` command starts fast
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

# The principals: one per process role. A node's is `node.<division code>`; a process serving several districts
# (`sgs up`'s one node process, `sgs simulate --via kafka`) is `nodes`, with the same rights.
BROKER = "broker"  # the brokers and KRaft controllers, to each other; a super user
ADMIN = "admin"  # creates topics and ACLs (`sgs broker`, `sgs up`, `sgs bench`, the tests); a super user
WORKER = "worker"
REFBASE = "refbase"  # `sgs refbase load|publish`
LAG_EXPORTER = "lag-exporter"
BENCH = "bench"  # `sgs bench`'s own measurements (its scratch topics, reading sgs.rejected)
NODES = "nodes"
SCHEMA_REGISTRY = (
    "schema-registry"  # docker-compose.yml's Confluent schema registry, which keeps its store on Kafka
)
SUPER_USERS = (BROKER, ADMIN)
JAVA_PRINCIPALS = (BROKER, SCHEMA_REGISTRY)  # these read a PEM key store: key and chain in one file
WORKER_PREFIX = "sgs-municipal"  # the worker's app ids: its group, its own topics and changelogs, its txn ids

CA = "ca"
CERT_DAYS = 825
# Names a broker's certificate answers to: loopback for the clusters the project starts, the compose services.
BROKER_HOSTS = ("localhost", "kafka-1", "kafka-2", "kafka-3")


class CredentialsError(Exception):
    """A certificate or key a process needs is missing or unreadable; the message names the file."""


def node_principal(codes: Iterable[str]) -> str:
    codes = tuple(codes)
    return f"node.{codes[0]}" if len(codes) == 1 else NODES


def sink_principal(tier: str) -> str:
    return f"sink.{tier}"


def principals(node_codes: Iterable[str], tiers: Iterable[str]) -> tuple[str, ...]:
    """Every principal of a federation with these nodes and sink tiers."""
    return (
        *SUPER_USERS,
        WORKER,
        REFBASE,
        LAG_EXPORTER,
        BENCH,
        SCHEMA_REGISTRY,
        NODES,
        *(f"node.{c}" for c in node_codes),
        *(sink_principal(t) for t in tiers),
    )


# --- certificates -----------------------------------------------------------------------------------------------


def cert_path(cert_dir: Path, principal: str) -> Path:
    return cert_dir / f"{principal}.pem"


def key_path(cert_dir: Path, principal: str) -> Path:
    return cert_dir / f"{principal}.key"


def keystore_path(cert_dir: Path, principal: str) -> Path:
    return cert_dir / f"{principal}.keystore.pem"


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    from cryptography.hazmat.primitives import serialization

    # PKCS#8, unencrypted: what Kafka's PEM key store and Python's ssl both read; the file is the secret (0600)
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_secret(path, data)


def _write_secret(path: Path, data: bytes) -> None:
    """A file only its owner reads (0600 from its creation, never readable by others in between)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _load_ca(cert_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    cert = x509.load_pem_x509_certificate(cert_path(cert_dir, CA).read_bytes())
    key = serialization.load_pem_private_key(key_path(cert_dir, CA).read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return cert, key


def _new_ca(cert_dir: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sgs federation CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    _write_key(key_path(cert_dir, CA), key)
    cert_path(cert_dir, CA).write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _new_cert(cert_dir: Path, principal: str) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    ca_cert, ca_key = _load_ca(cert_dir)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    names: list[x509.GeneralName] = [x509.DNSName(h) for h in BROKER_HOSTS]
    names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, principal)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    _write_key(key_path(cert_dir, principal), key)
    cert_path(cert_dir, principal).write_bytes(pem)
    if principal in JAVA_PRINCIPALS:
        keystore = keystore_path(cert_dir, principal)
        _write_secret(keystore, key_path(cert_dir, principal).read_bytes() + pem)
        # what Kafka's own tools connect with as this principal (the brokers' healthcheck in docker-compose.yml)
        (cert_dir / f"{principal}.client.properties").write_text(
            "security.protocol=SSL\nssl.keystore.type=PEM\n"
            f"ssl.keystore.location={keystore}\nssl.truststore.type=PEM\n"
            f"ssl.truststore.location={cert_path(cert_dir, CA)}\n"
        )


def make_certs(cert_dir: Path, names: Iterable[str]) -> Path:
    """A CA for the federation (made once) and a certificate with its key for each principal in `names` that
    has none yet, under `cert_dir`; kept across runs, never committed. Returns `cert_dir`."""
    cert_dir.mkdir(parents=True, exist_ok=True)
    if not cert_path(cert_dir, CA).exists():
        _new_ca(cert_dir)
    for principal in names:
        if not cert_path(cert_dir, principal).exists():
            _new_cert(cert_dir, principal)
    return cert_dir


# --- a process's identity ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """A principal and where its certificate is; `cert_dir=None` is a plaintext link (Tansu)."""

    principal: str
    cert_dir: Path | None = None

    def _files(self) -> tuple[Path, Path, Path]:
        assert self.cert_dir is not None
        files = (
            cert_path(self.cert_dir, CA),
            cert_path(self.cert_dir, self.principal),
            key_path(self.cert_dir, self.principal),
        )
        for path in files:
            if not path.is_file():
                raise CredentialsError(
                    f"{path}: no such file (the {self.principal!r} principal's Kafka certificate; "
                    "`sgs keys tls` makes them)"
                )
        return files

    def kafka_python(self) -> dict[str, Any]:
        """kafka-python's `KafkaProducer`/`KafkaConsumer`/`KafkaAdminClient` settings for this identity."""
        if self.cert_dir is None:
            return {}
        ca, cert, key = self._files()
        return {
            "security_protocol": "SSL",
            "ssl_cafile": str(ca),
            "ssl_certfile": str(cert),
            "ssl_keyfile": str(key),
            "ssl_check_hostname": True,
        }

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.cert_dir is None:
            return None
        ca, cert, key = self._files()
        context = ssl.create_default_context(cafile=str(ca))
        context.load_cert_chain(str(cert), str(key))
        return context

    def aiokafka(self) -> dict[str, Any]:
        """aiokafka's client settings (faust takes the same context through `broker_credentials`)."""
        context = self.ssl_context()
        return {} if context is None else {"security_protocol": "SSL", "ssl_context": context}


_current = Identity("ANONYMOUS")


def use(identity: Identity) -> None:
    """This process's identity, for every client it opens from now on (`sgs.cli.main` sets it once)."""
    global _current
    _current = identity


def current() -> Identity:
    return _current


def kafka_settings(bootstrap: str, identity: Identity | None = None) -> dict[str, Any]:
    """`bootstrap_servers` and the link settings of `identity` (default: this process's) for a kafka-python
    client: `KafkaConsumer(topic, **kafka_settings(bootstrap), group_id=...)`."""
    return {"bootstrap_servers": bootstrap, **(identity or _current).kafka_python()}


def aiokafka_settings(bootstrap: str, identity: Identity | None = None) -> dict[str, Any]:
    return {"bootstrap_servers": bootstrap, **(identity or _current).aiokafka()}


# --- authorization ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    """One ACL: ALLOW `principal` the `operation` on a resource (`topic`, `group`, `transactional_id`, `cluster`)
    named `name`, exactly (`prefixed=False`) or by prefix."""

    principal: str
    operation: str  # READ, WRITE, DESCRIBE, ALL, ...
    resource: str
    name: str
    prefixed: bool = False


def _topics(principal: str, operation: str, *names: str, prefixed: bool = False) -> list[Grant]:
    return [Grant(principal, operation, "topic", n, prefixed) for n in names]


def acl_bindings(node_codes: Iterable[str], tiers: Iterable[str]) -> list[Grant]:
    """Who may do what on the federation's cluster (docs/security.md, "Authenticated Kafka links"). The brokers
    and the admin are super users; every other principal may DESCRIBE the `sgs.` topics (names are not secret,
    and a client checking that its topics exist lists them) and nothing beyond its grants."""
    node_codes, tiers = tuple(node_codes), tuple(tiers)
    grants: list[Grant] = []
    for node in (NODES, *(f"node.{c}" for c in node_codes)):
        grants += _topics(node, "WRITE", *SUBMITTED.values(), DECISIONS, REJECTED)
        grants.append(Grant(node, "READ", "group", "sgs-node-", prefixed=True))
    # A node reads its own receipts only; `nodes` serves several districts in one process, so it reads them all
    # (issue 16). The writers write to every node's topic.
    grants += [Grant(f"node.{c}", "READ", "topic", receipts_topic(c)) for c in node_codes]
    grants += _topics(NODES, "READ", RECEIPTS_PREFIX, prefixed=True)
    grants += _topics(WORKER, "READ", *SUBMITTED.values(), DECISIONS, REJECTED)
    grants += _topics(WORKER, "READ", "sgs.ref.", prefixed=True)
    grants += _topics(WORKER, "WRITE", "sgs.accepted.", "sgs.relay.", RECEIPTS_PREFIX, prefixed=True)
    grants += _topics(WORKER, "WRITE", ALERTS, REJECTED)
    for resource in ("topic", "group", "transactional_id"):
        grants.append(Grant(WORKER, "ALL", resource, WORKER_PREFIX, prefixed=True))
    # creating its own topics, the worker and the bench ask how many brokers there are (replication)
    grants += [Grant(p, "DESCRIBE", "cluster", "kafka-cluster") for p in (WORKER, BENCH, SCHEMA_REGISTRY)]
    for tier in tiers:
        sink = sink_principal(tier)
        grants += _topics(sink, "READ", RELAY[tier], prefixed=True)  # prefixed: tests' relays of a tier
        grants += _topics(sink, "WRITE", RECEIPTS_PREFIX, prefixed=True)
        grants += _topics(sink, "WRITE", REJECTED)
        grants.append(Grant(sink, "READ", "group", "sgs-sink-", prefixed=True))
    grants += _topics(REFBASE, "WRITE", "sgs.ref.", prefixed=True)
    grants += [Grant(LAG_EXPORTER, "DESCRIBE", r, "*") for r in ("topic", "group")]
    grants += _topics(SCHEMA_REGISTRY, "ALL", "_schemas")
    grants.append(Grant(SCHEMA_REGISTRY, "ALL", "group", "schema-registry"))
    grants += _topics(BENCH, "ALL", "sgs.bench.", prefixed=True)
    grants += _topics(BENCH, "READ", REJECTED)
    for principal in principals(node_codes, tiers):
        if principal not in SUPER_USERS:
            grants.append(Grant(principal, "DESCRIBE", "topic", "sgs.", prefixed=True))
    return grants
