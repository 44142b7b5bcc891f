"""A message the broker can never take is parked, not retried for ever: everything behind it flows on, /healthz and
/metrics say so, and an operator lists, resends and drops it with `sgs node parked` (issue 17)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from services.node.store import Candidate, NodeStore, now_ms
from sgs.config import Federation
from sgs.kafka.topics import MAX_MESSAGE_BYTES
from tests.support.node_process import NodeProcess, submitted_versions
from tests.support.node_records import clean
from tests.support.polling import wait_until

DISTRICT = "310115"


def parked_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sgs", "node", "parked", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_never_sendable_message_is_parked_and_everything_after_it_flows(
    kafka: str, federation: Federation, tmp_path: Path
) -> None:
    # A message over the broker's limit at the head of the outbox, as a store written before the intake bounds
    # (or any bug) could hold: the sender must not retry it for ever.
    store = NodeStore(tmp_path / "outbox.db")
    with store.transaction() as tx:
        tx.admit(
            Candidate(
                receipt_id="poison-receipt",
                record_id="penalty:POISON:too-large",
                version=1,
                kind="penalty",
                node=DISTRICT,
                department="d-poison",
                content_hash="x",
                payload=b"\0" * (MAX_MESSAGE_BYTES + 1),
                submitted_at=now_ms(),
            )
        )
    store.close()
    node = NodeProcess(kafka, tmp_path).start()
    try:
        items = clean(federation, 20, DISTRICT, kind="penalty")
        token = items[0].department.dev_token
        with httpx.Client(base_url=node.url, timeout=30) as client:
            for item in items:
                r = client.post(
                    "/v1/records/penalty", json=item.http_body(), headers={"Authorization": f"Bearer {token}"}
                )
                if item.department.dev_token == token:
                    assert r.status_code == 202, r.text
        mine = {i.record_id for i in items if i.department.dev_token == token}
        assert {rid for rid, _ in submitted_versions(kafka, mine, timeout_s=60)} == mine
        wait_until(lambda: node.metric("sgs_node_parked", district=DISTRICT) == 1, 30, "the poison parked")
        assert node.metric("sgs_node_messages_parked_total", reason="MessageSizeTooLargeError") == 1
        wait_until(lambda: node.metric("sgs_node_outbox_depth") == 0, 30, "the outbox drained behind it")
        health = httpx.get(f"{node.url}/healthz").json()
        assert health["status"] == "degraded" and health["parked"] == 1
        assert health["broker_connected"] is True  # not the cause: the message is
        assert any("sgs node parked list" in p for p in health["problems"])

        listed = parked_cli(tmp_path, "list")
        assert listed.returncode == 0, listed.stderr
        (line,) = listed.stdout.splitlines()
        seq = line.split("\t")[0]
        assert "poison-receipt" in line and "MessageSizeTooLargeError" in line

        # resend: back in the outbox, refused again, parked again (the cause was not fixed)
        assert parked_cli(tmp_path, "resend", seq).returncode == 0
        wait_until(lambda: "poison-receipt" in parked_cli(tmp_path, "list").stdout, 30, "parked again")
        seq = parked_cli(tmp_path, "list").stdout.split("\t")[0]
        assert parked_cli(tmp_path, "drop", "999999").returncode == 2  # unknown: nothing done
        dropped = parked_cli(tmp_path, "drop", seq)
        assert dropped.returncode == 0 and dropped.stdout.strip() == f"dropped 1: {seq}"
        assert node.metric("sgs_node_parked", district=DISTRICT) == 0
        assert httpx.get(f"{node.url}/healthz").json()["status"] == "ok"

        store = NodeStore(tmp_path / "outbox.db")
        view = store.receipt("poison-receipt")
        store.close()
        assert view is not None and view.status == "DROPPED"
        assert [e["status"] for e in view.history] == ["RECEIVED", "PARKED", "RESENT", "PARKED", "DROPPED"]
        assert node.stop() == 0
    finally:
        node.stop()
