"""Sustained records/s of the municipal worker (one process), next to a plain kafka-python consume-and-produce loop
on the same broker in the same run, over the same records. Their ratio is the figure to improve (issue 5).

    .venv/bin/python benchmarks/bench_worker.py [--records 10000]

Starts its own embedded Tansu broker and writes the records first, so both read a backlog. The worker gets
licences whose counterparts are in the legal-person base (so nothing is held); it is timed on `sgs.relay.national`
(its last output), the plain loop on its own output. The plain loop reads `sgs.submitted.license` and writes each
value to a scratch topic: no decoding, no state; it is the floor any processor on this broker and client pays.

Steady state: each rate is taken between the 10% and the 90% marks of its output, so neither start-up (group join,
table recovery, the first linger) nor the tail counts. The worker's CPU time over that window (Linux /proc) is
printed too: on a shared machine it says what a record costs when the wall clock cannot.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from sgs.config import Federation, load_config  # noqa: E402
from sgs.kafka import topics  # noqa: E402
from sgs.kafka.admin import ensure_federation_topics, ensure_topics  # noqa: E402
from sgs.kafka.tansu import EmbeddedBroker  # noqa: E402
from sgs.kafka.topics import TopicSpec  # noqa: E402
from sgs.serialization.signing import local_keys  # noqa: E402
from tests.support.worker_process import Submitter, WorkerProcess  # noqa: E402
from tests.support.worker_records import record  # noqa: E402


def produce(bootstrap: str, n: int, federation: Federation) -> None:
    submitter = Submitter(bootstrap)
    for _ in tqdm(range(n), desc="producing", unit="rec"):
        rec = record(federation, "license", decided_on=date(2026, 10, 9), submitted_on=date(2026, 10, 12))
        cp = rec["counterpart"]
        submitter.producer.send(
            topics.REF_LEGAL_PERSONS,
            key=cp["uscc"].encode(),
            value=submitter.codec.encode(
                "sgs.LegalPerson",
                {
                    "uscc": cp["uscc"],
                    "name": cp["name"],
                    "status": "ACTIVE",
                    "updated_at": rec["envelope"]["submitted_at"],
                },
            ),
        )
        submitter.raw(  # signed by its node, as the worker requires (issue 16)
            topics.SUBMITTED["license"],
            rec["envelope"]["record_id"].encode(),
            submitter.codec.encode("sgs.LicenseRecord", rec),
            signer=f"node.{rec['envelope']['source_node']}",
            flush=False,
        )
    submitter.producer.flush()
    submitter.close()


Marks = list[tuple[float, int, float]]  # (monotonic time, records seen so far, CPU seconds of the process)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux), 0 where /proc is not there."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def steady(marks: Marks, n: int) -> tuple[float, float]:
    """(records/s, CPU seconds per record) between the 10% and the 90% marks."""
    lo = next(m for m in marks if m[1] >= n // 10)
    hi = next(m for m in marks if m[1] >= n * 9 // 10)
    records = hi[1] - lo[1]
    return records / max(hi[0] - lo[0], 1e-6), (hi[2] - lo[2]) / max(records, 1)


def watch(bootstrap: str, topic: str, n: int, timeout_s: float, pid: int | None = None) -> Marks:
    """Reads `topic` from the beginning (no group) until n messages, marking the time of every poll."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    seen, marks, deadline = 0, [], time.monotonic() + timeout_s
    with tqdm(total=n, desc=f"reading {topic}", unit="rec") as bar:
        while seen < n and time.monotonic() < deadline:
            got = sum(len(b) for b in consumer.poll(timeout_ms=200).values())
            seen += got
            bar.update(got)
            if got:
                marks.append((time.monotonic(), seen, cpu_seconds(pid) if pid else 0.0))
    consumer.close()
    if seen < n:
        raise SystemExit(f"only {seen}/{n} records reached {topic} in {timeout_s:.0f}s")
    return marks


def plain_loop(bootstrap: str, n: int, scratch: str) -> float:
    """kafka-python consume-and-produce, one process: steady records/s."""
    consumer = KafkaConsumer(
        topics.SUBMITTED["license"],
        bootstrap_servers=bootstrap,
        group_id=f"bench-plain-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        max_poll_interval_ms=3000,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    done, marks = 0, []
    while done < n:
        for batch in consumer.poll(timeout_ms=500).values():
            for m in batch:
                producer.send(scratch, key=m.key, value=m.value)
            done += len(batch)
            marks.append((time.monotonic(), done, 0.0))
        consumer.commit() if done else None
    producer.flush()
    consumer.close()
    producer.close()
    return steady(marks, n)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10000)
    args = parser.parse_args()
    n = args.records
    data_dir = Path(tempfile.mkdtemp(prefix="bench-worker-"))
    # signing keys made for this run (issue 16), for the records produced here and for the worker started here
    keys = data_dir / "keys"
    config = local_keys(load_config(), keys)
    os.environ.update(SGS_CONFIG=str(config), SGS_KEY_DIR=str(keys))
    federation = load_config(config)
    try:
        with EmbeddedBroker() as broker:
            ensure_federation_topics(broker.bootstrap, federation)
            scratch = "bench.plain.out"
            ensure_topics(broker.bootstrap, federation.partitions, (TopicSpec(scratch),))
            produce(broker.bootstrap, n, federation)

            plain = plain_loop(broker.bootstrap, n, scratch)

            worker = WorkerProcess(broker.bootstrap, data_dir, unknown_subject_hold_s=0).start()
            assert worker.proc is not None
            try:
                marks = watch(broker.bootstrap, topics.RELAY["national"], n, 600, worker.proc.pid)
            finally:
                worker.stop()
            processed, cpu_per_record = steady(marks, n)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    print(f"records:                         {n}")
    print(f"plain kafka-python loop:         {plain:10.0f} records/s")
    print(f"worker (validate..relay), 1 proc:{processed:10.0f} records/s")
    print(f"worker CPU per record:           {cpu_per_record * 1000:10.2f} ms")
    print(f"ratio worker / plain:            {processed / plain:10.3f}")


if __name__ == "__main__":
    main()
