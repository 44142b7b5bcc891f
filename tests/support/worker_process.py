"""Run `python -m services.worker` as a real process and read what it writes, for the worker's tests."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from sgs.kafka import topics
from sgs.kafka.receipts import receipts_in
from sgs.kafka.security import kafka_settings
from sgs.serialization.codec import default_codec
from tests.support.polling import wait_until
from tests.support.service_process import ServiceProcess
from tests.support.signed import headers

OUTPUT_TOPICS = (
    *topics.ACCEPTED.values(),
    *topics.RELAY.values(),
    topics.REJECTED,
    topics.ALERTS,
)  # and every node's receipts topic


class WorkerProcess(ServiceProcess):
    """One worker process with its own app id, data dir and port; `flags` become `--flag value` options."""

    module = "services.worker"

    def __init__(self, bootstrap: str, data_dir: Path, app_id: str | None = None, **flags: Any) -> None:
        self.app_id = app_id or f"sgs-municipal-test-{uuid.uuid4().hex[:12]}"  # the worker principal's prefix
        super().__init__(f"worker-{self.app_id}", data_dir)
        self.bootstrap = bootstrap
        self.extra_flags = flags

    def flags(self) -> list[str]:
        flags = ["--app-id", self.app_id, "--kafka-bootstrap", self.bootstrap]
        flags += ["--data-dir", str(self.data_dir), "--http-port", str(self.port)]
        for name, value in self.extra_flags.items():
            flags += [f"--{name.replace('_', '-')}", str(value)]
        return flags

    def wait_ready(self, timeout_s: float = 60) -> None:
        """Until the reference bases are loaded and partitions assigned (`ready` on /healthz)."""

        def ready() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.log_tail()
            try:
                return bool(httpx.get(f"{self.url}/healthz", timeout=2).json()["ready"])
            except httpx.HTTPError:
                return False

        try:
            wait_until(ready, timeout_s, "worker ready")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.log_tail()}") from None


class Submitter:
    """Produces records as a district node would (key = record id), and reference-base changes."""

    def __init__(self, bootstrap: str) -> None:
        self.producer = KafkaProducer(**kafka_settings(bootstrap), acks="all")
        self.codec = default_codec()

    def submit(self, kind: str, *records: dict[str, Any]) -> None:
        """Send records as their district node does, in one go (one flush for all of them)."""
        schema = "sgs.LicenseRecord" if kind == "license" else "sgs.PenaltyRecord"
        for record in records:
            self.raw(
                topics.SUBMITTED[kind],
                record["envelope"]["record_id"].encode(),
                self.codec.encode(schema, record),
                signer=f"node.{record['envelope']['source_node']}",
                flush=False,
            )
        self.producer.flush()

    def decide(self, record: dict[str, Any], decision: str, decided_on: Any, **fields: Any) -> dict[str, Any]:
        """A decision on `record` (D15, D16) as the district node sends it (key = record id); returns it."""
        env = record["envelope"]
        value = {
            "record_id": env["record_id"],
            "decision": decision,
            "authority": "上海市公共信用信息服务中心",
            "authority_uscc": "12310000425014476N",
            "decided_on": decided_on,
            "note": None,
            "receipt_id": uuid.uuid4().hex,
            "source_node": env["source_node"],
            "department": env["department"],
            "submitted_at": _now(),
            **fields,
        }
        self.raw(
            topics.DECISIONS,
            env["record_id"].encode(),
            self.codec.encode("sgs.LifecycleDecision", value),
            signer=f"node.{env['source_node']}",
        )
        return value

    def raw(
        self, topic: str, key: bytes | None, value: bytes, signer: str | None = None, *, flush: bool = True
    ) -> None:
        """Send one message, signed by `signer` (issue 16), or unsigned (reference-base changes, forgeries)."""
        signed = headers(signer, topic, key, value) if signer else None
        self.producer.send(topic, key=key, value=value, headers=signed)
        if flush:
            self.producer.flush()

    def legal_person(self, uscc: str, name: str, status: str = "ACTIVE", since: Any = None) -> None:
        entry = {"uscc": uscc, "name": name, "status": status, "status_since": since, "updated_at": _now()}
        self.raw(topics.REF_LEGAL_PERSONS, uscc.encode(), self.codec.encode("sgs.LegalPerson", entry))

    def person(self, id_no: str, name: str) -> None:
        entry = {"id_no": id_no, "name": name, "updated_at": _now()}
        self.raw(topics.REF_PERSONS, id_no.encode(), self.codec.encode("sgs.Person", entry))

    def close(self) -> None:
        self.producer.close()


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


class Output:
    """One message the worker wrote: topic, key, schema name, decoded value (None when undecodable)."""

    def __init__(
        self, topic: str, key: bytes | None, raw: bytes, headers: list[tuple[str, bytes]] | None = None
    ) -> None:
        self.topic, self.key, self.raw = topic, key.decode("utf-8", "replace") if key else None, raw
        self.headers = dict(headers or [])
        try:
            self.schema, self.value = default_codec().decode(raw)
        except Exception:
            self.schema, self.value = None, None

    @property
    def record_id(self) -> str | None:
        if self.value is None:
            return None
        env = self.value.get("envelope")
        return env["record_id"] if env else self.value.get("record_id")

    @property
    def version(self) -> int | None:
        env = (self.value or {}).get("envelope")
        return env["version"] if env else (self.value or {}).get("version")


class Outputs:
    """Everything committed on the output topics and every receipts topic from the beginning (no consumer group),
    read on demand, as the sinks and the nodes read it."""

    def __init__(self, bootstrap: str) -> None:
        self.consumer = KafkaConsumer(
            **kafka_settings(bootstrap), enable_auto_commit=False, isolation_level="read_committed"
        )
        receipts = [t for t in self.consumer.topics() if t.startswith(topics.RECEIPTS_PREFIX)]
        parts = [
            TopicPartition(t, p)
            for t in (*OUTPUT_TOPICS, *receipts)
            for p in self.consumer.partitions_for_topic(t) or ()
        ]
        self.consumer.assign(parts)
        self.consumer.seek_to_beginning(*parts)
        self.messages: list[Output] = []

    def poll(self) -> None:
        for batch in self.consumer.poll(timeout_ms=300).values():
            self.messages += [Output(m.topic, m.key, m.value, m.headers) for m in batch]

    def of(self, record_ids: set[str], topic: str | None = None) -> list[Output]:
        return [m for m in self.messages if m.record_id in record_ids and (topic is None or m.topic == topic)]

    def receipts(
        self, record_ids: set[str] | None = None, receipt_id: str | None = None
    ) -> list[dict[str, Any]]:
        """The receipts read (of `record_ids`, or the one `receipt_id` names; default all), in the order read, a
        message of several (`sgs.Receipts`, issue 14) as its receipts, each checked to be on its source node's
        topic. Only these are checked: other tests write junk and misplaced receipts to the shared topics on
        purpose."""
        found = [
            (m.topic, r)
            for m in self.receipt_messages()
            for r in receipts_in(str(m.schema), m.value or {}) or ()
            if (record_ids is None or r["record_id"] in record_ids)
            and (receipt_id is None or r["receipt_id"] == receipt_id)
        ]
        for topic, r in found:
            assert topic == topics.receipts_topic(r["source_node"]), topic
        return [r for _, r in found]

    def receipt_messages(self) -> list[Output]:
        """The messages read on the receipts topics."""
        return [
            m for m in self.messages if m.topic.startswith(topics.RECEIPTS_PREFIX) and m.value is not None
        ]

    def wait(self, predicate: Callable[[], bool], timeout_s: float = 60, what: str = "") -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.poll()
            if predicate():
                return
        raise AssertionError(f"timed out waiting for {what or predicate}")

    def read_to_end(self, timeout_s: float = 60) -> None:
        """Read on until every output partition's end as of now (for a committed reader, its last stable offset):
        whatever the worker committed before the call is then in `messages`. A receipt read does not say that the
        messages sent with it on other partitions were read, or even sent (each partition's batch leaves the
        producer on its own linger): wait for those, then read to the end to catch any sent with them."""
        ends = self.consumer.end_offsets(list(self.consumer.assignment()))
        self.wait(
            lambda: all(self.consumer.position(tp) >= end for tp, end in ends.items()),
            timeout_s,
            "the output topics read to their end",
        )

    def close(self) -> None:
        self.consumer.close()
