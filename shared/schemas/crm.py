"""Stage changes a CRM reports through the projection API (bg.crm-stage.v1), and the
qualification of an opportunity (bg.crm-stage.v2): stage moves, exit criteria, the seller's team
and the deal's terms.

Keyed by opportunity_id. The projection API writes them to Kafka instead of straight into its
own tables, so that the topics stay the whole truth: a rebuild from the topics keeps them.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from shared.schemas.base import Message, ShortStr, Text, UtcDatetime

SCHEMA_VERSION = 1

Outcome = Literal["open", "won", "lost"]


class StageChanged(Message):
    schema_version: Literal[1] = SCHEMA_VERSION
    type: Literal["stage_changed"] = "stage_changed"
    event_id: ShortStr  # deterministic for a given change, so a CRM's retry is a duplicate
    opportunity_id: ShortStr
    account_id: ShortStr
    solution: ShortStr
    stage: ShortStr  # the CRM's own stage name ("cold", "closing", "contract", ...)
    outcome: Outcome = "open"
    amount: float | None = Field(None, ge=0, allow_inf_nan=False)  # deal value, credited to touches when won
    currency: ShortStr | None = None
    changed_at: UtcDatetime  # when the CRM recorded the change; the latest one wins
    source: ShortStr = "crm"  # which CRM reported it

    def key(self) -> str:
        return self.opportunity_id


# ---------------------------------------------------------------- bg.crm-stage.v2
# Version 2 of the topic carries the whole qualification of an opportunity, from three kinds
# of author: the qualification rules (services/projection/qualification.py), people (the web
# page, the API) and CRMs. Every message says who, when and why, so that the stage history
# is complete after a rebuild from the topics. Keyed by opportunity_id.

SCHEMA_VERSION_2 = 2

Author = Literal["rules", "person", "crm"]
# A person's words: free text, with the one text check every message shares (no NUL, which
# PostgreSQL cannot store, nor other control characters or lone surrogates).
Reason = Annotated[Text, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class _Qualification(Message):
    schema_version: Literal[2] = SCHEMA_VERSION_2
    event_id: ShortStr  # deterministic for a given fact, so that a retry is a duplicate
    opportunity_id: ShortStr
    account_id: ShortStr
    solution: ShortStr

    def key(self) -> str:
        return self.opportunity_id


class StageMoved(_Qualification):
    """The opportunity moved to a stage of the funnel (services/projection/config/funnel.yaml)."""

    type: Literal["stage_moved"] = "stage_moved"
    stage: ShortStr  # a funnel stage code ("cold", "warm", ..., "won", "lost")
    from_stage: ShortStr | None = None  # the stage it left, as the author saw it
    crm_stage: ShortStr | None = None  # the CRM's own stage name, when a CRM reported it
    outcome: Outcome = "open"
    changed_at: UtcDatetime  # event time of the change; the latest change wins
    changed_by: ShortStr  # a person's name or address, the CRM's name, or "rules"
    author: Author
    reason: Reason | None = None  # why: the person's words, or the criteria that held
    criteria: tuple[ShortStr, ...] = ()  # exit criteria that held (rules' moves)
    amount: float | None = Field(None, ge=0, allow_inf_nan=False)
    currency: ShortStr | None = None


class CriterionMarked(_Qualification):
    """A person says whether an exit criterion holds, with the evidence."""

    type: Literal["criterion_marked"] = "criterion_marked"
    criterion: ShortStr  # a person-set criterion of the funnel
    holds: bool
    evidence: Reason | None = None  # required when holds is true
    marked_by: ShortStr
    marked_at: UtcDatetime


class TeamAssigned(_Qualification):
    """Who plays a seller-side role on the opportunity (person None: nobody any more)."""

    type: Literal["team_assigned"] = "team_assigned"
    role: ShortStr  # a team role of the funnel config (ae, se, pm, kam, csm)
    person: ShortStr | None  # the seller's address or name
    assigned_by: ShortStr
    assigned_at: UtcDatetime


class DealTermsSet(_Qualification):
    """Amount and expected close date, from a person or a CRM."""

    type: Literal["deal_terms_set"] = "deal_terms_set"
    amount: float | None = Field(None, ge=0, allow_inf_nan=False)
    currency: ShortStr | None = None
    expected_close_on: date | None = None
    set_by: ShortStr
    set_at: UtcDatetime


QualificationEvent = Annotated[StageMoved | CriterionMarked | TeamAssigned | DealTermsSet,
                               Field(discriminator="type")]
