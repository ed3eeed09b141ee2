"""Routes of the Russian B2B stack: Tilda, MTS Link, Unisender Go, Calltouch, Roistat.

Each platform authenticates its own way (a key in the URL where the platform cannot sign,
HMAC where it can, Unisender Go's MD5 `auth`, Calltouch's sender subnet), then its adapter
maps the payload and the shared `accept` of app.py dedupes, produces and dead-letters.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from redis.exceptions import RedisError

from services.ingest import auth
from services.ingest.adapters import batch, calltouch, mtslink, roistat, tilda, unisender
from services.ingest.adapters.forms import form_fields
from services.ingest.adapters.results import MapResult, PayloadError
from services.ingest.errors import ApiError, invalid
from services.ingest.privacy import Guard, unisender_opt_outs
from services.ingest.settings import IngestSettings

Accept = Callable[[str, list[MapResult], batch.Reply], Awaitable[JSONResponse]]
Timed = Callable[[str, Callable[[], Awaitable[JSONResponse]]], Awaitable[JSONResponse]]
ReadBody = Callable[[Request, int], Awaitable[bytes]]
ParseJson = Callable[[bytes], object]
RunAdapter = Callable[[Callable[[], list[MapResult]]], list[MapResult]]


# How each platform wants its answer (batch.Reply). MTS Link and Unisender Go retry anything
# but 200 (Unisender Go for 24 hours): their item-level failures are dead-lettered and answered
# 200. Tilda, Calltouch and Roistat post one item per request: a request that does not fit the
# format is refused with 422 naming the field (Tilda retries twice, then gives up).
MTSLINK = batch.Reply(200, refuse_when_all_rejected=False)
UNISENDER = batch.Reply(200, refuse_when_all_rejected=False)
SINGLE = batch.Reply(200, refuse_when_all_rejected=True)


def require_url_key(source: str, settings: IngestSettings, request: Request) -> None:
    """The platform's secret in the webhook URL (?key=...), or any header form auth accepts."""
    if key := request.query_params.get("key"):
        if not any(auth.same(key, k) for k in settings.api_keys.get(source, [])):
            raise ApiError(403, "forbidden", f"key: not valid for source '{source}'")
        return
    auth.require_key(source, settings.api_keys, request.headers)


def require_subnet(request: Request, subnets: list[str]) -> None:
    """Calltouch signs nothing; it posts from a documented subnet (INGEST_CALLTOUCH_SUBNETS)."""
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ApiError(403, "forbidden", f"sender address '{host}' is not a Calltouch address") from None
    if not any(address in ipaddress.ip_network(net, strict=False) for net in subnets):
        raise ApiError(403, "forbidden", f"sender address {host} is outside INGEST_CALLTOUCH_SUBNETS")


def fields_of(raw: bytes, request: Request) -> dict[str, str]:
    try:
        return form_fields(raw, request.headers.get("content-type", ""))
    except PayloadError as exc:
        raise invalid([{"field": exc.field, "message": exc.message}]) from None


def register(app: FastAPI, settings: IngestSettings, *, accept: Accept, timed: Timed, read_body: ReadBody,
             parse_json: ParseJson, run_adapter: RunAdapter, responses: dict, guard: Guard) -> None:
    limit = settings.max_body_bytes
    roistat_zone = ZoneInfo(settings.roistat_timezone)

    @app.post("/v1/sources/tilda", status_code=200, responses=responses,
              summary="Tilda form webhook (URL-encoded form fields, tranid, formid; key in the URL)")
    async def post_tilda(request: Request):
        require_url_key("tilda", settings, request)
        raw = await read_body(request, limit)
        fields = fields_of(raw, request)
        if tilda.is_test(fields):
            return PlainTextResponse("ok")
        received = datetime.now(UTC)
        return await timed("tilda", lambda: accept("tilda", run_adapter(lambda: tilda.parse(fields, received)), SINGLE))

    @app.post("/v1/sources/mtslink", status_code=200, responses=responses,
              summary="MTS Link webhook {event, occurredAt, data}; X-Webhook-Signature when a secret is set")
    async def post_mtslink(request: Request):
        # Keys and signature headers are checked before the body is read.
        if settings.mtslink_webhook_secret:
            signature = auth.require_header("X-Webhook-Signature", request.headers.get("x-webhook-signature"))
            raw = await read_body(request, limit)
            auth.require_hmac("X-Webhook-Signature", signature, mtslink.signature(settings.mtslink_webhook_secret, raw))
        else:
            require_url_key("mtslink", settings, request)
            raw = await read_body(request, limit)
        body = parse_json(raw)
        return await timed("mtslink", lambda: accept("mtslink", run_adapter(lambda: mtslink.parse(body)), MTSLINK))

    @app.post("/v1/sources/unisender", status_code=200, responses=responses,
              summary="Unisender Go webhook {auth, events_by_user}; auth = MD5 of the body keyed by the API key")
    async def post_unisender(request: Request):
        raw = await read_body(request, limit)
        body = parse_json(raw)
        presented = body.get("auth") if isinstance(body, dict) else None
        if not isinstance(presented, str) or not presented:
            raise ApiError(401, "unauthorized", "auth: Unisender Go's MD5 auth field is required")
        if not unisender.verify_auth(raw, presented, settings.unisender_api_keys):
            raise ApiError(403, "forbidden", "auth: does not match the body and the API key")
        # An unsubscribe or a spam complaint is the person's opt-out: suppressed from then on.
        try:
            await guard.opt_outs("unisender", unisender_opt_outs(body, guard.settings.unisender_suppress_statuses))
        except RedisError as exc:
            raise ApiError(503, "unavailable", f"Redis is unavailable: {exc}", headers={"Retry-After": "5"}) from None
        return await timed("unisender", lambda: accept(
            "unisender", run_adapter(lambda: unisender.parse(body, settings.max_batch)), UNISENDER))

    @app.post("/v1/sources/calltouch", status_code=200, responses=responses,
              summary="Calltouch call webhook (URL-encoded); from Calltouch's subnet, key in the URL")
    async def post_calltouch(request: Request):
        require_subnet(request, settings.calltouch_subnets)
        require_url_key("calltouch", settings, request)
        raw = await read_body(request, limit)
        fields = fields_of(raw, request)
        received = datetime.now(UTC)
        return await timed("calltouch", lambda: accept(
            "calltouch", run_adapter(lambda: calltouch.parse(fields, received)), SINGLE))

    @app.post("/v1/sources/roistat", status_code=200, responses=responses,
              summary="Roistat call webhook (JSON); key in the URL")
    async def post_roistat(request: Request):
        require_url_key("roistat", settings, request)
        body = parse_json(await read_body(request, limit))
        received = datetime.now(UTC)
        return await timed("roistat", lambda: accept(
            "roistat", run_adapter(lambda: roistat.parse(body, roistat_zone, received)), SINGLE))
