"""The run behind `sgs bench` (flags and the method in `simulators/bench/cli.py`).

Everything sent is generated and encoded before any clock starts: the raw pass-through gets the Avro bytes a node
would produce for each record, the end-to-end run gets ready JSON bodies of `--batch` records of one department and
kind. Records enter the federation through the district node's HTTP API — the truest "from the district node" —
on `--concurrency` connections; every request of one department goes through one connection, in order, so an
update never overtakes its original (D4). Decisions on records (D15, D16) go on a lane of their own
(`simulators/decisions.py`), each handed over once its record is in the provincial store, so accepted.
"""

from __future__ import annotations

import argparse
import functools
import json
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import structlog
from tqdm import tqdm

from sgs.config import TIERS, Federation, load_config, store_url
from sgs.domain.records import to_json
from sgs.kafka.admin import prepare_cluster
from sgs.kafka.engines import RunningEngine, engine_of, start_engine
from sgs.kafka.kraft import KraftCluster
from sgs.kafka.launch import BrokerError, free_port
from sgs.kafka.security import kafka_settings
from sgs.kafka.topics import REJECTED as REJECTED_TOPIC
from sgs.logs import configure_logging
from sgs.ops.chaos import local as chaos_local
from sgs.ops.chaos.schedule import Runner, ScheduleError, check_supported, describe, schedule_from_args
from sgs.ops.supervisor import (
    Child,
    StartFailed,
    child_env,
    cpu_seconds,
    federation_children,
    kafka_certs,
    load_refbase,
    start_children,
    stop_all,
)
from simulators.bench.accounting import (
    Expectation,
    Held,
    NodeTimings,
    Row,
    account,
    read_node_timings,
    read_sink,
    settled,
    sink_stores,
)
from simulators.bench.raw import raw_pass_through
from simulators.bench.report import machine, percentiles, plot, render
from simulators.decisions import DecisionLane
from simulators.driver import encode_submitted
from simulators.generator import FaultMix, Generator, Submission

if TYPE_CHECKING:
    from services.sink.store import SinkStore

# A progress poll reads again the rows stamped this long before the previous poll began: a sink stamps a row
# (`received_at`, `withdrawn_at`) before its transaction commits, and applies up to 500 messages in one.
POLL_OVERLAP_S = 30.0
NODE_FINAL = ("rejected", "unchanged", "forbidden")  # answers after which the node sends nothing on


@dataclass
class Request:
    """One ready POST: `items` are indexes into the generated list, in body order."""

    kind: str
    token: str
    body: bytes
    items: list[int]


def build_requests(items: list[Submission], batch: int, lanes: int) -> list[list[Request]]:
    """Batches of one department and kind, in generation order, split over `lanes` connections by department."""
    departments = sorted({item.department.id for item in items})
    lane_of = {dept: i % lanes for i, dept in enumerate(departments)}
    out: list[list[Request]] = [[] for _ in range(lanes)]
    buffers: dict[tuple[str, str], list[int]] = {}

    def flush(key: tuple[str, str]) -> None:
        indexes = buffers.pop(key)
        first = items[indexes[0]]
        body = json.dumps(to_json([items[i].http_body() for i in indexes]), ensure_ascii=False).encode()
        out[lane_of[first.department.id]].append(
            Request(first.kind, first.department.dev_token, body, indexes)
        )

    for i, item in enumerate(items):
        key = (item.department.id, item.kind)
        buffers.setdefault(key, []).append(i)
        if len(buffers[key]) >= batch:
            flush(key)
    for key in list(buffers):
        flush(key)
    return out


def send_times(lanes: list[list[Request]], rate: float) -> list[list[float]]:
    """Seconds after the start at which each lane posts each of its requests: `rate` records/s in all, each lane
    its share, a request at the start of the interval its records fill. The lanes are out of step, lane i starting
    i/len(lanes) of its first interval late: in step, every lane posted at the same instants, so `--rate 500` with
    4 lanes of 200-record requests offered 800 records at once every 1.6 s rather than 200 every 0.4 s."""
    if rate <= 0:
        return [[0.0] * len(requests) for requests in lanes]
    share = rate / len(lanes)
    times: list[list[float]] = []
    for index, requests in enumerate(lanes):
        sent = index / len(lanes) * len(requests[0].items) if requests else 0.0
        times.append([])
        for request in requests:
            times[-1].append(sent / share)
            sent += len(request.items)
    return times


