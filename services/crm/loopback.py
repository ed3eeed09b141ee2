"""A loopback contract server of Bitrix24 and amoCRM, for the connectors' tests.

Neither CRM can be reached from where this project is built and tested, so the connectors
talk to this server, which answers the REST methods they use with the shapes, errors and
limits of the vendors' documentation, and sends the webhooks a CRM would send:

Bitrix24 (https://apidocs.bitrix24.ru), incoming webhook `/rest/{user}/{code}/{method}.json`:
- answers {"result": ..., "time": {...}} (lists add "total" and "next", 50 a page), errors
  {"error", "error_description"}: 401 INVALID_CREDENTIALS, 400 "Not found", 400 for a bad
  parameter; 503 QUERY_LIMIT_EXCEEDED from a leaky bucket (`bucket_size` requests, drained at
  `drain_per_second`; the documentation's 50 and 2/s);
- crm.deal.get/list/add/update (filters by exact field and `>DATE_MODIFY`), crm.deal.contact.items
  .get/set, crm.contact.get/list/add (filter EMAIL), crm.company.get, crm.requisite.list
  (RQ_INN, RQ_KPP, RQ_OGRN), tasks.task.list/add (UF_CRM_TASK "D_<deal>");
- a change to a deal (through REST or `b24_change_deal`) sends ONCRMDEALADD / ONCRMDEALUPDATE to
  `handler_url` as x-www-form-urlencoded event, data[FIELDS][ID], ts, auth[...], once, never
  repeated; `drop_webhooks` loses the next ones, as a network or a downed receiver would.
amoCRM (https://www.amocrm.ru/developers/content/crm_platform/), `Authorization: Bearer`:
- /api/v4/leads (GET one with=contacts, list with filter[updated_at][from], order, page, limit,
  query; 204 when empty; POST, PATCH, POST /{id}/link), /api/v4/contacts (GET, query, POST),
  /api/v4/companies/{id}, /api/v4/tasks (GET filter[entity_type], filter[entity_id]; POST),
  POST /oauth2/access_token (refresh_token grant; the refresh token is single-use);
- 401 problem+json for a wrong or expired token, 429 above 7 requests a second;
- a lead's change sends leads[update|status|add][0][id] (with status_id, pipeline_id,
  old_status_id for a status change) and account[subdomain], account[id].

Faults for the tests, per method or path (`fail`): "500", "429" (Bitrix24: 503
QUERY_LIMIT_EXCEEDED), "timeout" (no answer for `hang_seconds`), "commit_then_500" (the write is
done, then 500: a crash of the CRM mid-answer), "commit_then_hang" (done, then no answer). Every
request is recorded in `calls`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

MSK = timezone(timedelta(hours=3))  # a portal's time zone: Bitrix24 gives times with the portal's offset
PAGE_B24 = 50
# An amoCRM pipeline and its open statuses (ids are per account; 142 won and 143 lost are fixed).
FIRST_STATUS, NEGOTIATION, PIPELINE = 38307946, 38307949, 4345612


def _b24_time(at: datetime) -> str:
    return at.astimezone(MSK).replace(microsecond=0).isoformat()


@dataclass
class Bucket:
    """A leaky bucket: `size` requests, drained at `per_second`."""

    size: float
    per_second: float
    level: float = 0.0
    at: float = field(default_factory=time.monotonic)

    def admit(self) -> bool:
        now = time.monotonic()
        self.level = max(0.0, self.level - (now - self.at) * self.per_second)
        self.at = now
        if self.level + 1 > self.size:
            return False
        self.level += 1
        return True


@dataclass
class CrmLoopback:
    """Both CRMs' data and what the connectors did to it (inspected by the tests)."""

    b24_user: str = "1"
    b24_code: str = "loopback0webhook0code"
    b24_application_token: str = "loopback-b24-application-token"
    amo_access: str = "loopback-amo-access"
    amo_refresh: str = "loopback-amo-refresh"
    amo_client_id: str = "loopback-client"
    amo_client_secret: str = "loopback-secret"
    amo_subdomain: str = "romashka"
    amo_account_id: int = 29085955
    amo_field_opportunity: int = 1001
    amo_field_score: int = 1002
    amo_field_inn: int = 2001
    amo_webhook_secret: str = "loopback-amo-webhook-secret"
    handler_url: str | None = None  # where the webhooks go
    drop_webhooks: int = 0
    hang_seconds: float = 30.0
    bucket_size: float = 50
    drain_per_second: float = 2.0
    amo_per_second: float = 7.0
    fail: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    calls: list[str] = field(default_factory=list)
    webhooks_sent: list[dict[str, str]] = field(default_factory=list)
    webhooks_lost: list[dict[str, str]] = field(default_factory=list)
    # Bitrix24
    deals: dict[int, dict[str, Any]] = field(default_factory=dict)
    deal_contacts: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    contacts: dict[int, dict[str, Any]] = field(default_factory=dict)
    companies: dict[int, dict[str, Any]] = field(default_factory=dict)
    requisites: list[dict[str, Any]] = field(default_factory=list)
    tasks: dict[int, dict[str, Any]] = field(default_factory=dict)
    # amoCRM
    leads: dict[int, dict[str, Any]] = field(default_factory=dict)
    amo_contacts: dict[int, dict[str, Any]] = field(default_factory=dict)
    amo_companies: dict[int, dict[str, Any]] = field(default_factory=dict)
    amo_tasks: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_id: int = 1
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.b24_bucket = Bucket(self.bucket_size, self.drain_per_second)
        self.amo_window: list[float] = []

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    # ------------------------------------------------------------ Bitrix24 records, doc shapes
    def b24_add_company(self, title: str, inn: str | None = None, kpp: str | None = None,
                        ogrn: str | None = None, web: str | None = None) -> int:
        cid = self.new_id()
        self.companies[cid] = {"ID": str(cid), "TITLE": title, "COMPANY_TYPE": "CUSTOMER",
                               "DATE_MODIFY": _b24_time(datetime.now(UTC)),
                               "WEB": [{"ID": str(self.new_id()), "VALUE_TYPE": "WORK", "VALUE": web, "TYPE_ID": "WEB"}]
                               if web else []}
        if inn or kpp or ogrn:
            self.requisites.append({"ID": str(self.new_id()), "ENTITY_TYPE_ID": "4", "ENTITY_ID": str(cid),
                                    "PRESET_ID": "1", "NAME": "Организация", "RQ_INN": inn or "",
                                    "RQ_KPP": kpp or "", "RQ_OGRN": ogrn or ""})
        return cid

    def b24_add_contact(self, name: str, last_name: str, email: str, post: str = "",
                        company_id: int | None = None) -> int:
        cid = self.new_id()
        self.contacts[cid] = {"ID": str(cid), "NAME": name, "LAST_NAME": last_name, "POST": post,
                              "COMPANY_ID": str(company_id) if company_id else None, "HAS_EMAIL": "Y",
                              "EMAIL": [{"ID": str(self.new_id()), "VALUE_TYPE": "WORK", "VALUE": email,
                                         "TYPE_ID": "EMAIL"}],
                              "DATE_MODIFY": _b24_time(datetime.now(UTC))}
        return cid

    def b24_change_deal(self, deal_id: int, contact_ids: tuple[int, ...] = (), **fields: Any) -> None:
        """A salesperson's change in the CRM: fields (STAGE_ID, OPPORTUNITY, COMPANY_ID ...), contacts
        added; the stage's semantic and MOVED_TIME follow STAGE_ID as Bitrix24 keeps them."""
        with self.lock:
            deal = self.deals[deal_id]
            now = _b24_time(datetime.now(UTC))
            if "STAGE_ID" in fields and fields["STAGE_ID"] != deal["STAGE_ID"]:
                stage = fields["STAGE_ID"].split(":")[-1]
                deal["STAGE_SEMANTIC_ID"] = "S" if stage == "WON" else "F" if stage in ("LOSE", "APOLOGY") else "P"
                deal["MOVED_TIME"] = now
                deal["CLOSED"] = "Y" if deal["STAGE_SEMANTIC_ID"] != "P" else "N"
            deal.update(fields)
            deal["DATE_MODIFY"] = now
            items = self.deal_contacts.setdefault(deal_id, [])
            for c in contact_ids:
                items.append({"CONTACT_ID": c, "SORT": 10 * (len(items) + 1), "ROLE_ID": 0, "IS_PRIMARY": "N"})
        self._b24_event("ONCRMDEALUPDATE", deal_id)

    def _b24_event(self, event: str, record_id: int) -> None:
        form = {"event": event, "event_handler_id": "7", "data[FIELDS][ID]": str(record_id),
                "ts": str(int(time.time())), "auth[domain]": "romashka.bitrix24.ru",
                "auth[client_endpoint]": "https://romashka.bitrix24.ru/rest/",
                "auth[server_endpoint]": "https://oauth.bitrix.info/rest/",
                "auth[member_id]": "a223c6b3710f85df22e9377d6c4f7553",
                "auth[application_token]": self.b24_application_token}
        self._send(form, "/webhooks/bitrix24")

    def _send(self, form: dict[str, str], path: str) -> None:
        if not self.handler_url:
            return
        if self.drop_webhooks > 0:
            self.drop_webhooks -= 1
            self.webhooks_lost.append(form)
            return
        self.webhooks_sent.append(form)
        url = self.handler_url.rstrip("/") + path

        def post() -> None:  # once, never repeated (Bitrix24 documents no retries)
            with contextlib.suppress(httpx.HTTPError):
                httpx.post(url, content=urlencode(form), timeout=5,
                           headers={"content-type": "application/x-www-form-urlencoded"})
        threading.Thread(target=post, daemon=True).start()

    # ------------------------------------------------------------ amoCRM records, doc shapes
    def amo_add_company(self, name: str, inn: str | None = None) -> int:
        cid = self.new_id()
        now = int(time.time())
        self.amo_companies[cid] = {
            "id": cid, "name": name, "responsible_user_id": 504141, "created_at": now, "updated_at": now,
            "custom_fields_values": [{"field_id": self.amo_field_inn, "field_name": "ИНН", "field_code": None,
                                      "field_type": "text", "values": [{"value": inn}]}] if inn else None,
            "account_id": self.amo_account_id}
        return cid

    def amo_add_contact(self, name: str, email: str, position: str = "", company_id: int | None = None) -> int:
        cid = self.new_id()
        now = int(time.time())
        fields = [{"field_id": 3, "field_name": "Email", "field_code": "EMAIL", "field_type": "multitext",
                   "values": [{"value": email, "enum_id": 5, "enum_code": "WORK"}]}]
        if position:
            fields.append({"field_id": 4, "field_name": "Должность", "field_code": "POSITION", "field_type": "text",
                           "values": [{"value": position}]})
        first, _, last = name.partition(" ")
        self.amo_contacts[cid] = {"id": cid, "name": name, "first_name": first, "last_name": last,
                                  "created_at": now, "updated_at": now, "custom_fields_values": fields,
                                  "_embedded": {"companies": [{"id": company_id}] if company_id else []}}
        return cid

    def amo_change_lead(self, lead_id: int, contact_ids: tuple[int, ...] = (), **fields: Any) -> None:
        with self.lock:
            lead = self.leads[lead_id]
            old_status = lead["status_id"]
            now = int(time.time())
            lead.update(fields)
            lead["updated_at"] = now
            if lead["status_id"] in (142, 143) and old_status != lead["status_id"]:
                lead["closed_at"] = now
            links = lead["_embedded"].setdefault("contacts", [])
            links.extend({"id": c, "is_main": False} for c in contact_ids)
        action = "status" if lead["status_id"] != old_status else "update"
        self._amo_event(lead_id, action, old_status)

    def _amo_event(self, lead_id: int, action: str, old_status: int | None = None) -> None:
        lead = self.leads[lead_id]
        p = f"leads[{action}][0]"
        form = {f"{p}[id]": str(lead_id), f"{p}[status_id]": str(lead["status_id"]),
                f"{p}[pipeline_id]": str(lead["pipeline_id"]), f"{p}[price]": str(lead.get("price") or 0),
                f"{p}[last_modified]": str(lead["updated_at"]), "account[subdomain]": self.amo_subdomain,
                "account[id]": str(self.amo_account_id)}
        if old_status is not None and action == "status":
            form[f"{p}[old_status_id]"] = str(old_status)
            form[f"{p}[old_pipeline_id]"] = str(lead["pipeline_id"])
        self._send(form, "/webhooks/amocrm/" + self.amo_webhook_secret)


