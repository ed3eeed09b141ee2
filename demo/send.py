"""Sends requests to the ingest API as the platforms would: each with its own auth or signature."""

from __future__ import annotations

import time
from collections.abc import Iterable

import httpx
import orjson

from demo.payloads import Request
from services.ingest.adapters import zoom

DEV_KEYS = {"segment": "dev-segment-key", "sendgrid": "dev-sendgrid-key", "api": "dev-api-key"}


def headers_for(request: Request, body: bytes, keys: dict[str, str], zoom_secret: str) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    if request.platform == "zoom":
        ts = str(int(time.time()))
        headers.update({"x-zm-request-timestamp": ts, "x-zm-signature": zoom.signature(zoom_secret, ts, body)})
    else:
        headers["X-API-Key"] = keys[request.platform]
    return headers


def send_all(ingest_url: str, requests: Iterable[Request], *, keys: dict[str, str] | None = None,
             zoom_secret: str = "dev-zoom-secret-token", on_sent=None) -> dict[str, int]:
    """POST each request in order; raise on any non-2xx. Returns totals of the ingest answers."""
    totals = {"requests": 0, "accepted": 0, "duplicates": 0, "dead_lettered": 0, "ignored": 0}
    with httpx.Client(base_url=ingest_url, timeout=30) as client:
        for request in requests:
            body = orjson.dumps(request.body)
            r = client.post(request.path, content=body,
                            headers=headers_for(request, body, keys or DEV_KEYS, zoom_secret))
            if r.status_code >= 300:
                raise RuntimeError(f"{request.path} answered {r.status_code}: {r.text}")
            answer = r.json()
            totals["requests"] += 1
            for key in ("accepted", "duplicates", "dead_lettered"):
                totals[key] += answer[key]
            totals["ignored"] += len(answer["ignored"])
            if on_sent:
                on_sent(request)
    return totals
