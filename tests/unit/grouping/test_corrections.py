"""Corrections in the account stage: hand-set facts kept over the rules, undo, order, dead letters."""

from __future__ import annotations

import random
from datetime import timedelta

from services.grouping.domain import corrections, opportunities
from services.grouping.domain.messages import AccountActivity, CorrectionInput, CorrectionRefused, MemberUpdate
from shared.schemas.correction import (
    AccountsMerged,
    CorrectionUndone,
    MemberLinked,
    MemberNoteSet,
    MemberRoleSet,
    MemberStanceSet,
    MemberUnlinked,
    OpportunityOpened,
)
from shared.schemas.opportunity import (
    AccountRef,
    AccountTouch,
    MemberAdded,
    MemberRef,
    MemberRemoved,
    MemberRoleChanged,
    MemberStanceChanged,
    OpportunityCreated,
    TouchAttributed,
    TouchRef,
)
from shared.schemas.roles import BuyingRole, Department, Level, RoleSource
from tests.component.grouping.test_grouping_faults import scenario
from tests.unit.grouping.harness import Pipeline, at, fold, groups, hand_set

ACCOUNT = AccountRef(account_id="romashka.ru", name="Красная ромашка", domains=("romashka.ru",))
OPP = "romashka.ru:hr"
ELENA, OLGA, IVAN = "elena@romashka.ru", "olga@romashka.ru", "ivan@romashka.ru"


def card(pid: str, title: str, department: Department, level: Level, role: BuyingRole) -> MemberRef:
    return MemberRef(person_id=pid, email=pid, job_title=title, department=department, role=role,
                     role_source=RoleSource.title, level=level)


HR = card(ELENA, "HR-менеджер", Department.hr, Level.staff, BuyingRole.initiator)
FINANCE = card(OLGA, "Финансовый директор", Department.finance, Level.top, BuyingRole.budget_holder)
ACCOUNTANT = card(OLGA, "Бухгалтер", Department.finance, Level.staff, BuyingRole.influencer)
CEO = card(IVAN, "Генеральный директор", Department.executive, Level.top, BuyingRole.decision_maker)


def touch(event_id: str, minute: float, member: MemberRef, *solutions: str) -> AccountActivity:
    ref = TouchRef(event_id=event_id, occurred_at=at(minute), source="web", kind="page_view",
                   person_id=member.person_id)
    return AccountActivity(input_id=event_id, occurred_at=at(minute), account=ACCOUNT, member=member, touch=ref,
                           solutions=solutions or ("hr",))


def fix(kind, cid: str, minute: float, **fields):
    return kind(correction_id=cid, author="Мария", made_at=at(minute), **fields)


def corr(correction) -> CorrectionInput:
    account_id = corrections.account_of(correction.key(), frozenset({"hr", "crm"}))[0]
    return CorrectionInput(input_id=correction.correction_id, occurred_at=correction.made_at,
                           account=AccountRef(account_id=account_id), correction=correction)


def run(rules, *messages, state=None):
    events, refused = [], []
    for message in messages:
        message = corr(message) if not isinstance(message, AccountActivity | MemberUpdate) else message
        state, out = opportunities.step(state, "romashka.ru", message, rules)
        events += [o.message for o in out if o.to == "opportunities"]
        refused += [o.message for o in out if o.to == "correction_dlq"]
    return state, events, refused


def members(state, solution="hr") -> dict[str, MemberRef]:
    return state.opportunities[solution].members


def test_a_person_linked_by_hand_stays_after_later_touches(config) -> None:
    rules = config.opportunities
    state, events, _ = run(rules, touch("t1", 0, HR),
                           fix(MemberLinked, "c1", 5, opportunity_id=OPP, person_id=IVAN, role="decision_maker"))
    added = [e for e in events if isinstance(e, MemberAdded) and e.member.person_id == IVAN]
    assert len(added) == 1
    assert added[0].member.role is BuyingRole.decision_maker and added[0].member.role_source is RoleSource.manual
    assert added[0].member.why.solution.correction_id == "c1" and added[0].member.why.role.author == "Мария"
    # Later touches of others and of the person: still a member, the touch is the opportunity's.
    state, events, _ = run(rules, touch("t2", 10, HR), touch("t3", 11, CEO), state=state)
    assert set(members(state)) == {ELENA, IVAN}
    assert any(isinstance(e, TouchAttributed) and e.touch.event_id == "t3" for e in events)
    assert members(state)[IVAN].job_title == "Генеральный директор"
    assert members(state)[IVAN].role_source is RoleSource.manual