def _b24_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status)


def _b24_ok(result: Any, **extra: Any) -> JSONResponse:
    now = time.time()
    return JSONResponse({"result": result, **extra, "time": {"start": now, "finish": now, "duration": 0.001,
                                                              "processing": 0.0005, "date_start": "", "date_finish": "",
                                                              "operating": 0}})


def _matches(record: dict[str, Any], filters: dict[str, Any]) -> bool:
    for key, want in filters.items():
        if key.startswith(">"):
            have = record.get(key[1:])
            if have is None or datetime.fromisoformat(have) <= datetime.fromisoformat(want):
                return False
        elif key == "EMAIL":
            if want.lower() not in [e["VALUE"].lower() for e in record.get("EMAIL") or []]:
                return False
        elif str(record.get(key)) != str(want):
            return False
    return True


def create_app(state: CrmLoopback) -> FastAPI:
    app = FastAPI(title="CRM loopback contract server")

    async def fault(name: str, execute, bitrix24: bool) -> Response | None:
        """The injected fault for `name`, around `execute` (the write); None: answer normally."""
        kinds = state.fail.get(name) or []
        kind = kinds.pop(0) if kinds else None
        if kind == "timeout":
            await asyncio.sleep(state.hang_seconds)
            return JSONResponse({"error": "TIMEOUT"}, 504)
        if kind == "500":
            return JSONResponse({"error": "INTERNAL_SERVER_ERROR", "error_description": "Internal error"}, 500)
        if kind == "429" and bitrix24:
            return _b24_error(503, "QUERY_LIMIT_EXCEEDED", "Too many requests")
        if kind == "429":
            return JSONResponse({"title": "Too Many Requests", "status": 429}, 429,
                                media_type="application/problem+json")
        if kind in ("commit_then_500", "commit_then_hang"):
            execute()
            if kind == "commit_then_hang":
                await asyncio.sleep(state.hang_seconds)
            return JSONResponse({"error": "INTERNAL_SERVER_ERROR", "error_description": "Internal error"}, 500)
        return None

    # ---------------------------------------------------------------- Bitrix24
    @app.post("/rest/{user}/{code}/{method}.json")
    async def b24(user: str, code: str, method: str, request: Request) -> Response:
        state.calls.append(method)
        if (user, code) != (state.b24_user, state.b24_code):
            return _b24_error(401, "INVALID_CREDENTIALS", "Invalid request credentials")
        if not state.b24_bucket.admit():
            return _b24_error(503, "QUERY_LIMIT_EXCEEDED", "Too many requests")
        try:
            params = await request.json()
        except ValueError:
            return _b24_error(400, "INVALID_REQUEST", "Invalid JSON")
        handler = B24_METHODS.get(method)
        if handler is None:
            return _b24_error(404, "ERROR_METHOD_NOT_FOUND", "Method not found!")
        result: dict[str, Any] = {}

        def execute() -> None:
            with state.lock:
                result["answer"] = handler(state, params)
        injected = await fault(method, execute, True)
        if injected is not None:
            if "answer" in result:  # committed before the fault: the CRM did it, and says so
                _after_b24_write(state, method, params, result["answer"])
            return injected
        if "answer" not in result:
            execute()
        answer = result["answer"]
        if isinstance(answer, JSONResponse):
            return answer
        _after_b24_write(state, method, params, answer)
        return answer

    # ---------------------------------------------------------------- amoCRM
    def amo_auth(request: Request) -> Response | None:
        state.calls.append(f"{request.method} {request.url.path}")
        if request.headers.get("authorization") != f"Bearer {state.amo_access}":
            return JSONResponse({"title": "Unauthorized", "type": "https://httpstatus.es/401", "status": 401,
                                 "detail": "Unauthorized"}, 401, media_type="application/problem+json")
        now = time.monotonic()
        state.amo_window = [t for t in state.amo_window if now - t < 1.0]
        if len(state.amo_window) >= state.amo_per_second:
            return JSONResponse({"title": "Too Many Requests", "status": 429}, 429,
                                media_type="application/problem+json")
        state.amo_window.append(now)
        return None

    @app.post("/oauth2/access_token")
    async def amo_token(request: Request) -> Response:
        body = await request.json()
        expected = {"grant_type": "refresh_token", "refresh_token": state.amo_refresh,
                    "client_id": state.amo_client_id, "client_secret": state.amo_client_secret}
        if any(body.get(k) != v for k, v in expected.items()):
            return JSONResponse({"hint": "Token has been revoked", "title": "Некорректный запрос", "status": 400}, 400)
        state.amo_access, state.amo_refresh = f"access-{state.new_id()}", f"refresh-{state.new_id()}"
        return JSONResponse({"token_type": "Bearer", "expires_in": 86400, "access_token": state.amo_access,
                             "refresh_token": state.amo_refresh})

    @app.api_route("/api/v4/{path:path}", methods=["GET", "POST", "PATCH"])
    async def amo(path: str, request: Request) -> Response:
        if denied := amo_auth(request):
            return denied
        body = await request.json() if request.method != "GET" else None
        key = f"{request.method} {path}"
        result: dict[str, Any] = {}

        def execute() -> None:
            with state.lock:
                result["answer"] = amo_route(state, request.method, path, dict(request.query_params), body)
        injected = await fault(key.split("/")[0], execute, False)
        if injected is not None:
            return injected
        if "answer" not in result:
            execute()
        return result["answer"]

    return app


