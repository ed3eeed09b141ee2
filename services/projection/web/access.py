"""Who may see the pages: the read API's own tokens, carried by a cookie.

- Development (BG_ENV=development set explicitly, and the default tokens in use, so the read
  API itself is open to anyone who knows them): the pages are open too, with a banner saying
  so. Outside development mode the service does not even start with those tokens.
- Otherwise a valid read token is needed, from the `bg_web_token` cookie, an
  `Authorization: Bearer` header, or a one-time `?token=` in a link (for links in alerts),
  which is moved into the cookie and dropped from the address at once; the login form sets
  the same cookie. Without one, a page answers 401 with the form and no data.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from services.projection.settings import ProjectionSettings
from shared.settings import development_mode

COOKIE = "bg_web_token"
LANG_COOKIE = "bg_lang"
COOKIE_SECONDS = 7 * 24 * 3600


class Access:
    def __init__(self, settings: ProjectionSettings) -> None:
        self.settings = settings

    @property
    def open(self) -> bool:
        return development_mode() and self.settings.uses_dev_tokens()

    def valid(self, token: str | None) -> bool:
        return bool(token) and any(hmac.compare_digest(token.encode(), allowed.encode())
                                   for allowed in self.settings.read_tokens)

    def presented(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            return header[7:].strip()
        return request.cookies.get(COOKIE)

    def allowed(self, request: Request) -> bool:
        return self.open or self.valid(self.presented(request))

    def remember(self, response: Response, request: Request, token: str) -> None:
        response.set_cookie(COOKIE, token, max_age=COOKIE_SECONDS, path="/", httponly=True, samesite="lax",
                            secure=request.url.scheme == "https")

    def from_link(self, request: Request) -> Response | None:
        """A valid ?token= becomes the cookie, and the address loses it (history, Referer)."""
        token = request.query_params.get("token")
        if token is None or not self.valid(token):
            return None
        rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
        target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
        response = RedirectResponse(target, status_code=303)
        self.remember(response, request, token)
        return response


def safe_next(target: str | None) -> str:
    """Only a path of this site, so that the login form cannot redirect elsewhere."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/web/"
