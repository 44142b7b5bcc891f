"""A small simulated month through the real worker into `sgs report` (D8): records accepted on time and late, one
refused by a district node (an `sgs.Rejection` at stage node on `sgs.rejected`), and the bulletin's figures for
the department. The month (2025-03) is this test's own, so records of other tests on the shared broker do not
change its numbers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from sgs.bulletin.render import read_csv
from sgs.cli import main
from sgs.config import Federation
from sgs.kafka.topics import REJECTED
from sgs.serialization.codec import default_codec
from tests.support.polling import wait_until
from tests.support.worker_process import Submitter, WorkerProcess
from tests.support.worker_records import new_uscc, record

MONTH = "2025-03"
ON_TIME, LATE = 6, 2


@pytest.fixture
def worker(kafka: str, tmp_path: Path) -> Iterator[WorkerProcess]:
    (tmp_path / "worker").mkdir()
    w = WorkerProcess(kafka, tmp_path / "worker").start()
    w.wait_ready()
    yield w
    assert w.stop() == 0, w.log_tail()


def test_simulated_month_through_the_worker_makes_the_bulletin(
    worker: WorkerProcess, kafka: str, federation: Federation, tmp_path: Path
) -> None:
    dept = federation.districts[0].departments[0]
    submitter = Submitter(kafka)
    try:
        for n in range(ON_TIME + LATE):
            uscc, name = new_uscc(), f"上海报表测试{n}有限公司"
            submitter.legal_person(uscc, name)
            submitted_on = date(2025, 3, 5) if n < ON_TIME else date(2025, 3, 28)  # decided 3 March (D5)
            rec = record(
                federation,
                "penalty",
                decided_on=date(2025, 3, 3),
                submitted_on=submitted_on,
                counterpart_name=name,
                counterpart_uscc=uscc,
            )
            submitter.submit("penalty", rec)
        refused = {
            "receipt_id": f"report-test-{datetime.now(UTC).timestamp()}",
            "record_id": None,
            "version": None,
            "source_node": dept.node,
            "department": dept.id,
            "stage": "node",
            "original": b'{"\\u5904\\u7f5a\\u673a\\u5173": ""}',
            "reasons": [
                {"field": "处罚机关", "rule": "required", "message": "必填", "value": None},
                {
                    "field": "处罚决定日期",
                    "rule": "date.invalid",
                    "message": "日期无效",
                    "value": "2025-13-45",
                },
            ],
            "rejected_at": datetime(2025, 3, 10, 2, 0, tzinfo=UTC),
        }
        submitter.raw(
            REJECTED,
            refused["receipt_id"].encode(),
            default_codec().encode("sgs.Rejection", refused),
            signer=f"node.{dept.node}",
        )
    finally:
        submitter.close()

    url = f"sqlite:///{(tmp_path / 'worker' / 'aggregates.db').resolve()}"
    out = tmp_path / "bulletin"

    def department_row() -> dict[str, str] | None:
        if main(["report", "--month", MONTH, "--aggregates-url", url, "--out", str(out)]) != 0:
            return None
        rows = read_csv(out / f"bulletin-{MONTH}.csv")
        return next(r for r in rows if r["部门编码"] == dept.id)

    def complete() -> bool:
        row = department_row()
        return (
            row is not None and row["报送记录数"] == str(ON_TIME + LATE + 1) and row["优质数据占比"] != "0.0%"
        )

    wait_until(complete, 90, "the worker's counts reaching the bulletin")
    wait_until(
        lambda: (department_row() or {}).get("优质数据占比") == f"{100 * ON_TIME / 9:.1f}%",
        30,
        "clean counts",
    )
    row = department_row()
    assert row is not None
    assert row["通过记录数"] == str(ON_TIME + LATE)
    assert row["按时公示率(D5)"] == f"{100 * ON_TIME / (ON_TIME + LATE):.1f}%"
    assert row["退回率"] == f"{100 / 9:.1f}%"
    assert row["退回率·required"] == row["退回率·date.invalid"] == f"{100 / 9:.1f}%"
    assert row["公示率"] == f"{100 * (ON_TIME + LATE) / 9:.1f}%"  # general-procedure penalties: all published
    assert (out / f"bulletin-{MONTH}.html").read_text(encoding="utf-8").count("<tr data-unit=") > 1