# ---------------------------------------------------------------- Bitrix24 methods
def _deal_get(s: CrmLoopback, p: dict) -> Any:
    deal = s.deals.get(int(p.get("id") or 0))
    return _b24_ok(dict(deal)) if deal else _b24_error(400, "", "Not found")


def _deal_list(s: CrmLoopback, p: dict) -> Any:
    rows = [d for d in s.deals.values() if _matches(d, p.get("filter") or {})]
    order = p.get("order") or {"ID": "ASC"}
    for key in reversed(list(order)):
        def sort_key(d, k=key):
            v = d.get(k)
            return datetime.fromisoformat(v) if k.startswith("DATE") or k.endswith("TIME") else int(v or 0)
        rows.sort(key=sort_key, reverse=str(order[key]).upper() == "DESC")
    start = int(p.get("start") or 0)
    page = rows[start:start + PAGE_B24]
    extra = {"total": len(rows)}
    if start + PAGE_B24 < len(rows):
        extra["next"] = start + PAGE_B24
    return _b24_ok([dict(d) for d in page], **extra)


def _deal_add(s: CrmLoopback, p: dict) -> Any:
    fields = p.get("fields") or {}
    if not fields.get("TITLE"):
        return _b24_error(400, "", "TITLE is not specified")
    did = s.new_id()
    now = _b24_time(datetime.now(UTC))
    s.deals[did] = {"ID": str(did), "TITLE": "", "STAGE_ID": "NEW", "STAGE_SEMANTIC_ID": "P", "CATEGORY_ID": "0",
                    "OPPORTUNITY": "0.00", "CURRENCY_ID": "RUB", "COMPANY_ID": "0", "CONTACT_ID": None,
                    "ASSIGNED_BY_ID": "1", "CLOSED": "N", "DATE_CREATE": now, "DATE_MODIFY": now, "MOVED_TIME": now,
                    **{k: v for k, v in fields.items()}}
    return _b24_ok(did)


