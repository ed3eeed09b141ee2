"""API docs served from the project's own assets: Swagger UI 5 from the fastapi-offline
package (no CDN, so /docs works on a closed network; Swagger UI 4 cannot read the OpenAPI
3.1 documents FastAPI writes), and the security schemes an OpenAPI document declares.

FastAPI's default /docs page loads Swagger UI from a CDN; its "self-hosting" recipe serves
the same files locally, which is what `mount_docs` does, with the page's start-up script as a
file rather than inline (a strict Content-Security-Policy allows it).
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from markupsafe import escape

ASSETS = "/docs/assets"
SWAGGER_UI = files("fastapi_offline") / "static"  # swagger-ui-bundle.js, swagger-ui.css, favicon.png
START = """"use strict";
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({url: root.dataset.openapiUrl, dom_id: "#swagger-ui", deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis], layout: "BaseLayout"});
});
"""


def mount_docs(app: FastAPI) -> None:
    """Serve Swagger UI at /docs for app.openapi_url, with every asset from this process.
    The app must be created with docs_url=None and redoc_url=None (FastAPI's CDN pages)."""
    app.mount(ASSETS, StaticFiles(directory=str(SWAGGER_UI)), name="docs-assets")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(app.title)} · API</title>
<link rel="stylesheet" href="{ASSETS}/swagger-ui.css"><link rel="icon" href="{ASSETS}/favicon.png"></head>
<body><div id="swagger-ui" data-openapi-url="{escape(app.openapi_url or '/openapi.json')}"></div>
<script src="{ASSETS}/swagger-ui-bundle.js"></script>
<script src="/docs/start.js"></script></body></html>"""

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/docs/start.js", include_in_schema=False)
    async def start() -> Response:
        return Response(START, media_type="text/javascript")


def declare_security(app: FastAPI, schemes: dict[str, dict[str, Any]],
                     per_path: dict[str, list[dict[str, list[str]]]]) -> None:
    """Add OpenAPI securitySchemes (components.securitySchemes, OpenAPI 3.1 shapes) and, for
    each path in `per_path`, the security requirements of its operations (alternatives: any
    one of the listed requirement objects suffices), over whatever app.openapi builds."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()
        schema.setdefault("components", {})["securitySchemes"] = schemes
        for path, requirements in per_path.items():
            for operation in schema.get("paths", {}).get(path, {}).values():
                operation["security"] = requirements
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
