"""Messages -> rows: what each message means for each table (no servers)."""

from __future__ import annotations

import math

import pytest

from services.projection.domain import NotApplicable, Row, account_scope, map_message, reduce_rows
from shared.schemas.opportunity import (
    AccountRef,
    AccountTouch,
    MemberAdded,
    MemberRemoved,
    MemberRoleChanged,
    OpportunityCreated,
    OpportunityMerged,
)
from shared.schemas.roles import BuyingRole
from shared.schemas.scoring import OpportunityScore, Signal
from tests.unit.projection.stories import ELENA, Log, day, krasnaya_romashka

pytestmark = pytest.mark.unit


def _story() -> tuple[Log, str]:
    log = Log("u1")
    return log, krasnaya_romashka(log)


def _of(rows: list[Row], kind: str) -> list[dict]:
    return [r.values for r in rows if r.kind == kind]


def _first(log: Log, type_) -> object:
    return next(m for _, _, m in log.messages if isinstance(m, type_))


def test_created_sets_the_profile_and_the_account():
    log, opp = _story()
    rows = map_message(_first(log, OpportunityCreated))
    (created,) = _of(rows, "opportunity_created")
    assert created["opportunity_id"] == opp and created["solution"] == "hr"
    assert created["expected_roles"] == ["initiator", "technical_validator", "budget_holder", "decision_maker"]
    assert created["created_at"] == day(0)
    (account,) = _of(rows, "account_ref")
    assert account["name"] == "Красная ромашка" and account["domains"] == ["romashka-u1.ru"]
    assert _of(rows, "opportunity_event") == [{"opportunity_id": opp, "account_id": "romashka-u1.ru",
                                              "solution": "hr", "version": 1, "last_event_id": f"{opp}@1"}]


def test_member_added_makes_a_member_and_a_contact():
    log, opp = _story()
    rows = map_message(_first(log, MemberAdded))
    (member,) = _of(rows, "member")
    assert (member["person_id"], member["role"], member["department"]) == (
        "elena.sokolova@romashka-u1.ru", "initiator", "hr")
    assert member["version"] == 2 and member["joined_at"] == day(0)
    (contact,) = _of(rows, "contact_ref")
    assert contact["job_title"] == "HR-менеджер" and contact["ref_event_id"] == f"{opp}@2"
    (seen,) = _of(rows, "contact_seen")
    assert seen["account_id"] == "romashka-u1.ru"


def test_role_change_carries_the_new_role_with_its_version():
    log, opp = _story()
    log.change_role(opp, ELENA, BuyingRole.decision_maker, day(20))
    change = _first(log, MemberRoleChanged)
    (member,) = _of(map_message(change), "member")
    assert member["role"] == "decision_maker" and member["role_source"] == "manual"
    assert member["version"] == change.version


def test_touches_are_scoped_to_their_opportunity_or_their_account():
    log, opp = _story()
    touches = [r for _, _, m in log.messages for r in map_message(m) if r.kind == "touch"]
    attributed = [t.values for t in touches if t.values["opportunity_id"] == opp]
    assert len(attributed) == 7 and {t["scope"] for t in attributed} == {opp}
    (account_level,) = [t.values for t in touches if t.values["opportunity_id"] is None]
    assert account_level["scope"] == account_scope("romashka-u1.ru") and account_level["url"] == "/careers"
    assert not _of(map_message(_first(log, AccountTouch)), "opportunity_event")


def test_score_updates_the_opportunity_and_keeps_history():
    log, opp = _story()
    score = [m for _, _, m in log.messages if isinstance(m, OpportunityScore)][-1]
    rows = map_message(score)
    (current,) = _of(rows, "opportunity_score")
    assert (current["score"], current["tier"], current["score_version"]) == (81.5, "A", score.version)
    assert [m["person_id"] for m in current["breakdown"]["members"]][0] == "elena.sokolova@romashka-u1.ru"
    (history,) = _of(rows, "score_history")
    assert (history["opportunity_id"], history["as_of"]) == (opp, day(9))


def test_a_score_carries_the_lifecycle_recomputed_over_the_full_touch_set():
    """formed_at, status and stalled_since come from the latest score: a signal keeps the moment
    it was announced at, which depends on the order touches arrived in (a late touch corrects
    formed_at only in the next score), so the projection would differ between runs."""
    log, _ = _story()
    score = [m for _, _, m in log.messages if isinstance(m, OpportunityScore)][-1]
    corrected = score.model_copy(update={"status": "stalled", "formed_at": day(3), "stalled_since": day(8)})
    (current,) = _of(map_message(corrected), "opportunity_score")
    assert (current["score_status"], current["score_formed_at"], current["score_stalled_since"]) == (
        "stalled", day(3), day(8))