def _deal_update(s: CrmLoopback, p: dict) -> Any:
    did = int(p.get("id") or 0)
    if did not in s.deals:
        return _b24_error(400, "", "Not found")
    s.deals[did].update(p.get("fields") or {})
    s.deals[did]["DATE_MODIFY"] = _b24_time(datetime.now(UTC))
    return _b24_ok(True)


def _items_get(s: CrmLoopback, p: dict) -> Any:
    did = int(p.get("id") or 0)
    return _b24_ok(list(s.deal_contacts.get(did, []))) if did in s.deals else _b24_error(400, "", "Not found")


def _items_set(s: CrmLoopback, p: dict) -> Any:
    did = int(p.get("id") or 0)
    if did not in s.deals:
        return _b24_error(400, "", "Not found")
    items = p.get("items") or []
    if any(int(i.get("CONTACT_ID") or 0) not in s.contacts for i in items):
        return _b24_error(400, "", "Contact not found")
    s.deal_contacts[did] = [{"CONTACT_ID": int(i["CONTACT_ID"]), "SORT": int(i.get("SORT", 10)), "ROLE_ID": 0,
                             "IS_PRIMARY": i.get("IS_PRIMARY", "N")} for i in items]
    s.deals[did]["DATE_MODIFY"] = _b24_time(datetime.now(UTC))
    return _b24_ok(True)


