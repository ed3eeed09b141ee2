"""The read API (FastAPI). Thin: authorise, validate, call the Reader, shape the answer.

Every error is JSON ({"error", "message", "errors": [{"field", "message"}]}); invalid input
is a 422 naming the field; the database being away is a 503, never a 500.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
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
from services.projection.consumer import Health, refused, sqlstate
from services.projection.models import (
    NO_CONTROL,
    Account,
    Attribution,
    AttributionReport,
    ChangePage,
    ErrorBody,
    Metrics,
    OpportunityDetail,
    OpportunityPage,
    OpportunitySummary,
    Readiness,
    StageAccepted,
    StageRequest,
    Status,
    Tier,
    UtcTime,
)
from services.projection.repository import OpportunityFilter, Reader
from services.projection.settings import ProjectionSettings
from services.projection.web import create_web_router
from services.projection.web.security import EdgeMiddleware
from shared.apidocs import mount_docs
from shared.schemas.crm import StageChanged

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


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": error, "message": message,
                     "errors": [{"field": field, "message": message}] if field else []}
        self.headers = headers


def _period(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and until <= since:
        raise ApiError(422, "validation_error", "until must be after since", field="query.until")


StagePublisher = Callable[[StageChanged], Awaitable[None]]


def stage_event(opportunity: dict[str, Any], body: StageRequest, now: datetime) -> StageChanged:
    """The event for a reported change. Its id is a digest of the change, so that a CRM retrying
    the same change (with its changed_at) writes a duplicate the projection ignores."""
    outcome = body.outcome or (body.stage.lower() if body.stage.lower() in ("won", "lost") else "open")
    changed_at = body.changed_at or now
    digest = hashlib.sha256("\x1f".join([
        opportunity["opportunity_id"], body.stage, outcome, repr(body.amount), body.currency or "",
        changed_at.isoformat(), body.source,
    ]).encode()).hexdigest()[:32]
    return StageChanged(
        event_id=f"stage:{digest}", opportunity_id=opportunity["opportunity_id"],
        account_id=opportunity["account_id"], solution=opportunity["solution"], stage=body.stage,
        outcome=outcome, amount=body.amount, currency=body.currency, changed_at=changed_at, source=body.source,
    )


def create_app(settings: ProjectionSettings, reader: Reader, publish_stage: StagePublisher,
               consumer: Health | None = None,
               lifespan_hooks: tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]] | None = None,
               ) -> FastAPI:
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
            "(BG_API_WRITE_TOKENS; development default `dev-crm-token`)."
        ),
        lifespan=lifespan,
        docs_url=None, redoc_url=None,  # /docs from the project's own assets (shared/apidocs.py)
    )
    mount_docs(app)
    app.mount("/metrics", make_asgi_app())
    # Security headers, same-origin form posts, NUL in paths and queries (web/security.py).
    app.add_middleware(EdgeMiddleware)

    def _token(credentials: HTTPAuthorizationCredentials | None, allowed: list[str]) -> str:
        if credentials is None:
            raise ApiError(401, "unauthorized", "a bearer token is required (Authorization: Bearer <token>)",
                           headers={"WWW-Authenticate": "Bearer"})
        if not any(hmac.compare_digest(credentials.credentials.encode(), a.encode()) for a in allowed):
            raise ApiError(401, "unauthorized", "the bearer token is not valid",
                           headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return credentials.credentials

    def read_access(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        _token(credentials, settings.read_tokens)

    def crm_access(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        token = _token(credentials, settings.read_tokens)
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
        return OpportunityDetail.model_validate({**found, "score_breakdown": found["breakdown"]})

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

    @app.post("/v1/opportunities/{opportunity_id}/stage", status_code=202, response_model=StageAccepted,
              responses={**NOT_FOUND, 403: {"model": ErrorBody}}, dependencies=[Depends(crm_access)],
              summary="A CRM reports a stage change (won and lost among them)")
    async def report_stage(opportunity_id: Id, body: StageRequest) -> StageAccepted:
        opportunity = await reader.opportunity_ident(opportunity_id)
        if opportunity is None:
            raise ApiError(404, "not_found", f"no opportunity {opportunity_id!r}", field="path.opportunity_id")
        event = stage_event(opportunity, body, datetime.now(UTC))
        try:
            await publish_stage(event)
        except (KafkaError, OSError) as exc:
            raise ApiError(503, "unavailable", f"Kafka did not acknowledge the change: {exc!r}",
                           headers={"Retry-After": "5"}) from None
        deadline = time.monotonic() + settings.stage_wait_seconds
        applied = await reader.stage_applied(event.event_id)
        while not applied and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            applied = await reader.stage_applied(event.event_id)
        summary = None
        if applied:
            found = await reader.opportunity(opportunity_id, 1)
            summary = OpportunitySummary.model_validate(found) if found else None
        return StageAccepted(event_id=event.event_id, applied=applied, opportunity=summary)

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

    # The pages for people (/web/, their static files and live signals); not part of the API spec.
    app.include_router(create_web_router(reader, settings))
    return app

