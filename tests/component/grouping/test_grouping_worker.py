"""The grouping worker through real Kafka: DOMAIN.md's stories and bad input.

One worker process runs for the module in the session's topic namespace; every test uses
its own ids and domains, so the tests do not see each other's data.
"""

from __future__ import annotations

import uuid

import orjson

from services.grouping.config import load
from shared import topics
from shared.codec import dead_letters, opportunity_events
from shared.schemas.opportunity import OpportunityCreated
from tests.component.grouping.conftest import OutputReader, send
from tests.support.kafka import collect, produce
from tests.unit.grouping.harness import OpportunityView, fold, identify, roles_of, romashka_story, touch


def of_account(domain: str):
    return lambda e: e.account.account_id == domain


def opportunity(events, opportunity_id: str) -> OpportunityView:
    return fold(events)[0].get(opportunity_id) or OpportunityView(opportunity_id, "", "")


async def read_until(domain: str, done, settle: float = 1.0) -> list:
    return await collect(topics.OPPORTUNITY_EVENTS.name, until=done, decode=opportunity_events.decode,
                         where=of_account(domain), timeout=60, settle=settle)


async def test_krasnaya_romashka_ends_as_one_opportunity_with_four_roles(worker) -> None:
    domain = f"romashka-{uuid.uuid4().hex[:8]}.ru"
    await send(romashka_story(domain, domain))
    events = await read_until(domain, lambda kept: len(opportunity(kept, f"{domain}:hr").touches) == 7, settle=2)
    views, account_touches = fold(events)
    assert list(views) == [f"{domain}:hr"]
    [created] = [e for e in events if isinstance(e, OpportunityCreated)]
    assert created.origin == "auto"
    # Whoever comes first creates it; the company name (given by Елена) is on the events after hers.
    assert max(events, key=lambda e: e.version).account.name == "Красная ромашка"
    assert roles_of(views[f"{domain}:hr"]) == {
        f"elena.sokolova@{domain}": ("hr", "initiator"),
        f"s.volkov@it.{domain}": ("it", "technical_validator"),
        f"o.petrova@hr.{domain}": ("finance", "budget_holder"),
        f"i.mikhailov@{domain}": ("executive", "decision_maker"),
    }
    assert account_touches == {}


async def test_a_free_mail_person_is_matched_by_company_name(worker) -> None:
    tag = uuid.uuid4().hex[:8]
    domain, company, freemail = f"lilia-{tag}.ru", f"Синяя лилия {tag}", f"lilia.cfo.{tag}@mail.ru"
    opp = f"{domain}:hr"
    async with OutputReader() as out:
        await send([touch(f"{tag}-1", 0, email=f"hr@{domain}", job_title="HR Director", company=f"АО «{company}»",
                          url="https://vendor.example/solutions/hr/")])
        # The directory learns the name as the corporate person is grouped; the free-mail
        # person comes after, as a colleague would (a name seen first makes its own account).
        await out.wait(lambda events: opportunity(events, opp).members, what="the corporate person's opportunity")
        await send([touch(f"{tag}-2", 10, "download", email=freemail, job_title="CFO",
                          company=f"ооо «{company.upper()}»", asset_id="hr-roi-case-study")])
        await out.wait(lambda events: freemail in opportunity(events, opp).members, what="the free-mail person")
        view = opportunity(out.events, opp)
    assert roles_of(view) == {f"hr@{domain}": ("hr", "initiator"), freemail: ("finance", "budget_holder")}
    assert view.touches == {f"{tag}-1", f"{tag}-2"}


