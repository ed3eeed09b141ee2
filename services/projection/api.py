"""The read API (FastAPI). Thin: authorise, validate, call the Reader, shape the answer.

Every error is JSON ({"error", "message", "errors": [{"field", "message"}]}); invalid input
is a 422 naming the field; the database being away is a 503, never a 500.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from aiokafka.errors import KafkaError
from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import make_asgi_app
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.projection import domain
from services.projection import forecast as fc
from services.projection.consumer import Health, refused, sqlstate
from services.projection.correction_api import Publish as CorrectionPublish
from services.projection.correction_api import catalog_solutions, create_correction_router
from services.projection.errors import ApiError, bearer_token
from services.projection.funnel import Funnel, configured
from services.projection.models import (
    NO_CONTROL,
    Accepted,
    Account,
    Analytics,
    Attribution,
    AttributionReport,
    ChangePage,
    CriterionRequest,
    DealRequest,
    ErrorBody,
    Forecast,
    FunnelOut,
    Metrics,
    OpportunityDetail,
    OpportunityPage,
    OpportunitySummary,
    Readiness,
    StageRequest,
    Status,
    Team,
    TeamRequest,
    Tier,
    UtcTime,
)
from services.projection.reports import analytics_view, forecast_view
from services.projection.repository import OpportunityFilter, Reader
from services.projection.settings import ProjectionSettings
from services.projection.web import create_web_router
from services.projection.web.funnel_pages import Writes, create_funnel_router
from services.projection.web.live import NameOpener
from services.projection.web.security import EdgeMiddleware
from shared.alert_routing import alert_recipients
from shared.apidocs import mount_docs
from shared.schemas.crm import CriterionMarked, DealTermsSet, StageMoved, TeamAssigned

QualificationMessage = StageMoved | CriterionMarked | TeamAssigned | DealTermsSet

log = logging.getLogger("projection.api")

MAX_SEQ = 2**63 - 1
Id = Annotated[str, Path(min_length=1, max_length=200, pattern=NO_CONTROL)]
Text = Annotated[str | None, Query(min_length=1, max_length=200, pattern=NO_CONTROL)]
Since = Annotated[UtcTime | None, Query(description="start of the period (event time), inclusive")]
Until = Annotated[UtcTime | None, Query(description="end of the period (event time), exclusive")]
AttributionModel = Annotated[domain.Model, Query(description="how the credit of a deal is spread over its touches")]

ERRORS: dict[int | str, dict[str, Any]] = {status: {"model": ErrorBody} for status in (401, 422, 503)}
NOT_FOUND: dict[int | str, dict[str, Any]] = {**ERRORS, 404: {"model": ErrorBody}}
bearer = HTTPBearer(auto_error=False, description="a read token, or a CRM token")


def _period(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and until <= since:
        raise ApiError(422, "validation_error", "until must be after since", field="query.until")


Publisher = Callable[[QualificationMessage], Awaitable[None]]
Clock = Callable[[], datetime]
# A CRM's or a browser's clock may run a little ahead of ours; further ahead is an error.
FUTURE_TOLERANCE = timedelta(minutes=5)


def _digest(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:32]


def event_time(value: datetime | None, now: datetime, field: str) -> datetime:
    """The time of a reported fact: given, else now. A time in the future is refused (422 naming
    the field): the latest change wins, so one dated 2030 would lock the opportunity."""
    if value is None:
        return now
    if value > now + FUTURE_TOLERANCE:
        raise ApiError(422, "validation_error", f"{field.split('.')[-1]} {value.isoformat()} is in the future "
                       f"(now {now.isoformat(timespec='seconds')}); report a change when it has happened", field=field)
    return value


def stage_event(funnel: Funnel, opportunity: dict[str, Any], body: StageRequest, now: datetime) -> StageMoved:
    """The event for a reported change; its id is a digest of the change, so that retrying the
    same change (with its changed_at) is a duplicate the projection ignores."""
    stage = funnel.stage_for(body.stage)
    if stage is None:
        known = ", ".join([s.code for s in funnel.stages] + sorted(funnel.crm_stages))
        raise ApiError(422, "validation_error", f"stage {body.stage!r} is neither a funnel stage nor a CRM stage "
                       f"of funnel.yaml (known: {known})", field="body.stage")
    outcome = body.outcome or stage.outcome or "open"
    if outcome != (stage.outcome or "open"):
        raise ApiError(422, "validation_error", f"outcome {outcome!r} contradicts stage {stage.code!r}",
                       field="body.outcome")
    changed_at = event_time(body.changed_at, now, "body.changed_at")
    crm_stage = body.stage if body.stage != stage.code else None
    changed_by = body.changed_by or body.source
    return StageMoved(
        event_id="stage:" + _digest(opportunity["opportunity_id"], stage.code, outcome, body.amount, body.currency,
                                    changed_at.isoformat(), body.source, changed_by, body.reason),
        opportunity_id=opportunity["opportunity_id"], account_id=opportunity["account_id"],
        solution=opportunity["solution"], stage=stage.code, from_stage=opportunity.get("stage"), crm_stage=crm_stage,
        outcome=outcome, changed_at=changed_at, changed_by=changed_by, author=body.author, reason=body.reason,
        amount=body.amount, currency=body.currency)


def create_app(settings: ProjectionSettings, reader: Reader, publish: Publisher,
               consumer: Health | None = None,
               lifespan_hooks: tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]] | None = None,
               funnel: Funnel | None = None, clock: Clock = lambda: datetime.now(UTC),
               publish_correction: CorrectionPublish | None = None,
               open_names: NameOpener | None = None) -> FastAPI:
    """`clock` judges "in the future" for reported facts and dates corrections: the API's own
    clock, at the edge only. `publish_correction` produces to bg.correction.v1 (None: the
    correction endpoints answer 503). `open_names` opens the sealed member names of the live
    signals the pages show (docs/privacy.md)."""
    funnel = funnel or configured()
    @asynccontextmanager
    async def lifespan(_: FastAPI):
        if in_use := settings.dev_tokens_in_use():
            # Only reachable with BG_ENV=development (main.serve refuses otherwise).
            log.warning(f"development mode: {', '.join(in_use)} hold development tokens")
        if lifespan_hooks:
            await lifespan_hooks[0]()
        try:
            yield
        finally:
            if lifespan_hooks:
                await lifespan_hooks[1]()

    app = FastAPI(
        title="Buying-group engine: opportunities",
        version="1",
        description=(
            "Opportunities (account x solution) with their buying groups, scores and signals, for CRMs "
            "and people. Every /v1 call needs `Authorization: Bearer <token>` (BG_API_TOKENS; the "
            "development default is `dev-read-token`); reporting stage changes needs a CRM token "
            "(BG_API_WRITE_TOKENS; development default `dev-crm-token`); corrections (link, unlink, role, "
            "stance, note, merge, undo) need a correction token, which names its user (BG_API_CORRECTION_TOKENS; "
            "development default `dev-correction-token`)."
        ),
        lifespan=lifespan,
        docs_url=None, redoc_url=None,  # /docs from the project's own assets (shared/apidocs.py)
    )
    mount_docs(app)
    app.mount("/metrics", make_asgi_app())
    # Security headers, same-origin form posts, NUL in paths and queries (web/security.py).
    app.add_middleware(EdgeMiddleware, routes=app.router.routes)

    def read_access(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        bearer_token(credentials, settings.read_tokens)

    def crm_access(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        token = bearer_token(credentials, settings.read_tokens)
        if token not in settings.crm_tokens:
            raise ApiError(403, "forbidden", "this token may read but not report stage changes")

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:3])
        return JSONResponse({"error": "validation_error", "message": f"invalid request: {summary}",
                             "errors": errors}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # FastAPI's answer to a body it cannot decode (not UTF-8, not JSON): invalid input.
            message = f"the body is not valid JSON: {exc.detail}"
            return JSONResponse({"error": "validation_error", "message": message,
                                 "errors": [{"field": "body", "message": message}]}, status_code=422)
        error = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse({"error": error, "message": str(exc.detail), "errors": []},
                            status_code=exc.status_code, headers=getattr(exc, "headers", None))

    def _unavailable(exc: Exception) -> JSONResponse:
        log.warning("database unavailable", extra={"error": repr(exc)})
        return JSONResponse({"error": "unavailable", "message": "the database is unavailable; retry shortly",
                             "errors": []}, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(DBAPIError)
    async def _database(_: Request, exc: DBAPIError) -> JSONResponse:
        if refused(exc):
            # The database's own words stay in the log: they quote SQL and values, not the field.
            log.warning("database refused a value of a request", extra={"error": repr(exc.orig)})
            return JSONResponse({"error": "validation_error", "message": "a value of the request cannot be "
                                 "compared with stored text (characters the database refuses)", "errors": []},
                                status_code=422)
        if isinstance(exc, OperationalError | InterfaceError) or sqlstate(exc)[:2] in ("08", "53", "57"):
            return _unavailable(exc)
        raise exc

    @app.exception_handler(OSError)
    async def _connection(_: Request, exc: OSError) -> JSONResponse:
        return _unavailable(exc)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}}, include_in_schema=False)
    async def readyz() -> JSONResponse:
        try:
            await reader.ping()
            database = "ok"
        except Exception as exc:
            database = f"unavailable: {exc!r}"
        state = None
        ready = database == "ok"
        if consumer is not None:
            state = {"running": consumer.running, "assigned": consumer.assigned, "batches": consumer.batches,
                     "messages": consumer.messages, "dead_lettered": consumer.dead_lettered,
                     "last_batch_at": consumer.last_batch_at.isoformat() if consumer.last_batch_at else None,
                     "failing": consumer.failing}
            ready = ready and consumer.running and consumer.failing is None
        body = Readiness(status="ready" if ready else "not_ready", database=database, consumer=state)
        return JSONResponse(body.model_dump(), status_code=200 if ready else 503)

    v1 = [Depends(read_access)]

    @app.get("/v1/opportunities", response_model=OpportunityPage, responses=ERRORS, dependencies=v1,
             summary="Opportunities by priority: open first, then tier, score and recent activity")
    async def list_opportunities(
        status: Annotated[Status | None, Query()] = None,
        tier: Annotated[Tier | None, Query()] = None,
        solution: Text = None,
        account: Annotated[str | None, Query(min_length=1, max_length=200, pattern=NO_CONTROL,
                                             description="account id (the registrable domain)")] = None,
        stage: Text = None,
        min_score: Annotated[float | None, Query(allow_inf_nan=False)] = None,
        formed_since: Annotated[UtcTime | None, Query(description="buying group formed at or after")] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> OpportunityPage:
        where = OpportunityFilter(status=status, tier=tier, solution=solution, account=account, stage=stage,
                                  min_score=min_score, formed_since=formed_since)
        total, rows = await reader.list_opportunities(where, limit, offset)
        items = [{**row, "rank": offset + i + 1} for i, row in enumerate(rows)]
        return OpportunityPage.model_validate({"total": total, "limit": limit, "offset": offset, "items": items})

    @app.get("/v1/opportunities/{opportunity_id}", response_model=OpportunityDetail, responses=NOT_FOUND,
             dependencies=v1, summary="One opportunity: its buying group, roles, touches, score breakdown, signals")
    async def get_opportunity(
        opportunity_id: Id,
        timeline_limit: Annotated[int, Query(ge=1, le=2000, description="the latest touches to include")] = 500,
    ) -> OpportunityDetail:
        found = await reader.opportunity(opportunity_id, timeline_limit)
        if found is None:
            raise ApiError(404, "not_found", f"no opportunity {opportunity_id!r}", field="path.opportunity_id")
        return OpportunityDetail.model_validate({
            **found, "score_breakdown": found["breakdown"],
            "alert_recipients": alert_recipients(found["team"], found["account_owner"], funnel.team_roles)})

    @app.get("/v1/accounts/{domain}", response_model=Account, responses=NOT_FOUND, dependencies=v1,
             summary="An account (by id or any of its domains) with its opportunities and contacts")
    async def get_account(domain: Id) -> Account:
        found = await reader.account(domain)
        if found is None:
            raise ApiError(404, "not_found", f"no account {domain!r}", field="path.domain")
        return Account.model_validate(found)

    @app.get("/v1/changes", response_model=ChangePage, responses=ERRORS, dependencies=v1,
             summary="Change feed: every changed opportunity in commit order, resumable from a cursor")
    async def changes(
        cursor: Annotated[int, Query(ge=0, le=MAX_SEQ, description="next_cursor of the previous page; 0 = start")] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> ChangePage:
        rows = await reader.changes(cursor, limit + 1)
        page = rows[:limit]
        next_cursor = page[-1]["change_seq"] if page else cursor
        return ChangePage.model_validate({"items": page, "next_cursor": next_cursor,
                                          "has_more": len(rows) > limit})

    @app.get("/v1/metrics", response_model=Metrics, responses=ERRORS, dependencies=v1,
             summary="Opportunity-centric measures of a period (default: all time)")
    async def metrics(since: Since = None, until: Until = None) -> Metrics:
        _period(since, until)
        found = await reader.metrics(since, until)
        identified = found["opportunities_identified"]
        return Metrics.model_validate({
            **found, "since": since, "until": until,
            "contacts_per_opportunity": found["raw_contacts"] / identified if identified else None,
        })

    async def _ident(opportunity_id: str) -> dict[str, Any]:
        found = await reader.opportunity_ident(opportunity_id)
        if found is None:
            raise ApiError(404, "not_found", f"no opportunity {opportunity_id!r}", field="path.opportunity_id")
        return found

    async def _report(event: QualificationMessage, at: datetime, what: str, key: str | None = None) -> Accepted:
        """Publish, wait until the projection shows it, and say honestly what came of it."""
        before = await reader.holder(event.opportunity_id, what, key)
        recorded_before = await reader.stage_recorded(event.event_id) if what == "stage" else False
        if before is not None and (before[0] == event.event_id or recorded_before):
            return await _answer(event, "duplicate", before[0] == event.event_id,
                                 "this change was reported before")
        try:
            await publish(event)
        except (KafkaError, OSError, TimeoutError) as exc:
            raise ApiError(503, "unavailable", f"Kafka did not acknowledge the change: {exc!r}",
                           headers={"Retry-After": "5"}) from None
        deadline = time.monotonic() + settings.stage_wait_seconds
        while True:
            holder = await reader.holder(event.opportunity_id, what, key)
            if holder is not None and holder[0] == event.event_id:
                return await _answer(event, "applied", True, "the change is the opportunity's state now")
            if holder is not None and holder[1] is not None and (holder[1], holder[0] or "") > (at, event.event_id):
                # The latest change wins: this one never will. It stays in the log (and, for a
                # stage, in the history), but the state is the later one's.
                return await _answer(event, "stale", False, (
                    f"stale: a later change holds (at {holder[1].isoformat()}, event {holder[0]}); this one "
                    "is kept in the history but does not change the current state"))
            if time.monotonic() >= deadline:
                return await _answer(event, "pending", False, "published; not yet visible: read the opportunity again")
            await asyncio.sleep(0.1)

    async def _answer(event: QualificationMessage, result: str, applied: bool, message: str) -> Accepted:
        found = await reader.opportunity(event.opportunity_id, 1)
        summary = OpportunitySummary.model_validate(found) if found else None
        return Accepted(event_id=event.event_id, result=result, applied=applied, message=message, opportunity=summary)

    write = [Depends(crm_access)]
    WRITE_ERRORS = {**NOT_FOUND, 403: {"model": ErrorBody}}

    @app.post("/v1/opportunities/{opportunity_id}/stage", status_code=202, response_model=Accepted,
              responses=WRITE_ERRORS, dependencies=write,
              summary="A person or a CRM moves an opportunity to a stage (forward, back, won, lost)")
    async def report_stage(opportunity_id: Id, body: StageRequest) -> Accepted:
        opportunity = await reader.opportunity(opportunity_id, 1)
        if opportunity is None:
            raise ApiError(404, "not_found", f"no opportunity {opportunity_id!r}", field="path.opportunity_id")
        event = stage_event(funnel, opportunity, body, clock())
        return await _report(event, event.changed_at, "stage")

    @app.post("/v1/opportunities/{opportunity_id}/criteria/{criterion}", status_code=202, response_model=Accepted,
              responses=WRITE_ERRORS, dependencies=write,
              summary="A person says whether an exit criterion holds, with the evidence")
    async def mark_criterion(opportunity_id: Id, criterion: Annotated[str, Path(max_length=100)],
                             body: CriterionRequest) -> Accepted:
        found = funnel.criteria.get(criterion)
        if found is None:
            raise ApiError(422, "validation_error", f"no criterion {criterion!r} in the funnel "
                           f"(set by a person: {', '.join(funnel.person_criteria)})", field="path.criterion")
        if found.derived:
            raise ApiError(422, "validation_error", f"criterion {criterion!r} is derived from the buying group "
                           f"({found.rule}); it cannot be set by hand", field="path.criterion")
        if body.holds and body.evidence is None:
            raise ApiError(422, "validation_error", "evidence is required when the criterion holds",
                           field="body.evidence")
        ident = await _ident(opportunity_id)
        at = event_time(body.marked_at, clock(), "body.marked_at")
        event = CriterionMarked(
            event_id="mark:" + _digest(opportunity_id, criterion, body.holds, body.evidence, body.marked_by,
                                       at.isoformat()),
            opportunity_id=opportunity_id, account_id=ident["account_id"], solution=ident["solution"],
            criterion=criterion, holds=body.holds, evidence=body.evidence, marked_by=body.marked_by, marked_at=at)
        return await _report(event, at, "criterion", criterion)

    @app.put("/v1/opportunities/{opportunity_id}/team/{role}", status_code=202, response_model=Accepted,
             responses=WRITE_ERRORS, dependencies=write, summary="Assign a seller to a role of the opportunity's team")
    async def assign_team(opportunity_id: Id, role: Annotated[str, Path(max_length=50)], body: TeamRequest
                          ) -> Accepted:
        if role not in funnel.team_roles:
            raise ApiError(422, "validation_error", f"no team role {role!r} (roles: {', '.join(funnel.team_roles)})",
                           field="path.role")
        ident = await _ident(opportunity_id)
        at = event_time(body.assigned_at, clock(), "body.assigned_at")
        event = TeamAssigned(
            event_id=f"team:{_digest(opportunity_id, role, body.person, body.assigned_by, at.isoformat())}",
            opportunity_id=opportunity_id, account_id=ident["account_id"], solution=ident["solution"], role=role,
            person=body.person, assigned_by=body.assigned_by, assigned_at=at)
        return await _report(event, at, "team", role)

    @app.put("/v1/opportunities/{opportunity_id}/deal", status_code=202, response_model=Accepted,
             responses=WRITE_ERRORS, dependencies=write, summary="Amount and expected close date of the deal")
    async def set_deal(opportunity_id: Id, body: DealRequest) -> Accepted:
        ident = await _ident(opportunity_id)
        at = event_time(body.set_at, clock(), "body.set_at")
        event = DealTermsSet(
            event_id="deal:" + _digest(opportunity_id, body.amount, body.currency, body.expected_close_on, body.set_by,
                                       at.isoformat()),
            opportunity_id=opportunity_id, account_id=ident["account_id"], solution=ident["solution"],
            amount=body.amount, currency=body.currency, expected_close_on=body.expected_close_on,
            set_by=body.set_by, set_at=at)
        return await _report(event, at, "deal")

    @app.get("/v1/opportunities/{opportunity_id}/team", response_model=Team, responses=NOT_FOUND, dependencies=v1,
             summary="The seller's team of an opportunity, and who its alerts go to")
    async def get_team(opportunity_id: Id) -> Team:
        found = await reader.opportunity(opportunity_id, 1)
        if found is None:
            raise ApiError(404, "not_found", f"no opportunity {opportunity_id!r}", field="path.opportunity_id")
        return Team(opportunity_id=opportunity_id, team=found["team"], account_owner=found["account_owner"],
                    alert_recipients=alert_recipients(found["team"], found["account_owner"], funnel.team_roles))

    @app.get("/v1/funnel", response_model=FunnelOut, responses=ERRORS, dependencies=v1,
             summary="The qualifying funnel (stages, probabilities, exit criteria, team roles) with open counts")
    async def get_funnel() -> FunnelOut:
        counts = {row["stage"]: row for row in await reader.stage_counts()}
        return FunnelOut(
            stages=[{**stage.model_dump(), "exit": list(stage.exit),
                     "opportunities": counts.get(stage.code, {}).get("opportunities", 0),
                     "amount": counts.get(stage.code, {}).get("amount") or 0.0} for stage in funnel.stages],
            criteria=[{"code": code, "name": c.name.model_dump(), "derived": c.derived, "rule": c.rule}
                      for code, c in funnel.criteria.items()],
            team_roles=[r.model_dump() for r in funnel.team.roles], crm_stages=funnel.crm_stages)

    @app.get("/v1/forecast", response_model=Forecast, responses=ERRORS, dependencies=v1,
             summary="Forecast from opportunities (amount x stage probability x group health) next to a lead count")
    async def get_forecast(
        period: Annotated[fc.Period, Query(description="by expected close date")] = "month",
        by: Annotated[fc.GroupBy, Query(description="member (the team's forecast role), solution, stage")] = "none",
    ) -> Forecast:
        return Forecast.model_validate(await forecast_view(reader, funnel, period, by))

    @app.get("/v1/analytics", response_model=Analytics, responses=ERRORS, dependencies=v1,
             summary="Time in stage, conversion, cycle, members at each transition, stalled share, won-deal insights")
    async def get_analytics(
        finance_days: Annotated[int | None, Query(ge=1, le=365, description="finance engaged within N days = early "
                                                                            "(default: funnel.yaml)")] = None,
    ) -> Analytics:
        return Analytics.model_validate(await analytics_view(reader, funnel, finance_days))

    async def _credited(opportunity_id: str, model: domain.Model) -> dict[str, Any] | None:
        found = await reader.opportunity(opportunity_id, 1)
        if found is None:
            return None
        touches = await reader.credit_touches([opportunity_id])
        won_at = found["stage_changed_at"] if found["outcome"] == "won" else None
        shares = domain.attribute([domain.TouchForCredit(t["touch_id"], t["occurred_at"]) for t in touches],
                                  model, until=won_at)
        amount = found["amount"] if found["outcome"] == "won" else None
        credited = [{**t, "credit": shares[t["touch_id"]],
                     "value": shares[t["touch_id"]] * amount if amount is not None else None}
                    for t in touches if t["touch_id"] in shares]
        return {"opportunity_id": opportunity_id, "outcome": found["outcome"], "won_at": won_at,
                "amount": found["amount"], "currency": found["currency"], "model": model, "touches": credited}

    @app.get("/v1/opportunities/{opportunity_id}/attribution", response_model=Attribution, responses=NOT_FOUND,
             dependencies=v1, summary="Multi-touch attribution: the credit of every member's touches")
    async def attribution(opportunity_id: Id, model: AttributionModel = "linear") -> Attribution:
        found = await _credited(opportunity_id, model)
        if found is None:
            raise ApiError(404, "not_found", f"no opportunity {opportunity_id!r}", field="path.opportunity_id")
        touches = found["touches"]
        return Attribution.model_validate({
            **found,
            "by_member": domain.credit_groups(touches, lambda t: t["person_id"]),
            "by_content": domain.credit_groups(touches, domain.content_key),
        })

    group_keys: dict[str, Callable[[dict[str, Any]], str | None]] = {
        "content": domain.content_key, "kind": lambda t: t["kind"], "source": lambda t: t["source"],
        "role": lambda t: t["role"], "department": lambda t: t["department"], "solution": lambda t: t["solution"],
    }

    @app.get("/v1/attribution", response_model=AttributionReport, responses=ERRORS, dependencies=v1,
             summary="What won deals were made of: credit of won opportunities' touches, grouped")
    async def attribution_report(
        model: AttributionModel = "linear",
        group_by: Annotated[str, Query(pattern="^(content|kind|source|role|department|solution)$")] = "content",
        department: Annotated[str | None, Query(min_length=1, max_length=50, pattern=NO_CONTROL,
                                                description="only touches of members of this department")] = None,
        role: Annotated[str | None, Query(min_length=1, max_length=50, pattern=NO_CONTROL,
                                          description="only touches of members in this role")] = None,
        since: Annotated[UtcTime | None, Query(description="won at or after")] = None,
        until: Annotated[UtcTime | None, Query(description="won before")] = None,
        limit: Annotated[int, Query(ge=1, le=500, description="the most recent won deals to include")] = 200,
    ) -> AttributionReport:
        _period(since, until)
        won = await reader.won(since, until, limit)
        credited: list[dict[str, Any]] = []
        for deal in won:
            found = await _credited(deal["opportunity_id"], model)
            if found is not None:
                credited += [{**t, "solution": deal["solution"]} for t in found["touches"]]
        selected = [t for t in credited if (department is None or t["department"] == department)
                    and (role is None or t["role"] == role)]
        return AttributionReport(model=model, group_by=group_by, since=since, until=until,
                                 won_opportunities=len(won),
                                 groups=domain.credit_groups(selected, group_keys[group_by]))

    correction_router, corrections = create_correction_router(settings, reader, publish_correction, clock,
                                                              catalog_solutions())
    app.include_router(correction_router)

    # The funnel pages write through the very functions of the write endpoints above.
    app.include_router(create_funnel_router(reader, settings, funnel, Writes(
        stage=report_stage, criterion=mark_criterion, team=assign_team, deal=set_deal)))
    # The pages for people (/web/, their static files and live signals); not part of the API spec.
    app.include_router(create_web_router(reader, settings, corrections=corrections, open_names=open_names))
    return app

