"""The account stage: `state, outputs = step(state, message, rules)` per account.

An opportunity is (account, solution). It is created when the account's engagement with a
solution meets the creation rule (rules.yaml), or it exists already because the account is
a target of the ABM list (origin "precreated", with the expected buying-group profile).
Each engaged person becomes a member with department and role; a later card replaces the
member's role only when its role source is at least as strong (RoleSource order), so a
stated role is never undone by a job title. Every touch is attributed: to each opportunity
of its solutions, or to the account (AccountTouch) when it shows no solution.

Merges of accounts (one absorbed into another, and undone) are domain/merge.py's, on this state.

Each opportunity's events carry a version rising by one and the id "<opportunity>@<version>";
inputs are deduplicated by id, and a replayed input re-emits the events it produced first.

Corrections people make (CorrectionInput, routed by domain/corrections.py) are kept per
opportunity as ManualFacts over the rules' own view, so no later touch or card overrides them
and an undo gives the state as if the correction had never been made. A correction of an
opportunity that is not open yet waits in the account state (a rebuild may read it before the
touches that open it) and is dead-lettered once the account's touches are `correction_grace`
of event time past its made_at.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from services.grouping.domain.corrections import (
    Fix,
    ManualFacts,
    MembershipFix,
    RoleFix,
    StanceFix,
    refused,
    unknown_card,
)
from services.grouping.domain.messages import (
    AccountActivity,
    AccountInput,
    CorrectionInput,
    MemberErased,
    MemberUpdate,
    Outbound,
    Precreate,
)
from services.grouping.domain.roles import RoleMap
from shared.schemas.correction import (
    Correction,
    CorrectionUndone,
    MemberLinked,
    MemberRoleSet,
    MemberStanceSet,
    MemberUnlinked,
    OpportunityOpened,
)
from shared.schemas.opportunity import (
    AccountRef,
    AccountTouch,
    Basis,
    MemberAdded,
    MemberRef,
    MemberRemoved,
    MemberRoleChanged,
    MemberStanceChanged,
    MemberWhy,
    OpportunityCreated,
    OpportunityMerged,
    TouchAttributed,
    TouchRef,
    opportunity_id,
)
from shared.schemas.roles import ROLE_SOURCE_STRENGTH, BuyingRole, Department, RoleSource
from shared.schemas.touch import TouchKind

# The author of the member_removed events of an erasure (docs/privacy.md).
ERASED_BY = "privacy"


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
    solutions: frozenset[str] = frozenset()  # the catalog's slugs (corrections name them)
    # A correction of an opportunity not open yet waits until the account's touches are this far
    # (event time) past its made_at, then is dead-lettered; at most max_waiting per account.
    correction_grace: timedelta = timedelta(days=1)
    max_waiting: int = 100
    max_corrected_people: int = 500  # per opportunity: beyond, a correction is refused

    def profile(self, solution: str) -> GroupProfile:
        return self.profiles.get(solution, self.default_profile)


class Opportunity(BaseModel):
    opportunity_id: str
    solution: str
    version: int = 0
    origin: Literal["auto", "precreated", "manual"] = "auto"
    profile: str | None = None  # the group profile named by hand; None: the solution's own
    members: dict[str, MemberRef] = Field(default_factory=dict)  # as shown: rules, then hand-set facts
    manual: dict[str, ManualFacts] = Field(default_factory=dict)  # people corrected by hand
    corrections: dict[str, str] = Field(default_factory=dict)  # correction id applied -> person ("": opening)
    # Set when an undone merge had created this opportunity and left nobody in it: it lives on
    # in the restored account's one (domain/merge.py); a later touch of its solution revives it.
    merged_into: str | None = None
    merge_id: str | None = None


class MergeRecord(BaseModel):
    """What a merge brought into the surviving account, so that undoing it takes exactly that out."""

    source: AccountRef  # the account absorbed
    absorbed: list[str] = Field(default_factory=list)  # the source and what it had absorbed
    opportunities: dict[str, str] = Field(default_factory=dict)  # solution -> the source's opportunity id
    created: list[str] = Field(default_factory=list)  # solutions whose opportunity the merge created here
    added: dict[str, list[str]] = Field(default_factory=dict)  # solution -> people the merge made members
    pending: list[str] = Field(default_factory=list)  # ids of the source's pending touches moved here


class AccountState(BaseModel):
    account: AccountRef
    touch_version: int = 0  # version of the account-level touch events (AccountTouch)
    # The latest card of each person with a pending touch: what they join with when the
    # opportunity opens. Members carry their own card, so no one else needs one here.
    people: dict[str, MemberRef] = Field(default_factory=dict)
    opportunities: dict[str, Opportunity] = Field(default_factory=dict)  # by solution
    pending: dict[str, list[TouchRef]] = Field(default_factory=dict)  # engaged touches before creation
    clock: datetime | None = None  # the latest event time of the account's touches and cards
    waiting: list[Correction] = Field(default_factory=list)  # corrections of opportunities not open yet
    # What matched in each pending touch ("<solution> <touch id>" -> catalog match), for its
    # person's basis when the opportunity opens; kept and dropped with `pending`.
    pending_basis: dict[str, str] = Field(default_factory=dict)
    # Merges (domain/merge.py). An absorbed account keeps its own view, hidden, and forwards
    # what still arrives for it to `merged_into`; the surviving one keeps a record
    # per merge (by merge id) and every account it absorbed, directly or through another.
    merged_into: AccountRef | None = None
    merge_id: str | None = None  # the merge that absorbed this account
    absorbed: list[str] = Field(default_factory=list)
    merges: dict[str, MergeRecord] = Field(default_factory=dict)
    # Undos of merges not arrived yet (the merge goes round through the absorbed account, the
    # undo comes straight here, and a rebuild may read both at once): applied when it comes.
    waiting_undos: list[CorrectionUndone] = Field(default_factory=list)


def merge_member(current: MemberRef, card: MemberRef) -> MemberRef:
    """The newer card, but a role from a weaker source never replaces a stronger one; the basis
    of a role kept, and of the member's solution (known here only), stays with them."""
    stronger = ROLE_SOURCE_STRENGTH[card.role_source] >= ROLE_SOURCE_STRENGTH[current.role_source]
    update: dict[str, object] = {}
    if current.stance is not None and card.stance is None:
        # A stance is only ever set by hand (a moved member brings theirs); no card unsets it.
        update |= {"stance": current.stance, "influence": current.influence}
    if not stronger:
        update |= {"department": current.department, "role": current.role, "role_source": current.role_source}
    if current.why is not None:
        why = card.why or MemberWhy()
        kept = {"solution": why.solution or current.why.solution}
        if not stronger:
            kept["role"] = current.why.role
        update["why"] = why.model_copy(update=kept)
    return card.model_copy(update=update) if update else card


