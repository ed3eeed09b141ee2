"""Account merges: automatic (issue 15: a name account joins the domain a colleague reveals) and
by hand (issue 16: accounts_merged and its undo), through the stages chained in memory."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.grouping.domain import corrections, merge
from services.grouping.domain.directory import DirectoryEntry, lookup, register
from services.grouping.domain.messages import AccountMerge, CorrectionInput, NameLookup, NameRegistration, Refused
from shared.schemas.correction import AccountsMerged, CorrectionUndone, MemberLinked
from shared.schemas.opportunity import AccountRef, MemberRemoved, OpportunityMerged
from tests.unit.grouping.harness import Pipeline, at, fold, roles_of, touch

SKVORECHNIK = AccountRef(account_id="skvorechnik.ru", name="ООО «Скворечник Технологии»",
                         domains=("skvorechnik.ru",))
MADE_AT = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)
HR = "https://vendor.example/solutions/hr/leave-automation"
CRM = "https://vendor.example/solutions/crm/pipeline"


def ask(names, raw: str, person: str) -> NameLookup:
    name = names.normalise(raw)
    return NameLookup(lookup_id=f"{person}|{name}", occurred_at=at(0), person_id=person, name=name, display_name=raw)


SOLUTIONS = frozenset({"hr", "crm"})


def merged(correction_id: str, into: str, absorbed: str) -> list:
    return corrections.route(AccountsMerged(correction_id=correction_id, author="Мария", made_at=MADE_AT,
                                            into=into, merged=absorbed), SOLUTIONS)


def undone(correction_id: str, undoes: str, subject: str) -> list:
    return corrections.route(CorrectionUndone(correction_id=correction_id, author="Мария", made_at=MADE_AT,
                                              undoes=undoes, subject=subject), SOLUTIONS)


# ---------------------------------------------------------------- issue 15: automatic


def test_a_registration_takes_over_the_name_accounts_it_matches_across_scripts(config) -> None:
    names = config.people.accounts.names
    directory: dict[str, DirectoryEntry] = {}
    directory.update(lookup(directory, ask(names, "OOO Skvorechnik Tekhnologii", "a@gmail.com"), names)[0])
    directory.update(lookup(directory, ask(names, "Кварцмонтаж-32", "b@gmail.com"), names)[0])
    source = directory["skvorechnik tekhnologii"].account
    assert source.account_id == "name:skvorechnik tekhnologii"
    registration = NameRegistration(occurred_at=at(5), name="скворечник технологии", account=SKVORECHNIK)
    updates, [out] = register(directory, registration, names)
    assert updates == {"skvorechnik tekhnologii": DirectoryEntry(account=SKVORECHNIK, origin="domain"),
                       "скворечник технологии": DirectoryEntry(account=SKVORECHNIK, origin="domain")}
    assert out.to == "accounts" and out.key == source.account_id
    assert out.message == AccountMerge(input_id="merge:name:skvorechnik tekhnologii>skvorechnik.ru",
                                       merge_id="merge:name:skvorechnik tekhnologii>skvorechnik.ru",
                                       occurred_at=at(5), account=source, into=SKVORECHNIK)
    # Numbers must agree: Кварцмонтаж-31's domain never takes Кварцмонтаж-32's name over.
    kvarc = AccountRef(account_id="kvarc31.ru", domains=("kvarc31.ru",))
    updates, merges = register(directory, NameRegistration(occurred_at=at(6), name="кварцмонтаж 31",
                                                           account=kvarc), names)
    assert merges == [] and set(updates) == {"кварцмонтаж 31"}


def test_a_free_mail_person_first_then_a_corporate_colleague_make_one_account(config) -> None:
    pipeline = Pipeline(config)
    events = pipeline.feed(
        touch("fm-1", 0, email="elena.hr@gmail.com", name="Елена", job_title="HR-менеджер",
              company="OOO Skvorechnik Tekhnologii", url=HR),
        touch("fm-2", 10, "download", email="elena.hr@gmail.com", asset_id="hr-demo-2025"))
    before, _ = fold(events)
    assert list(before) == ["name:skvorechnik tekhnologii:hr"]  # no domain known yet: an account of the name
    events += pipeline.feed(touch("co-1", 60, email="s.volkov@skvorechnik.ru", name="Сергей",
                                  job_title="IT-директор", company="ООО «Скворечник Технологии»", url=HR))
    # The free-mail person's later touch, still addressed to the name account, lands in the domain's.
    events += pipeline.feed(touch("fm-3", 90, email="elena.hr@gmail.com", url=HR))
    views, _ = fold(events)
    name_opp, domain_opp = views["name:skvorechnik tekhnologii:hr"], views["skvorechnik.ru:hr"]
    assert name_opp.merged_into == "skvorechnik.ru:hr"
    assert roles_of(domain_opp) == {"elenahr@gmail.com": ("hr", "initiator"),
                                    "s.volkov@skvorechnik.ru": ("it", "technical_validator")}
    # Touches attributed before the merge stay on the name opportunity's events (read with the
    # one it was merged into); every later one is the domain's (and the hidden name view's too).
    assert name_opp.touches == {"fm-1", "fm-2", "fm-3"} and domain_opp.touches == {"co-1", "fm-3"}
    # The directory now answers the name with the domain: a new free-mail colleague goes there at once.
    events = pipeline.feed(touch("fm-4", 120, email="cfo.skv@mail.ru", job_title="финансовый директор",
                                 company="Скворечник Технологии", url=HR))
    assert {e.opportunity_id for e in events} == {"skvorechnik.ru:hr"}


def test_the_automatic_merge_does_not_depend_on_who_comes_first(config) -> None:
    story = [touch("fm-1", 0, email="elena.hr@gmail.com", job_title="HR-менеджер",
                   company="ООО «Скворечник Технологии»", url=HR),
             touch("co-1", 60, email="s.volkov@skvorechnik.ru", job_title="IT-директор",
                   company="Скворечник Технологии", url=HR)]
    free_mail_first, _ = fold(Pipeline(config).feed(*story))
    corporate_first, _ = fold(Pipeline(config).feed(*reversed(story)))
    assert roles_of(free_mail_first["skvorechnik.ru:hr"]) == roles_of(corporate_first["skvorechnik.ru:hr"])
    assert set(free_mail_first["skvorechnik.ru:hr"].members) == {"elenahr@gmail.com", "s.volkov@skvorechnik.ru"}
    assert "name:скворечник технологии:hr" not in corporate_first


# ---------------------------------------------------------------- issue 16: by hand, and undone


def two_companies(config) -> tuple[Pipeline, list]:
    """One company seen under two domains: an HR group at each, a CRM reader at the second."""
    pipeline = Pipeline(config)
    events = pipeline.feed(
        touch("a-1", 0, email="elena@romashka.ru", job_title="HR-менеджер", url=HR),
        touch("a-2", 5, email="volkov@romashka.ru", job_title="IT-директор", url=HR),
        touch("b-1", 10, email="petrova@krasnaya-romashka.ru", job_title="финансовый директор", url=HR),
        touch("b-2", 20, email="sales@krasnaya-romashka.ru", job_title="коммерческий директор", url=CRM))
    return pipeline, events


def test_a_merge_makes_one_opportunity_per_solution_with_both_groups_members(config) -> None:
    pipeline, events = two_companies(config)
    events += pipeline.send(merged("c-1", "romashka.ru", "krasnaya-romashka.ru"))
    events += pipeline.feed(touch("b-3", 30, "download", email="petrova@krasnaya-romashka.ru", asset_id="hr-roi"),
                            touch("b-4", 31, email="newcomer@krasnaya-romashka.ru", job_title="Юрист", url=HR))
    views, _ = fold(events)
    assert views["krasnaya-romashka.ru:hr"].merged_into == "romashka.ru:hr"
    assert views["krasnaya-romashka.ru:crm"].merged_into == "romashka.ru:crm"
    assert set(views["romashka.ru:hr"].members) == {
        "elena@romashka.ru", "volkov@romashka.ru", "petrova@krasnaya-romashka.ru", "newcomer@krasnaya-romashka.ru"}
    assert set(views["romashka.ru:crm"].members) == {"sales@krasnaya-romashka.ru"}  # created by the merge
    # Later touches to the absorbed domain land in the surviving account.
    assert {"b-3", "b-4"} <= views["romashka.ru:hr"].touches
    # The absorbed account keeps its own view, hidden, for an undo.
    assert views["krasnaya-romashka.ru:hr"].touches == {"b-1", "b-3", "b-4"}
    assert pipeline.accounts["romashka.ru"].absorbed == ["krasnaya-romashka.ru"]


def test_undo_restores_the_previous_state(config) -> None:
    pipeline, events = two_companies(config)
    before, _ = fold(events)
    events += pipeline.send(merged("c-1", "romashka.ru", "krasnaya-romashka.ru"))
    undo_events = pipeline.send(undone("c-2", "c-1", "romashka.ru"))
    events += undo_events
    after, _ = fold(events)
    for oid, view in before.items():
        assert after[oid].members == view.members, oid
        assert after[oid].merged_into is None, oid
    assert {(e.opportunity_id, e.member.person_id) for e in undo_events if isinstance(e, MemberRemoved)} == {
        ("romashka.ru:hr", "petrova@krasnaya-romashka.ru"), ("romashka.ru:crm", "sales@krasnaya-romashka.ru")}
    # The CRM opportunity the merge created, empty now, lives on in the restored one.
    assert after["romashka.ru:crm"].merged_into == "krasnaya-romashka.ru:crm"
    assert pipeline.accounts["romashka.ru"].merges == {} and pipeline.accounts["romashka.ru"].absorbed == []
    # Touches to the second domain are its own again; a CRM touch at the first revives its opportunity.
    events += pipeline.feed(touch("b-5", 40, email="petrova@krasnaya-romashka.ru", url=HR),
                            touch("a-3", 41, email="volkov@romashka.ru", url=CRM))
    views, _ = fold(events)
    assert "b-5" in views["krasnaya-romashka.ru:hr"].touches
    assert views["romashka.ru:crm"].merged_into is None and set(views["romashka.ru:crm"].members) == {
        "volkov@romashka.ru"}


def test_a_merge_and_its_undo_are_deterministic_and_replay_the_same(config) -> None:
    def run() -> list:
        pipeline, events = two_companies(config)
        events += pipeline.send(merged("c-1", "romashka.ru", "krasnaya-romashka.ru"))
        events += pipeline.feed(touch("b-3", 30, email="petrova@krasnaya-romashka.ru", url=HR))
        return events + pipeline.send(undone("c-2", "c-1", "romashka.ru"))

    first = run()
    assert first == run()
    fold(first)  # no event id twice with different content, no version gap
    # A redelivered merge applied to the same state emits the same; applied on top, nothing.
    pipeline, _ = two_companies(config)
    [out] = merged("c-1", "romashka.ru", "krasnaya-romashka.ru")
    state = pipeline.accounts["krasnaya-romashka.ru"]
    _, once = merge.step(state.model_copy(deep=True), out.key, out.message, config.opportunities)
    _, again = merge.step(state.model_copy(deep=True), out.key, out.message, config.opportunities)
    assert once == again and any(isinstance(o.message, OpportunityMerged) for o in once)
    after, _ = merge.step(state, out.key, out.message, config.opportunities)
    assert merge.step(after, out.key, out.message, config.opportunities)[1] == []
    moved = once[-1]
    target = pipeline.accounts["romashka.ru"]
    target, absorbed = merge.step(target, moved.key, moved.message, config.opportunities)
    assert absorbed and merge.step(target, moved.key, moved.message, config.opportunities)[1] == []


def test_an_undo_gives_the_same_whether_the_merge_was_read_before_or_after_the_touches(config) -> None:
    """A rebuild from the topics reads the corrections and the touches in another interleaving
    than live did: the merge before the second account's touches, or after them."""
    first = [touch("a-1", 0, email="elena@romashka.ru", job_title="HR-менеджер", url=HR)]
    second = [touch("b-1", 10, email="petrova@krasnaya-romashka.ru", job_title="финансовый директор", url=HR),
              touch("b-2", 20, email="sales@krasnaya-romashka.ru", job_title="коммерческий директор", url=CRM)]

    def run(merge_first: bool) -> tuple[dict, dict]:
        pipeline = Pipeline(config)
        events = pipeline.feed(*first)
        if merge_first:
            events += pipeline.send(merged("c-1", "romashka.ru", "krasnaya-romashka.ru"))
            events += pipeline.feed(*second)
        else:
            events += pipeline.feed(*second)
            events += pipeline.send(merged("c-1", "romashka.ru", "krasnaya-romashka.ru"))
        during, _ = fold(events)
        events += pipeline.send(undone("c-2", "c-1", "romashka.ru"))
        after, _ = fold(events)
        return during, after

    def shown(views: dict) -> dict:
        return {oid: (set(v.members), v.merged_into) for oid, v in views.items() if v.merged_into is None}

    live_during, live_after = run(merge_first=False)
    rebuilt_during, rebuilt_after = run(merge_first=True)
    assert shown(live_during) == shown(rebuilt_during) == {
        "romashka.ru:hr": ({"elena@romashka.ru", "petrova@krasnaya-romashka.ru"}, None),
        "romashka.ru:crm": ({"sales@krasnaya-romashka.ru"}, None)}
    assert shown(live_after) == shown(rebuilt_after) == {
        "romashka.ru:hr": ({"elena@romashka.ru"}, None),
        "krasnaya-romashka.ru:hr": ({"petrova@krasnaya-romashka.ru"}, None),
        "krasnaya-romashka.ru:crm": ({"sales@krasnaya-romashka.ru"}, None)}


