"""Personal data through the whole pipeline (issue 18, docs/privacy.md): an export returns what
was kept, an erase removes the person from the read API, every topic of the namespace, every
table and Redis, the opportunity counts them no more, and a rebuild from the log does not bring
them back; a suppressed person's later touches create nothing."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from redis import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shared import topics
from shared.codec import dead_letters
from shared.schemas.deadletter import DeadLetter
from shared.settings import kafka_settings
from tests.e2e.conftest import TOKEN, Pipeline
from tests.e2e.test_pipeline import opportunity, wait_until
from tests.support.kafka import collect
from tests.support.privacy import opened

API_KEY = {"X-API-Key": "dev-api-key"}
WRITE = {"Authorization": "Bearer dev-crm-token"}
SENDGRID = {"X-API-Key": "dev-sendgrid-key"}
CORRECT = {"Authorization": "Bearer dev-correction-token"}
HR = "https://vendor.example/solutions/hr"


class Company:
    """Four people of one company reading about the HR system, one of them (Ольга) also known by
    a Metrica ClientID before she filled a form, and by a user id."""

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:8]
        self.domain = f"privacy{self.tag}.ru"
        self.opportunity_id = f"{self.domain}:hr"
        self.start = datetime.now(UTC) - timedelta(days=3)
        self.olga = {"email": f"Olga.Petrova{self.tag}@{self.domain}", "name": f"Ольга Петрова-{self.tag}",
                     "anonymous_id": f"ym:17000{self.tag}", "user_id": f"crm-olga-{self.tag}"}
        self.note = f"Ольга в декрете до марта, звонить на личный {self.tag}"  # what a colleague wrote of her

    def at(self, hours: float) -> str:
        return (self.start + timedelta(hours=hours)).isoformat()

    def touch(self, n: int, hours: float, person: dict, kind: str = "page_view", url: str = f"{HR}/overview") -> dict:
        return {"type": "touch", "event_id": f"pv-{self.tag}-{n}", "occurred_at": self.at(hours), "source": "web",
                "kind": kind, "person": {**person, "company": f"Ромашка {self.tag}"}, "content": {"url": url}}

    def people(self) -> dict[str, dict]:
        return {
            "elena": {"email": f"elena{self.tag}@{self.domain}", "name": "Елена Соколова", "job_title": "HR-менеджер"},
            "sergey": {"email": f"sergey{self.tag}@{self.domain}", "name": "Сергей Волков",
                       "job_title": "IT-директор"},
            "ivan": {"email": f"ivan{self.tag}@{self.domain}", "name": "Иван Михайлов",
                     "job_title": "генеральный директор"},
        }

    def story(self) -> list[dict]:
        p = self.people()
        olga = self.olga
        return [
            self.touch(1, 0, {"anonymous_id": olga["anonymous_id"]}, url=f"{HR}/pricing"),
            self.touch(2, 1, p["elena"]), self.touch(3, 2, p["elena"], "download", f"{HR}/leave-automation"),
            self.touch(4, 3, p["sergey"], url=f"{HR}/integrations/api"),
            self.touch(5, 4, {**olga, "job_title": "финансовый директор"}, "download", f"{HR}/roi-case-study"),
            self.touch(6, 5, p["ivan"], url=f"{HR}/overview"),
        ]


def post_events(pipeline: Pipeline, events: list[dict]) -> dict:
    r = httpx.post(f"{pipeline.ingest_url}/v1/events", json={"events": events}, headers=API_KEY, timeout=30)
    assert r.status_code == 202, r.text
    return r.json()


def scored_touches(o: dict) -> int:
    """How many touches the opportunity's latest score counted (its breakdown's members)."""
    return sum(m["touches"] for m in (o.get("score_breakdown") or {}).get("members", []))


async def every_record_of_the_namespace(namespace: str) -> list[bytes]:
    """Key and value of every record of every topic whose name starts with the namespace: the
    project's topics, grouping's internal topics and every faust changelog."""
    settings = kafka_settings()
    admin = AIOKafkaAdminClient(**settings.aiokafka_kwargs())
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(namespace)]
        # The partitions from the broker itself: a consumer's metadata may lack the topics
        # created since it started, and reading only those it knew found 4 records of 30 (CI).
        partitions = [TopicPartition(d["topic"], p["partition"]) for d in await admin.describe_topics(names)
                      for p in d["partitions"]]
    finally:
        await admin.close()
    assert any(n.endswith("-changelog") for n in names) and topics.PERSON_EVENTS.name in names
    assert {tp.topic for tp in partitions} == set(names)
    consumer = AIOKafkaConsumer(**settings.aiokafka_kwargs(), enable_auto_commit=False)
    await consumer.start()
    found: list[bytes] = []
    try:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        # seek(), not seek_to_beginning(): assign() starts a reset to the default strategy
        # (latest), and aiokafka 0.14 applies that reset's answer even when seek_to_beginning came
        # while it was in flight (Fetcher._update_fetch_positions checks only awaiting_reset, not
        # the strategy): the position was the end and nothing was read (CI, 1 run in 4 here).
        # The loop ends by the offsets of the records themselves.
        left = {tp for tp in partitions if ends[tp] > starts[tp]}
        for tp in left:
            consumer.seek(tp, starts[tp])
        deadline = time.monotonic() + 60
        while left and time.monotonic() < deadline:
            batches = await consumer.getmany(*left, timeout_ms=1000, max_records=5000)
            for tp, records in batches.items():
                found += [(r.key or b"") + b"\x00" + (r.value or b"") for r in records]
                if records and records[-1].offset + 1 >= ends[tp]:
                    left.discard(tp)
        assert not left, f"not read to the end in 60 s: {sorted(map(str, left))}"
    finally:
        await consumer.stop()
    return found


async def every_row_of_the_schema(database_url: str, schema: str) -> list[str]:
    """Every row of every table of the schema, as JSON text."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            listed = await conn.execute(text(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = :s"), {"s": schema})
            tables = listed.scalars().all()
            assert "opportunity_members" in tables and "touches" in tables
            rows = []
            for t in tables:
                rows += (await conn.execute(text(f'SELECT row_to_json(t)::text FROM "{schema}"."{t}" t'))).scalars()
            return rows
    finally:
        await engine.dispose()