def _contact_get(s: CrmLoopback, p: dict) -> Any:
    c = s.contacts.get(int(p.get("id") or 0))
    return _b24_ok(dict(c)) if c else _b24_error(400, "", "Not found")


def _contact_list(s: CrmLoopback, p: dict) -> Any:
    rows = [{"ID": c["ID"]} for c in s.contacts.values() if _matches(c, p.get("filter") or {})]
    return _b24_ok(rows, total=len(rows))


def _contact_add(s: CrmLoopback, p: dict) -> Any:
    fields = p.get("fields") or {}
    cid = s.new_id()
    s.contacts[cid] = {"ID": str(cid), "NAME": "", "LAST_NAME": "", "POST": "", "COMPANY_ID": None, "EMAIL": [],
                       "DATE_MODIFY": _b24_time(datetime.now(UTC)), **fields}
    return _b24_ok(cid)


def _company_get(s: CrmLoopback, p: dict) -> Any:
    c = s.companies.get(int(p.get("id") or 0))
    return _b24_ok(dict(c)) if c else _b24_error(400, "", "Not found")


def _requisite_list(s: CrmLoopback, p: dict) -> Any:
    rows = [r for r in s.requisites if _matches(r, p.get("filter") or {})]
    select = p.get("select") or []
    return _b24_ok([{k: v for k, v in r.items() if not select or k in select} for r in rows], total=len(rows))


