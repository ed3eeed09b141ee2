"""CRM records in one shape, whichever CRM they come from (the adapters normalise into these).

Times are aware UTC datetimes; ids are the CRM's own, as strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Semantic = Literal["open", "won", "lost"]


@dataclass(frozen=True)
class Deal:
    """A Bitrix24 deal or an amoCRM lead."""

    crm: str
    deal_id: str
    title: str
    stage_id: str  # Bitrix24 STAGE_ID ("C1:PREPARATION"), amoCRM status_id ("142")
    semantic: Semantic  # Bitrix24 STAGE_SEMANTIC_ID P/S/F; amoCRM status 142 won, 143 lost
    modified_at: datetime
    moved_at: datetime | None = None  # when the stage last changed (Bitrix24 MOVED_TIME, amoCRM closed_at)
    amount: float | None = None
    currency: str | None = None
    opportunity_id: str | None = None  # ours, from the deal's opportunity-id field
    contact_ids: tuple[str, ...] = ()
    company_id: str | None = None
    owner_id: str | None = None  # the responsible user
    # Still in the stage it was created in (Bitrix24: MOVED_TIME is DATE_CREATE); unknown: False.
    never_moved: bool = False


@dataclass(frozen=True)
class Contact:
    crm: str
    contact_id: str
    name: str | None = None
    emails: tuple[str, ...] = ()
    job_title: str | None = None
    company_id: str | None = None


@dataclass(frozen=True)
class Company:
    crm: str
    company_id: str
    modified_at: datetime
    name: str | None = None
    inn: str | None = None  # as the CRM holds it (checked by the mapping, not here)
    kpp: str | None = None
    ogrn: str | None = None
    websites: tuple[str, ...] = ()


@dataclass(frozen=True)
class Notice:
    """What a webhook tells: a record of a kind changed (the receiver fetches the rest)."""

    entity: Literal["deal", "contact", "company"]
    record_id: str
    deleted: bool = False


@dataclass(frozen=True)
class PlannedContact:
    """A buying-group member as a CRM contact."""

    person_id: str
    email: str | None
    name: str | None
    job_title: str | None
    role: str  # buying role code (shared/schemas/roles.py)
    department: str


@dataclass(frozen=True)
class DealPlan:
    """What the deal of one opportunity should hold. `fingerprint` changes only when a written
    field does, so an unchanged opportunity costs no CRM call."""

    opportunity_id: str
    title: str
    score: float | None
    tier: str | None
    missing_roles: tuple[str, ...]
    group_text: str  # the buying group: one line per member, with the role
    contacts: tuple[PlannedContact, ...] = ()
    fingerprint: str = ""


@dataclass(frozen=True)
class TaskPlan:
    signal_id: str
    opportunity_id: str
    title: str
    description: str  # ends with the marker that finds it again after a crash
    marker: str
    due: datetime


@dataclass(frozen=True)
class Written:
    """What the outbound sync did to one opportunity's deal (for logs and tests)."""

    deal_id: str
    created: bool
    updated: bool
    contact_ids: tuple[str, ...] = field(default=())
