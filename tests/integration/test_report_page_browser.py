"""The monthly bulletin page (D8) in headless Chromium: every number a person sees in the tables is the CSV's, and
the charts render. Needs Debian's chromium (`apt-get install -y chromium`); skipped with that reason without it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sgs.bulletin.render import read_csv
from sgs.cli import main
from sgs.domain.bulletin import CITY
from tests.support.headless_chromium import CHROMIUM, Browser
from tests.support.report_aggregates import MONTH, write_aggregates

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs /usr/bin/chromium: apt-get update && apt-get install -y chromium"
)

CELLS_JS = """
(() => {
  const out = {};
  for (const tr of document.querySelectorAll("tr[data-unit]")) {
    const cells = out[tr.dataset.unit] = {};
    for (const td of tr.querySelectorAll("td[data-col]")) cells[td.dataset.col] = td.innerText.trim();
  }
  return out;
})()
"""


def test_bulletin_page_in_chromium_shows_the_csv_numbers(tmp_path: Path) -> None:
    url = write_aggregates(tmp_path / "aggregates.db")
    out = tmp_path / "bulletin"
    assert main(["report", "--month", MONTH, "--aggregates-url", url, "--out", str(out)]) == 0
    rows = read_csv(out / f"bulletin-{MONTH}.csv")

    async def browse() -> tuple[dict[str, dict[str, str]], int, str]:
        async with Browser() as page:
            await page.goto((out / f"bulletin-{MONTH}.html").as_uri())
            cells = await page.evaluate(CELLS_JS)
            charts = await page.evaluate("document.querySelectorAll('figure svg rect').length")
            title = await page.evaluate("document.title")
            return cells, charts, title

    cells, bars, title = asyncio.run(browse())
    assert MONTH in title
    assert len(cells) == len(rows)
    compared = 0
    for row in rows:
        key = f"{row['区划代码']}/{row['部门编码']}" if row["部门编码"] else row["区划代码"] or CITY
        shown = cells[key]
        for column, value in row.items():
            if column in shown:
                assert shown[column] == value, (key, column)
                compared += 1
    assert compared > len(rows) * 20  # every figure and its previous month, not just the names
    assert cells["310101/310101-scjg"]["优质数据占比"] == "50.0%"  # and the page is the known table's
    assert bars > 0
