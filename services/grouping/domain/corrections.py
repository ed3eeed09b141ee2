"""Corrections people make (bg.correction.v1), as grouping keeps and applies them.

    route(correction, solutions)   -> what the corrections stage sends (to the account stage, or refused)
    ManualFacts                    what an opportunity keeps per person corrected by hand

Grouping owns membership, accounts and roles, so it applies opportunity_opened, member_linked,
member_unlinked, member_role_set and the undo of those; it also forwards member_stance_set
into the opportunity log (MemberStanceChanged), so that scoring reads membership and stance in
one order. member_note_set is projection's alone. accounts_merged goes to the account absorbed
(`_route_merge`), and the account stage applies it and its undo (domain/merge.py).

A hand-set fact is an overlay on what the rules decide, never an edit of it: an opportunity
keeps, per corrected person, the rules' own view (`by_rules`, `rule_card`, still updated by
touches and cards) and the fixes in the order they were made (event time `made_at`, ties by
correction id). The member is the rules' view with the latest fix of each kind on top, so

- a person linked by hand is a member whatever touches say later, one unlinked is never one;
- a role set by hand (RoleSource.manual) stays when the job title changes;
- undo drops one fix and the member becomes what the other facts give: the state as if that
  correction had never been made;
- the result does not depend on whether a correction is read before or after a touch (a
  rebuild from the topics reads them in another interleaving than live did).
"""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel, Field

from services.grouping.domain.messages import AccountMerge, CorrectionInput, CorrectionRefused, Outbound
from shared.schemas.correction import (
    AccountsMerged,
    Correction,
    CorrectionUndone,
    Influence,
    MemberNoteSet,
    OpportunityOpened,
    Stance,
)
from shared.schemas.opportunity import AccountRef, Basis, MemberRef, MemberWhy
from shared.schemas.roles import BuyingRole, Department, RoleSource

# Corrections grouping has nothing to do with (projection applies them).
IGNORED = (MemberNoteSet,)


class Fix(BaseModel):
    correction_id: str
    author: str
    made_at: datetime
    reason: str | None = None

    def basis(self) -> Basis:
        return Basis(rule="correction", detail=self.reason, correction_id=self.correction_id, author=self.author)


class MembershipFix(Fix):
    linked: bool  # True: member_linked; False: member_unlinked


class RoleFix(Fix):
    role: BuyingRole
    department: Department | None = None


class StanceFix(Fix):
    stance: Stance
    influence: Influence


F = TypeVar("F", bound=Fix)


def _insert(fixes: list[F], fix: F) -> None:
    """Keep fixes in the order they were made (made_at, then correction id): the latest wins."""
    fixes.append(fix)
    fixes.sort(key=lambda f: (f.made_at, f.correction_id))


class ManualFacts(BaseModel):
    """What an opportunity knows about one person corrected by hand.

    `by_rules`: the rules made them a member (an engaged touch on the solution); `rule_card`:
    the member card the rules give them now (None while nothing is known of the person).
    """

    by_rules: bool = False
    rule_card: MemberRef | None = None
    membership: list[MembershipFix] = Field(default_factory=list)
    roles: list[RoleFix] = Field(default_factory=list)
    stances: list[StanceFix] = Field(default_factory=list)

    def add(self, fix: Fix) -> None:
        if isinstance(fix, MembershipFix):
            _insert(self.membership, fix)
        elif isinstance(fix, RoleFix):
            _insert(self.roles, fix)
        elif isinstance(fix, StanceFix):
            _insert(self.stances, fix)

    def drop(self, correction_id: str) -> bool:
        """Remove every fix of one correction (a link may carry a role too); True if any was here."""
        before = len(self.membership) + len(self.roles) + len(self.stances)
        self.membership = [f for f in self.membership if f.correction_id != correction_id]
        self.roles = [f for f in self.roles if f.correction_id != correction_id]
        self.stances = [f for f in self.stances if f.correction_id != correction_id]
        return before != len(self.membership) + len(self.roles) + len(self.stances)

    def is_member(self) -> bool:
        return self.membership[-1].linked if self.membership else self.by_rules

    def card(self) -> MemberRef | None:
        """The member as the opportunity shows them: the rules' card under the latest fixes."""
        if not self.is_member() or self.rule_card is None:
            return None
        card = self.rule_card
        why = card.why
        update: dict[str, object] = {}
        if self.membership and not self.by_rules:
            why = (why or MemberWhy()).model_copy(update={"solution": self.membership[-1].basis()})
        if self.roles:
            fix = self.roles[-1]
            update |= {"role": fix.role, "department": fix.department or card.department,
                       "role_source": RoleSource.manual}
            why = (why or MemberWhy()).model_copy(update={"role": fix.basis()})
        if self.stances:
            update |= {"stance": self.stances[-1].stance, "influence": self.stances[-1].influence}
        else:
            update |= {"stance": None, "influence": None}
        update["why"] = why
        return card.model_copy(update=update)


