"""The Bitrix24 connector through Kafka, the projection and the loopback Bitrix24.

One story, in order: the Красная ромашка opportunity (formed group, four members) gets ONE deal,
even though the connector is killed while Bitrix24 is creating it; its members are attached
as contacts and the live group_formed signal makes one task. Then a salesperson's moves in
Bitrix24 reach the funnel: a stage change by webhook, a change whose webhook is lost (recovered
by reconciliation), the won deal with its amount (attribution credits it); a contact they link
by hand and the company's INN reach bg.crm-links.v1.
"""

from __future__ import annotations

import httpx
import pytest
from redis.asyncio import Redis

from shared import topics
from shared.codec import corrections, crm_links, dead_letters, encode
from shared.privacy.seal import Identifier
from shared.privacy.settings import vault_in
from shared.schemas.crm_sync import CrmCompany, CrmContactLinked
from tests.component.crm.conftest import Crm, connector, projected
from tests.component.projection.conftest import READ, Env
from tests.support.kafka import collect, namespace, wait_for
from tests.unit.projection.stories import krasnaya_romashka

pytestmark = [pytest.mark.component, pytest.mark.story]
FIELD = "UF_CRM_BG_OPPORTUNITY"


def deals_of(crm: Crm, opportunity_id: str) -> list[dict]:
    return [d for d in crm.state.deals.values() if d.get(FIELD) == opportunity_id]


def by_bitrix24(change: dict) -> bool:
    """A stage change the Bitrix24 connector reported (v1 rows name it as the source; v2 rows
    as the author's name, the source being the kind of author)."""
    return "bitrix24" in (change.get("source"), change.get("changed_by"))


