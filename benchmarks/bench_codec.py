"""Encode and decode N penalty records with the project's Avro codec (compiled from the schemas); prints records per second.

A benchmark script, not a test: `python benchmarks/bench_codec.py [--records 100000]`. Both framings are measured
with the same records: single-object encoding (no server) and, with --registry-url, the Confluent wire format.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
from decimal import Decimal
from typing import Any

from sgs.domain.kinds import record_id
from sgs.serialization.codec import Codec
from sgs.serialization.registry import SchemaRegistry

AUTHORITY = "113101010010100169"


def penalty(i: int) -> dict[str, Any]:
    decided = datetime.date(2024, 1, 1) + datetime.timedelta(days=i % 300)
    doc_no = f"沪市监黄处〔2024〕{i:07d}号"
    return {
        "envelope": {
            "record_id": record_id("penalty", AUTHORITY, doc_no),
            "version": 1,
            "operation": "CREATE",
            "kind": "PENALTY",
            "source_node": "310101",
            "department": "scjg",
            "division_code": "310101",
            "decided_on": decided,
            "published_at": None,
            "submitted_at": datetime.datetime(2024, 12, 1, 8, 0, tzinfo=datetime.UTC),
            "receipt_id": f"r-{i}",
            "trace_id": f"t-{i}",
        },
        "counterpart": {
            "name": f"上海示例{i}有限公司",
            "category": "LEGAL_PERSON",
            "uscc": "91310101MA1FP0009D",
            "legal_rep": "王明",
        },
        "decision_doc_no": doc_no,
        "violation_type": "发布虚假广告",
        "violation_facts": "当事人在其网站发布含有虚假内容的广告，违反了《中华人民共和国广告法》第二十八条。",
        "legal_basis": "《中华人民共和国广告法》第五十五条",
        "penalty_types": ["WARNING", "FINE"],
        "penalty_content": "警告，罚款人民币壹万伍仟元",
        "fine_amount": Decimal(i % 1000) / 100,
        "decided_on": decided,
        "publicity_end": decided + datetime.timedelta(days=365),
        "authority": "黄浦区市场监督管理局",
        "authority_uscc": AUTHORITY,
        "source_unit": "黄浦区市场监督管理局",
        "source_unit_uscc": AUTHORITY,
        "procedure": "GENERAL",
        "severity": "GENERAL",
    }


def measure(codec: Codec, records: list[dict[str, Any]], topic: str | None) -> tuple[float, float, int]:
    start = time.perf_counter()
    encoded = [codec.encode("sgs.PenaltyRecord", r, topic=topic) for r in records]
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    for data in encoded:
        codec.decode(data)
    decode_s = time.perf_counter() - start
    return encode_s, decode_s, sum(map(len, encoded))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument(
        "--registry-url", default=None, help="also measure the Confluent framing against this registry"
    )
    args = parser.parse_args()
    records = [penalty(i) for i in range(args.records)]
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    runs: list[tuple[str, Codec, str | None]] = [("single-object", Codec(), None)]
    if args.registry_url:
        runs.append(("confluent", Codec(registry=SchemaRegistry(args.registry_url)), "sgs.submitted.penalty"))
    for label, codec, topic in runs:
        encode_s, decode_s, size = measure(codec, records, topic)
        n = len(records)
        print(
            f"{label}: {n} penalty records, {size / n:.0f} bytes each; "
            f"encode {n / encode_s:,.0f} records/s, decode {n / decode_s:,.0f} records/s, "
            f"encode+decode {n / (encode_s + decode_s):,.0f} records/s"
        )


if __name__ == "__main__":
    main()
