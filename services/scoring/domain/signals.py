"""The per-opportunity state machine: facts, their signals and the scores (docs/time.md).

    step(state, event, now, wall, partition, config)  one opportunity event applied
    advance(state, now, wall, config)                 time alone moved: due timers fire

`now` is the partition's clock after the message (PartitionClock.now: the latest event time,
or the clock ticks grouping writes into the log when it is quiet); `wall` is the log's wall
clock (record timestamps and ticks). Both come from the log, never from this process's own
clock, so replaying a log gives the same facts, ids and scores.

A fact is decided when the message that makes it true is processed, with no hold for late
data, and announced once under its own id:

    group_forming     <opp>:group_forming
    group_formed      <opp>:group_formed
    group_expanded    <opp>:group_expanded:<digest of the people and roles it adds>
    role_gap          <opp>:role_gap                     (formed_at + timers.role_gap_after)
    stalled           <opp>:stalled:<since>              (last touch + timers.stall_after)
    reactivated       <opp>:reactivated:<since>          (the touch that ends that stall)
    priority_changed  <opp>:priority_changed:<as_of>:<tier>
    role_blocked      <opp>:role_blocked:<role>:<digest of the blockers holding it>
                      (a required role held only by members marked blocker by hand)

An opportunity whose account was merged into another (opportunity_merged) announces nothing
and fires no timer while merged: its group lives on in the surviving opportunity.

Late touches correct the record instead of announcing again: formed_at and forming_at are
recomputed over the full touch set (the next score carries them), a stall the touch shows
was never one moves or ends. A redelivered message therefore re-emits byte-identical
outputs, and sinks deduplicate them by id and by (version, as_of).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from services.scoring.config import ScoringConfig
from services.scoring.domain.score import group_roles, score_opportunity
from services.scoring.domain.state import MemberState, OpportunityState, TouchRecord
from shared.schemas.opportunity import (
    MemberAdded,
    MemberRemoved,
    MemberRoleChanged,
    MemberStanceChanged,
    OpportunityCreated,
    OpportunityMerged,
    TouchAttributed,
)
from shared.schemas.scoring import Lifecycle, OpportunityScore, Signal, SignalType

ScoredEvent = (OpportunityCreated | MemberAdded | MemberRoleChanged | MemberRemoved | MemberStanceChanged
               | TouchAttributed | OpportunityMerged)


@dataclass(frozen=True)
class Step:
    state: OpportunityState
    outputs: tuple[OpportunityScore | Signal, ...] = ()  # in the order they were decided
    changed: bool = True  # False: the event was applied before, the state is the same object

    @property
    def scores(self) -> list[OpportunityScore]:
        return [o for o in self.outputs if isinstance(o, OpportunityScore)]

    @property
    def signals(self) -> list[Signal]:
        return [o for o in self.outputs if isinstance(o, Signal)]


@dataclass
class _Out:
    """What one step emits, and the log's wall clock that marks signals as history."""

    wall: datetime | None
    items: list[OpportunityScore | Signal] = field(default_factory=list)


def new_state(event: ScoredEvent, partition: int) -> OpportunityState:
    opportunity_id = event.opportunity_id or event.key()
    return OpportunityState(
        opportunity_id=opportunity_id,
        account_id=event.account.account_id,
        solution=event.solution or opportunity_id.rpartition(":")[2],
        partition=partition,
    )


def step(state: OpportunityState | None, event: ScoredEvent, now: datetime, wall: datetime | None,
         partition: int, config: ScoringConfig) -> Step:
    """Apply one opportunity event; `now` already includes the event's own time."""
    if state is None:
        state = new_state(event, partition)
    if event.version <= state.version:
        return Step(state, changed=False)  # already applied: at-least-once delivery, or a replay
    state = state.fork()
    state.partition = partition
    out = _Out(wall)
    # Time passes before the event happens: what was due before it fires first, so a touch
    # after a long silence reports stalled, then reactivated. No rescore: the event's own
    # score supersedes it at once.
    _fire_timers(state, min(now, event.occurred_at), config, out, rescore=False)
    state.scored_at = max(filter(None, (state.scored_at, event.occurred_at)))
    _apply(state, event, now, config, out)
    if state.merged_into is None:  # an absorbed opportunity's group lives on in the surviving one
        _decide(state, event.event_id, config, out)
        _risks(state, event, config, out)
    _fold_old_touches(state, config)
    # As of the latest moment already scored: a late event never moves the priority back.
    _emit_score(state, max(filter(None, (state.scored_at, state.score_as_of))), config, out)
    _fire_timers(state, now, config, out)
    _hold_rescores(state, now, wall, config)
    return Step(state, tuple(out.items))