def test_a_person_unlinked_by_hand_is_not_brought_back_by_touches(config) -> None:
    rules = config.opportunities
    state, _, _ = run(rules, touch("t1", 0, HR), touch("t2", 1, ACCOUNTANT))
    state, events, _ = run(rules, fix(MemberUnlinked, "c1", 5, opportunity_id=OPP, person_id=OLGA), state=state)
    [removed] = events
    assert isinstance(removed, MemberRemoved) and removed.member.person_id == OLGA
    assert removed.correction_id == "c1" and removed.author == "Мария"
    state, events, _ = run(rules, touch("t3", 10, ACCOUNTANT), touch("t4", 11, FINANCE), state=state)
    assert set(members(state)) == {ELENA}
    # Their touches are the account's, not the opportunity's.
    assert [type(e) for e in events] == [AccountTouch, AccountTouch]


def test_a_role_set_by_hand_survives_a_later_change_of_job_title(config) -> None:
    rules = config.opportunities
    state, _, _ = run(rules, touch("t1", 0, HR), touch("t2", 1, ACCOUNTANT),
                      fix(MemberRoleSet, "c1", 5, opportunity_id=OPP, person_id=OLGA, role="decision_maker",
                          department="executive"))
    assert members(state)[OLGA].role is BuyingRole.decision_maker
    state, events, _ = run(rules, MemberUpdate(input_id="u1", occurred_at=at(20), account=ACCOUNT, member=FINANCE),
                           touch("t3", 21, FINANCE), state=state)
    olga = members(state)[OLGA]
    assert (olga.role, olga.department, olga.role_source) == (BuyingRole.decision_maker, Department.executive,
                                                             RoleSource.manual)
    assert olga.job_title == "Финансовый директор"  # the card still follows the person
    assert all(e.member.role is BuyingRole.decision_maker for e in events if isinstance(e, MemberRoleChanged))


def test_undo_restores_what_the_rules_give_without_the_correction(config) -> None:
    rules = config.opportunities
    state, _, _ = run(rules, touch("t1", 0, HR), touch("t2", 1, ACCOUNTANT),
                      fix(MemberRoleSet, "c1", 5, opportunity_id=OPP, person_id=OLGA, role="decision_maker"),
                      MemberUpdate(input_id="u1", occurred_at=at(20), account=ACCOUNT, member=FINANCE))
    state, events, _ = run(rules, fix(CorrectionUndone, "c2", 30, undoes="c1", subject=OPP), state=state)
    [changed] = events
    assert isinstance(changed, MemberRoleChanged) and changed.correction_id == "c2"
    # The role the title rules give now (the title changed while the correction held).
    assert (changed.member.role, changed.member.role_source) == (BuyingRole.budget_holder, RoleSource.title)
    assert changed.previous_role is BuyingRole.decision_maker


def test_undo_of_a_link_and_of_an_unlink(config) -> None:
    rules = config.opportunities
    state, _, _ = run(rules, touch("t1", 0, HR), touch("t2", 1, ACCOUNTANT))
    before = dict(members(state))
    state, events, _ = run(rules, fix(MemberLinked, "c1", 5, opportunity_id=OPP, person_id=IVAN),
                           fix(MemberUnlinked, "c2", 6, opportunity_id=OPP, person_id=OLGA),
                           fix(CorrectionUndone, "c3", 7, undoes="c1", subject=OPP),
                           fix(CorrectionUndone, "c4", 8, undoes="c2", subject=OPP), state=state)
    assert [type(e) for e in events] == [MemberAdded, MemberRemoved, MemberRemoved, MemberAdded]
    assert [e.member.person_id for e in events] == [IVAN, OLGA, IVAN, OLGA]
    shown = members(state)
    assert set(shown) == set(before)
    assert shown[OLGA].model_dump(exclude={"why"}) == before[OLGA].model_dump(exclude={"why"})


