"""Fixtures shared by every test: the federation config, one real broker for the integration tests, and a real
PostgreSQL.

The broker is the engine `SGS_ENGINE` names (sgs/kafka/engines.py): the embedded Tansu by default, or with
`SGS_ENGINE=kafka` a 3-node Apache Kafka cluster (`SGS_TEST_BROKERS` changes the count), started once for the
session. The service processes the tests start inherit the variable, so they run as they would on that engine.
On Apache Kafka the cluster's links are mutual TLS with ACLs (issue 16): the session makes a certificate for every
principal, the processes the tests start find theirs through `SGS_KAFKA_CERTS`, and the test process itself (its
raw producers and consumers, `sgs.kafka.security.kafka_settings`) is the admin principal.
A test marked `engine("kafka")` or `engine("tansu")` is about that engine's code and runs on that engine only; a
test that uses no broker (neither the `kafka` nor the `engine` fixture) runs once, in the Tansu run.
PostgreSQL is `SGS_TEST_POSTGRES_URL` when set, else a throwaway server started for the session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from sgs.config import TIERS, Federation, load_config
from sgs.kafka import security
from sgs.kafka.admin import prepare_cluster
from sgs.kafka.engines import Engine, start_engine
from sgs.serialization.signing import local_keys
from tests.support.postgres_server import PostgresUnavailable, ThrowawayPostgres

ENGINE = Engine(os.environ.get("SGS_ENGINE") or "tansu")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "engine(name): runs only when the session's engine is `name`")


def pytest_runtest_setup(item: pytest.Item) -> None:
    marker = item.get_closest_marker("engine")
    if marker and marker.args[0] != ENGINE.name:
        pytest.skip(f"{marker.args[0]}-engine code: runs in the SGS_ENGINE={marker.args[0]} run")
    fixtures = getattr(item, "fixturenames", ())
    if ENGINE.name != "tansu" and not marker and "kafka" not in fixtures and "engine" not in fixtures:
        pytest.skip("uses no broker: runs in the Tansu run only")


@pytest.fixture(scope="session")
def engine() -> Engine:
    return ENGINE


@pytest.fixture(scope="session", autouse=True)
def signing_keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every signer's throwaway key for the session, and the shipped config with their public keys, made the way
    `sgs up` makes them; the service processes the tests start find both through `SGS_CONFIG` and
    `SGS_KEY_DIR`, and accept the development tokens (`SGS_DEV`) like under `sgs up` (issue 16)."""
    key_dir = tmp_path_factory.mktemp("keys")
    config = local_keys(load_config(), key_dir)
    saved = {name: os.environ.get(name) for name in ("SGS_CONFIG", "SGS_KEY_DIR", "SGS_DEV")}
    os.environ.update(SGS_CONFIG=str(config), SGS_KEY_DIR=str(key_dir), SGS_DEV="1")
    yield config
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def federation(signing_keys: Path) -> Federation:
    return load_config(signing_keys)


@pytest.fixture(scope="session")
def kafka_certs(federation: Federation, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path | None]:
    """On Apache Kafka, every principal's certificate (`sgs keys tls`), named to the processes the tests start
    by `SGS_KAFKA_CERTS`; the test process is the admin. None on Tansu (no broker auth)."""
    if ENGINE.name != "kafka":
        yield None
        return
    certs = security.make_certs(
        tmp_path_factory.mktemp("tls"), security.principals((n.code for n in federation.nodes), TIERS)
    )
    security.use(security.Identity(security.ADMIN, certs))
    os.environ["SGS_KAFKA_CERTS"] = str(certs)
    yield certs
    os.environ.pop("SGS_KAFKA_CERTS", None)
    security.use(security.Identity("ANONYMOUS"))


@pytest.fixture(scope="session")
def kafka(
    federation: Federation, kafka_certs: Path | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Bootstrap address of the session's real broker, with every topic created (and on Apache Kafka every
    principal's ACLs).

    Tests share its topics, so each test uses record ids, groups and stores of its own."""
    where = tmp_path_factory.mktemp("broker")
    brokers = int(os.environ.get("SGS_TEST_BROKERS", "3")) if ENGINE.name == "kafka" else 1
    broker = start_engine(ENGINE, data_dir=where, log_dir=where, brokers=brokers, cert_dir=kafka_certs)
    try:
        prepare_cluster(broker.bootstrap, federation)
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    url = os.environ.get("SGS_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    try:
        server = ThrowawayPostgres().start()
    except PostgresUnavailable as exc:
        pytest.skip(f"SGS_TEST_POSTGRES_URL is not set and no throwaway PostgreSQL could start: {exc}")
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def postgres_schema(postgres_url: str) -> Iterator[str]:
    """A schema of the test's own in the test PostgreSQL, dropped with all it holds afterwards."""
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "var"
    d.mkdir()
    return d
