"""The web pages in a real browser (Debian's Chromium driven by Playwright) against the
projection process, real Kafka and PostgreSQL, in production mode (tokens configured): the
DOMAIN.md stories go onto the projection's topics as grouping and scoring write them; the
browser finds Красная ромашка with its four members and roles, opens it, and sees signals
produced after the page opened arrive without a reload. Its screenshots go to
tests/artifacts/screenshots/ (the committed ones come from the pipeline test in tests/e2e/).
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from urllib.parse import quote

import httpx
import pytest
from playwright.async_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import topics
from shared.codec import encode
from shared.schemas.scoring import Signal
from shared.schemas.touch import TouchKind
from tests.component.projection.conftest import Env, wait_caught_up
from tests.support.browser import russian_page
from tests.support.kafka import produce
from tests.support.processes import ARTIFACTS, free_port
from tests.unit.projection.stories import (
    ELENA,
    IVAN,
    OLGA,
    SERGEY,
    Log,
    argotrubosbyt,
    day,
    gazmyasneft,
    krasnaya_romashka,
)

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
        # Every opportunity of the module's log (the live test adds two, when it ran before).
        assert everything.status_code == 200 and everything.text.count("data-opportunity-id=") == len(site.log.accounts)
        # The search is case-insensitive over account names, Cyrillic included.
        found = client.get("/web/", params={"q": "РОМАШКА"})
        assert found.status_code == 200
        assert "Красная ромашка" in found.text and "Арготрубосбыт" not in found.text


async def expect_live(page: Page) -> None:
    """The page's event stream is connected and the server follows the end of the topic."""
    await expect(page.locator("body")).to_have_attribute("data-live", "open", timeout=20_000)


async def test_browser_finds_the_buying_group_and_sees_live_signals(site: Site):
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
        # A record the live consumer cannot use, then a signal: the page skips the first and
        # shows the second (the projection dead-letters that record; a page has nothing to show).
        await produce(site.env.topic(topics.SIGNALS), [(site.romashka, b"{not json"), (site.romashka, b"")])
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
        await expect(page.locator(".kpi .v").first).to_have_text(str(len(site.log.accounts)))  # opportunities
        await expect(page.locator("svg.plot")).to_have_count(6)
        await page.screenshot(path=SCREENSHOTS / "metrics.png", full_page=True)
        assert errors == []


# ------------------------------------------------------------------ issue 14: any screen, search, export


FITS = """() => {
  const width = window.innerWidth;
  const outside = [];
  for (const cell of document.querySelectorAll("tr[data-opportunity-id] td")) {
    const box = cell.getBoundingClientRect();
    if (box.width <= 0 || box.height <= 0 || box.left < -1 || box.right > width + 1) {
      outside.push((cell.dataset.label || cell.className) + ": " + Math.round(box.left) + ".." + Math.round(box.right));
    }
  }
  const lang = document.querySelector(".lang-en").getBoundingClientRect();
  return {scroll: document.documentElement.scrollWidth, width, outside,
          lang: lang.width > 0 && lang.right <= width + 1};
}"""


@pytest.mark.parametrize("width", [1440, 375, 360])
async def test_pages_fit_the_screen_and_every_column_is_in_view(site: Site, width: int):
    """No sideways scroll at 1440 and 375 px; every column of every row is within the screen."""
    async with russian_page(width=width, height=900 if width > 600 else 812) as (page, errors):
        await page.goto(f"{site.url}/web/?token={READ_TOKEN}")
        # The three stories' rows, and the two the live test adds when it ran before.
        rows = len(site.log.accounts)
        await expect(page.locator("tr[data-opportunity-id]")).to_have_count(rows)
        found = await page.evaluate(FITS)
        assert found["scroll"] <= found["width"] and found["outside"] == [] and found["lang"], found
        assert await page.locator("tr[data-opportunity-id] td").count() == rows * 10
        if width < 600:  # one card per opportunity: each value carries its column's name
            labels = await page.locator("tr[data-opportunity-id]").first.locator("td").evaluate_all(
                "cells => cells.map(c => getComputedStyle(c, '::before').content)")
            assert '"Балл"' in labels and '"Роли"' in labels and '"Статус"' in labels
            await page.screenshot(path=SCREENSHOTS / "priorities-375.png", full_page=True)
        await page.locator("tr", has_text="Красная ромашка").get_by_role("link", name="Красная ромашка").click()
        await expect(page.locator(".seat.filled")).to_have_count(4)
        scroll, inner = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert scroll <= inner
        if width < 600:
            await page.screenshot(path=SCREENSHOTS / "opportunity-375.png", full_page=True)
        await page.goto(f"{site.url}/web/metrics")
        await expect(page.locator("svg.plot")).to_have_count(6)
        scroll, inner = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert scroll <= inner
        assert errors == []


