"""The per-opportunity state machine: `step(state, event, watermark)` -> new state, score, signals.

Decisions that wait for time to pass (group_formed, role_gap, stalled) are timers judged by
the watermark, so they depend only on the log, never on when it is read. Every signal's id
is "<opportunity_id>:<signal>:<n>" and its occurred_at is the event time at which it became
true, so replaying a log gives byte-identical signals.

Scores (and the score, tier and breakdown inside signals) are computed as of the latest of
the opportunity's OWN events, never at the partition's watermark: the watermark at a given
event depends on how other opportunities' events interleave with it on the partition, which
differs between runs (grouping writes from several partitions) and between worker counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from services.scoring.config import ScoringConfig
from services.scoring.domain.score import group_roles, score_opportunity
from services.scoring.domain.state import MemberState, OpportunityState, TouchRecord
from shared.schemas.opportunity import (
    MemberAdded,
    MemberRoleChanged,
    OpportunityCreated,
    TouchAttributed,
)
from shared.schemas.scoring import OpportunityScore, Signal, SignalType

ScoredEvent = OpportunityCreated | MemberAdded | MemberRoleChanged | TouchAttributed


@dataclass(frozen=True)
class Step:
    state: OpportunityState
    scores: tuple[OpportunityScore, ...] = ()
    signals: tuple[Signal, ...] = field(default_factory=tuple)
    changed: bool = True  # False: the event was applied before, the state is the same object


def new_state(event: ScoredEvent, partition: int) -> OpportunityState:
    opportunity_id = event.opportunity_id or event.key()
    return OpportunityState(
        opportunity_id=opportunity_id,
        account_id=event.account.account_id,
        solution=event.solution or opportunity_id.rpartition(":")[2],
        partition=partition,
    )


def step(state: OpportunityState | None, event: ScoredEvent, watermark: datetime, partition: int,
         config: ScoringConfig) -> Step:
    """Apply one opportunity event at the partition's watermark (which already includes it)."""
    if state is None:
        state = new_state(event, partition)
    if event.version <= state.version:
        return Step(state, changed=False)  # already applied: at-least-once delivery, or a replay
    state = state.model_copy(deep=True)
    state.partition = partition
    signals: list[Signal] = []
    # Time passes before the event happens: timers already due fire first, so a touch after
    # a long silence reports stalled, then reactivated. They see the state before the event,
    # as they would have had another opportunity's event fired them (advance), which the
    # interleaving decides.
    signals += _fire_timers(state, watermark, config)
    state.scored_at = max(filter(None, (state.scored_at, event.occurred_at)))
    signals += _apply(state, event, config)
    signals += _fire_timers(state, watermark, config)

    # Folded before scoring, so that the score is a function of the state as stored and a
    # redelivered event can send it again byte for byte (current_score): folded mass decays
    # like the touches it replaced only up to float rounding.
    _fold_old_touches(state, config)
    score = current_score(state, config)
    if state.tier is not None and score.tier != state.tier:
        signals.append(_signal(state, "priority_changed", event.occurred_at, config,
                               (event.event_id,), {"from": state.tier, "to": score.tier}))
    state.tier = score.tier
    _plan(state, config)
    return Step(state, (score,), tuple(signals))


def current_score(state: OpportunityState, config: ScoringConfig) -> OpportunityScore:
    """The score step emitted for the state's version; timers firing since do not change it."""
    current = score_opportunity(state, state.scored_at, config)
    return OpportunityScore(
        opportunity_id=state.opportunity_id, account_id=state.account_id, solution=state.solution,
        version=state.version, as_of=state.scored_at, score=current.score, tier=current.tier,
        breakdown=current.breakdown,
    )


def advance(state: OpportunityState, watermark: datetime, config: ScoringConfig) -> Step:
    """Fire this opportunity's timers that the watermark (moved by another event) has passed."""
    state = state.model_copy(deep=True)
    signals = _fire_timers(state, watermark, config)
    _plan(state, config)
    return Step(state, (), tuple(signals))


def next_due(state: OpportunityState, config: ScoringConfig) -> datetime | None:
    """The earliest watermark at which a timer of this opportunity fires, if any is pending."""
    due = []
    if state.formed_at is None:
        if state.formation_candidate is not None:
            due.append(state.formation_candidate)
    else:
        if not state.role_gap_checked:
            due.append(state.formed_at + config.timers.role_gap_after)
        if state.stalled_since is None and state.last_touch_at is not None:
            due.append(state.last_touch_at + config.timers.stall_after)
    return min(due) if due else None


