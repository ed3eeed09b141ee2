"""The funnel pages, served with the others by the read API's process:

    /web/funnel                 the board: open opportunities by stage, with their exit criteria
    /web/funnel/{id}            one opportunity's qualification: criteria, stage history (who,
                                when, why, members engaged at each move), the seller's team,
                                the deal; forms to move the stage, mark a criterion, assign the
                                team, set the deal terms
    /web/forecast               forecast per month or quarter, by team member, solution or stage,
                                next to the lead-count forecast, each deal's weight explained
    /web/analytics              time in stage, conversion, cycle, engagement at each move,
                                stalled share, won-deal insights, as plots

Reads go through the same Reader and report functions as /v1; the forms write through the same
functions as the API's write endpoints (`Writes`), so a page says "applied" exactly when the
API would. Writing needs a CRM token (BG_API_WRITE_TOKENS) unless the pages are open in
development; cross-site posts are refused by the edge middleware (security.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, get_args
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ValidationError

from services.projection import forecast as fc
from services.projection.funnel import Funnel
from services.projection.models import Accepted, CriterionRequest, DealRequest, StageRequest, TeamRequest
from services.projection.reports import analytics_view, forecast_view
from services.projection.repository import Reader
from services.projection.settings import ProjectionSettings
from services.projection.web import funnel_views as fv
from services.projection.web.funnel_text import FunnelTranslator
from services.projection.web.pages import Pages
from shared.alert_routing import alert_recipients

BOARD_LIMIT = 500
RESULTS = ("applied", "stale", "duplicate", "pending", "invalid")


@dataclass(frozen=True)
class Writes:
    """The API's write paths (api.py), each raising its 4xx error with the field at fault."""

    stage: Callable[[str, StageRequest], Awaitable[Accepted]]
    criterion: Callable[[str, str, CriterionRequest], Awaitable[Accepted]]
    team: Callable[[str, str, TeamRequest], Awaitable[Accepted]]
    deal: Callable[[str, DealRequest], Awaitable[Accepted]]


