"""Opportunity events: what grouping writes and scoring and projection read (bg.opportunity.v1).

Keyed by opportunity_id. Each opportunity's events carry a version that rises by one, so a
consumer applies an event only when it is newer than what it holds (idempotent replays).
Account-level touches (no solution) carry opportunity_id=None and are keyed by account_id.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from shared.schemas.base import Hostname, Identifier, Message, NonEmptyStr, ShortStr, Text, UtcDatetime
from shared.schemas.correction import Influence, Stance
from shared.schemas.roles import BuyingRole, Department, Level, RoleSource
from shared.schemas.touch import Source, TouchKind

SCHEMA_VERSION = 1


def opportunity_id(account_id: str, solution: str) -> str:
    return f"{account_id}:{solution}"


class AccountRef(Message):
    account_id: ShortStr  # the registrable domain, or "name:<normalised company name>"
    name: NonEmptyStr | None = None
    domains: tuple[Hostname, ...] = ()
    owner: NonEmptyStr | None = None  # the account owner on the seller's side (ABM list)


class Basis(Message):
    """Why one fact about a member holds: the rule that decided it, or the correction that set it.

    `rule` names the kind of decision: for the account "domain" (the email's registrable
    domain), "company_name" (a free-mail person matched by company name), "merge"; for the
    solution "content" (the catalog matched the touch's page, asset or topic) or "correction";
    for the role "title" (a job-title rule), "stated" (a form's role field), "behaviour" (what
    they read), "default" or "correction". `detail` is what matched (the domain, the asset or
    page, the title pattern); a correction names itself and its author.
    """

    rule: ShortStr
    detail: Text | None = None
    correction_id: ShortStr | None = None
    author: ShortStr | None = None


class MemberWhy(Message):
    """"Why is this person here, in this role?": the basis of the member's account, solution and role."""

    account: Basis | None = None
    solution: Basis | None = None
    role: Basis | None = None


class MemberRef(Message):
    person_id: ShortStr  # normalised email, else "user:<id>"
    email: Identifier | None = None
    name: NonEmptyStr | None = None
    job_title: NonEmptyStr | None = None
    department: Department
    role: BuyingRole  # in an opportunity: the role in that solution's group (profiles.yaml)
    role_source: RoleSource
    level: Level | None = None  # seniority from the job title; None when no title tells
    # Set by hand (bg.correction.v1 member_stance_set); None: nobody said.
    stance: Stance | None = None
    influence: Influence | None = None
    why: MemberWhy | None = None  # provenance; None from writers that predate it
    # The person's raw email and name, sealed by ingest (shared/schemas/touch.py Person.sealed):
    # `email` holds a pseudonym and `name` nothing; a reader with the vault opens it.
    sealed: str | None = None


class TouchRef(Message):
    event_id: ShortStr
    occurred_at: UtcDatetime
    source: Source
    kind: TouchKind
    person_id: ShortStr
    url: Identifier | None = None
    title: Text | None = None
    asset_id: Identifier | None = None
    topic: Text | None = None
    # Made by a machine (touch.automated): kept for the record, never engagement.
    automated: bool = False


class _OpportunityEventBase(Message):
    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: ShortStr  # "<opportunity_id>@<version>", or "<account_id>@touch:<touch id>"
    opportunity_id: ShortStr | None
    solution: ShortStr | None
    account: AccountRef
    version: int = Field(ge=1)
    occurred_at: UtcDatetime  # event time of the touch that caused it

    def key(self) -> str:
        return self.opportunity_id or self.account.account_id


class OpportunityCreated(_OpportunityEventBase):
    type: Literal["opportunity_created"] = "opportunity_created"
    # "manual": opened by a person (bg.correction.v1 opportunity_opened, `correction_id`).
    origin: Literal["auto", "precreated", "manual"] = "auto"
    correction_id: ShortStr | None = None
    author: ShortStr | None = None
    expected_roles: tuple[BuyingRole, ...] = ()
    required_roles: tuple[BuyingRole, ...] = ()


class MemberAdded(_OpportunityEventBase):
    type: Literal["member_added"] = "member_added"
    member: MemberRef


class MemberRoleChanged(_OpportunityEventBase):
    type: Literal["member_role_changed"] = "member_role_changed"
    member: MemberRef
    previous_role: BuyingRole
    # The correction behind the change (member_role_set, or an undo); None: a rule's.
    correction_id: ShortStr | None = None
    author: ShortStr | None = None


class MemberRemoved(_OpportunityEventBase):
    """A member taken out of the group by hand (member_unlinked, the undo of a member_linked, or
    the undo of the accounts merge that brought them)."""

    type: Literal["member_removed"] = "member_removed"
    member: MemberRef  # the member as they were
    correction_id: ShortStr
    author: ShortStr
    # The person was erased (docs/privacy.md; correction_id "erase:<request>", author "privacy"):
    # consumers also drop every touch of theirs and their contact card. An account-level one
    # (opportunity_id None) removes the person's touches of the account itself.
    erased: bool = False


class MemberStanceChanged(_OpportunityEventBase):
    """Champion / blocker / neutral and influence, set by hand (member_stance_set) or undone.

    Forwarded by grouping so that scoring reads membership and stance from one ordered log.
    `member.stance` None: no stance any more (its last one was undone)."""

    type: Literal["member_stance_changed"] = "member_stance_changed"
    member: MemberRef
    previous_stance: Stance | None = None
    previous_influence: Influence | None = None
    correction_id: ShortStr
    author: ShortStr


class TouchAttributed(_OpportunityEventBase):
    type: Literal["touch_attributed"] = "touch_attributed"
    touch: TouchRef


class OpportunityMerged(_OpportunityEventBase):
    """The opportunity's account was merged into another (grouping, services/grouping/domain/merge.py).

    `merged_into`: the surviving account's opportunity of the same solution, which took this
    one's members; its touches are read with it. None: the merge was undone and this
    opportunity stands on its own again. `merge_id` is the accounts_merged correction's id, or
    "merge:<name account>><domain account>" for the automatic merge of an account made from a
    company name into the domain a corporate colleague revealed (issue 15).
    """

    type: Literal["opportunity_merged"] = "opportunity_merged"
    merged_into: ShortStr | None
    merge_id: ShortStr


class AccountTouch(_OpportunityEventBase):
    """A touch of a known account that shows no solution interest (home page, careers)."""

    type: Literal["account_touch"] = "account_touch"
    touch: TouchRef


OpportunityEvent = Annotated[
    OpportunityCreated | MemberAdded | MemberRoleChanged | MemberRemoved | MemberStanceChanged | TouchAttributed
    | AccountTouch | OpportunityMerged,
    Field(discriminator="type"),
]


class ClockTick(Message):
    """A watermark written into the log, in band with the data, so that time moves on a quiet
    partition and never runs ahead of data still inside grouping (docs/time.md).

    Grouping's stages forward them as Flink's operators forward watermarks
    (services/grouping/clock.py): `stage` names the stage whose input partitions the keys of
    `watermarks` are, and each value is that partition's watermark (UTC). A watermark promises
    that the sender has written every output of that input partition's records up to it before
    this tick (within one partition of the topic the tick is on).

    - "route": keys are partitions of bg.person-events.v1; route's watermark per input partition
      is the latest event time read, or the wall clock once idle and caught up (Flink's
      idleness). Sent to every partition of grouping's persons topic; before the watermarks
      were carried through the stages, grouping sent these to bg.opportunity.v1 (schema 1
      without `stage`, which decodes as "route").
    - "persons": keys are partitions of the persons topic; the minimum over every route
      partition heard on it. Sent to every partition of the accounts topic.
    - "accounts": keys are partitions of the accounts topic; the minimum over every persons
      partition heard on it. Sent to every partition of bg.opportunity.v1: scoring's clock.

    `of`: how many partitions the stage has (None in ticks written before it existed), so a
    receiver knows it has heard from all of them before it takes their minimum. `wall`: the
    wall clock of the route worker that started the tick. Consumers never read a wall clock of
    their own to decide: replaying the log replays the ticks.
    """

    schema_version: Literal[1] = SCHEMA_VERSION
    type: Literal["clock_tick"] = "clock_tick"
    watermarks: dict[int, UtcDatetime]
    wall: UtcDatetime
    # Left out while at their defaults, so a route tick encodes as schema 1 did before them.
    stage: Literal["route", "persons", "accounts"] = Field("route", exclude_if=lambda stage: stage == "route")
    of: int | None = Field(None, ge=1, exclude_if=lambda of: of is None)

    def key(self) -> str:
        return "#clock"


# Everything on bg.opportunity.v1: the opportunity events and the clock ticks between them.
OpportunityLogMessage = Annotated[
    OpportunityCreated | MemberAdded | MemberRoleChanged | MemberRemoved | MemberStanceChanged | TouchAttributed
    | AccountTouch | OpportunityMerged | ClockTick,
    Field(discriminator="type"),
]
