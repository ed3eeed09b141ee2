"""The web pages for sales and marketing, served by the read API's process.

    /web/                      priorities: opportunities by priority, filters, search, live signals
    /web/opportunities/{id}    one opportunity: the buying group, touches, score breakdown, signals
    /web/metrics               opportunity-centric measures as plots
    /web/live                  server-sent events: signals as scoring writes them, and the ids
                               of opportunities the projection changed (the page then refreshes)
    /web/export.csv            the priorities list as CSV (same filters)
    /web/opportunities/{id}/group.csv   one opportunity's buying group as CSV
    /web/login                 the token form (see access.py for who may see what)
    /web/static/...            the stylesheet and the script (nothing comes from a CDN)

Reads go through the same Reader as /v1, so a page never shows what the API would not.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, get_args
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import ColumnElement, func, or_, select
from sse_starlette import EventSourceResponse

from services.projection import schema as s
from services.projection.correction_api import Corrections
from services.projection.models import Status, Tier
from services.projection.repository import OpportunityFilter, Reader
from services.projection.settings import ProjectionSettings
from services.projection.web import correction_pages, export, views
from services.projection.web.access import safe_next
from services.projection.web.correction_pages import create_correction_pages
from services.projection.web.i18n import TEXT
from services.projection.web.live import ChangeHub, NameOpener, SignalHub
from services.projection.web.pages import Pages
from shared import topics
from shared.settings import kafka_settings

log = logging.getLogger("projection.web")

HERE = Path(__file__).parent
PAGE_SIZE = 50
EXPORT_MAX = 10_000  # rows of one CSV export of the list
SOLUTIONS = sorted(k.split(".", 1)[1] for k in TEXT if k.startswith("solution."))
# The filter form sends every field, empty ones too: an empty value means "any", not an error.
SearchText = Annotated[str | None, Query(max_length=200)]
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def cleaned(value: str | None) -> str | None:
    """What a text field of the form means: None when empty; no control characters, which
    PostgreSQL cannot store in text and no name contains."""
    return CONTROL.sub("", value or "").strip() or None


@dataclass(frozen=True)
class SearchFilter(OpportunityFilter):
    """The API's filter plus a search over company names, domains (the account's and its other
    domains), and the members' names and emails. The condition only touches the opportunities'
    own columns, so the Reader's count and page queries take it as is."""

    search: str | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        out = super().conditions()
        if self.search:
            pattern = "%" + self.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            a, o, m = s.accounts.c, s.opportunities.c, s.opportunity_members.c
            out.append(or_(
                o.account_id.ilike(pattern),
                o.account_id.in_(select(a.account_id).where(or_(
                    a.name.ilike(pattern), func.array_to_string(a.domains, " ").ilike(pattern)))),
                o.opportunity_id.in_(select(m.opportunity_id).where(or_(
                    m.name.ilike(pattern), m.email.ilike(pattern), m.person_id.ilike(pattern)))),
            ))
        return out


async def data_span(reader: Reader) -> tuple[datetime | None, datetime | None]:
    """First and last touch: the time axis of the metrics page (the Reader has no such query)."""
    t = s.touches.c
    async with reader.engine.connect() as conn:
        row = (await conn.execute(select(func.min(t.occurred_at), func.max(t.occurred_at)))).one()
    return row[0], row[1]


