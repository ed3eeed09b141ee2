"""Rendering and guarding the web pages: one implementation for the opportunity pages
(router.py) and the funnel pages (funnel_pages.py), so that the language switch, the no-store
header and the login gate cannot drift apart between them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.projection.settings import ProjectionSettings
from services.projection.web.access import COOKIE_SECONDS, LANG_COOKIE, Access
from services.projection.web.i18n import LANGS, Translator, pick

HERE = Path(__file__).parent


class Pages:
    def __init__(self, settings: ProjectionSettings, translator: Callable[[str], Translator] = Translator,
                 transient: tuple[str, ...] = (), **shared: Any) -> None:
        """`translator(lang)` makes a page's `t`; `transient`: query parameters the language links
        leave out besides `lang` (a form's one-time result); `shared`: variables every template
        of these pages gets."""
        self.access = Access(settings)
        self.env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(("html",)),
                               trim_blocks=True, lstrip_blocks=True)
        self.translator = translator
        self.dropped = ("lang", *transient)
        self.shared = shared

    def t(self, request: Request) -> Translator:
        """The request's language: ?lang=, else the cookie a language link set, else Russian."""
        return self.translator(pick(request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)))

    def lang_links(self, request: Request) -> dict[str, str]:
        query = [(k, v) for k, v in request.query_params.multi_items() if k not in self.dropped]
        return {code: request.url.path + "?" + urlencode([*query, ("lang", code)]) for code in LANGS}

    def page(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        t = self.t(request)
        html = self.env.get_template(template).render(
            t=t, lang=t.lang, dev=self.access.open, path=request.url.path, lang_links=self.lang_links(request),
            **self.shared, **context)
        response = HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})
        if "lang" in request.query_params:
            response.set_cookie(LANG_COOKIE, t.lang, max_age=COOKIE_SECONDS * 50, path="/", samesite="lax")
        return response

    def gate(self, request: Request) -> Response | None:
        """None when the request may see data; else the answer to give instead (a redirect that
        moves a link's token into the cookie, or the login page, 401, coming back here after)."""
        if (moved := self.access.from_link(request)) is not None:
            return moved
        if self.access.allowed(request):
            return None
        invalid = "token" in request.query_params or self.access.presented(request) is not None
        rest = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
        return self.page(request, "login.html", status=401, invalid=invalid,
                         next=request.url.path + (f"?{rest}" if rest else ""))
