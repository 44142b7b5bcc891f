"""Drive the federation with generated decisions: through the district nodes' HTTP API, as departments do, or
straight onto the submitted topics, as a node does; at a target rate or as fast as possible.

Per-record order matters (an update must not overtake its original, D4): every request of one department goes
through the same connection worker, and in Kafka mode the key (record id) keeps every version in one partition.
Decisions on records (D15, D16) go only through the HTTP API: the node takes one once the municipal platform
accepted its record, which a producer straight onto Kafka cannot know (simulators/decisions.py).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sgs.domain.kinds import SCHEMA_NAME
from sgs.domain.records import to_json
from sgs.domain.workdays import china_date
from sgs.kafka.topics import SUBMITTED
from sgs.serialization.codec import default_codec
from sgs.serialization.signing import Signer
from simulators.decisions import DecisionLane, observed_outcome
from simulators.generator import APPLIED, DUPLICATE, REJECTED, Decision, Generator, Submission

# What the node answers for each expectation (services/node/intake.py): the rest are "taken".
NODE_STATUS_FOR = {REJECTED: "rejected", DUPLICATE: "unchanged"}
SAMPLES = 5


class TargetUnreachable(Exception):
    """The node or the broker cannot be reached at all: nothing was sent."""


@dataclass
class Summary:
    """What a run did, for the person watching and for scripts (`as_dict`)."""

    via: str
    seed: int
    generated: int = 0
    sent: int = 0  # records handed over (posted, or produced)
    taken: int = 0  # HTTP: taken by the node; Kafka: acknowledged by the broker
    unchanged: int = 0  # HTTP: the same version again (D4)
    rejected: int = 0  # HTTP: rejected by the node (D12)
    forbidden: int = 0  # HTTP: another authority's record
    errors: int = 0  # records whose fate is unknown: transport errors, unexpected answers
    rules: Counter[str] = field(default_factory=Counter)  # rejection rule ids
    expected: Counter[str] = field(default_factory=Counter)  # expectations of what was sent
    surprises: int = 0  # HTTP: a record's or a decision's outcome differs from its expectation
    decisions: Counter[str] = field(default_factory=Counter)  # HTTP: sent, applied, refused, lost (D15, D16)
    samples: list[str] = field(default_factory=list)  # a few errors and surprises, to start a diagnosis
    started: float = field(default_factory=time.monotonic)
    elapsed_s: float = 0.0

    def note(self, text: str) -> None:
        if len(self.samples) < SAMPLES:
            self.samples.append(text)

    def finish(self) -> Summary:
        self.elapsed_s = time.monotonic() - self.started
        return self

    def as_dict(self) -> dict[str, Any]:
        return {
            "via": self.via,
            "seed": self.seed,
            "generated": self.generated,
            "sent": self.sent,
            "taken": self.taken,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "forbidden": self.forbidden,
            "errors": self.errors,
            "top_rules": dict(self.rules.most_common(10)),
            "expected": dict(self.expected),
            "surprises": self.surprises,
            "decisions": dict(self.decisions),
            "samples": self.samples,
            "elapsed_s": round(self.elapsed_s, 3),
            "records_per_s": round(self.sent / self.elapsed_s, 1) if self.elapsed_s else None,
        }

    def render(self) -> str:
        d = self.as_dict()
        accepted = "acknowledged by the broker" if self.via == "kafka" else "taken by the node"
        lines = [
            f"sent {d['sent']} records in {d['elapsed_s']} s ({d['records_per_s']} records/s), seed {self.seed}",
            f"  {accepted}: {self.taken}",
        ]
        if self.via == "http":
            lines.append(f"  unchanged (same version again): {self.unchanged}")
            rules = ", ".join(f"{rule} {n}" for rule, n in self.rules.most_common(5)) or "-"
            lines.append(f"  rejected by the node: {self.rejected} (top rules: {rules})")
            if self.forbidden:
                lines.append(f"  forbidden: {self.forbidden}")
            if self.decisions:
                d = self.decisions
                lines.append(
                    f"  decisions on records: sent {d['sent']}, applied {d['applied']}, refused {d['refused']}, "
                    f"lost {d['lost']}"
                )
            lines.append(f"  outcomes other than expected: {self.surprises}")
        lines.append(f"  errors: {self.errors}")
        lines.append("  expected: " + ", ".join(f"{k} {v}" for k, v in sorted(self.expected.items())))
        lines += [f"  e.g. {s}" for s in self.samples]
        return "\n".join(lines)


class Pace:
    """Spreads sends evenly at `rate` records/s (0: as fast as possible), catching up after a stall."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.start = time.monotonic()
        self.count = 0

    def delay(self) -> float:
        """Seconds to wait before the next record."""
        if self.rate <= 0:
            return 0.0
        due = self.start + self.count / self.rate
        self.count += 1
        return max(0.0, due - time.monotonic())


