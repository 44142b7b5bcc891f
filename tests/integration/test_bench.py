"""`sgs bench` end to end: its own embedded broker, the real node, worker and sinks; a clean small run accounts for
every record, and a sink killed for good mid-run makes the reconciliation fail with exit 1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

BENCH = [sys.executable, "-m", "sgs", "bench", "--unknown-subject-hold-s", "3", "--stall-timeout", "20"]


def _env() -> dict[str, str]:
    # the bench starts its own broker unless told otherwise; the session's test broker is not for it
    return {k: v for k, v in os.environ.items() if not k.startswith("SGS_")}


def test_small_bench_accounts_for_every_record_and_writes_its_figures(tmp_path: Path):
    out = tmp_path / "out"
    done = subprocess.run(
        [
            *BENCH,
            "--records",
            "300",
            "--data-dir",
            str(tmp_path / "var"),
            "--out",
            str(out),
            "--timeout",
            "600",
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=660,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    for key in (
        "records",
        "raw_records_per_s",
        "e2e_records_per_s",
        "ratio",
        "lost",
        "duplicated",
        "latency_s",
    ):
        assert key in results, key
    assert results["records"] == 300
    assert results["lost"] == 0 and results["duplicated"] == 0
    assert results["settled"] == 300
    assert results["raw_records_per_s"] > 0 and results["e2e_records_per_s"] > 0
    assert results["ratio"] == round(results["e2e_records_per_s"] / results["raw_records_per_s"], 4)
    for tier in ("provincial", "national"):
        lat = results["latency_s"][tier]
        assert lat["p50"] is not None and 0 < lat["p50"] <= lat["p95"] <= lat["p99"]
    assert results["machine"]["cpus"] >= 1
    # where the time goes: every process that handled the records used CPU for them
    cpu = results["cpu_ms_per_record"]
    assert {"node", "worker", "provincial-sink", "national-sink", "broker", "bench"} <= set(cpu)
    assert all(cpu[name] > 0 for name in ("node", "worker", "provincial-sink", "national-sink"))
    assert "CPU ms per record" in done.stderr
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "LOST 0" in done.stderr


def test_a_sink_stopped_for_good_mid_run_fails_the_reconciliation(tmp_path: Path):
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [*BENCH, "--records", "300", "--rate", "60", "--data-dir", str(tmp_path / "var"), "--out", str(out)],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)  # type: ignore[arg-type]
    reader.start()

    def events() -> list[dict]:
        found = []
        for line in list(lines):
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except ValueError:
                    continue
        return found

    deadline = time.monotonic() + 300
    sink = feeding = None
    while time.monotonic() < deadline and proc.poll() is None:
        logged = events()
        sink = next(
            (e for e in logged if e.get("event") == "child.started" and e["child"] == "national-sink"), None
        )
        feeding = next((e for e in logged if e.get("event") == "bench.feed_started"), None)
        if sink and feeding:
            break
        time.sleep(0.2)
    assert sink is not None and feeding is not None, "".join(lines[-20:])
    time.sleep(1.0)  # some records on their way: the sink dies mid-run, not before it
    os.kill(sink["pid"], signal.SIGKILL)

    assert proc.wait(400) == 1, "".join(lines[-30:])
    reader.join(5)
    results = json.loads((out / "results.json").read_text())
    assert results["status"] == "failed"
    assert results["lost"] > 0
    assert results["duplicated"] == 0
    assert any("national" in s for s in results["reconciliation"]["samples"])
    assert "LOST" in "".join(lines) and "national-sink exited" in "".join(lines)
