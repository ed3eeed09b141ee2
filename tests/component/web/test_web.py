"""The web pages in a real browser (Debian's Chromium driven by Playwright) against the
projection process, real Kafka and PostgreSQL, in production mode (tokens configured): the
DOMAIN.md stories go onto the projection's topics as grouping and scoring write them; the
browser finds Красная ромашка with its four members and roles, opens it, and sees signals
produced after the page opened arrive without a reload. Its screenshots go to
tests/artifacts/screenshots/ (the committed ones come from the pipeline test in tests/e2e/).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import pytest
from playwright.async_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import topics
from shared.codec import encode
from shared.schemas.scoring import Signal
from tests.component.projection.conftest import Env, wait_caught_up
from tests.support.browser import russian_page
from tests.support.kafka import produce
from tests.support.processes import ARTIFACTS, free_port
from tests.unit.projection.stories import Log, argotrubosbyt, day, gazmyasneft, krasnaya_romashka

pytestmark = pytest.mark.component

READ_TOKEN = f"web-read-{uuid.uuid4().hex}"
SCREENSHOTS = ARTIFACTS / "screenshots"
ROLES_RU = ("Инициатор", "Технический эксперт", "Владелец бюджета", "Принимает решение")


@dataclass
class Site:
    url: str
    env: Env
    log: Log
    romashka: str
    argo: str


@pytest.fixture(scope="module")
async def site(env: Env, engine: AsyncEngine) -> AsyncIterator[Site]:
    log = Log(uuid.uuid4().hex[:6])
    romashka, argo = krasnaya_romashka(log), argotrubosbyt(log)
    gazmyasneft(log)
    await env.produce(log)
    port = free_port()
    # Tokens configured: the production mode, where no page may show data without one.
    service = env.service(f"web-{env.namespace.rstrip('.')}", port, BG_API_TOKENS=READ_TOKEN,
                          BG_API_WRITE_TOKENS=f"web-crm-{uuid.uuid4().hex}")
    with service:
        await wait_caught_up(env, engine, service)
        yield Site(f"http://127.0.0.1:{port}", env, log, romashka, argo)


async def send_signal(site: Site, opportunity: str, kind: str, score: float) -> Signal:
    """A signal as scoring would write it, with an id no stored signal has."""
    template = site.log.signal(opportunity, kind, day(12), score, "A")
    signal = template.model_copy(update={"signal_id": f"live-{uuid.uuid4().hex[:10]}"})
    await produce(site.env.topic(topics.SIGNALS), [(signal.key(), encode(signal))])
    return signal


def test_no_page_shows_data_without_the_token(site: Site):
    with httpx.Client(base_url=site.url, timeout=10) as client:
        for path in ("/web/", f"/web/opportunities/{quote(site.romashka, safe='')}", "/web/metrics"):
            response = client.get(path)
            assert response.status_code == 401, path
            assert "Красная ромашка" not in response.text and 'name="token"' in response.text
        assert client.get("/web/live").status_code == 401
        assert client.get("/web/", params={"token": "wrong"}).status_code == 401
        assert client.post("/web/login", data={"token": "wrong", "next": "/web/"}).status_code == 401

        signed_in = client.post("/web/login", data={"token": READ_TOKEN, "next": "https://evil.example/"})
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/web/"
        assert "httponly" in signed_in.headers["set-cookie"].lower()
        everything = client.get("/web/", params={"status": "", "tier": "", "solution": "", "q": ""})
        assert everything.status_code == 200 and everything.text.count("data-opportunity-id=") == 3
        # The search is case-insensitive over account names, Cyrillic included.
        found = client.get("/web/", params={"q": "РОМАШКА"})
        assert found.status_code == 200
        assert "Красная ромашка" in found.text and "Арготрубосбыт" not in found.text


async def expect_live(page: Page) -> None:
    """The page's event stream is connected and the server follows the end of the topic."""
    await expect(page.locator("body")).to_have_attribute("data-live", "open", timeout=20_000)


