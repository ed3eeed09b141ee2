"""Hand-set facts in the score: champion and blocker with influence, members removed by hand,
and the role_blocked risk signal (issue 16)."""

from __future__ import annotations

import pytest

from services.scoring.config import load_config
from shared.schemas.roles import BuyingRole, Department
from tests.unit.scoring.stories import Story, day, last_score, replay, signals_of

pytestmark = pytest.mark.unit
CONFIG = load_config()
REQUIRED = (BuyingRole.initiator, BuyingRole.budget_holder)


def group(story: Story) -> str:
    opp = story.opportunity("x.ru", "X", required=REQUIRED, expected=REQUIRED)
    story.touch(opp, "hr", "download", day(0), department=Department.hr, role=BuyingRole.initiator)
    story.touch(opp, "fin", "download", day(1), department=Department.finance, role=BuyingRole.budget_holder)
    story.touch(opp, "it", "download", day(2), department=Department.it, role=BuyingRole.technical_validator)
    return opp


def test_a_champion_adds_and_a_blocker_subtracts_by_influence() -> None:
    plain = Story()
    opp = group(plain)
    # Neutral at the same moments: the same as_of, so the same decay.
    plain.stance(opp, "hr", day(2, 1), "neutral", "high", "c-1")
    plain.stance(opp, "it", day(2, 2), "neutral", "low", "c-2")
    base = last_score(replay(plain.in_time_order(), CONFIG), opp)
    assert base.breakdown.stance == 0

    marked = Story()
    group(marked)
    marked.stance(opp, "hr", day(2, 1), "champion", "high", "c-1")
    marked.stance(opp, "it", day(2, 2), "blocker", "low", "c-2")
    score = last_score(replay(marked.in_time_order(), CONFIG), opp)
    assert score.breakdown.stance == 8 - 2
    assert score.score == pytest.approx(base.score + 6, abs=0.002)
    by_person = {m.person_id: m for m in score.breakdown.members}
    assert (by_person["hr@x.ru"].stance, by_person["hr@x.ru"].influence, by_person["hr@x.ru"].stance_points) == (
        "champion", "high", 8)
    assert by_person["it@x.ru"].stance_points == -2 and by_person["fin@x.ru"].stance is None


def test_the_strongest_champion_counts_and_blockers_stop_at_the_floor() -> None:
    story = Story()
    opp = group(story)
    story.stance(opp, "hr", day(3), "champion", "medium", "c-1")
    story.stance(opp, "fin", day(3, 1), "champion", "high", "c-2")
    assert last_score(replay(story.in_time_order(), CONFIG), opp).breakdown.stance == 8
    story.stance(opp, "hr", day(3, 2), "blocker", "high", "c-3")
    story.stance(opp, "fin", day(3, 3), "blocker", "high", "c-4")
    story.stance(opp, "it", day(3, 4), "blocker", "high", "c-5")
    assert last_score(replay(story.in_time_order(), CONFIG), opp).breakdown.stance == CONFIG.score.stance.blockers_floor


def test_a_required_role_held_only_by_a_blocker_is_a_risk_announced_once() -> None:
    story = Story()
    opp = group(story)
    story.stance(opp, "fin", day(3), "blocker", "high", "c-1")
    story.stance(opp, "fin", day(3, 1), "blocker", "low", "c-2")  # still the same fact
    outputs = replay(story.in_time_order(), CONFIG)
    [risk] = signals_of(outputs, opp, "role_blocked")
    assert risk.signal_id.startswith(f"{opp}:role_blocked:budget_holder:")
    assert risk.detail == {"role": "budget_holder", "blockers": "fin@x.ru"}
    assert risk.occurred_at == day(3) and risk.trigger_event_ids == (f"{opp}@8",)
    assert replay(story.in_time_order(), CONFIG) == outputs  # the same facts under the same ids
    # A blocker who is not the only holder of a required role is no risk of this kind.
    other = Story()
    opp = group(other)
    other.touch(opp, "cfo", "download", day(2, 5), department=Department.finance, role=BuyingRole.budget_holder)
    other.stance(opp, "fin", day(3), "blocker", "high")
    other.stance(opp, "it", day(3, 1), "blocker", "high")  # not a required role
    assert signals_of(replay(other.in_time_order(), CONFIG), opp, "role_blocked") == []


def test_a_member_removed_by_hand_counts_as_if_never_attributed() -> None:
    removed = Story()
    opp = group(removed)
    removed.touch(opp, "ops", "download", day(2, 3), department=Department.operations)
    removed.remove(opp, "ops", day(2, 4))
    never = Story()
    group(never)
    for story in (removed, never):  # the same last event: scored as of the same moment
        story.stance(opp, "hr", day(2, 5), "neutral", "low", "c-9")
    a = last_score(replay(removed.in_time_order(), CONFIG), opp)
    b = last_score(replay(never.in_time_order(), CONFIG), opp)
    assert "ops@x.ru" not in {m.person_id for m in a.breakdown.members}
    assert a.breakdown.members == b.breakdown.members
    assert a.breakdown.model_dump(exclude={"recency"}) == b.breakdown.model_dump(exclude={"recency"})