def test_a_later_fix_wins_by_event_time_and_undo_falls_back_to_the_earlier(config) -> None:
    rules = config.opportunities
    set_at = {"opportunity_id": OPP, "person_id": OLGA}
    state, _, _ = run(rules, touch("t1", 0, ACCOUNTANT),
                      # Read in the other order than made: the one made later holds.
                      fix(MemberRoleSet, "c2", 9, role="decision_maker", **set_at),
                      fix(MemberRoleSet, "c1", 8, role="legal", **set_at))
    assert members(state)[OLGA].role is BuyingRole.decision_maker
    state, _, _ = run(rules, fix(CorrectionUndone, "c3", 10, undoes="c2", subject=OPP), state=state)
    assert members(state)[OLGA].role is BuyingRole.legal


def test_stance_is_forwarded_and_undone(config) -> None:
    rules = config.opportunities
    state, events, _ = run(rules, touch("t1", 0, FINANCE),
                           fix(MemberStanceSet, "c1", 5, opportunity_id=OPP, person_id=OLGA, stance="blocker",
                               influence="high"))
    stance = events[-1]
    assert isinstance(stance, MemberStanceChanged)
    assert (stance.member.stance, stance.member.influence, stance.previous_stance) == ("blocker", "high", None)
    state, events, _ = run(rules, touch("t2", 6, FINANCE), fix(CorrectionUndone, "c2", 7, undoes="c1", subject=OPP),
                           state=state)
    assert members(state)[OLGA].stance is None
    assert isinstance(events[-1], MemberStanceChanged) and events[-1].previous_stance == "blocker"


def test_the_same_members_whether_corrections_are_read_before_or_after_the_touches(config) -> None:
    """A rebuild from the topics reads corrections and touches in another interleaving than live."""
    rules = config.opportunities
    touches = [touch("t1", 0, HR), touch("t2", 1, ACCOUNTANT), touch("t3", 2, CEO),
               MemberUpdate(input_id="u1", occurred_at=at(40), account=ACCOUNT, member=FINANCE),
               touch("t4", 41, FINANCE), touch("t5", 42, CEO)]
    fixes = [fix(MemberLinked, "c1", 10, opportunity_id=OPP, person_id="pavel@romashka.ru", role="technical_validator"),
             fix(MemberUnlinked, "c2", 11, opportunity_id=OPP, person_id=IVAN),
             fix(MemberRoleSet, "c3", 12, opportunity_id=OPP, person_id=OLGA, role="decision_maker"),
             fix(MemberStanceSet, "c4", 13, opportunity_id=OPP, person_id=ELENA, stance="champion"),
             fix(CorrectionUndone, "c5", 14, undoes="c1", subject=OPP),
             fix(MemberLinked, "c6", 15, opportunity_id=OPP, person_id="pavel@romashka.ru")]
    live, _, live_refused = run(rules, *touches[:3], *fixes, *touches[3:])
    rebuilt, _, rebuilt_refused = run(rules, *fixes, *touches)
    after, _, _ = run(rules, *touches, *fixes)
    assert live_refused == rebuilt_refused == []

    def view(state):
        return {pid: (m.role, m.department, m.role_source, m.stance) for pid, m in members(state).items()}

    assert view(live) == view(rebuilt) == view(after)
    assert view(live) == {
        ELENA: (BuyingRole.initiator, Department.hr, RoleSource.title, "champion"),
        OLGA: (BuyingRole.decision_maker, Department.finance, RoleSource.manual, None),
        "pavel@romashka.ru": (BuyingRole.influencer, Department.other, RoleSource.default, None),
    }


