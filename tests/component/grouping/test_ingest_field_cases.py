"""Issue 13's account cases through the real ingest service, Kafka and the grouping worker:
what reaches an account id (a website as a URL, tenants of shared platforms) and what must
never create one (a machine open)."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator

import httpx
import pytest
from redis.asyncio import Redis

from shared import topics
from shared.codec import opportunity_events
from shared.schemas.opportunity import AccountTouch, MemberAdded, OpportunityCreated, TouchAttributed
from tests.support.kafka import collect
from tests.support.privacy import opened
from tests.support.processes import ServiceProcess, free_port

HR = "https://vendor.example/solutions/hr/leave-automation"


@pytest.fixture(scope="module")
def ingest_url(topic_namespace: str) -> Iterator[str]:
    port = free_port()
    with ServiceProcess("grouping-ingest", ["-m", "services.ingest"], env={"BG_INGEST_PORT": str(port)},
                        health_url=f"http://127.0.0.1:{port}/readyz"):
        yield f"http://127.0.0.1:{port}"


def post(url: str, path: str, body, key: str) -> dict:
    r = httpx.post(f"{url}{path}", json=body, headers={"X-API-Key": key}, timeout=30)
    assert r.status_code == 202, r.text
    return r.json()


async def opportunity_events_until(where, done, settle: float = 1.0) -> list:
    return await collect(topics.OPPORTUNITY_EVENTS.name, until=done, decode=opportunity_events.decode,
                         where=where, timeout=60, settle=settle)


def members(events, opportunity_id: str) -> set[str]:
    """The members' raw emails. Ingest writes pseudonyms (docs/privacy.md): a member's person id
    is `p<20 hex>@<the email's domain>`, one per person, and the raw email is in the sealed card,
    opened here with the vault of the ingest process under test."""
    found = {}
    for e in events:
        if isinstance(e, MemberAdded) and e.opportunity_id == opportunity_id:
            email = (opened(e.member.sealed) or {}).get("email")
            assert email is not None, f"member {e.member.person_id} without a sealed email the vault opens"
            domain = re.escape(email.rpartition("@")[2])
            assert re.fullmatch(rf"p[0-9a-f]{{20}}@{domain}", e.member.person_id), (e.member.person_id, email)
            found.setdefault(email, set()).add(e.member.person_id)
    assert all(len(ids) == 1 for ids in found.values()), found  # one pseudonym per person
    assert len({i for ids in found.values() for i in ids}) == len(found), found  # and one person per pseudonym
    return set(found)


async def test_a_website_as_a_url_is_one_account_whatever_its_form(worker, ingest_url):
    tag = uuid.uuid4().hex[:8]
    calls = []
    for n, (person, website) in enumerate((("ivan", f"https://www.berkut{tag}.ru/"),
                                           ("petr", f"http://berkut{tag}.ru"))):
        user = f"crm-{tag}-{person}"
        calls += [
            {"type": "identify", "messageId": f"{tag}-{n}-i", "userId": user,
             "traits": {"email": f"{person}{tag}@gmail.com"}, "timestamp": "2026-11-25T09:00:00Z"},
            {"type": "group", "messageId": f"{tag}-{n}-g", "userId": user, "groupId": f"acc-{tag}",
             "traits": {"name": "Беркут", "website": website}, "timestamp": "2026-11-25T09:01:00Z"},
            {"type": "track", "messageId": f"{tag}-{n}-t", "userId": user, "event": "Brochure Downloaded",
             "properties": {"url": HR}, "timestamp": f"2026-11-25T09:0{2 + n}:00Z"},
        ]
    assert post(ingest_url, "/v1/sources/segment", {"batch": calls}, "dev-segment-key")["accepted"] == 6
    opp = f"berkut{tag}.ru:hr"
    events = await opportunity_events_until(lambda e: tag in e.account.account_id,
                                            lambda kept: len(members(kept, opp)) == 2)
    assert {e.account.account_id for e in events} == {f"berkut{tag}.ru"}
    assert members(events, opp) == {f"ivan{tag}@gmail.com", f"petr{tag}@gmail.com"}


async def test_tenants_of_microsoft_365_are_two_accounts_not_onmicrosoft_com(worker, ingest_url):
    tag = uuid.uuid4().hex[:8]
    events = [{"event_id": f"{tag}-{person}", "occurred_at": "2026-11-25T09:00:00Z", "source": "web",
               "kind": "download", "person": {"email": f"{person}@{tenant}{tag}.onmicrosoft.com"},
               "content": {"url": HR}} for person, tenant in (("anna", "berezka"), ("oleg", "topol"))]
    assert post(ingest_url, "/v1/events", {"events": events}, "dev-api-key")["accepted"] == 2
    got = await opportunity_events_until(lambda e: tag in e.account.account_id,
                                         lambda kept: sum(isinstance(e, MemberAdded) for e in kept) == 2)
    assert {e.opportunity_id for e in got if isinstance(e, OpportunityCreated)} == {
        f"berezka{tag}.onmicrosoft.com:hr", f"topol{tag}.onmicrosoft.com:hr"}
    assert members(got, f"berezka{tag}.onmicrosoft.com:hr") == {f"anna@berezka{tag}.onmicrosoft.com"}


async def test_a_machine_open_creates_no_opportunity_a_click_does(worker, ingest_url):
    tag = uuid.uuid4().hex[:8]
    email = f"o.sosnova@sosna{tag}.ru"
    machine = {"email": email, "timestamp": 1764061200, "event": "open", "sg_event_id": f"sg-{tag}-mpp",
               "sg_machine_open": True, "asset_id": "hr-roi-case-study"}
    post(ingest_url, "/v1/sources/sendgrid", [machine], "dev-sendgrid-key")
    got = await opportunity_events_until(lambda e: tag in e.account.account_id,
                                         lambda kept: any(isinstance(e, AccountTouch) for e in kept))
    assert not any(isinstance(e, OpportunityCreated) for e in got)
    # The same person's real click, later: now the opportunity exists, without the machine's open.
    click = {"email": email, "timestamp": 1764064800, "event": "click", "sg_event_id": f"sg-{tag}-click",
             "url": "https://vendor.example/solutions/hr/roi-case-study"}
    post(ingest_url, "/v1/sources/sendgrid", [click], "dev-sendgrid-key")
    got = await opportunity_events_until(lambda e: tag in e.account.account_id,
                                         lambda kept: any(isinstance(e, TouchAttributed) for e in kept))
    attributed = [e.touch.event_id for e in got if isinstance(e, TouchAttributed)]
    assert attributed == [f"sendgrid:sg-{tag}-click"]
    [open_touch] = [e.touch for e in got if isinstance(e, AccountTouch)]
    assert open_touch.automated and open_touch.event_id == f"sendgrid:sg-{tag}-mpp"


async def test_a_touch_sent_again_after_ingest_lost_its_claims_is_attributed_once(worker, ingest_url):
    # The chaos bench's doubled batch: ingest's claims are gone (a Redis flush), so the retry is
    # written to the topic a second time, at a new offset; grouping must still count it once.
    tag = uuid.uuid4().hex[:8]
    email = f"elena@romashka{tag}.ru"

    def event(n: int) -> dict:
        return {"event_id": f"{tag}-{n}", "occurred_at": f"2026-11-25T09:0{n}:00Z", "source": "web",
                "kind": "download", "person": {"email": email, "job_title": "HR-менеджер"}, "content": {"url": HR}}

    assert post(ingest_url, "/v1/events", {"events": [event(1)]}, "dev-api-key")["accepted"] == 1
    assert post(ingest_url, "/v1/events", {"events": [event(1)]}, "dev-api-key")["accepted"] == 0  # ingest's dedupe
    # Only ingest's claims go: the privacy vault in the same Redis keeps the person's pseudonym
    # (a vault lost with them makes the copy another person's, docs/privacy.md).
    redis = Redis.from_url(os.environ["REDIS_URL"])
    try:
        claims = [key async for key in redis.scan_iter(match=f"bg:ingest:seen:{os.environ['BG_TOPIC_NAMESPACE']}*")]
        assert claims
        await redis.delete(*claims)
    finally:
        await redis.aclose()
    assert post(ingest_url, "/v1/events", {"events": [event(1)]}, "dev-api-key")["accepted"] == 1  # written again
    # A later touch of the same person (same key, so read after the copy) tells the copy was read.
    assert post(ingest_url, "/v1/events", {"events": [event(2)]}, "dev-api-key")["accepted"] == 1
    got = await opportunity_events_until(
        lambda e: tag in e.account.account_id,
        lambda kept: any(isinstance(e, TouchAttributed) and e.touch.event_id == f"{tag}-2" for e in kept),
        settle=3.0)
    attributed = [e.touch.event_id for e in got if isinstance(e, TouchAttributed)]
    assert attributed == [f"{tag}-1", f"{tag}-2"]
