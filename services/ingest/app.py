"""The ingest HTTP API (FastAPI). Thin: auth, size limit, parse with an adapter, dedupe, produce."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from prometheus_client import Counter, Histogram, make_asgi_app
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.requests import ClientDisconnect

from services.ingest import auth, limits, sources_ru, timing
from services.ingest import openapi as docs
from services.ingest.adapters import batch, canonical, segment, sendgrid, zoom
from services.ingest.adapters.results import Ignored, MapResult, PayloadError, Rejected, Unmapped
from services.ingest.automation import flag_bot
from services.ingest.dedupe import Deduper
from services.ingest.errors import ApiError, field_errors, invalid
from services.ingest.memory import Memory
from services.ingest.privacy import Guard, sendgrid_opt_outs
from services.ingest.publisher import Overdue, Publisher
from services.ingest.settings import IngestSettings
from shared.schemas.touch import IdentityEvent, PersonEvent, TouchEvent

log = logging.getLogger("ingest")

EVENTS = Counter("bg_ingest_events_total", "Items received, by source and outcome", ["source", "outcome"])
LATENCY = Histogram("bg_ingest_request_seconds", "Request handling time until Kafka acknowledged", ["source"])


class FieldError(BaseModel):
    field: str
    message: str


class Failed(BaseModel):
    index: int | None = Field(description="the item's position in the request's batch")
    event_id: str | None = Field(description="the item's event id, when it had one")
    reason: str = Field(description="invalid_item (does not fit the format), or why it could not be mapped")
    errors: list[FieldError]


class Accepted(BaseModel):
    accepted: int = Field(description="new events written to Kafka")
    duplicates: int = Field(description="events seen before (acknowledged, not written again)")
    dead_lettered: int = Field(description="items written to the dead-letter topic (see failed)")
    ignored: list[str] = Field(description="items that are not touches, with the reason")
    event_ids: list[str]
    failed: list[Failed] = Field(default_factory=list,
                                 description="every item that did not land as an event: which and why")


class ErrorBody(BaseModel):
    error: str
    message: str
    errors: list[dict[str, str]] = []


# Request bodies, for the OpenAPI spec (the routes parse the raw body themselves, to control
# the size limit and the error format).
BODY_TYPES: dict[str, Any] = {
    "/v1/events": PersonEvent | list[PersonEvent] | canonical.Batch,
    "/v1/sources/segment": segment.SegmentCall | segment.SegmentBatch,
    "/v1/sources/sendgrid": Annotated[list[sendgrid.SendGridEvent], Field(min_length=1)],
    "/v1/sources/zoom": zoom.ZoomWebhook,
}
ERRORS = {status: {"model": ErrorBody} for status in (401, 403, 413, 422, 503)}


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "payload_too_large", f"the body is over the limit of {limit} bytes")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, "payload_too_large", f"the body is over the limit of {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        # The client went away, or the server closed a body that stalled (shared/http.py).
        raise ApiError(408, "request_timeout", "the body did not arrive completely") from None
    return b"".join(chunks)


def parse_json(body: bytes, name_surrogates: bool = False) -> Any:
    """The body as JSON (orjson), else 422 naming (body).

    orjson refuses a lone surrogate escape (\\ud800), which JSON's grammar allows: with
    name_surrogates the standard library parses such a body instead, so that the schemas'
    text check refuses it naming the field (the canonical API, where every string goes
    through shared/schemas/text.py)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if name_surrogates and "surrogate" in str(exc):
            try:
                return json.loads(body)
            except (ValueError, RecursionError):
                pass
        raise invalid([{"field": "(body)", "message": f"invalid JSON: {exc}"}]) from None


def run_adapter(parse: Callable[[], list[MapResult]]) -> list[MapResult]:
    try:
        return parse()
    except ValidationError as exc:
        raise invalid(field_errors(exc)) from None
    except PayloadError as exc:
        raise invalid([{"field": exc.field, "message": exc.message}]) from None


def _dead_key(failed: Unmapped | Rejected) -> str | None:
    """The dedupe key of a failed item's dead letter: its own, not the event id's, so that a
    retry does not write the letter twice while a corrected resend under the same id lands."""
    return f"failed:{failed.dedupe_id}" if failed.dedupe_id is not None else None


