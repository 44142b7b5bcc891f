"""Fair under load (issue 17): 200 connections flooding a real node with small batches, 199 of one careless department
(tests/support/flood.py, a process of its own) and one of another: the loud one gets 429s with Retry-After beyond
its fair share and no connection dropped, the quiet one's records are all taken, and /healthz and /metrics keep
answering quickly. Bounded: FLOOD_S seconds of load."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sgs.config import Federation
from tests.support.node_process import NodeProcess
from tests.support.node_records import of_one_department

DISTRICT = "310115"
CONNECTIONS = 200
FLOOD_S = 15.0


@pytest.fixture
def node(kafka: str, tmp_path: Path) -> Iterator[NodeProcess]:
    running = NodeProcess(kafka, tmp_path).start()
    yield running
    running.stop()


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@pytest.mark.timeout(240)
def test_one_department_flooding_the_node_starves_no_one_and_the_probes_answer(
    node: NodeProcess, federation: Federation
) -> None:
    loud = of_one_department(federation, 400, "penalty", DISTRICT)
    quiet = [
        i
        for i in of_one_department(federation, 2000, "penalty", DISTRICT)
        if i.department != loud[0].department
    ]
    assert quiet
    quiet_answers: list[tuple[int, float]] = []
    probes: list[tuple[str, int, float]] = []
    bodies = node.data_dir / "loud.json"
    bodies.write_text(json.dumps([i.http_body() for i in loud], ensure_ascii=False))
    flooder = subprocess.Popen(
        [sys.executable, "-m", "tests.support.flood", node.url, loud[0].department.dev_token, str(FLOOD_S)]
        + [str(CONNECTIONS - 1), str(bodies)],
        stdout=subprocess.PIPE,
        text=True,
    )
    stop = time.monotonic() + FLOOD_S
    time.sleep(1.0)  # the flood under way

    with httpx.Client(base_url=node.url, timeout=30) as client:
        start = 0
        while time.monotonic() < stop and start < len(quiet):
            batch = quiet[start : start + 5]
            start += 5
            began = time.monotonic()
            r = client.post(
                "/v1/records/penalty",
                json=[i.http_body() for i in batch],
                headers={"Authorization": f"Bearer {batch[0].department.dev_token}"},
            )
            quiet_answers.append((r.status_code, time.monotonic() - began))
            for path in ("/healthz", "/metrics"):
                began = time.monotonic()
                r = client.get(path)
                probes.append((path, r.status_code, time.monotonic() - began))
            time.sleep(0.2)
    out, _ = flooder.communicate(timeout=120)
    loud_result = json.loads(out)
    loud_statuses = {int(code): n for code, n in loud_result["statuses"].items()}
    assert loud_statuses.get(429) and loud_statuses.get(202) and set(loud_statuses) <= {202, 429}, loud_result
    assert loud_result["retry_after"] and all(v.isdigit() and int(v) >= 1 for v in loud_result["retry_after"])
    assert not loud_result["errors"], loud_result  # no connection dropped
    assert len(quiet_answers) >= 10
    assert {s for s, _ in quiet_answers} == {202}  # never throttled for the loud one
    quiet_p99 = quantile([t for _, t in quiet_answers], 0.99)
    probe_times = [t for _, _, t in probes]
    assert {status for _, status, _ in probes} == {200}
    print(
        f"\n{sum(loud_statuses.values())} loud requests ({loud_statuses[429]} answered 429), quiet p99 "
        f"{quiet_p99:.2f} s, probes p50 {quantile(probe_times, 0.5):.3f} s p99 {quantile(probe_times, 0.99):.3f} s"
    )
    assert quiet_p99 < 5.0
    assert quantile(probe_times, 0.99) < 2.0
    assert node.metric("sgs_node_throttled_total", reason="rate") == loud_statuses[429]
