"""Bitrix24 through an incoming webhook (https://apidocs.bitrix24.ru): POST
`<webhook url><method>.json` with a JSON body; answers {"result", "next", "total", "time"} or
{"error", "error_description"}.

Methods: crm.deal.get/list/add/update, crm.deal.contact.items.get/set, crm.contact.get/list/add,
crm.company.get, crm.requisite.list (RQ_INN, RQ_KPP, RQ_OGRN), tasks.task.list/add.
Outgoing webhooks (ONCRMDEALADD, ONCRMDEALUPDATE, ONCRMCONTACT*, ONCRMCOMPANY*) are
x-www-form-urlencoded: event, data[FIELDS][ID], ts, auth[application_token], auth[domain]...
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
from aiolimiter import AsyncLimiter

from services.crm.adapters.base import CrmClient, WebhookRefused, parse_time, split_name
from services.crm.domain.outbound import missing_text
from services.crm.domain.records import Company, Contact, Deal, DealPlan, Notice, PlannedContact, TaskPlan
from services.crm.settings import Bitrix24Settings
from services.crm.transport import CrmRefused, call

SEMANTIC = {"S": "won", "F": "lost"}
EVENTS = {
    "ONCRMDEALADD": ("deal", False), "ONCRMDEALUPDATE": ("deal", False), "ONCRMDEALDELETE": ("deal", True),
    "ONCRMCONTACTADD": ("contact", False), "ONCRMCONTACTUPDATE": ("contact", False),
    "ONCRMCOMPANYADD": ("company", False), "ONCRMCOMPANYUPDATE": ("company", False),
}
COMPANY_ENTITY_TYPE = 4  # crm.enum.ownertype: 4 is a company
PAGE = 50  # crm.*.list pages are 50 records


class Bitrix24(CrmClient):
    name = "bitrix24"

    def __init__(self, settings: Bitrix24Settings, attempts: int = 6, retry_base_seconds: float = 1.0,
                 timeout: float = 15.0, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.s = settings
        url = settings.webhook_url.get_secret_value()
        self.http = httpx.AsyncClient(base_url=url if url.endswith("/") else url + "/", timeout=timeout,
                                      transport=transport)
        self.limiter = AsyncLimiter(settings.bucket_size, settings.bucket_size / settings.requests_per_second)
        self.attempts = attempts
        self.retry_base = retry_base_seconds

    async def close(self) -> None:
        await self.http.aclose()

    async def rpc(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """The whole answer of a method ({"result", "next", "total", ...}). Raises CrmRefused
        (the method's error) or CrmUnavailable. `*.add` methods are not retried after a timeout
        or 5xx (transport.call)."""
        response = await call(lambda: self.http.post(f"{method}.json", json=params), self.limiter,
                              self.attempts, self.retry_base, method, idempotent=not method.endswith(".add"))
        body = response.json()
        if "error" in body:
            raise CrmRefused(response.status_code, f"{body['error']}: {body.get('error_description', '')}")
        return body

    # ---------------------------------------------------------------- webhooks
    def parse_webhook(self, form: Mapping[str, str], secret: str | None) -> list[Notice]:
        token = form.get("auth[application_token]", "")
        expected = self.s.application_token.get_secret_value()
        if not token:
            raise WebhookRefused(401, "auth[application_token] is missing", "auth[application_token]")
        if not hmac.compare_digest(token.encode(), expected.encode()):
            raise WebhookRefused(403, "auth[application_token] does not match BITRIX24_APPLICATION_TOKEN",
                                 "auth[application_token]")
        event = (form.get("event") or "").upper()
        record_id = form.get("data[FIELDS][ID]", "")
        if event not in EVENTS:
            raise WebhookRefused(422, f"event {event!r} is not one the connector subscribes to", "event")
        if not record_id.isdigit():
            raise WebhookRefused(422, "data[FIELDS][ID] is missing or not a number", "data[FIELDS][ID]")
        entity, deleted = EVENTS[event]
        return [Notice(entity, record_id, deleted)]

    # ---------------------------------------------------------------- reading
    def _deal(self, raw: dict[str, Any], contact_ids: tuple[str, ...]) -> Deal:
        amount = raw.get("OPPORTUNITY")
        modified = parse_time(raw.get("DATE_MODIFY")) or datetime.now(UTC)
        return Deal(crm=self.name, deal_id=str(raw["ID"]), title=raw.get("TITLE") or "",
                    stage_id=str(raw.get("STAGE_ID") or ""),
                    semantic=SEMANTIC.get(raw.get("STAGE_SEMANTIC_ID"), "open"),
                    modified_at=modified, moved_at=parse_time(raw.get("MOVED_TIME")),
                    amount=float(amount) if amount not in (None, "") else None,
                    currency=raw.get("CURRENCY_ID") or None,
                    opportunity_id=(raw.get(self.s.field_opportunity) or None),
                    never_moved=bool(raw.get("MOVED_TIME")) and raw.get("MOVED_TIME") == raw.get("DATE_CREATE"),
                    contact_ids=contact_ids, company_id=str(raw["COMPANY_ID"]) if raw.get("COMPANY_ID") not in
                    (None, "", "0", 0) else None, owner_id=str(raw.get("ASSIGNED_BY_ID") or "") or None)

    async def _contact_ids(self, deal_id: str) -> tuple[str, ...]:
        items = (await self.rpc("crm.deal.contact.items.get", {"id": deal_id}))["result"] or []
        return tuple(str(i["CONTACT_ID"]) for i in items)

    async def get_deal(self, deal_id: str) -> Deal | None:
        try:
            raw = (await self.rpc("crm.deal.get", {"id": deal_id}))["result"]
        except CrmRefused as exc:
            if "NOT_FOUND" in exc.detail.upper() or "not found" in exc.detail.lower():
                return None
            raise
        return self._deal(raw, await self._contact_ids(deal_id))

    async def changed_deals(self, since: datetime) -> AsyncIterator[Deal]:
        start: int | None = 0
        while start is not None:
            page = await self.rpc("crm.deal.list", {
                "filter": {">DATE_MODIFY": since.isoformat()}, "order": {"DATE_MODIFY": "ASC", "ID": "ASC"},
                "select": ["*", "UF_*"], "start": start})
            for raw in page["result"]:
                yield self._deal(raw, await self._contact_ids(str(raw["ID"])))
            start = page.get("next")

    async def get_contacts(self, contact_ids: list[str]) -> list[Contact]:
        out = []
        for cid in contact_ids:
            try:
                raw = (await self.rpc("crm.contact.get", {"id": cid}))["result"]
            except CrmRefused as exc:
                if "not found" in exc.detail.lower():
                    continue
                raise
            name = " ".join(p for p in (raw.get("NAME"), raw.get("LAST_NAME")) if p) or None
            emails = tuple(e["VALUE"] for e in raw.get("EMAIL") or [] if e.get("VALUE"))
            out.append(Contact(crm=self.name, contact_id=str(raw["ID"]), name=name, emails=emails,
                               job_title=raw.get("POST") or None,
                               company_id=str(raw["COMPANY_ID"]) if raw.get("COMPANY_ID") not in
                               (None, "", "0", 0) else None))
        return out

    async def get_company(self, company_id: str) -> Company | None:
        try:
            raw = (await self.rpc("crm.company.get", {"id": company_id}))["result"]
        except CrmRefused as exc:
            if "not found" in exc.detail.lower():
                return None
            raise
        requisites = (await self.rpc("crm.requisite.list", {
            "filter": {"ENTITY_TYPE_ID": COMPANY_ENTITY_TYPE, "ENTITY_ID": company_id},
            "select": ["ID", "RQ_INN", "RQ_KPP", "RQ_OGRN"]}))["result"] or []
        with_inn = next((r for r in requisites if r.get("RQ_INN")), requisites[0] if requisites else {})
        return Company(crm=self.name, company_id=str(raw["ID"]),
                       modified_at=parse_time(raw.get("DATE_MODIFY")) or datetime.now(UTC), name=raw.get("TITLE"),
                       inn=with_inn.get("RQ_INN") or None, kpp=with_inn.get("RQ_KPP") or None,
                       ogrn=with_inn.get("RQ_OGRN") or None,
                       websites=tuple(w["VALUE"] for w in raw.get("WEB") or [] if w.get("VALUE")))

    # ---------------------------------------------------------------- writing
    async def find_deal(self, opportunity_id: str) -> str | None:
        found = (await self.rpc("crm.deal.list", {"filter": {self.s.field_opportunity: opportunity_id},
                                                  "select": ["ID", self.s.field_opportunity],
                                                  "order": {"ID": "ASC"}}))["result"]
        exact = [d for d in found if d.get(self.s.field_opportunity) == opportunity_id]
        return str(exact[0]["ID"]) if exact else None

    def _fields(self, plan: DealPlan, lang: str) -> dict[str, Any]:
        return {"TITLE": plan.title, self.s.field_opportunity: plan.opportunity_id,
                self.s.field_score: plan.score, self.s.field_tier: plan.tier or "",
                self.s.field_missing_roles: missing_text(plan, lang), self.s.field_group: plan.group_text}

    async def create_deal(self, plan: DealPlan, lang: str) -> str:
        answer = await self.rpc("crm.deal.add", {"fields": self._fields(plan, lang),
                                                 "params": {"REGISTER_SONET_EVENT": "N"}})
        return str(answer["result"])

    async def update_deal(self, deal_id: str, plan: DealPlan, lang: str) -> None:
        fields = self._fields(plan, lang)
        del fields["TITLE"]  # a salesperson may have renamed the deal: only our fields are ours
        await self.rpc("crm.deal.update", {"id": deal_id, "fields": fields,
                                           "params": {"REGISTER_SONET_EVENT": "N"}})

    async def find_contact(self, email: str) -> str | None:
        found = (await self.rpc("crm.contact.list", {"filter": {"EMAIL": email}, "select": ["ID"],
                                                     "order": {"ID": "ASC"}}))["result"]
        return str(found[0]["ID"]) if found else None

    async def create_contact(self, contact: PlannedContact, lang: str) -> str:
        first, last = split_name(contact.name)
        fields: dict[str, Any] = {"NAME": first or contact.email, "LAST_NAME": last,
                                  "EMAIL": [{"VALUE": contact.email, "VALUE_TYPE": "WORK"}]}
        if contact.job_title:
            fields["POST"] = contact.job_title
        return str((await self.rpc("crm.contact.add", {"fields": fields}))["result"])

    async def link_contacts(self, deal: Deal, contact_ids: list[str]) -> None:
        current = list(await self._contact_ids(deal.deal_id))
        wanted = current + [c for c in contact_ids if c not in current]
        if wanted == current:
            return
        items = [{"CONTACT_ID": int(c), "SORT": 10 * (i + 1), "IS_PRIMARY": "Y" if i == 0 else "N"}
                 for i, c in enumerate(wanted)]
        await self.rpc("crm.deal.contact.items.set", {"id": deal.deal_id, "items": items})

    async def find_task(self, deal_id: str, marker: str) -> str | None:
        found = (await self.rpc("tasks.task.list", {"filter": {"UF_CRM_TASK": f"D_{deal_id}"},
                                                    "select": ["ID", "DESCRIPTION"]}))["result"]["tasks"]
        hit = [t for t in found if f"[{marker}]" in (t.get("description") or "")]
        return str(hit[0]["id"]) if hit else None

    async def create_task(self, deal: Deal, plan: TaskPlan) -> str:
        fields: dict[str, Any] = {"TITLE": plan.title, "DESCRIPTION": plan.description,
                                  "DEADLINE": plan.due.isoformat(), "UF_CRM_TASK": [f"D_{deal.deal_id}"]}
        if deal.owner_id:
            fields["RESPONSIBLE_ID"] = deal.owner_id
        answer = await self.rpc("tasks.task.add", {"fields": fields})
        return str(answer["result"]["task"]["id"])
