"""The check that a service's /docs works on a closed network: every script and stylesheet
the page names is served by the service itself."""

from __future__ import annotations

import re

import httpx


def assert_docs_self_hosted(base_url: str) -> None:
    page = httpx.get(f"{base_url}/docs", timeout=10)
    assert page.status_code == 200 and 'id="swagger-ui"' in page.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(a.startswith("/") and not a.startswith("//") for a in assets), assets
    for asset in assets:
        assert httpx.get(f"{base_url}{asset}", timeout=10).status_code == 200, asset
    assert "cdn" not in page.text.lower()
