"""Qualification, pure: the facts of one opportunity -> the state of every exit criterion, and
the move the rules make (or propose) next.

No I/O and no wall clock: every time here is an event time taken from the facts, so the same
facts give the same answer in a live run and in a rebuild.

The rules (the funnel's header in config/funnel.yaml says the same for people who edit it):
- a derived criterion holds since the event time of the fact that made it hold (the member's
  first touch, the group's formation, ...); a person's criterion since the person marked it;
- when every exit criterion of the current open stage holds, the rules move the opportunity
  to the next open stage, at the latest of those times (never before it entered its stage);
- after a person or a CRM set the stage, the rules move it only on facts dated after that:
  people correct the machine, and a move back is not undone by the facts it already saw;
- when only a person's criteria are missing, the move is proposed, naming them;
- won and lost are final for the rules: only people and CRMs close or reopen an opportunity.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from services.projection.funnel import Criterion, Funnel


@dataclass(frozen=True, slots=True)
class MemberFact:
    person_id: str
    department: str
    role: str
    first_touch_at: datetime | None  # None: a member without a touch is not engaged


@dataclass(frozen=True, slots=True)
class Mark:
    holds: bool
    evidence: str | None
    marked_by: str
    marked_at: datetime


@dataclass(frozen=True, slots=True)
class Facts:
    opportunity_id: str
    account_id: str
    solution: str
    stage: str
    stage_changed_at: datetime | None
    stage_author: str | None  # rules, person, crm; None: never moved
    outcome: str
    created_at: datetime | None
    formed_at: datetime | None
    required_roles: tuple[str, ...]
    members: tuple[MemberFact, ...]
    technical_touch_at: datetime | None  # first touch of technical content by a member
    marks: Mapping[str, Mark] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CriterionState:
    code: str
    derived: bool
    holds: bool
    since: datetime | None
    evidence: str | None = None
    marked_by: str | None = None

    def as_json(self) -> dict:
        return {"code": self.code, "derived": self.derived, "holds": self.holds,
                "since": self.since.isoformat() if self.since else None, "evidence": self.evidence,
                "marked_by": self.marked_by}


@dataclass(frozen=True, slots=True)
class Move:
    from_stage: str
    stage: str
    at: datetime
    criteria: tuple[str, ...]

    def event_id(self, opportunity_id: str, index: int) -> str:
        """Deterministic; at one time, a later stage sorts after an earlier one (the projection's
        latest-wins guard compares (changed_at, event_id)), and any person's change ("stage:...")
        sorts after the rules' ("rules:...")."""
        digest = hashlib.sha256(f"{opportunity_id}\x1f{self.stage}\x1f{self.at.isoformat()}".encode()).hexdigest()
        return f"rules:{index:02d}:{digest[:24]}"


@dataclass(frozen=True, slots=True)
class Evaluation:
    criteria: tuple[CriterionState, ...]  # the exit criteria of the current stage, in config order
    move: Move | None  # what the rules do now
    proposed: str | None  # the next stage, when only a person's criteria are missing
    missing: tuple[str, ...]  # exit criteria that do not hold


def _nth_time(times: Sequence[datetime | None], n: int) -> datetime | None:
    known = sorted(t for t in times if t is not None)
    return known[n - 1] if len(known) >= n else None


def derived_since(criterion: Criterion, facts: Facts) -> datetime | None:
    """When a derived criterion started to hold (event time), or None if it does not."""
    engaged = [m for m in facts.members if m.first_touch_at is not None]
    rule = criterion.rule
    if rule == "member_engaged":
        return _nth_time([m.first_touch_at for m in engaged], 1)
    if rule == "group_formed":
        return facts.formed_at
    if rule == "roles_engaged":
        roles = {r.value for r in criterion.roles}
        return _nth_time([m.first_touch_at for m in engaged if m.role in roles], 1)
    if rule == "engaged_members":
        return _nth_time([m.first_touch_at for m in engaged], criterion.at_least)
    if rule == "departments_engaged":
        first: dict[str, datetime] = {}
        for m in engaged:
            assert m.first_touch_at is not None
            first[m.department] = min(first.get(m.department, m.first_touch_at), m.first_touch_at)
        return _nth_time(list(first.values()), criterion.at_least)
    if rule == "required_roles_covered":
        if not facts.required_roles:
            return _nth_time([m.first_touch_at for m in engaged], 1)
        times = []
        for role in facts.required_roles:
            role_time = _nth_time([m.first_touch_at for m in engaged if m.role == role], 1)
            if role_time is None:
                return None
            times.append(role_time)
        return max(times)
    if rule == "technical_content":
        return facts.technical_touch_at
    raise ValueError(f"unknown rule {rule!r}")


def criterion_state(funnel: Funnel, code: str, facts: Facts) -> CriterionState:
    criterion = funnel.criteria[code]
    if criterion.derived:
        since = derived_since(criterion, facts)
        return CriterionState(code, True, since is not None, since)
    mark = facts.marks.get(code)
    if mark is None:
        return CriterionState(code, False, False, None)
    return CriterionState(code, False, mark.holds, mark.marked_at if mark.holds else None, mark.evidence,
                          mark.marked_by)


def current_stage(funnel: Funnel, facts: Facts) -> str:
    """The stage the facts say; a stage the funnel does not know (an old CRM name) counts as its
    first stage, so that the rules can still qualify it."""
    if facts.outcome in ("won", "lost"):
        return funnel.outcome_stage(facts.outcome).code
    return facts.stage if funnel.index(facts.stage) >= 0 else funnel.first.code


def evaluate(funnel: Funnel, facts: Facts) -> Evaluation:
    """The exit criteria of the current stage and the rules' next step (see the module's docstring)."""
    stage = current_stage(funnel, facts)
    index = funnel.index(stage)
    if index < 0:  # won or lost: nothing to qualify
        return Evaluation((), None, None, ())
    states = tuple(criterion_state(funnel, c, facts) for c in funnel.open_stages[index].exit)
    missing = tuple(s.code for s in states if not s.holds)
    if index + 1 >= len(funnel.open_stages) or not states:
        return Evaluation(states, None, None, missing)
    nxt = funnel.open_stages[index + 1].code
    if missing:
        person_only = all(not funnel.criteria[c].derived for c in missing)
        return Evaluation(states, None, nxt if person_only else None, missing)
    held_at = max(s.since for s in states if s.since is not None)
    entered = facts.stage_changed_at
    if facts.stage_author in ("person", "crm") and entered is not None and held_at <= entered:
        return Evaluation(states, None, nxt, ())  # a person set this stage on these very facts
    at = max(held_at, entered) if entered is not None else held_at
    return Evaluation(states, Move(stage, nxt, at, tuple(s.code for s in states)), None, ())
