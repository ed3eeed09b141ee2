"""Corrections through the read API's write endpoints and the opportunity page, on the whole
pipeline (issue 16): touches -> grouping -> scoring -> projection, corrections POSTed and PUT with
a correction token -> bg.correction.v1 -> grouping (membership, roles, merges), scoring (stance)
and projection (history, notes), read back through the API and seen in Chromium.

Done-when items it checks: an opportunity opened by hand appears; a person linked by hand stays
after later touches; a role set by hand survives a later change of job title; undo restores the
previous state; a merged account shows one opportunity with both groups' members; champion and
blocker show on the group picture; a correction of an unknown opportunity or person is 404 and a
merge into itself or a cycle is 409.
(tests/e2e/test_corrections.py checks the rebuild of grouping and projection from the log.)
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
from playwright.async_api import expect

from shared import topics
from shared.codec import encode
from shared.schemas.touch import Content, Person, TouchEvent
from tests.e2e.conftest import Pipeline
from tests.e2e.test_pipeline import opportunity, wait_until
from tests.support.browser import russian_page
from tests.support.kafka import produce
from tests.support.processes import ARTIFACTS, ROOT

HR = "https://vendor.example/solutions/hr/leave-automation"
CAREERS = "https://vendor.example/careers"
START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
# The development correction token (the pipeline runs with the development read token).
WRITE = {"Authorization": "Bearer dev-correction-token"}
AUTHOR = "Разработчик / developer"
SCREENSHOTS = (ROOT / "docs" / "screenshots" if os.environ.get("BG_UPDATE_SCREENSHOTS") == "1"
               else ARTIFACTS / "screenshots")


def touch(event_id: str, minute: int, email: str, job_title: str, url: str = HR) -> TouchEvent:
    return TouchEvent(event_id=event_id, occurred_at=START + timedelta(minutes=minute), source="web",
                      kind="download", person=Person(email=email, job_title=job_title), content=Content(url=url))


async def send(ns: str, *events: TouchEvent) -> None:
    await produce(ns + topics.PERSON_EVENTS.base_name, [(e.key(), encode(e)) for e in events])


def group(api: httpx.Client, opportunity_id: str) -> dict[str, tuple[str, str]]:
    found = opportunity(api, quote(opportunity_id, safe=""))
    return {m["person_id"]: (m["role"], m["role_source"]) for m in found["members"]} if found else {}


def write(api: httpx.Client, method: str, path: str, body: dict) -> dict:
    r = api.request(method, path, json=body, headers=WRITE)
    assert r.status_code == 202, r.text
    assert r.json()["author"] == AUTHOR
    return r.json()


def member_path(opp: str, person: str, what: str) -> str:
    return f"/v1/opportunities/{quote(opp, safe='')}/members/{quote(person, safe='')}/{what}"


async def test_corrections_through_the_api_hold_over_the_rules_and_show_on_the_page(pipeline: Pipeline,
                                                                                   topic_namespace: str):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:6]
    domain, other = f"romashka{tag}.ru", f"krasnaya{tag}.ru"
    opp = f"{domain}:hr"
    elena, volkov, petrova, ivan, olga = (f"{p}@{domain}" for p in ("elena", "volkov", "petrova", "ivan", "olga"))
    guest = f"guest@{other}"
    # Ivan only looked at the careers page: known (a contact of the account), not a member.
    await send(topic_namespace, touch(f"{tag}-1", 0, elena, "HR-менеджер"),
               touch(f"{tag}-2", 5, volkov, "IT-директор"), touch(f"{tag}-3", 10, petrova, "Бухгалтер"),
               touch(f"{tag}-4", 12, ivan, "Генеральный директор", CAREERS),
               touch(f"{tag}-5", 14, guest, "Финансовый директор"))
    with pipeline.api() as api:
        wait_until(lambda: len(group(api, opp)) == 3 and group(api, f"{other}:hr")
                   and api.get(f"/v1/accounts/{domain}").json().get("contacts") and any(
                       c["person_id"] == ivan for c in api.get(f"/v1/accounts/{domain}").json()["contacts"]))

        # Refused before anything is written.
        assert api.put(member_path(f"nope{tag}.ru:hr", elena, "stance"), json={"stance": "champion"},
                       headers=WRITE).status_code == 404
        unknown = api.post(f"/v1/opportunities/{quote(opp, safe='')}/members", json={"person_id": f"x@{domain}"},
                           headers=WRITE)
        assert unknown.status_code == 404 and unknown.json()["errors"][0]["field"] == "body.person_id"
        itself = api.post("/v1/accounts/merges", json={"into": domain, "merged": domain}, headers=WRITE)
        assert itself.status_code == 409 and "itself" in itself.json()["message"]

        # Link Ivan, set Петрова's role, mark the champion and the blocker, note Волков's concerns.
        write(api, "POST", f"/v1/opportunities/{quote(opp, safe='')}/members",
              {"person_id": ivan, "role": "decision_maker", "department": "executive", "reason": "Был на звонке"})
        role = write(api, "PUT", member_path(opp, petrova, "role"), {"role": "budget_holder", "department": "finance",
                                                                     "reason": "Утверждает бюджет"})
        write(api, "PUT", member_path(opp, elena, "stance"), {"stance": "champion", "influence": "high"})
        write(api, "PUT", member_path(opp, volkov, "stance"), {"stance": "blocker", "influence": "medium"})
        write(api, "PUT", member_path(opp, volkov, "note"),
              {"note": "Против облака", "concerns": ["integration_security"]})
        expected = {elena: ("initiator", "title"), volkov: ("technical_validator", "title"),
                    petrova: ("budget_holder", "manual"), ivan: ("decision_maker", "manual")}
        wait_until(lambda: group(api, opp) == expected)

        # Later touches: a new title does not change the role set by hand; the linked person stays.
        await send(topic_namespace, touch(f"{tag}-6", 30, petrova, "Юрист"), touch(f"{tag}-7", 31, ivan, "Юрист"),
                   touch(f"{tag}-8", 32, olga, "HR-менеджер"))
        wait_until(lambda: olga in group(api, opp) and f"{tag}-7" in {
            t["touch_id"] for t in opportunity(api, quote(opp, safe=""))["timeline"]})
        found = opportunity(api, quote(opp, safe=""))
        now = {m["person_id"]: m for m in found["members"]}
        assert (now[petrova]["role"], now[petrova]["job_title"]) == ("budget_holder", "Юрист")
        assert now[ivan]["role"] == "decision_maker"
        assert (now[elena]["stance"], now[volkov]["stance"], now[volkov]["concerns"]) == (
            "champion", "blocker", ["integration_security"])
        assert {c["author"] for c in found["corrections"]} == {AUTHOR}

        # The page: champion and blocker on the group picture (development mode: pages open).
        async with russian_page() as (page, errors):
            await page.goto(f"{pipeline.api_url}/web/opportunities/{quote(opp, safe='')}")
            # No names were sent: a seat shows the person's address.
            await expect(page.locator(".seat.filled", has_text=elena).locator(".stance")).to_have_text("Чемпион")
            await expect(page.locator(".seat.filled", has_text=volkov).locator(".stance")).to_have_text("Блокирующий")
            await expect(page.locator(".seat.filled", has_text=volkov).locator(".member-note")).to_contain_text(
                "Против облака")
            # "Why here": Ivan's role was set by hand, by the token's user.
            ivan_seat = page.locator(".seat.filled", has_text=ivan)
            await ivan_seat.locator(".member-why summary").click()
            await expect(ivan_seat.locator(".member-why li", has_text="Роль")).to_contain_text(f"правка {AUTHOR}")
            await page.locator("section.card", has_text="Группа закупки").first.screenshot(
                path=SCREENSHOTS / "corrections-pipeline.png")
            assert errors == []

        # Undo the role: the rules decide again, from the latest title (Юрист: legal).
        write(api, "POST", f"/v1/corrections/{role['correction_id']}/undo", {"reason": "Ошибся"})
        wait_until(lambda: group(api, opp).get(petrova, ("", ""))[1] != "manual")
        assert group(api, opp)[petrova] != ("budget_holder", "manual")
        again = api.post(f"/v1/corrections/{role['correction_id']}/undo", json={}, headers=WRITE)
        assert again.status_code == 409

        # An opportunity opened by hand: grouping creates it, with no touch of that solution yet.
        write(api, "POST", "/v1/opportunities", {"account_id": domain, "solution": "crm", "reason": "Выставка"})
        opened = wait_until(lambda: opportunity(api, quote(f"{domain}:crm", safe="")))
        assert opened["account_id"] == domain and opened["touches_count"] == 0
        assert opened["corrections"][0]["type"] == "opportunity_opened"

        # Merge the other account in: one opportunity with both groups' members; back is a cycle.
        write(api, "POST", "/v1/accounts/merges", {"into": domain, "merged": other, "reason": "Одна компания"})
        wait_until(lambda: guest in group(api, opp), timeout=120)
        cycle = api.post("/v1/accounts/merges", json={"into": other, "merged": domain}, headers=WRITE)
        assert cycle.status_code == 409 and "cycle" in cycle.json()["message"]
        # The absorbed account's opportunity is corrected through the one it went into.
        absorbed = wait_until(lambda: (r := api.put(member_path(f"{other}:hr", guest, "stance"),
                                                    json={"stance": "champion"}, headers=WRITE)).status_code == 409
                              and r)
        assert f"was merged into {opp}" in absorbed.json()["message"]
