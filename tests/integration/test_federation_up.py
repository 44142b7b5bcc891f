"""The walking skeleton, through real processes started by `sgs up` (issue 2): a penalty submitted to a district
node arrives in the national sink's store with its content intact, the node can tell its sender it was relayed,
the totals line moves, and Ctrl-C stops everything, leaving no process and no bound port."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from sgs.kafka.launch import free_port
from simulators.generator import FaultMix, Generator

READY_LINE = "Ctrl-C stops everything"
pytestmark = pytest.mark.usefixtures("engine")  # `sgs up` runs on the session's engine (SGS_ENGINE)
TIERS = ("provincial", "national")


class Up:
    """`sgs up` as a child process, its stdout collected line by line."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.ports = {
            name: free_port() for name in ("node", "worker", "provincial", "national", "lag-exporter")
        }
        env = {k: v for k, v in os.environ.items() if k != "SGS_KAFKA_BOOTSTRAP"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sgs", "up", "--rate", "0", "--status-interval", "1",
             "--data-dir", str(data_dir), *(f"--{name}-port={port}" for name, port in self.ports.items())],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        self.lines: list[str] = []
        self.errors: list[str] = []
        threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self.errors), daemon=True).start()

    @staticmethod
    def _read(stream, into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    def wait_for(self, predicate, timeout_s: float, what: str):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(
                    f"sgs up exited ({self.proc.returncode}) while waiting for {what}: {self.errors[-20:]}"
                )
            value = predicate()
            if value:
                return value
            time.sleep(0.5)
        pytest.fail(f"timed out waiting for {what}; stdout: {self.lines[-10:]}")

    def child_pids(self) -> list[int]:
        pids = []
        for line in self.errors:
            if '"child.started"' in line:
                pids.append(json.loads(line)["pid"])
        return pids


def _ready(running: Up) -> Up:
    running.wait_for(lambda: any(READY_LINE in line for line in running.lines), 180, "the ready banner")
    return running


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    running = Up(tmp_path_factory.mktemp("up") / "var")
    try:
        yield _ready(running)
    finally:
        if running.proc.poll() is None:
            running.proc.kill()
            running.proc.wait()


def _clean_penalty(federation, district="310115", seed=424242):
    """A legal person's general-procedure penalty that every rule lets through to the national sink."""
    gen = Generator(federation, seed=seed, faults=FaultMix.none(), districts=[district], penalty_share=1.0)
    for item in gen.take(200):
        if (
            item.kind == "penalty"
            and item.expect == "relayed"
            and item.record["counterpart"]["category"] == "LEGAL_PERSON"
            and item.record["procedure"] == "GENERAL"
            and item.record["fine_amount"] is not None
        ):
            return item
    raise AssertionError("the generator made no clean legal-person penalty in 200 tries")


def test_penalty_travels_from_district_node_to_national_sink_and_back(up, federation):
    item = _clean_penalty(federation)
    node = f"http://127.0.0.1:{up.ports['node']}"
    auth = {"Authorization": f"Bearer {item.department.dev_token}"}
    answer = httpx.post(f"{node}/v1/records/penalty", json=item.http_body(), headers=auth, timeout=10)
    assert answer.status_code == 202, answer.text
    receipt_id = answer.json()["receipt_id"]

    national = f"http://127.0.0.1:{up.ports['national']}/v1/records/{item.record_id}"

    def arrived():
        reply = httpx.get(national, timeout=5)
        return reply.json() if reply.status_code == 200 else None

    held = up.wait_for(arrived, 90, "the record in the national sink")
    assert held["record_id"] == item.record_id
    assert held["decision_doc_no"] == item.record["decision_doc_no"]
    assert held["counterpart_name"] == item.record["counterpart"]["name"]
    stored = held["record"]
    for field in ("violation_type", "violation_facts", "legal_basis", "penalty_content", "authority"):
        assert stored[field] == item.record[field], field
    assert Decimal(str(stored["fine_amount"])) == item.record["fine_amount"]
    assert stored["counterpart"]["uscc"] == item.record["counterpart"]["uscc"]

    def relayed():
        # the two sinks are separate processes: either tier's receipt may reach the node first
        reply = httpx.get(f"{node}/v1/receipts/{receipt_id}", headers=auth, timeout=5).json()
        tiers = {"RELAYED_PROVINCIAL", "RELAYED_NATIONAL"}
        return reply if tiers <= {step["status"] for step in reply["history"]} else None

    receipt = up.wait_for(relayed, 60, "both tiers' RELAYED receipts at the node")
    assert {"RECEIVED", "SENT", "ACCEPTED"} <= {s["status"] for s in receipt["history"]}
    assert receipt["status"] == "RELAYED_NATIONAL"  # the furthest, whichever came last


def _csv(rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def test_a_template_file_with_the_envelope_columns_revokes_a_record_end_to_end(up, federation):
    """Issue 15: a plain template file publishes a record (version 1, 新增); a file with 版本号 2 and 操作类型 撤销
    revokes it (D4): both sinks withdraw it and the department's receipt of the revocation says so."""
    item = _clean_penalty(federation, seed=151515)  # not the record the test above sent
    node = f"http://127.0.0.1:{up.ports['node']}"
    auth = {"Authorization": f"Bearer {item.department.dev_token}", "Content-Type": "text/csv"}
    row = item.row()
    first = httpx.post(f"{node}/v1/files/penalty", content=_csv([row]), headers=auth, timeout=30)
    assert first.status_code == 202, first.text
    sinks = {tier: f"http://127.0.0.1:{up.ports[tier]}/v1/records/{item.record_id}" for tier in TIERS}
    up.wait_for(
        lambda: httpx.get(sinks["national"], timeout=5).status_code == 200, 90, "the record published"
    )

    revoke = {**row, "版本号": "2", "操作类型": "撤销", "公示时间": ""}
    second = httpx.post(f"{node}/v1/files/penalty", content=_csv([revoke]), headers=auth, timeout=30)
    assert second.status_code == 202, second.text
    (result,) = second.json()["results"]
    assert (result["status"], result["row"]) == ("taken", 2)

    def withdrawn_everywhere():
        return all(httpx.get(url, timeout=5).status_code == 404 for url in sinks.values())

    up.wait_for(withdrawn_everywhere, 90, "the record withdrawn at both sinks")

    def withdrawn_details(reply):
        return [step.get("detail") or "" for step in reply["history"] if step["status"] == "WITHDRAWN"]

    def receipt_says_withdrawn_by_both_sinks():
        # A sink answers 404 before its receipt has travelled back to the node, so wait for both receipts.
        reply = httpx.get(f"{node}/v1/receipts/{result['receipt_id']}", headers=auth, timeout=5).json()
        return reply if reply["status"] == "WITHDRAWN" and len(withdrawn_details(reply)) == 2 else None

    receipt = up.wait_for(
        receipt_says_withdrawn_by_both_sinks, 60, "both sinks' WITHDRAWN receipts of the revocation"
    )
    assert receipt["version"] == 2
    assert all("决定已撤销" in detail for detail in withdrawn_details(receipt))


def test_an_oversized_record_is_refused_at_intake_and_blocks_no_other_district(up, federation):
    """Issue 17: a 1.2 MB 违法事实 was taken (under the 16 MiB body limit), refused by the producer and retried for
    ever, stopping every district's records. Now it is refused at intake with its rule, and the next record, from
    another district, reaches the national sink."""
    node = f"http://127.0.0.1:{up.ports['node']}"
    big = _clean_penalty(federation, "310101", seed=171717)
    body = big.http_body()
    body["违法事实"] = "违" * 400_000  # 1.2 MB of UTF-8
    auth = {"Authorization": f"Bearer {big.department.dev_token}"}
    answer = httpx.post(f"{node}/v1/records/penalty", json=body, headers=auth, timeout=30)
    assert answer.status_code == 422, answer.text
    (reason,) = answer.json()["errors"]
    assert reason["rule"] == "text.too_long" and "5000" in reason["message"]

    item = _clean_penalty(federation, "310115", seed=171718)
    assert item.department.node != big.department.node
    auth = {"Authorization": f"Bearer {item.department.dev_token}"}
    answer = httpx.post(f"{node}/v1/records/penalty", json=item.http_body(), headers=auth, timeout=10)
    assert answer.status_code == 202, answer.text
    national = f"http://127.0.0.1:{up.ports['national']}/v1/records/{item.record_id}"
    up.wait_for(
        lambda: httpx.get(national, timeout=5).status_code == 200, 90, "the next record in the national sink"
    )
    health = httpx.get(f"{node}/healthz", timeout=5).json()
    assert health["parked"] == 0, health


def test_totals_line_counts_what_went_through(up):
    def counted():
        for line in reversed(up.lines):
            if line.startswith("submitted ") and not line.startswith("submitted 0 "):
                return line
        return None

    line = up.wait_for(counted, 60, "a totals line with a submission")
    for column in ("accepted", "rejected", "late", "relayed provincial", "relayed national"):
        assert column in line


def test_a_normal_start_prints_no_error_line(up):
    """Issue 12: while the broker starts, clients wait quietly (kafka-python logs each refused connection at
    ERROR); an error line at start-up means something is wrong, so a normal start shows none."""
    errors = [line for line in up.lines + up.errors if '"level": "error"' in line or " ERROR " in line]
    assert errors == []


def test_ctrl_c_stops_every_process_and_frees_every_port(up):
    pids = up.child_pids()
    assert len(pids) == 5  # two sinks, the worker, the node, the lag exporter (no simulator at --rate 0)
    up.proc.send_signal(signal.SIGINT)
    assert up.proc.wait(60) == 0, up.errors[-20:]
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    for port in up.ports.values():
        with socket.socket() as s:
            # SO_REUSEADDR ignores closed connections in TIME_WAIT but still fails on a listening socket.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))


@pytest.mark.engine("kafka")
def test_a_second_up_finds_the_first_runs_records_still_in_the_cluster(up):
    """Issue 13: Apache Kafka keeps its log under `--data-dir`, so `sgs up` started again there finds what the
    first run was sent by the tests above (the banner counts it) and stops cleanly on Ctrl-C again."""
    if up.proc.poll() is None:  # the test above stops the first run; alone, this one does
        up.proc.send_signal(signal.SIGINT)
        assert up.proc.wait(60) == 0, up.errors[-20:]
    again = Up(up.data_dir)
    try:
        _ready(again)
        kept = [line for line in again.lines if "kept from before:" in line]
        assert kept, again.lines
        assert int(kept[0].split(":")[1].split()[0].replace(",", "")) >= 1
        again.proc.send_signal(signal.SIGINT)
        assert again.proc.wait(60) == 0, again.errors[-20:]
    finally:
        if again.proc.poll() is None:
            again.proc.kill()
            again.proc.wait()
