"""Rows/s and CPU per row of the sink's write path (issue 14): N relay messages applied to a fresh SQLite store in
batches of 500 through `SinkStore.apply`, as the relay consumer applies one polled partition.

    .venv/bin/python benchmarks/bench_sink.py [--records 20000] [--batch 500] [--url sqlite:///...]

The messages are what the municipal worker relays, after an Avro round trip (as the consumer hands them over, each
record with its `Row`): licences and penalties of many counterparts, with some revisions (a higher version of an
earlier record, now and then in the same batch), duplicates (a message sent again), objection marks raised on a
held version (D15) and withdrawals. Building them is not timed; applying them is: the store's statements, the
receipts it encodes into the outbox, the offsets. CPU is the process's (time.process_time), wall is
time.perf_counter; on a shared machine the CPU figure is the one to compare. `--url` measures another database
(a PostgreSQL URL); the store's tables must not exist there yet.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

import services.sink.store as store_module  # noqa: E402
from services.sink.consumer import ReceiptBuilder  # noqa: E402
from services.sink.store import Relayed, Row, SinkStore  # noqa: E402
from tests.support.sink_records import decoded, license_record, penalty_record, withdrawal  # noqa: E402

TOPIC = "sgs.relay.provincial"


def stream(n: int, seed: int) -> tuple[list[Relayed], dict[str, int]]:
    """n relay messages in the order the consumer would see them, and how many of each sort."""
    rng = random.Random(seed)
    sent: list[dict[str, Any]] = []  # every record message sent so far (for revisions, duplicates, marks)
    held: dict[str, dict[str, Any]] = {}  # record id -> the highest version sent
    messages: list[Relayed] = []
    counts = dict.fromkeys(("new", "revision", "duplicate", "objection", "withdrawal"), 0)
    for i in tqdm(range(n), desc="building", unit="msg"):
        roll = rng.random()
        if not sent or roll < 0.80:
            sort = "new"
            name = f"上海示例{i % 3000}商贸有限公司"
            uscc = f"91310101MA1F{i % 3000:06d}"
            if rng.random() < 0.5:
                msg = license_record(f"沪黄市监许〔2026〕{i:07d}号", name, uscc=uscc)
            else:
                msg = penalty_record(f"沪黄市监处〔2026〕{i:07d}号", name, uscc=uscc)
        elif roll < 0.88:
            sort = "revision"
            # mostly a recent record (often in the same batch of 500), sometimes an old one
            base = held[rng.choice(sent[-300:] if rng.random() < 0.7 else sent)["envelope"]["record_id"]]
            env = {**base["envelope"], "version": base["envelope"]["version"] + 1}
            msg = {**base, "envelope": env}
        elif roll < 0.93:
            sort = "duplicate"
            msg = rng.choice(sent[-1000:])
        elif roll < 0.97:
            sort = "objection"
            base = held[rng.choice(sent[-1000:])["envelope"]["record_id"]]
            ann = {**base["annotations"], "under_objection": not base["annotations"]["under_objection"]}
            msg = {**base, "annotations": ann}
        else:
            sort = "withdrawal"
            msg = withdrawal(held[rng.choice(sent)["envelope"]["record_id"]], "REPAIRED")
        counts[sort] += 1
        if "envelope" in msg:
            sent.append(msg)
            rid = msg["envelope"]["record_id"]
            if rid not in held or held[rid]["envelope"]["version"] <= msg["envelope"]["version"]:
                held[rid] = msg
        name, record = decoded(msg)
        messages.append((name, record, Row.from_record(record)) if "envelope" in record else (name, record))
    return messages, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20000, help="relay messages to apply")
    parser.add_argument("--batch", type=int, default=500, help="messages per apply (the consumer polls 500)")
    parser.add_argument("--url", default=None, help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    messages, counts = stream(args.records, args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-sink-") as tmp:
        store = SinkStore(args.url or f"sqlite:///{tmp}/sink.db")
        receipts = ReceiptBuilder("provincial")
        totals = dict.fromkeys(("upserted", "duplicates", "withdrawn", "ignored_withdrawals"), 0)
        wall, cpu = 0.0, 0.0
        for start in tqdm(range(0, len(messages), args.batch), desc="applying", unit="batch"):
            batch = messages[start : start + args.batch]
            offsets = {(TOPIC, 0): start + len(batch)}
            w0, c0 = time.perf_counter(), time.process_time()
            outcome = store.apply(batch, offsets, receipts)
            wall += time.perf_counter() - w0
            cpu += time.process_time() - c0
            for key in totals:
                totals[key] += len(getattr(outcome, key))
        held = sum(store.held_by_kind().values())
        outbox = len(store.pending_receipts(limit=len(messages) + 1))
        store.close()
    n = len(messages)
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"store code {Path(store_module.__file__).resolve()}"
    )
    print(f"messages: {n} ({', '.join(f'{v} {k}' for k, v in counts.items())}), batches of {args.batch}")
    print(
        f"outcome:  {', '.join(f'{v} {k}' for k, v in totals.items())}; {held} held, {outbox} receipts queued"
    )
    print(f"applied:  {n / wall:,.0f} rows/s wall, {cpu / n * 1e6:,.0f} µs CPU per row")


if __name__ == "__main__":
    main()
