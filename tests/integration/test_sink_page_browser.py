"""The public disclosure page in headless Chromium: a phone-sized screen, search a company by name, open its
record. Needs Debian's chromium (`apt-get install -y chromium`); skipped with that reason when it is missing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.sink.store import SinkStore
from tests.support.headless_chromium import CHROMIUM, Browser
from tests.support.polling import wait_until
from tests.support.sink_process import SinkProcess, produce, relay_topic
from tests.support.sink_records import license_record, penalty_record, unique_tag, withdrawal

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs /usr/bin/chromium: apt-get update && apt-get install -y chromium"
)
PHONE_WIDTH = 375


@pytest.fixture
def sink(kafka: str, data_dir: Path) -> Iterator[SinkProcess]:
    process = SinkProcess(kafka, relay_topic(kafka), data_dir).start()
    yield process
    process.stop()


def test_a_person_on_a_phone_searches_a_company_by_name_and_opens_its_record(
    kafka: str, sink: SinkProcess
) -> None:
    tag = unique_tag()
    name = f"上海{tag}餐饮管理有限公司"
    penalty = penalty_record(f"沪黄市监处〔{tag}〕1号", name)
    other = license_record(f"沪黄市监许〔{tag}〕2号", f"上海{tag}另一家有限公司")
    withdrawn = license_record(f"沪黄市监许〔{tag}〕3号", f"上海{tag}餐饮管理有限公司分店")
    sent = produce(kafka, sink.topic, [penalty, other, withdrawn, withdrawal(withdrawn)])
    store = SinkStore(sink.store_url)
    wait_until(lambda: sink.caught_up(store, sent), what="the sink consuming the records")
    store.close()

    async def browse() -> dict[str, object]:
        async with Browser() as page:
            await page.call(
                "Emulation.setDeviceMetricsOverride",
                width=PHONE_WIDTH,
                height=740,
                deviceScaleFactor=2,
                mobile=True,
            )
            await page.goto(sink.url + "/")
            seen: dict[str, object] = {
                "home_lists_it": await page.evaluate(f"document.body.innerText.includes({json.dumps(name)})"),
                "home_fits_phone": await page.evaluate(
                    f"document.documentElement.scrollWidth <= {PHONE_WIDTH}"
                ),
            }
            await page.evaluate(
                f"document.querySelector('#search input[name=name]').value = {json.dumps(tag + '餐饮')}"
            )
            await page.click_and_wait("#search button[type=submit]")
            seen["search_url"] = await page.evaluate("location.pathname + location.search")
            seen["results"] = await page.evaluate(
                "[...document.querySelectorAll('a.record-link')].map(a => a.textContent.trim())"
            )
            await page.click_and_wait("a.record-link")
            seen["record_url"] = await page.evaluate("location.pathname")
            seen["title"] = await page.evaluate("document.querySelector('#record-title').innerText")
            seen["fields"] = await page.evaluate(
                "Object.fromEntries([...document.querySelectorAll('#fields tr')]"
                ".map(tr => [tr.querySelector('th').innerText, tr.querySelector('td').innerText]))"
            )
            seen["record_fits_phone"] = await page.evaluate(
                f"document.documentElement.scrollWidth <= {PHONE_WIDTH}"
            )
            return seen

    seen = asyncio.run(browse())
    assert seen["home_lists_it"] is True and seen["home_fits_phone"] is True
    assert str(seen["search_url"]).startswith("/search?name=")
    assert seen["results"] == [name]  # the withdrawn branch is not listed, the other company does not match
    assert str(seen["record_url"]).startswith("/record/")
    assert name in str(seen["title"]) and "行政处罚" in str(seen["title"])
    fields = seen["fields"]
    assert isinstance(fields, dict)
    assert fields["行政处罚决定书文号"] == f"沪黄市监处〔{tag}〕1号"
    assert fields["行政相对人名称"] == name
    assert fields["处罚机关"] == "黄浦区市场监督管理局"
    assert "法定代表人证件号码" not in fields  # D17
    assert seen["record_fits_phone"] is True