def stream(
    generator: Generator, count: int | None, duration: float | None, stopped: Callable[[], bool]
) -> Iterator[Submission]:
    """Items until `count`, `duration` seconds, or a stop; the generator's day follows the clock (Beijing)."""
    deadline = time.monotonic() + duration if duration else None
    checked = 0.0
    n = 0
    while (count is None or n < count) and not stopped():
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            return
        if now - checked >= 1.0:
            checked = now
            today = china_date(datetime.now(UTC))
            if today != generator.today:
                generator.today = today
        n += 1
        yield generator.next()


# --- Kafka: as a node would --------------------------------------------------------------------------------------


# Receipt and trace ids: 32 hex digits like the node's uuid4().hex, from a random per-process prefix and a
# counter, because two uuid4 calls per record cost as much as generating the record.
_ID_PREFIX = uuid.uuid4().hex[:16]
_ID_COUNTER = itertools.count()


def _new_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


def node_envelope(item: Submission, submitted_at: datetime) -> dict[str, Any]:
    """The `sgs.Envelope` a district node puts on a record it takes (services/node/intake.py)."""
    return {
        "record_id": item.record_id,
        "version": item.version,
        "operation": item.operation,
        "kind": item.kind.upper(),
        "source_node": item.node,
        "department": item.department.id,
        "division_code": item.node,
        "decided_on": item.decided_on,
        "published_at": item.published_at,
        "submitted_at": submitted_at,
        "receipt_id": _new_id(),
        "trace_id": _new_id(),
    }


def encode_submitted(item: Submission, submitted_at: datetime | None = None) -> bytes:
    """The bytes a node produces to `sgs.submitted.<kind>` for `item`."""
    envelope = node_envelope(item, submitted_at or datetime.now(UTC))
    return default_codec().encode(
        SCHEMA_NAME[item.kind], {**item.record, "envelope": envelope, "annotations": None}
    )


def drive_kafka(
    generator: Generator,
    bootstrap: str,
    *,
    count: int | None,
    duration: float | None,
    rate: float,
    stop: threading.Event,
    signers: Mapping[str, Signer],
    progress: Callable[[int], Any] = lambda n: None,
) -> Summary:
    """Produce every item, invalid ones and duplicates included (as an old or foreign node might: the workers
    validate and deduplicate again), Avro single-object, key = record id, acks=all, signed with the key of the
    item's node (`signers`: node code -> its key, issue 16)."""
    from kafka.errors import KafkaError

    from sgs.kafka.admin import ensure_federation_topics
    from sgs.kafka.producer import durable_producer

    summary = Summary("kafka", seed=generator.seed)
    try:
        ensure_federation_topics(bootstrap, generator.federation)
        producer = durable_producer(
            bootstrap,
            max_block_ms=10_000,
            bootstrap_timeout_ms=5_000,
        )
    except (KafkaError, OSError) as exc:
        raise TargetUnreachable(f"Kafka at {bootstrap}: {exc}") from None
    lock = threading.Lock()

    def acked(_: Any) -> None:
        with lock:
            summary.taken += 1

    def failed(exc: BaseException) -> None:
        with lock:
            summary.errors += 1
            summary.note(f"produce failed: {exc}")

    pace = Pace(rate)
    try:
        for item in stream(generator, count, duration, stop.is_set):
            summary.generated += 1
            wait = pace.delay()
            if wait and stop.wait(wait):
                break
            try:
                topic, key, value = SUBMITTED[item.kind], item.record_id.encode(), encode_submitted(item)
                headers = signers[item.department.node].headers(topic, key, value)
                future = producer.send(topic, key=key, value=value, headers=headers)
            except KafkaError as exc:
                failed(exc)
                continue
            future.add_callback(acked)
            future.add_errback(failed)
            summary.sent += 1
            summary.expected[item.expect] += 1
            progress(1)
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=5)
    return summary.finish()


# --- HTTP: as departments do -------------------------------------------------------------------------------------


@dataclass
class _Request:
    kind: str
    token: str
    items: list[Submission]


