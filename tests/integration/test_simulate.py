"""`sgs simulate` as a real process: straight onto the broker as a node would, and through a real district node."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from sgs.config import Federation
from sgs.kafka.launch import free_port
from simulators.generator import REJECTED, FaultMix, Generator
from tests.support.node_process import NodeProcess, submitted_versions
from tests.support.paths import REPO

ROOT = REPO


def simulate(*args: str, timeout_s: float = 120) -> tuple[int, dict, str]:
    """Run `sgs simulate`; (exit code, the JSON summary from stdout or {}, stderr)."""
    proc = subprocess.run(
        [sys.executable, "-m", "sgs", "simulate", "--log-level", "warning", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    lines = proc.stdout.strip().splitlines()
    return proc.returncode, json.loads(lines[-1]) if lines else {}, proc.stderr


def test_simulate_via_kafka_lands_every_record_decodable_on_the_submitted_topics(
    federation: Federation, kafka: str
) -> None:
    seed = 700_071
    code, summary, err = simulate(
        "--via", "kafka", "--kafka-bootstrap", kafka, "--count", "200", "--seed", str(seed)
    )
    assert code == 0, err
    assert (summary["sent"], summary["taken"], summary["errors"]) == (200, 200, 0)
    # The same seed regenerates the same stream: every item, duplicates and invalid ones included, is on a topic.
    # No decisions on records in this mode: the producer cannot know when a record is accepted.
    mix = FaultMix().without_decisions()
    expected = Counter((i.record_id, i.version) for i in Generator(federation, seed, mix).take(200))
    landed = Counter(submitted_versions(kafka, {rid for rid, _ in expected}))
    assert landed == expected
    assert sum(landed.values()) == 200


def test_simulate_via_http_gets_the_expected_answer_for_every_record_from_a_real_node(
    federation: Federation, kafka: str, tmp_path: Path
) -> None:
    """A node alone: no municipal platform accepts the records, so the node never takes a decision on one (409):
    each decision is counted lost, with the reason, once `--decision-wait` has passed."""
    seed, count = 700_072, 150
    node = NodeProcess(kafka, tmp_path, ("310106",)).start()
    try:
        args = ["--target", node.url, "--districts", "310106", "--count", str(count), "--seed", str(seed)]
        code, summary, err = simulate(*args, "--batch", "10", "--concurrency", "3", "--decision-wait", "3")
    finally:
        assert node.stop() == 0
    assert code == 0, err
    items = list(Generator(federation, seed, districts=["310106"]).take(count))
    rejected = sum(1 for i in items if i.expect == REJECTED)
    decisions = sum(len(i.decisions) for i in items)
    assert summary["sent"] == count and summary["errors"] == 0
    assert summary["decisions"] == {"sent": decisions, "lost": decisions} and decisions > 0
    # rejected, unchanged and taken exactly as expected; the decisions are the only surprises
    assert summary["surprises"] == decisions, summary["samples"]
    assert any("409 not_accepted" in sample for sample in summary["samples"]), summary["samples"]
    assert summary["rejected"] == rejected > 0
    assert summary["taken"] + summary["unchanged"] + summary["rejected"] == count
    # What the node took reached the submitted topics (the node's outbox drained before it stopped or on restart).
    taken = {i.record_id for i in items if i.expect != REJECTED}
    landed = {rid for rid, _ in submitted_versions(kafka, taken)}
    assert landed == taken


def test_simulate_exits_non_zero_when_the_node_cannot_be_reached() -> None:
    code, summary, err = simulate(
        "--target", f"http://127.0.0.1:{free_port()}", "--count", "5", "--connect-timeout", "1"
    )
    assert code == 1
    assert summary == {}
    assert "cannot reach" in err


def test_simulate_stops_on_sigterm_with_its_summary(kafka: str) -> None:
    argv = [sys.executable, "-m", "sgs", "simulate", "--log-level", "info", "--via", "kafka"]
    argv += ["--kafka-bootstrap", kafka, "--rate", "50", "--seed", "700073"]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    head = ""
    while (
        "simulate.started" not in head
    ):  # the stream has begun (a slow start is not what this test is about)
        line = proc.stderr.readline()
        assert line, f"simulate exited early: {head}"
        head += line
    time.sleep(2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["sent"] > 0 and summary["taken"] == summary["sent"] and summary["errors"] == 0
    assert "sent" in err  # the human summary on stderr
