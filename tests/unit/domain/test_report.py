"""The monthly bulletin (D8) from a hand-made aggregates table with known numbers: every figure, the previous
month beside it, the ranking, coverage of the catalogue, the CSV and the page, and the errors that exit 2."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest

from sgs.bulletin.counts import read_counts
from sgs.bulletin.render import read_csv, write
from sgs.cli import main
from sgs.config import Federation
from sgs.domain.bulletin import CITY, NOT_APPLICABLE, Bulletin, build, previous_month
from tests.support.report_aggregates import MONTH, write_aggregates


@pytest.fixture
def bulletin(federation: Federation, tmp_path: Path) -> Bulletin:
    url = write_aggregates(tmp_path / "aggregates.db")
    counts = read_counts(url, [MONTH, previous_month(MONTH)])
    return build(federation, counts, MONTH)


def test_the_worker_writes_and_the_bulletin_reads_aggregates_on_postgresql(
    federation: Federation, bulletin: Bulletin, postgres_url: str, postgres_schema: str
) -> None:
    """The deployment's aggregates store, given as a plain `postgresql://` URL (psycopg 3 is the driver shipped)."""
    url = f"{postgres_url}?options=-csearch_path%3D{postgres_schema}"
    assert url.startswith("postgresql://")
    write_aggregates(url)
    counts = read_counts(url, [MONTH, previous_month(MONTH)])
    assert build(federation, counts, MONTH).units() == bulletin.units()


def row_of(b: Bulletin, key: str) -> dict[str, str]:
    return b.row(next(u for u in b.units() if u.key == key))


def test_department_figures_sum_partitions_and_kinds_and_follow_the_definitions(bulletin) -> None:
    row = row_of(bulletin, "310101/310101-scjg")
    assert row["报送记录数"] == "10"  # 8 reached the worker + 2 refused at the node
    assert row["通过记录数"] == "7"
    assert row["按时公示率(D5)"] == "85.7%"  # 6 of 7 accepted within 7 working days
    assert row["按时报送率(D6)"] == "75.0%"  # 3 of the 4 that gave a portal publication time
    assert row["退回率"] == "30.0%"  # (2 at the node + 1 at the worker) / 10
    assert row["比对不一致数"] == "1"
    assert row["公示率"] == "66.7%"  # 6 published / (10 received - 1 accepted but not for publication)
    assert row["优质数据占比"] == "50.0%"  # 5 clean / 10
    assert row["退回率·required"] == "20.0%" and row["退回率·uscc.check_char"] == "10.0%"
    assert row["数据范围覆盖率"] == "100.0%"


def test_penalties_are_counted_by_the_rule_set_and_tier_that_decided_them(bulletin) -> None:
    """Issue 15: one column per (rule set, tier) seen in the month or the one before; counts, summed up the tree."""
    tiers = [n for n in bulletin.names if n.startswith("处罚数·")]
    assert tiers == [
        "处罚数·ndrc-order-36·一般",
        "处罚数·ndrc-order-36·严重",
        "处罚数·seeds·一般",
        "处罚数·seeds·轻微",
    ]
    scjg = row_of(bulletin, "310101/310101-scjg")
    assert (scjg["处罚数·ndrc-order-36·一般"], scjg["处罚数·seeds·一般"], scjg["处罚数·ndrc-order-36·严重"]) == (
        "3", "1", "0"
    )  # fmt: skip
    assert (scjg["处罚数·seeds·轻微"], scjg["处罚数·seeds·轻微（上月）"]) == ("0", "5")
    district = row_of(bulletin, "310101")
    assert (district["处罚数·ndrc-order-36·一般"], district["处罚数·ndrc-order-36·严重"]) == ("3", "4")
    assert row_of(bulletin, CITY)["处罚数·ndrc-order-36·严重"] == "4"


def test_share_without_a_denominator_is_not_applicable(bulletin) -> None:
    row = row_of(bulletin, "310101/310101-sthj")
    assert row["按时报送率(D6)"] == NOT_APPLICABLE  # nobody said when the portal published
    assert row["按时公示率(D5)"] == "100.0%"
    silent = row_of(bulletin, "310105/310105-scjg")  # in the catalogue, sent nothing
    assert (silent["报送记录数"], silent["优质数据占比"], silent["数据范围覆盖率"], silent["排名"]) == (
        "0",
        NOT_APPLICABLE,
        "0.0%",
        "",
    )