def create_web_router(reader: Reader, settings: ProjectionSettings, hub: SignalHub | None = None,
                      changes: ChangeHub | None = None, corrections: Corrections | None = None,
                      open_names: NameOpener | None = None) -> APIRouter:
    """`open_names`: opens the sealed member names of a live signal (SignalHub)."""
    hub = hub or SignalHub(kafka_settings(), topics.SIGNALS.name, open_names=open_names)
    changes = changes or ChangeHub(reader)
    pages = Pages(settings)
    access, page, gate = pages.access, pages.page, pages.gate

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if access.open:
            log.warning("web pages are open without a token: the development API tokens are in use")
        yield
        await hub.stop()
        await changes.stop()

    router = APIRouter(include_in_schema=False, lifespan=lifespan)
    router.mount("/web/static", StaticFiles(directory=HERE / "static"), name="web-static")
    if corrections is not None:
        # Before the page's route, whose {opportunity_id:path} would take ".../correct/..." in.
        router.include_router(create_correction_pages(settings, corrections))

    def invalid_choice(request: Request, fields: dict[str, tuple[str | None, tuple[str, ...]]]) -> Response | None:
        """A 422 page naming the filter whose value is none of its choices (empty means any)."""
        t = pages.t(request)
        for name, (value, allowed) in fields.items():
            if value and value not in allowed:
                return page(request, "missing.html", status=422, message=t(
                    "error.invalid_filter", label=t(f"filter.{name}"), field=name, value=value,
                    allowed=", ".join(allowed)))
        return None

    @router.get("/")
    async def root() -> RedirectResponse:
        return RedirectResponse("/web/", status_code=307)

    @router.get("/web/", response_model=None)
    async def priorities(
        request: Request,
        status: Annotated[str | None, Query()] = None,
        tier: Annotated[str | None, Query()] = None,
        solution: SearchText = None,
        q: SearchText = None,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> Response:
        if (denied := gate(request)) is not None:
            return denied
        if (refused := invalid_choice(request, {"status": (status, get_args(Status)),
                                                "tier": (tier, get_args(Tier))})) is not None:
            return refused
        where = SearchFilter(status=status or None, tier=tier or None,
                             solution=cleaned(solution), search=cleaned(q))
        total, rows = await reader.list_opportunities(where, PAGE_SIZE, offset)
        t = pages.t(request)
        ranked = [{**r, "rank": offset + i + 1} for i, r in enumerate(rows)]
        current = {"status": where.status or "", "tier": where.tier or "", "solution": where.solution or "",
                   "q": where.search or ""}
        base = {k: v for k, v in current.items() if v}
        author = settings.author_of(access.presented(request) or "") if corrections is not None else None
        open_form = {"author": author, "outcome": correction_pages.outcome(request, t), "solutions": SOLUTIONS}
        return page(
            request, "priorities.html", rows=views.priority_rows(ranked, t, datetime.now(UTC)), total=total,
            open_form=open_form if author else None,
            export_url="/web/export.csv" + (f"?{urlencode(base)}" if base else ""),
            current=current, statuses=get_args(Status), tiers=get_args(Tier),
            solutions=sorted({*SOLUTIONS, *([where.solution] if where.solution else [])}),
            prev_url=f"?{urlencode({**base, 'offset': max(offset - PAGE_SIZE, 0)})}" if offset else None,
            next_url=f"?{urlencode({**base, 'offset': offset + PAGE_SIZE})}" if offset + PAGE_SIZE < total else None,
        )

    def csv_response(text: str, filename: str) -> Response:
        return Response(text, media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})

    @router.get("/web/export.csv", response_model=None)
    async def export_list(
        request: Request,
        status: Annotated[str | None, Query()] = None,
        tier: Annotated[str | None, Query()] = None,
        solution: SearchText = None,
        q: SearchText = None,
    ) -> Response:
        """The priorities list as CSV, with the same filters as the page (up to EXPORT_MAX rows)."""
        if (denied := gate(request)) is not None:
            return denied
        if (refused := invalid_choice(request, {"status": (status, get_args(Status)),
                                                "tier": (tier, get_args(Tier))})) is not None:
            return refused
        where = SearchFilter(status=status or None, tier=tier or None, solution=cleaned(solution), search=cleaned(q))
        _, rows = await reader.list_opportunities(where, EXPORT_MAX, 0)
        return csv_response(export.opportunities_csv(rows, pages.t(request)), "opportunities.csv")

    # Before the page's route, whose {opportunity_id:path} would take "/group.csv" in.
    @router.get("/web/opportunities/{opportunity_id:path}/group.csv", response_model=None)
    async def export_group(request: Request, opportunity_id: str) -> Response:
        """One opportunity's buying group as CSV."""
        if (denied := gate(request)) is not None:
            return denied
        detail = await reader.opportunity(opportunity_id, 1)
        if detail is None:
            return page(request, "missing.html", status=404)
        return csv_response(export.group_csv(detail, pages.t(request)), "buying-group.csv")

    @router.get("/web/opportunities/{opportunity_id:path}", response_model=None)
    async def opportunity(request: Request, opportunity_id: str) -> Response:
        if (denied := gate(request)) is not None:
            return denied
        detail = await reader.opportunity(opportunity_id, 500)
        if detail is None:
            return page(request, "missing.html", status=404)
        t = pages.t(request)
        plot, legend = views.timeline_plot(detail, t)
        account = detail["account_name"] or detail["account_id"]
        names = views.member_names(detail["members"])
        cards = [views.signal_card(x, t, account, detail["solution"], opportunity_id, names)
                 for x in reversed(detail["signals"])]
        summary = views.priority_rows([{**detail, "rank": 0}], t, datetime.now(UTC))[0]
        author = settings.author_of(access.presented(request) or "")
        correct = {"author": author, "history": correction_pages.history(detail, t),
                   "outcome": correction_pages.outcome(request, t), "stances": correction_pages.STANCES,
                   "influences": correction_pages.INFLUENCES, "concerns": correction_pages.CONCERNS,
                   "roles": correction_pages.ROLES, "departments": correction_pages.DEPARTMENTS,
                   "action": views.opportunity_url(opportunity_id) + "/correct",
                   "members": [(m["person_id"], m["name"] or m["email"] or m["person_id"]) for m in detail["members"]],
                   # The account's known people who are not members: the link form suggests them
                   # (ids may be pseudonyms, docs/privacy.md; people pick a name, not an id).
                   "contacts": await correction_pages.linkable(reader, detail) if author else [],
                   "enabled": corrections is not None}
        # Account merges: where an absorbed opportunity went, which ones this one took in.
        merged = {"into": (detail["merged_into"], views.opportunity_url(detail["merged_into"]))
                  if detail["merged_into"] else None,
                  "sources": [(oid, views.opportunity_url(oid)) for oid in detail["merged_from"]]}
        return page(request, "opportunity.html", o=detail, row=summary, picture=views.group_picture(detail, t),
                    correct=correct, merged=merged,
                    timeline=plot, legend=legend, breakdown=views.score_breakdown(detail, t), signals=cards,
                    live_filter=opportunity_id, group_csv_url=views.opportunity_url(opportunity_id) + "/group.csv")

    @router.get("/web/metrics", response_model=None)
    async def metrics(request: Request) -> Response:
        if (denied := gate(request)) is not None:
            return denied
        t = pages.t(request)
        first, last = await data_span(reader)
        if first is None or last is None:
            return page(request, "metrics.html", view=None)
        step, periods = views.buckets(first, last)
        # Only Reader.metrics, the query behind GET /v1/metrics, so the plots and the API agree:
        # once for all time, then per period and up to each period's end.
        total = await reader.metrics(None, None)
        series = [await reader.metrics(since, until) for since, until in periods]
        cumulative = [await reader.metrics(None, until) for _, until in periods]
        return page(request, "metrics.html", view=views.metrics_view(total, step, periods, series, cumulative, t))

    @router.get("/web/live")
    async def live(request: Request, opportunity: SearchText = None) -> Response:
        if not access.allowed(request):
            return Response('{"error": "unauthorized", "message": "a read token is required"}', status_code=401,
                            media_type="application/json")
        t = pages.t(request)
        only = cleaned(opportunity)

        async def events() -> AsyncIterator[dict[str, Any]]:
            try:
                async with hub.subscribe() as signals, changes.subscribe() as changed:
                    # Tells the page it will see every signal and change written from now on.
                    yield {"event": "ready", "data": "{}"}
                    # One waiting get per queue, kept across turns: cancelling a get could lose an item.
                    waiting = {asyncio.ensure_future(signals.get()): "signal",
                               asyncio.ensure_future(changed.get()): "changed"}
                    try:
                        while True:
                            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                            for task in done:
                                kind = waiting.pop(task)
                                item = task.result()
                                waiting[asyncio.ensure_future((signals if kind == "signal" else changed).get())] = kind
                                if kind == "signal" and (only is None or item.opportunity_id == only):
                                    card = views.signal_card(item, t)
                                    yield {"event": "signal", "id": card.signal_id,
                                           "data": json.dumps(card.as_json(), ensure_ascii=False)}
                                elif kind == "changed" and (only is None or item["opportunity_id"] == only):
                                    yield {"event": "changed", "data": json.dumps(item, ensure_ascii=False)}
                    finally:
                        for task in waiting:
                            task.cancel()
            except TimeoutError:
                # Kafka or the database is away: end the stream; the browser's EventSource comes
                # back after `retry`.
                yield {"event": "unavailable", "data": "{}", "retry": 5000}

        return EventSourceResponse(events(), ping=15, headers={"Cache-Control": "no-store"})

    @router.get("/web/login", response_model=None)
    async def login_form(request: Request, next: SearchText = None) -> Response:
        return page(request, "login.html", invalid=False, next=safe_next(next))

    @router.post("/web/login", response_model=None)
    async def login(request: Request) -> Response:
        # A plain urlencoded form, parsed here: python-multipart is not a dependency.
        form = parse_qs((await request.body())[:4096].decode("utf-8", errors="replace"))
        token = (form.get("token") or [""])[0].strip()
        target = safe_next((form.get("next") or [None])[0])
        if not access.valid(token):
            return page(request, "login.html", status=401, invalid=True, next=target)
        response = RedirectResponse(target, status_code=303)
        access.remember(response, request, token)
        return response

    return router