def create_app(settings: IngestSettings, publisher: Publisher, deduper: Deduper, redis: Redis,
               memory: Memory, guard: Guard) -> FastAPI:
    future_tolerance = timedelta(seconds=settings.future_tolerance_seconds)
    scanner_window = timedelta(seconds=settings.link_scanner_seconds)

    async def remembered(step: Callable[[], Any]) -> Any:
        try:
            return await step()
        except RedisError as exc:
            raise ApiError(503, "unavailable", f"Redis is unavailable: {exc}", headers={"Retry-After": "5"}) from None

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        await publisher.start()
        if in_use := settings.dev_secrets_in_use():
            # Only reachable with BG_ENV=development (main.build_app refuses otherwise).
            log.warning(f"development mode: {', '.join(in_use)} hold development defaults")
        try:
            yield
        finally:
            await publisher.stop()
            await redis.aclose()
            await guard.vault.aclose()

    app = FastAPI(
        title="Buying-group engine: ingest",
        version="1",
        description="Receives marketing touches in the platforms' own formats and writes canonical "
                    "events to Kafka. 202 means Kafka acknowledged the write (acks=all).",
        lifespan=lifespan,
        docs_url=None, redoc_url=None,  # /docs from the project's own assets: services/ingest/openapi.py
    )
    app.mount("/metrics", make_asgi_app())

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
        return JSONResponse(invalid(errors).body(), status_code=422)

    async def accept(source: str, results: list[MapResult], reply: batch.Reply) -> JSONResponse:
        """Write the good items, dead-letter the failed ones, answer per batch.Reply."""
        now = datetime.now(UTC)
        results = batch.refuse_oversized([
            timing.bound_future(flag_bot(r), now, future_tolerance, settings.future_policy == "refuse")
            if isinstance(r, TouchEvent | IdentityEvent) else r for r in results])
        if reply.refuse_when_all_rejected and batch.all_rejected(results):
            raise batch.refusal(results)
        events, failed, ignored, repeated = [], [], [], 0
        seen: set[str] = set()
        for r in results:
            if isinstance(r, Ignored):
                ignored.append(r.reason)
                continue
            key = _dead_key(r) if isinstance(r, Unmapped | Rejected) else r.event_id
            if key is not None and key in seen:
                repeated += 1
                continue
            if key is not None:
                seen.add(key)
            (failed if isinstance(r, Unmapped | Rejected) else events).append(r)
        try:
            claims = await deduper.claim(list(seen))
        except RedisError as exc:
            raise ApiError(503, "unavailable", f"Redis is unavailable: {exc}", headers={"Retry-After": "5"}) from None
        if claims.in_flight:
            await settle_claims(deduper.release, claims.new)
            raise ApiError(503, "in_flight", f"{len(claims.in_flight)} of these events are being written "
                           "by another request; retry shortly", headers={"Retry-After": "1"})
        new = set(claims.new)
        fresh = [e for e in events if e.event_id in new]
        duplicates = len(events) - len(fresh) + repeated
        try:
            # Pseudonyms and sealed values before anything is written (docs/privacy.md); the
            # touches of a suppressed person end here, their claims confirmed as handled.
            fresh, suppressed = await guard.protect(source, fresh)
            # A dead letter quotes the item: its people's values sealed, so an erase reaches them
            # (pruned first: sealing walks the item, which may be nested up to orjson's limit).
            lettered = [u for u in failed if _dead_key(u) is None or _dead_key(u) in new]
            sealed = await guard.seal_dead_letters([(u.reason, u.detail, limits.pruned(u.item), u.dedupe_id)
                                                    for u in lettered])
        except RedisError as exc:
            await settle_claims(deduper.release, claims.new)
            raise ApiError(503, "unavailable", f"Redis is unavailable: {exc}", headers={"Retry-After": "5"}) from None
        ignored += ["suppressed: the person opted out / человек отказался от отслеживания"] * len(suppressed)
        dead = [(reason, detail, limits.quoted(item), key) for reason, detail, item, key in sealed]
        outcomes = await publisher.publish(fresh, dead)
        ids = [e.event_id for e in fresh] + [_dead_key(u) for u in lettered]
        unwritten = {i for i, o in zip(ids, outcomes, strict=True) if o is not None}
        # What was written is confirmed even when something else was not: the platform's retry
        # then gets those as duplicates, and only the rest is written again.
        await settle_claims(deduper.confirm, [i for i in claims.new if i not in unwritten])
        if errors := [o for o in outcomes if o is not None]:
            # An overdue write may still land: its claim stays pending (a retry meanwhile is
            # answered in_flight) until its fate is known, or the claim's TTL ends.
            overdue = {i: o for i, o in zip(ids, outcomes, strict=True) if isinstance(o, Overdue)}
            for event_id, late in overdue.items():
                late.settle(lambda written, event_id=event_id: settle_later(event_id, written))
            await settle_claims(deduper.release, [i for i in claims.new if i in unwritten and i not in overdue])
            raise ApiError(503, "unavailable", f"Kafka did not acknowledge {len(errors)} of {len(outcomes)} "
                           f"writes ({errors[0]!r}); the others were written and a retry counts them as "
                           "duplicates", headers={"Retry-After": "5"})
        duplicates += len(failed) - len(lettered)
        for outcome, n in (("accepted", len(fresh)), ("duplicate", duplicates), ("dead_lettered", len(dead)),
                           ("suppressed", len(suppressed)), ("ignored", len(ignored) - len(suppressed))):
            if n:
                EVENTS.labels(source, outcome).inc(n)
        body = Accepted(accepted=len(fresh), duplicates=duplicates, dead_lettered=len(dead),
                        ignored=ignored, event_ids=[e.event_id for e in fresh],
                        failed=[batch.failure_entry(u) for u in failed])
        return JSONResponse(body.model_dump(), status_code=reply.success)

    async def settle_claims(step: Callable[[list[str]], Any], ids: list[str]) -> None:
        """Confirms or releases claims taken by this request. The answer never depends on it: it
        follows Kafka (a 5xx for events already written would make the platform send them again)
        or is a 503 already, so a Redis failure here is logged, not raised (a 500), and the claims
        end with their TTL (dedupe.CLAIM_TTL_SECONDS)."""
        try:
            await step(ids)
        except RedisError as exc:
            log.warning(f"Redis failed settling {len(ids)} claims; they end with their TTL: {exc!r}")

    settling: set[asyncio.Task] = set()

    def settle_later(event_id: str, written: bool) -> None:
        task = asyncio.create_task(settle_claims(deduper.confirm if written else deduper.release, [event_id]))
        settling.add(task)
        task.add_done_callback(settling.discard)

    async def timed(source: str, handle: Callable[[], Any]) -> JSONResponse:
        started = time.perf_counter()
        try:
            return await handle()
        finally:
            LATENCY.labels(source).observe(time.perf_counter() - started)

    @app.post("/v1/events", status_code=202, response_model=Accepted, responses=ERRORS,
              summary="One canonical event, a list, or {\"events\": [...]} (up to the batch limit)")
    async def post_events(request: Request) -> JSONResponse:
        auth.require_key("api", settings.api_keys, request.headers)
        body = parse_json(await read_body(request, settings.max_body_bytes), name_surrogates=True)
        received = datetime.now(UTC)
        return await timed("api", lambda: accept(
            "api", run_adapter(lambda: canonical.parse(body, settings.max_batch, received)), batch.CANONICAL))

    @app.post("/v1/sources/segment", status_code=202, response_model=Accepted, responses=ERRORS,
              summary="Segment-spec page, screen, track, identify and group calls, single or batch")
    async def post_segment(request: Request) -> JSONResponse:
        # Authenticated before the body is read, where the platform allows: a key in the
        # headers; a signature needs the body, but its header must be there first.
        if settings.segment_shared_secret:
            signature = auth.require_header("X-Signature", request.headers.get("x-signature"))
            raw = await read_body(request, settings.max_body_bytes)
            auth.require_hmac("X-Signature", signature, auth.hmac_sha1_hex(settings.segment_shared_secret, raw))
        else:
            auth.require_key("segment", settings.api_keys, request.headers)
            raw = await read_body(request, settings.max_body_bytes)
        body = parse_json(raw)
        received = datetime.now(UTC)
        return await timed("segment", lambda: accept(
            "segment", run_adapter(lambda: segment.parse(body, received, settings.max_batch)), batch.SEGMENT))

    @app.post("/v1/sources/sendgrid", status_code=202, response_model=Accepted, responses=ERRORS,
              summary="SendGrid Event Webhook: an array of events (open, click, delivered, ...)")
    async def post_sendgrid(request: Request) -> JSONResponse:
        if settings.sendgrid_public_key:
            # The signed timestamp's freshness and the signature header come before the body.
            signature = auth.require_header("X-Twilio-Email-Event-Webhook-Signature",
                                            request.headers.get("x-twilio-email-event-webhook-signature"))
            timestamp = auth.require_fresh("X-Twilio-Email-Event-Webhook-Timestamp",
                                           request.headers.get("x-twilio-email-event-webhook-timestamp"),
                                           settings.signature_max_age_seconds)
            raw = await read_body(request, settings.max_body_bytes)
            auth.require_sendgrid_signature(settings.sendgrid_public_key, signature, timestamp, raw)
        else:
            auth.require_key("sendgrid", settings.api_keys, request.headers)
            raw = await read_body(request, settings.max_body_bytes)
        body = parse_json(raw)
        # An unsubscribe or a spam report is the person's opt-out: suppressed from now on.
        await remembered(lambda: guard.opt_outs("sendgrid", sendgrid_opt_outs(
            body, guard.settings.sendgrid_suppress_events)))
        clicked = [i["sg_message_id"] for i in (body if isinstance(body, list) else [body])
                   if isinstance(i, dict) and i.get("event") == "click" and isinstance(i.get("sg_message_id"), str)]
        delivered = await remembered(lambda: memory.get("delivered", clicked))
        await remembered(lambda: memory.put("delivered", sendgrid.deliveries(body)))
        return await timed("sendgrid", lambda: accept("sendgrid", run_adapter(
            lambda: sendgrid.parse(body, settings.max_batch, delivered, scanner_window)), batch.SENDGRID))

    @app.post("/v1/sources/zoom", status_code=200, response_model=Accepted, responses=ERRORS,
              summary="Zoom webinar webhooks, signed with x-zm-signature; answers endpoint.url_validation")
    async def post_zoom(request: Request) -> JSONResponse:
        timestamp = auth.require_fresh("x-zm-request-timestamp", request.headers.get("x-zm-request-timestamp"),
                                       settings.signature_max_age_seconds)
        signature = auth.require_header("x-zm-signature", request.headers.get("x-zm-signature"))
        raw = await read_body(request, settings.max_body_bytes)
        auth.require_hmac("x-zm-signature", signature, zoom.signature(settings.zoom_secret_token, timestamp, raw))
        body = parse_json(raw)
        if isinstance(body, dict) and body.get("event") == zoom.URL_VALIDATION:
            token = body.get("payload", {}).get("plainToken") if isinstance(body.get("payload"), dict) else None
            if not isinstance(token, str) or not token:
                raise invalid([{"field": "payload.plainToken", "message": "Field required"}])
            return JSONResponse(zoom.url_validation_response(settings.zoom_secret_token, token))
        registrant_keys, session_keys = zoom.lookups(body)
        known = zoom.Known(await remembered(lambda: memory.get("zoom-registrant", registrant_keys)),
                           await remembered(lambda: memory.get("zoom-session", session_keys)))
        registrants, sessions = zoom.remember(body, known)
        await remembered(lambda: memory.put("zoom-registrant", registrants))
        await remembered(lambda: memory.put("zoom-session", sessions))
        return await timed("zoom", lambda: accept("zoom", run_adapter(lambda: zoom.parse(body, known)), batch.ZOOM))

    sources_ru.register(app, settings, accept=accept, timed=timed, read_body=read_body, parse_json=parse_json,
                        run_adapter=run_adapter, responses=ERRORS, guard=guard)

    @app.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Kafka and Redis answer", responses={503: {"model": ErrorBody}})
    async def readyz() -> JSONResponse:
        checks = {"kafka": await publisher.ready()}
        try:
            # The vault may be a Redis of its own (BG_VAULT_REDIS_URL): ingest needs both.
            checks["redis"] = all([await asyncio.wait_for(client.ping(), timeout=2)
                                   for client in (redis, guard.vault.redis)])
        except (TimeoutError, RedisError, OSError):
            checks["redis"] = False
        return JSONResponse({"status": "ready" if all(checks.values()) else "not_ready", "checks": checks},
                            status_code=200 if all(checks.values()) else 503)

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for path, body_type in BODY_TYPES.items():
            body_schema = TypeAdapter(body_type).json_schema(ref_template="#/components/schemas/{model}")
            components.update(body_schema.pop("$defs", {}))
            schema["paths"][path]["post"]["requestBody"] = {
                "required": True, "content": {"application/json": {"schema": body_schema}}}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    docs.document(app)
    return app
