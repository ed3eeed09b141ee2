"""INN as an account key through Kafka and the grouping worker: two people of one company known
by name only, written two ways with one INN, are one opportunity; two companies of one name
with different INNs are two."""

from __future__ import annotations

import random
import uuid

from stdnum.ru import inn as stdnum_inn

from shared.schemas.touch import Content, Person, TouchEvent
from tests.component.grouping.conftest import OutputReader, send
from tests.unit.grouping.harness import OpportunityView, at, fold

HR = "https://vendor.example/solutions/hr/leave-automation"


def fresh_inn() -> str:
    """A checksum-valid 10-digit INN of this run (stdnum's check digit over random digits)."""
    body = f"77{random.randrange(10**7):07d}"
    return body + stdnum_inn.calc_company_check_digit(body)


def form(event_id: str, minute: float, email: str, company: str, inn: str, title: str) -> TouchEvent:
    return TouchEvent(event_id=event_id, occurred_at=at(minute), source="form", kind="download",
                      person=Person(email=email, company=company, inn=inn, job_title=title),
                      content=Content(url=HR, asset_id="hr-brochure"))


def opportunity(events, opportunity_id: str) -> OpportunityView:
    return fold(events)[0].get(opportunity_id) or OpportunityView(opportunity_id, "", "")


async def test_one_inn_is_one_account_and_same_named_companies_stay_apart(worker) -> None:
    tag = uuid.uuid4().hex[:8]
    one, other = fresh_inn(), fresh_inn()
    ivan, olga = f"ivan{tag}@gmail.com", f"olga.{tag}@mail.ru"
    petr, anna = f"petr.{tag}@yandex.ru", f"anna.{tag}@yandex.ru"
    async with OutputReader() as out:
        await send([
            form(f"{tag}-1", 0, ivan, f"Красная ромашка {tag}", one, "HR-директор"),
            form(f"{tag}-2", 1, olga, f"КР Софт Групп {tag}", one, "Финансовый директор"),  # another spelling
            form(f"{tag}-3", 2, petr, f"Лютик {tag}", other, "HR-менеджер"),
            form(f"{tag}-4", 3, anna, f"ООО «Лютик {tag}»", fresh_inn(), "IT-директор"),  # same name, other INN
        ])
        await out.wait(lambda e: {ivan, olga} <= set(opportunity(e, f"inn:{one}:hr").members)
                       and petr in opportunity(e, f"inn:{other}:hr").members
                       and any(anna in v.members for k, v in fold(e)[0].items() if k.startswith("inn:")),
                       what="the INN accounts' opportunities")
        views = fold(out.events)[0]
    assert set(views[f"inn:{one}:hr"].members) == {ivan, olga}
    assert set(views[f"inn:{other}:hr"].members) == {petr}
    [annas] = [k for k, v in views.items() if anna in v.members]
    assert annas not in (f"inn:{other}:hr", f"inn:{one}:hr")
