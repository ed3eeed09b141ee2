"""Account merges through the real Kafka and PostgreSQL: grouping, scoring and projection each in
its own process, read back through the read API (issues 15 and 16).

Person events and corrections are written straight to their topics (the corrections API writes
the same messages to bg.correction.v1)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx

from shared import topics
from shared.schemas.correction import AccountsMerged, CorrectionUndone
from shared.schemas.touch import Content, Person, TouchEvent
from tests.e2e.conftest import Pipeline
from tests.e2e.replay import correct, rebuilt, send
from tests.e2e.test_pipeline import opportunity, wait_until

HR = "https://vendor.example/solutions/hr/leave-automation"
START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


def touch(event_id: str, minute: int, email: str, *, job_title: str | None = None, company: str | None = None,
          url: str = HR) -> TouchEvent:
    return TouchEvent(event_id=event_id, occurred_at=START + timedelta(minutes=minute), source="web",
                      kind="page_view", person=Person(email=email, job_title=job_title, company=company),
                      content=Content(url=url))


def members(api: httpx.Client, opportunity_id: str) -> set[str]:
    found = opportunity(api, opportunity_id)
    return {m["person_id"] for m in found["members"]} if found else set()


async def test_a_merged_account_shows_one_opportunity_with_both_groups_members_and_undo_restores_it(
        pipeline: Pipeline, topic_namespace: str):
    tag = uuid.uuid4().hex[:6]
    first, second = f"romashka{tag}.ru", f"krasnaya{tag}.ru"
    await send(topic_namespace,
               touch(f"{tag}-a1", 0, f"elena@{first}", job_title="HR-менеджер"),
               touch(f"{tag}-a2", 5, f"volkov@{first}", job_title="IT-директор"),
               touch(f"{tag}-b1", 10, f"petrova@{second}", job_title="финансовый директор"))
    with pipeline.api() as api:
        wait_until(lambda: len(members(api, f"{first}:hr")) == 2 and members(api, f"{second}:hr"))
        identified = api.get("/v1/metrics").json()["opportunities_identified"]
        await correct(topic_namespace, AccountsMerged(
            correction_id=f"{tag}-merge", author="Мария", made_at=START + timedelta(minutes=20),
            reason="одна компания", into=first, merged=second))
        both = {f"elena@{first}", f"volkov@{first}", f"petrova@{second}"}
        merged = wait_until(lambda: (o := opportunity(api, f"{first}:hr")) and
                            {m["person_id"] for m in o["members"]} == both and o)
        assert merged["merged_from"] == [f"{second}:hr"]
        assert f"{tag}-b1" in {t["touch_id"] for t in merged["timeline"]}  # the absorbed group's touches too
        absorbed = wait_until(lambda: (o := opportunity(api, f"{second}:hr")) and o["merged_into"] and o)
        assert absorbed["merged_into"] == f"{first}:hr"
        assert api.get("/v1/metrics").json()["opportunities_identified"] == identified - 1  # counted as one
        # The pages say it too: where the absorbed group went, and what the surviving one took in.
        page = api.get(f"/web/opportunities/{second}:hr", params={"lang": "en"}).text
        assert f'data-merged-into="{first}:hr"' in page and "was merged into another" in page
        assert f'data-merged-from="{second}:hr"' in api.get(f"/web/opportunities/{first}:hr").text
        # ONE opportunity per solution for the company in the list.
        listed = api.get("/v1/opportunities", params={"solution": "hr", "limit": 200}).json()["items"]
        assert [o["opportunity_id"] for o in listed if tag in o["opportunity_id"]] == [f"{first}:hr"]

        # A later touch to the absorbed domain lands in the surviving account.
        await send(topic_namespace, touch(f"{tag}-b2", 30, f"newcomer@{second}", job_title="Юрист"))
        wait_until(lambda: f"newcomer@{second}" in members(api, f"{first}:hr"))
        # Attributed to the surviving opportunity and to the absorbed one's hidden view: shown and counted once.
        everything = sorted(f"{tag}-{t}" for t in ("a1", "a2", "b1", "b2"))
        one = wait_until(lambda: (o := opportunity(api, f"{first}:hr")) and o["touches_count"] == 4 and o)
        assert sorted(t["touch_id"] for t in one["timeline"]) == everything

        await correct(topic_namespace, CorrectionUndone(
            correction_id=f"{tag}-undo", author="Мария", made_at=START + timedelta(minutes=40),
            undoes=f"{tag}-merge", subject=first))
        # Each domain's people are its own again, the newcomer who came during the merge included.
        wait_until(lambda: members(api, f"{first}:hr") == {f"elena@{first}", f"volkov@{first}"})
        restored = wait_until(lambda: (o := opportunity(api, f"{second}:hr")) and o["merged_into"] is None and o)
        assert {m["person_id"] for m in restored["members"]} == {f"petrova@{second}", f"newcomer@{second}"}
        assert opportunity(api, f"{first}:hr")["merged_from"] == []
        assert api.get("/v1/metrics").json()["opportunities_identified"] == identified
        listed = api.get("/v1/opportunities", params={"solution": "hr", "limit": 200}).json()["items"]
        assert sorted(o["opportunity_id"] for o in listed if tag in o["opportunity_id"]) == sorted(
            [f"{first}:hr", f"{second}:hr"])


async def test_a_free_mail_person_then_a_corporate_colleague_make_one_account(
        pipeline: Pipeline, topic_namespace: str):
    tag = uuid.uuid4().hex[:6]
    domain = f"skvorechnik{tag}.ru"
    await send(topic_namespace, touch(f"{tag}-f1", 0, f"elena.{tag}@gmail.com", job_title="HR-менеджер",
                                                company="OOO Skvorechnik Tekhnologii"))
    name_opp = "name:skvorechnik tekhnologii:hr"
    with pipeline.api() as api:
        wait_until(lambda: members(api, name_opp) == {f"elena{tag}@gmail.com"})
        await send(topic_namespace, touch(f"{tag}-c1", 30, f"volkov@{domain}", job_title="IT-директор",
                                                    company="ООО «Скворечник Технологии»"))
        wait_until(lambda: members(api, f"{domain}:hr") == {f"elena{tag}@gmail.com", f"volkov@{domain}"})
        absorbed = wait_until(lambda: (o := opportunity(api, name_opp)) and o["merged_into"] and o)
        assert absorbed["merged_into"] == f"{domain}:hr"
        one = opportunity(api, f"{domain}:hr")
        assert {t["touch_id"] for t in one["timeline"]} == {f"{tag}-f1", f"{tag}-c1"}
        # The free-mail person's next touch goes to the domain account directly.
        await send(topic_namespace, touch(f"{tag}-f2", 60, f"elena.{tag}@gmail.com"))
        wait_until(lambda: f"{tag}-f2" in {t["touch_id"] for t in opportunity(api, f"{domain}:hr")["timeline"]})


async def test_merge_and_undo_through_the_corrections_api_with_conflicts_refused(
        pipeline: Pipeline, topic_namespace: str):
    tag = uuid.uuid4().hex[:6]
    first, second = f"lastochka{tag}.ru", f"lastochka-group{tag}.ru"
    await send(topic_namespace, touch(f"{tag}-a1", 0, f"hr@{first}", job_title="HR-менеджер"),
               touch(f"{tag}-b1", 5, f"cfo@{second}", job_title="финансовый директор"))
    writer = {"Authorization": "Bearer dev-correction-token"}
    with pipeline.api() as api:
        wait_until(lambda: members(api, f"{first}:hr") and members(api, f"{second}:hr"))
        itself = api.post("/v1/accounts/merges", headers=writer, json={"into": first, "merged": first})
        assert itself.status_code == 409 and itself.json()["errors"][0]["field"] == "body.merged"
        accepted = api.post("/v1/accounts/merges", headers=writer,
                            json={"into": first, "merged": second, "reason": "одна компания"})
        assert accepted.status_code == 202, accepted.text
        merge_id = accepted.json()["correction_id"]
        wait_until(lambda: members(api, f"{first}:hr") == {f"hr@{first}", f"cfo@{second}"})
        # The reverse would make a cycle: refused before it reaches the log.
        cycle = wait_until(lambda: (r := api.post("/v1/accounts/merges", headers=writer,
                                                  json={"into": second, "merged": first})).status_code == 409 and r)
        assert cycle.json()["error"] == "conflict" and "cycle" in cycle.json()["message"]
        # The undo names the merge once the history holds it (409 "retry shortly" before).
        wait_until(lambda: api.post(f"/v1/corrections/{merge_id}/undo", headers=writer, json={}).status_code == 202)
        wait_until(lambda: members(api, f"{first}:hr") == {f"hr@{first}"}
                   and (o := opportunity(api, f"{second}:hr")) and o["merged_into"] is None
                   and {m["person_id"] for m in o["members"]} == {f"cfo@{second}"})


def view(api: httpx.Client, *opportunity_ids: str) -> dict[str, tuple[set[str], str | None]]:
    found = {oid: opportunity(api, oid) for oid in opportunity_ids}
    return {oid: ({m["person_id"] for m in o["members"]}, o["merged_into"]) for oid, o in found.items() if o}


async def test_a_rebuild_from_the_log_gives_the_same_merges_and_undos(pipeline: Pipeline, topic_namespace: str):
    """A fresh grouping, scoring and projection read copies of the input topics from the start: the
    corrections come in another interleaving with the touches than live (here all of them before)."""
    tag = uuid.uuid4().hex[:6]
    kept, undone_ = (f"sokol{tag}.ru", f"sokol-it{tag}.ru"), (f"sova{tag}.ru", f"sova-group{tag}.ru")
    for n, (into, absorbed) in enumerate((kept, undone_)):
        await send(topic_namespace, touch(f"{tag}-{n}a", 0, f"hr@{into}", job_title="HR-менеджер"),
                   touch(f"{tag}-{n}b", 5, f"cfo@{absorbed}", job_title="финансовый директор"))
    ids = [f"{a}:hr" for pair in (kept, undone_) for a in pair]
    with pipeline.api() as api:
        wait_until(lambda: len(view(api, *ids)) == 4)
        for n, (into, absorbed) in enumerate((kept, undone_)):
            await correct(topic_namespace, AccountsMerged(correction_id=f"{tag}-m{n}", author="Мария",
                                                          made_at=START + timedelta(minutes=10), into=into,
                                                          merged=absorbed))
        wait_until(lambda: all(o[1] for oid, o in view(api, *ids).items() if oid.startswith(("sokol-it", "sova-g"))))
        await send(topic_namespace, *[touch(f"{tag}-{n}c", 20, f"lawyer@{absorbed}", job_title="Юрист")
                                      for n, (_, absorbed) in enumerate((kept, undone_))])
        await correct(topic_namespace, CorrectionUndone(correction_id=f"{tag}-u", author="Мария",
                                                        made_at=START + timedelta(minutes=30), undoes=f"{tag}-m1",
                                                        subject=undone_[0]))
        expected = {
            f"{kept[0]}:hr": ({f"hr@{kept[0]}", f"cfo@{kept[1]}", f"lawyer@{kept[1]}"}, None),
            f"{kept[1]}:hr": ({f"cfo@{kept[1]}", f"lawyer@{kept[1]}"}, f"{kept[0]}:hr"),
            f"{undone_[0]}:hr": ({f"hr@{undone_[0]}"}, None),
            f"{undone_[1]}:hr": ({f"cfo@{undone_[1]}", f"lawyer@{undone_[1]}"}, None),
        }
        wait_until(lambda: view(api, *ids) == expected)

    # Corrections first: the harder interleaving (every merge read before the touches it moves).
    async with rebuilt(pipeline, topic_namespace, (topics.CORRECTIONS, topics.PERSON_EVENTS), "mrb") as api:
        wait_until(lambda: view(api, *ids) == expected, timeout=180)