def test_district_and_city_add_up_and_coverage_counts_catalogue_departments_that_reported(
    bulletin, federation: Federation
) -> None:
    district = row_of(bulletin, "310101")
    assert district["报送记录数"] == "14" and district["优质数据占比"] == "64.3%"  # 9 clean of 14
    assert district["数据范围覆盖率"] == "40.0%"  # 2 of its 5 departments
    city = row_of(bulletin, CITY)
    assert city["报送记录数"] == "17"  # the record of an unknown department counts for the city
    catalogue = sum(len(n.departments) for n in federation.nodes)
    assert city["数据范围覆盖率"] == f"{100 * 3 / catalogue:.1f}%"  # unknown departments are not in it


def test_previous_month_stands_beside_each_figure(bulletin) -> None:
    row = row_of(bulletin, "310101/310101-scjg")
    assert (row["报送记录数（上月）"], row["优质数据占比（上月）"], row["公示率（上月）"]) == (
        "5",
        "100.0%",
        "100.0%",
    )
    assert row_of(bulletin, "310104/310104-scjg")["报送记录数（上月）"] == "0"
    assert previous_month("2026-01") == "2025-12"


def test_ranked_by_quality_share_then_publication_rate_then_records(bulletin) -> None:
    ranked = {u.key: u.rank for u in bulletin.departments if u.rank is not None}
    # 310101-sthj 100% clean; 310104-scjg and 310101-scjg both 50%, broken by 公示率 100% vs 66.7%.
    assert ranked == {
        "310101/310101-sthj": 1,
        "310104/310104-scjg": 2,
        "310101/310101-scjg": 3,
        "unknown/unknown": 4,
    }
    districts = {u.key: u.rank for u in bulletin.districts if u.rank is not None}
    assert districts == {"310101": 1, "310104": 2, "unknown": 3}


def test_csv_has_a_bom_and_the_page_shows_the_same_numbers(bulletin, tmp_path: Path) -> None:
    csv_path, html_path = write(bulletin, tmp_path / "out")
    assert csv_path.read_bytes().startswith(b"\xef\xbb\xbf")
    rows = read_csv(csv_path)
    assert len(rows) == len(bulletin.units())
    cells = page_cells(html_path.read_text(encoding="utf-8"))
    for row in rows:
        key = f"{row['区划代码']}/{row['部门编码']}" if row["部门编码"] else row["区划代码"] or CITY
        for column, value in row.items():
            if column in cells[key]:
                assert cells[key][column] == value, (key, column)
    assert set(cells["310101/310101-scjg"]) >= {"公示率", "公示率（上月）", "退回率·required"}


def page_cells(html: str) -> dict[str, dict[str, str]]:
    """{data-unit: {data-col: text}} of the bulletin page's tables."""

    class Cells(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.out: dict[str, dict[str, str]] = {}
            self.unit: str | None = None
            self.col: str | None = None

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            a = dict(attrs)
            if tag == "tr" and a.get("data-unit"):
                self.unit = a["data-unit"]
                self.out.setdefault(self.unit, {})
            if tag == "td" and self.unit and a.get("data-col"):
                self.col = a["data-col"]
                self.out[self.unit][self.col] = ""

        def handle_data(self, data: str) -> None:
            if self.unit and self.col:
                self.out[self.unit][self.col] += data.strip()

        def handle_endtag(self, tag: str) -> None:
            if tag == "td":
                self.col = None

    parser = Cells()
    parser.feed(html)
    return parser.out


def test_report_command_writes_both_files(tmp_path: Path, capsys) -> None:
    url = write_aggregates(tmp_path / "aggregates.db")
    out = tmp_path / "bulletin"
    assert main(["report", "--month", MONTH, "--aggregates-url", url, "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"bulletin-{MONTH}.csv", f"bulletin-{MONTH}.html"]
    assert str(out / f"bulletin-{MONTH}.csv") in capsys.readouterr().out


@pytest.mark.parametrize(
    ("month", "store", "message"),
    [
        ("2026-03", "made", "no aggregates for 2026-03"),
        (MONTH, "missing", "no aggregates store"),
        ("2026-13", "made", "month must be YYYY-MM"),
        (MONTH, "postgres-down", "cannot read the aggregates store"),
    ],
)
def test_report_command_exits_2_with_a_clear_message(
    tmp_path: Path, capsys, month: str, store: str, message: str
) -> None:
    url = {
        "made": lambda: write_aggregates(tmp_path / "aggregates.db"),
        "missing": lambda: f"sqlite:///{tmp_path}/nothing-here.db",
        "postgres-down": lambda: "postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2",
    }[store]()
    assert main(["report", "--month", month, "--aggregates-url", url, "--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "nothing-here.db").exists()  # reading never creates a store
