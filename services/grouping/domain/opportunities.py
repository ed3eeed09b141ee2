"""The account stage: `state, outputs = step(state, message, rules)` per account.

An opportunity is (account, solution). It is created when the account's engagement with a
solution meets the creation rule (rules.yaml), or it exists already because the account is
a target of the ABM list (origin "precreated", with the expected buying-group profile).
Each engaged person becomes a member with department and role; a later card replaces the
member's role only when its role source is at least as strong (RoleSource order), so a
stated role is never undone by a job title. Every touch is attributed: to each opportunity
of its solutions, or to the account (AccountTouch) when it shows no solution.

Each opportunity's events carry a version rising by one and the id "<opportunity>@<version>";
inputs are deduplicated by id, and a replayed input re-emits the events it produced first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from services.grouping.domain.messages import AccountActivity, AccountInput, MemberUpdate, Outbound, Precreate
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
    opportunity_id,
)
from shared.schemas.roles import ROLE_SOURCE_STRENGTH, BuyingRole, RoleSource
from shared.schemas.touch import TouchKind


@dataclass(frozen=True)
class GroupProfile:
    expected: tuple[BuyingRole, ...] = ()
    required: tuple[BuyingRole, ...] = ()
    roles: RoleMap = RoleMap()  # department x level -> the role a member takes in this solution's group


@dataclass(frozen=True)
class CreationRule:
    """Create an opportunity once engaged touches on the solution reach these counts."""

    min_touches: int = 1
    min_people: int = 1
    window: timedelta | None = None  # touches older than this (event time) stop counting


@dataclass(frozen=True)
class PrecreatedAccount:
    account: AccountRef
    solutions: tuple[str, ...]
    as_of: datetime


@dataclass(frozen=True)
class OpportunityRules:
    creation: CreationRule = CreationRule()
    # Touches that show no engagement by the person (a delivered email): they are attributed
    # when the person is already a member, but never make a member or an opportunity.
    passive_kinds: frozenset[TouchKind] = frozenset({TouchKind.email_delivered})
    profiles: Mapping[str, GroupProfile] = field(default_factory=dict)
    default_profile: GroupProfile = GroupProfile()
    precreated: Mapping[str, PrecreatedAccount] = field(default_factory=dict)
    max_pending: int = 200

    def profile(self, solution: str) -> GroupProfile:
        return self.profiles.get(solution, self.default_profile)


class Opportunity(BaseModel):
    opportunity_id: str
    solution: str
    version: int = 0
    origin: Literal["auto", "precreated"] = "auto"
    members: dict[str, MemberRef] = Field(default_factory=dict)


class AccountState(BaseModel):
    account: AccountRef
    touch_version: int = 0  # version of the account-level touch events (AccountTouch)
    # The latest card of each person with a pending touch: what they join with when the
    # opportunity opens. Members carry their own card, so no one else needs one here.
    people: dict[str, MemberRef] = Field(default_factory=dict)
    opportunities: dict[str, Opportunity] = Field(default_factory=dict)  # by solution
    pending: dict[str, list[TouchRef]] = Field(default_factory=dict)  # engaged touches before creation


def merge_member(current: MemberRef, card: MemberRef) -> MemberRef:
    """The newer card, but a role from a weaker source never replaces a stronger one."""
    if ROLE_SOURCE_STRENGTH[card.role_source] >= ROLE_SOURCE_STRENGTH[current.role_source]:
        return card
    return card.model_copy(update={
        "department": current.department, "role": current.role, "role_source": current.role_source,
    })


def _merge_account(current: AccountRef, seen: AccountRef) -> AccountRef:
    domains = current.domains + tuple(d for d in seen.domains if d not in current.domains)
    merged = current.model_copy(update={
        "name": current.name or seen.name, "owner": current.owner or seen.owner, "domains": domains,
    })
    return current if merged == current else merged


class _Reducer:
    def __init__(self, state: AccountState, rules: OpportunityRules) -> None:
        self.state = state
        self.rules = rules
        self.outputs: list[Outbound] = []

    def _emit_opportunity(self, opp: Opportunity, event_type: type, at: datetime, **fields: object) -> None:
        opp.version += 1
        event = event_type(
            event_id=f"{opp.opportunity_id}@{opp.version}", opportunity_id=opp.opportunity_id,
            solution=opp.solution, account=self.state.account, version=opp.version, occurred_at=at, **fields,
        )
        self.outputs.append(Outbound(to="opportunities", key=opp.opportunity_id, message=event))

    def account_touch(self, touch: TouchRef) -> None:
        state = self.state
        state.touch_version += 1
        event = AccountTouch(
            event_id=f"{state.account.account_id}@touch:{touch.event_id}", opportunity_id=None, solution=None,
            account=state.account, version=state.touch_version, occurred_at=touch.occurred_at, touch=touch,
        )
        self.outputs.append(Outbound(to="opportunities", key=state.account.account_id, message=event))

    def create(self, solution: str, origin: Literal["auto", "precreated"], at: datetime) -> Opportunity:
        opp = Opportunity(opportunity_id=opportunity_id(self.state.account.account_id, solution),
                          solution=solution, origin=origin)
        self.state.opportunities[solution] = opp
        profile = self.rules.profile(solution)
        self._emit_opportunity(opp, OpportunityCreated, at, origin=origin,
                               expected_roles=profile.expected, required_roles=profile.required)
        return opp

    def precreate(self, solutions: tuple[str, ...], at: datetime) -> None:
        for solution in solutions:
            if solution not in self.state.opportunities:
                self.create(solution, "precreated", at)

    def in_solution(self, opp: Opportunity, card: MemberRef) -> MemberRef:
        """The card as a member of `opp`: a role read from the title becomes the one its department
        and level take in that solution's group (a stated or behavioural role stays as it is, and so
        does the role of a card without a level, written before levels existed)."""
        if card.role_source is not RoleSource.title or card.level is None:
            return card
        role = self.rules.profile(opp.solution).roles.role(card.department, card.level)
        return card if role is card.role else card.model_copy(update={"role": role})

    def card(self, card: MemberRef, at: datetime) -> None:
        """Take a person's latest card; members of existing opportunities follow it."""
        self.state.people[card.person_id] = card
        for opp in self.state.opportunities.values():
            current = opp.members.get(card.person_id)
            if current is not None:
                self._update_member(opp, current, self.in_solution(opp, card), at)

    def _update_member(self, opp: Opportunity, current: MemberRef, card: MemberRef, at: datetime) -> None:
        merged = merge_member(current, card)
        if merged != current:
            opp.members[card.person_id] = merged
            self._emit_opportunity(opp, MemberRoleChanged, at, member=merged, previous_role=current.role)

    def join(self, opp: Opportunity, person_id: str, at: datetime) -> None:
        if person_id not in opp.members:
            card = self.in_solution(opp, self.state.people[person_id])
            opp.members[person_id] = card
            self._emit_opportunity(opp, MemberAdded, at, member=card)

    def attribute(self, opp: Opportunity, touch: TouchRef) -> None:
        self._emit_opportunity(opp, TouchAttributed, touch.occurred_at, touch=touch)

    def _prune_pending(self, solution: str, now: datetime) -> list[TouchRef]:
        pending = self.state.pending.get(solution, [])
        window = self.rules.creation.window
        kept = [t for t in pending if window is None or now - t.occurred_at <= window]
        overflow = max(0, len(kept) - self.rules.max_pending)
        expired = [t for t in pending if t not in kept] + kept[:overflow]
        self.state.pending[solution] = kept[overflow:]
        return expired

    def _ready(self, solution: str) -> bool:
        pending = self.state.pending.get(solution, [])
        rule = self.rules.creation
        return len(pending) >= rule.min_touches and len({t.person_id for t in pending}) >= rule.min_people

    def activity(self, msg: AccountActivity) -> None:
        touch, pid = msg.touch, msg.member.person_id
        self.card(msg.member, msg.occurred_at)
        # An automated touch (a scanner's click, a machine open) is no engagement either.
        passive = touch.kind in self.rules.passive_kinds or touch.automated
        placed = False
        for solution in msg.solutions:
            opp = self.state.opportunities.get(solution)
            if opp is not None:
                if passive and pid not in opp.members:
                    continue
                self.join(opp, pid, touch.occurred_at)
                self.attribute(opp, touch)
                placed = True
            elif not passive:
                self.state.pending.setdefault(solution, []).append(touch)
                for expired in self._prune_pending(solution, touch.occurred_at):
                    self.account_touch(expired)
                placed = placed or touch in self.state.pending[solution]
                if self._ready(solution):
                    self._open_with_pending(solution, msg.occurred_at)
        if not placed:
            self.account_touch(touch)

    def _open_with_pending(self, solution: str, at: datetime) -> None:
        opp = self.create(solution, "auto", at)
        for touch in self.state.pending.pop(solution):
            self.join(opp, touch.person_id, touch.occurred_at)
            self.attribute(opp, touch)


