"""The two CRM clients against the loopback contract server (services/crm/loopback.py): the
documented methods and shapes, webhooks and their authenticity, rate limits and retries, and
creates that are never repeated blindly."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from services.crm.adapters.amocrm import AmoCrm
from services.crm.adapters.base import WebhookRefused
from services.crm.adapters.bitrix24 import Bitrix24
from services.crm.domain.records import DealPlan, PlannedContact, TaskPlan
from services.crm.loopback import Bucket, CrmLoopback, create_app
from services.crm.settings import AmoCrmSettings, Bitrix24Settings
from services.crm.transport import CrmRefused, CrmUnavailable
from services.importers.loopback import Served

PLAN = DealPlan(opportunity_id="romashka.ru:hr", title="HR-система — Красная ромашка", score=71.0, tier="A",
                missing_roles=("decision_maker",), group_text="Елена Соколова — Инициатор (HR)",
                contacts=(PlannedContact("e.sokolova@romashka.ru", "e.sokolova@romashka.ru", "Елена Соколова",
                                         "HR-менеджер", "initiator", "hr"),), fingerprint="x")


@pytest.fixture
def served() -> Iterator[tuple[CrmLoopback, str]]:
    state = CrmLoopback(hang_seconds=2.0)
    with Served(create_app(state)) as url:
        yield state, url


def b24(state: CrmLoopback, url: str, **kw) -> Bitrix24:
    settings = Bitrix24Settings(webhook_url=SecretStr(f"{url}/rest/{state.b24_user}/{state.b24_code}/"),
                                application_token=SecretStr(state.b24_application_token), **kw)
    return Bitrix24(settings, attempts=4, retry_base_seconds=0.05, timeout=1.0)


def amo(state: CrmLoopback, url: str, **kw) -> AmoCrm:
    settings = AmoCrmSettings(base_url=url, access_token=SecretStr(state.amo_access),
                              refresh_token=SecretStr(state.amo_refresh), client_id=state.amo_client_id,
                              client_secret=SecretStr(state.amo_client_secret), redirect_uri="https://bg.example/oauth",
                              webhook_secret=SecretStr(state.amo_webhook_secret), account_subdomain=state.amo_subdomain,
                              field_opportunity=state.amo_field_opportunity, field_score=state.amo_field_score,
                              company_inn_field=state.amo_field_inn, **kw)
    return AmoCrm(settings, attempts=4, retry_base_seconds=0.05, timeout=1.0)


async def test_bitrix24_deal_contacts_company_requisites_and_tasks(served) -> None:
    state, url = served
    client = b24(state, url)
    assert await client.find_deal("romashka.ru:hr") is None
    deal_id = await client.create_deal(PLAN, "ru")
    assert await client.find_deal("romashka.ru:hr") == deal_id
    assert await client.find_deal("romashka.ru:h") is None  # exact, not a prefix
    stored = state.deals[int(deal_id)]
    assert (stored["UF_CRM_BG_SCORE"], stored["UF_CRM_BG_MISSING_ROLES"]) == (71.0, "Принимает решение")
    await client.update_deal(deal_id, DealPlan(**{**PLAN.__dict__, "score": 80.0}), "en")
    assert state.deals[int(deal_id)]["UF_CRM_BG_SCORE"] == 80.0
    assert state.deals[int(deal_id)]["TITLE"] == PLAN.title
    contact_id = await client.create_contact(PLAN.contacts[0], "ru")
    assert await client.find_contact("E.Sokolova@romashka.ru") == contact_id
    company = state.b24_add_company("ООО «Красная ромашка»", inn="7707083893", kpp="773601001",
                                    ogrn="1027700132195", web="https://romashka.ru")
    manual = state.b24_add_contact("Ольга", "Петрова", "o.petrova@romashka.ru", "Финансовый директор", company)
    state.b24_change_deal(int(deal_id), contact_ids=(manual,), COMPANY_ID=str(company))
    deal = await client.get_deal(deal_id)
    await client.link_contacts(deal, [contact_id])
    deal = await client.get_deal(deal_id)
    assert deal.contact_ids == (str(manual), contact_id) and deal.company_id == str(company)
    found = await client.get_company(str(company))
    assert (found.inn, found.kpp, found.ogrn, found.websites) == ("7707083893", "773601001", "1027700132195",
                                                                  ("https://romashka.ru",))
    [olga] = await client.get_contacts([str(manual)])
    assert (olga.name, olga.emails, olga.job_title, olga.company_id) == (
        "Ольга Петрова", ("o.petrova@romashka.ru",), "Финансовый директор", str(company))
    task = TaskPlan("s1", "romashka.ru:hr", "Группа сформировалась", "…\n[bg-signal:s1]", "bg-signal:s1",
                    datetime(2026, 10, 21, tzinfo=UTC))
    assert await client.find_task(deal_id, task.marker) is None
    task_id = await client.create_task(deal, task)
    assert await client.find_task(deal_id, task.marker) == task_id
    assert state.tasks[int(task_id)]["UF_CRM_TASK"] == [f"D_{deal_id}"]
    assert await client.get_deal("999999") is None
    await client.close()


async def test_bitrix24_changed_deals_pages_through_date_modify(served) -> None:
    state, url = served
    state.b24_bucket = Bucket(size=1000, per_second=1000.0)  # 165 calls: the limit is another test's
    client = b24(state, url, bucket_size=1000, requests_per_second=1000.0)
    ids = [await client.create_deal(DealPlan(**{**PLAN.__dict__, "opportunity_id": f"o{i}"}), "ru")
           for i in range(55)]
    since = datetime.now(UTC) - timedelta(minutes=1)
    seen = [d.deal_id async for d in client.changed_deals(since)]
    assert sorted(seen, key=int) == ids  # two pages of 50
    assert [d async for d in client.changed_deals(datetime.now(UTC) + timedelta(minutes=1))] == []
    await client.close()


def test_bitrix24_webhook_authenticity_and_fields(served) -> None:
    state, url = served
    client = b24(state, url)
    form = {"event": "ONCRMDEALUPDATE", "data[FIELDS][ID]": "7", "auth[application_token]": state.b24_application_token}
    [notice] = client.parse_webhook(form, None)
    assert (notice.entity, notice.record_id, notice.deleted) == ("deal", "7", False)
    with pytest.raises(WebhookRefused) as refused:
        client.parse_webhook({**form, "auth[application_token]": "forged"}, None)
    assert refused.value.status == 403
    with pytest.raises(WebhookRefused) as refused:
        client.parse_webhook({k: v for k, v in form.items() if not k.startswith("auth")}, None)
    assert refused.value.status == 401
    with pytest.raises(WebhookRefused) as refused:
        client.parse_webhook({**form, "data[FIELDS][ID]": ""}, None)
    assert refused.value.status == 422 and "data[FIELDS][ID]" in refused.value.reason


async def test_bitrix24_retries_rate_limits_and_5xx_but_never_repeats_a_create(served) -> None:
    state, url = served
    client = b24(state, url)
    state.fail["crm.deal.list"] += ["429", "500", "timeout"]
    assert await client.find_deal("nothing") is None  # three faults, then the answer
    state.fail["crm.deal.add"] += ["429"]  # refused unexecuted: retried
    first = await client.create_deal(PLAN, "ru")
    state.fail["crm.deal.add"] += ["commit_then_500"]  # created, then the answer lost
    other = DealPlan(**{**PLAN.__dict__, "opportunity_id": "berezka.ru:crm"})
    with pytest.raises(CrmUnavailable):
        await client.create_deal(other, "ru")
    assert [d["UF_CRM_BG_OPPORTUNITY"] for d in state.deals.values()] == ["romashka.ru:hr", "berezka.ru:crm"]
    assert await client.find_deal("berezka.ru:crm") not in (None, first)  # the caller finds it, makes no second
    state.fail["crm.deal.update"] += ["500"] * 4
    with pytest.raises(CrmUnavailable):
        await client.update_deal(first, PLAN, "ru")
    bad = Bitrix24(Bitrix24Settings(webhook_url=SecretStr(f"{url}/rest/1/wrong/")), attempts=2,
                   retry_base_seconds=0.01)
    with pytest.raises(CrmRefused) as refused:
        await bad.find_deal("x")
    assert refused.value.status == 401 and "INVALID_CREDENTIALS" in refused.value.detail
    await client.close()
    await bad.close()


async def test_bitrix24_leaky_bucket_keeps_the_client_under_the_portal_limit(served) -> None:
    state, url = served
    # The portal's bucket (small and fast, so that the test stays short) and ours inside it, as
    # the defaults are (10 at 2/s against the documented 50 at 2/s).
    state.b24_bucket = Bucket(size=4, per_second=20.0)
    client = b24(state, url, bucket_size=2, requests_per_second=10.0)
    for _ in range(12):
        assert await client.find_deal("x") is None
    assert state.calls.count("crm.deal.list") == 12  # never refused, so never retried
    await client.close()


async def test_amocrm_leads_contacts_companies_tasks(served) -> None:
    state, url = served
    client = amo(state, url)
    assert await client.find_deal("romashka.ru:hr") is None  # 204 No Content
    lead_id = await client.create_deal(PLAN, "ru")
    assert await client.find_deal("romashka.ru:hr") == lead_id
    assert (await client.get_deal(lead_id)).never_moved  # in its pipeline's first status
    await client.update_deal(lead_id, DealPlan(**{**PLAN.__dict__, "score": 80.0}), "ru")
    assert state.leads[int(lead_id)]["custom_fields_values"][1] == {"field_id": state.amo_field_score,
                                                                   "values": [{"value": 80.0}]}
    contact_id = await client.create_contact(PLAN.contacts[0], "ru")
    assert await client.find_contact("e.sokolova@romashka.ru") == contact_id
    company = state.amo_add_company("ООО Ромашка", inn="7707083893")
    found = await client.get_company(str(company))
    assert (found.name, found.inn) == ("ООО Ромашка", "7707083893")
    manual = state.amo_add_contact("Ольга Петрова", "o.petrova@romashka.ru", "Финансовый директор", company)
    state.amo_change_lead(int(lead_id), contact_ids=(manual,), price=1_500_000, status_id=142)
    deal = await client.get_deal(lead_id)
    assert (deal.semantic, deal.amount, deal.contact_ids) == ("won", 1_500_000.0, (str(manual),))
    assert not deal.never_moved
    assert deal.moved_at is not None
    await client.link_contacts(deal, [contact_id])
    assert (await client.get_deal(lead_id)).contact_ids == (str(manual), contact_id)
    [olga] = await client.get_contacts([str(manual)])
    assert (olga.emails, olga.job_title, olga.company_id) == (("o.petrova@romashka.ru",), "Финансовый директор",
                                                              str(company))
    task = TaskPlan("s1", "romashka.ru:hr", "Группа сформировалась", "…\n[bg-signal:s1]", "bg-signal:s1",
                    datetime(2026, 10, 21, tzinfo=UTC))
    task_id = await client.create_task(deal, task)
    assert await client.find_task(lead_id, task.marker) == task_id
    changed = [d.deal_id async for d in client.changed_deals(datetime.now(UTC) - timedelta(minutes=1))]
    assert changed == [lead_id]
    assert await client.get_deal("999999") is None
    await client.close()


async def test_amocrm_refreshes_its_token_once_and_hands_the_new_pair_over(served) -> None:
    state, url = served
    client = amo(state, url)
    kept: list[tuple[str, str]] = []

    async def keep(access: str, refresh: str) -> None:
        kept.append((access, refresh))
    client.on_tokens = keep
    state.amo_access = "rotated-by-amocrm"  # the access token expired
    assert await client.find_deal("x") is None
    assert kept == [(state.amo_access, state.amo_refresh)] and client.access == state.amo_access
    await client.close()


async def test_amocrm_429_is_waited_out_and_a_create_after_a_lost_answer_is_not_repeated(served) -> None:
    state, url = served
    client = amo(state, url)
    state.fail["GET leads"] += ["429", "500"]
    assert await client.find_deal("x") is None
    state.fail["POST leads"] += ["commit_then_500"]
    with pytest.raises(CrmUnavailable):
        await client.create_deal(PLAN, "ru")
    assert len(state.leads) == 1 and await client.find_deal("romashka.ru:hr") is not None
    await client.close()


def test_amocrm_webhook_secret_subdomain_and_status_fields(served) -> None:
    state, url = served
    client = amo(state, url)
    form = {"leads[status][0][id]": "25399013", "leads[status][0][status_id]": "142",
            "leads[status][0][pipeline_id]": "4345612", "leads[status][0][old_status_id]": "38307946",
            "account[subdomain]": state.amo_subdomain, "account[id]": "29085955"}
    [notice] = client.parse_webhook(form, state.amo_webhook_secret)
    assert (notice.entity, notice.record_id) == ("deal", "25399013")
    with pytest.raises(WebhookRefused) as refused:
        client.parse_webhook(form, "guessed")
    assert refused.value.status == 403
    with pytest.raises(WebhookRefused):
        client.parse_webhook({**form, "account[subdomain]": "other"}, state.amo_webhook_secret)
    with pytest.raises(WebhookRefused) as refused:
        client.parse_webhook({"account[subdomain]": state.amo_subdomain}, state.amo_webhook_secret)
    assert refused.value.status == 422
