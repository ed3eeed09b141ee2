"""amoCRM / Kommo REST API v4 with OAuth 2 (https://www.amocrm.ru/developers/content/crm_platform/):
`Authorization: Bearer <access token>`; a 401 refreshes the token once through
POST /oauth2/access_token (grant_type refresh_token; the refresh token is single-use, so the
new pair is handed to `on_tokens` to be kept). Lists answer 204 with no body when empty.

Leads (deals): GET /api/v4/leads/pipelines (each pipeline's first status), GET
/api/v4/leads/{id}?with=contacts, GET /api/v4/leads?filter[updated_at][from]=
&order[updated_at]=asc&page&limit=250, GET /api/v4/leads?query= (search), POST /api/v4/leads,
PATCH /api/v4/leads/{id}, POST /api/v4/leads/{id}/link. Contacts: GET /api/v4/contacts/{id},
GET /api/v4/contacts?query=, POST /api/v4/contacts. Companies: GET /api/v4/companies/{id}.
Tasks: GET /api/v4/tasks?filter[entity_type]=leads&filter[entity_id]=, POST /api/v4/tasks.
Won is status 142, lost 143, in every pipeline.

Account webhooks are x-www-form-urlencoded: leads[status][0][id], [status_id], [pipeline_id],
[old_status_id], leads[update][0][id], contacts[add][0][id], companies[update][0][id], ...,
account[subdomain], account[id]. They carry no signature: the connector's webhook URL ends
with a secret (AMOCRM_WEBHOOK_SECRET), and the account's subdomain is checked when configured.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
from aiolimiter import AsyncLimiter

from services.crm.adapters.base import CrmClient, WebhookRefused, parse_time, split_name
from services.crm.domain.outbound import missing_text
from services.crm.domain.records import Company, Contact, Deal, DealPlan, Notice, PlannedContact, TaskPlan
from services.crm.settings import AmoCrmSettings
from services.crm.transport import CrmRefused, call

WON, LOST = 142, 143
ENTITIES = {"leads": "deal", "contacts": "contact", "companies": "company"}
_KEY = re.compile(r"^(leads|contacts|companies)\[(add|update|status|delete|restore|responsible)\]\[(\d+)\]\[id\]$")
TASK_TYPE_CALL = 1  # amoCRM's built-in task types: 1 follow-up call, 2 meeting
PAGE = 250

TokenSink = Callable[[str, str], Awaitable[None]]


def field_value(raw: Mapping[str, Any], field_id: int, code: str | None = None) -> Any:
    """The first value of a custom field (by id, or by field_code such as EMAIL), else None."""
    for f in raw.get("custom_fields_values") or []:
        if (field_id and f.get("field_id") == field_id) or (code and f.get("field_code") == code):
            values = f.get("values") or []
            return values[0].get("value") if values else None
    return None


class AmoCrm(CrmClient):
    name = "amocrm"

    def __init__(self, settings: AmoCrmSettings, attempts: int = 6, retry_base_seconds: float = 1.0,
                 timeout: float = 15.0, transport: httpx.AsyncBaseTransport | None = None,
                 on_tokens: TokenSink | None = None) -> None:
        self.s = settings
        self.http = httpx.AsyncClient(base_url=settings.base_url.rstrip("/"), timeout=timeout, transport=transport)
        # One request per 1/rate seconds, no burst: at most `rate` in any second, as amoCRM counts.
        self.limiter = AsyncLimiter(1, 1.0 / settings.requests_per_second)
        self.attempts = attempts
        self.retry_base = retry_base_seconds
        self.access = settings.access_token.get_secret_value()
        self.refresh = settings.refresh_token.get_secret_value()
        self.on_tokens = on_tokens
        self.first_status: dict[int, int] | None = None  # pipeline -> the status a new lead starts in

    def use_tokens(self, access: str, refresh: str) -> None:
        """Tokens kept from an earlier refresh (they outrank the settings' first pair)."""
        self.access, self.refresh = access, refresh

    async def close(self) -> None:
        await self.http.aclose()

    async def _refresh(self) -> bool:
        if not (self.refresh and self.s.client_id and self.s.client_secret.get_secret_value()):
            return False
        response = await call(lambda: self.http.post("/oauth2/access_token", json={
            "client_id": self.s.client_id, "client_secret": self.s.client_secret.get_secret_value(),
            "grant_type": "refresh_token", "refresh_token": self.refresh, "redirect_uri": self.s.redirect_uri}),
            self.limiter, self.attempts, self.retry_base, "oauth2/access_token")
        body = response.json()
        self.access, self.refresh = body["access_token"], body["refresh_token"]
        if self.on_tokens:
            await self.on_tokens(self.access, self.refresh)
        return True

    async def request(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        """The JSON answer (None for 204). Raises CrmRefused / CrmUnavailable."""
        def send() -> Awaitable[httpx.Response]:
            return self.http.request(method, path, headers={"Authorization": f"Bearer {self.access}"}, **kwargs)
        idempotent = method != "POST" or path.endswith("/link")  # POST creates; linking twice is harmless
        try:
            response = await call(send, self.limiter, self.attempts, self.retry_base, what, idempotent)
        except CrmRefused as exc:
            if exc.status != 401 or not await self._refresh():
                raise
            response = await call(send, self.limiter, self.attempts, self.retry_base, what, idempotent)
        return None if response.status_code == 204 or not response.content else response.json()

    # ---------------------------------------------------------------- webhooks
    def parse_webhook(self, form: Mapping[str, str], secret: str | None) -> list[Notice]:
        expected = self.s.webhook_secret.get_secret_value()
        if not secret or not hmac.compare_digest(secret.encode(), expected.encode()):
            raise WebhookRefused(403, "the webhook URL's secret does not match AMOCRM_WEBHOOK_SECRET")
        if self.s.account_subdomain and form.get("account[subdomain]") != self.s.account_subdomain:
            raise WebhookRefused(403, "account[subdomain] is not the configured AMOCRM_ACCOUNT_SUBDOMAIN",
                                 "account[subdomain]")
        notices = []
        for key, value in form.items():
            if (m := _KEY.match(key)) and value.isdigit():
                notices.append(Notice(ENTITIES[m.group(1)], value, m.group(2) == "delete"))
        if not notices:
            raise WebhookRefused(422, "no leads[...], contacts[...] or companies[...][N][id] in the webhook",
                                 "leads")
        return list(dict.fromkeys(notices))

    # ---------------------------------------------------------------- reading
    async def _first_statuses(self) -> dict[int, int]:
        """Pipeline id -> its first open status (lowest sort, not "unsorted" type 1, not 142/143),
        from GET /api/v4/leads/pipelines; read once."""
        if self.first_status is None:
            body = await self.request("GET", "/api/v4/leads/pipelines", "pipelines.list")
            found = {}
            for pipeline in (body or {}).get("_embedded", {}).get("pipelines", []):
                statuses = [s for s in pipeline.get("_embedded", {}).get("statuses", [])
                            if s.get("type") != 1 and s["id"] not in (WON, LOST)]
                if statuses:
                    found[int(pipeline["id"])] = int(min(statuses, key=lambda s: s.get("sort", 0))["id"])
            self.first_status = found
        return self.first_status

    async def _deal(self, raw: Mapping[str, Any]) -> Deal:
        status = int(raw.get("status_id") or 0)
        first = (await self._first_statuses()).get(int(raw.get("pipeline_id") or 0))
        embedded = raw.get("_embedded") or {}
        companies = embedded.get("companies") or []
        opportunity = field_value(raw, self.s.field_opportunity)
        semantic = "won" if status == WON else "lost" if status == LOST else "open"
        return Deal(crm=self.name, deal_id=str(raw["id"]), title=raw.get("name") or "", stage_id=str(status),
                    semantic=semantic, modified_at=parse_time(raw.get("updated_at")) or datetime.now(UTC),
                    moved_at=parse_time(raw.get("closed_at")) if semantic != "open" else None,
                    amount=float(raw["price"]) if raw.get("price") not in (None, "") else None,
                    currency=None, opportunity_id=str(opportunity) if opportunity else None,
                    contact_ids=tuple(str(c["id"]) for c in embedded.get("contacts") or []),
                    company_id=str(companies[0]["id"]) if companies else None,
                    owner_id=str(raw.get("responsible_user_id") or "") or None,
                    never_moved=status == first)

    async def get_deal(self, deal_id: str) -> Deal | None:
        try:
            raw = await self.request("GET", f"/api/v4/leads/{deal_id}", "leads.get", params={"with": "contacts"})
        except CrmRefused as exc:
            if exc.status == 404:
                return None
            raise
        return await self._deal(raw) if raw else None

    async def changed_deals(self, since: datetime) -> AsyncIterator[Deal]:
        page = 1
        while True:
            body = await self.request("GET", "/api/v4/leads", "leads.list", params={
                "filter[updated_at][from]": int(since.timestamp()), "order[updated_at]": "asc",
                "with": "contacts", "limit": PAGE, "page": page})
            if not body:
                return
            for raw in body["_embedded"]["leads"]:
                yield await self._deal(raw)
            if "next" not in (body.get("_links") or {}):
                return
            page += 1

    async def get_contacts(self, contact_ids: list[str]) -> list[Contact]:
        out = []
        for cid in contact_ids:
            try:
                raw = await self.request("GET", f"/api/v4/contacts/{cid}", "contacts.get",
                                         params={"with": "companies"})
            except CrmRefused as exc:
                if exc.status == 404:
                    continue
                raise
            if not raw:
                continue
            emails = [v.get("value") for f in raw.get("custom_fields_values") or [] if f.get("field_code") == "EMAIL"
                      for v in f.get("values") or [] if v.get("value")]
            companies = (raw.get("_embedded") or {}).get("companies") or []
            out.append(Contact(crm=self.name, contact_id=str(raw["id"]), name=raw.get("name") or None,
                               emails=tuple(emails), job_title=field_value(raw, 0, "POSITION"),
                               company_id=str(companies[0]["id"]) if companies else None))
        return out

    async def get_company(self, company_id: str) -> Company | None:
        try:
            raw = await self.request("GET", f"/api/v4/companies/{company_id}", "companies.get")
        except CrmRefused as exc:
            if exc.status == 404:
                return None
            raise
        if not raw:
            return None
        inn = field_value(raw, self.s.company_inn_field) if self.s.company_inn_field else None
        kpp = None
        if isinstance(inn, dict):  # a "legal entity" field: {name, entity_type, vat_id, kpp, ...}
            inn, kpp = inn.get("vat_id"), inn.get("kpp")
        websites = [v.get("value") for f in raw.get("custom_fields_values") or [] if f.get("field_code") == "WEB"
                    for v in f.get("values") or [] if v.get("value")]
        return Company(crm=self.name, company_id=str(raw["id"]),
                       modified_at=parse_time(raw.get("updated_at")) or datetime.now(UTC), name=raw.get("name"),
                       inn=str(inn) if inn else None, kpp=str(kpp) if kpp else None, websites=tuple(websites))

    # ---------------------------------------------------------------- writing
    async def find_deal(self, opportunity_id: str) -> str | None:
        body = await self.request("GET", "/api/v4/leads", "leads.search", params={"query": opportunity_id})
        leads = (body or {}).get("_embedded", {}).get("leads", [])
        exact = sorted(int(raw["id"]) for raw in leads
                       if str(field_value(raw, self.s.field_opportunity) or "") == opportunity_id)
        return str(exact[0]) if exact else None

    def _custom(self, plan: DealPlan, lang: str) -> list[dict[str, Any]]:
        values = [(self.s.field_opportunity, plan.opportunity_id), (self.s.field_score, plan.score),
                  (self.s.field_tier, plan.tier), (self.s.field_missing_roles, missing_text(plan, lang)),
                  (self.s.field_group, plan.group_text)]
        return [{"field_id": fid, "values": [{"value": v}]} for fid, v in values if fid and v not in (None, "")]

    async def create_deal(self, plan: DealPlan, lang: str) -> str:
        body = await self.request("POST", "/api/v4/leads", "leads.add",
                                  json=[{"name": plan.title, "custom_fields_values": self._custom(plan, lang)}])
        return str(body["_embedded"]["leads"][0]["id"])

    async def update_deal(self, deal_id: str, plan: DealPlan, lang: str) -> None:
        await self.request("PATCH", f"/api/v4/leads/{deal_id}", "leads.update",
                           json={"custom_fields_values": self._custom(plan, lang)})

    async def find_contact(self, email: str) -> str | None:
        body = await self.request("GET", "/api/v4/contacts", "contacts.search", params={"query": email})
        for raw in (body or {}).get("_embedded", {}).get("contacts", []):
            emails = [str(v.get("value", "")).lower() for f in raw.get("custom_fields_values") or []
                      if f.get("field_code") == "EMAIL" for v in f.get("values") or []]
            if email.lower() in emails:
                return str(raw["id"])
        return None

    async def create_contact(self, contact: PlannedContact, lang: str) -> str:
        first, last = split_name(contact.name)
        fields: list[dict[str, Any]] = [{"field_code": "EMAIL", "values": [{"value": contact.email,
                                                                             "enum_code": "WORK"}]}]
        if contact.job_title:
            fields.append({"field_code": "POSITION", "values": [{"value": contact.job_title}]})
        body = await self.request("POST", "/api/v4/contacts", "contacts.add", json=[{
            "name": contact.name or contact.email, "first_name": first, "last_name": last,
            "custom_fields_values": fields}])
        return str(body["_embedded"]["contacts"][0]["id"])

    async def link_contacts(self, deal: Deal, contact_ids: list[str]) -> None:
        new = [c for c in contact_ids if c not in deal.contact_ids]
        if new:
            await self.request("POST", f"/api/v4/leads/{deal.deal_id}/link", "leads.link",
                               json=[{"to_entity_id": int(c), "to_entity_type": "contacts"} for c in new])

    async def find_task(self, deal_id: str, marker: str) -> str | None:
        body = await self.request("GET", "/api/v4/tasks", "tasks.list", params={
            "filter[entity_type]": "leads", "filter[entity_id]": deal_id, "limit": PAGE})
        for raw in (body or {}).get("_embedded", {}).get("tasks", []):
            if f"[{marker}]" in (raw.get("text") or ""):
                return str(raw["id"])
        return None

    async def create_task(self, deal: Deal, plan: TaskPlan) -> str:
        task: dict[str, Any] = {"text": f"{plan.title}\n{plan.description}", "complete_till": int(plan.due.timestamp()),
                                "entity_id": int(deal.deal_id), "entity_type": "leads", "task_type_id": TASK_TYPE_CALL}
        if deal.owner_id:
            task["responsible_user_id"] = int(deal.owner_id)
        body = await self.request("POST", "/api/v4/tasks", "tasks.add", json=[task])
        return str(body["_embedded"]["tasks"][0]["id"])
