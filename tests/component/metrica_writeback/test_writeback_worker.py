"""The write-back worker against the real Kafka and Redis and the loopback Metrica: a formed group's
and a won deal's members' ClientIDs uploaded once; refusals and bad messages dead-lettered."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

from services.importers.loopback import Loopback, Served, create_app
from services.metrica_writeback.worker import WritebackSettings, run
from shared import topics
from shared.codec import dead_letters, encode
from shared.schemas.crm import StageChanged
from shared.schemas.scoring import MemberContribution, Signal
from shared.schemas.touch import TouchEvent
from tests.support.kafka import collect, drained, produce

AT = datetime(2026, 10, 9, 12, 0, tzinfo=UTC)


def touch(n: str, **person) -> TouchEvent:
    return TouchEvent(event_id=f"wb-{n}", occurred_at=AT, source="form", kind="form_submitted", person=person)


def member(pid: str) -> MemberContribution:
    return MemberContribution(person_id=pid, department="hr", role="initiator", engagement=1.0, touches=1)


async def wait_for(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        await asyncio.sleep(0.2)
    raise AssertionError(f"not reached in {timeout}s")


async def test_members_clientids_uploaded_once_and_refusals_dead_lettered(topic_namespace):
    tag = uuid.uuid4().hex[:8]
    elena, sergey, olga = (f"e.sokolova@romashka{tag}.ru", f"s.volkov@romashka{tag}.ru",
                           f"o.petrova@romashka{tag}.ru")
    phone = f"tel:+7916{int(tag[:6], 16) % 10**7:07d}"
    opp = f"romashka{tag}.ru:hr"
    await produce(topics.PERSON_EVENTS.name, [(f"k{i}", encode(e)) for i, e in enumerate([
        touch(f"{tag}-1", email=elena, anonymous_id="ym:1727770000000000001"),  # Tilda form with _ym_uid
        touch(f"{tag}-2", email=sergey, user_id=phone),  # webinar registration with a phone
        touch(f"{tag}-3", user_id=phone, anonymous_id="ym:1727770000000000002"),  # call with yaClientId
    ])])
    formed = Signal(signal_id=f"{opp}:group_formed:1", signal="group_formed", opportunity_id=opp,
                    account_id=f"romashka{tag}.ru", solution="hr", occurred_at=AT, score=70.0, tier="A",
                    members=(member(elena), member(sergey), member(olga)))
    won = StageChanged(event_id=f"crm-{tag}", opportunity_id=opp, account_id=f"romashka{tag}.ru", solution="hr",
                       stage="contract", outcome="won", amount=1200000, currency="RUB", changed_at=AT)
    await produce(topics.SIGNALS.name, [(opp, encode(formed)), (opp, b"not a signal")])
    await produce(topics.CRM_STAGES.name, [(opp, encode(won))])

    def rows(loopback: Loopback) -> list[tuple[str, str]]:
        return [(r["Target"], r["ClientId"]) for u in loopback.uploads for r in u["rows"]]

    first = {(goal, client) for goal in ("bg_group_formed", "bg_opportunity_won")
             for client in ("1727770000000000001", "1727770000000000002")}
    async def handled() -> None:
        """The worker has committed every input written so far; it commits a batch only after its
        uploads were answered, so all they make is uploaded (no sleeping to see if more comes)."""
        for topic in (topics.PERSON_EVENTS, topics.SIGNALS, topics.CRM_STAGES, topics.QUALIFICATION):
            await drained(f"{topic_namespace}bg-metrica-writeback", topic.name)

    state = Loopback()
    with Served(create_app(state)) as url:
        settings = WritebackSettings(api_url=url, token=state.metrica_token, counter_id=state.counter_id,
                                     retry_base_seconds=0)
        stop = asyncio.Event()
        task = asyncio.create_task(run(settings, stop))
        try:
            # However the topics interleave, every member ClientID gets both goals, in one upload or more.
            await wait_for(lambda: set(rows(state)) >= first)
            await handled()  # and whatever else those inputs make (an upload twice, say) is done
        finally:
            stop.set()
            await task
        # A restart uploads nothing again (the final check counts each row once); Ольга's
        # ClientID, learnt after both goals, gets both then.
        stop = asyncio.Event()
        task = asyncio.create_task(run(settings, stop))
        await produce(topics.PERSON_EVENTS.name, [("k", encode(touch(f"{tag}-5", email=olga,
                                                                     anonymous_id="ym:1727770000000000009")))])
        try:
            await wait_for(lambda: len(rows(state)) >= 6)
            await handled()
        finally:
            stop.set()
            await task
    late = {("bg_group_formed", "1727770000000000009"), ("bg_opportunity_won", "1727770000000000009")}
    assert sorted(rows(state)) == sorted(first | late)  # each once
    won = [r for u in state.uploads for r in u["rows"] if r["Target"] == "bg_opportunity_won"]
    assert {r["Price"] for r in won} == {"1200000"} and {u["client_id_type"] for u in state.uploads} == {"CLIENT_ID"}
    [bad] = await collect(topics.METRICA_WRITEBACK_DLQ.name, until=lambda kept: len(kept) >= 1,
                          decode=dead_letters.decode, where=lambda d: d.payload == "not a signal", timeout=20)
    assert bad.reason == "invalid_message" and bad.source_topic == topics.SIGNALS.name

    # Metrica refuses (a wrong token): the conversions are dead-lettered with its answer, and the worker goes on.
    refused_opp = f"refused{tag}.ru:hr"
    refusing = Loopback(metrica_token="another-token")
    await produce(topics.PERSON_EVENTS.name, [("k", encode(touch(f"{tag}-4", email=f"x@refused{tag}.ru",
                                                                     anonymous_id="ym:1727770000000000003")))])
    await produce(topics.SIGNALS.name, [(refused_opp, encode(formed.model_copy(update={
        "signal_id": f"{refused_opp}:group_formed:1", "opportunity_id": refused_opp,
        "members": (member(f"x@refused{tag}.ru"),)})))])
    with Served(create_app(refusing)) as url:
        settings = WritebackSettings(api_url=url, token="loopback-metrica-token", counter_id=refusing.counter_id,
                                     retry_base_seconds=0)
        stop = asyncio.Event()
        task = asyncio.create_task(run(settings, stop))
        try:
            [letter] = await collect(topics.METRICA_WRITEBACK_DLQ.name, until=lambda kept: len(kept) >= 1,
                                     decode=dead_letters.decode, where=lambda d: "1727770000000000003" in d.payload,
                                     timeout=30)
        finally:
            stop.set()
            await task
    assert letter.reason == "upload_refused" and "403" in letter.detail
    assert letter.payload.startswith("ClientId,Target,DateTime")
    assert refusing.uploads == []