def step(state: AccountState | None, account_id: str, message: AccountInput,
         rules: OpportunityRules) -> tuple[AccountState, list[Outbound]]:
    """Apply one input to the account `account_id`. Updates `state` in place."""
    state = state or AccountState(account=message.account)
    state.account = _merge_account(state.account, message.account)
    reducer = _Reducer(state, rules)
    # A target account's opportunities exist before anything else happens to it, whether the
    # worker's Precreate or one of the account's touches arrives first.
    if (target := rules.precreated.get(account_id)) is not None:
        state.account = _merge_account(target.account, state.account)
        reducer.precreate(target.solutions, target.as_of)
    if isinstance(message, MemberUpdate):
        reducer.card(message.member, message.occurred_at)
    elif isinstance(message, AccountActivity):
        reducer.activity(message)
    waiting = {t.person_id for touches in state.pending.values() for t in touches}
    state.people = {pid: card for pid, card in state.people.items() if pid in waiting}
    return state, reducer.outputs


def precreate_inputs(rules: OpportunityRules) -> list[Outbound]:
    """What the worker feeds the account stage at start so target opportunities exist at once."""
    return [
        Outbound(to="accounts", key=account_id, message=Precreate(
            input_id=f"precreate:{account_id}:{','.join(p.solutions)}", occurred_at=p.as_of, account=p.account,
        ))
        for account_id, p in rules.precreated.items()
    ]
