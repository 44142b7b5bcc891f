"""Fixtures shared by every test: the federation config and, for integration tests, one real Tansu broker."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from sgs.config import Federation, load_config
from sgs.kafka.admin import ensure_topics
from sgs.kafka.tansu import EmbeddedBroker


@pytest.fixture(scope="session")
def federation() -> Federation:
    return load_config()


@pytest.fixture(scope="session")
def kafka(federation: Federation, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address of a real Tansu broker shared by the whole session, with every topic created.

    Tests share its topics, so each test uses record ids, groups and stores of its own."""
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(log_path=log) as broker:
        ensure_topics(broker.bootstrap, federation.partitions)
        yield broker.bootstrap


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = os.environ.get("SGS_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("SGS_TEST_POSTGRES_URL is not set")
    return url


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