def content_basis(touch: TouchRef, matched: str | None = None) -> Basis:
    """Why a touch put its person into an opportunity: the catalog entry that matched (people
    stage), else the content itself."""
    return Basis(rule="content", detail=matched or touch.asset_id or touch.url or touch.topic or touch.title)


def _with_solution_basis(card: MemberRef, basis: Basis | None) -> MemberRef:
    if basis is None:
        return card
    return card.model_copy(update={"why": (card.why or MemberWhy()).model_copy(update={"solution": basis})})


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

    def create(self, solution: str, origin: Literal["auto", "precreated", "manual"], at: datetime,
               opened: OpportunityOpened | None = None) -> Opportunity:
        opp = Opportunity(opportunity_id=opportunity_id(self.state.account.account_id, solution),
                          solution=solution, origin=origin, profile=opened.profile if opened else None)
        self.state.opportunities[solution] = opp
        profile = self._profile(opp)
        by_hand = {"correction_id": opened.correction_id, "author": opened.author} if opened else {}
        if opened:
            opp.corrections[opened.correction_id] = ""
        self._emit_opportunity(opp, OpportunityCreated, at, origin=origin,
                               expected_roles=profile.expected, required_roles=profile.required, **by_hand)
        # Corrections that waited for it come first, so a person unlinked by hand never shows.
        waiting = [c for c in self.state.waiting if c.key() == opp.opportunity_id]
        self.state.waiting = [c for c in self.state.waiting if c.key() != opp.opportunity_id]
        for correction in waiting:
            self.correct(correction)
        return opp

    def _profile(self, opp: Opportunity) -> GroupProfile:
        return self.rules.profile(opp.profile or opp.solution)

    def retire(self, opp: Opportunity, into: str, merge_id: str, at: datetime) -> None:
        """Announce `opp` merged into the opportunity `into` (an undone merge had created it)."""
        opp.merged_into, opp.merge_id = into, merge_id
        self._emit_opportunity(opp, OpportunityMerged, at, merged_into=into, merge_id=merge_id)

    def revive(self, opp: Opportunity, at: datetime) -> None:
        """A retired opportunity that gets members or touches again stands on its own."""
        if opp.merged_into is not None:
            self._emit_opportunity(opp, OpportunityMerged, at, merged_into=None, merge_id=opp.merge_id)
            opp.merged_into, opp.merge_id = None, None

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
        role = self._profile(opp).roles.role(card.department, card.level)
        return card if role is card.role else card.model_copy(update={"role": role})

    def card(self, card: MemberRef, at: datetime) -> None:
        """Take a person's latest card; members of existing opportunities follow it."""
        self.state.people[card.person_id] = card
        for opp in self.state.opportunities.values():
            facts = opp.manual.get(card.person_id)
            if facts is not None:
                new = self.in_solution(opp, card)
                facts.rule_card = new if facts.rule_card is None else merge_member(facts.rule_card, new)
                self._show(opp, card.person_id, at)
                continue
            current = opp.members.get(card.person_id)
            if current is not None:
                self._update_member(opp, current, self.in_solution(opp, card), at)

    def _update_member(self, opp: Opportunity, current: MemberRef, card: MemberRef, at: datetime) -> None:
        merged = merge_member(current, card)
        if merged != current:
            opp.members[card.person_id] = merged
            self._emit_opportunity(opp, MemberRoleChanged, at, member=merged, previous_role=current.role)

    def join(self, opp: Opportunity, person_id: str, at: datetime, basis: Basis | None = None) -> bool:
        """The rules make the person a member (an engaged touch; `basis`: what it showed); False
        when a hand-set fact keeps them out, and then their touches are not the opportunity's."""
        facts = opp.manual.get(person_id)
        if facts is not None:
            if not facts.by_rules:
                facts.by_rules = True
                card = facts.rule_card or self.in_solution(opp, self.state.people[person_id])
                facts.rule_card = _with_solution_basis(card, basis)
            self._show(opp, person_id, at)
            return facts.is_member()
        if person_id not in opp.members:
            card = _with_solution_basis(self.in_solution(opp, self.state.people[person_id]), basis)
            opp.members[person_id] = card
            self._emit_opportunity(opp, MemberAdded, at, member=card)
        return True

    def _show(self, opp: Opportunity, person_id: str, at: datetime, fix: Fix | None = None) -> None:
        """Bring the member as shown in line with the rules and the hand-set facts; emit the change."""
        shown = opp.manual[person_id].card()
        current = opp.members.get(person_id)
        by = {"correction_id": fix.correction_id, "author": fix.author} if fix else {}
        if shown is None:
            if current is not None:
                del opp.members[person_id]
                assert fix is not None, "only a correction takes a member out"
                self._emit_opportunity(opp, MemberRemoved, at, member=current, **by)
            return
        opp.members[person_id] = shown
        if current is None:
            self._emit_opportunity(opp, MemberAdded, at, member=shown)
            return
        if (shown.stance, shown.influence) != (current.stance, current.influence):
            assert fix is not None, "only a correction sets a stance"
            self._emit_opportunity(opp, MemberStanceChanged, at, member=shown, previous_stance=current.stance,
                                   previous_influence=current.influence, **by)
        rest = {"stance", "influence"}
        if shown.model_dump(exclude=rest) != current.model_dump(exclude=rest):
            self._emit_opportunity(opp, MemberRoleChanged, at, member=shown, previous_role=current.role, **by)

    def attribute(self, opp: Opportunity, touch: TouchRef) -> None:
        self._emit_opportunity(opp, TouchAttributed, touch.occurred_at, touch=touch)

    def _prune_pending(self, solution: str, now: datetime) -> list[TouchRef]:
        pending = self.state.pending.get(solution, [])
        window = self.rules.creation.window
        kept = [t for t in pending if window is None or now - t.occurred_at <= window]
        overflow = max(0, len(kept) - self.rules.max_pending)
        expired = [t for t in pending if t not in kept] + kept[:overflow]
        self.state.pending[solution] = kept[overflow:]
        for touch in expired:
            self.state.pending_basis.pop(f"{solution} {touch.event_id}", None)
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
                self.revive(opp, touch.occurred_at)
                if self.join(opp, pid, touch.occurred_at, content_basis(touch, msg.solution_basis.get(solution))):
                    self.attribute(opp, touch)
                    placed = True
            elif not passive:
                self.state.pending.setdefault(solution, []).append(touch)
                if (matched := msg.solution_basis.get(solution)) is not None:
                    self.state.pending_basis[f"{solution} {touch.event_id}"] = matched
                for expired in self._prune_pending(solution, touch.occurred_at):
                    self.account_touch(expired)
                waits = touch in self.state.pending[solution]
                if self._ready(solution):
                    waits = self._open_with_pending(solution, msg.occurred_at, touch)
                placed = placed or waits
        if not placed:
            self.account_touch(touch)

    def erase(self, person_id: str, at: datetime, request: str) -> None:
        """The person leaves every opportunity of the account with the facts set about them by
        hand, their waiting touches go, and an account-level member_removed takes the account's
        own touches of theirs (AccountTouch) away too. `request`: the erasure's id for the events."""
        by = {"correction_id": request, "author": ERASED_BY, "erased": True}
        last = self.state.people.get(person_id)
        for opp in self.state.opportunities.values():
            opp.manual.pop(person_id, None)
            current = opp.members.pop(person_id, None)
            if current is not None:
                last = current
                self._emit_opportunity(opp, MemberRemoved, at, member=current, **by)
        state = self.state
        card = last or MemberRef(person_id=person_id, department=Department.other, role=BuyingRole.influencer,
                                 role_source=RoleSource.default)
        state.touch_version += 1
        self.outputs.append(Outbound(to="opportunities", key=state.account.account_id, message=MemberRemoved(
            event_id=f"{state.account.account_id}@{request}", opportunity_id=None, solution=None,
            account=state.account, version=state.touch_version, occurred_at=at, member=card, **by)))
        for solution, touches in list(state.pending.items()):
            state.pending[solution] = [t for t in touches if t.person_id != person_id]
        state.people.pop(person_id, None)

    def _open_with_pending(self, solution: str, at: datetime, current: TouchRef) -> bool:
        """Open the opportunity with its waiting touches; False when `current` ends up in it not
        (its person was unlinked by a correction that waited for the opening)."""
        opp = self.create(solution, "auto", at)
        placed = False
        for touch in self.state.pending.pop(solution):
            matched = self.state.pending_basis.pop(f"{solution} {touch.event_id}", None)
            if self.join(opp, touch.person_id, touch.occurred_at, content_basis(touch, matched)):
                self.attribute(opp, touch)
                placed = placed or touch == current
            elif touch != current:
                self.account_touch(touch)
        return placed

    # ------------------------------------------------------------ corrections

    def correct(self, correction: Correction) -> None:
        """Apply one correction of this account (routed here by corrections.route)."""
        if isinstance(correction, OpportunityOpened):
            self._open_by_hand(correction)
            return
        subject = correction.subject if isinstance(correction, CorrectionUndone) else correction.opportunity_id
        opp = self._opportunity(subject)
        if opp is None:
            if isinstance(correction, CorrectionUndone) and not any(
                    c.correction_id == correction.undoes for c in self.state.waiting):
                return  # not one of grouping's (a note, or an account's merge): its owner undoes it
            self._wait(correction)
            return
        if correction.correction_id in opp.corrections:
            return  # a retry of a correction already applied
        if isinstance(correction, CorrectionUndone):
            self._undo(opp, correction)
            return
        person_id = correction.person_id
        if person_id not in opp.manual and len(opp.manual) >= self.rules.max_corrected_people:
            self._refuse(correction, "too_many_corrections",
                         f"{opp.opportunity_id} keeps hand-set facts of {len(opp.manual)} people already")
            return
        base = {"correction_id": correction.correction_id, "author": correction.author,
                "made_at": correction.made_at, "reason": correction.reason}
        facts = self._facts(opp, person_id, Fix(**base), getattr(correction, "department", None))
        fix: Fix
        match correction:
            case MemberLinked():
                fix = MembershipFix(**base, linked=True)
                if correction.role is not None:
                    facts.add(RoleFix(**base, role=correction.role, department=correction.department))
            case MemberUnlinked():
                fix = MembershipFix(**base, linked=False)
            case MemberRoleSet():
                fix = RoleFix(**base, role=correction.role, department=correction.department)
            case MemberStanceSet():
                fix = StanceFix(**base, stance=correction.stance, influence=correction.influence)
            case _:
                raise TypeError(f"not a correction of a member: {correction.type}")
        facts.add(fix)
        opp.corrections[correction.correction_id] = person_id
        self._show(opp, person_id, correction.made_at, fix)

    def _facts(self, opp: Opportunity, person_id: str, fix: Fix, department: Department | None) -> ManualFacts:
        facts = opp.manual.get(person_id)
        if facts is None:
            current = opp.members.get(person_id)
            known = self.state.people.get(person_id) or next(
                (self._rule_card(o, person_id) for o in self.state.opportunities.values() if person_id in o.members),
                None)
            if current is not None:
                card: MemberRef | None = current
            elif known is not None:
                card = self.in_solution(opp, known)
            else:
                card = unknown_card(person_id, fix, department)
            facts = opp.manual[person_id] = ManualFacts(by_rules=current is not None, rule_card=card)
        return facts

    @staticmethod
    def _rule_card(opp: Opportunity, person_id: str) -> MemberRef:
        """A member's card as the rules give it in `opp`: without what was set by hand there."""
        facts = opp.manual.get(person_id)
        card = facts.rule_card if facts is not None and facts.rule_card is not None else opp.members[person_id]
        return card.model_copy(update={"stance": None, "influence": None})

    def _open_by_hand(self, opened: OpportunityOpened) -> None:
        if opened.profile is not None and opened.profile != "default" and opened.profile not in self.rules.profiles:
            self._refuse(opened, "unknown_profile", f"profile {opened.profile!r} is not in profiles.yaml")
            return
        existing = self.state.opportunities.get(opened.solution)
        if existing is not None:
            existing.corrections.setdefault(opened.correction_id, "")  # already open: nothing to do
            return
        self.create(opened.solution, "manual", opened.made_at, opened)

    def _undo(self, opp: Opportunity, undo: CorrectionUndone) -> None:
        if undo.undoes not in opp.corrections:
            return  # not one of grouping's (a note): projection undoes it
        person_id = opp.corrections[undo.undoes]
        if not person_id:
            self._refuse(undo, "cannot_undo", f"{undo.undoes} opened {opp.opportunity_id}; an opportunity "
                         "opened stays (unlink its members instead)")
            return
        opp.corrections[undo.correction_id] = person_id
        facts = opp.manual[person_id]
        if facts.drop(undo.undoes):
            fix = Fix(correction_id=undo.correction_id, author=undo.author, made_at=undo.made_at, reason=undo.reason)
            self._show(opp, person_id, undo.made_at, fix)

    def _opportunity(self, subject: str) -> Opportunity | None:
        prefix = f"{self.state.account.account_id}:"
        solution = subject[len(prefix):] if subject.startswith(prefix) else None
        return self.state.opportunities.get(solution) if solution else None

    def _wait(self, correction: Correction) -> None:
        if any(c.correction_id == correction.correction_id for c in self.state.waiting):
            return
        self.state.waiting.append(correction)
        self.expire_waiting()

    def expire_waiting(self) -> None:
        """Dead-letter what waited too long (event time) or beyond the account's bound."""
        clock, grace = self.state.clock, self.rules.correction_grace
        kept = []
        for correction in self.state.waiting:
            if clock is not None and clock - correction.made_at > grace:
                self._refuse(correction, "unknown_opportunity",
                             f"{correction.key()} is not open {grace} after the correction (event time)")
            else:
                kept.append(correction)
        overflow = max(0, len(kept) - self.rules.max_waiting)
        for correction in kept[:overflow]:
            self._refuse(correction, "unknown_opportunity",
                         f"more than {self.rules.max_waiting} corrections wait for opportunities of this account")
        self.state.waiting = kept[overflow:]

    def _refuse(self, correction: Correction, reason: str, detail: str) -> None:
        self.outputs.append(refused(correction, reason, detail))


