"""CPU cost of signing and checking one message (issue 16): Ed25519 over topic + key + value, as every process
signs what it writes and checks what it reads, on a penalty record's real Avro bytes; and of the first check of a
department token (scrypt; later requests with the same token hit the process's cache).

    .venv/bin/python benchmarks/bench_signing.py [--messages 20000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from sgs.config import load_config
from sgs.serialization.codec import default_codec
from sgs.serialization.signing import Keyring, local_keys
from sgs.tokens import hash_token, matches, new_token


def penalty_bytes() -> tuple[bytes, bytes]:
    federation = load_config()
    dept = federation.districts[0].departments[0]
    record_id = f"penalty:{dept.uscc}:沪黄市监罚〔2026〕1号"
    record = {
        "envelope": {
            "record_id": record_id,
            "version": 1,
            "operation": "CREATE",
            "kind": "PENALTY",
            "source_node": dept.node,
            "department": dept.id,
            "division_code": dept.node,
            "decided_on": date(2026, 10, 9),
            "published_at": None,
            "submitted_at": datetime.now(UTC),
            "receipt_id": "0" * 32,
            "trace_id": "0" * 32,
        },
        "counterpart": {
            "name": "上海测试贸易有限公司",
            "category": "LEGAL_PERSON",
            "uscc": "91310000MA1FL0000X",
        },
        "decision_doc_no": "沪黄市监罚〔2026〕1号",
        "violation_type": "未按规定公示信息",
        "violation_facts": "经查，当事人未按规定公示信息。",
        "legal_basis": "《企业信息公示暂行条例》第十八条",
        "penalty_types": ["FINE"],
        "penalty_content": "罚款人民币五千元",
        "fine_amount": None,
        "confiscated_amount": None,
        "license_suspended": None,
        "decided_on": date(2026, 10, 9),
        "valid_to": None,
        "publicity_end": None,
        "authority": dept.name,
        "authority_uscc": dept.uscc,
        "source_unit": dept.name,
        "source_unit_uscc": dept.uscc,
        "remarks": None,
        "procedure": "GENERAL",
        "severity": "GENERAL",
        "annotations": None,
    }
    return record_id.encode(), default_codec().encode("sgs.PenaltyRecord", record)


def per_op_us(n: int, fn: object) -> float:
    start = time.process_time()
    for _ in range(n):
        fn()  # type: ignore[operator]
    return (time.process_time() - start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=20_000)
    n = parser.parse_args().messages
    key, value = penalty_bytes()
    topic = "sgs.submitted.penalty"
    with tempfile.TemporaryDirectory() as tmp:
        federation = load_config(local_keys(load_config(), Path(tmp)))
        keyring = Keyring.of(federation)
        signer = keyring.signer(Path(tmp), "node.310101")
    headers = signer.headers(topic, key, value)
    allowed = {"node.310101"}
    assert keyring.check(topic, key, value, headers, allowed) == "node.310101"
    sign = per_op_us(n, lambda: signer.headers(topic, key, value))
    check = per_op_us(n, lambda: keyring.check(topic, key, value, headers, allowed))
    token = new_token("310101-scjg")
    token_hash = hash_token(token)
    scrypt = per_op_us(20, lambda: matches(token, token_hash))
    print(f"message: {len(value)} bytes of Avro, {n} rounds, CPU time")
    print(f"sign   {sign:8.1f} µs a message  ({1e6 / sign:,.0f}/s on one core)")
    print(f"check  {check:8.1f} µs a message  ({1e6 / check:,.0f}/s on one core)")
    print(f"token  {scrypt / 1000:8.1f} ms the first check of a department token (scrypt N=2^14, r=8, p=1)")


if __name__ == "__main__":
    main()