def _task_list(s: CrmLoopback, p: dict) -> Any:
    binding = (p.get("filter") or {}).get("UF_CRM_TASK")
    rows = [{"id": str(tid), "title": t["TITLE"], "description": t["DESCRIPTION"],
             "responsibleId": t.get("RESPONSIBLE_ID"), "ufCrmTask": t["UF_CRM_TASK"]}
            for tid, t in s.tasks.items() if binding is None or binding in t["UF_CRM_TASK"]]
    return _b24_ok({"tasks": rows}, total=len(rows))


def _task_add(s: CrmLoopback, p: dict) -> Any:
    fields = p.get("fields") or {}
    if not fields.get("TITLE"):
        return _b24_error(400, "", "TITLE: the field is required")
    tid = s.new_id()
    s.tasks[tid] = {"DESCRIPTION": "", "UF_CRM_TASK": [], **fields}
    return _b24_ok({"task": {"id": str(tid), "title": fields["TITLE"]}})


B24_METHODS = {
    "crm.deal.get": _deal_get, "crm.deal.list": _deal_list, "crm.deal.add": _deal_add,
    "crm.deal.update": _deal_update, "crm.deal.contact.items.get": _items_get,
    "crm.deal.contact.items.set": _items_set, "crm.contact.get": _contact_get, "crm.contact.list": _contact_list,
    "crm.contact.add": _contact_add, "crm.company.get": _company_get, "crm.requisite.list": _requisite_list,
    "tasks.task.list": _task_list, "tasks.task.add": _task_add,
}


