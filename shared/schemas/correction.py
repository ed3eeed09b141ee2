"""Corrections people make to what the rules decided (bg.correction.v1).

The brief (DOMAIN.md, "manual work" and "qualifying and validating the group") names what no
tracking can do: link a colleague by hand, fix a role, merge two accounts that are one
company, mark the champion and the likely blocker, note what each member cares about. Each of
those is a message here, written by the read API's write endpoints and the web page, and
applied by the service that owns the fact:

- grouping: opportunity_opened, member_linked, member_unlinked, member_role_set,
  accounts_merged (membership, accounts and roles);
- scoring: member_stance_set (champion / blocker and influence weigh in the score);
- projection: member_note_set (free text), and the history of every correction.

`correction_undone` names an earlier correction by its id; the owner of that correction
reverts it. Every message carries who (`author`, from the write token), when (`made_at`, event
time: the moment the person made it) and why (`reason`). Because corrections live in the log,
a rebuild from the topics keeps them, and no automatic rule overrides one: a manual fact is
the strongest source (RoleSource.manual).

Keyed by the entity the correction is about: the opportunity, or for merges the account that
survives, so that all corrections of one thing are read in order.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from shared.schemas.base import Message, ShortStr, Text, UtcDatetime
from shared.schemas.roles import BuyingRole, Department

SCHEMA_VERSION = 1

# A person's words, with the one text check every message shares.
Reason = Annotated[Text, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
# Standard deal-qualification vocabulary (MEDDICC's champion; the "likely blocker" of the brief).
Stance = Literal["champion", "blocker", "neutral"]
Influence = Literal["high", "medium", "low"]
# What a member cares about, as the brief lists it.
Concern = Literal["usability", "integration_security", "tco_roi", "strategic_fit"]


class _Correction(Message):
    schema_version: Literal[1] = SCHEMA_VERSION
    correction_id: ShortStr  # unique per correction; a retry with the same id is a duplicate
    author: ShortStr  # the user name the write token carries
    made_at: UtcDatetime  # when the person made it (event time of the correction)
    reason: Reason | None = None


class _OpportunityCorrection(_Correction):
    opportunity_id: ShortStr  # "<account_id>:<solution>"

    def key(self) -> str:
        return self.opportunity_id


class OpportunityOpened(_OpportunityCorrection):
    """An opportunity created by hand for an account and a solution, before or without touches."""

    type: Literal["opportunity_opened"] = "opportunity_opened"
    account_id: ShortStr
    solution: ShortStr
    profile: ShortStr | None = None  # a group profile of profiles.yaml; None: the solution's own


class MemberLinked(_OpportunityCorrection):
    """A person put into the opportunity's buying group by hand; stays whatever touches say later."""

    type: Literal["member_linked"] = "member_linked"
    person_id: ShortStr  # normalised email, else "user:<id>"
    role: BuyingRole | None = None  # None: the role the rules give the person
    department: Department | None = None


class MemberUnlinked(_OpportunityCorrection):
    """A person taken out of the group by hand; later touches do not bring them back."""

    type: Literal["member_unlinked"] = "member_unlinked"
    person_id: ShortStr


class MemberRoleSet(_OpportunityCorrection):
    """A member's role (and department) fixed by hand; a later job title does not change it."""

    type: Literal["member_role_set"] = "member_role_set"
    person_id: ShortStr
    role: BuyingRole
    department: Department | None = None


class MemberStanceSet(_OpportunityCorrection):
    """Champion, blocker or neutral, with influence: weighs in the score and its explanation."""

    type: Literal["member_stance_set"] = "member_stance_set"
    person_id: ShortStr
    stance: Stance
    influence: Influence = "medium"


class MemberNoteSet(_OpportunityCorrection):
    """Free text and concerns about a member; replaces the previous note."""

    type: Literal["member_note_set"] = "member_note_set"
    person_id: ShortStr
    note: Reason | None = None
    concerns: tuple[Concern, ...] = ()
    # The note sealed under the member's own key (shared/privacy/seal.py, {"note": text}): the
    # corrections API writes it in place of `note`, so that erasing the member leaves nothing of
    # it readable on the log (docs/privacy.md); readers open it with the vault.
    sealed_note: Annotated[str, StringConstraints(min_length=1, max_length=20000)] | None = None


class AccountsMerged(_Correction):
    """Two accounts are one company: `merged` moves into `into` (people, opportunities, touches),
    and later touches to either account's domains land in `into`."""

    type: Literal["accounts_merged"] = "accounts_merged"
    into: ShortStr  # the account that survives
    merged: ShortStr  # the account that is absorbed

    @model_validator(mode="after")
    def _not_itself(self) -> AccountsMerged:
        if self.into == self.merged:
            raise ValueError("an account cannot be merged into itself")
        return self

    def key(self) -> str:
        return self.into


class CorrectionUndone(_Correction):
    """An earlier correction reverted; the service that applied it restores the state before it."""

    type: Literal["correction_undone"] = "correction_undone"
    undoes: ShortStr  # the correction_id reverted
    subject: ShortStr  # the key of the correction reverted (its opportunity or surviving account)

    def key(self) -> str:
        return self.subject


# Every message of bg.correction.v1: the plain union for isinstance and type hints, and the same
# union discriminated by `type` for decoding.
CorrectionMessage = (OpportunityOpened | MemberLinked | MemberUnlinked | MemberRoleSet | MemberStanceSet
                     | MemberNoteSet | AccountsMerged | CorrectionUndone)
Correction = Annotated[CorrectionMessage, Field(discriminator="type")]
