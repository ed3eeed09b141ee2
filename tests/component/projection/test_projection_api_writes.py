"""The projection's writes through real Kafka and its API: the change feed, a renamed account,
duplicates and replays, a CRM's won deal with attribution, dead letters. Each test adds to the
same projection (a touch, opportunities, a stage), so the module is one story told in order
(the `story` marker keeps it under pytest-randomly); the read-only tests of the same stories
are in test_projection_api.py, on a projection of their own."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import topics
from shared.codec import dead_letters, encode
from shared.schemas.touch import TouchKind
from tests.component.projection.conftest import CRM, READ, Env, get, snapshot, wait_caught_up
from tests.component.projection.test_projection_api import Story
from tests.support.kafka import collect, produce
from tests.unit.projection.stories import (
    SERGEY,
    Log,
    argotrubosbyt,
    day,
    gazmyasneft,
    krasnaya_romashka,
)

pytestmark = [pytest.mark.component, pytest.mark.story]


@pytest.fixture(scope="module")
async def story(env: Env, engine: AsyncEngine, projection: str) -> Story:
    log = Log(uuid.uuid4().hex[:6])
    found = Story(log, krasnaya_romashka(log), argotrubosbyt(log), gazmyasneft(log))
    await env.produce(log)
    await wait_caught_up(env, engine)
    return found


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