def test_an_undo_read_before_its_merge_waits_for_it(config) -> None:
    """The merge goes round through the account absorbed, the undo straight to the surviving one:
    a rebuild reading both at once may deliver the undo first."""
    pipeline, events = two_companies(config)
    before, _ = fold(events)
    events += pipeline.send(undone("c-2", "c-1", "romashka.ru"))
    assert [u.correction_id for u in pipeline.accounts["romashka.ru"].waiting_undos] == ["c-2"]
    events += pipeline.send(merged("c-1", "romashka.ru", "krasnaya-romashka.ru"))
    after, _ = fold(events)
    assert {oid: set(v.members) for oid, v in after.items() if v.merged_into is None} == {
        oid: set(v.members) for oid, v in before.items()}
    assert pipeline.accounts["romashka.ru"].waiting_undos == [] and pipeline.refused == []


def test_the_domain_refuses_self_merges_cycles_second_merges_and_unknown_undos(config) -> None:
    rules = config.opportunities
    pipeline, _ = two_companies(config)
    with pytest.raises(ValueError, match="itself"):  # the contract refuses it before anything
        merged("c-0", "romashka.ru", "romashka.ru")
    self_merge = AccountMerge(input_id="c-0", merge_id="c-0", occurred_at=MADE_AT,
                              account=AccountRef(account_id="romashka.ru"), into=AccountRef(account_id="romashka.ru"))
    with pytest.raises(Refused) as refused:  # not a person's correction: raised, to grouping's dead letters
        merge.step(pipeline.accounts["romashka.ru"], "romashka.ru", self_merge, rules)
    assert refused.value.reason == "merge_into_itself"

    def reasons(*outbound) -> list[str]:
        count = len(pipeline.refused)
        pipeline.send(list(outbound))
        return [(r.correction.correction_id, r.reason) for r in pipeline.refused[count:]]

    assert reasons(*merged("c-1", "romashka.ru", "krasnaya-romashka.ru")) == []
    # romashka.ru absorbed krasnaya-romashka.ru: the reverse is a cycle
    assert reasons(*merged("c-2", "krasnaya-romashka.ru", "romashka.ru")) == [("c-2", "merge_cycle")]
    pipeline.feed(touch("c-x", 1, email="ceo@third.ru", job_title="генеральный директор", url=HR))
    assert reasons(*merged("c-3", "third.ru", "romashka.ru")) == []
    # third.ru absorbed romashka.ru, which absorbed the second domain: a longer cycle
    assert reasons(*merged("c-4", "krasnaya-romashka.ru", "third.ru")) == [("c-4", "merge_cycle")]
    assert reasons(*merged("c-5", "fourth.ru", "romashka.ru")) == [("c-5", "already_merged")]
    # romashka.ru was merged into third.ru since; and an undo of a merge nobody made
    assert reasons(*undone("c-6", "c-1", "romashka.ru")) == [("c-6", "merged_since")]
    # An undo of a merge not (yet) known waits for it; refused once the account's touches are a
    # day (correction_grace, event time) past it.
    assert reasons(*undone("c-7", "c-9", "third.ru")) == []
    count = len(pipeline.refused)
    pipeline.feed(touch("c-y", 60 * 24 * 3, email="ceo@third.ru", url=HR))
    assert [(r.correction.correction_id, r.reason) for r in pipeline.refused[count:]] == [("c-7", "unknown_merge")]
    # An absorbed account's opportunities are corrected where they went.
    link = MemberLinked(correction_id="c-10", author="Мария", made_at=MADE_AT, opportunity_id="romashka.ru:hr",
                        person_id="x@romashka.ru")
    assert reasons(*corrections.route(link, SOLUTIONS)) == [("c-10", "account_merged")]
    # Refused corrections changed nothing: the states are the ones the accepted merges left.
    assert pipeline.accounts["third.ru"].absorbed == ["krasnaya-romashka.ru", "romashka.ru"]
    assert pipeline.accounts["krasnaya-romashka.ru"].merged_into.account_id == "romashka.ru"


