"""The read API's and the pages' edge: security headers, same-origin form posts, and request
text PostgreSQL cannot take. One pure ASGI middleware (streaming answers such as the live
signals pass through untouched).

- Headers on every answer: Content-Security-Policy (only this site's scripts, styles, images
  and connections; no framing, no plugins, forms post here only), X-Frame-Options DENY for
  browsers without frame-ancestors, X-Content-Type-Options nosniff, Referrer-Policy
  same-origin (a page's address, which may name an opportunity, never leaves the site).
  /docs qualifies too: its start-up script is a file (shared/apidocs.py).
- Cross-site request forgery: a state-changing request (POST, PUT, PATCH, DELETE) to /web/
  from a browser must come from this site. Browsers say where a request comes from in
  Sec-Fetch-Site (Fetch Metadata) and Origin; a request that names another site is refused
  with 403 (OWASP CSRF Prevention Cheat Sheet, "Fetch Metadata headers" and "Verifying
  origin with standard headers"). The login form is the one such form; it sets the session
  cookie, so a forged login would sign a person in as someone else. Clients that are not
  browsers send neither header and carry no ambient cookie to abuse; the read API's own
  writes need a bearer token, which a browser never adds by itself.
- Text PostgreSQL refuses: a NUL in the path or in a query parameter (after percent-decoding)
  cannot be compared with any stored text (PostgreSQL raised "invalid byte sequence", shown
  raw on /web/opportunities/%00). Such a path is 404; such a parameter 422 naming it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from urllib.parse import parse_qsl, urlsplit

from starlette.datastructures import Headers
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SAME_SITE = frozenset({"same-origin", "none"})


SECURITY_HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-frame-options", b"DENY"),
                    (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin")]


def cross_site(method: str, path: str, headers: Headers) -> str | None:
    """Why a state-changing browser request to the pages comes from another site, or None."""
    if method not in UNSAFE_METHODS or not path.startswith("/web/"):
        return None
    site = headers.get("sec-fetch-site")
    if site is not None:
        return None if site in SAME_SITE else f"Sec-Fetch-Site: {site}"
    host = headers.get("host", "")
    for name in ("origin", "referer"):
        if (value := headers.get(name)) is not None:
            return None if urlsplit(value).netloc == host and host else f"{name.title()}: {value[:200]}"
    return None


def nul_in(path: str, query: bytes) -> tuple[str, str] | None:
    """(where, name) of the first path or query text holding a NUL, else None."""
    if "\x00" in path:
        return "path", path.replace("\x00", "\\0")[:200]
    for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True, errors="replace"):
        if "\x00" in key or "\x00" in value:
            return "query", key.replace("\x00", "\\0")[:100]
    return None


def _json(status: int, error: str, message: str, field: str | None = None) -> tuple[int, bytes]:
    errors = [{"field": field, "message": message}] if field else []
    return status, json.dumps({"error": error, "message": message, "errors": errors}, ensure_ascii=False).encode()


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute] = ()) -> None:
        self.app = app
        self.routes = routes  # to name the path parameter a NUL character is in

    def _path_parameter(self, scope: Scope) -> str | None:
        """The name of the route parameter that holds a NUL character, if a route matches."""
        for route in self.routes:
            match, child = route.matches(scope)
            if match == Match.FULL:
                for name, value in child.get("path_params", {}).items():
                    if isinstance(value, str) and "\x00" in value:
                        return name
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        extra = SECURITY_HEADERS
        refusal = None
        if (found := nul_in(path, scope.get("query_string", b""))) is not None:
            where, name = found
            # The API names the parameter (4xx naming the field); a page for it does not exist.
            if where == "path" and path.startswith("/v1/") and (param := self._path_parameter(scope)) is not None:
                refusal = _json(422, "validation_error", f"path.{param}: a NUL character is not text",
                                field=f"path.{param}")
            elif where == "path":
                refusal = _json(404, "not_found", "Не найдено / not found: the path holds a NUL character")
            else:
                refusal = _json(422, "validation_error", f"query.{name}: a NUL character is not text",
                                field=f"query.{name}")
        elif (why := cross_site(scope["method"], path, Headers(scope=scope))) is not None:
            refusal = _json(403, "forbidden", "Запрос с другого сайта отклонён / a request from another "
                            f"site is refused ({why})")
        if refusal is not None:
            status, body = refusal
            await send({"type": "http.response.start", "status": status, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"), *extra]})
            await send({"type": "http.response.body", "body": body})
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in extra if h[0] not in present)]
            await send(message)

        await self.app(scope, receive, with_headers)
