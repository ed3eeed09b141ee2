"""What a correction request must be before it goes on bg.correction.v1 (issue 16): the request
bodies of the write endpoints, the conflicts that are refused (409), and the messages built from
a valid request. Pure: the router (correction_api.py) reads the projection, calls these, and
publishes.

A correction is refused before it reaches the log, so that every correction on the topic is one
the services can apply:
- 422: a body that does not fit (the field is named: body.role, body.concerns.0, ...);
- 404: an opportunity, person or account the projection does not know;
- 409: a conflict, with the reason: an account merged into itself, into an account that was
  itself merged away, an account already merged, a cycle of merges; an opportunity opened
  twice; an undo of an unknown correction, of an undo, or of a correction already undone.
Reasons are "Russian / English" (the page shows them to people as they are).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shared.schemas.base import ShortStr
from shared.schemas.correction import (
    AccountsMerged,
    Concern,
    CorrectionUndone,
    Influence,
    MemberLinked,
    MemberNoteSet,
    MemberRoleSet,
    MemberStanceSet,
    MemberUnlinked,
    OpportunityOpened,
    Reason,
    Stance,
)
from shared.schemas.opportunity import opportunity_id as opportunity_id_of
from shared.schemas.roles import BuyingRole, Department

# A client's own id makes a retry idempotent: the same id twice is one correction.
ClientId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:\-]{1,100}$")]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,50}$")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason | None = Field(None, description="why (shown in the history)")
    correction_id: ClientId | None = Field(
        None, description="the client's own id, to retry safely (default: a new one); the same id again is "
                          "answered as a duplicate and written once")


class OpenRequest(_Body):
    account_id: ShortStr = Field(description="the account (registrable domain or name:<company>)")
    solution: Slug = Field(description="a solution of the catalog (grouping's catalog.yaml), e.g. hr")
    profile: Slug | None = Field(None, description="a group profile of profiles.yaml; default: the solution's")


class LinkRequest(_Body):
    person_id: ShortStr = Field(description="a known person: normalised email, else user:<id>")
    role: BuyingRole | None = Field(None, description="default: the role the rules give the person")
    department: Department | None = None


class UnlinkRequest(_Body):
    pass


class RoleRequest(_Body):
    role: BuyingRole
    department: Department | None = None


class StanceRequest(_Body):
    stance: Stance = Field(description="champion, blocker or neutral")
    influence: Influence = Field("medium", description="high, medium or low")


class NoteRequest(_Body):
    note: Reason | None = Field(None, description="free text; replaces the previous note (null clears it)")
    concerns: list[Concern] = Field([], max_length=4, description="usability, integration_security, tco_roi, "
                                                                   "strategic_fit")


class MergeRequest(_Body):
    into: ShortStr = Field(description="the account that survives")
    merged: ShortStr = Field(description="the account absorbed: its people, opportunities and touches move")


class UndoRequest(_Body):
    pass


class CorrectionAccepted(BaseModel):
    correction_id: str
    type: str
    subject: str = Field(description="the message key: the opportunity, or the surviving account of a merge")
    author: str = Field(description="the user name the write token carries")
    made_at: datetime
    result: str = Field(description="recorded: in the history now; pending: acknowledged by Kafka, not yet in "
                                    "the history (read the opportunity again); duplicate: this correction id "
                                    "was recorded before")
    message: str


def new_id() -> str:
    return f"c-{uuid.uuid4().hex}"


def merge_conflict(into: str, merged: str, merges: Mapping[str, str]) -> str | None:
    """Why merging `merged` into `into` is refused, else None. `merges`: the merges in force,
    {absorbed account: surviving account}."""
    if into == merged:
        return f"компанию нельзя объединить с ней самой / an account cannot be merged into itself ({into})"
    if merged in merges:
        return (f"{merged} уже объединена с {merges[merged]}: сначала отмените то объединение / "
                f"{merged} is already merged into {merges[merged]}; undo that merge first")
    chain = [into]
    while chain[-1] in merges and merges[chain[-1]] not in chain:
        chain.append(merges[chain[-1]])
    if merged in chain:
        # `into` already ends in `merged`: merging back would close the loop.
        path = " -> ".join([merged, *chain[: chain.index(merged) + 1]])
        return f"объединения замкнулись бы в круг / a cycle of merges: {path}"
    if len(chain) > 1:
        return (f"{into} уже объединена с {chain[-1]}: объединяйте с {chain[-1]} / "
                f"{into} was merged into {chain[-1]}; merge into {chain[-1]} instead")
    return None


def undo_conflict(correction_id: str, found: Mapping[str, Any] | None) -> str | None:
    """Why undoing `correction_id` is refused (`found`: its history row, or None), else None."""
    if found is None:
        return (f"правки {correction_id!r} нет в истории / no correction {correction_id!r} in the history "
                "(unknown, or made a moment ago and not yet recorded: retry shortly)")
    if found["type"] == "correction_undone":
        return (f"правка {correction_id!r} сама отмена: сделайте правку заново / "
                f"correction {correction_id!r} is itself an undo; make the correction again instead")
    if found["undone_by_id"] is not None:
        at = found["undone_at"].isoformat() if found["undone_at"] else "?"
        return (f"правка {correction_id!r} уже отменена / "
                f"correction {correction_id!r} was already undone by {found['undone_by']} at {at}")
    return None


def _common(body: _Body, author: str, at: datetime) -> dict[str, Any]:
    return {"correction_id": body.correction_id or new_id(), "author": author, "made_at": at, "reason": body.reason}


def opened(body: OpenRequest, author: str, at: datetime) -> OpportunityOpened:
    return OpportunityOpened(**_common(body, author, at), opportunity_id=opportunity_id_of(body.account_id,
                             body.solution), account_id=body.account_id, solution=body.solution, profile=body.profile)


def linked(opportunity_id: str, body: LinkRequest, author: str, at: datetime) -> MemberLinked:
    return MemberLinked(**_common(body, author, at), opportunity_id=opportunity_id, person_id=body.person_id,
                        role=body.role, department=body.department)


def unlinked(opportunity_id: str, person_id: str, body: UnlinkRequest, author: str, at: datetime) -> MemberUnlinked:
    return MemberUnlinked(**_common(body, author, at), opportunity_id=opportunity_id, person_id=person_id)


def role_set(opportunity_id: str, person_id: str, body: RoleRequest, author: str, at: datetime) -> MemberRoleSet:
    return MemberRoleSet(**_common(body, author, at), opportunity_id=opportunity_id, person_id=person_id,
                         role=body.role, department=body.department)


def stance_set(opportunity_id: str, person_id: str, body: StanceRequest, author: str, at: datetime
               ) -> MemberStanceSet:
    return MemberStanceSet(**_common(body, author, at), opportunity_id=opportunity_id, person_id=person_id,
                           stance=body.stance, influence=body.influence)


def note_set(opportunity_id: str, person_id: str, body: NoteRequest, author: str, at: datetime) -> MemberNoteSet:
    return MemberNoteSet(**_common(body, author, at), opportunity_id=opportunity_id, person_id=person_id,
                         note=body.note, concerns=tuple(dict.fromkeys(body.concerns)))


def merged(body: MergeRequest, author: str, at: datetime) -> AccountsMerged:
    return AccountsMerged(**_common(body, author, at), into=body.into, merged=body.merged)


def undone(target: Mapping[str, Any], body: UndoRequest, author: str, at: datetime) -> CorrectionUndone:
    return CorrectionUndone(**_common(body, author, at), undoes=target["correction_id"], subject=target["subject"])
