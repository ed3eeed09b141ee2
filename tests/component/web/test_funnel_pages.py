"""The funnel, forecast and analytics pages in a real browser (Debian's Chromium, Playwright)
against the projection process on real Kafka and PostgreSQL, tokens configured. The DOMAIN.md
stories go onto the topics; the qualification rules move them through the funnel; a person
marks criteria, assigns the team and sets the deal terms through the page's forms; the forecast
and the analytics show them. Screenshots: tests/artifacts/screenshots/, or docs/screenshots/
with BG_UPDATE_SCREENSHOTS=1 (the committed ones).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import pytest
from playwright.async_api import expect
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.component.projection.conftest import Env, wait_caught_up
from tests.support.browser import russian_page
from tests.support.kafka import wait_for
from tests.support.processes import ARTIFACTS, ROOT, free_port
from tests.unit.projection.stories import Log, argotrubosbyt, gazmyasneft, krasnaya_romashka

pytestmark = pytest.mark.component

READ_TOKEN = f"funnel-read-{uuid.uuid4().hex}"
CRM_TOKEN = f"funnel-crm-{uuid.uuid4().hex}"
SCREENSHOTS = (ROOT / "docs" / "screenshots" if os.environ.get("BG_UPDATE_SCREENSHOTS") == "1"
               else ARTIFACTS / "screenshots")


@dataclass
class Site:
    url: str
    romashka: str
    argo: str
    gaz: str

    def api(self, method: str, path: str, **body) -> httpx.Response:
        return httpx.request(method, f"{self.url}{path}", json=body, timeout=30,
                             headers={"Authorization": f"Bearer {CRM_TOKEN}"})

    def opportunity(self, oid: str) -> dict:
        return self.api("GET", f"/v1/opportunities/{quote(oid, safe='')}").json()


@pytest.fixture(scope="module")
async def site(env: Env, engine: AsyncEngine) -> AsyncIterator[Site]:
    log = Log(uuid.uuid4().hex[:6])
    romashka, argo, gaz = krasnaya_romashka(log), argotrubosbyt(log), gazmyasneft(log)
    await env.produce(log)
    port = free_port()
    service = env.service(f"funnel-{env.namespace.rstrip('.')}", port, BG_API_TOKENS=READ_TOKEN,
                          BG_API_WRITE_TOKENS=CRM_TOKEN)
    with service:
        await wait_caught_up(env, engine, service)
        found = Site(f"http://127.0.0.1:{port}", romashka, argo, gaz)
        await wait_for(lambda: found.opportunity(romashka)["stage"] == "warm", timeout=30)
        # A won and a lost deal for the analytics, deal terms for the forecast.
        for oid, stage, amount, at in ((argo, "Closed Won", 2_400_000, "2026-10-20T10:00:00Z"),
                                       (gaz, "lost", None, "2026-10-05T10:00:00Z")):
            answer = found.api("POST", f"/v1/opportunities/{quote(oid, safe='')}/stage", stage=stage, amount=amount,
                               currency="RUB" if amount else None, changed_at=at, source="bitrix24")
            assert answer.json()["result"] == "applied", answer.text
        yield found


async def test_the_funnel_board_a_persons_qualification_and_the_forecast_in_a_browser(site: Site):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    oid = quote(site.romashka, safe="")
    async with russian_page() as (page, errors):
        # A read token sees the board but may not change the qualification.
        await page.goto(f"{site.url}/web/funnel?token={READ_TOKEN}")
        await expect(page.locator("h1")).to_have_text("Квалификационная воронка")
        await expect(page.locator(".stage-col header h2")).to_have_text(
            ["Целевая база", "Холодная", "Тёплая", "Потенциальная сделка", "Закрытие"])
        card = page.locator('.stage-col[data-stage="warm"] .deal-card', has_text="Красная ромашка")
        await expect(card.locator(".criteria li")).to_have_count(4)
        await expect(card.locator(".criteria li.on.derived")).to_have_count(2)
        await expect(card.locator(".criteria li.off.person")).to_have_text(
            ["Боль подтверждена", "Подходит по продукту и цене"])
        await expect(card.locator(".proposed")).to_have_text("Предложено: → Потенциальная сделка")
        await expect(page.locator(".closed-stages")).to_contain_text("Выиграна: 1")
        await expect(page.locator(".closed-stages")).to_contain_text("Проиграна: 1")
        await card.locator("a.account").click()
        await expect(page.locator("h1")).to_contain_text("Квалификация: Красная ромашка")
        await expect(page.locator("form.qform")).to_have_count(0)
        await expect(page.locator(".hint")).to_contain_text("токен CRM")

        # A CRM token may: the person marks pain and fit with evidence; the rules move it on.
        await page.goto(f"{site.url}/web/funnel/{oid}?token={CRM_TOKEN}")
        history = page.locator("table.history tbody tr")
        await expect(history).to_have_count(2)
        await expect(history.first).to_contain_text("Холодная → Тёплая")
        await expect(history.first).to_contain_text("4 / 4")  # engaged at the move, recorded with it
        for criterion, evidence in (("pain_confirmed", "Звонок: 40 часов в месяц на отпуска"),
                                    ("fit_confirmed", "Демо: подходит, бюджет есть")):
            form = page.locator("#form-criterion")
            await form.locator("select[name=criterion]").select_option(criterion)
            await form.locator("input[name=evidence]").fill(evidence)
            await form.locator("input[name=who]").fill("Анна Орлова")
            await form.get_by_role("button").click()
            await expect(page.locator(".result")).to_have_text("Готово: изменение применено.")
        form = page.locator("#form-team")
        await form.locator("select[name=role]").select_option("ae")
        await form.locator("input[name=person]").fill("a.orlova@vendor.example")
        await form.locator("input[name=who]").fill("Руководитель продаж")
        await form.get_by_role("button").click()
        await expect(page.locator('dd[data-role="ae"]')).to_have_text("a.orlova@vendor.example")
        await expect(page.locator(".alerts-to")).to_contain_text("a.orlova@vendor.example")
        form = page.locator("#form-deal")
        await form.locator("input[name=amount]").fill("1200000")
        await form.locator("input[name=expected_close_on]").fill("2026-11-20")
        await form.locator("input[name=who]").fill("Анна Орлова")
        await form.get_by_role("button").click()
        await expect(page.locator(".deal-amount")).to_contain_text("1 200 000")
        await wait_for(lambda: site.opportunity(site.romashka)["stage"] == "potential_deal", timeout=30)
        await page.reload()
        await expect(page.locator(".stage-name")).to_have_text("Потенциальная сделка")
        await expect(history.first).to_contain_text("Тёплая → Потенциальная сделка")
        await expect(history.first).to_contain_text("правила")
        # A bad form: evidence missing for a criterion that holds -> said so, nothing changed.
        form = page.locator("#form-criterion")
        await form.locator("select[name=criterion]").select_option("champion_named")
        await form.locator("input[name=who]").fill("Анна Орлова")
        await form.get_by_role("button").click()
        await expect(page.locator(".result-invalid")).to_contain_text("evidence")
        await page.screenshot(path=SCREENSHOTS / "qualification.png", full_page=True)

        await page.goto(f"{site.url}/web/funnel")
        await expect(page.locator('.stage-col[data-stage="potential_deal"] .deal-card')).to_contain_text(
            "Красная ромашка")
        await page.screenshot(path=SCREENSHOTS / "funnel.png", full_page=True)

        # The forecast: the deal, weighted by its stage and its group's health, next to the lead count.
        await page.goto(f"{site.url}/web/forecast?period=quarter&by=member")
        await expect(page.locator("h1")).to_have_text("Прогноз по возможностям")
        await expect(page.locator("svg.plot")).to_have_count(1)
        row = page.locator("table.lines tbody tr", has_text="a.orlova@vendor.example")
        await expect(row).to_contain_text("2026-Q4")
        # 1.2M x 50 % (potential deal) x health 0.5 + 0.5 x (2/2 roles + 4/4.2 engaged) / 2
        await expect(row.locator("td.adjusted")).to_have_text("592\u202f857")
        deal = page.locator("table.deals tbody tr", has_text="Красная ромашка")
        await expect(deal).to_contain_text("требуемые роли 2/2; вовлечено 4 при ориентире 4,2")
        await expect(page.locator(".lead-model")).to_contain_text("1 выигранных")
        await page.screenshot(path=SCREENSHOTS / "forecast.png", full_page=True)

        await page.goto(f"{site.url}/web/analytics")
        await expect(page.locator("h1")).to_have_text("Аналитика воронки")
        await expect(page.locator("svg.plot")).to_have_count(6)
        await expect(page.locator("ul.cycle li").first).to_contain_text("выиграны: 1 шт.")
        await page.screenshot(path=SCREENSHOTS / "analytics.png", full_page=True)

        await page.locator("a.lang-en").click()
        await expect(page.locator("h1")).to_have_text("Funnel analytics")
        await page.goto(f"{site.url}/web/funnel")
        await expect(page.locator(".stage-col header h2").first).to_have_text("Target base")
        assert errors == []