def opportunity(projection: str, opportunity_id: str) -> dict:
    response = httpx.get(f"{projection}/v1/opportunities/{opportunity_id}", headers=READ, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
async def story(env: Env, projection: str) -> str:
    return await projected(env, krasnaya_romashka, "b24")


async def test_one_deal_per_opportunity_after_a_crash_mid_create(env, crm, projection, story) -> None:
    # Bitrix24 creates the deal, then its answer never comes; the connector is killed meanwhile.
    crm.state.fail["crm.deal.add"] = ["commit_then_hang"]
    first = connector(env, crm, projection, "bitrix24").start()
    try:
        await wait_for(lambda: deals_of(crm, story), timeout=60)
    finally:
        first.kill()
    connector(env, crm, projection, "bitrix24").start()  # the rest of the story talks to this one
    # The restarted connector finds the deal by our id and completes it: fields, contacts, task.
    await wait_for(lambda: len(crm.state.deal_contacts.get(int(deals_of(crm, story)[0]["ID"]), [])) == 4,
                   timeout=60)
    [deal] = deals_of(crm, story)
    assert deal["UF_CRM_BG_SCORE"] == 81.5 and deal["UF_CRM_BG_TIER"] == "A"
    assert "Сергей Волков — Технический эксперт" in deal["UF_CRM_BG_GROUP"]
    emails = sorted(e["VALUE"] for c in crm.state.contacts.values() for e in c["EMAIL"])
    assert len(emails) == 4 and len(set(emails)) == 4  # each member once
    await wait_for(lambda: len(crm.state.tasks) == 1, timeout=60)
    [task] = crm.state.tasks.values()
    assert task["UF_CRM_TASK"] == [f"D_{deal['ID']}"]
    assert task["TITLE"] == "Сформировалась группа закупки: Красная ромашка"
    assert crm.state.calls.count("crm.deal.add") == 1


async def test_stage_change_by_webhook_reaches_the_funnel(env, crm, projection, story) -> None:
    [deal] = deals_of(crm, story)
    crm.state.b24_change_deal(int(deal["ID"]), STAGE_ID="PREPARATION")
    found = await wait_for(lambda: [h for h in opportunity(projection, story)["stage_history"]
                                    if by_bitrix24(h)], timeout=60)
    # The deal's first stage (NEW, where the connector created it) was never reported: only the move.
    assert [h.get("crm_stage") or h["stage"] for h in found] == ["proposal"]
    assert crm.state.webhooks_sent and not crm.state.webhooks_lost


async def test_a_lost_webhook_is_recovered_by_reconciliation(env, crm, projection, story) -> None:
    [deal] = deals_of(crm, story)
    crm.state.drop_webhooks = 1
    crm.state.b24_change_deal(int(deal["ID"]), STAGE_ID="EXECUTING")
    assert crm.state.webhooks_lost[-1]["data[FIELDS][ID]"] == deal["ID"]
    found = await wait_for(lambda: [h for h in opportunity(projection, story)["stage_history"]
                                    if "contract" in (h["stage"], h.get("crm_stage"))], timeout=60)
    assert by_bitrix24(found[-1])


async def test_won_deal_reaches_the_funnel_and_attribution(env, crm, projection, story) -> None:
    [deal] = deals_of(crm, story)
    crm.state.b24_change_deal(int(deal["ID"]), STAGE_ID="WON", OPPORTUNITY="1500000.00", CURRENCY_ID="RUB")
    won = await wait_for(lambda: (o := opportunity(projection, story))["outcome"] == "won" and o, timeout=60)
    assert (won["amount"], won["currency"]) == (1_500_000.0, "RUB")
    response = httpx.get(f"{projection}/v1/opportunities/{story}/attribution", headers=READ, timeout=10)
    assert response.status_code == 200, response.text
    credit = response.json()
    assert credit["outcome"] == "won" and credit["amount"] == 1_500_000.0
    # Every member's touches share the deal: the four people of the group are credited.
    assert round(sum(t["value"] for t in credit["touches"]), 2) == 1_500_000.0
    assert len({t["person_id"] for t in credit["touches"]}) == 4


async def test_company_inn_and_a_contact_linked_by_hand_reach_kafka(env, crm, projection, story, servers) -> None:
    [deal] = deals_of(crm, story)
    company = crm.state.b24_add_company("ООО «Красная ромашка»", inn="7707083893", kpp="773601001",
                                        ogrn="1027700132195", web="romashka-b24.ru")
    manual = crm.state.b24_add_contact("Анна", "Смирнова", "a.smirnova@romashka-b24.ru", "Юрист", company)
    crm.state.b24_change_deal(int(deal["ID"]), contact_ids=(manual,), COMPANY_ID=str(company))
    seen = await collect(env.topic(topics.CRM_LINKS), decode=crm_links.decode,
                         until=lambda kept: any(isinstance(m, CrmContactLinked) for m in kept)
                         and any(isinstance(m, CrmCompany) for m in kept), settle=3.0)
    companies = [m for m in seen if isinstance(m, CrmCompany)]
    links = [m for m in seen if isinstance(m, CrmContactLinked)]
    assert {(c.company_id, c.inn, c.kpp, c.ogrn) for c in companies} == {
        (str(company), "7707083893", "773601001", "1027700132195")}
    redis = Redis.from_url(servers.redis_url)
    with namespace(env.namespace):  # the connector's vault: the namespace's own prefix
        vault = vault_in(redis)
    [known] = await vault.person(Identifier("email", "a.smirnova@romashka-b24.ru"))
    # Only the person's link: the four contacts the connector attached are not "manual". On the
    # log under the pseudonym her touches would carry (docs/privacy.md), her address and name
    # sealed under her key: they open with the vault, and nothing else of her is in clear.
    assert [(x.contact_id, x.email, x.name, x.opportunity_id, x.company_inn) for x in links] == [
        (str(manual), known.pseudonym, None, story, "7707083893")]
    assert await vault.open([links[0].sealed]) == {
        links[0].sealed: {"email": "a.smirnova@romashka-b24.ru", "name": "Анна Смирнова"}}
    assert not [m for m in seen if b"smirnova" in encode(m).lower() or "Анна".encode() in encode(m)]
    await redis.aclose()
    # The link is also a correction grouping applies: she joins the group by hand.
    fixes = await collect(env.topic(topics.CORRECTIONS), decode=corrections.decode, until=lambda kept: kept)
    assert [(f.type, f.opportunity_id, f.person_id, f.author, f.correction_id) for f in fixes] == [
        ("member_linked", story, known.pseudonym, "bitrix24", links[0].event_id)]
    assert known.pseudonym.endswith("@romashka-b24.ru") and not known.pseudonym.startswith("a.smirnova")
    letters = await collect(env.topic(topics.CRM_DLQ), decode=dead_letters.decode, until=lambda _: True,
                            timeout=5)
    assert letters == []


def test_no_secret_reaches_the_connectors_logs(crm) -> None:
    secrets = (crm.state.b24_code, crm.state.b24_application_token, "dev-crm-token")
    logs = "".join(p.log_path.read_text(errors="replace") for p in crm.started)
    assert "stage reported" in logs and not [s for s in secrets if s in logs]