def forms(value: str) -> set[str]:
    """The spellings a value may be stored in: as given, lower case, JSON-escaped."""
    return {value, value.lower(), json.dumps(value)[1:-1]}


def ingest_dead_letters(tag: str) -> list[DeadLetter]:
    return asyncio.run(collect(topics.INGEST_DLQ.name, until=lambda kept: kept, decode=dead_letters.decode,
                               where=lambda d: tag in d.payload))


def test_export_then_erase_leaves_nothing_and_the_group_counts_them_no_more(pipeline: Pipeline):
    company = Company()
    olga = company.olga
    # One item ingest cannot map (a kind no platform sends), carrying everything of hers: dead-lettered.
    bad = {**company.touch(9, 6, {**olga, "job_title": "финансовый директор"}), "kind": "telepathy"}
    answer = post_events(pipeline, [*company.story(), bad])
    assert (answer["accepted"], answer["dead_lettered"]) == (6, 1)
    # The letter says what was wrong and where, in clear; her values in it are sealed, and open
    # with the vault (an operator may look) until she is erased.
    [letter] = ingest_dead_letters(company.tag)
    assert letter.reason == "invalid_item" and "kind" in letter.detail, letter
    assert not [w for v in olga.values() for w in forms(v) if w in letter.payload]
    quoted = json.loads(letter.payload)
    assert "финансовый директор" in letter.payload and quoted["content"] == bad["content"]
    assert opened(quoted["person"]["email"]) == {"v": olga["email"]}
    with pipeline.api() as api, httpx.Client(base_url=pipeline.api_url, headers=WRITE, timeout=30) as writer:
        # The score too must have all six touches: the opportunity row can be ahead of scoring,
        # and a score taken before her touches counted equals the one after her erasure (CI).
        formed = wait_until(lambda: (o := opportunity(api, company.opportunity_id)) and len(o["members"]) == 4
                            and sum(m["touches_count"] for m in o["members"]) == 6 and o["score"]
                            and scored_touches(o) == 6 and o)
        member = next(m for m in formed["members"] if m["name"] == olga["name"])
        assert member["email"] == olga["email"].lower() and member["touches_count"] == 2
        pseudonymous_id = member["person_id"]
        assert olga["email"].lower() not in pseudonymous_id and pseudonymous_id.endswith(f"@{company.domain}")
        # A note about her (free text that may say anything of her) goes on bg.correction.v1
        # sealed under her key; the page shows it as written.
        noted = httpx.put(f"{pipeline.api_url}/v1/opportunities/{company.opportunity_id}/members/"
                          f"{pseudonymous_id}/note", headers=CORRECT, timeout=30,
                          json={"note": company.note, "concerns": ["tco_roi"]})
        assert noted.status_code == 202, noted.text
        wait_until(lambda: next(m for m in opportunity(api, company.opportunity_id)["members"]
                                if m["person_id"] == pseudonymous_id)["note"] == company.note)

        # Export, with a read token: refused; with a write token: everything kept about her.
        assert httpx.post(f"{pipeline.api_url}/v1/privacy/export", json={"email": olga["email"]},
                          headers=TOKEN).status_code == 403
        bad = writer.post("/v1/privacy/export", json={"email": olga["email"], "user_id": olga["user_id"]})
        assert bad.status_code == 422 and bad.json()["error"] == "validation_error"
        unknown = writer.post("/v1/privacy/export", json={"email": f"nobody{company.tag}@{company.domain}"})
        assert unknown.status_code == 404 and unknown.json()["errors"][0]["field"] == "body.email"
        for identifier in ({"email": olga["email"]}, {"anonymous_id": olga["anonymous_id"]},
                           {"user_id": olga["user_id"]}):
            export = writer.post("/v1/privacy/export", json=identifier)
            assert export.status_code == 200, export.text
            kept = export.json()
            assert kept["person_ids"] == [pseudonymous_id]
            assert [(c["email"], c["name"]) for c in kept["contacts"]] == [(olga["email"].lower(), olga["name"])]
            assert [m["opportunity_id"] for m in kept["memberships"]] == [company.opportunity_id]
            assert sorted(t["touch_id"] for t in kept["touches"]) == [f"pv-{company.tag}-1", f"pv-{company.tag}-5"]
            assert {i["kind"] for i in kept["identifiers"]} == {"email", "anon", "user"}
        score_before = formed["score"]

        # Erase by the command, with its progress; by her anonymous id, the one least known.
        erasing_from = datetime.now(UTC)  # the erasure's event time is later: it is stamped in the command
        env = {**os.environ, "PROJECTION_DB_SCHEMA": pipeline.db_schema}
        done = subprocess.run([sys.executable, "-m", "services.privacy", "erase", "--anonymous-id",
                               olga["anonymous_id"]], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout[done.stdout.index("{"):])
        assert report["person_ids"] == [pseudonymous_id] and report["keys_destroyed"] == 3
        assert "destroy keys" in done.stderr + done.stdout

        def recomputed():
            # Her entry leaves the stored breakdown at once (the command's projection step, and
            # grouping's member_removed, which reaches the projection before scoring's score of
            # it), while the score stays the one that counted her until scoring's re-score
            # arrives: only a score as of the erasure or later was computed without her (CI read
            # the breakdown without her and the old score, 73.543 == 73.543).
            o = opportunity(api, company.opportunity_id)
            if not o or not o["score_as_of"] or datetime.fromisoformat(o["score_as_of"]) < erasing_from:
                return None
            people = {m["person_id"] for m in (o.get("score_breakdown") or {}).get("members", [])}
            return o if len(o["members"]) == 3 and people and pseudonymous_id not in people else None

        after = wait_until(recomputed)
        assert {m["name"] for m in after["members"]} == {p["name"] for p in company.people().values()}
        assert sum(m["touches_count"] for m in after["members"]) == 4 and after["touches_count"] == 4
        assert scored_touches(after) == 4 and after["score_version"] > formed["score_version"]
        assert after["score"] < score_before
        assert writer.post("/v1/privacy/export", json={"email": olga["email"]}).status_code == 404

        # The read API: nothing of hers, anywhere it shows people.
        answers = [api.get(f"/v1/opportunities/{company.opportunity_id}").text,
                   api.get(f"/v1/accounts/{company.domain}").text,
                   api.get("/v1/opportunities", params={"account": company.domain}).text,
                   api.get("/v1/changes", params={"cursor": 0, "limit": 1000}).text]
        wanted = set().union(*(forms(v) for v in olga.values())) | forms(company.note) | {pseudonymous_id}
        for answer in answers:
            assert not [w for w in wanted if w in answer]

    # Her dead letter: the sealed values no longer open (her keys are gone).
    [letter] = ingest_dead_letters(company.tag)
    assert opened(json.loads(letter.payload)["person"]["email"]) is None
    raw = set().union(*(forms(v) for v in olga.values())) | forms(company.note)
    # Every topic of the namespace, the dead letters' included: her raw email, name and ids were
    # never written.
    records = asyncio.run(every_record_of_the_namespace(os.environ["BG_TOPIC_NAMESPACE"]))
    assert len(records) > 20
    assert not [w for w in raw for r in records if w.encode() in r]
    # Every table of the projection's schema: neither her raw values nor her pseudonym.
    rows = asyncio.run(every_row_of_the_schema(os.environ["DATABASE_URL"], pipeline.db_schema))
    assert not [w for w in raw | {pseudonymous_id} for row in rows if w in row]
    # Redis: no key or string value naming her.
    with Redis.from_url(os.environ["REDIS_URL"]) as redis:
        for key in redis.scan_iter(count=1000):
            value = redis.get(key) if redis.type(key) == b"string" else b""
            assert not [w for w in raw if w.encode() in key or w.encode() in (value or b"")]

    # A full rebuild of the projection from the log: the three remain, she does not come back.
    schema = f"rebuilt_{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PROJECTION_DB_SCHEMA": schema}
    done = subprocess.run([sys.executable, "-m", "services.projection", "rebuild", "--no-progress"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = asyncio.run(every_row_of_the_schema(os.environ["DATABASE_URL"], schema))
    assert not [w for w in raw | {pseudonymous_id} for row in rows if w in row]
    members = [json.loads(r) for r in rows if f'"opportunity_id":"{company.opportunity_id}"' in r
               and '"role_source"' in r and '"joined_at"' in r]
    assert sorted(m["name"] for m in members) == sorted(p["name"] for p in company.people().values())


@pytest.mark.parametrize("how", ["api", "sendgrid"])
def test_a_suppressed_persons_later_touches_create_nothing(pipeline: Pipeline, how: str):
    company = Company()
    sergey = company.people()["sergey"]
    assert post_events(pipeline, company.story())["accepted"] == 6
    with pipeline.api() as api:
        wait_until(lambda: (o := opportunity(api, company.opportunity_id)) and len(o["members"]) == 4 and o)
        if how == "api":
            r = httpx.post(f"{pipeline.api_url}/v1/privacy/suppressions", headers=WRITE, timeout=30,
                           json={"email": sergey["email"], "reason": "asked by phone"})
            assert r.status_code == 200 and r.json() == {"suppressed": True, "new": True}, r.text
            suppressed_at = datetime.now(UTC)
        else:
            suppressed_at = company.start + timedelta(hours=10)
            r = httpx.post(f"{pipeline.ingest_url}/v1/sources/sendgrid", headers=SENDGRID, timeout=30, json=[
                {"email": sergey["email"], "timestamp": int(suppressed_at.timestamp()), "event": "unsubscribe",
                 "sg_event_id": f"sg-{company.tag}-unsub"}])
            assert r.status_code == 202, r.text
        later = company.touch(7, (suppressed_at - company.start).total_seconds() / 3600 + 1, sergey, "download",
                              f"{HR}/security-whitepaper")
        answer = post_events(pipeline, [later])
        assert answer["accepted"] == 0 and len(answer["ignored"]) == 1 and "suppressed" in answer["ignored"][0]
        # A touch from before the opt-out, arriving late, is still his.
        earlier = company.touch(8, 6, sergey, url=f"{HR}/integrations/sso")
        assert post_events(pipeline, [earlier])["accepted"] == 1
        counted = wait_until(lambda: (o := opportunity(api, company.opportunity_id)) and next(
            m for m in o["members"] if m["name"] == sergey["name"])["touches_count"] == 2 and o)
        assert f"pv-{company.tag}-7" not in json.dumps(counted, ensure_ascii=False)
    on_log = asyncio.run(every_record_of_the_namespace(os.environ["BG_TOPIC_NAMESPACE"]))
    assert not [r for r in on_log if f"pv-{company.tag}-7".encode() in r]


def test_retention_destroys_idle_peoples_keys_and_their_raw_values(pipeline: Pipeline):
    company = Company()
    elena = company.people()["elena"]
    assert post_events(pipeline, company.story())["accepted"] == 6
    with pipeline.api() as api, httpx.Client(base_url=pipeline.api_url, headers=WRITE, timeout=30) as writer:
        wait_until(lambda: (o := opportunity(api, company.opportunity_id)) and len(o["members"]) == 4 and o)
        kept = writer.post("/v1/privacy/export", json={"email": elena["email"]}).json()
        # Elena was last seen long ago: her identifiers' last day goes back 800 days.
        prefix = f"bg:privacy:{os.environ['BG_TOPIC_NAMESPACE']}"
        old = (datetime.now(UTC) - timedelta(days=800)).date().isoformat()
        with Redis.from_url(os.environ["REDIS_URL"]) as redis:
            for identifier in kept["identifiers"]:
                token = identifier["pseudonym"].split("@")[0].rpartition(":")[2]
                assert redis.hset(f"{prefix}key:{token}", "s", old) == 0
        env = {**os.environ, "PROJECTION_DB_SCHEMA": pipeline.db_schema}
        dry = subprocess.run([sys.executable, "-m", "services.privacy", "retention", "--days", "730", "--dry-run"],
                             env=env, capture_output=True, text=True, timeout=120)
        assert dry.returncode == 0, dry.stderr
        assert json.loads(dry.stdout)["idle"] >= 1 and json.loads(dry.stdout)["keys_destroyed"] == 0
        done = subprocess.run([sys.executable, "-m", "services.privacy", "retention", "--days", "730"],
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["keys_destroyed"] >= 1
        after = opportunity(api, company.opportunity_id)
        # She still counts, as an anonymous member: no email, no name; the others keep theirs.
        assert len(after["members"]) == 4
        anonymous = [m for m in after["members"] if m["person_id"] == kept["person_ids"][0]]
        assert [(m["email"], m["name"], m["touches_count"]) for m in anonymous] == [(None, None, 2)]
        assert {m["name"] for m in after["members"]} - {None} == {
            p["name"] for k, p in company.people().items() if k != "elena"} | {company.olga["name"]}
        assert writer.post("/v1/privacy/export", json={"email": elena["email"]}).status_code == 404