def advance(state: OpportunityState, now: datetime, wall: datetime | None, config: ScoringConfig) -> Step:
    """Fire this opportunity's timers that the clock (moved by another message) has passed."""
    state = state.fork()
    out = _Out(wall)
    _fire_timers(state, now, config, out)
    _hold_rescores(state, now, wall, config)
    return Step(state, tuple(out.items))


def current_score(state: OpportunityState, config: ScoringConfig) -> OpportunityScore:
    """The latest score the state sent (as of score_as_of), computed again."""
    return _score(state, state.score_as_of or state.scored_at, config)


def next_due(state: OpportunityState, config: ScoringConfig) -> datetime | None:
    """The earliest clock reading at which a timer of this opportunity fires, if any is pending."""
    due = [at for at, _ in _timers(state, config)]
    rescore = _next_rescore(state, config)
    if rescore is not None:
        due.append(rescore)
    return min(due) if due else None


def status_at(state: OpportunityState, as_of: datetime) -> Lifecycle:
    if state.stalled_since is not None and state.stalled_since <= as_of:
        return "stalled"
    return "formed" if state.formed_at is not None else "forming"


def _apply(state: OpportunityState, event: ScoredEvent, now: datetime, config: ScoringConfig, out: _Out) -> None:
    state.version = event.version
    account = event.account
    state.account_name = account.name or state.account_name
    state.account_owner = account.owner or state.account_owner
    match event:
        case OpportunityCreated():
            profile = config.default_profile
            state.expected_roles = event.expected_roles or profile.expected_roles
            state.required_roles = event.required_roles or profile.required_roles
        case MemberAdded() | MemberRoleChanged() | MemberStanceChanged():
            ref = event.member
            previous = state.members.get(ref.person_id)
            state.members[ref.person_id] = MemberState(
                # A sealed name (docs/privacy.md) stays sealed: alerts, CRMs and the projection open it.
                person_id=ref.person_id, name=ref.name or (previous.name if previous else None),
                department=ref.department, role=ref.role, stance=ref.stance, influence=ref.influence,
                **({"folded": previous.folded, "folded_at": previous.folded_at,
                    "folded_touches": previous.folded_touches} if previous else {}),
            )
        case OpportunityMerged():
            state.merged_into = event.merged_into
        case MemberRemoved():
            _remove_member(state, event.member.person_id)
            if event.erased:
                _forget_facts_of(state, event.member.person_id)
        case TouchAttributed():
            touch = event.touch
            if any(t.event_id == touch.event_id for t in state.touches):
                return  # the same touch attributed again under a new version
            weight = 0.0 if touch.automated else config.weight(touch.kind)
            state.touches.append(TouchRecord(event_id=touch.event_id, person_id=touch.person_id,
                                             kind=touch.kind, at=touch.occurred_at, weight=weight))
            state.touches.sort(key=lambda t: (t.at, t.event_id))
            if weight > 0:
                state.last_touch_at = max(filter(None, (state.last_touch_at, touch.occurred_at)))
                _touch_during_stall(state, touch.event_id, touch.occurred_at, now, config, out)


def _remove_member(state: OpportunityState, person_id: str) -> None:
    """A member taken out by hand leaves no trace: their touches stop counting, as if grouping
    had never attributed them (a rebuild that reads the unlink first never does). Facts already
    announced (formed_at) stay: a group that formed did form."""
    state.members.pop(person_id, None)
    removed = [t for t in state.touches if t.person_id == person_id and t.weight > 0]
    state.touches = [t for t in state.touches if t.person_id != person_id]
    if any(t.at == state.last_touch_at for t in removed):
        remaining = [t.at for t in state.touches if t.weight > 0]
        folded = any(m.folded for m in state.members.values())
        # Without single touches left, the older folded ones still date activity no later than this.
        state.last_touch_at = max(remaining) if remaining else (state.last_touch_at if folded else None)


def _forget_facts_of(state: OpportunityState, person_id: str) -> None:
    """An erased person (docs/privacy.md), beyond a removal by hand: the group is as if they had
    never been in it, so the formation facts are found again over what is left (_decide runs
    next; what was announced is not announced again). When folded touches hold part of the
    history, which no window can be recomputed from, the facts' times stay as they were."""
    state.announced_members = [p for p in state.announced_members if p != person_id]
    if not any(m.folded_touches for m in state.members.values()):
        state.forming_at = state.formed_at = None


