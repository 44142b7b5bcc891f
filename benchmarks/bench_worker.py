"""Sustained records/s of the municipal worker (one process), next to a plain kafka-python consume-and-produce loop
on the same broker in the same run. Their ratio is the figure to improve (issue 5).

    .venv/bin/python benchmarks/bench_worker.py [--records 3000]

Starts its own embedded Tansu broker. The worker gets licences whose counterparts are in the legal-person base
(so nothing is held), and the run is timed from the first to the last record reaching `sgs.relay.national`
(the last stage). The plain loop reads `sgs.submitted.license` and writes each value to a scratch topic: no
decoding, no state; it is the floor any processor on this broker and client pays.
"""

from __future__ import annotations

import argparse
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
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "integration")]

from worker_process import Submitter, WorkerProcess  # noqa: E402
from worker_records import record  # noqa: E402

from sgs import topics  # noqa: E402
from sgs.broker import EmbeddedBroker, ensure_topics  # noqa: E402
from sgs.config import load_config  # noqa: E402
from sgs.topics import TopicSpec  # noqa: E402


def produce(bootstrap: str, n: int) -> None:
    federation = load_config()
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
        submitter.producer.send(
            topics.SUBMITTED["license"],
            key=rec["envelope"]["record_id"].encode(),
            value=submitter.codec.encode("sgs.LicenseRecord", rec),
        )
    submitter.producer.flush()
    submitter.close()


def count_until(bootstrap: str, topic: str, n: int, timeout_s: float) -> float:
    """Seconds from the first to the n-th message on `topic` (read from the beginning, no group)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    seen, first, deadline = 0, None, time.monotonic() + timeout_s
    with tqdm(total=n, desc=f"reading {topic}", unit="rec") as bar:
        while seen < n and time.monotonic() < deadline:
            got = sum(len(b) for b in consumer.poll(timeout_ms=500).values())
            if got and first is None:
                first = time.monotonic()
            seen += got
            bar.update(got)
    consumer.close()
    if seen < n or first is None:
        raise SystemExit(f"only {seen}/{n} records reached {topic} in {timeout_s:.0f}s")
    return max(time.monotonic() - first, 1e-6)


def plain_loop(bootstrap: str, n: int, scratch: str) -> float:
    """kafka-python consume-and-produce, one process: records/s."""
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
    done, first = 0, None
    while done < n:
        for batch in consumer.poll(timeout_ms=500).values():
            first = first or time.monotonic()
            for m in batch:
                producer.send(scratch, key=m.key, value=m.value)
            done += len(batch)
        consumer.commit() if done else None
    producer.flush()
    elapsed = time.monotonic() - (first or time.monotonic())
    consumer.close()
    producer.close()
    return n / max(elapsed, 1e-6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=3000)
    args = parser.parse_args()
    n = args.records
    data_dir = Path(tempfile.mkdtemp(prefix="bench-worker-"))
    federation = load_config()
    try:
        with EmbeddedBroker() as broker:
            ensure_topics(broker.bootstrap, federation.partitions)
            scratch = "bench.plain.out"
            ensure_topics(broker.bootstrap, federation.partitions, (TopicSpec(scratch),))
            produce(broker.bootstrap, n)

            plain = plain_loop(broker.bootstrap, n, scratch)

            worker = WorkerProcess(broker.bootstrap, data_dir, unknown_subject_hold_s=0).start()
            try:
                elapsed = count_until(broker.bootstrap, topics.RELAY["national"], n, timeout_s=600)
            finally:
                worker.stop()
            processed = n / elapsed
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    print(f"records:                         {n}")
    print(f"plain kafka-python loop:         {plain:10.0f} records/s")
    print(f"worker (validate..relay), 1 proc:{processed:10.0f} records/s")
    print(f"ratio worker / plain:            {processed / plain:10.3f}")


if __name__ == "__main__":
    main()