def step(state: AccountState | None, account_id: str, message: AccountInput,
         rules: OpportunityRules) -> tuple[AccountState, list[Outbound]]:
    """Apply one input to the account `account_id`. Updates `state` in place.

    Returns the state and what to send: opportunity events (to "opportunities", keyed by
    opportunity) and corrections refused (to "correction_dlq", with the reason).
    """
    state = state or AccountState(account=message.account)
    state.account = _merge_account(state.account, message.account)
    reducer = _Reducer(state, rules)
    # A target account's opportunities exist before anything else happens to it, whether the
    # worker's Precreate or one of the account's touches arrives first.
    if (target := rules.precreated.get(account_id)) is not None:
        state.account = _merge_account(target.account, state.account)
        reducer.precreate(target.solutions, target.as_of)
    if isinstance(message, MemberUpdate | AccountActivity):
        # Only the account's own touches and cards move its clock: a correction's made_at does
        # not, so corrections read before the touches (a rebuild) do not expire each other.
        state.clock = message.occurred_at if state.clock is None else max(state.clock, message.occurred_at)
    if isinstance(message, MemberUpdate):
        reducer.card(message.member, message.occurred_at)
    elif isinstance(message, AccountActivity):
        reducer.activity(message)
    elif isinstance(message, CorrectionInput):
        reducer.correct(message.correction)
    elif isinstance(message, MemberErased):
        reducer.erase(message.person_id, message.occurred_at, message.input_id)
    if state.waiting:
        reducer.expire_waiting()
    prune_people(state)
    return state, reducer.outputs


def prune_people(state: AccountState) -> None:
    """Keep the cards of people with pending touches only (members carry their own)."""
    waiting = {t.person_id for touches in state.pending.values() for t in touches}
    state.people = {pid: card for pid, card in state.people.items() if pid in waiting}


def precreate_inputs(rules: OpportunityRules) -> list[Outbound]:
    """What the worker feeds the account stage at start so target opportunities exist at once."""
    return [
        Outbound(to="accounts", key=account_id, message=Precreate(
            input_id=f"precreate:{account_id}:{','.join(p.solutions)}", occurred_at=p.as_of, account=p.account,
        ))
        for account_id, p in rules.precreated.items()
    ]