def cpu_snapshot(children: list[Child], broker: RunningEngine | None) -> dict[str, float]:
    """CPU seconds used so far by each federation process, the broker(s) started here and this process (the
    load)."""
    pids = {c.name: c.proc.pid for c in children if c.proc and c.proc.poll() is None}
    pids |= broker.process_ids() if broker else {}
    snapshot = {name: t for name, pid in pids.items() if (t := cpu_seconds(pid)) is not None}
    snapshot["bench"] = time.process_time()
    return snapshot


def cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds each process used between two snapshots (a process that was not there at both is left out)."""
    return {
        name: round(after[name] - before[name], 2) for name in before if after.get(name, -1) >= before[name]
    }


def rejected_on_topic(bootstrap: str, partitions: int) -> tuple[set[tuple[str, int]], dict[str, set[str]]]:
    """Every (record id, version) the worker rejected (`sgs.rejected`), and the rules of every decision on a
    record it refused, by the decision's receipt id (stage `decision`, no version); read from the start until
    quiet."""
    from kafka import KafkaConsumer, TopicPartition

    from sgs.serialization.codec import default_codec

    codec = default_codec()
    consumer = KafkaConsumer(
        **kafka_settings(bootstrap),
        enable_auto_commit=False,
        max_poll_records=5000,
        isolation_level="read_committed",  # what the worker's transactions committed, as the sinks read
    )
    consumer.assign([TopicPartition(REJECTED_TOPIC, p) for p in range(partitions)])
    consumer.seek_to_beginning()
    seen: set[tuple[str, int]] = set()
    decisions: dict[str, set[str]] = {}
    quiet = 0
    while quiet < 2:
        batch = consumer.poll(timeout_ms=1000)
        quiet = 0 if batch else quiet + 1
        for messages in batch.values():
            for m in messages:
                try:
                    _, rejection = codec.decode(m.value)
                except Exception:  # noqa: BLE001 - a foreign message on the topic is not ours to count
                    continue
                if rejection.get("record_id") and rejection.get("version") is not None:
                    seen.add((rejection["record_id"], int(rejection["version"])))
                elif rejection.get("stage") == "decision" and rejection.get("receipt_id"):
                    rules = decisions.setdefault(rejection["receipt_id"], set())
                    rules.update(str(r["rule"]) for r in rejection["reasons"])
    consumer.close()
    return seen, decisions


def _epoch(moment: datetime) -> float:
    """A sink's naive-UTC or an aware timestamp -> seconds since the epoch."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


