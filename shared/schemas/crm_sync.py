"""What the CRM connectors learn from a CRM beyond stage changes (bg.crm-links.v1).

Stage changes and won/lost go through the read API's stage endpoint (bg.crm-stage.*), whose
owner maps them onto the funnel. This topic carries the rest of what a CRM knows:

- `crm_company`: a company record with its requisites (INN, KPP, OGRN), the account key a
  consumer may use (shared/inn.py, services/grouping/domain/accounts.py `by_inn`);
- `crm_contact_linked`: a person a salesperson linked to a deal by hand in the CRM: a manual
  correction that DOMAIN.md says outranks the automatic rules.

Keyed by the CRM's record (`<crm>:company:<id>`, `<crm>:deal:<id>`), so that one record's
messages stay in order. Event ids are digests of the record's content: a webhook and a
reconciliation that see the same state write a duplicate.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator

from shared.inn import inn as valid_inn
from shared.schemas.base import Email, Message, NonEmptyStr, ShortStr, UtcDatetime

SCHEMA_VERSION = 1

Crm = Literal["bitrix24", "amocrm"]


class CrmCompany(Message):
    schema_version: Literal[1] = SCHEMA_VERSION
    type: Literal["crm_company"] = "crm_company"
    event_id: ShortStr
    crm: Crm
    company_id: ShortStr  # the CRM's own id
    name: NonEmptyStr | None = None
    inn: ShortStr | None = None  # valid (checksum) INN, digits only; a wrong one is never sent
    kpp: ShortStr | None = None
    ogrn: ShortStr | None = None
    domains: tuple[ShortStr, ...] = ()  # websites in the CRM, as typed
    changed_at: UtcDatetime  # the CRM's modification time of the record

    @field_validator("inn")
    @classmethod
    def _checksum(cls, value: str | None) -> str | None:
        if value is not None and valid_inn(value) != value:
            raise ValueError("inn is not a valid 10- or 12-digit INN in digits only")
        return value

    def key(self) -> str:
        return f"{self.crm}:company:{self.company_id}"


class CrmContactLinked(Message):
    """A contact linked to a deal in the CRM. `opportunity_id` is ours when the deal carries it
    (the deal was created by the connector), else None and only the CRM's deal id is known.

    On the log (docs/privacy.md) `email` is the contact's pseudonym (``p<20 hex>@<domain>``, the
    one their touches carry), `name` is None, and `sealed` holds the raw {"email", "name"} under
    the contact's vault key, which an erase destroys."""

    schema_version: Literal[1] = SCHEMA_VERSION
    type: Literal["crm_contact_linked"] = "crm_contact_linked"
    event_id: ShortStr
    crm: Crm
    deal_id: ShortStr
    opportunity_id: ShortStr | None = None
    contact_id: ShortStr
    email: Email | None = None
    name: NonEmptyStr | None = None
    job_title: NonEmptyStr | None = None
    company_id: ShortStr | None = None
    company_inn: ShortStr | None = None
    linked_at: UtcDatetime  # the CRM's modification time of the deal when the link was seen
    sealed: Annotated[str, StringConstraints(min_length=1, max_length=8000)] | None = None

    def key(self) -> str:
        return f"{self.crm}:deal:{self.deal_id}"


CrmLinkMessage = Annotated[CrmCompany | CrmContactLinked, Field(discriminator="type")]
