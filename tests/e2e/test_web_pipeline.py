"""The web pages against the whole running pipeline (ingest -> grouping -> scoring ->
projection, each its own process, real Kafka, PostgreSQL and Redis), in a real browser
(Debian's Chromium driven by Playwright): the DOMAIN.md stories are sent in the platforms' own
formats; the page shows Красная ромашка with four members and the roles the API reports;
one more person of the company is sent through ingest while the page is open, and the
group_expanded signal scoring emits for her appears without a reload. The screenshots in
docs/screenshots/ come from this test, run with BG_UPDATE_SCREENSHOTS=1.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest
from playwright.async_api import expect

from demo.payloads import segment_identify, segment_track
from demo.send import send_all
from demo.stories import SITE, all_stories, day
from services.projection.web.i18n import Translator
from services.projection.web.views import in_role_order
from shared.topics import ensure_topics
from tests.e2e.conftest import TOKEN, Pipeline
from tests.support.browser import russian_page
from tests.support.kafka import namespace, new_namespace
from tests.support.processes import ROOT

pytestmark = pytest.mark.e2e

# The committed screenshots are refreshed on purpose (BG_UPDATE_SCREENSHOTS=1), not by every
# test run: a run must not change tracked files.
SCREENSHOTS = (ROOT / "docs" / "screenshots" if os.environ.get("BG_UPDATE_SCREENSHOTS") == "1"
               else ROOT / "tests" / "artifacts" / "screenshots")
ru = Translator("ru")
T = TypeVar("T")


@pytest.fixture(scope="module")
async def topic_namespace(servers) -> AsyncIterator[str]:
    """This module's own namespace (overrides the session's), so the pages show its stories only."""
    name = new_namespace("w")
    with namespace(name):
        await ensure_topics(wait_seconds=30)
        yield name


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 60.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        if found := await check():
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout}s")
        await asyncio.sleep(0.3)


async def send(pipeline: Pipeline, requests: list) -> None:
    await asyncio.to_thread(send_all, pipeline.ingest_url, requests)


async def test_the_pages_show_the_pipelines_buying_group_and_its_live_signals(pipeline: Pipeline):
    tag = uuid.uuid4().hex[:6]
    await send(pipeline, all_stories(tag))
    romashka, argo, gaz = (f"{name}{tag}.ru:hr" for name in ("romashka", "argotrubosbyt", "gazmyasneft"))
    async with httpx.AsyncClient(base_url=pipeline.api_url, headers=TOKEN, timeout=10) as api:
        async def detail(opportunity_id: str) -> dict[str, Any] | None:
            found = await api.get(f"/v1/opportunities/{opportunity_id}")
            return found.json() if found.status_code == 200 else None

        async def settled() -> dict[str, Any] | None:
            """Formed with four members, and nothing more in flight for it."""
            before = await detail(romashka)
            if not before or not before["formed_at"] or len(before["members"]) != 4 or not await detail(gaz):
                return None
            await asyncio.sleep(1.5)
            after = await detail(romashka)
            return after if after == before else None

        group = await eventually(settled)
    # The page must say what the API says: the same members, the same roles.
    roles = {m["name"] or m["email"]: ru.value("role", m["role"]) for m in group["members"]}
    covered = [ru.value("role", r) for r in in_role_order(group["covered_roles"])]

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    async with russian_page() as (page, errors):
        await page.goto(f"{pipeline.api_url}/web/")
        row = page.locator(f'tr[data-opportunity-id="{romashka}"]')
        await expect(row).to_contain_text("Красная ромашка")
        await expect(row.locator("td.members")).to_have_text("4")
        await expect(row.locator(".role-names li.on")).to_have_text(covered)
        position = {o: int(await page.locator(f'tr[data-opportunity-id="{o}"] td.rank').inner_text())
                    for o in (argo, gaz)}
        assert position[argo] < position[gaz]
        await page.screenshot(path=SCREENSHOTS / "priorities.png")

        await row.get_by_role("link", name="Красная ромашка").click()
        await expect(page.locator("h1")).to_contain_text("Красная ромашка")
        await expect(page.locator(".seat.filled")).to_have_count(4)
        for name, role in roles.items():
            await expect(page.locator(".seat.filled", has_text=name).locator(".role")).to_contain_text(role)
        assert await page.locator("svg.timeline circle.touch").count() >= 4
        await expect(page.locator("body")).to_have_attribute("data-live", "open", timeout=20_000)

        # A fifth person of the company, through ingest, while the page is open.
        lawyer = f"a.lebedeva@romashka{tag}.ru"
        await send(pipeline, [
            segment_identify(f"rm{tag}-live-1", day(10), lawyer, "Анна Лебедева", "Юрисконсульт",
                             "ООО «Красная ромашка»"),
            segment_track(f"rm{tag}-live-2", day(10, 1), "Case Study Downloaded", user_id=lawyer, email=lawyer,
                          asset_id="hr-compliance-checklist", url=f"{SITE}/solutions/hr/compliance-checklist"),
        ])
        arrived = page.locator("#live-list .signal.fresh", has_text="Анна Лебедева")
        await expect(arrived.first).to_contain_text("Группа расширилась", timeout=30_000)
        # The page follows without a reload: her seat appears in the group picture.
        await expect(page.locator(".seat.filled")).to_have_count(5, timeout=30_000)
        await expect(page.locator(".seat.filled", has_text="Анна Лебедева")).to_be_visible()
        await page.wait_for_timeout(2600)  # the arrival highlight fades before the screenshot
        await page.screenshot(path=SCREENSHOTS / "opportunity.png", full_page=True)

        await page.goto(f"{pipeline.api_url}/web/metrics")
        await expect(page.locator("svg.plot")).to_have_count(6)
        await page.screenshot(path=SCREENSHOTS / "metrics.png", full_page=True)
        assert errors == []
    # The same pages on a phone (375 px).
    async with russian_page(width=375, height=812) as (phone, errors):
        await phone.goto(f"{pipeline.api_url}/web/")
        await expect(phone.locator(f'tr[data-opportunity-id="{romashka}"] td.members')).to_have_text("5")
        await phone.screenshot(path=SCREENSHOTS / "priorities-375.png", full_page=True)
        await phone.goto(f"{pipeline.api_url}/web/opportunities/{romashka}")
        await expect(phone.locator(".seat.filled")).to_have_count(5)
        await phone.screenshot(path=SCREENSHOTS / "opportunity-375.png", full_page=True)
        assert await phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert errors == []