@dataclass
class Feed:
    """The posting side: one thread per connection; what the node answered for each item, and when."""

    target: str
    lanes: list[list[Request]]
    rate: float
    stop: threading.Event
    answers: list[tuple[str, float] | None]
    errors: list[str] = field(default_factory=list)
    posted: int = 0
    started: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> list[threading.Thread]:
        self.started = time.time()
        schedule = send_times(self.lanes, self.rate)
        threads = [
            threading.Thread(target=self._lane, args=(requests, times), name=f"bench-lane-{i}", daemon=True)
            for i, (requests, times) in enumerate(zip(self.lanes, schedule, strict=True))
        ]
        for t in threads:
            t.start()
        return threads

    def _lane(self, requests: list[Request], times: list[float]) -> None:
        with httpx.Client(base_url=self.target, timeout=300.0) as client:
            for request, at in zip(requests, times, strict=True):
                if self.stop.wait(max(0.0, self.started + at - time.time())):
                    return
                try:
                    reply = client.post(
                        f"/v1/records/{request.kind}",
                        content=request.body,
                        headers={
                            "Authorization": f"Bearer {request.token}",
                            "Content-Type": "application/json",
                        },
                    )
                    results = reply.json()["results"]
                    if len(results) != len(request.items):
                        raise ValueError(f"{len(results)} answers for {len(request.items)} records")
                except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                    with self.lock:
                        self.errors.append(f"POST /v1/records/{request.kind}: {type(exc).__name__}: {exc}")
                        self.posted += len(request.items)
                    continue
                now = time.time()
                for index, result in zip(request.items, results, strict=True):
                    self.answers[index] = (str(result.get("status")), now)
                with self.lock:
                    self.posted += len(request.items)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.stop = threading.Event()
        self.interrupted = threading.Event()
        self.timed_out = threading.Event()
        self.run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        self.log: structlog.stdlib.BoundLogger = configure_logging("bench", args.log_level)
        self.results: dict[str, Any] | None = None  # the figures, once reported

    # --- the whole run ------------------------------------------------------------------------------------------

    def run(self) -> int:
        args = self.args

        def interrupt(*_: Any) -> None:
            self.interrupted.set()
            self.stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, interrupt)
        guard = threading.Timer(float(args.timeout), self._time_out)
        guard.daemon = True
        guard.start()

        engine = engine_of(args)
        n = int(args.records)
        if n <= 0 or int(args.workers) <= 0 or int(args.batch) <= 0 or int(args.concurrency) <= 0:
            print(
                "sgs bench: --records, --workers, --batch and --concurrency must be positive", file=sys.stderr
            )
            return 2
        try:
            schedule = schedule_from_args(
                args.fault,
                int(args.seed),
                int(args.faults),
                float(args.fault_window),
                chaos_local.supported(engine),
            )
            check_supported(schedule, functools.partial(chaos_local.refused, engine=engine), "local")
        except ScheduleError as exc:
            print(f"sgs bench: {exc}", file=sys.stderr)
            return 2
        data_dir = Path(args.data_dir).resolve() / f"bench-{self.run_id}"
        logs = data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        federation = self._federation(data_dir)
        print(f"sgs bench: {n:,} records, data and logs in {data_dir}", file=sys.stderr)
        if schedule:
            print(
                f"sgs bench: faults, in seconds from the first post:\n{describe(schedule)}", file=sys.stderr
            )

        faults = FaultMix.none() if args.clean else FaultMix()
        items = self._generate(federation, n, faults)
        if items is None:
            return self._stopped()
        lanes = build_requests(items, int(args.batch), int(args.concurrency))
        stamp = datetime.now(UTC)
        payloads = [(item.record_id.encode(), encode_submitted(item, stamp)) for item in items]
        expectation = Expectation.of(items)
        self.log.info("bench.prepared", records=n, requests=sum(len(lane) for lane in lanes))

        broker = None
        bootstrap = args.kafka_bootstrap
        children: list[Child] = []
        chaos: Runner | None = None
        try:
            certs = Path(args.kafka_certs) if args.kafka_certs else None
            if not bootstrap:
                certs = kafka_certs(certs, data_dir, federation, engine)
                broker = start_engine(
                    engine, data_dir=data_dir, log_dir=logs, brokers=int(args.brokers), cert_dir=certs
                )
                bootstrap = broker.bootstrap
            prepare_cluster(bootstrap, federation)
            print("(a) raw broker pass-through ...", file=sys.stderr)
            raw = raw_pass_through(bootstrap, payloads, federation.partitions, self.run_id, self.stop)
            del payloads
            if self.stop.is_set():
                return self._stopped()
            self.log.info("bench.raw_done", **raw)

            print("(b) starting the federation ...", file=sys.stderr)
            ports = {name: free_port() for name in ("node", "provincial", "national")}
            worker_ports = [free_port() for _ in range(int(args.workers))]
            env = child_env(bootstrap, data_dir, federation, args.log_level, engine, certs)
            worker_args = [
                "--unknown-subject-hold-s",
                str(args.unknown_subject_hold_s),
                "--aggregates-url",
                f"sqlite:///{data_dir / 'aggregates.db'}",
            ]
            children = federation_children(ports, worker_ports=worker_ports, worker_args=worker_args)
            workers = [c for c in children if c.name.startswith("worker")]
            per_worker = {c.name: {"SGS_DATA_DIR": str(data_dir / c.name)} for c in workers}
            if args.tree == "national":
                # ~1 million subjects for 2,849 nodes would make the run about the reference base: without it
                # every counterpart is UNKNOWN_CODE after the hold (D13), a flag, and the records still travel.
                print("sgs bench: national tree: no reference base loaded", file=sys.stderr)
            else:
                load_refbase(env, data_dir, logs)
            if not start_children(children, env, logs, self.stop, self.log, extra_env=per_worker):
                return self._stopped()
            if not self._workers_ready(workers):
                return self._stopped()

            feed = Feed(f"http://127.0.0.1:{ports['node']}", lanes, float(args.rate), self.stop, [None] * n)
            decisions = DecisionLane(feed.target, self.stop)
            cpu_before = cpu_snapshot(children, broker)
            stores = {tier: store_url(federation.sinks[tier].store_url, str(data_dir)) for tier in TIERS}
            cluster = broker if isinstance(broker, KraftCluster) else None
            target = chaos_local.LocalTarget(children, logs, cluster)
            chaos = Runner(schedule, target, int(args.seed), self.log)
            with sink_stores(stores) as opened:
                outcome = self._feed_and_settle(feed, decisions, items, expectation, opened, target, chaos)
            outcome["cpu_s"] = cpu_used(cpu_before, cpu_snapshot(children, broker))
            chaos.finish()  # nothing is left paused or down
            if self.interrupted.is_set():
                return self._stopped()
            sink_redeliveries = self._scrape_duplicates(ports)
            stop_all(children, "sgs bench")  # the stores are final from here on
            rejected_seen, decisions_refused = rejected_on_topic(bootstrap, federation.partitions)
            outcome["node_timings"] = read_node_timings(data_dir / "outbox.db")
        except (StartFailed, BrokerError) as exc:
            print(f"sgs bench: {exc}", file=sys.stderr)
            return 1
        finally:
            if chaos:
                chaos.finish()
            stop_all(children, "sgs bench")
            if broker:
                broker.stop()
            guard.cancel()

        return self._report(
            items,
            expectation,
            feed,
            stores,
            raw,
            outcome,
            rejected_seen,
            decisions,
            decisions_refused,
            sink_redeliveries,
            federation,
            chaos,
        )

    # --- steps --------------------------------------------------------------------------------------------------

    def _time_out(self) -> None:
        self.timed_out.set()
        self.stop.set()

    def _stopped(self) -> int:
        if self.timed_out.is_set():
            print(f"sgs bench: FAILED: timed out after {self.args.timeout:.0f} s", file=sys.stderr)
            return 1
        print("sgs bench: interrupted", file=sys.stderr)
        return 130

    def _federation(self, data_dir: Path) -> Federation:
        if self.args.tree == "national":
            from simulators.tree import write_national_tree

            path = write_national_tree(data_dir / "federation-national.toml")
            print(f"sgs bench: national tree written to {path}", file=sys.stderr)
            return load_config(path)
        return load_config(self.args.config)

    def _generate(self, federation: Federation, n: int, faults: FaultMix) -> list[Submission] | None:
        generator = Generator(federation, int(self.args.seed), faults)
        items: list[Submission] = []
        with tqdm(total=n, unit="rec", desc="generating", file=sys.stderr, mininterval=0.5) as bar:
            while len(items) < n:
                if self.stop.is_set():
                    return None
                chunk = min(1000, n - len(items))
                items.extend(generator.take(chunk))
                bar.update(chunk)
        return items

    def _workers_ready(self, workers: list[Child], timeout_s: float = 180.0) -> bool:
        """Wait until every worker has loaded the reference bases and holds partitions, so the clock does not
        time a consumer-group join."""
        deadline = time.monotonic() + timeout_s
        pending = {c.name: c for c in workers}
        while pending and time.monotonic() < deadline:
            for name, child in list(pending.items()):
                try:
                    if httpx.get(f"http://127.0.0.1:{child.port}/healthz", timeout=2).json().get("ready"):
                        del pending[name]
                except (httpx.HTTPError, ValueError):
                    pass
            if pending and self.stop.wait(1.0):
                return False
        if pending:
            raise StartFailed(f"worker(s) not ready after {timeout_s:.0f} s: {sorted(pending)}")
        return True

    def _feed_and_settle(
        self,
        feed: Feed,
        decisions: DecisionLane,
        items: list[Submission],
        exp: Expectation,
        stores: dict[str, SinkStore],
        target: chaos_local.LocalTarget,
        chaos: Runner,
    ) -> dict[str, Any]:
        """Post everything (and apply the fault schedule, from the first post), hand each record's decisions to
        their lane once the record is in the provincial store, then poll the sink stores until every record has
        settled, every decision is final and every fault is undone, until it stalls, or until time is up."""
        wanted: dict[str, dict[str, Held]] = {}
        for tier in TIERS:
            for rid, held in exp.tiers[tier].items():
                wanted.setdefault(rid, {})[tier] = held
        item_records = [item.record_id for item in items]
        n = len(items)
        awaiting = {i for i, item in enumerate(items) if item.decisions}  # decisions not handed over yet
        threads = feed.start()
        decisions.start()
        chaos.start()
        self.log.info("bench.feed_started", records=n)
        bar = tqdm(total=n, unit="rec", desc="settled", file=sys.stderr, mininterval=1.0)
        count, last_progress, poll_s = 0, time.monotonic(), 1.0
        stalled, dead = False, set()
        quiet_since: tuple[int, ...] | None = None
        # What the polls read so far; each poll reads what changed since shortly before the previous one (a sink
        # stamps a row before its transaction commits), and looks again only at the records that changed.
        rows: dict[str, dict[str, Row]] = {tier: {} for tier in stores}
        changed_since: datetime | None = None
        done_records: set[str] = set()
        unsettled = set(range(n))
        while not self.stop.wait(poll_s):
            gone = target.exited()  # a child down on purpose (a fault) has not died
            if gone is not None and gone.name not in dead and gone.proc is not None:
                dead.add(gone.name)
                self.log.warning("bench.child_exited", child=gone.name, code=gone.proc.returncode)
                print(
                    f"sgs bench: {gone.name} exited ({gone.proc.returncode}); its records cannot settle",
                    file=sys.stderr,
                )
            started, poll_started = time.monotonic(), datetime.now(UTC).replace(tzinfo=None)
            # the first poll looks at every record: one revoked before its relay has no row to change (settled)
            changed: set[str] = set(wanted) if changed_since is None else set()
            for tier, store in stores.items():
                fresh = read_sink(store, changed_since=changed_since)[0]
                rows[tier].update(fresh)
                changed.update(fresh)
            changed_since = poll_started - timedelta(seconds=POLL_OVERLAP_S)
            poll_s = max(1.0, 8 * (time.monotonic() - started))  # polling costs at most ~1/8 of a core
            for i in sorted(i for i in awaiting if item_records[i] in rows["provincial"]):
                decisions.add(items[i])  # accepted by the municipal platform, so the node takes its decisions
                awaiting.discard(i)
            if not awaiting:
                decisions.close()
            for rid in changed & wanted.keys():
                if all(settled(rows[t].get(rid), h) for t, h in wanted[rid].items()):
                    done_records.add(rid)
                else:
                    done_records.discard(rid)
            unsettled -= {
                i
                for i in unsettled
                if (a := feed.answers[i]) is not None
                and (a[0] in NODE_FINAL or item_records[i] in done_records)
            }
            now_settled = n - len(unsettled)
            feeding = any(t.is_alive() for t in threads)
            bar.set_postfix(posted=feed.posted, decisions_pending=not decisions.idle(), refresh=False)
            bar.update(now_settled - count)
            if now_settled != count:
                count, last_progress = now_settled, time.monotonic()
            if count == n and chaos.done() and not awaiting and decisions.idle():
                # A revoked record with no row yet counts as settled; one more unchanged poll makes sure no
                # version of it is still on its way to a sink.
                snapshot = tuple(
                    len(r) + sum(row.held.withdrawn_version is not None for row in r.values())
                    for r in rows.values()
                )
                if snapshot == quiet_since:
                    break
                quiet_since = snapshot
                continue
            if (
                not feeding
                and chaos.done()
                and time.monotonic() - last_progress > float(self.args.stall_timeout)
            ):
                stalled = True
                self.log.warning("bench.stalled", settled=count, records=n)
                break
        bar.close()
        self.stop.set()  # ends the posting threads if time ran out
        for t in threads:
            t.join(10)
        return {"stalled": stalled, "dead": sorted(dead), "settled_polled": count}

    def _scrape_duplicates(self, ports: dict[str, int]) -> dict[str, float]:
        """Relay messages each sink absorbed as already held: at-least-once redeliveries, harmless by design."""
        from sgs.ops.totals import scrape

        return {
            tier: sum(
                v
                for name, _, v in scrape(f"http://127.0.0.1:{ports[tier]}/metrics")
                if name == "sgs_sink_duplicates_total"
            )
            for tier in TIERS
        }

    # --- figures ------------------------------------------------------------------------------------------------

    def _report(
        self,
        items: list[Submission],
        exp: Expectation,
        feed: Feed,
        stores: dict[str, str],
        raw: dict[str, float],
        outcome: dict[str, Any],
        rejected_seen: set[tuple[str, int]],
        decisions: DecisionLane,
        decisions_refused: dict[str, set[str]],
        sink_redeliveries: dict[str, float],
        federation: Federation,
        chaos: Runner,
    ) -> int:
        args = self.args
        n = len(items)
        final: dict[str, dict[str, Row]] = {}
        twice: dict[str, int] = {}
        with sink_stores(stores) as opened:
            for tier, store in opened.items():
                final[tier], twice[tier] = read_sink(store, with_submission=True)
        node_rejected = {
            (item.record_id, item.version)
            for item, a in zip(items, feed.answers, strict=True)
            if a is not None and a[0] == "rejected"
        }
        absorbed_seen = {
            (item.record_id, item.version)
            for item, a in zip(items, feed.answers, strict=True)
            if a is not None and a[0] == "unchanged"
        }
        rec = account(
            exp,
            final,
            twice,
            node_rejected | rejected_seen,
            absorbed_seen,
            decisions.outcomes,
            decisions_refused,
        )
        answered = Counter(a[0] if a else "no answer" for a in feed.answers)
        if answered["no answer"] or feed.errors:
            rec.lost += answered["no answer"]
            rec.note(
                f"{answered['no answer']} records without an answer from the node; e.g. {feed.errors[:2]}"
            )

        # settle time of each item: the node's final answer, or its record's last arrival in the sinks
        settle_times: list[float] = []
        for item, a in zip(items, feed.answers, strict=True):
            if a is None:
                continue
            if a[0] in NODE_FINAL:
                settle_times.append(a[1])
                continue
            times: list[float | None] = []
            for tier in TIERS:
                want = exp.tiers[tier].get(item.record_id)
                if want is None:
                    continue
                row = final[tier].get(item.record_id)
                if row is None and settled(row, want):
                    times.append(a[1])  # revoked before it reached the tier: settled when the node took it
                else:
                    times.append(_epoch(row.settled_at) if row is not None and settled(row, want) else None)
            if times and None not in times:
                settle_times.append(max(t for t in times if t is not None))
        elapsed = (max(settle_times) - feed.started) if settle_times else 0.0
        e2e = round(len(settle_times) / elapsed, 1) if elapsed > 0 else 0.0
        raw_rate = raw["pass_through_records_per_s"]
        taken_times = sorted(a[1] for a in feed.answers if a is not None)
        node_rate = round(len(taken_times) / (taken_times[-1] - feed.started), 1) if taken_times else 0.0

        latencies: dict[str, list[tuple[float, float]]] = {}
        # the records the worker held for their unknown subject (D13), and the others
        held_latencies: dict[str, list[float]] = {tier: [] for tier in TIERS}
        free_latencies: dict[str, list[float]] = {tier: [] for tier in TIERS}
        for tier in TIERS:
            latencies[tier] = []
            for row in final[tier].values():
                if row.submitted_at is None or row.held.withdrawn_version is not None:
                    continue
                latency = _epoch(row.received_at) - _epoch(row.submitted_at)
                latencies[tier].append((_epoch(row.submitted_at), latency))
                (held_latencies if row.subject_hold else free_latencies)[tier].append(latency)
        timings: NodeTimings = outcome["node_timings"]
        hops = timings.hop_latencies(
            {rid for rows in final.values() for rid, row in rows.items() if row.subject_hold}
        )
        failures = []
        if outcome["stalled"]:
            failures.append(f"stalled: nothing settled for {args.stall_timeout:.0f} s")
        if self.timed_out.is_set():
            failures.append(f"timed out after {args.timeout:.0f} s")
        if outcome["dead"]:
            failures.append(f"exited during the run: {', '.join(outcome['dead'])}")
        if rec.lost:
            failures.append(f"{rec.lost} lost")
        if rec.duplicated:
            failures.append(f"{rec.duplicated} duplicated or unexpected")
        failures += chaos.errors
        if len(chaos.applied) < len(chaos.faults):
            failures.append(f"{len(chaos.faults) - len(chaos.applied)} scheduled faults not applied")
        results = {
            "records": n,
            "settled": len(settle_times),
            "raw_records_per_s": raw_rate,
            "raw_produce_records_per_s": raw["produce_records_per_s"],
            "record_bytes_mean": raw["record_bytes_mean"],
            "e2e_records_per_s": e2e,
            "node_records_per_s": node_rate,
            "ratio": round(e2e / raw_rate, 4) if raw_rate else None,
            # Where the time goes: CPU per settled record of each process over the run. Their sum against the
            # machine's cores bounds the end-to-end rate (README, Performance).
            "cpu_ms_per_record": {
                name: round(1000 * used / len(settle_times), 3) for name, used in outcome["cpu_s"].items()
            }
            if settle_times
            else {},
            "elapsed_s": round(elapsed, 1),
            "lost": rec.lost,
            "duplicated": rec.duplicated,
            "latency_s": {tier: percentiles([lat for _, lat in latencies[tier]]) for tier in TIERS},
            # what users feel: every record but those deliberately held for an unknown subject (D13) ...
            "latency_not_held_s": {tier: percentiles(free_latencies[tier]) for tier in TIERS},
            # ... and those, which wait out --unknown-subject-hold-s on purpose
            "latency_held_s": {tier: percentiles(held_latencies[tier]) for tier in TIERS},
            "held_records": {tier: len(held_latencies[tier]) for tier in TIERS},
            # a decision (D15, D16) from the node taking it to the municipal platform's answer
            "decision_latency_s": percentiles(timings.decision_latencies),
            "decisions_answered": len(timings.decision_latencies),
            # where a record's time went, hop by hop, for the records not held (the node's receipts, `HOPS`)
            "latency_by_hop_s": {hop: percentiles(waits) for hop, waits in hops.items()},
            "reconciliation": rec.as_dict(),
            "expected": dict(exp.outcomes),
            "node_answers": dict(answered),
            "sink_redeliveries_absorbed": sink_redeliveries,
            "chaos": {"schedule": [f.spec for f in chaos.faults], "applied": chaos.applied},
            "entry": "district node HTTP API, JSON batches",
            "settings": {
                "workers": int(args.workers),
                "batch": int(args.batch),
                "concurrency": int(args.concurrency),
                "rate": float(args.rate),
                "seed": int(args.seed),
                "faults": "none" if args.clean else "simulator default mix",
                "unknown_subject_hold_s": float(args.unknown_subject_hold_s),
                "tree": args.tree,
                "nodes": len(federation.nodes),
                "departments": sum(len(node.departments) for node in federation.nodes),
                "partitions": federation.partitions,
                "broker": "external" if args.kafka_bootstrap else "embedded Tansu",
            },
            "status": "failed" if failures else "ok",
            "failures": failures,
            "started_at": datetime.fromtimestamp(feed.started, UTC).isoformat(timespec="seconds"),
            "machine": machine(),
        }
        self.results = results
        print(render(results, rec), file=sys.stderr)
        if args.out:
            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            (out / "results.json").write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n")
            plot(out / "results.png", feed, settle_times, latencies, raw_rate)
            print(f"sgs bench: wrote {out / 'results.json'} and {out / 'results.png'}", file=sys.stderr)
        print(
            json.dumps(
                {
                    k: results[k]
                    for k in (
                        "records",
                        "raw_records_per_s",
                        "e2e_records_per_s",
                        "ratio",
                        "lost",
                        "duplicated",
                        "latency_s",
                        "latency_not_held_s",
                        "status",
                    )
                },
                ensure_ascii=False,
            )
        )
        return 1 if failures else 0


