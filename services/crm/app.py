"""The webhook receiver: POST /webhooks/bitrix24 (Bitrix24's outgoing webhooks) or POST
/webhooks/amocrm/{secret} (amoCRM's account webhooks), both x-www-form-urlencoded.

Authenticity is checked before anything is kept (401/403); a webhook naming no record is 422
with the field; a good one is written to Redis as pending and answered 200 at once (amoCRM
disables a webhook that answers slowly or with errors too often), and the drain loop fetches
the records.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.crm.adapters.base import CrmClient, WebhookRefused
from services.crm.domain.records import Notice

MAX_BODY = 1 << 20  # a CRM webhook is a few hundred bytes; a megabyte is generous

Receive = Callable[[list[Notice]], Awaitable[None]]


def create_app(crm: CrmClient, receive: Receive, wake: Callable[[], None]) -> FastAPI:
    app = FastAPI(title=f"CRM connector ({crm.name})", docs_url=None, redoc_url=None, openapi_url=None)

    async def handle(request: Request, secret: str | None) -> JSONResponse:
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"error": "too_large", "message": "the webhook body is over 1 MiB"}, 413)
        try:
            form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            return JSONResponse({"error": "validation_error", "message": "the body is not UTF-8",
                                 "errors": [{"field": "body", "message": "not UTF-8"}]}, 422)
        try:
            notices = crm.parse_webhook(form, secret)
        except WebhookRefused as exc:
            error = "validation_error" if exc.status == 422 else "unauthorized" if exc.status == 401 else "forbidden"
            return JSONResponse({"error": error, "message": exc.reason,
                                 "errors": [{"field": exc.field, "message": exc.reason}] if exc.field else []},
                                exc.status)
        await receive(notices)
        wake()
        return JSONResponse({"accepted": len(notices)})

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "crm": crm.name}

    if crm.name == "bitrix24":
        @app.post("/webhooks/bitrix24")
        async def bitrix24(request: Request) -> JSONResponse:
            return await handle(request, None)
    else:
        @app.post("/webhooks/amocrm/{secret}")
        async def amocrm(secret: str, request: Request) -> JSONResponse:
            return await handle(request, secret)

    return app