def test_an_undo_reaches_the_surviving_account_and_an_opportunitys_undo_is_no_merges(config) -> None:
    [out] = merged("c-1", "krasnaya-romashka.ru", "name:красная ромашка")
    assert (out.to, out.key, out.message.into.account_id) == ("accounts", "name:красная ромашка",
                                                              "krasnaya-romashka.ru")
    [out] = undone("c-2", "c-1", "krasnaya-romashka.ru")
    assert out.key == "krasnaya-romashka.ru" and isinstance(out.message, CorrectionInput)
    # The undo of a link (subject: an opportunity) goes to the same account but is not a merge's.
    pipeline, events = two_companies(config)
    pipeline.send(merged("c-1", "romashka.ru", "krasnaya-romashka.ru"))
    assert pipeline.send(undone("c-3", "c-0", "romashka.ru:hr")) == [] and pipeline.refused == []
    assert set(pipeline.accounts["romashka.ru"].merges) == {"c-1"}


def test_a_moved_member_says_the_merge_put_them_in_the_surviving_account(config) -> None:
    pipeline, events = two_companies(config)
    events += pipeline.send(merged("c-1", "romashka.ru", "krasnaya-romashka.ru"))
    views, _ = fold(events)
    petrova = views["romashka.ru:hr"].members["petrova@krasnaya-romashka.ru"]
    assert (petrova.why.account.rule, petrova.why.account.correction_id, petrova.why.account.author) == (
        "merge", "c-1", "Мария")
    assert petrova.why.role is not None  # the rest of why stays the rules'
    elena = views["romashka.ru:hr"].members["elena@romashka.ru"]
    assert elena.why.account.rule == "domain"