def unknown_card(person_id: str, fix: Fix, department: Department | None) -> MemberRef:
    """The card of a person linked by hand before any touch or card of theirs reached the account:
    what the correction says, refined by the rules once the person shows up."""
    return MemberRef(
        person_id=person_id, email=person_id if "@" in person_id else None,
        department=department or Department.other, role=BuyingRole.influencer, role_source=RoleSource.default,
        why=MemberWhy(account=fix.basis(), solution=fix.basis()),
    )


def account_of(subject: str, solutions: frozenset[str]) -> tuple[str, str | None]:
    """(account id, solution or None) of a correction's key: "<account>:<solution>" names an
    opportunity when the part after the last colon is a solution of the catalog; anything else
    is an account (a surviving account of a merge). Account ids may hold colons ("name:...").
    """
    account, _, solution = subject.rpartition(":")
    if account and solution in solutions:
        return account, solution
    return subject, None


def refused(correction: Correction, reason: str, detail: str) -> Outbound:
    return Outbound(to="correction_dlq", key=correction.key(),
                    message=CorrectionRefused(correction=correction, reason=reason, detail=detail))


def _to_account(correction: Correction, account_id: str) -> Outbound:
    return Outbound(to="accounts", key=account_id, message=CorrectionInput(
        input_id=correction.correction_id, occurred_at=correction.made_at,
        account=AccountRef(account_id=account_id), correction=correction))


def _route_merge(correction: AccountsMerged) -> list[Outbound]:
    """To the account absorbed, which hands everything over to the surviving one (domain/merge.py).
    Its undo (correction_undone, subject: the surviving account) goes to the surviving account
    like any other, which knows its merges by id."""
    merge = AccountMerge(
        input_id=correction.correction_id, merge_id=correction.correction_id, occurred_at=correction.made_at,
        account=AccountRef(account_id=correction.merged), into=AccountRef(account_id=correction.into),
        correction=correction)
    return [Outbound(to="accounts", key=correction.merged, message=merge)]


def route(correction: Correction, solutions: frozenset[str]) -> list[Outbound]:
    """Where one correction goes: to the account stage that owns its opportunity (keyed by
    account id), to the correction dead letters with the reason, or nowhere (not grouping's).

    `solutions`: the catalog's slugs, which tell an opportunity id from an account id.
    """
    if isinstance(correction, IGNORED):
        return []
    if isinstance(correction, AccountsMerged):
        return _route_merge(correction)
    if isinstance(correction, OpportunityOpened):
        expected = f"{correction.account_id}:{correction.solution}"
        if correction.opportunity_id != expected:
            return [refused(correction, "inconsistent_opportunity_id",
                            f"opportunity_id {correction.opportunity_id!r} is not account_id:solution ({expected!r})")]
        if correction.solution not in solutions:
            return [refused(correction, "unknown_solution", f"solution {correction.solution!r} is not in the catalog")]
        return [_to_account(correction, correction.account_id)]
    subject = correction.subject if isinstance(correction, CorrectionUndone) else correction.opportunity_id
    account_id, solution = account_of(subject, solutions)
    if solution is None and not isinstance(correction, CorrectionUndone):
        return [refused(correction, "unknown_opportunity",
                        f"opportunity_id {subject!r} names no solution of the catalog")]
    return [_to_account(correction, account_id)]

