"""The amoCRM connector through Kafka, the projection and the loopback amoCRM: one lead per
opportunity after a kill mid-create, a status change lost on the way recovered by
reconciliation, the won lead (status 142) with its price reaching the funnel and attribution,
an expired access token refreshed on the way."""

from __future__ import annotations

import json

import httpx
import pytest

from services.crm.adapters.amocrm import field_value
from services.crm.loopback import NEGOTIATION
from tests.component.crm.conftest import Crm, connector, projected
from tests.component.projection.conftest import READ, Env
from tests.support.kafka import wait_for
from tests.unit.projection.stories import argotrubosbyt

pytestmark = [pytest.mark.component, pytest.mark.story]


def leads_of(crm: Crm, opportunity_id: str) -> list[dict]:
    return [lead for lead in crm.state.leads.values()
            if field_value(lead, crm.state.amo_field_opportunity) == opportunity_id]


def opportunity(projection: str, opportunity_id: str) -> dict:
    response = httpx.get(f"{projection}/v1/opportunities/{opportunity_id}", headers=READ, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def by_amocrm(projection: str, opportunity_id: str) -> list[dict]:
    return [h for h in opportunity(projection, opportunity_id)["stage_history"]
            if "amocrm" in (h.get("source"), h.get("changed_by"))]


@pytest.fixture(scope="module")
async def story(env: Env, projection: str) -> str:
    return await projected(env, argotrubosbyt, "amo")


STAGES = json.dumps({"38307946": "new", str(NEGOTIATION): "negotiation"})


async def test_one_lead_per_opportunity_after_a_crash_mid_create(env, crm, projection, story) -> None:
    crm.state.fail["POST leads"] = ["commit_then_hang"]
    first = connector(env, crm, projection, "amocrm", CRM_STAGE_MAP=STAGES).start()
    try:
        await wait_for(lambda: leads_of(crm, story), timeout=60)
    finally:
        first.kill()
    connector(env, crm, projection, "amocrm", CRM_STAGE_MAP=STAGES).start()
    await wait_for(lambda: len(leads_of(crm, story)[0]["_embedded"]["contacts"]) == 4, timeout=60)
    [lead] = leads_of(crm, story)
    assert field_value(lead, crm.state.amo_field_score) == 64.0
    await wait_for(lambda: len(crm.state.amo_tasks) == 1, timeout=60)
    [task] = crm.state.amo_tasks.values()
    assert task["entity_id"] == lead["id"] and task["entity_type"] == "leads"
    assert "[bg-signal:" in task["text"]
    assert sum(1 for c in crm.state.calls if c == "POST /api/v4/leads") == 1
    assert by_amocrm(projection, story) == []  # the lead's first status is nobody's move


async def test_a_lost_status_webhook_is_recovered_and_an_expired_token_refreshed(env, crm, projection,
                                                                                 story) -> None:
    [lead] = leads_of(crm, story)
    crm.state.amo_access = "expired-and-replaced"  # amoCRM answers 401 until the token is refreshed
    crm.state.drop_webhooks = 1
    crm.state.amo_change_lead(lead["id"], status_id=NEGOTIATION)
    found = await wait_for(lambda: by_amocrm(projection, story), timeout=60)
    assert [h.get("crm_stage") or h["stage"] for h in found] == ["negotiation"]
    assert crm.state.webhooks_lost and crm.state.amo_refresh != "loopback-amo-refresh"


async def test_won_lead_reaches_the_funnel_and_attribution(env, crm, projection, story) -> None:
    [lead] = leads_of(crm, story)
    crm.state.amo_change_lead(lead["id"], status_id=142, price=2_400_000)
    won = await wait_for(lambda: (o := opportunity(projection, story))["outcome"] == "won" and o, timeout=60)
    assert won["amount"] == 2_400_000.0
    response = httpx.get(f"{projection}/v1/opportunities/{story}/attribution", headers=READ, timeout=10)
    credit = response.json()
    assert round(sum(t["value"] for t in credit["touches"]), 2) == 2_400_000.0


def test_no_token_reaches_the_connectors_logs(crm) -> None:
    s = crm.state
    secrets = ("loopback-amo-access", "loopback-amo-refresh", s.amo_access, s.amo_refresh, s.amo_client_secret,
               s.amo_webhook_secret)
    logs = "".join(p.log_path.read_text(errors="replace") for p in crm.started)
    assert "task created" in logs and not [x for x in secrets if x in logs]
