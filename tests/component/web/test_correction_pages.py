"""The correction flow of the opportunity page in a real browser (Debian's Chromium driven by
Playwright) against the projection process, real Kafka and PostgreSQL, tokens configured (issue
16): the page asks for a correction token, then marks a champion and a blocker, writes a note
with concerns, and undoes a correction from the history; every form goes through the API's write
path (bg.correction.v1, back through the projection), so the group picture shows the badges and
the history shows who, when and why. Refusals come back with the API's reason. Screenshots:
tests/artifacts/screenshots/, or docs/screenshots/ with BG_UPDATE_SCREENSHOTS=1 (the committed
ones).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import pytest
from playwright.async_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.component.projection.conftest import Env, wait_caught_up
from tests.support.browser import russian_page
from tests.support.processes import ARTIFACTS, ROOT, free_port
from tests.unit.projection.stories import ELENA, IVAN, SERGEY, Log, gazmyasneft, krasnaya_romashka

pytestmark = pytest.mark.component

READ_TOKEN = f"corr-read-{uuid.uuid4().hex}"
MARIA_TOKEN = f"corr-maria-{uuid.uuid4().hex}"
SCREENSHOTS = (ROOT / "docs" / "screenshots" if os.environ.get("BG_UPDATE_SCREENSHOTS") == "1"
               else ARTIFACTS / "screenshots")


@dataclass
class Site:
    url: str
    log: Log
    romashka: str
    gaz: str

    @property
    def page(self) -> str:
        return f"{self.url}/web/opportunities/{quote(self.romashka, safe='')}"


@pytest.fixture(scope="module")
async def site(env: Env, engine: AsyncEngine) -> AsyncIterator[Site]:
    log = Log(uuid.uuid4().hex[:6])
    romashka, gaz = krasnaya_romashka(log), gazmyasneft(log)
    await env.produce(log)
    port = free_port()
    service = env.service(f"web-corr-{env.namespace.rstrip('.')}", port, BG_API_TOKENS=READ_TOKEN,
                          BG_API_WRITE_TOKENS=f"corr-crm-{uuid.uuid4().hex}",
                          BG_API_CORRECTION_TOKENS=json.dumps({"Мария Соколова": MARIA_TOKEN}, ensure_ascii=False))
    with service:
        await wait_caught_up(env, engine, service)
        yield Site(f"http://127.0.0.1:{port}", log, romashka, gaz)


def seat(page: Page, name: str):
    return page.locator(".seat.filled", has_text=name)


async def submit(page: Page, form: str, **fields: str) -> None:
    """Fill a correction form by field name and post it; waits for the page it comes back to."""
    locator = page.locator(f"#{form}")
    for name, value in fields.items():
        control = locator.locator(f'[name="{name}"]')
        if await control.evaluate("e => e.tagName") == "SELECT":
            await control.select_option(value)
        else:
            await control.fill(value)
    async with page.expect_navigation():
        await locator.locator('button[type="submit"]').click()


async def test_the_correction_flow_in_a_browser(site: Site):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    elena, ivan, sergey = (site.log.person_id(site.romashka, p) for p in (ELENA, IVAN, SERGEY))
    async with russian_page() as (page, errors):
        # A read token shows the page, and the corrections ask for a correction token.
        await page.goto(f"{site.page}?token={READ_TOKEN}")
        section = page.locator("#corrections")
        await expect(section.locator("h2")).to_have_text("Правки группы")
        await expect(page.locator("#form-corr-stance")).to_have_count(0)
        await page.locator('#form-corr-login input[name="token"]').fill(MARIA_TOKEN)
        async with page.expect_navigation():
            await page.locator("#form-corr-login button").click()
        await expect(section.locator(".corr-author")).to_have_text("Вы правите как Мария Соколова.")

        # Champion, blocker, a note with concerns: each through Kafka and back, then on the picture.
        await submit(page, "form-corr-stance", person_id=elena, stance="champion", influence="high",
                     reason="Сама продвигает проект")
        await expect(section.locator(".corr-outcome")).to_have_text("Правка записана.")
        await submit(page, "form-corr-stance", person_id=ivan, stance="blocker", influence="high",
                     reason="Против смены системы")
        await page.locator("#form-corr-note select").select_option(sergey)
        await page.locator('#form-corr-note input[name="note"]').fill("Беспокоит интеграция с 1С и ИБ")
        await page.locator('#form-corr-note input[value="integration_security"]').check()
        async with page.expect_navigation():
            await page.locator("#form-corr-note button").click()
        await expect(seat(page, "Елена Соколова").locator(".stance")).to_have_text("Чемпион")
        await expect(seat(page, "Иван Михайлов").locator(".stance")).to_have_text("Блокирующий")
        await expect(seat(page, "Иван Михайлов").locator(".stance-line small")).to_have_text("Влияние: высокое")
        await expect(seat(page, "Сергей Волков").locator(".member-note")).to_contain_text(
            "«Беспокоит интеграция с 1С и ИБ» Интеграция и безопасность")
        history = section.locator("table.corr-history tbody tr")
        await expect(history).to_have_count(3)
        await expect(history.first).to_contain_text("Мария Соколова")
        await expect(history.nth(1)).to_contain_text("Иван Михайлов: Блокирующий, влияние высокое")
        await expect(history.nth(1)).to_contain_text("Против смены системы")
        await page.locator("section.card", has_text="Группа закупки").first.screenshot(
            path=SCREENSHOTS / "corrections-group.png")
        await section.screenshot(path=SCREENSHOTS / "corrections.png")

        # Undo from the history: the blocker badge goes, the row says who undid it.
        async with page.expect_navigation():
            await history.nth(1).locator("form.inline-undo button").click()
        await expect(section.locator(".corr-outcome")).to_have_text("Правка записана.")
        await expect(seat(page, "Иван Михайлов").locator(".stance")).to_have_count(0)
        undone = section.locator("tr.undone")
        await expect(undone).to_have_count(1)
        await expect(undone).to_contain_text("отменена: Мария Соколова")
        await expect(history.first).to_contain_text("Отмена правки «Иван Михайлов: Блокирующий, влияние высокое»")

        # Refusals come back with the API's reason: a merge into itself, an unknown person.
        account = site.log.accounts[site.romashka].account_id
        await submit(page, "form-corr-merge", merged=account, into=account)
        await expect(section.locator(".corr-outcome.corr-refused")).to_contain_text("cannot be merged into itself")
        await submit(page, "form-corr-link", person_id="stranger@nowhere.ru")
        await expect(section.locator(".corr-outcome.corr-refused")).to_contain_text("no person")
        # The link form suggests the account's known people who are not members (by name, as
        # ids may be pseudonyms): here the visitor of the careers page.
        visitor = f"visitor@{account}"
        await expect(page.locator(f'#corr-contacts option[value="{visitor}"]')).to_have_count(1)
        await expect(page.locator("#corr-contacts option")).to_have_count(1)
        await submit(page, "form-corr-link", person_id=visitor, role="influencer", reason="Консультант")
        await expect(section.locator(".corr-outcome")).to_have_text("Правка записана.")
        await expect(history.first).to_contain_text(f"Добавлен(а) в группу: {visitor} (Влияет на решение)")
        await section.screenshot(path=SCREENSHOTS / "corrections-refused.png")

        # An opportunity opened by hand from the priorities page.
        await page.goto(f"{site.url}/web/")
        await page.locator("#open-by-hand summary").click()
        await submit(page, "form-corr-open", account_id=account, solution="crm", reason="Запрос на выставке")
        await expect(page.locator("#open-by-hand .corr-outcome")).to_have_text("Правка записана.")

        # English, the same history.
        await page.goto(f"{site.page}?lang=en")
        await expect(section.locator("h2")).to_have_text("Corrections")
        await expect(seat(page, "Елена Соколова").locator(".stance")).to_have_text("Champion")
        await expect(section.locator("tr.undone")).to_contain_text("undone by Мария Соколова")
        assert errors == []


def test_forms_refuse_other_sites_and_tokens_that_cannot_correct(site: Site):
    path = f"/web/opportunities/{quote(site.romashka, safe='')}/correct/stance"
    person = site.log.person_id(site.romashka, ELENA)
    with httpx.Client(base_url=site.url, timeout=30) as client:
        # Cross-site: refused at the edge, before any handler.
        forged = client.post(path, data={"person_id": person, "stance": "blocker"},
                             headers={"Origin": "https://evil.example", "Cookie": f"bg_web_token={MARIA_TOKEN}"})
        assert forged.status_code == 403
        # A read token signs in to read but cannot correct.
        read = client.post(path, data={"person_id": person, "stance": "blocker"},
                           headers={"Cookie": f"bg_web_token={READ_TOKEN}"})
        assert read.status_code == 303 and "corr=refused" in read.headers["location"]
        page = client.get(read.headers["location"], headers={"Cookie": f"bg_web_token={READ_TOKEN}"})
        assert "Править может только токен правок" in page.text
        # Nothing was written: Елена has no blocker correction in the history.
        detail = client.get(f"/v1/opportunities/{quote(site.romashka, safe='')}",
                            headers={"Authorization": f"Bearer {READ_TOKEN}"}).json()
        assert not [c for c in detail["corrections"] if c["detail"].get("stance") == "blocker"
                    and c["person_id"] == person]