async def test_browser_finds_the_buying_group_and_sees_live_signals(site: Site):
    started = time.monotonic()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    async with russian_page() as (page, errors):
        # A link with ?token= signs the browser in and loses the token from the address.
        await page.goto(f"{site.url}/web/?token={READ_TOKEN}")
        assert page.url == f"{site.url}/web/"
        await expect(page.locator("h1")).to_have_text("Возможности по приоритету")

        row = page.locator("tr[data-opportunity-id]", has_text="Красная ромашка")
        await expect(row.locator("td.members")).to_have_text("4")
        await expect(row.locator(".role-names li.on")).to_have_text(list(ROLES_RU))
        await expect(row.locator(".role-names li.off")).to_have_count(0)
        await expect(row.locator("svg.strip rect.cell.on")).to_have_count(4)
        ranks = {name: int(await page.locator("tr", has_text=name).locator("td.rank").inner_text())
                 for name in ("Арготрубосбыт", "Газмяснефть")}
        assert ranks["Арготрубосбыт"] < ranks["Газмяснефть"]

        # Live on the priorities page: a signal produced now shows up in the side panel.
        await expect_live(page)
        first = await send_signal(site, site.argo, "priority_changed", 71.0)
        card = page.locator(f'#live-list [data-signal-id="{first.signal_id}"]')
        await expect(card).to_contain_text("Приоритет изменился")
        await expect(card).to_contain_text("Арготрубосбыт")
        await expect(page.locator("tr", has_text="Арготрубосбыт").locator(".new-signal")).to_be_visible()
        await page.screenshot(path=SCREENSHOTS / "priorities.png")

        # The filter form, as a person uses it: empty fields mean "any".
        await page.locator("input[name=q]").fill("ромашка")
        await page.get_by_role("button", name="Показать").click()
        await expect(page.locator("tr[data-opportunity-id]")).to_have_count(1)
        await expect(page.locator("p.total")).to_have_text("Всего: 1")

        # One opportunity: the group as a picture, the touches plot, the score, the signals.
        await row.get_by_role("link", name="Красная ромашка").click()
        await expect(page.locator("h1")).to_contain_text("Красная ромашка")
        seats = page.locator(".seat.filled")
        await expect(seats).to_have_count(4)
        for name, role in zip(("Елена Соколова", "Сергей Волков", "Ольга Петрова", "Иван Михайлов"),
                              ROLES_RU, strict=True):
            await expect(page.locator(".seat.filled", has_text=name).locator(".role")).to_contain_text(role)
        await expect(page.locator(".dept h3")).to_have_text(["HR", "ИТ", "Финансы", "Руководство"])
        await expect(page.locator(".seat.empty")).to_have_count(0)
        await expect(page.locator("svg.timeline circle.touch")).to_have_count(7)
        await expect(page.locator("table.parts tr")).to_have_count(5)
        await expect(page.locator("#live-list .signal")).to_have_count(2)

        await expect_live(page)
        second = await send_signal(site, site.romashka, "group_expanded", 84.0)
        await send_signal(site, site.argo, "stalled", 60.0)  # another opportunity's: not shown here
        arrived = page.locator(f'#live-list [data-signal-id="{second.signal_id}"]')
        await expect(arrived).to_contain_text("Группа расширилась")
        await expect(page.locator("#live-list .signal").first).to_have_attribute("data-signal-id",
                                                                                 second.signal_id)
        await expect(page.locator("#live-list .signal")).to_have_count(3)
        await page.screenshot(path=SCREENSHOTS / "opportunity.png", full_page=True)

        # The language switch keeps the page and remembers the choice.
        await page.locator("a.lang-en").click()
        await expect(page.locator(".card h2").first).to_have_text("Buying group")
        await page.goto(f"{site.url}/web/metrics")
        await expect(page.locator("h1")).to_have_text("Buying-group metrics")
        await expect(page.locator(".kpi .v").first).to_have_text("3")
        await expect(page.locator("svg.plot")).to_have_count(6)
        await page.screenshot(path=SCREENSHOTS / "metrics.png", full_page=True)
        assert errors == []
    assert time.monotonic() - started < 60
