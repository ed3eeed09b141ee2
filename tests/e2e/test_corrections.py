"""Corrections people make, through the real Kafka and PostgreSQL (issue 16): bg.correction.v1 and
touches -> grouping -> opportunity events -> scoring -> projection, read back through the read
API; then a rebuild from the log (a fresh grouping state from copies of the input topics, scored
and projected again into a new schema) shows the same group.

Person events and corrections are written straight to their topics (the corrections API writes
the same messages to bg.correction.v1)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx

from shared import topics
from shared.codec import dead_letters
from shared.schemas.correction import (
    CorrectionUndone,
    MemberLinked,
    MemberRoleSet,
    MemberStanceSet,
    MemberUnlinked,
)
from shared.schemas.touch import Content, Person, TouchEvent
from tests.e2e.conftest import Pipeline
from tests.e2e.replay import correct, rebuilt, send
from tests.e2e.test_pipeline import opportunity, wait_until
from tests.support.kafka import collect

HR = "https://vendor.example/solutions/hr/leave-automation"
START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


def touch(event_id: str, minute: int, email: str, job_title: str) -> TouchEvent:
    return TouchEvent(event_id=event_id, occurred_at=START + timedelta(minutes=minute), source="web",
                      kind="download", person=Person(email=email, job_title=job_title), content=Content(url=HR))


def group(api: httpx.Client, opportunity_id: str) -> dict[str, tuple[str, str]]:
    found = opportunity(api, opportunity_id)
    return {m["person_id"]: (m["role"], m["role_source"]) for m in found["members"]} if found else {}


async def test_corrections_hold_over_later_touches_undo_restores_and_a_rebuild_keeps_them(
        pipeline: Pipeline, topic_namespace: str):
    tag = uuid.uuid4().hex[:6]
    domain = f"romashka{tag}.ru"
    opp = f"{domain}:hr"
    elena, volkov, petrova, ivan = (f"{p}@{domain}" for p in ("elena", "volkov", "petrova", "ivan"))

    def fix(kind, n: int, minute: int, **fields):
        return kind(correction_id=f"{tag}-c{n}", author="Мария Соколова", made_at=START + timedelta(minutes=minute),
                    reason="проверено на звонке", **fields)

    await send(topic_namespace, touch(f"{tag}-1", 0, elena, "HR-менеджер"), touch(f"{tag}-2", 5, volkov, "IT-директор"),
               touch(f"{tag}-3", 10, petrova, "Бухгалтер"))
    with pipeline.api() as api:
        wait_until(lambda: len(group(api, opp)) == 3)
        await correct(topic_namespace,
                      fix(MemberLinked, 1, 20, opportunity_id=opp, person_id=ivan, role="decision_maker",
                          department="executive"),
                      fix(MemberUnlinked, 2, 21, opportunity_id=opp, person_id=volkov),
                      fix(MemberRoleSet, 3, 22, opportunity_id=opp, person_id=petrova, role="decision_maker"),
                      fix(MemberStanceSet, 4, 23, opportunity_id=opp, person_id=petrova, stance="champion",
                          influence="high"),
                      # Not an opportunity of the catalog: refused with the reason, nothing else stops.
                      fix(MemberLinked, 5, 24, opportunity_id=f"{domain}:no-such-solution", person_id=ivan))
        # Later touches: the unlinked person does not come back, the hand-set role holds over
        # a new job title, the person linked by hand stays.
        await send(topic_namespace, touch(f"{tag}-4", 30, volkov, "IT-директор"),
                   touch(f"{tag}-5", 31, petrova, "Главный бухгалтер"), touch(f"{tag}-6", 32, ivan, "Юрист"))
        expected = {elena: ("initiator", "title"), petrova: ("decision_maker", "manual"),
                    ivan: ("decision_maker", "manual")}
        wait_until(lambda: group(api, opp) == expected
                   and f"{tag}-6" in {t["touch_id"] for t in opportunity(api, opp)["timeline"]})
        found = opportunity(api, opp)
        assert f"{tag}-4" not in {t["touch_id"] for t in found["timeline"]}
        members = {m["person_id"]: m for m in found["members"]}
        assert members[ivan]["job_title"] == "Юрист"
        assert members[ivan]["why"]["role"]["correction_id"] == f"{tag}-c1"
        assert members[ivan]["why"]["role"]["author"] == "Мария Соколова"
        assert members[elena]["why"]["account"] == {"rule": "domain", "detail": domain, "correction_id": None,
                                                    "author": None}
        assert members[elena]["why"]["solution"]["detail"].startswith("url /solutions/hr/")
        # The champion weighs in the score, and the breakdown says who and how much.
        breakdown = wait_until(lambda: (b := opportunity(api, opp)["score_breakdown"]) and b["stance"] > 0 and b)
        assert breakdown["stance"] == 8
        assert {(m["person_id"], m["stance"], m["stance_points"]) for m in breakdown["members"]
                if m["stance"]} == {(petrova, "champion", 8)}

        # Undo: Волков is back (by the rules: he touched the solution), Петрова's role is what her
        # latest title gives (главный бухгалтер: head of finance).
        await correct(topic_namespace, fix(CorrectionUndone, 6, 40, undoes=f"{tag}-c2", subject=opp),
                      fix(CorrectionUndone, 7, 41, undoes=f"{tag}-c3", subject=opp))
        final = {**expected, volkov: ("technical_validator", "title"), petrova: ("budget_holder", "title")}
        wait_until(lambda: group(api, opp) == final)
        live_roles = {m["person_id"]: m["why"]["role"]["rule"] for m in opportunity(api, opp)["members"]}

    refused = await collect(topic_namespace + topics.CORRECTIONS_DLQ.base_name, until=lambda kept: kept,
                            decode=dead_letters.decode, where=lambda d: tag in d.payload and d.service == "grouping")
    assert [d.reason for d in refused] == ["unknown_opportunity"]

    # A rebuild from the log: a fresh grouping reads copies of both input topics from the start.
    async with rebuilt(pipeline, topic_namespace, (topics.PERSON_EVENTS, topics.CORRECTIONS), "rb") as api:
        wait_until(lambda: group(api, opp) == final, timeout=180)
        again = opportunity(api, opp)
        assert {m["person_id"]: m["why"]["role"]["rule"] for m in again["members"]} == live_roles
        wait_until(lambda: (b := opportunity(api, opp)["score_breakdown"]) and b["stance"] == 8)