def test_search_finds_people_emails_companies_and_domains_and_exports_csv(site: Site):
    romashka_domain = site.log.accounts[site.romashka].account_id
    with httpx.Client(base_url=site.url, timeout=10, headers={"Authorization": f"Bearer {READ_TOKEN}"}) as client:
        def found(q: str) -> list[str]:
            page = client.get("/web/", params={"q": q})
            assert page.status_code == 200
            return sorted(set(re.findall(r'<tr data-opportunity-id="([^"]+)"', page.text)))

        assert found("Сергей Волков") == [site.romashka]  # a person's name
        assert found(f"olga.petrova@{romashka_domain}") == [site.romashka]  # an email
        assert found("Арготрубо") == [site.argo]  # a company
        assert found(romashka_domain.split("-")[0] + "-") == [site.romashka]  # a domain
        assert found("нет-такого") == []

        refused = client.get("/web/", params={"tier": "Z"})
        assert refused.status_code == 422 and "(tier)" in refused.text and "«Z»" in refused.text
        assert client.get("/web/", params={"tier": "", "status": ""}).status_code == 200

        listing = client.get("/web/export.csv", params={"q": "ромашка"})
        assert listing.status_code == 200 and listing.headers["content-type"].startswith("text/csv")
        assert "attachment" in listing.headers["content-disposition"]
        rows = list(csv.reader(io.StringIO(listing.text.lstrip("\ufeff"))))
        assert len(rows) == 2 and rows[1][1] == site.romashka and rows[1][2] == "Красная ромашка"
        group = client.get(f"/web/opportunities/{quote(site.romashka, safe='')}/group.csv", params={"lang": "en"})
        members = list(csv.reader(io.StringIO(group.text.lstrip("\ufeff"))))
        assert members[0][0] == "Person" and sorted(r[0] for r in members[1:]) == sorted(
            ["Елена Соколова", "Сергей Волков", "Ольга Петрова", "Иван Михайлов"])
        assert client.get("/web/opportunities/none.ru%3Ahr/group.csv").status_code == 404
        # Without the token: no data.
        assert httpx.get(f"{site.url}/web/export.csv", timeout=10).status_code == 401


async def test_the_pages_follow_new_members_status_and_rows_without_a_reload(site: Site, engine: AsyncEngine):
    """Issue 11 item 6: an open opportunity page and the list update from the live stream.

    Its people are its own, not the stories': the module's other tests search for those and
    count the list's rows, in whatever order the tests run."""
    elena, sergey, olga, ivan = (replace(p, local=f"live-{p.local}", name=name) for p, name in (
        (ELENA, "Лидия Орлова"), (SERGEY, "Марк Белов"), (OLGA, "Нина Крылова"), (IVAN, "Пётр Лебедев")))
    log = site.log
    mark = len(log.messages)
    swallow = log.opportunity("lastochka.ru", "Ласточка", at=day(20))
    log.touch(swallow, elena, TouchKind.page_view, day(20))
    log.touch(swallow, sergey, TouchKind.page_view, day(20, 1))
    log.score(swallow, 35.0, "C", day(20, 1))
    log.signal(swallow, "group_forming", day(20, 1), 35.0, "C")
    await site.env.produce(log, start=mark)
    await wait_caught_up(site.env, engine)

    async with russian_page() as (listing, errors):
        await listing.goto(f"{site.url}/web/?token={READ_TOKEN}")
        row = listing.locator(f'tr[data-opportunity-id="{swallow}"]')
        await expect(row.locator("td.members")).to_have_text("2")
        await expect(row.locator(".badge")).to_have_text("формируется")
        opened = await listing.context.new_page()
        await opened.goto(f"{site.url}/web/opportunities/{quote(swallow, safe='')}")
        await expect(opened.locator(".seat.filled")).to_have_count(2)
        await expect(opened.locator(".opp-head .badge")).to_have_text("формируется")
        for page in (listing, opened):
            await expect_live(page)
            await page.evaluate("window.notReloaded = true")

        mark = len(log.messages)
        log.touch(swallow, olga, TouchKind.download, day(20, 2), asset_id="hr-roi-case")
        log.signal(swallow, "group_formed", day(20, 2), 72.0, "A")
        log.score(swallow, 72.0, "A", day(20, 2))
        newcomer = log.opportunity("novaya.ru", "Новая заря", at=day(20, 3))
        log.touch(newcomer, ivan, TouchKind.event_registered, day(20, 3))
        await site.env.produce(log, start=mark)

        await expect(opened.locator(".seat.filled")).to_have_count(3, timeout=20_000)
        await expect(opened.locator(".seat.filled", has_text="Нина Крылова")).to_be_visible()
        await expect(opened.locator(".opp-head .badge")).to_have_text("сформирована")
        await expect(opened.locator(".opp-head .members-count")).to_have_text("3")
        await expect(opened.locator(".scorebox .big")).to_have_text("72,0")
        await expect(row.locator("td.members")).to_have_text("3", timeout=20_000)
        await expect(row.locator(".badge")).to_have_text("сформирована")
        await expect(row.locator("td.score")).to_have_text("72,0")
        await expect(listing.locator(f'tr[data-opportunity-id="{newcomer}"]')).to_contain_text("Новая заря")
        for page in (listing, opened):
            assert await page.evaluate("window.notReloaded") is True
        assert errors == []


async def test_api_docs_render_from_the_services_own_assets(site: Site):
    """/docs is not blank on a closed network: Swagger UI comes from this process, under its CSP."""
    async with russian_page() as (page, errors):
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        await page.goto(f"{site.url}/docs")
        await expect(page.locator(".swagger-ui .info .title")).to_contain_text("Buying-group engine", timeout=20_000)
        await expect(page.locator(".opblock-summary-path", has_text="/v1/changes")).to_be_visible(timeout=20_000)
        assert requested and all(url.startswith(site.url) or url.startswith("data:") for url in requested), requested
        assert errors == []