def _apply(state: OpportunityState, event: ScoredEvent, config: ScoringConfig) -> list[Signal]:
    state.version = event.version
    account = event.account
    state.account_name = account.name or state.account_name
    state.account_owner = account.owner or state.account_owner
    signals: list[Signal] = []
    match event:
        case OpportunityCreated():
            profile = config.default_profile
            state.expected_roles = event.expected_roles or profile.expected_roles
            state.required_roles = event.required_roles or profile.required_roles
        case MemberAdded() | MemberRoleChanged():
            ref = event.member
            previous = state.members.get(ref.person_id)
            state.members[ref.person_id] = MemberState(
                person_id=ref.person_id, name=ref.name or (previous.name if previous else None),
                department=ref.department, role=ref.role,
                **({"folded": previous.folded, "folded_at": previous.folded_at,
                    "folded_touches": previous.folded_touches} if previous else {}),
            )
        case TouchAttributed():
            touch = event.touch
            if any(t.event_id == touch.event_id for t in state.touches):
                return signals  # the same touch attributed again under a new version
            weight = 0.0 if touch.automated else config.weight(touch.kind)
            state.touches.append(TouchRecord(event_id=touch.event_id, person_id=touch.person_id,
                                             kind=touch.kind, at=touch.occurred_at, weight=weight))
            state.touches.sort(key=lambda t: (t.at, t.event_id))
            if weight > 0:
                state.last_touch_at = max(filter(None, (state.last_touch_at, touch.occurred_at)))
                if state.stalled_since is not None:
                    signals.append(_signal(
                        state, "reactivated", touch.occurred_at, config, (touch.event_id,),
                        {"stalled_since": state.stalled_since.isoformat()},
                    ))
                    state.stalled_since = None
    signals += _expansion(state, event.event_id, config)
    return signals


def _fire_timers(state: OpportunityState, watermark: datetime, config: ScoringConfig) -> list[Signal]:
    """Timers the watermark has passed. What their signals carry comes from the opportunity's
    own events only (not which event moved the watermark, nor the watermark itself): which
    message fires them depends on how other opportunities' events interleave."""
    signals: list[Signal] = []
    formation = config.formation
    if state.forming_at is None and state.formed_at is None:
        # Forming is the early, tentative heads-up: it does not wait for the watermark.
        found = _criteria_met(state, formation.forming_people, 1, config)
        if found is not None:
            at, touches = found
            state.forming_at = at
            signals.append(_signal(state, "group_forming", at, config, touches,
                                   {"people": len(_engaged_people(state))}))
    if state.formed_at is None:
        # Formed is a decision held until the watermark passes the moment the criteria first
        # held, so touches delivered late within the allowed lateness join the group it
        # announces and arrival order inside that lateness cannot change it.
        found = _criteria_met(state, formation.min_people, formation.min_departments, config)
        state.formation_candidate = found[0] if found else None
        if found is not None and watermark >= found[0]:
            at, touches = found
            state.formed_at = at
            state.formation_candidate = None
            group = _engaged_people(state)
            covered, _ = group_roles(state, group)
            state.announced_members = group
            state.announced_roles = covered
            signals.append(_signal(state, "group_formed", at, config, touches, {"people": len(group)}))
    if state.formed_at is None:
        return signals

    if not state.role_gap_checked:
        due = state.formed_at + config.timers.role_gap_after
        if watermark >= due:
            state.role_gap_checked = True
            group = _engaged_people(state)
            roles = {state.members[p].role for p in group}
            missing = [r for r in state.required_roles if r not in roles]
            if missing:
                # Time passing triggers it: no event of the opportunity does.
                signals.append(_signal(state, "role_gap", due, config, (),
                                       {"missing_required": ",".join(missing), "due_at": due.isoformat()}))
    if state.stalled_since is None and state.last_touch_at is not None:
        due = state.last_touch_at + config.timers.stall_after
        if watermark >= due:
            state.stalled_since = due
            last = [t.event_id for t in state.touches if t.at == state.last_touch_at and t.weight > 0]
            signals.append(_signal(state, "stalled", due, config, last[-1:],
                                   {"last_touch_at": state.last_touch_at.isoformat(), "due_at": due.isoformat()}))
    return signals


def _expansion(state: OpportunityState, event_id: str, config: ScoringConfig) -> list[Signal]:
    if state.formed_at is None:
        return []
    group = _engaged_people(state)
    covered, _ = group_roles(state, group)
    new_people = [p for p in group if p not in state.announced_members]
    new_roles = [r for r in covered if r not in state.announced_roles]
    if not new_people and not new_roles:
        return []
    state.announced_members = sorted({*state.announced_members, *new_people})
    state.announced_roles = [*state.announced_roles, *new_roles]
    return [_signal(state, "group_expanded", _event_time(state, event_id), config,
                    (event_id,), {"new_members": ",".join(new_people), "new_roles": ",".join(new_roles)})]