def _risks(state: OpportunityState, event: ScoredEvent, config: ScoringConfig, out: _Out) -> None:
    """role_blocked: a required role whose every holder is marked blocker, announced once per
    role and set of blockers (the same people blocking again is the same fact)."""
    if not isinstance(event, MemberAdded | MemberRoleChanged | MemberStanceChanged | MemberRemoved):
        return
    for role in state.required_roles:
        holders = sorted(p for p, m in state.members.items() if m.role is role)
        if not holders or any(state.members[p].stance != "blocker" for p in holders):
            continue
        fact = f"{role}:{hashlib.sha1('|'.join(holders).encode()).hexdigest()[:12]}"
        if fact in state.announced_blocked:
            continue
        state.announced_blocked.append(fact)
        _signal(state, "role_blocked", f"role_blocked:{fact}", event.occurred_at, config, out, (event.event_id,),
                {"role": role.value, "blockers": ",".join(holders)})


def _touch_during_stall(state: OpportunityState, event_id: str, at: datetime, now: datetime,
                        config: ScoringConfig, out: _Out) -> None:
    """A touch that arrives while the group is stalled ends the stall if it makes the group
    active as of now; a late touch that does not only corrects when the stall began."""
    since = state.stalled_since
    if since is None or state.last_touch_at is None:
        return
    due = state.last_touch_at + config.timers.stall_after
    if due > now:
        state.stalled_since = None
        _signal(state, "reactivated", f"reactivated:{_stamp(since)}", max(at, since), config, out,
                (event_id,), {"stalled_since": since.isoformat()})
    else:
        state.stalled_since = due


def _decide(state: OpportunityState, event_id: str, config: ScoringConfig, out: _Out) -> None:
    """Formation facts over the full touch set, announced the first time they hold."""
    formation = config.formation
    # The earliest moment known: a late touch moves it back; folding a formation window away
    # (touches older than retain_touches) never moves it forward.
    forming = _criteria_met(state, formation.forming_people, 1, config)
    if forming is not None:
        state.forming_at = min(filter(None, (state.forming_at, forming[0])))
        if not state.forming_announced:
            state.forming_announced = True
            _signal(state, "group_forming", "group_forming", forming[0], config, out, forming[1],
                    {"people": len(_engaged_people(state))})
    formed = _criteria_met(state, formation.min_people, formation.min_departments, config)
    if formed is not None:
        state.formed_at = min(filter(None, (state.formed_at, formed[0])))
        if not state.formed_announced:
            state.formed_announced = True
            group = _engaged_people(state)
            state.announced_members = group
            state.announced_roles = group_roles(state, group)[0]
            _signal(state, "group_formed", "group_formed", formed[0], config, out, formed[1],
                    {"people": len(group)})
            return
    if state.formed_announced:
        _expansion(state, event_id, config, out)


def _expansion(state: OpportunityState, event_id: str, config: ScoringConfig, out: _Out) -> None:
    group = _engaged_people(state)
    covered, _ = group_roles(state, group)
    new_people = [p for p in group if p not in state.announced_members]
    new_roles = [r for r in covered if r not in state.announced_roles]
    if not new_people and not new_roles:
        return
    state.announced_members = sorted({*state.announced_members, *new_people})
    state.announced_roles = [*state.announced_roles, *new_roles]
    digest = hashlib.sha1("|".join([*new_people, "#", *new_roles]).encode()).hexdigest()[:12]
    _signal(state, "group_expanded", f"group_expanded:{digest}", _event_time(state, event_id), config, out,
            (event_id,), {"new_members": ",".join(new_people), "new_roles": ",".join(new_roles)})


def _timers(state: OpportunityState, config: ScoringConfig) -> list[tuple[datetime, str]]:
    """(due, kind) of the pending fact timers; rescoring is planned apart (_next_rescore)."""
    if state.formed_at is None or state.merged_into is not None:
        return []
    pending = []
    if not state.role_gap_checked:
        pending.append((state.formed_at + config.timers.role_gap_after, "role_gap"))
    if state.stalled_since is None and state.last_touch_at is not None:
        pending.append((state.last_touch_at + config.timers.stall_after, "stalled"))
    return pending