def _form_error(exc: Exception) -> str | None:
    """The message of a refused write (the API's error or a validation error), else None."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:3])
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and "message" in body:
        return str(body["message"])
    return None


def create_funnel_router(reader: Reader, settings: ProjectionSettings, funnel: Funnel, writes: Writes) -> APIRouter:
    # The opportunity pages' rendering and login gate, with the funnel's words; the language
    # links drop a form's one-time result.
    pages = Pages(settings, lambda lang: FunnelTranslator(lang, funnel), transient=("result", "message"),
                  funnel=funnel)
    access, page, gate, translator = pages.access, pages.page, pages.gate, pages.t
    router = APIRouter(include_in_schema=False)

    def may_write(request: Request) -> bool:
        return access.open or (access.presented(request) or "") in settings.crm_tokens

    @router.get("/web/funnel", response_model=None)
    async def funnel_board(request: Request) -> Response:
        if (denied := gate(request)) is not None:
            return denied
        t = translator(request)
        return page(request, "funnel.html", board=fv.board(funnel, await reader.board(BOARD_LIMIT), t))

    @router.get("/web/funnel/{opportunity_id:path}", response_model=None)
    async def qualify(request: Request, opportunity_id: str) -> Response:
        if (denied := gate(request)) is not None:
            return denied
        detail = await reader.opportunity(opportunity_id, 1)
        if detail is None:
            return page(request, "missing.html", status=404)
        t = translator(request)
        result = request.query_params.get("result")
        message = None
        if result in RESULTS:
            message = t("q.result.invalid", message=request.query_params.get("message", "")[:300]) if (
                result == "invalid") else t(f"q.result.{result}")
        recipients = alert_recipients(detail["team"], detail["account_owner"], funnel.team_roles)
        current = funnel.by_code.get(detail["stage"])
        return page(request, "qualify.html", o=detail, criteria=fv.criteria_views(t, detail["criteria"] or []),
                    history=fv.history(t, detail["stage_history"]), recipients=recipients, result=result,
                    message=message, may_write=may_write(request), current=current,
                    action=fv.qualify_url(opportunity_id), opportunity_url=fv.opportunity_url(opportunity_id),
                    amount=fv.money(t, detail["amount"], detail["currency"]))

    async def _form(request: Request) -> dict[str, str]:
        # A plain urlencoded form, parsed here: python-multipart is not a dependency.
        raw = parse_qs((await request.body())[:16384].decode("utf-8", errors="replace"))
        return {k: v[0].strip() for k, v in raw.items() if v and v[0].strip()}

    async def _write(request: Request, opportunity_id: str,
                     action: Callable[[dict[str, str]], Awaitable[Accepted]]) -> Response:
        if not may_write(request):
            t = translator(request)
            return page(request, "missing.html", status=403, message=t("q.write_denied"))
        back = fv.qualify_url(opportunity_id)
        try:
            answer = await action(await _form(request))
        except Exception as exc:
            message = _form_error(exc)
            if message is None:
                raise
            return RedirectResponse(f"{back}?{urlencode({'result': 'invalid', 'message': message})}", status_code=303)
        return RedirectResponse(f"{back}?result={answer.result}", status_code=303)

    def _model(cls: type[BaseModel], data: dict[str, Any]) -> Any:
        return cls.model_validate(data)

    @router.post("/web/funnel/{opportunity_id:path}/stage", response_model=None)
    async def post_stage(request: Request, opportunity_id: str) -> Response:
        async def act(form: dict[str, str]) -> Accepted:
            return await writes.stage(opportunity_id, _model(StageRequest, {
                "stage": form.get("stage", ""), "reason": form.get("reason"), "changed_by": form.get("who"),
                "author": "person", "source": "web"}))
        return await _write(request, opportunity_id, act)

    @router.post("/web/funnel/{opportunity_id:path}/criterion", response_model=None)
    async def post_criterion(request: Request, opportunity_id: str) -> Response:
        async def act(form: dict[str, str]) -> Accepted:
            return await writes.criterion(opportunity_id, form.get("criterion", ""), _model(CriterionRequest, {
                "holds": form.get("holds") == "yes", "evidence": form.get("evidence"),
                "marked_by": form.get("who", "")}))
        return await _write(request, opportunity_id, act)

    @router.post("/web/funnel/{opportunity_id:path}/team", response_model=None)
    async def post_team(request: Request, opportunity_id: str) -> Response:
        async def act(form: dict[str, str]) -> Accepted:
            return await writes.team(opportunity_id, form.get("role", ""), _model(TeamRequest, {
                "person": form.get("person"), "assigned_by": form.get("who", "")}))
        return await _write(request, opportunity_id, act)

    @router.post("/web/funnel/{opportunity_id:path}/deal", response_model=None)
    async def post_deal(request: Request, opportunity_id: str) -> Response:
        async def act(form: dict[str, str]) -> Accepted:
            return await writes.deal(opportunity_id, _model(DealRequest, {
                "amount": form.get("amount"), "currency": form.get("currency"),
                "expected_close_on": form.get("expected_close_on"), "set_by": form.get("who", "")}))
        return await _write(request, opportunity_id, act)

    @router.get("/web/forecast", response_model=None)
    async def forecast_page(request: Request, period: str = "month", by: str = "none") -> Response:
        if (denied := gate(request)) is not None:
            return denied
        period = period if period in get_args(fc.Period) else "month"
        by = by if by in get_args(fc.GroupBy) else "none"
        t = translator(request)
        found = await forecast_view(reader, funnel, period, by)  # type: ignore[arg-type]
        return page(request, "forecast.html", view=fv.forecast_page(found, t), period=period, by=by,
                    periods=get_args(fc.Period), groupings=[(b, t(f"fc.by.{b}")) for b in get_args(fc.GroupBy)])

    @router.get("/web/analytics", response_model=None)
    async def analytics_page(request: Request) -> Response:
        if (denied := gate(request)) is not None:
            return denied
        t = translator(request)
        found = await analytics_view(reader, funnel, None)
        return page(request, "analytics.html", view=fv.analytics_page(found, funnel, t))

    return router
