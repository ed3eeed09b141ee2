"""What the sync loops need from a CRM (services/crm/sync.py), whichever it is."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime

from services.crm.domain.records import Company, Contact, Deal, DealPlan, Notice, PlannedContact, TaskPlan


class WebhookRefused(Exception):
    """status: 401/403 (authenticity) or 422 (nothing usable); field: the form field at fault."""

    def __init__(self, status: int, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.field = field


class CrmClient(ABC):
    name: str

    @abstractmethod
    def parse_webhook(self, form: Mapping[str, str], secret: str | None) -> list[Notice]:
        """The records a webhook names. `secret`: the path segment it came to (amoCRM).
        Raises WebhookRefused (401/403 bad authenticity, 422 nothing usable)."""

    @abstractmethod
    async def get_deal(self, deal_id: str) -> Deal | None: ...

    @abstractmethod
    def changed_deals(self, since: datetime) -> AsyncIterator[Deal]:
        """Every deal modified after `since`, oldest modification first."""

    @abstractmethod
    async def get_contacts(self, contact_ids: list[str]) -> list[Contact]: ...

    @abstractmethod
    async def get_company(self, company_id: str) -> Company | None: ...

    @abstractmethod
    async def find_deal(self, opportunity_id: str) -> str | None:
        """The deal whose opportunity-id field holds `opportunity_id` (searched in the CRM)."""

    @abstractmethod
    async def create_deal(self, plan: DealPlan, lang: str) -> str: ...

    @abstractmethod
    async def update_deal(self, deal_id: str, plan: DealPlan, lang: str) -> None: ...

    @abstractmethod
    async def find_contact(self, email: str) -> str | None: ...

    @abstractmethod
    async def create_contact(self, contact: PlannedContact, lang: str) -> str: ...

    @abstractmethod
    async def link_contacts(self, deal: Deal, contact_ids: list[str]) -> None:
        """Attach the contacts to the deal, keeping the ones it has."""

    @abstractmethod
    async def find_task(self, deal_id: str, marker: str) -> str | None: ...

    @abstractmethod
    async def create_task(self, deal: Deal, plan: TaskPlan) -> str: ...

    @abstractmethod
    async def close(self) -> None:
        """Release the client's connections."""


def split_name(name: str | None) -> tuple[str, str]:
    """("Елена", "Соколова") from "Елена Соколова"; a single word is the first name."""
    parts = (name or "").split(maxsplit=1)
    return (parts[0] if parts else "", parts[1] if len(parts) > 1 else "")


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 time with an offset (Bitrix24) or Unix seconds (amoCRM), as aware UTC."""
    if value in (None, "", 0):
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        return datetime.fromtimestamp(int(value), UTC)
    try:
        found = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return (found if found.tzinfo else found.replace(tzinfo=UTC)).astimezone(UTC)