async def test_a_latin_spelling_joins_the_cyrillic_name_and_a_numbered_sibling_stays_apart(worker) -> None:
    # Issue 15: "OOO Skvorechnik Tekhnologii" is ООО «Скворечник Технологии»; "-2" is another company.
    # A sales manager reading about HR systems influences that purchase; HR initiates it.
    tag = uuid.uuid4().hex[:8]
    domain, opp = f"skvorechnik-{tag}.ru", f"skvorechnik-{tag}.ru:hr"
    latin, sibling = f"latin.{tag}@yandex.ru", f"sibling.{tag}@mail.ru"
    async with OutputReader() as out:
        await send([touch(f"{tag}-1", 0, email=f"hr@{domain}", job_title="HR-менеджер",
                          company=f"ООО «Скворечник Технологии {tag}»", url="https://vendor.example/solutions/hr/")])
        await out.wait(lambda events: opportunity(events, opp).members, what="the corporate person's opportunity")
        await send([
            touch(f"{tag}-2", 10, email=latin, job_title="Sales Manager", company=f"OOO Skvorechnik Tekhnologii {tag}",
                  url="https://vendor.example/solutions/hr/"),
            touch(f"{tag}-3", 11, email=sibling, job_title="Финансовый директор",
                  company=f"АО «Скворечник Технологии {tag}-2»", url="https://vendor.example/solutions/hr/"),
        ])
        await out.wait(lambda events: latin in opportunity(events, opp).members, what="the Latin spelling")
        sibling_name = load({}).people.accounts.names.normalise(f"Скворечник Технологии {tag}-2")
        sibling_opp = f"name:{sibling_name}:hr"
        await out.wait(lambda events: sibling in opportunity(events, sibling_opp).members, what="the sibling")
        view = opportunity(out.events, opp)
    assert roles_of(view) == {f"hr@{domain}": ("hr", "initiator"), latin: ("sales", "influencer")}


async def test_anonymous_visits_are_attributed_after_identification(worker) -> None:
    tag = uuid.uuid4().hex[:8]
    domain, cookie = f"sklad-{tag}.ru", f"cookie-{tag}"
    await send([touch(f"{tag}-v{i}", i, anonymous_id=cookie, url=f"https://vendor.example/solutions/wms/p{i}")
                for i in range(3)])
    await send([identify(f"{tag}-id", 10, anonymous_id=cookie, email=f"logist@{domain}",
                         job_title="Начальник склада")])
    events = await read_until(domain, lambda kept: len(opportunity(kept, f"{domain}:wms").touches) == 3)
    view = opportunity(events, f"{domain}:wms")
    assert view.touches == {f"{tag}-v0", f"{tag}-v1", f"{tag}-v2"}
    assert roles_of(view) == {f"logist@{domain}": ("operations", "initiator")}


async def test_unusable_events_go_to_the_dead_letter_topic_with_the_reason(worker) -> None:
    tag = uuid.uuid4().hex[:8]
    valid = orjson.loads(touch("x", 0, email="a@b.ru").model_dump_json())
    nobody = {**valid, "event_id": f"{tag}-nobody", "person": {"name": "Иван"}}
    bad_kind = {**valid, "event_id": f"{tag}-kind", "kind": "teleported"}
    await produce(topics.PERSON_EVENTS.name, [
        (f"{tag}-json", b"{not json"),
        (f"{tag}-nobody", orjson.dumps(nobody)),
        (f"{tag}-kind", orjson.dumps(bad_kind)),
    ])
    letters = await collect(topics.GROUPING_DLQ.name, until=lambda kept: len(kept) == 3,
                            decode=dead_letters.decode, where=lambda d: (d.key or "").startswith(tag), timeout=60)
    reasons = {d.key.removeprefix(f"{tag}-"): (d.reason, d.detail) for d in letters}
    assert reasons["json"][0] == "invalid_json"
    assert reasons["nobody"][0] == "no_identifier" and "email, user_id, anonymous_id" in reasons["nobody"][1]
    assert reasons["kind"][0] == "invalid_schema" and "kind" in reasons["kind"][1]
    assert all(d.service == "grouping" and d.source_topic == topics.PERSON_EVENTS.name for d in letters)
    assert worker.proc.poll() is None  # bad input does not stop the worker
    # ...and the record after them is processed: a person of an internationalised domain (an
    # id that no header, key or file name may choke on).
    domain = f"ласточка-{tag}.рф"
    await send([touch(f"{tag}-idn", 1, email=f"анна@{domain}", job_title="HR-директор",
                      url="https://vendor.example/solutions/hr/")])
    events = await read_until(domain, lambda kept: opportunity(kept, f"{domain}:hr").members, settle=0)
    assert f"анна@{domain}" in opportunity(events, f"{domain}:hr").members