def test_a_replay_gives_the_same_events(config) -> None:
    rules = config.opportunities
    inputs = [touch("t1", 0, HR), fix(MemberLinked, "c1", 5, opportunity_id=OPP, person_id=IVAN),
              touch("t2", 6, CEO), fix(MemberStanceSet, "c2", 7, opportunity_id=OPP, person_id=IVAN,
                                       stance="champion", influence="high"),
              fix(CorrectionUndone, "c3", 8, undoes="c1", subject=OPP)]
    _, first, _ = run(rules, *inputs)
    _, second, _ = run(rules, *inputs)
    assert first == second
    # Ivan touched the solution himself: undoing the link leaves him in, by the rules.
    state, _, _ = run(rules, *inputs)
    assert IVAN in members(state) and members(state)[IVAN].stance == "champion"


def test_a_correction_applied_twice_changes_nothing(config) -> None:
    rules = config.opportunities
    linked = fix(MemberLinked, "c1", 5, opportunity_id=OPP, person_id=IVAN)
    state, _, _ = run(rules, touch("t1", 0, HR), linked)
    state, events, refused = run(rules, linked, state=state)
    assert events == [] and refused == []


def test_a_correction_of_an_opportunity_not_open_waits_then_is_dead_lettered(config) -> None:
    rules = config.opportunities
    linked = fix(MemberLinked, "c1", 5, opportunity_id="romashka.ru:crm", person_id=IVAN)
    state, events, refused = run(rules, touch("t1", 0, HR), linked)
    assert events[-1].opportunity_id == OPP and refused == []
    assert [c.correction_id for c in state.waiting] == ["c1"]
    # A touch of the account a day of event time later: the opportunity never opened.
    late = 5 + rules.correction_grace / timedelta(minutes=1) + 1
    state, _, refused = run(rules, touch("t2", late, HR), state=state)
    [letter] = refused
    assert isinstance(letter, CorrectionRefused) and letter.reason == "unknown_opportunity"
    assert letter.correction == linked and state.waiting == []


def test_a_waiting_correction_applies_when_the_opportunity_opens(config) -> None:
    rules = config.opportunities
    state, events, refused = run(rules, fix(MemberUnlinked, "c1", 5, opportunity_id=OPP, person_id=OLGA),
                                 touch("t1", 6, ACCOUNTANT), touch("t2", 7, HR))
    assert refused == [] and set(members(state)) == {ELENA}
    # Olga's touch opens the opportunity (one touch is enough) but stays the account's.
    assert [type(e) for e in events] == [OpportunityCreated, AccountTouch, MemberAdded, TouchAttributed]


def test_an_opportunity_opened_by_hand(config) -> None:
    rules = config.opportunities
    opened = fix(OpportunityOpened, "c1", 0, opportunity_id="romashka.ru:crm", account_id="romashka.ru",
                 solution="crm", profile="hr")
    state, events, _ = run(rules, opened)
    [created] = events
    assert isinstance(created, OpportunityCreated)
    assert (created.origin, created.correction_id, created.author) == ("manual", "c1", "Мария")
    assert created.required_roles == rules.profile("hr").required
    state, events, _ = run(rules, touch("t1", 1, HR, "crm"), state=state)
    assert [type(e) for e in events] == [MemberAdded, TouchAttributed]
    # In the hr profile's roles: HR initiates.
    assert events[0].member.role is BuyingRole.initiator
    _, _, refused = run(rules, fix(CorrectionUndone, "c2", 2, undoes="c1", subject="romashka.ru:crm"), state=state)
    assert [r.reason for r in refused] == ["cannot_undo"]