def _fire_timers(state: OpportunityState, now: datetime, config: ScoringConfig, out: _Out,
                 rescore: bool = True) -> None:
    """Fire, in the order they fell due, the timers `now` has passed, then rescore once (with a
    score at each rescore moment passed on the way where the tier changed, _tier_changes)."""
    for due, kind in sorted(_timers(state, config)):
        if due > now:
            break
        if rescore:
            _tier_changes(state, due, config, out)
        if kind == "role_gap":
            state.role_gap_checked = True
            roles = {state.members[p].role for p in _engaged_people(state)}
            missing = [r for r in state.required_roles if r not in roles]
            if missing:
                _signal(state, "role_gap", "role_gap", due, config, out, (),
                        {"missing_required": ",".join(missing), "due_at": due.isoformat()})
        else:
            state.stalled_since = due
            last = [t.event_id for t in state.touches if t.at == state.last_touch_at and t.weight > 0]
            _signal(state, "stalled", f"stalled:{_stamp(due)}", due, config, out, last[-1:],
                    {"last_touch_at": state.last_touch_at.isoformat(), "due_at": due.isoformat()})
            _emit_score(state, due, config, out)
    at = _last_rescore(state, now, config) if rescore else None
    if at is not None:
        _tier_changes(state, at, config, out)
        _emit_score(state, at, config, out)


