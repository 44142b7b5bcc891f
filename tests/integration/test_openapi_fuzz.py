"""Schemathesis against the OpenAPI the node and both sinks serve, as real processes (issue 17): no input gets a 5xx,
and every status code and content type they answer with is documented. A fixed seed (derandomize) and a bounded
number of examples per operation keep it reproducible and short.

Each operation's Hypothesis strategy is run by hand (`APIOperation.as_strategy`): the schemathesis pytest plugin's
lazy fixture mode reads `request.node._nodeid`, which pytest 9.2 no longer has."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import content_type_conformance, not_a_server_error, status_code_conformance

from sgs.config import Federation
from tests.support.node_process import NodeProcess
from tests.support.sink_process import SinkProcess, relay_topic

EXAMPLES = 30  # per operation
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance]
FUZZ = settings(
    max_examples=EXAMPLES, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck)
)


def fuzz(url: str, headers: dict[str, str]) -> list[str]:
    """Every operation of the OpenAPI at `url`, EXAMPLES generated requests each; the paths it covered."""
    api = schemathesis.openapi.from_url(f"{url}/openapi.json")
    covered = []
    for result in api.get_all_operations():
        operation = result.ok()

        @FUZZ
        @given(case=operation.as_strategy())
        def call(case: Any) -> None:
            case.call_and_validate(base_url=url, headers=headers, checks=CHECKS)

        call()
        covered.append(f"{operation.method.upper()} {operation.path}")
    return covered


@pytest.fixture(scope="module")
def node(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    running = NodeProcess(kafka, tmp_path_factory.mktemp("fuzz-node")).start()
    yield running
    running.stop()


@pytest.mark.timeout(600)
def test_the_node_answers_every_generated_request_as_documented(
    node: NodeProcess, federation: Federation
) -> None:
    token = federation.node("310115").departments[0].dev_token
    covered = fuzz(node.url, {"Authorization": f"Bearer {token}"})
    assert {
        "POST /v1/records/{kind}",
        "POST /v1/files/{kind}",
        "POST /v1/decisions",
        "GET /v1/receipts",
    } <= set(covered)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("tier", ["provincial", "national"])
def test_the_sinks_answer_every_generated_request_as_documented(
    kafka: str, tmp_path_factory: pytest.TempPathFactory, tier: str
) -> None:
    sink = SinkProcess(kafka, relay_topic(kafka, 1, tier), tmp_path_factory.mktemp("fuzz-sink"), tier).start()
    try:
        covered = fuzz(sink.url, {"Authorization": "Bearer op-secret-123"})
        assert "GET /v1/records" in covered
    finally:
        sink.stop()