def _after_b24_write(state: CrmLoopback, method: str, params: dict, answer: JSONResponse) -> None:
    """Bitrix24 sends ONCRMDEALADD / ONCRMDEALUPDATE for REST writes too (an app sees its own)."""
    if method not in ("crm.deal.add", "crm.deal.update", "crm.deal.contact.items.set"):
        return
    body = json.loads(answer.body)
    if "result" not in body:
        return
    if method == "crm.deal.add":
        state._b24_event("ONCRMDEALADD", int(body["result"]))
    else:
        state._b24_event("ONCRMDEALUPDATE", int(params["id"]))


# ---------------------------------------------------------------- amoCRM routes
def _problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"title": "Bad Request" if status == 400 else "Not Found", "status": status,
                         "detail": detail}, status, media_type="application/problem+json")


def _cf_text(record: dict[str, Any]) -> str:
    return " ".join(str(v.get("value")) for f in record.get("custom_fields_values") or []
                    for v in f.get("values") or [])


def _collection(name: str, rows: list[dict[str, Any]], page: int, limit: int, path: str) -> Response:
    chunk = rows[(page - 1) * limit: page * limit]
    if not chunk:
        return Response(status_code=204)
    links: dict[str, Any] = {"self": {"href": f"https://romashka.amocrm.ru/api/v4/{path}?page={page}"}}
    if page * limit < len(rows):
        links["next"] = {"href": f"https://romashka.amocrm.ru/api/v4/{path}?page={page + 1}"}
    return JSONResponse({"_page": page, "_links": links, "_embedded": {name: chunk}})