async def drive_http(
    generator: Generator,
    target: str,
    *,
    count: int | None,
    duration: float | None,
    rate: float,
    batch: int,
    concurrency: int,
    stop: threading.Event,
    progress: Callable[[int], Any] = lambda n: None,
    linger_s: float = 0.5,
    timeout_s: float = 30.0,
    connect_timeout_s: float = 10.0,
    decision_wait_s: float = 300.0,
) -> Summary:
    """POST each item (or batches of up to `batch` records of one department and kind) to
    `{target}/v1/records/{kind}` with the department's token, over a pool of `concurrency` connections; the
    decisions of an item the node took go on a `DecisionLane`, and the run ends when they are settled too."""
    import httpx

    summary = Summary("http", seed=generator.seed)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=target.rstrip("/"), limits=limits, timeout=timeout_s) as client:
        deadline = time.monotonic() + connect_timeout_s
        while True:  # a node started alongside (sgs up) may need a moment before it answers
            try:
                (await client.get("/healthz")).raise_for_status()
                break
            except httpx.HTTPError as exc:
                if time.monotonic() >= deadline or stop.is_set():
                    raise TargetUnreachable(f"node at {target}: {exc}") from None
                await asyncio.sleep(0.5)
        lane = DecisionLane(target.rstrip("/"), stop, wait_s=decision_wait_s)
        lane_thread = lane.start()
        decided: list[Decision] = []
        queues: list[asyncio.Queue[_Request | None]] = [asyncio.Queue(maxsize=4) for _ in range(concurrency)]
        workers = [
            asyncio.create_task(_post_worker(client, q, summary, progress, lane, decided)) for q in queues
        ]
        buffers: dict[tuple[str, str], tuple[float, list[Submission]]] = {}

        async def flush(key: tuple[str, str]) -> None:
            _, items = buffers.pop(key)
            department = items[0].department
            # One worker per department keeps each department's requests, and so each record's versions, in order.
            queue = queues[hash(department.id) % concurrency]
            await queue.put(_Request(key[1], department.dev_token, items))

        pace = Pace(rate)
        for item in stream(generator, count, duration, stop.is_set):
            summary.generated += 1
            wait = pace.delay()
            while wait > 0 and not stop.is_set():  # short naps: a signal handler only sets the event
                await asyncio.sleep(min(wait, 0.2))
                wait -= 0.2
            if stop.is_set():
                break
            key = (item.department.id, item.kind)
            buffers.setdefault(key, (time.monotonic(), []))[1].append(item)
            if len(buffers[key][1]) >= batch:
                await flush(key)
            if batch > 1:
                now = time.monotonic()
                for stale in [k for k, (since, _) in buffers.items() if now - since >= linger_s]:
                    await flush(stale)
        for key in list(buffers):
            await flush(key)
        for q in queues:
            await q.put(None)
        await asyncio.gather(*workers)
        lane.close()
        await asyncio.to_thread(lane_thread.join)
    _count_decisions(summary, decided, lane)
    return summary.finish()


def _count_decisions(summary: Summary, decided: list[Decision], lane: DecisionLane) -> None:
    """Each decision of the items sent, against what it should have become."""
    for decision in decided:
        summary.decisions["sent"] += 1
        seen = lane.outcomes.get(decision.key)
        outcome = observed_outcome(seen)
        if outcome is None:
            summary.decisions["lost"] += 1
            summary.surprises += 1
            why = seen.error if seen and seen.error else "its record was not taken"
            summary.note(f"decision {decision.decision} on {decision.record_id} lost: {why}")
            continue
        summary.decisions["applied" if outcome == APPLIED else "refused"] += 1
        if outcome != decision.expect:
            summary.surprises += 1
            summary.note(
                f"decision {decision.decision} on {decision.record_id}: {outcome}, not {decision.expect}"
            )


async def _post_worker(
    client: Any,
    queue: asyncio.Queue[_Request | None],
    summary: Summary,
    progress: Callable[[int], Any],
    lane: DecisionLane,
    decided: list[Decision],
) -> None:
    import httpx

    while (request := await queue.get()) is not None:
        single = len(request.items) == 1
        body: Any = request.items[0].http_body() if single else [i.http_body() for i in request.items]
        try:
            while True:
                response = await client.post(
                    f"/v1/records/{request.kind}",
                    json=to_json(body),
                    headers={"Authorization": f"Bearer {request.token}"},
                )
                if response.status_code != 429:  # over the department's fair share: wait as told, then again
                    break
                await asyncio.sleep(float(response.headers.get("retry-after", "1")))
            answer = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            summary.sent += len(request.items)
            summary.errors += len(request.items)
            summary.note(f"POST /v1/records/{request.kind}: {type(exc).__name__}: {exc}")
            progress(len(request.items))
            await asyncio.sleep(1.0)  # the node may be restarting: do not spin
            continue
        results = (
            [answer] if single and isinstance(answer, dict) and "status" in answer else answer.get("results")
        )
        if not isinstance(results, list) or len(results) != len(request.items):
            summary.sent += len(request.items)
            summary.errors += len(request.items)
            summary.note(f"HTTP {response.status_code}: {str(answer)[:200]}")
            progress(len(request.items))
            continue
        for item, result in zip(request.items, results, strict=True):
            _record_outcome(summary, item, result)
            decided.extend(item.decisions)
            if item.decisions and result.get("status") == "taken":
                lane.add(item)
        progress(len(request.items))


def _record_outcome(summary: Summary, item: Submission, result: dict[str, Any]) -> None:
    summary.sent += 1
    summary.expected[item.expect] += 1
    status = result.get("status")
    if status == "taken":
        summary.taken += 1
    elif status == "unchanged":
        summary.unchanged += 1
    elif status == "rejected":
        summary.rejected += 1
        for error in result.get("errors", []):
            summary.rules[str(error.get("rule"))] += 1
    elif status == "forbidden":
        summary.forbidden += 1
    else:
        summary.errors += 1
        summary.note(f"{item.record_id}: unexpected answer {str(result)[:200]}")
        return
    if status != NODE_STATUS_FOR.get(item.expect, "taken"):
        summary.surprises += 1
        summary.note(
            f"{item.record_id} v{item.version} expected {item.expect}, node said {str(result)[:300]}"
        )