def test_signal_makes_a_stub_so_it_can_arrive_first():
    log, opp = _story()
    signal = [m for _, _, m in log.messages if isinstance(m, Signal)][-1]
    rows = map_message(signal)
    assert _of(rows, "opportunity_stub") == [{"opportunity_id": opp, "account_id": "romashka-u1.ru",
                                             "solution": "hr"}]
    (row,) = _of(rows, "signal")
    assert row["signal"] == "group_formed" and len(row["members"]) == 4


def test_solution_is_taken_from_the_opportunity_id_when_missing():
    log, opp = _story()
    event = _first(log, MemberAdded).model_copy(update={"solution": None})
    assert _of(map_message(event), "member")[0]["opportunity_id"] == opp
    assert _of(map_message(event), "opportunity_event")[0]["solution"] == "hr"


def test_an_opportunity_event_without_opportunity_is_not_applicable():
    log, _ = _story()
    event = _first(log, MemberAdded).model_copy(update={"opportunity_id": None})
    with pytest.raises(NotApplicable) as err:
        map_message(event)
    assert err.value.reason == "no_opportunity"


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_a_score_that_is_not_a_number_is_not_applicable(value):
    log, _ = _story()
    score = [m for _, _, m in log.messages if isinstance(m, OpportunityScore)][-1]
    with pytest.raises(NotApplicable) as err:
        map_message(score.model_copy(update={"score": value}))
    assert err.value.reason == "invalid_value" and "score" in err.value.detail


def test_stage_change_sets_the_stage_and_keeps_history():
    log, opp = _story()
    log.stage(opp, "won", "won", day(40), amount=1_200_000)
    rows = map_message(log.messages[-1][2])
    (stage,) = _of(rows, "opportunity_stage")
    assert (stage["stage"], stage["outcome"], stage["stage_author"]) == ("won", "won", "crm")
    (deal,) = _of(rows, "opportunity_deal")
    assert (deal["amount"], deal["deal_at"]) == (1_200_000, day(40))
    (history,) = _of(rows, "stage_change")
    assert history["changed_at"] == day(40)


def test_a_v1_crm_stage_name_is_mapped_onto_the_funnel_and_kept():
    log, opp = _story()
    log.stage(opp, "Qualified", "open", day(20))
    (stage,) = _of(map_message(log.messages[-1][2]), "opportunity_stage")
    assert (stage["stage"], stage["crm_stage"]) == ("warm", "Qualified")
    log.stage(opp, "some-crm-stage", "open", day(21))
    (stage,) = _of(map_message(log.messages[-1][2]), "opportunity_stage")
    assert (stage["stage"], stage["crm_stage"]) == ("some-crm-stage", "some-crm-stage")


def test_an_account_merge_marks_the_absorbed_opportunity_and_its_undo_clears_it():
    account = AccountRef(account_id="name:красная ромашка", name="Красная ромашка")

    def merged(version: int, into: str | None) -> OpportunityMerged:
        oid = "name:красная ромашка:hr"
        return OpportunityMerged(event_id=f"{oid}@{version}", opportunity_id=oid, solution="hr", account=account,
                                 version=version, occurred_at=day(1),
                                 merged_into=into, merge_id="c-1")

    (row,) = _of(map_message(merged(4, "romashka.ru:hr")), "opportunity_merge")
    assert row == {"opportunity_id": "name:красная ромашка:hr", "account_id": "name:красная ромашка",
                   "solution": "hr", "merged_into": "romashka.ru:hr", "merge_version": 4}
    # In one batch the later event wins, whichever order they come in: the undo.
    rows = [r for m in (merged(5, None), merged(4, "romashka.ru:hr")) for r in map_message(m)]
    (final,) = reduce_rows(rows)["opportunity_merge"]
    assert final["merged_into"] is None and final["merge_version"] == 5


def test_a_removed_member_is_a_removal_row_at_its_version():
    log, opp = _story()
    added = _first(log, MemberAdded)
    removed = MemberRemoved(**{**added.model_dump(exclude={"type"}), "event_id": f"{opp}@40", "version": 40},
                            correction_id="c-2", author="Мария")
    assert _of(map_message(removed), "member_removed") == [
        {"opportunity_id": opp, "person_id": added.member.person_id, "version": 40}]
    assert _of(map_message(removed), "member") == []