def scale_out(args: argparse.Namespace, counts: tuple[int, ...]) -> int:
    """`--workers 1,2,4`: the whole bench once per worker count, each on a broker of its own (the sinks of a run
    read their topics from the beginning), then records/s for each count. With `--out`, each run writes to
    `<out>/workers-<n>/` and the curve to `<out>/scale_out.json`. Exit 1 when any run failed."""
    curve: list[dict[str, Any]] = []
    code = 0
    for count in counts:
        out = str(Path(args.out) / f"workers-{count}") if args.out else None
        bench = Bench(argparse.Namespace(**{**vars(args), "workers": count, "out": out}))
        print(f"sgs bench: scale-out, {count} worker(s)", file=sys.stderr)
        code = max(code, bench.run())
        if bench.results is None:  # stopped or refused before it measured anything
            return code
        figures = {
            k: bench.results[k] for k in ("e2e_records_per_s", "ratio", "lost", "duplicated", "status")
        }
        curve.append({"workers": count, **figures})
    lines = ["", "  scale-out (one run per worker count, same records and seed)"]
    lines += [
        f"  workers {point['workers']:>3}   {point['e2e_records_per_s']:>10,.1f} records/s   ratio {point['ratio']}"
        f"   {point['status']}"
        for point in curve
    ]
    print("\n".join(lines) + "\n", file=sys.stderr)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "scale_out.json").write_text(json.dumps(curve, indent=2) + "\n")
    print(json.dumps({"scale_out": curve}))
    return code