def test_route_sends_each_correction_to_its_owner() -> None:
    solutions = frozenset({"hr", "crm"})
    linked = fix(MemberLinked, "c1", 0, opportunity_id="name:ромашка ооо:hr", person_id=IVAN)
    [out] = corrections.route(linked, solutions)
    assert (out.to, out.key) == ("accounts", "name:ромашка ооо")
    undo = fix(CorrectionUndone, "c2", 0, undoes="c1", subject="romashka.ru:hr")
    assert [(o.to, o.key) for o in corrections.route(undo, solutions)] == [("accounts", "romashka.ru")]
    assert corrections.route(fix(MemberNoteSet, "c3", 0, opportunity_id=OPP, person_id=IVAN, note="x"),
                             solutions) == []
    reasons = [corrections.route(c, solutions)[0].message.reason for c in (
        fix(OpportunityOpened, "c4", 0, opportunity_id="a.ru:hr", account_id="b.ru", solution="hr"),
        fix(OpportunityOpened, "c5", 0, opportunity_id="a.ru:erp", account_id="a.ru", solution="erp"),
        fix(MemberRoleSet, "c6", 0, opportunity_id="a.ru", person_id=IVAN, role="legal"),
    )]
    assert reasons == ["inconsistent_opportunity_id", "unknown_solution", "unknown_opportunity"]
    # A merge goes to the account absorbed (domain/merge.py, tests/unit/grouping/test_merge.py).
    [out] = corrections.route(fix(AccountsMerged, "c7", 0, into="a.ru", merged="b.ru"), solutions)
    assert (out.to, out.key, out.message.into.account_id) == ("accounts", "b.ru", "a.ru")


def test_no_card_unsets_a_stance_set_by_hand() -> None:
    """A member moved by a merge brings their stance; the person's next card (no stance: only
    people set one) keeps it, while the title still updates."""
    marked = FINANCE.model_copy(update={"stance": "blocker", "influence": "high"})
    merged = opportunities.merge_member(marked, ACCOUNTANT)
    assert (merged.stance, merged.influence, merged.job_title) == ("blocker", "high", "Бухгалтер")


def test_any_interleaving_of_corrections_and_touches_gives_the_same_groups(config) -> None:
    """The worker reads bg.correction.v1 and the touches' stages in whatever order (live, a
    replay, a rebuild): through all three stages, corrections read anywhere among the touches
    give the groups of corrections read after all of them (found: a rule card taken from a
    member with a role set by hand in another opportunity of the account)."""
    solutions = config.opportunities.solutions
    for seed in range(20):  # 15 and 18 found the bug below
        tag = f"mix{seed}"
        events = scenario(tag, companies=6, people=5, touches=3)
        after = Pipeline(config)
        fixes = hand_set(fold(after.feed(*events))[0], tag)
        after.send([out for c in fixes for out in corrections.route(c, solutions)])
        expected = groups([o.message for o in after.sent if o.to == "opportunities"], tag)

        rnd = random.Random(seed)
        mixed = Pipeline(config)
        cut = rnd.randrange(len(events))
        mixed.feed(*events[:cut])
        slots = sorted(rnd.randrange(cut, len(events) + 1) for _ in fixes)
        pending = iter(zip(slots, fixes, strict=True))
        slot, fix_ = next(pending)
        for position in range(cut, len(events) + 1):
            while fix_ is not None and slot == position:
                mixed.send(corrections.route(fix_, solutions))
                slot, fix_ = next(pending, (None, None))
            if position < len(events):
                mixed.feed(events[position])
        assert groups([o.message for o in mixed.sent if o.to == "opportunities"], tag) == expected, seed
        assert mixed.refused == after.refused == []


def test_a_role_set_by_hand_in_one_opportunity_is_not_the_rules_card_of_another(config) -> None:
    rules = config.opportunities
    crm = "romashka.ru:crm"
    state, _, _ = run(rules, touch("t1", 0, HR), touch("t2", 1, ACCOUNTANT, "crm"), touch("t3", 2, HR, "crm"),
                      fix(MemberRoleSet, "c1", 5, opportunity_id=crm, person_id=OLGA, role="legal"),
                      # Olga is no member of hr yet: her card comes from what the rules say in crm.
                      fix(MemberRoleSet, "c2", 6, opportunity_id=OPP, person_id=OLGA, role="decision_maker"),
                      touch("t4", 7, ACCOUNTANT), fix(CorrectionUndone, "c3", 8, undoes="c2", subject=OPP))
    assert members(state, "crm")[OLGA].role is BuyingRole.legal
    olga = members(state)[OLGA]
    assert (olga.role, olga.role_source) == (BuyingRole.influencer, RoleSource.title)
