"""Sends requests to the ingest API as the platforms would: each with its own auth or signature."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from urllib.parse import urlencode

import httpx
import orjson

from demo.payloads import Request
from services.ingest.adapters import zoom

DEV_KEYS = {"segment": "dev-segment-key", "sendgrid": "dev-sendgrid-key", "api": "dev-api-key",
            "tilda": "dev-tilda-key", "mtslink": "dev-mtslink-key", "calltouch": "dev-calltouch-key",
            "roistat": "dev-roistat-key", "unisender": "dev-unisender-api-key"}
# Platforms that put their secret in the webhook URL, and those that post HTML-form bodies.
URL_KEY = {"tilda", "mtslink", "calltouch", "roistat"}
FORM_BODY = {"tilda", "calltouch"}


def unisender_signed(body: dict, api_key: str) -> bytes:
    """Unisender Go's `auth`: MD5 of the body serialised with the API key in it, then put in its place."""
    with_key = orjson.dumps({**body, "auth": api_key})
    digest = hashlib.md5(with_key).hexdigest()
    return with_key.replace(orjson.dumps(api_key), orjson.dumps(digest), 1)


def encode(request: Request, keys: dict[str, str]) -> tuple[str, bytes, str]:
    """(path with any URL key, body bytes, content type) as the platform sends them."""
    path = request.path
    if request.platform in URL_KEY:
        path += "?" + urlencode({"key": keys[request.platform]})
    if request.platform in FORM_BODY:
        return path, urlencode(request.body).encode(), "application/x-www-form-urlencoded"
    if request.platform == "unisender":
        return path, unisender_signed(request.body, keys["unisender"]), "application/json"
    return path, orjson.dumps(request.body), "application/json"


def headers_for(request: Request, body: bytes, keys: dict[str, str], zoom_secret: str,
                content_type: str = "application/json") -> dict[str, str]:
    headers = {"content-type": content_type}
    if request.platform == "zoom":
        ts = str(int(time.time()))
        headers.update({"x-zm-request-timestamp": ts, "x-zm-signature": zoom.signature(zoom_secret, ts, body)})
    elif request.platform in ("segment", "sendgrid", "api"):
        headers["X-API-Key"] = keys[request.platform]
    return headers


def send_all(ingest_url: str, requests: Iterable[Request], *, keys: dict[str, str] | None = None,
             zoom_secret: str = "dev-zoom-secret-token", on_sent=None) -> dict[str, int]:
    """POST each request in order; raise on any non-2xx. Returns totals of the ingest answers."""
    totals = {"requests": 0, "accepted": 0, "duplicates": 0, "dead_lettered": 0, "ignored": 0}
    with httpx.Client(base_url=ingest_url, timeout=30) as client:
        for request in requests:
            all_keys = {**DEV_KEYS, **(keys or {})}
            path, body, content_type = encode(request, all_keys)
            r = client.post(path, content=body, headers=headers_for(request, body, all_keys, zoom_secret, content_type))
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