def _tier_changes(state: OpportunityState, until: datetime, config: ScoringConfig, out: _Out) -> None:
    """A score at every rescore moment before `until` where the tier fell from the last one sent.

    However far the clock jumped, an idle group's fall from A to B, then to C, is announced at
    the rescore moments it happened (priority_changed:<as_of>:<tier>), not at the moment the
    clock was first read past them: how the clock got there (a tick a day, one jump, grouping's
    partitions interleaved another way) changes neither the ids nor the times.

    Every grid moment lies after every touch the state holds (the grid starts at its latest
    event), where each part of the score only decays (engagement, breadth, coverage and
    departments through engagement, recency, velocity; stance stays): the tier only falls. So
    one score at the last moment tells whether it fell at all, and a bisection finds where:
    1 score per jump when it did not, about 7 per fall when it did (90 moments of a grid)."""
    grid = _rescore_grid(state, config)
    if grid is None or state.tier is None:
        return
    origin, limit = grid
    every = config.timers.rescore_every

    def moment(k: int) -> datetime:
        return origin + k * every

    def fell(k: int) -> bool:
        return score_opportunity(state, moment(k), config).tier != state.tier

    low = (state.score_as_of - origin) // every + 1  # the first moment after the last score
    high = min(-((origin - until) // every) - 1, (limit - origin) // every)  # the last one before `until`
    while low <= high and fell(high):
        first, last = low, high
        while first < last:
            middle = (first + last) // 2
            first, last = (first, middle) if fell(middle) else (middle + 1, last)
        _emit_score(state, moment(first), config, out)
        low = first + 1


def _rescore_grid(state: OpportunityState, config: ScoringConfig) -> tuple[datetime, datetime] | None:
    """(origin, limit) of the moments an idle opportunity is rescored at: its latest event
    + k x timers.rescore_every, up to timers.rescore_for after it. None before its first score,
    and while it is merged into another."""
    if state.scored_at is None or state.score_as_of is None or state.merged_into is not None:
        return None
    return state.scored_at, state.scored_at + config.timers.rescore_for


def _next_rescore(state: OpportunityState, config: ScoringConfig) -> datetime | None:
    """When the next time-alone rescore is due: the next moment of the grid, or, while the
    clock replays history (`rescore_hold`, _hold_rescores), the hold or the grid's last moment,
    whichever is first. None once the grid is done."""
    grid = _rescore_grid(state, config)
    if grid is None:
        return None
    origin, limit = grid
    every = config.timers.rescore_every
    k = (state.score_as_of - origin) // every + 1
    at = origin + k * every
    if at > limit:
        return None
    if state.rescore_hold is not None and state.rescore_hold > at:
        return min(state.rescore_hold, origin + ((limit - origin) // every) * every)
    return at


def _hold_rescores(state: OpportunityState, now: datetime, wall: datetime | None, config: ScoringConfig) -> None:
    """Hold the daily rescores while the clock replays history.

    A daily rescore is for people watching priority decay as days pass. In a backfill (the
    partition clock `now` trails the log's wall clock by more than timers.backfill_after, as for
    signals marked backfill) the clock passes days in seconds, each rescore is superseded by
    the next before anyone reads it, and every open opportunity was rescored once per day of
    history: the 1M-event soak spent 15% of scoring's CPU in them at half way, and its RocksDB
    reads of states evicted from the cache, growing with the opportunities open (docs/benchmarks.md,
    soak). Held, an idle opportunity is rescored when the clock is within backfill_after of the
    wall clock read now, or at its grid's last moment, whichever comes first; a tier it fell to
    on the way is still announced at the grid moment it fell (_tier_changes finds it by
    bisection), so the ids and the record once the clock has passed the grid are the same.
    Both inputs come from the log, so a replay holds the same way."""
    edge = wall - config.timers.backfill_after if wall is not None else None
    state.rescore_hold = edge if edge is not None and now < edge else None


def _last_rescore(state: OpportunityState, now: datetime, config: ScoringConfig) -> datetime | None:
    """The latest grid moment the clock has passed and no score was sent at or after, if any:
    however far the clock jumped, one rescore brings the priority up to date."""
    grid = _rescore_grid(state, config)
    if grid is None:
        return None
    origin, limit = grid
    every = config.timers.rescore_every
    end = min(now, limit)
    if end < origin + every:
        return None
    at = origin + ((end - origin) // every) * every
    return at if at > state.score_as_of else None


def _emit_score(state: OpportunityState, as_of: datetime, config: ScoringConfig, out: _Out) -> None:
    score = _score(state, as_of, config)
    state.score_as_of = as_of
    if state.tier is not None and score.tier != state.tier:
        _signal(state, "priority_changed", f"priority_changed:{_stamp(as_of)}:{score.tier}", as_of, config, out,
                (), {"from": state.tier, "to": score.tier})
    state.tier = score.tier
    out.items.append(score)


def _score(state: OpportunityState, as_of: datetime, config: ScoringConfig) -> OpportunityScore:
    current = score_opportunity(state, as_of, config)
    return OpportunityScore(
        opportunity_id=state.opportunity_id, account_id=state.account_id, solution=state.solution,
        version=state.version, as_of=as_of, score=current.score, tier=current.tier,
        breakdown=current.breakdown, status=status_at(state, as_of), formed_at=state.formed_at,
        stalled_since=state.stalled_since if state.stalled_since and state.stalled_since <= as_of else None,
    )


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
    counted departments, with the latest touch of each person in that window; None if it
    never did. A function of the touch set, not of the order touches arrived in."""
    window = config.formation.window
    uncounted = config.formation.uncounted_departments
    touches = [t for t in state.touches if t.weight > 0 and t.person_id in state.members]
    start = 0
    for end, last in enumerate(touches):
        while touches[start].at < last.at - window:
            start += 1
        latest: dict[str, TouchRecord] = {}
        for t in touches[start:end + 1]:
            latest[t.person_id] = t
        depts = {d for p in latest if (d := state.members[p].department) not in uncounted}
        if len(latest) >= people and len(depts) >= departments:
            return last.at, tuple(t.event_id for t in sorted(latest.values(), key=lambda t: (t.at, t.event_id)))
    return None


def _fold_old_touches(state: OpportunityState, config: ScoringConfig) -> None:
    """Bound the state: touches past the retention horizon become decayed mass per member.

    Only the formation decision needs single touches, and only within its window, which the
    horizon covers (checked by the config). The horizon follows the opportunity's own latest
    event, so what is folded does not depend on other opportunities' events. A touch that
    arrives already older than the horizon is folded at once: it counts in engagement, never
    in a formation window (docs/time.md, "older than the state holds")."""
    horizon = state.scored_at - config.retain_touches
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


def _stamp(at: datetime) -> str:
    return at.strftime("%Y%m%dT%H%M%S") + (f".{at.microsecond:06d}" if at.microsecond else "")


def _signal(state: OpportunityState, kind: SignalType, fact: str, at: datetime, config: ScoringConfig,
            out: _Out, triggers: Iterable[str], detail: dict) -> None:
    # As of the opportunity's own latest event, or the moment the signal became true when that
    # is later (a timer: stalled shows the score decayed to the moment it stalled).
    as_of = max(filter(None, (state.scored_at, at)))
    current = score_opportunity(state, as_of, config)
    group = _engaged_people(state)
    covered, missing = group_roles(state, group)
    in_group = set(group)
    backfill = out.wall is not None and out.wall - at > config.timers.backfill_after
    out.items.append(Signal(
        signal_id=f"{state.opportunity_id}:{fact}",
        signal=kind, opportunity_id=state.opportunity_id, account_id=state.account_id,
        account_name=state.account_name, account_owner=state.account_owner, solution=state.solution,
        occurred_at=at, score=current.score, tier=current.tier,
        members=tuple(m for m in current.breakdown.members if m.person_id in in_group),
        covered_roles=tuple(covered), missing_roles=tuple(missing),
        trigger_event_ids=tuple(dict.fromkeys(triggers)), breakdown=current.breakdown, detail=detail,
        backfill=backfill,
    ))
