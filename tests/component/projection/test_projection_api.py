"""The DOMAIN.md stories through real Kafka into the projection process, read back through the
API: the buying group, the ranking, the change feed, idempotence, CRM stages, attribution,
metrics, dead letters and error answers."""

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
from shared import topics
from shared.codec import dead_letters, encode
from shared.schemas.touch import TouchKind
from tests.component.projection.conftest import CRM, READ, Env, get, snapshot, wait_caught_up
from tests.support.docs import assert_docs_self_hosted
from tests.support.kafka import collect, produce
from tests.unit.projection.stories import (
    SERGEY,
    Log,
    argotrubosbyt,
    day,
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


async def test_change_feed_resumes_from_a_cursor(env, engine, projection, story):
    seen, cursor = [], 0
    while True:
        page = get(projection, "/v1/changes", cursor=cursor, limit=2)
        seen += [i["opportunity_id"] for i in page["items"]]
        assert len(page["items"]) <= 2 and isinstance(page["next_cursor"], int)  # as cursor is
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert sorted(seen) == sorted([story.romashka, story.argo, story.gaz])
    assert get(projection, "/v1/changes", cursor=cursor)["items"] == []
    assert get(projection, "/v1/changes", cursor=cursor)["next_cursor"] == cursor

    mark = len(story.log.messages)
    story.log.touch(story.romashka, SERGEY, TouchKind.download, day(12), asset_id="hr-security-whitepaper")
    await env.produce(story.log, start=mark)
    await wait_caught_up(env, engine)
    page = get(projection, "/v1/changes", cursor=cursor)
    assert [i["opportunity_id"] for i in page["items"]] == [story.romashka]
    assert page["items"][0]["touches_count"] == 8 and page["next_cursor"] > cursor


async def test_a_renamed_account_puts_its_opportunities_into_the_feed(env, engine, projection):
    log = Log(uuid.uuid4().hex[:6])
    opp = log.opportunity("rename.ru", "ООО Старое имя")
    await env.produce(log)
    await wait_caught_up(env, engine)
    cursor = get(projection, "/v1/changes", cursor=0, limit=1000)["next_cursor"]
    mark = len(log.messages)
    log.account_touch(opp, "visitor", day(1))  # same name: the account's reference moves, nothing shows
    await env.produce(log, start=mark)
    await wait_caught_up(env, engine)
    assert get(projection, "/v1/changes", cursor=cursor)["items"] == []
    mark = len(log.messages)
    log.accounts[opp] = log.accounts[opp].model_copy(update={"name": "ООО Новое имя"})
    log.account_touch(opp, "visitor", day(2))
    await env.produce(log, start=mark)
    await wait_caught_up(env, engine)
    items = get(projection, "/v1/changes", cursor=cursor)["items"]
    assert [(i["opportunity_id"], i["account_name"]) for i in items] == [(opp, "ООО Новое имя")]


async def test_duplicates_and_replays_change_no_row(env, engine, projection, story):
    before = await snapshot(engine, env.schema, skip_tables=("consumer_offsets",))
    cursor = get(projection, "/v1/changes", cursor=0, limit=1000)["next_cursor"]
    # The whole log again (a producer retry, a replayed topic), then one new opportunity that
    # tells when the duplicates have been read.
    await env.produce(story.log)
    sentinel_log = Log(uuid.uuid4().hex[:6])
    sentinel = sentinel_log.opportunity("sentinel.ru", "Сентинел")
    await env.produce(sentinel_log)
    await wait_caught_up(env, engine)
    after = await snapshot(engine, env.schema, skip_tables=("consumer_offsets",))
    token = sentinel_log.token
    after = {t: [r for r in rows if not any(token in str(v) for v in r.values())] for t, rows in after.items()}
    assert after == before
    assert [i["opportunity_id"] for i in get(projection, "/v1/changes", cursor=cursor)["items"]] == [sentinel]


async def test_a_crm_reports_a_won_deal_and_every_members_touches_get_credit(projection, story):
    path = f"{projection}/v1/opportunities/{story.romashka}/stage"
    body = {"stage": "won", "amount": 1_200_000, "currency": "RUB", "changed_at": "2026-10-20T10:00:00Z"}
    assert httpx.post(path, json=body, headers=READ).status_code == 403
    answer = httpx.post(path, json=body, headers=CRM, timeout=20)
    assert answer.status_code == 202, answer.text
    assert answer.json()["applied"] is True
    assert answer.json()["opportunity"]["status"] == "won"
    retried = httpx.post(path, json=body, headers=CRM, timeout=20).json()
    assert retried["event_id"] == answer.json()["event_id"]

    opp = get(projection, f"/v1/opportunities/{story.romashka}")
    assert (opp["stage"], opp["outcome"], opp["status"], opp["amount"]) == ("won", "won", "won", 1_200_000)
    # The rules' moves (target base -> cold -> warm) and the CRM's won.
    assert [(h["stage"], h["author"]) for h in opp["stage_history"]] == [
        ("cold", "rules"), ("warm", "rules"), ("won", "crm")]

    credit = get(projection, f"/v1/opportunities/{story.romashka}/attribution", model="position_based")
    assert len(credit["touches"]) == opp["touches_count"]
    assert sum(t["credit"] for t in credit["touches"]) == pytest.approx(1.0)
    assert sum(t["value"] for t in credit["touches"]) == pytest.approx(1_200_000)
    assert {m["key"].split("@")[0] for m in credit["by_member"]} == {
        "elena.sokolova", "sergey.volkov", "olga.petrova", "ivan.mikhailov"}

    it_content = get(projection, "/v1/attribution", department="it", group_by="content")
    assert it_content["won_opportunities"] == 1
    assert {g["key"] for g in it_content["groups"]} == {"/solutions/hr/api", "hr-security-whitepaper", None}
    by_department = get(projection, "/v1/attribution", group_by="department")
    assert sum(g["credit"] for g in by_department["groups"]) == pytest.approx(1.0)

    missing = httpx.post(f"{projection}/v1/opportunities/nobody.ru:hr/stage", json=body, headers=CRM)
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


async def test_unusable_messages_go_to_the_dead_letter_topic_and_the_stream_goes_on(env, engine, projection, story):
    follow_up = Log(uuid.uuid4().hex[:6])
    follow_up.opportunity("after-bad.ru", "После ошибки")
    poisoned = Log(uuid.uuid4().hex[:6])
    nan = poisoned.opportunity("nan.ru", "Не число")
    (_, key, created), = poisoned.messages
    score = poisoned.score(nan, 1.0, "C", day(1))
    # Text PostgreSQL cannot hold never decodes (shared.text refuses it); a NaN score decodes
    # but cannot be applied.
    nul = encode(created).replace("Не число".encode(), b"\\u0000")
    not_a_number = encode(score).replace(b'"score":1.0', b'"score":NaN')
    await produce(env.topic(topics.OPPORTUNITY_EVENTS), [
        ("bad", b"{not json"),
        ("bad", b'{"type": "touch_attributed", "version": 0}'),
        (key, nul),
    ])
    await produce(env.topic(topics.SCORES), [(nan, not_a_number)])
    await env.produce(follow_up)
    letters = await collect(env.topic(topics.PROJECTION_DLQ), until=lambda k: len(k) >= 4,
                            decode=dead_letters.decode, timeout=30)
    assert sorted(dl.reason for dl in letters) == ["invalid_json", "invalid_schema", "invalid_schema",
                                                   "invalid_value"]
    assert all(dl.service == "projection" and dl.source_offset is not None for dl in letters)
    assert "not a finite number" in next(dl for dl in letters if dl.reason == "invalid_value").detail
    await wait_caught_up(env, engine)
    follow_up_id = next(iter(follow_up.accounts))
    assert get(projection, f"/v1/opportunities/{follow_up_id}")["account_name"] == "После ошибки"


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
