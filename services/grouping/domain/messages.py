"""Messages between the grouping stages (internal topics), and what a stage asks to send.

    bg.person-events.v1 --route--> persons (identity nodes by anon/user id, profiles by person)
    persons <-> names (the company-name directory, by name block) ; persons --> accounts (by account)
    accounts --reduce--> bg.opportunity.v1
    bg.correction.v1 --corrections--> accounts (by the account of the corrected opportunity)

The domain's destinations "identity" and "people" are one topic (`persons`): one stage holds
both kinds of per-person state, so a released or relayed event is no extra stage.

Internal messages reuse the contract's models where they can (a person event released by
identity stitching is the original TouchEvent/IdentityEvent with the email filled in).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from shared.codec import Codec
from shared.schemas.base import Message, UtcDatetime
from shared.schemas.correction import AccountsMerged, Correction
from shared.schemas.opportunity import (
    AccountRef,
    AccountTouch,
    ClockTick,
    MemberAdded,
    MemberRef,
    MemberRemoved,
    MemberRoleChanged,
    MemberStanceChanged,
    OpportunityCreated,
    OpportunityMerged,
    TouchAttributed,
    TouchRef,
)
from shared.schemas.privacy import PersonErased
from shared.schemas.touch import IdentityEvent, TouchEvent


class Refused(ValueError):
    """A message the domain will not apply, with a reason (a merge into itself, a cycle of merges,
    an undo of no known merge). The agent dead-letters it with `reason` and `detail` and goes on."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class IdentityLink(Message):
    """Tells the node of one identifier (anon:/user:) about an email and/or other identifiers."""

    type: Literal["identity_link"] = "identity_link"
    link_id: str  # deterministic, so a replayed link is recognised
    occurred_at: UtcDatetime
    identifier: str
    email: str | None = None
    aliases: tuple[str, ...] = ()


class NameLookup(Message):
    """A person without a corporate domain asks the directory which account a company name is."""

    type: Literal["name_lookup"] = "name_lookup"
    lookup_id: str
    occurred_at: UtcDatetime
    person_id: str
    name: str  # normalised company name
    display_name: str


class NameRegistration(Message):
    """A company name seen with a corporate domain: later lookups of that name find this account."""

    type: Literal["name_registration"] = "name_registration"
    occurred_at: UtcDatetime
    name: str
    account: AccountRef


class AccountAssigned(Message):
    type: Literal["account_assigned"] = "account_assigned"
    lookup_id: str
    occurred_at: UtcDatetime
    person_id: str
    name: str
    account: AccountRef


class AccountActivity(Message):
    """A touch of an identified person of a known account, tagged with solutions."""

    type: Literal["account_activity"] = "account_activity"
    input_id: str  # the touch's event id
    occurred_at: UtcDatetime
    account: AccountRef
    member: MemberRef  # the person as the people stage knows them now
    touch: TouchRef
    solutions: tuple[str, ...] = ()
    via: tuple[str, ...] = ()  # merged accounts that forwarded it here, in order (domain/merge.py)
    solution_basis: dict[str, str] = Field(default_factory=dict)  # per solution, the content that matched


class MemberUpdate(Message):
    """What is known about a person changed without a touch (identify call, form traits)."""

    type: Literal["member_update"] = "member_update"
    input_id: str
    occurred_at: UtcDatetime
    account: AccountRef
    member: MemberRef
    via: tuple[str, ...] = ()  # merged accounts that forwarded it here, in order (domain/merge.py)


class MemberErased(Message):
    """The person was erased (PersonErased): the account stage removes them from its opportunities."""

    type: Literal["member_erased"] = "member_erased"
    input_id: str
    occurred_at: UtcDatetime
    account: AccountRef
    person_id: str


class Precreate(Message):
    """Wakes a target account of the ABM list so its pre-created opportunities exist at once."""

    type: Literal["precreate"] = "precreate"
    input_id: str
    occurred_at: UtcDatetime
    account: AccountRef


class CorrectionInput(Message):
    """A correction (bg.correction.v1) on its way to the account stage that owns its opportunity."""

    type: Literal["correction"] = "correction"
    input_id: str  # the correction id
    occurred_at: UtcDatetime  # made_at
    account: AccountRef  # only the id is known here; the account stage holds the rest
    correction: Correction


