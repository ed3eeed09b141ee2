"""The read API, as the connector uses it: the change feed, one opportunity, and the stage
endpoint (services/projection/README.md). Bearer token from settings, never logged."""

from __future__ import annotations

from typing import Any

import httpx


class ReadApiError(Exception):
    """The read API answered with an error a retry will not fix (4xx)."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


class ReadApi:
    def __init__(self, base_url: str, token: str, timeout: float = 30.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport,
                                      headers={"Authorization": f"Bearer {token}"})

    async def close(self) -> None:
        await self.http.aclose()

    async def _json(self, response: httpx.Response) -> Any:
        if 400 <= response.status_code < 500:
            raise ReadApiError(response.status_code, response.text[:1000])
        response.raise_for_status()  # 5xx: httpx.HTTPStatusError, retried by the loop
        return response.json()

    async def changes(self, cursor: int, limit: int = 100) -> dict[str, Any]:
        """{"items": [opportunity summary, ...], "next_cursor": int, "has_more": bool}"""
        return await self._json(await self.http.get("/v1/changes", params={"cursor": cursor, "limit": limit}))

    async def opportunity(self, opportunity_id: str) -> dict[str, Any] | None:
        """The opportunity's detail (members, roles, score), or None when the projection does not know it."""
        response = await self.http.get(f"/v1/opportunities/{opportunity_id}")
        if response.status_code == 404:
            return None
        return await self._json(response)

    async def report_stage(self, opportunity_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST /v1/opportunities/{id}/stage -> the API's answer (event_id, applied, ...).
        Raises ReadApiError for 4xx (404 unknown opportunity, 422 a stage the funnel refuses)."""
        return await self._json(await self.http.post(f"/v1/opportunities/{opportunity_id}/stage", json=body))
