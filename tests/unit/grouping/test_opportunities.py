"""The opportunity reducer: creation, members, roles, attribution, pre-creation, idempotence."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from services.grouping.domain import opportunities
from services.grouping.domain.messages import AccountActivity, MemberUpdate, Precreate
from services.grouping.domain.opportunities import CreationRule, GroupProfile, PrecreatedAccount
from services.grouping.domain.roles import RoleMap
from shared.schemas.opportunity import (
    AccountRef,
    AccountTouch,
    MemberAdded,
    MemberRef,
    MemberRoleChanged,
    OpportunityCreated,
    TouchAttributed,
    TouchRef,
)
from shared.schemas.roles import BuyingRole, Department, RoleSource
from tests.unit.grouping.harness import at

ACCOUNT = AccountRef(account_id="romashka.ru", name="Красная ромашка", domains=("romashka.ru",))


def card(pid: str, department=Department.other, role=BuyingRole.influencer, source=RoleSource.default) -> MemberRef:
    return MemberRef(person_id=pid, email=pid, department=department, role=role, role_source=source)


def activity(event_id: str, minute: float, member: MemberRef, *solutions: str, kind="page_view",
             automated: bool = False) -> AccountActivity:
    touch = TouchRef(event_id=event_id, occurred_at=at(minute), source="web", kind=kind, person_id=member.person_id,
                     automated=automated)
    return AccountActivity(input_id=event_id, occurred_at=at(minute), account=ACCOUNT, member=member, touch=touch,
                           solutions=solutions)


def run(rules, *messages, state=None):
    events = []
    for message in messages:
        state, out = opportunities.step(state, "romashka.ru", message, rules)
        assert all(o.to == "opportunities" and o.key == o.message.key() for o in out)
        events += [o.message for o in out]
    return state, events


def test_the_first_solution_touch_creates_the_opportunity_with_its_profile(config) -> None:
    elena = card("elena@romashka.ru", Department.hr, BuyingRole.initiator, RoleSource.title)
    _, events = run(config.opportunities, activity("t1", 0, elena, "hr"))
    created, added, attributed = events
    assert isinstance(created, OpportunityCreated) and created.origin == "auto"
    assert created.opportunity_id == "romashka.ru:hr" and created.event_id == "romashka.ru:hr@1"
    assert created.expected_roles == config.opportunities.profile("hr").expected
    assert BuyingRole.budget_holder in created.required_roles
    assert isinstance(added, MemberAdded) and added.member.model_copy(update={"why": None}) == elena
    assert added.version == 2 and added.member.why.solution.rule == "content"  # the touch that put her there
    assert isinstance(attributed, TouchAttributed) and attributed.touch.event_id == "t1" and attributed.version == 3


def test_four_people_make_one_opportunity_with_four_roles(config) -> None:
    people = [card("elena@romashka.ru", Department.hr, BuyingRole.initiator, RoleSource.title),
              card("sergey@romashka.ru", Department.it, BuyingRole.technical_validator, RoleSource.title),
              card("olga@romashka.ru", Department.finance, BuyingRole.budget_holder, RoleSource.title),
              card("ivan@romashka.ru", Department.executive, BuyingRole.decision_maker, RoleSource.title)]
    state, events = run(config.opportunities, *(activity(f"t{i}", i, p, "hr") for i, p in enumerate(people)))
    assert list(state.opportunities) == ["hr"]
    assert {m.role for m in state.opportunities["hr"].members.values()} == {
        BuyingRole.initiator, BuyingRole.technical_validator, BuyingRole.budget_holder, BuyingRole.decision_maker}
    assert [e.version for e in events] == list(range(1, 10))


def test_a_person_in_two_opportunities_and_a_touch_with_no_solution(config) -> None:
    ivan = card("ivan@romashka.ru", Department.executive, BuyingRole.decision_maker, RoleSource.title)
    state, events = run(config.opportunities, activity("t1", 0, ivan, "hr", "bi"), activity("t2", 1, ivan))
    assert set(state.opportunities) == {"hr", "bi"}
    assert all(ivan.person_id in o.members for o in state.opportunities.values())
    [account_touch] = [e for e in events if isinstance(e, AccountTouch)]
    assert account_touch.opportunity_id is None and account_touch.key() == "romashka.ru"
    assert account_touch.event_id == "romashka.ru@touch:t2" and account_touch.version == 1


def test_a_role_changes_only_for_an_at_least_as_strong_source(config) -> None:
    pid = "s@romashka.ru"
    by_behaviour = card(pid, Department.it, BuyingRole.technical_validator, RoleSource.behaviour)
    stated = card(pid, Department.it, BuyingRole.decision_maker, RoleSource.stated)
    by_title = card(pid, Department.it, BuyingRole.technical_validator, RoleSource.title)
    state, events = run(config.opportunities, activity("t1", 0, by_behaviour, "hr"),
                        MemberUpdate(input_id="i1", occurred_at=at(1), account=ACCOUNT, member=stated))
    [changed] = [e for e in events if isinstance(e, MemberRoleChanged)]
    assert changed.previous_role is BuyingRole.technical_validator and changed.member.role is BuyingRole.decision_maker
    renamed = by_title.model_copy(update={"name": "Сергей Волков"})
    state, events = run(config.opportunities, activity("t2", 2, renamed, "hr"), state=state)
    kept = state.opportunities["hr"].members[pid]
    assert (kept.role, kept.role_source, kept.name) == (BuyingRole.decision_maker, RoleSource.stated, "Сергей Волков")


def test_passive_touches_never_make_members(config) -> None:
    olga = card("olga@romashka.ru", Department.finance, BuyingRole.budget_holder, RoleSource.title)
    elena = card("elena@romashka.ru", Department.hr, BuyingRole.initiator, RoleSource.title)
    state, events = run(config.opportunities, activity("d1", 0, olga, "hr", kind="email_delivered"))
    assert state.opportunities == {} and isinstance(events[0], AccountTouch)
    state, events = run(config.opportunities, activity("t1", 1, elena, "hr"),
                        activity("d2", 2, olga, "hr", kind="email_delivered"),
                        activity("d3", 3, elena, "hr", kind="email_delivered"), state=state)
    assert set(state.opportunities["hr"].members) == {"elena@romashka.ru"}
    assert [type(e).__name__ for e in events[-2:]] == ["AccountTouch", "TouchAttributed"]


def test_automated_touches_never_create_an_opportunity_or_a_member(config) -> None:
    # Issue 13: an Apple Mail machine open made an opportunity; a link scanner's click a member.
    olga = card("olga@romashka.ru", Department.finance, BuyingRole.budget_holder, RoleSource.title)
    elena = card("elena@romashka.ru", Department.hr, BuyingRole.initiator, RoleSource.title)
    state, events = run(config.opportunities, activity("o1", 0, olga, "hr", kind="email_open", automated=True))
    assert state.opportunities == {} and isinstance(events[0], AccountTouch)
    state, events = run(config.opportunities, activity("t1", 1, elena, "hr"),
                        activity("c1", 2, olga, "hr", kind="email_click", automated=True), state=state)
    assert set(state.opportunities["hr"].members) == {"elena@romashka.ru"}


def test_a_stricter_creation_rule_attributes_the_waiting_touches_at_creation(config) -> None:
    rules = replace(config.opportunities, creation=CreationRule(min_touches=3, min_people=2,
                                                                window=timedelta(days=21)))
    elena, olga = card("elena@romashka.ru"), card("olga@romashka.ru")
    state, events = run(rules, activity("t1", 0, elena, "hr"), activity("t2", 1, elena, "hr"))
    assert events == [] and len(state.pending["hr"]) == 2
    state, events = run(rules, activity("t3", 2, olga, "hr"), state=state)
    assert [type(e).__name__ for e in events] == ["OpportunityCreated", "MemberAdded", "TouchAttributed",
                                                  "TouchAttributed", "MemberAdded", "TouchAttributed"]
    assert [e.touch.event_id for e in events if isinstance(e, TouchAttributed)] == ["t1", "t2", "t3"]


def test_touches_outside_the_creation_window_become_account_activity(config) -> None:
    rules = replace(config.opportunities, creation=CreationRule(min_touches=2, window=timedelta(days=21)))
    elena = card("elena@romashka.ru")
    state, events = run(rules, activity("t1", 0, elena, "crm"), activity("t2", 60 * 24 * 30, elena, "crm"))
    assert [(type(e).__name__, e.touch.event_id) for e in events] == [("AccountTouch", "t1")]
    assert [t.event_id for t in state.pending["crm"]] == ["t2"]


def test_target_accounts_have_their_opportunities_before_any_touch(config) -> None:
    target = PrecreatedAccount(ACCOUNT.model_copy(update={"owner": "Анна"}), ("hr", "wms"), at(-60 * 24))
    rules = replace(config.opportunities, precreated={"romashka.ru": target})
    seed = opportunities.precreate_inputs(rules)
    assert [(o.to, o.key) for o in seed] == [("accounts", "romashka.ru")]
    state, events = run(rules, seed[0].message)
    assert [(e.solution, e.origin, e.occurred_at) for e in events] == [
        ("hr", "precreated", at(-60 * 24)), ("wms", "precreated", at(-60 * 24))]
    assert events[0].account.owner == "Анна"
    elena = card("elena@romashka.ru")
    state, events = run(rules, activity("t1", 0, elena, "hr"), state=state)
    assert [type(e).__name__ for e in events] == ["MemberAdded", "TouchAttributed"]
    _, touch_first = run(rules, activity("t1", 0, elena, "hr"))  # a touch before the seed: same opportunities
    assert [type(e).__name__ for e in touch_first][:2] == ["OpportunityCreated", "OpportunityCreated"]
    _, again = run(rules, Precreate(input_id="precreate:x", occurred_at=at(0), account=ACCOUNT), state=state)
    assert again == []


# Issue 15: a member's buying role comes from the solution's profile (department x level -> role).

def carded(config, pid: str, title: str, stated: str | None = None) -> MemberRef:
    found = config.people.roles.classify(title, stated)
    return MemberRef(person_id=pid, email=pid, job_title=title, department=found.department, level=found.level,
                     role=found.role, role_source=found.source)


def roles_in(state, solution: str) -> dict[str, BuyingRole]:
    return {pid: m.role for pid, m in state.opportunities[solution].members.items()}


def test_the_same_person_takes_the_role_of_each_solution(config) -> None:
    sales = carded(config, "s@romashka.ru", "Менеджер по продажам")
    it_director = carded(config, "it@romashka.ru", "IT-директор")
    hr = carded(config, "hr@romashka.ru", "HR-менеджер")
    state, _ = run(config.opportunities, *(activity(f"t{i}", i, p, "hr", "crm")
                                           for i, p in enumerate((sales, it_director, hr))))
    # A sales manager reading about HR systems influences; in a CRM purchase, sales initiates.
    assert roles_in(state, "hr") == {"s@romashka.ru": BuyingRole.influencer,
                                     "it@romashka.ru": BuyingRole.technical_validator,
                                     "hr@romashka.ru": BuyingRole.initiator}
    assert roles_in(state, "crm") == {"s@romashka.ru": BuyingRole.initiator,
                                      "it@romashka.ru": BuyingRole.technical_validator,
                                      "hr@romashka.ru": BuyingRole.influencer}


def test_an_it_purchase_profile_makes_the_it_director_initiator_and_decider(config) -> None:
    defaults = config.opportunities.default_profile.roles
    itsm = GroupProfile(roles=RoleMap.from_dict({"it": {"top": "decision_maker", "*": "initiator"}}, defaults))
    rules = replace(config.opportunities, profiles={**config.opportunities.profiles, "itsm": itsm})
    people = [carded(config, "cio@romashka.ru", "Директор по ИТ"), carded(config, "adm@romashka.ru", "Сисадмин 1С"),
              carded(config, "fd@romashka.ru", "ФД"), carded(config, "hr@romashka.ru", "HR-директор")]
    state, _ = run(rules, *(activity(f"t{i}", i, p, "itsm", "hr") for i, p in enumerate(people)))
    assert roles_in(state, "itsm") == {"cio@romashka.ru": BuyingRole.decision_maker,
                                       "adm@romashka.ru": BuyingRole.initiator,
                                       "fd@romashka.ru": BuyingRole.budget_holder,
                                       "hr@romashka.ru": BuyingRole.influencer}
    assert roles_in(state, "hr")["cio@romashka.ru"] is BuyingRole.technical_validator


def test_a_stated_role_is_kept_whatever_the_solution(config) -> None:
    sales = carded(config, "s@romashka.ru", "Менеджер по продажам", stated="Decision Maker")
    state, _ = run(config.opportunities, activity("t1", 0, sales, "hr", "crm"))
    assert roles_in(state, "hr") == roles_in(state, "crm") == {"s@romashka.ru": BuyingRole.decision_maker}


def test_a_new_title_changes_the_role_in_each_opportunity_by_its_profile(config) -> None:
    pid = "p@romashka.ru"
    state, _ = run(config.opportunities, activity("t1", 0, carded(config, pid, "Маркетолог"), "hr", "crm"))
    state, events = run(config.opportunities, MemberUpdate(
        input_id="u1", occurred_at=at(1), account=ACCOUNT, member=carded(config, pid, "Финансовый директор")),
        state=state)
    changed = {e.solution: (e.previous_role, e.member.role) for e in events if isinstance(e, MemberRoleChanged)}
    assert changed == {"hr": (BuyingRole.influencer, BuyingRole.budget_holder),
                       "crm": (BuyingRole.initiator, BuyingRole.budget_holder)}


def test_a_profile_refuses_an_unknown_level() -> None:
    with pytest.raises(ValueError, match="unknown levels"):
        RoleMap.from_dict({"it": {"senior": "decision_maker"}})


def test_the_account_state_does_not_grow_with_its_touches(config) -> None:
    # Cards are kept only for people whose touches wait for the creation rule; once the
    # opportunity is open a touch changes versions, not the state's size.
    rules = replace(config.opportunities, creation=CreationRule(min_touches=2, min_people=2))
    elena, olga = card("elena@romashka.ru"), card("olga@romashka.ru")
    state, _ = run(rules, activity("t1", 0, elena, "hr"))
    assert set(state.people) == {"elena@romashka.ru"}
    state, _ = run(rules, activity("t2", 1, olga, "hr"), state=state)
    assert state.people == {} and state.pending == {}
    size = len(state.model_dump_json())
    state, events = run(rules, *[activity(f"n{i}", 2 + i, (elena, olga)[i % 2], "hr") for i in range(300)],
                        state=state)
    assert len(events) == 300 and state.opportunities["hr"].version == 305
    assert len(state.model_dump_json()) <= size + 2  # the version's digits