class CorrectionRefused(Message):
    """A correction grouping cannot apply; its agent writes it to bg.correction.dlq.v1."""

    type: Literal["correction_refused"] = "correction_refused"
    correction: Correction
    reason: str  # machine-readable: unknown_opportunity, unknown_solution, cannot_undo, ...
    detail: str


class AccountMerge(Message):
    """To the account that is absorbed (key: `account`): merge yourself into `into` (domain/merge.py).

    Sent by the names stage when a corporate colleague reveals the domain of an account made
    from a company name (merge_id "merge:<name account>><domain account>"), or routed from an
    accounts_merged correction (merge_id: the correction's id)."""

    type: Literal["account_merge"] = "account_merge"
    input_id: str
    merge_id: str
    occurred_at: UtcDatetime  # the registration's event time, or the correction's made_at
    account: AccountRef  # the account absorbed
    into: AccountRef
    correction: AccountsMerged | None = None  # the person's correction; None: the automatic merge


class MovedOpportunity(Message):
    solution: str
    opportunity_id: str  # its id in the account absorbed
    members: tuple[MemberRef, ...]


class AccountMoved(Message):
    """The absorbed account -> the surviving one (key: `account`): what it held when merged."""

    type: Literal["account_moved"] = "account_moved"
    input_id: str  # "moved:<merge id>"
    merge_id: str
    occurred_at: UtcDatetime
    account: AccountRef  # the surviving account
    source: AccountRef  # the account absorbed
    absorbed: tuple[str, ...] = ()  # accounts the source had absorbed before (cycle checks)
    people: tuple[MemberRef, ...] = ()
    opportunities: tuple[MovedOpportunity, ...] = ()
    pending: tuple[tuple[str, TouchRef], ...] = ()  # (solution, touch) still waiting for creation
    via: tuple[str, ...] = ()  # merged accounts that forwarded it here


class AccountRestored(Message):
    """The surviving account -> the absorbed one (key: `account`): the merge was undone, stand alone."""

    type: Literal["account_restored"] = "account_restored"
    input_id: str  # "restored:<merge id>"
    merge_id: str
    occurred_at: UtcDatetime
    account: AccountRef  # the account that was absorbed


IdentityInput = Annotated[TouchEvent | IdentityEvent | IdentityLink | PersonErased, Field(discriminator="type")]
PeopleInput = Annotated[TouchEvent | IdentityEvent | AccountAssigned | PersonErased, Field(discriminator="type")]
# The persons and accounts stages also read the watermarks of the stage before them, in band
# (services/grouping/clock.py); the reducers never see them.
PersonsInput = Annotated[TouchEvent | IdentityEvent | IdentityLink | AccountAssigned | PersonErased | ClockTick,
                         Field(discriminator="type")]
NamesInput = Annotated[NameLookup | NameRegistration, Field(discriminator="type")]
AccountInput = Annotated[AccountActivity | MemberUpdate | Precreate | CorrectionInput | MemberErased,
                         Field(discriminator="type")]
MergeInput = AccountMerge | AccountMoved | AccountRestored
# Everything the accounts stage reads (domain/merge.py's step takes the merge messages first).
AccountStageInput = Annotated[AccountActivity | MemberUpdate | Precreate | CorrectionInput | MemberErased
                              | AccountMerge | AccountMoved | AccountRestored | ClockTick, Field(discriminator="type")]

AnyMessage = Annotated[
    TouchEvent | IdentityEvent | IdentityLink | NameLookup | NameRegistration | AccountAssigned | PersonErased
    | AccountActivity | MemberUpdate | Precreate | MemberErased | CorrectionInput | CorrectionRefused
    | AccountMerge | AccountMoved | AccountRestored
    | OpportunityCreated | MemberAdded | MemberRoleChanged | MemberRemoved | MemberStanceChanged
    | TouchAttributed | AccountTouch | OpportunityMerged | ClockTick,
    Field(discriminator="type"),
]

Destination = Literal["identity", "people", "names", "accounts", "opportunities", "correction_dlq"]


class Outbound(Message):
    """One message a reducer asks its agent to send: destination topic, key and value, and the
    partition when it is not the key's (a clock tick goes to every partition)."""

    to: Destination
    key: str
    message: AnyMessage
    partition: int | None = None


persons_inputs: Codec[PersonsInput] = Codec(PersonsInput)
names_inputs: Codec[NamesInput] = Codec(NamesInput)
account_inputs: Codec[AccountStageInput] = Codec(AccountStageInput)
