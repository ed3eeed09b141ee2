"""The DOMAIN.md stories through real Kafka into the projection process, read back through the
API: the buying group, the ranking, the filters, the accounts, metrics and error answers.

Every test here only reads, so they hold in any order: the tests that write (the change feed,
replays, a CRM's stage, dead letters) are in test_projection_api_writes.py, on a projection
and a namespace of their own."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from services.projection.main import openapi_spec
from tests.component.projection.conftest import CRM, READ, Env, get, wait_caught_up
from tests.support.docs import assert_docs_self_hosted
from tests.unit.projection.stories import (
    Log,
    argotrubosbyt,
    gazmyasneft,
    krasnaya_romashka,
)

pytestmark = pytest.mark.component


@dataclass
class Story:
    log: Log
    romashka: str
    argo: str
    gaz: str


@pytest.fixture(scope="module")
async def story(env: Env, engine: AsyncEngine, projection: str) -> Story:
    log = Log(uuid.uuid4().hex[:6])
    found = Story(log, krasnaya_romashka(log), argotrubosbyt(log), gazmyasneft(log))
    await env.produce(log)
    await wait_caught_up(env, engine)
    return found


def test_krasnaya_romashka_is_one_opportunity_with_four_members_in_four_roles(projection, story):
    opp = get(projection, f"/v1/opportunities/{story.romashka}")
    assert opp["account_name"] == "Красная ромашка" and opp["solution"] == "hr"
    roles = {m["name"]: (m["role"], m["department"], m["touches_count"]) for m in opp["members"]}
    assert roles == {
        "Елена Соколова": ("initiator", "hr", 3),
        "Сергей Волков": ("technical_validator", "it", 2),
        "Ольга Петрова": ("budget_holder", "finance", 1),
        "Иван Михайлов": ("decision_maker", "executive", 1),
    }
    assert opp["members_count"] == opp["engaged_members"] == 4
    assert opp["covered_roles"] == ["budget_holder", "decision_maker", "initiator", "technical_validator"]
    assert opp["missing_roles"] == []
    assert opp["status"] == "formed" and opp["formed_at"] == "2026-09-10T09:00:00Z"
    assert (opp["score"], opp["tier"]) == (81.5, "A")
    assert opp["score_breakdown"]["role_coverage"] == 1.0
    assert {m["person_id"]: m["engagement"] for m in opp["members"]}[f"elena.sokolova@{opp['account_id']}"] == 3.0
    timeline = opp["timeline"]
    assert len(timeline) == opp["touches_count"] == 7
    assert [t["occurred_at"] for t in timeline] == sorted(t["occurred_at"] for t in timeline)
    assert [s["signal"] for s in opp["signals"]] == ["group_forming", "group_formed"]


def test_the_group_outranks_the_single_active_person(projection, story):
    page = get(projection, "/v1/opportunities", solution="hr")
    ranked = [item["opportunity_id"] for item in page["items"]]
    assert ranked.index(story.argo) < ranked.index(story.gaz)
    assert page["total"] == 3 and [i["rank"] for i in page["items"]] == [1, 2, 3]
    second = get(projection, "/v1/opportunities", solution="hr", limit=1, offset=1)
    assert [i["opportunity_id"] for i in second["items"]] == [ranked[1]] and second["items"][0]["rank"] == 2


@pytest.mark.parametrize(("params", "expected"), [
    ({"tier": "A"}, {"romashka", "argo"}),
    ({"tier": "C"}, {"gaz"}),
    ({"status": "formed"}, {"romashka", "argo"}),
    ({"status": "forming"}, {"gaz"}),
    ({"min_score": 60}, {"romashka", "argo"}),
    ({"formed_since": "2026-09-05T00:00:00Z"}, {"romashka"}),
    ({"formed_since": "2026-09-05T03:00:00+03:00"}, {"romashka"}),
    ({"stage": "warm"}, {"romashka", "argo"}),  # moved by the qualification rules
    ({"stage": "cold"}, {"gaz"}),
    ({"solution": "wms"}, set()),
])
def test_filters(projection, story, params, expected):
    ids = {i["opportunity_id"] for i in get(projection, "/v1/opportunities", **params)["items"]}
    assert ids == {getattr(story, name) for name in expected}


def test_filter_by_account(projection, story):
    account = story.log.accounts[story.gaz].account_id
    items = get(projection, "/v1/opportunities", account=account)["items"]
    assert [i["opportunity_id"] for i in items] == [story.gaz] and items[0]["members_count"] == 1


def test_account_with_its_opportunities_and_contacts(projection, story):
    account_id = story.log.accounts[story.romashka].account_id
    account = get(projection, f"/v1/accounts/{account_id.upper()}")
    assert account["account_id"] == account_id and account["name"] == "Красная ромашка"
    assert [o["opportunity_id"] for o in account["opportunities"]] == [story.romashka]
    contacts = {c["person_id"]: c for c in account["contacts"]}
    assert len(contacts) == 5 and account["account_touches"] == 1  # four members and a careers-page visitor
    assert contacts[f"olga.petrova@{account_id}"]["job_title"] == "Финансовый директор"
    assert contacts[f"visitor@{account_id}"]["role"] is None
    # A subdomain (a member's email on hr.<domain>) resolves to the registrable domain's account.
    assert get(projection, f"/v1/accounts/hr.{account_id}")["account_id"] == account_id


def test_metrics_compare_opportunities_with_raw_contacts(projection, story):
    metrics = get(projection, "/v1/metrics", since="2026-09-01T00:00:00Z", until="2026-10-01T00:00:00Z")
    assert metrics["opportunities_identified"] == 3
    assert metrics["raw_contacts"] == 10  # 5 + 4 + 1 people touched; 3 opportunities
    assert metrics["contacts_per_opportunity"] == pytest.approx(10 / 3)
    assert metrics["engaged_members_per_opportunity"] == pytest.approx(3.0)
    # Romashka covers 4 of 4 roles, Argo 4 of 5 (decision maker missing), Gaz 1 of 4.
    assert metrics["role_coverage"] == pytest.approx((1 + 4 / 5 + 1 / 4) / 3)
    assert metrics["days_first_touch_to_formation"] == pytest.approx((9 + 3) / 2)
    assert metrics["stalled_share"] == 0.0
    assert metrics["per_stage"] == [{"stage": "cold", "opportunities": 1, "engaged_members": 1.0},
                                    {"stage": "warm", "opportunities": 2, "engaged_members": 4.0}]
    roles = {r["role"]: (r["covered"], r["missing"]) for r in metrics["per_role"]}
    assert roles["decision_maker"] == (1, 2) and roles["initiator"] == (3, 0)
    assert get(projection, "/v1/metrics", since="2030-01-01T00:00:00Z")["opportunities_identified"] == 0


@pytest.mark.parametrize(("path", "params", "field"), [
    ("/v1/opportunities", {"limit": 0}, "query.limit"),
    ("/v1/opportunities", {"status": "sleeping"}, "query.status"),
    ("/v1/opportunities", {"min_score": "nan"}, "query.min_score"),
    ("/v1/opportunities", {"formed_since": "yesterday"}, "query.formed_since"),
    ("/v1/opportunities", {"formed_since": "0001-01-01T00:00:00+05:00"}, "query.formed_since"),
    ("/v1/changes", {"cursor": -1}, "query.cursor"),
    ("/v1/metrics", {"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "query.until"),
    ("/v1/opportunities/a%00b", {}, "path.opportunity_id"),
])
def test_invalid_input_is_a_422_naming_the_field(projection, path, params, field):
    answer = httpx.get(f"{projection}{path}", params=params, headers=READ)
    assert answer.status_code == 422, answer.text
    assert field in [e["field"] for e in answer.json()["errors"]]


def test_errors_are_json_with_a_clear_message(projection):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
        answer = httpx.get(f"{projection}/v1/opportunities", headers=headers)
        assert answer.status_code == 401 and answer.json()["error"] == "unauthorized", answer.text
        assert "bearer token" in answer.json()["message"]
    missing = httpx.get(f"{projection}/v1/opportunities/none.ru:hr", headers=READ)
    assert missing.status_code == 404 and missing.json()["errors"][0]["field"] == "path.opportunity_id"
    assert httpx.get(f"{projection}/v1/nothing", headers=READ).json()["error"] == "not_found"
    for body in (b"{", b"N\xc0\xff"):
        bad_body = httpx.post(f"{projection}/v1/opportunities/x/stage", content=body,
                              headers={**CRM, "Content-Type": "application/json"})
        assert bad_body.status_code == 422 and bad_body.json()["error"] == "validation_error", bad_body.text
        assert bad_body.json()["errors"][0]["field"].startswith("body")
    spec = httpx.get(f"{projection}/openapi.json").json()
    assert "/v1/changes" in spec["paths"] and spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert_docs_self_hosted(projection)
    assert json.loads(httpx.get(f"{projection}/readyz").text)["status"] == "ready"


# The spec the service publishes (test_errors_are_json_with_a_clear_message reads it from the
# process); building it reads no servers.
fuzzed = schemathesis.openapi.from_dict(openapi_spec())


@fuzzed.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_the_spec_allows_makes_a_500(case, projection, story):
    # The story gives the fuzzer real rows to hit; the CRM token may read and write, so every
    # operation is reached past authentication.
    case.call_and_validate(base_url=projection, headers=CRM, checks=[
        not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance])