def _event_time(state: OpportunityState, event_id: str) -> datetime:
    """When the group expanded: the touch's time, else (a role change) the last touch's."""
    for touch in state.touches:
        if touch.event_id == event_id:
            return touch.at
    return state.last_touch_at or state.scored_at


def _engaged_people(state: OpportunityState) -> list[str]:
    """Members who have engaged at all (a positive touch), sorted: the group as known."""
    touched = {t.person_id for t in state.touches if t.weight > 0}
    return sorted(p for p, m in state.members.items()
                  if p in touched or any(v > 0 for v in m.folded.values()))


def _criteria_met(state: OpportunityState, people: int, departments: int,
                  config: ScoringConfig) -> tuple[datetime, tuple[str, ...]] | None:
    """The earliest touch time at which the window ending there held enough people and
    departments, with the latest touch of each person in that window; None if it never did."""
    window = config.formation.window
    touches = [t for t in state.touches if t.weight > 0 and t.person_id in state.members]
    start = 0
    for end, last in enumerate(touches):
        while touches[start].at < last.at - window:
            start += 1
        latest: dict[str, TouchRecord] = {}
        for t in touches[start:end + 1]:
            latest[t.person_id] = t
        depts = {state.members[p].department for p in latest}
        if len(latest) >= people and len(depts) >= departments:
            return last.at, tuple(t.event_id for t in sorted(latest.values(), key=lambda t: (t.at, t.event_id)))
    return None


def _fold_old_touches(state: OpportunityState, config: ScoringConfig) -> None:
    """Bound the state: touches past the retention horizon become decayed mass per member.

    Only the formation decision needs single touches, and only within its window, which the
    horizon covers (checked by the config). The horizon follows the opportunity's own latest
    event, not the watermark, so that what is folded (and the float rounding it brings) does
    not depend on other opportunities' events. Less the lateness, it is never later than a
    horizon at the watermark (which is at least that event's time minus the lateness), so a
    formation still waiting for the watermark keeps its window's touches."""
    horizon = state.scored_at - config.timers.allowed_lateness - config.retain_touches
    old = [t for t in state.touches if t.at < horizon]
    if not old:
        return
    state.touches = [t for t in state.touches if t.at >= horizon]
    half_life = config.half_life
    for person_id, member in state.members.items():
        mine = [t for t in old if t.person_id == person_id]
        if not mine:
            continue
        folded: dict = {}
        if member.folded_at is not None:
            for kind, mass in member.folded.items():
                folded[kind] = mass * 0.5 ** ((horizon - member.folded_at) / half_life)
        for t in mine:
            folded[t.kind] = folded.get(t.kind, 0.0) + t.weight * 0.5 ** ((horizon - t.at) / half_life)
        member.folded = folded
        member.folded_at = horizon
        member.folded_touches += len(mine)


def _plan(state: OpportunityState, config: ScoringConfig) -> None:
    if state.formed_at is None:
        found = _criteria_met(state, config.formation.min_people, config.formation.min_departments, config)
        state.formation_candidate = found[0] if found else None


def _signal(state: OpportunityState, kind: SignalType, at: datetime, config: ScoringConfig,
            triggers: Iterable[str], detail: dict) -> Signal:
    number = state.signal_counts.get(kind, 0) + 1
    state.signal_counts[kind] = number
    # As of the opportunity's own latest event, or the moment the signal became true when that
    # is later (a timer: stalled shows the score decayed to the moment it stalled); never the
    # watermark that happened to fire it.
    as_of = max(filter(None, (state.scored_at, at)))
    current = score_opportunity(state, as_of, config)
    group = _engaged_people(state)
    covered, missing = group_roles(state, group)
    in_group = set(group)
    return Signal(
        signal_id=f"{state.opportunity_id}:{kind}:{number}",
        signal=kind, opportunity_id=state.opportunity_id, account_id=state.account_id,
        account_name=state.account_name, account_owner=state.account_owner, solution=state.solution,
        occurred_at=at, score=current.score, tier=current.tier,
        members=tuple(m for m in current.breakdown.members if m.person_id in in_group),
        covered_roles=tuple(covered), missing_roles=tuple(missing),
        trigger_event_ids=tuple(dict.fromkeys(triggers)), breakdown=current.breakdown, detail=detail,
    )
