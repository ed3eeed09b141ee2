"""Corrections (issue 16) through the real Kafka and PostgreSQL, the projection as its own
process: the write endpoints produce to bg.correction.v1 (202 only after Kafka's ack), the
projection consumes them back into the history, members' notes and stances and the merges in
force, and the API shows them. Bad input is 401/403/404/409/422, never 5xx; Kafka refusing is
503 with nothing written; a rebuild from the log keeps every correction."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.projection import correcting as cr
from services.projection import db
from services.projection.api import create_app
from services.projection.correction_api import CorrectionPublisher
from services.projection.repository import Reader
from services.projection.settings import ProjectionSettings
from shared import topics
from shared.codec import corrections, dead_letters, encode
from shared.settings import KafkaSettings, kafka_settings
from tests.component.projection.conftest import CRM, READ, Env, snapshot, wait_caught_up
from tests.support.kafka import collect, namespace, produce
from tests.support.processes import free_port
from tests.unit.projection.stories import ELENA, IVAN, OLGA, SERGEY, Log, gazmyasneft, krasnaya_romashka

pytestmark = pytest.mark.component

TOKENS = {"Мария Соколова": "maria-token", "Пётр Иванов": "petr-token"}
MARIA = {"Authorization": "Bearer maria-token"}
PETR = {"Authorization": "Bearer petr-token"}


@dataclass
class Story:
    log: Log
    romashka: str
    gaz: str

    def person(self, who) -> str:
        return self.log.person_id(self.romashka, who)


@pytest.fixture(scope="module")
def api(env: Env) -> Iterator[str]:
    port = free_port()
    service = env.service(f"projection-corr-{env.namespace.rstrip('.')}", port,
                          BG_API_CORRECTION_TOKENS=json.dumps(TOKENS, ensure_ascii=False))
    with service:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
async def story(env: Env, engine: AsyncEngine, api: str) -> Story:
    log = Log(uuid.uuid4().hex[:6])
    found = Story(log, krasnaya_romashka(log), gazmyasneft(log))
    await env.produce(log)
    await wait_caught_up(env, engine)
    return found


def opp_path(oid: str) -> str:
    return f"/v1/opportunities/{quote(oid, safe='')}"


def member_path(oid: str, pid: str, what: str) -> str:
    return f"{opp_path(oid)}/members/{quote(pid, safe='')}/{what}"


def call(url: str, method: str, path: str, body: dict[str, Any] | None = None,
         headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.request(method, f"{url}{path}", json=body, headers=MARIA if headers is None else headers, timeout=30)


def detail(url: str, oid: str) -> dict[str, Any]:
    r = httpx.get(f"{url}{opp_path(oid)}", headers=READ, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def member(found: dict[str, Any], pid: str) -> dict[str, Any]:
    return next(m for m in found["members"] if m["person_id"] == pid)


def accepted(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["result"] == "recorded", body
    return body


async def test_a_stance_and_a_note_go_through_kafka_into_the_history_with_their_author(env: Env, api: str,
                                                                                        story: Story):
    olga = story.person(OLGA)
    stance = accepted(call(api, "PUT", member_path(story.romashka, olga, "stance"),
                           {"stance": "champion", "influence": "high", "reason": "Сама продвигает проект"}))
    assert stance["author"] == "Мария Соколова" and stance["type"] == "member_stance_set"
    note = accepted(call(api, "PUT", member_path(story.romashka, story.person(SERGEY), "note"),
                         {"note": "Беспокоит интеграция с 1С и ИБ", "concerns": ["integration_security"]},
                         headers=PETR))
    assert note["author"] == "Пётр Иванов"

    found = detail(api, story.romashka)
    assert (member(found, olga)["stance"], member(found, olga)["influence"], member(found, olga)["stance_by"]) == (
        "champion", "high", "Мария Соколова")
    sergey = member(found, story.person(SERGEY))
    assert (sergey["note"], sergey["concerns"], sergey["note_by"]) == (
        "Беспокоит интеграция с 1С и ИБ", ["integration_security"], "Пётр Иванов")
    history = {c["correction_id"]: c for c in found["corrections"]}
    assert history[stance["correction_id"]]["reason"] == "Сама продвигает проект"
    assert history[stance["correction_id"]]["detail"] == {"stance": "champion", "influence": "high"}
    assert history[note["correction_id"]]["author"] == "Пётр Иванов"

    # On the topic, keyed by the opportunity, exactly as acknowledged.
    on_topic = await collect(env.topic(topics.CORRECTIONS), until=lambda kept: len(kept) >= 1,
                             decode=corrections.decode, where=lambda m: m.correction_id == stance["correction_id"])
    assert on_topic[0].opportunity_id == story.romashka and on_topic[0].author == "Мария Соколова"


async def test_undo_restores_the_previous_stance_and_cannot_be_repeated(api: str, story: Story):
    ivan = story.person(IVAN)
    first = accepted(call(api, "PUT", member_path(story.romashka, ivan, "stance"), {"stance": "champion"}))
    second = accepted(call(api, "PUT", member_path(story.romashka, ivan, "stance"),
                           {"stance": "blocker", "influence": "high"}, headers=PETR))
    assert member(detail(api, story.romashka), ivan)["stance"] == "blocker"

    undo = accepted(call(api, "POST", f"/v1/corrections/{second['correction_id']}/undo",
                         {"reason": "Перепутал с другим Иваном"}))
    found = detail(api, story.romashka)
    assert (member(found, ivan)["stance"], member(found, ivan)["influence"]) == ("champion", "medium")
    undone = next(c for c in found["corrections"] if c["correction_id"] == second["correction_id"])
    assert (undone["undone_by_id"], undone["undone_by"], undone["undo_reason"]) == (
        undo["correction_id"], "Мария Соколова", "Перепутал с другим Иваном")
    assert first["correction_id"] in {c["correction_id"] for c in found["corrections"]}

    again = call(api, "POST", f"/v1/corrections/{second['correction_id']}/undo", {})
    assert again.status_code == 409 and "already undone by Мария Соколова" in again.json()["message"]
    of_undo = call(api, "POST", f"/v1/corrections/{undo['correction_id']}/undo", {})
    assert of_undo.status_code == 409 and "itself an undo" in of_undo.json()["message"]
    unknown = call(api, "POST", "/v1/corrections/c-nope/undo", {})
    assert unknown.status_code == 409 and unknown.json()["errors"][0]["field"] == "path.correction_id"


async def test_a_person_linked_by_hand_and_a_role_set_by_hand_are_in_the_history(api: str, story: Story):
    # Газмяснефть's reader is a known contact of another account: linked here by hand.
    gaz_reader = next(iter(story.log.members[story.gaz]))
    link = accepted(call(api, "POST", f"{opp_path(story.romashka)}/members",
                         {"person_id": gaz_reader, "role": "influencer", "department": "hr",
                          "reason": "Консультант, участвует в выборе"}))
    role = accepted(call(api, "PUT", member_path(story.romashka, story.person(ELENA), "role"),
                         {"role": "decision_maker", "department": "hr"}))
    history = {c["correction_id"]: c for c in detail(api, story.romashka)["corrections"]}
    assert history[link["correction_id"]]["person_id"] == gaz_reader
    assert history[link["correction_id"]]["detail"] == {"role": "influencer", "department": "hr"}
    assert history[role["correction_id"]]["type"] == "member_role_set"
    # A retry with the client's own id is written once.
    body = {"reason": "повтор", "correction_id": f"retry-{story.log.token}"}
    path = member_path(story.romashka, story.person(ELENA), "unlink")
    accepted(call(api, "POST", path, body))
    assert call(api, "POST", path, body).json()["result"] == "duplicate"
    history = detail(api, story.romashka)["corrections"]
    assert [c["correction_id"] for c in history].count(f"retry-{story.log.token}") == 1


@pytest.mark.parametrize(("method", "what", "body", "status", "field"), [
    ("PUT", "stance", {"stance": "friend"}, 422, "body.stance"),
    ("PUT", "note", {"note": "x", "concerns": ["price"]}, 422, "body.concerns.0"),
    ("PUT", "role", {"role": "decision_maker", "extra": 1}, 422, "body.extra"),
    ("PUT", "role", {"department": "hr"}, 422, "body.role"),
])
async def test_bad_bodies_are_422_naming_the_field(api: str, story: Story, method, what, body, status, field):
    r = call(api, method, member_path(story.romashka, story.person(OLGA), what), body)
    assert r.status_code == status, r.text
    assert field in [e["field"] for e in r.json()["errors"]]


async def test_unknown_opportunities_people_and_accounts_are_404(api: str, story: Story):
    cases = [
        ("PUT", member_path("nope.ru:hr", story.person(OLGA), "stance"), {"stance": "champion"},
         "path.opportunity_id"),
        ("PUT", member_path(story.romashka, "stranger@nope.ru", "stance"), {"stance": "champion"}, "path.person_id"),
        ("POST", f"{opp_path(story.romashka)}/members", {"person_id": "stranger@nope.ru"}, "body.person_id"),
        ("POST", "/v1/accounts/merges", {"into": story.log.accounts[story.romashka].account_id,
                                         "merged": "nope.ru"}, "body.merged"),
    ]
    for method, path, body, field in cases:
        r = call(api, method, path, body)
        assert r.status_code == 404, (path, r.text)
        assert r.json()["errors"][0]["field"] == field


async def test_tokens_401_without_403_for_read_and_crm_tokens(api: str, story: Story):
    path = member_path(story.romashka, story.person(OLGA), "stance")
    assert call(api, "PUT", path, {"stance": "champion"}, headers={}).status_code == 401
    assert call(api, "PUT", path, {"stance": "champion"},
                headers={"Authorization": "Bearer wrong"}).status_code == 401
    for headers in (READ, CRM):
        r = call(api, "PUT", path, {"stance": "champion"}, headers=headers)
        assert r.status_code == 403 and "BG_API_CORRECTION_TOKENS" in r.json()["message"]
    # A correction token reads too.
    assert httpx.get(f"{api}{opp_path(story.romashka)}", headers=MARIA).status_code == 200


async def test_merges_refuse_itself_and_cycles_with_the_reason(api: str, story: Story):
    romashka = story.log.accounts[story.romashka].account_id
    gaz = story.log.accounts[story.gaz].account_id
    itself = call(api, "POST", "/v1/accounts/merges", {"into": romashka, "merged": romashka})
    assert itself.status_code == 409 and "cannot be merged into itself" in itself.json()["message"]
    merge = accepted(call(api, "POST", "/v1/accounts/merges", {"into": romashka, "merged": gaz,
                                                                "reason": "Одна компания"}))
    assert merge["subject"] == romashka
    cycle = call(api, "POST", "/v1/accounts/merges", {"into": gaz, "merged": romashka})
    assert cycle.status_code == 409 and "a cycle of merges" in cycle.json()["message"], cycle.text
    twice = call(api, "POST", "/v1/accounts/merges", {"into": romashka, "merged": gaz})
    assert twice.status_code == 409 and f"{gaz} is already merged into {romashka}" in twice.json()["message"]
    # Both accounts' opportunities show the merge in their history.
    for oid in (story.romashka, story.gaz):
        assert merge["correction_id"] in {c["correction_id"] for c in detail(api, oid)["corrections"]}
    # Undone, the merge is no longer in force: the reverse merge is then allowed to be asked.
    accepted(call(api, "POST", f"/v1/corrections/{merge['correction_id']}/undo", {}))
    assert call(api, "POST", "/v1/accounts/merges", {"into": romashka, "merged": gaz,
                                                     "correction_id": f"m2-{story.log.token}"}).status_code == 202


async def test_an_undo_the_projection_cannot_apply_is_dead_lettered(env: Env, engine: AsyncEngine, api: str,
                                                                    story: Story):
    # Written straight to the topic (the API would refuse it with 409).
    bad = cr.undone({"correction_id": "c-never", "subject": story.romashka},
                    cr.UndoRequest(correction_id=f"bad-undo-{story.log.token}"), "Мария Соколова",
                    datetime.now(UTC))
    await produce(env.topic(topics.CORRECTIONS), [(bad.key(), encode(bad))])
    letters = await collect(env.topic(topics.CORRECTIONS_DLQ), until=lambda kept: len(kept) >= 1,
                            decode=dead_letters.decode, where=lambda d: bad.correction_id in d.payload)
    assert letters[0].reason == "unknown_correction" and "c-never" in letters[0].detail
    await wait_caught_up(env, engine)
    r = httpx.get(f"{api}/v1/corrections/{bad.correction_id}", headers=READ)
    assert r.status_code == 404


async def correction_ends(env: Env) -> dict[int, int]:
    consumer = AIOKafkaConsumer(**kafka_settings().aiokafka_kwargs(), group_id=None)
    await consumer.start()
    try:
        parts = [TopicPartition(env.topic(topics.CORRECTIONS), p) for p in range(kafka_settings().topic_partitions)]
        return {tp.partition: o for tp, o in (await consumer.end_offsets(parts)).items()}
    finally:
        await consumer.stop()


async def test_kafka_refusing_is_503_and_nothing_is_written(env: Env, engine: AsyncEngine, story: Story):
    # The same app as the service's, its correction producer pointed at a port where no broker
    # listens (Kafka away), the database the real one.
    nobody = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")
    publisher = CorrectionPublisher(nobody)
    settings = ProjectionSettings(BG_API_CORRECTION_TOKENS=TOKENS, PROJECTION_STAGE_WAIT_SECONDS=0)
    app = create_app(settings, Reader(engine), publish=None, publish_correction=publisher.publish)  # type: ignore[arg-type]
    before = await correction_ends(env)
    cid = f"refused-{story.log.token}"
    try:
        with namespace(env.namespace):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
                r = await client.put(member_path(story.romashka, story.person(OLGA), "stance"), headers=MARIA,
                                     json={"stance": "blocker", "correction_id": cid})
    finally:
        await publisher.stop()
    assert r.status_code == 503 and r.headers["retry-after"] == "5", r.text
    assert "nothing was written" in r.json()["message"]
    assert await correction_ends(env) == before
    await wait_caught_up(env, engine)
    assert await Reader(engine).correction(cid) is None


async def test_a_rebuild_from_the_log_keeps_every_correction(env: Env, engine: AsyncEngine, api: str, story: Story):
    accepted(call(api, "PUT", member_path(story.romashka, story.person(OLGA), "note"),
                  {"note": "Нужен расчёт ROI", "concerns": ["tco_roi"]}))
    # A merge in force of its own (two accounts of its own): the story's accounts are merged and
    # unmerged by the other tests, in whatever order they run.
    own = Log(uuid.uuid4().hex[:6])
    into = own.opportunity("rebuild-into.ru", "Поглощающая")
    merged = own.opportunity("rebuild-merged.ru", "Поглощённая")
    await env.produce(own)
    await wait_caught_up(env, engine)
    accepted(call(api, "POST", "/v1/accounts/merges", {"into": own.accounts[into].account_id,
                                                        "merged": own.accounts[merged].account_id,
                                                        "reason": "Одна компания"}))
    await wait_caught_up(env, engine)
    rebuilt = f"{env.schema}_rb"
    done = env.command("rebuild", "--no-progress", schema_name=rebuilt)
    assert done.returncode == 0, done.stderr
    tables = ("corrections", "member_annotations", "account_merges")
    others = tuple(t for t in ("accounts", "contacts", "opportunities", "opportunity_members", "touches", "signals",
                               "score_history", "stage_changes", "criterion_marks", "opportunity_team",
                               "consumer_offsets") if t not in tables)
    try:
        live = await snapshot(engine, env.schema, skip_tables=others)
        again = await snapshot(engine, rebuilt, skip_tables=others)
    finally:
        await db.drop(engine, rebuilt)
    assert live["corrections"] and live["member_annotations"] and live["account_merges"]
    assert live == again

async def test_opening_an_opportunity_by_hand_checks_the_catalog_and_duplicates(api: str, story: Story):
    account = story.log.accounts[story.romashka].account_id
    unknown = call(api, "POST", "/v1/opportunities", {"account_id": account, "solution": "erp"})
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "body.solution"
    assert "not in the catalog (known: bi, crm, hr, wms)" in unknown.json()["message"]
    twice = call(api, "POST", "/v1/opportunities", {"account_id": account, "solution": "hr"})
    assert twice.status_code == 409 and "exists already" in twice.json()["message"]
    opened = accepted(call(api, "POST", "/v1/opportunities", {"account_id": account, "solution": "crm",
                                                              "reason": "Запрос на выставке"}))
    assert (opened["type"], opened["subject"]) == ("opportunity_opened", f"{account}:crm")
    # Grouping (not running here) creates it; the history already holds who asked and why.
    found = httpx.get(f"{api}/v1/corrections/{opened['correction_id']}", headers=READ).json()
    assert (found["author"], found["reason"], found["detail"]) == (
        "Мария Соколова", "Запрос на выставке", {"account_id": account, "solution": "crm", "profile": None})


async def test_a_failed_write_retires_the_producer_and_the_next_correction_gets_a_new_one(env: Env, story: Story):
    # A numbered batch that failed would leave an idempotent producer refusing every later batch
    # of its partition; so a failure hands the next correction a new producer (a new id).
    publisher = CorrectionPublisher(kafka_settings())
    first = cr.stance_set(story.romashka, story.person(OLGA), cr.StanceRequest(stance="neutral"), "Мария",
                          datetime.now(UTC))
    lost = first.model_copy(update={"correction_id": f"lost-{story.log.token}"})
    after = first.model_copy(update={"correction_id": f"after-{story.log.token}"})

    async def refused(*args, **kwargs):
        raise KafkaTimeoutError("the broker did not answer")

    try:
        with namespace(env.namespace):  # the module's topics, as the service's own process writes them
            await publisher.publish(first)
            failing = publisher._producer
            assert failing is not None
            failing.send_and_wait = refused  # type: ignore[method-assign]
            with pytest.raises(KafkaTimeoutError):
                await publisher.publish(lost)
            assert publisher._producer is None
            await publisher.publish(after)
            assert publisher._producer is not None and publisher._producer is not failing
    finally:
        await publisher.stop()
    wanted = {first.correction_id, lost.correction_id, after.correction_id}
    found = await collect(env.topic(topics.CORRECTIONS), until=lambda kept: len(kept) >= 2,
                          decode=corrections.decode, where=lambda m: m.correction_id in wanted, settle=2)
    assert sorted(m.correction_id for m in found) == sorted([first.correction_id, after.correction_id])
