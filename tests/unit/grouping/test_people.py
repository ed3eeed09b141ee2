"""The people stage: profiles, account resolution, member cards, held touches."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from services.grouping.domain import people
from services.grouping.domain.messages import (
    AccountActivity,
    AccountAssigned,
    MemberUpdate,
    NameLookup,
    NameRegistration,
)
from shared.schemas.opportunity import AccountRef
from shared.schemas.roles import BuyingRole, Department, Level, RoleSource
from tests.unit.grouping.harness import at, identify, touch


def run(config, pid, *messages):
    profile, outputs = None, []
    for message in messages:
        profile, out = people.step(profile, pid, message, config.people)
        outputs += out
    return profile, outputs


def test_a_corporate_touch_leaves_for_its_account_tagged_and_carded(config) -> None:
    profile, outputs = run(config, "elena@romashka.ru", touch(
        "t1", 0, email="elena@hr.romashka.ru", name="Елена", job_title="HR-менеджер", company="ООО «Красная ромашка»",
        url="https://vendor.example/solutions/hr/"))
    activity = next(o for o in outputs if o.to == "accounts")
    assert activity.key == "romashka.ru"
    msg = activity.message
    assert isinstance(msg, AccountActivity) and msg.solutions == ("hr",) and msg.input_id == "t1"
    # The card carries department and level; the role is the default profile's until an
    # opportunity of a solution applies its own (HR initiates an HR system: test_opportunities).
    assert (msg.member.department, msg.member.level, msg.member.role, msg.member.role_source) == (
        Department.hr, Level.staff, BuyingRole.influencer, RoleSource.title)
    assert msg.member.person_id == "elena@romashka.ru" and msg.account.name == "ООО «Красная ромашка»"
    [registration] = [o.message for o in outputs if o.to == "names"]
    assert registration == NameRegistration(occurred_at=at(0), name="красная ромашка", account=msg.account)
    _, again = people.step(profile, "elena@romashka.ru", touch("t2", 5, email="elena@hr.romashka.ru",
                                                               company="Красная ромашка"), config.people)
    assert [o.to for o in again] == ["accounts"]  # the name is registered once


def test_a_free_mail_person_waits_for_the_directory_then_everything_flows(config) -> None:
    pid = "petr@gmail.com"
    profile, outputs = run(config, pid,
                           touch("t1", 0, email=pid, url="/solutions/wms/"),
                           identify("i1", 1, email=pid, job_title="Начальник склада", company="ООО Ромашка Логистик"))
    [lookup] = [o.message for o in outputs]
    assert isinstance(lookup, NameLookup) and lookup.name == "ромашка логистик"
    assert [t.event_id for t in profile.held] == ["t1"]
    account = AccountRef(account_id="romashka.ru", domains=("romashka.ru",))
    answer = AccountAssigned(lookup_id=lookup.lookup_id, occurred_at=at(2), person_id=pid, name=lookup.name,
                             account=account)
    profile, released = people.step(profile, pid, answer, config.people)
    [activity] = [o.message for o in released]
    assert isinstance(activity, AccountActivity) and activity.account == account
    assert (activity.member.department, activity.member.level) == (Department.operations, Level.head)
    assert profile.held == [] and profile.account == account
    _, again = people.step(profile, pid, answer, config.people)
    assert again == []  # a repeated answer changes nothing: the account is known


def test_free_mail_without_a_company_stays_unmatched_until_a_later_event_tells(config) -> None:
    pid = "anna@yandex.ru"
    profile, outputs = run(config, pid, touch("t1", 0, email=pid, url="/solutions/crm/"))
    assert outputs == [] and profile.account is None and len(profile.held) == 1
    profile, outputs = people.step(profile, pid, identify("i1", 5, email=pid, company_domain="romashka.ru"),
                                   config.people)
    assert [o.message.input_id for o in outputs if o.to == "accounts"] == ["t1"]


def test_traits_follow_event_time_not_arrival_order(config) -> None:
    pid = "o@romashka.ru"
    newer = identify("i2", 10, email=pid, job_title="Финансовый директор")
    older = identify("i1", 5, email=pid, job_title="Бухгалтер")
    for order in ((older, newer), (newer, older)):
        profile, _ = run(config, pid, *order)
        assert profile.job_title.value == "Финансовый директор"


def test_a_changed_card_without_a_touch_is_a_member_update(config) -> None:
    pid = "s@romashka.ru"
    profile, _ = run(config, pid, touch("t1", 0, email=pid, url="/solutions/hr/integrations/api"))
    assert profile.last_member.role_source is RoleSource.behaviour
    profile, outputs = people.step(profile, pid, identify("i1", 5, email=pid, job_title="CIO"), config.people)
    [update] = [o.message for o in outputs if o.to == "accounts"]
    assert isinstance(update, MemberUpdate) and update.member.role_source is RoleSource.title
    _, nothing = people.step(profile, pid, identify("i2", 6, email=pid, job_title="CIO"), config.people)
    assert [o for o in nothing if o.to == "accounts"] == []


def test_a_touch_sent_twice_counts_once_whatever_came_between(config) -> None:
    # Ingest let a batch through twice (its claim lost to a Redis flush): the copy arrives at a
    # new input offset, so the stamps let it in; the profile knows its event id.
    pid = "elena@romashka.ru"
    first = touch("t1", 0, email=pid, company="Красная ромашка", url="https://vendor.example/solutions/hr/")
    profile, outputs = run(config, pid, first, touch("t2", 3, email=pid, url="/solutions/hr/"))
    assert [o.message.input_id for o in outputs if o.to == "accounts"] == ["t1", "t2"]
    signals = dict(profile.signals)
    again, out = people.step(profile, pid, first.model_copy(), config.people)
    assert out == [] and again.signals == signals
    # A new touch still flows, and its own copy is caught in turn.
    profile, out = people.step(again, pid, touch("t3", 4, email=pid, url="/solutions/hr/"), config.people)
    assert [o.message.input_id for o in out] == ["t3"]
    assert people.step(profile, pid, touch("t3", 4, email=pid, url="/solutions/hr/"), config.people)[1] == []


def test_a_copy_of_a_held_touch_is_not_held_twice(config) -> None:
    pid = "anna@yandex.ru"
    held = touch("t1", 0, email=pid, url="/solutions/crm/")
    profile, outputs = run(config, pid, held, held.model_copy())
    assert outputs == [] and [t.event_id for t in profile.held] == ["t1"]
    _, outputs = people.step(profile, pid, identify("i1", 5, email=pid, company_domain="romashka.ru"), config.people)
    assert [o.message.input_id for o in outputs if o.to == "accounts"] == ["t1"]


def test_touch_ids_are_forgotten_by_event_time_and_by_count(config) -> None:
    limits = people.PeopleLimits(dedupe_window=timedelta(minutes=60), max_remembered=3)
    rules = replace(config.people, limits=limits)
    pid = "o@romashka.ru"
    profile = None
    for i, minute in enumerate((0, 10, 20)):
        profile, _ = people.step(profile, pid, touch(f"t{i}", minute, email=pid), rules)
    assert sorted(profile.recent.values()) == [int(at(m).timestamp()) for m in (0, 10, 20)]
    # A fourth touch pushes out the oldest (count); one 70 minutes later expires those more
    # than the window behind it (event time), whatever the wall clock.
    profile, _ = people.step(profile, pid, touch("t3", 30, email=pid), rules)
    assert people.touch_digest("t0") not in profile.recent and len(profile.recent) == 3
    profile, _ = people.step(profile, pid, touch("t4", 80, email=pid), rules)
    assert sorted(profile.recent.values()) == [int(at(m).timestamp()) for m in (20, 30, 80)]
    # A copy of a forgotten touch counts again (it cannot be told from a late new one); a copy
    # of a remembered one does not. The same input gives the same answers on every replay.
    assert people.step(profile.model_copy(deep=True), pid, touch("t0", 0, email=pid), rules)[1] != []
    assert people.step(profile.model_copy(deep=True), pid, touch("t2", 20, email=pid), rules)[1] == []


def test_the_remembered_ids_survive_the_tables_codec(config) -> None:
    from shared.codec import Codec, encode

    pid = "elena@romashka.ru"
    first = touch("t1", 0, email=pid, company="Красная ромашка", url="/solutions/hr/")
    profile, _ = run(config, pid, first)
    restored = Codec(people.Profile).decode(encode(profile))  # a restart reads the changelog
    assert people.step(restored, pid, first, config.people)[1] == []
