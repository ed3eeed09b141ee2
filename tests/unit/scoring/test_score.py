"""Group score: decay by event time, saturation, breadth; Арготрубосбыт above Газмяснефть."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.scoring.config import load_config
from services.scoring.domain.score import decay, score_opportunity, tier_for
from services.scoring.domain.state import MemberState, OpportunityState, TouchRecord
from shared.schemas.roles import BuyingRole, Department
from tests.unit.scoring.stories import Story, argotrubosbyt, day, gazmyasneft, last_score, replay, signals_of

pytestmark = pytest.mark.unit
CONFIG = load_config()


def test_decay_halves_every_half_life_of_event_time() -> None:
    hl = timedelta(days=14)
    assert decay(4.0, day(0), day(0), hl) == 4.0
    assert decay(4.0, day(0), day(14), hl) == pytest.approx(2.0)
    assert decay(4.0, day(0), day(28), hl) == pytest.approx(1.0)
    # A touch after the evaluation time (inside the allowed lateness) is not inflated.
    assert decay(4.0, day(1), day(0), hl) == 4.0


def _state(touches: list[tuple[str, str, float]],
           members: dict[str, tuple[Department, BuyingRole]]) -> OpportunityState:
    return OpportunityState(
        opportunity_id="x.ru:hr", account_id="x.ru", solution="hr", partition=0,
        expected_roles=CONFIG.default_profile.expected_roles,
        members={p: MemberState(person_id=p, department=d, role=r) for p, (d, r) in members.items()},
        touches=[TouchRecord(event_id=f"t{i}", person_id=p, kind=k, at=day(at), weight=CONFIG.weight(k))
                 for i, (p, k, at) in enumerate(touches)],
        last_touch_at=day(max(at for _, _, at in touches)),
    )


def test_score_is_the_sum_of_its_breakdown_and_decays_with_the_watermark() -> None:
    state = _state([("a", "download", 0), ("b", "webinar_attended", 1)],
                   {"a": (Department.hr, BuyingRole.initiator), "b": (Department.it, BuyingRole.technical_validator)})
    fresh = score_opportunity(state, day(1), CONFIG)
    b = fresh.breakdown
    parts = b.engagement + b.breadth + b.role_coverage + b.departments + b.recency
    assert fresh.score == pytest.approx(parts, abs=1e-3)
    assert b.engaged_members == 2 and set(b.engaged_departments) == {Department.hr, Department.it}
    assert b.covered_roles == (BuyingRole.initiator, BuyingRole.technical_validator)
    assert b.missing_roles == (BuyingRole.budget_holder, BuyingRole.decision_maker)
    member_a = next(m for m in b.members if m.person_id == "a")
    assert member_a.touches == 1 and member_a.by_kind == {"download": pytest.approx(3 * 0.5 ** (1 / 14), abs=1e-3)}
    later = score_opportunity(state, day(60), CONFIG)
    assert later.score < fresh.score
    assert later.breakdown.engaged_members == 0  # both decayed below the engaged threshold


def test_one_persons_tenth_download_adds_less_than_a_new_persons_first() -> None:
    members = {"a": (Department.it, BuyingRole.technical_validator), "b": (Department.it, BuyingRole.influencer)}
    nine = [("a", "download", 0)] * 9
    more_of_a = score_opportunity(_state([*nine, ("a", "download", 0)], members), day(0), CONFIG)
    new_person = score_opportunity(_state([*nine, ("b", "download", 0)], members), day(0), CONFIG)
    assert new_person.score > more_of_a.score


def test_argotrubosbyt_four_moderate_people_outrank_gazmyasneft_one_very_active_person() -> None:
    story = Story()
    gaz = gazmyasneft(story)
    argo = argotrubosbyt(story)
    outputs = replay(story.in_time_order(), CONFIG)
    gaz_score, argo_score = last_score(outputs, gaz), last_score(outputs, argo)
    assert argo_score.score > gaz_score.score
    assert argo_score.tier == "A" and gaz_score.tier != "A"
    # Газмяснефть's one person out-engages any single Арготрубосбыт member: it is breadth that wins.
    top_gaz = gaz_score.breakdown.members[0].engagement
    assert all(m.engagement < top_gaz for m in argo_score.breakdown.members)
    assert gaz_score.breakdown.breadth == 0 and gaz_score.breakdown.departments == 0
    assert argo_score.breakdown.engaged_members == 4


def test_a_single_person_never_forms_a_group_however_active() -> None:
    story = Story()
    gaz = gazmyasneft(story)
    for i in range(40):
        story.touch(gaz, "p.kuznetsov", "demo_requested", day(12 + i * 0.1))
    outputs = replay(story.in_time_order(), CONFIG)
    assert signals_of(outputs, gaz, "group_forming") == []
    assert signals_of(outputs, gaz, "group_formed") == []
    assert all(s.tier != "A" for s in outputs if s.type == "score")


def test_tiers_follow_the_thresholds() -> None:
    assert [tier_for(s, CONFIG) for s in (0, 34.9, 35, 59.9, 60, 100)] == ["C", "C", "B", "B", "A", "A"]
