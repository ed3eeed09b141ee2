"""The group score: members' decayed engagement plus breadth, role coverage, departments, recency,
and the stance people set by hand (champions add, blockers subtract)."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.scoring.config import ScoringConfig
from services.scoring.domain.state import MemberState, OpportunityState, TouchRecord
from shared.schemas.roles import BuyingRole
from shared.schemas.scoring import MemberContribution, ScoreBreakdown, Tier


def decay(weight: float, at: datetime, as_of: datetime, half_life: timedelta) -> float:
    """Weight halved every half_life of event time; a touch at or after as_of keeps it whole."""
    if at >= as_of:  # no timedelta(0) and max() per touch: a score decays every touch it holds
        return weight
    return weight * 0.5 ** ((as_of - at) / half_life)


@dataclass(frozen=True)
class MemberEngagement:
    member: MemberState
    engagement: float
    touches: int
    by_kind: dict[str, float]


def member_engagement(member: MemberState, touches: list[TouchRecord], as_of: datetime,
                      config: ScoringConfig) -> MemberEngagement:
    """The member's engagement as of `as_of`: its folded touches and those of `touches` that are
    its own (all the opportunity's touches, or only the member's), decayed by config.half_life."""
    by_kind: dict[str, float] = defaultdict(float)
    if member.folded_at is not None:
        for kind, mass in member.folded.items():
            by_kind[kind] += decay(mass, member.folded_at, as_of, config.half_life)
    count = member.folded_touches
    for touch in touches:
        if touch.person_id == member.person_id:
            by_kind[touch.kind] += decay(touch.weight, touch.at, as_of, config.half_life)
            count += 1
    return MemberEngagement(member, sum(by_kind.values()), count,
                            {k: round(v, 3) for k, v in sorted(by_kind.items()) if v > 0})


def tier_for(score: float, config: ScoringConfig) -> Tier:
    tiers = config.score.tiers
    return "A" if score >= tiers.A else "B" if score >= tiers.B else "C"


def _saturate(value: float, scale: float) -> float:
    """0 at 0, about 63% of the way at scale, approaching 1: diminishing returns."""
    return 1.0 - math.exp(-value / scale)


def _ramp(count: int, target: int) -> float:
    """0 for one (one person or one department is no group), 1 from target on."""
    return min(max(count - 1, 0), target - 1) / (target - 1)


def stance_points(member: MemberState, config: ScoringConfig) -> float:
    """What one member's hand-set stance is worth before the group's limits (0 when unmarked,
    neutral, or marked without influence: medium is the correction's default)."""
    points = config.score.stance
    table = points.champion if member.stance == "champion" else points.blocker if member.stance == "blocker" else None
    return table[member.influence or "medium"] if table is not None else 0.0


def group_stance(members: list[MemberState], config: ScoringConfig) -> float:
    """The strongest champion's points plus every blocker's, no lower than blockers_floor."""
    champions = [stance_points(m, config) for m in members if m.stance == "champion"]
    blockers = sum(stance_points(m, config) for m in members if m.stance == "blocker")
    return (max(champions) if champions else 0.0) + max(blockers, config.score.stance.blockers_floor)


@dataclass(frozen=True)
class Score:
    score: float
    tier: Tier
    breakdown: ScoreBreakdown


def score_opportunity(state: OpportunityState, as_of: datetime, config: ScoringConfig) -> Score:
    sc = config.score
    # Each member's touches, in the state's order: one pass over the touches, not one per member.
    touches_of: dict[str, list[TouchRecord]] = defaultdict(list)
    for touch in state.touches:
        touches_of[touch.person_id].append(touch)
    members = [member_engagement(m, touches_of.get(person_id, []), as_of, config)
               for person_id, m in sorted(state.members.items())]
    engaged = [m for m in members if m.engagement >= sc.engaged_threshold]

    # Each member's engagement saturates on its own before summing: one person's tenth
    # download adds little, a new person's first download adds a lot.
    pooled = sum(sc.member_cap * _saturate(m.engagement, sc.member_cap) for m in members)
    engagement_pts = sc.points.engagement * _saturate(pooled, sc.engagement_scale)
    breadth_pts = sc.points.breadth * _ramp(len(engaged), sc.breadth_target)

    expected = state.expected_roles
    covered = {m.member.role for m in engaged}
    covered_expected = [r for r in expected if r in covered]
    coverage_pts = sc.points.role_coverage * (len(covered_expected) / len(expected) if expected else 0.0)

    departments = sorted({m.member.department for m in engaged})
    departments_pts = sc.points.departments * _ramp(len(departments), sc.departments_target)

    recency = (decay(1.0, state.last_touch_at, as_of, sc.recency_half_life)
               if state.last_touch_at else 0.0)
    recent_weight = sum(t.weight for t in state.touches
                        if t.at > as_of - sc.velocity_window and t.person_id in state.members)
    velocity = min(recent_weight / sc.velocity_target, 1.0)
    recency_pts = sc.points.recency * (recency + velocity) / 2

    stance_pts = group_stance([m.member for m in members], config)

    parts = [round(p, 3) for p in (engagement_pts, breadth_pts, coverage_pts, departments_pts, recency_pts,
                                   stance_pts)]
    # Stance moves a score within the scale: a blocker never makes it negative.
    total = round(min(max(sum(parts), 0.0), 100.0), 3)
    contributions = tuple(
        MemberContribution(
            person_id=m.member.person_id, name=m.member.name, department=m.member.department,
            role=m.member.role, engagement=round(m.engagement, 3), touches=m.touches, by_kind=m.by_kind,
            stance=m.member.stance, influence=m.member.influence, stance_points=stance_points(m.member, config),
        )
        for m in sorted(members, key=lambda m: (-m.engagement, m.member.person_id))
    )
    breakdown = ScoreBreakdown(
        engagement=parts[0], breadth=parts[1], role_coverage=parts[2], departments=parts[3],
        recency=parts[4], stance=parts[5], members=contributions,
        covered_roles=tuple(covered_expected),
        missing_roles=tuple(r for r in expected if r not in covered),
        engaged_members=len(engaged), engaged_departments=tuple(departments),
    )
    return Score(total, tier_for(total, config), breakdown)


def group_roles(state: OpportunityState, people: list[str]) -> tuple[list[BuyingRole], list[BuyingRole]]:
    """(covered, missing) expected roles among the given members, in the profile's order."""
    roles = {state.members[p].role for p in people if p in state.members}
    covered = [r for r in state.expected_roles if r in roles]
    extra = sorted(r for r in roles if r not in state.expected_roles)
    return covered + extra, [r for r in state.expected_roles if r not in roles]