def amo_route(s: CrmLoopback, method: str, path: str, q: dict[str, str], body: Any) -> Response:
    parts = path.strip("/").split("/")
    page, limit = int(q.get("page", 1)), min(int(q.get("limit", 50)), 250)
    now = int(time.time())
    if parts[:2] == ["leads", "pipelines"] and method == "GET":
        statuses = [{"id": 38307942, "name": "Неразобранное", "sort": 10, "type": 1, "pipeline_id": PIPELINE},
                    {"id": FIRST_STATUS, "name": "Первичный контакт", "sort": 20, "type": 0, "pipeline_id": PIPELINE},
                    {"id": NEGOTIATION, "name": "Переговоры", "sort": 30, "type": 0, "pipeline_id": PIPELINE},
                    {"id": 142, "name": "Успешно реализовано", "sort": 10000, "type": 0, "pipeline_id": PIPELINE},
                    {"id": 143, "name": "Закрыто и не реализовано", "sort": 11000, "type": 0,
                     "pipeline_id": PIPELINE}]
        return JSONResponse({"_total_items": 1, "_embedded": {"pipelines": [
            {"id": PIPELINE, "name": "Воронка", "sort": 1, "is_main": True, "is_unsorted_on": True,
             "is_archive": False, "account_id": s.amo_account_id, "_embedded": {"statuses": statuses}}]}})
    if parts[0] == "leads":
        if method == "GET" and len(parts) == 2:
            lead = s.leads.get(int(parts[1]))
            return JSONResponse(lead) if lead else _problem(404, "Lead not found")
        if method == "GET":
            rows = sorted(s.leads.values(), key=lambda r: r["id"])
            if "filter[updated_at][from]" in q:
                rows = [r for r in rows if r["updated_at"] >= int(q["filter[updated_at][from]"])]
            if q.get("query"):
                rows = [r for r in rows if q["query"].lower() in (r["name"] + " " + _cf_text(r)).lower()]
            if q.get("order[updated_at]"):
                rows.sort(key=lambda r: (r["updated_at"], r["id"]), reverse=q["order[updated_at]"] == "desc")
            return _collection("leads", rows, page, limit, "leads")
        if method == "POST" and len(parts) == 1:
            out = []
            for i, item in enumerate(body or []):
                if not item.get("name"):
                    return _problem(400, f"[{i}].name: This value should not be blank.")
                lid = s.new_id()
                s.leads[lid] = {"id": lid, "name": item["name"], "price": item.get("price", 0),
                                "responsible_user_id": 504141, "group_id": 0, "status_id": FIRST_STATUS,
                                "pipeline_id": PIPELINE, "created_at": now, "updated_at": now, "closed_at": None,
                                "custom_fields_values": item.get("custom_fields_values"),
                                "account_id": s.amo_account_id,
                                "_embedded": {"contacts": [], "companies": []}}
                out.append({"id": lid, "request_id": str(i)})
            return JSONResponse({"_links": {}, "_embedded": {"leads": out}})
        if method == "PATCH" and len(parts) == 2:
            lead = s.leads.get(int(parts[1]))
            if not lead:
                return _problem(404, "Lead not found")
            lead.update({k: v for k, v in (body or {}).items() if k != "id"})
            lead["updated_at"] = now
            return JSONResponse({"id": lead["id"], "updated_at": now})
        if method == "POST" and len(parts) == 3 and parts[2] == "link":
            lead = s.leads.get(int(parts[1]))
            if not lead:
                return _problem(404, "Lead not found")
            links = lead["_embedded"].setdefault("contacts", [])
            for item in body or []:
                if item.get("to_entity_type") == "contacts" and int(item["to_entity_id"]) in s.amo_contacts \
                        and all(c["id"] != int(item["to_entity_id"]) for c in links):
                    links.append({"id": int(item["to_entity_id"]), "is_main": not links})
            lead["updated_at"] = now
            return JSONResponse({"_links": {}, "_embedded": {"links": body}})
    if parts[0] == "contacts":
        if method == "GET" and len(parts) == 2:
            c = s.amo_contacts.get(int(parts[1]))
            return JSONResponse(c) if c else _problem(404, "Contact not found")
        if method == "GET":
            rows = [c for c in s.amo_contacts.values()
                    if not q.get("query") or q["query"].lower() in (c["name"] + " " + _cf_text(c)).lower()]
            return _collection("contacts", rows, page, limit, "contacts")
        if method == "POST":
            out = []
            for i, item in enumerate(body or []):
                cid = s.new_id()
                s.amo_contacts[cid] = {"id": cid, "created_at": now, "updated_at": now, "_embedded": {"companies": []},
                                       **item}
                out.append({"id": cid, "request_id": str(i)})
            return JSONResponse({"_links": {}, "_embedded": {"contacts": out}})
    if parts[0] == "companies" and method == "GET" and len(parts) == 2:
        c = s.amo_companies.get(int(parts[1]))
        return JSONResponse(c) if c else _problem(404, "Company not found")
    if parts[0] == "tasks":
        if method == "GET":
            rows = [t for t in s.amo_tasks.values()
                    if q.get("filter[entity_type]", t["entity_type"]) == t["entity_type"]
                    and str(t["entity_id"]) == q.get("filter[entity_id]", str(t["entity_id"]))]
            return _collection("tasks", rows, page, limit, "tasks")
        if method == "POST":
            out = []
            for i, item in enumerate(body or []):
                if not item.get("text") or not item.get("complete_till"):
                    return _problem(400, f"[{i}]: text and complete_till are required")
                tid = s.new_id()
                s.amo_tasks[tid] = {"id": tid, "is_completed": False, "created_at": now, "updated_at": now, **item}
                out.append({"id": tid, "request_id": str(i)})
            return JSONResponse({"_links": {}, "_embedded": {"tasks": out}})
    return _problem(404, f"no such route: {method} /api/v4/{path}")
