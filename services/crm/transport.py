"""One CRM call with the vendor's rate limit and retries.

A leaky bucket before every request (aiolimiter), then retries with exponential backoff for
what a retry can fix: timeouts and network errors, 5xx, and the rate-limit answers (HTTP 429,
Bitrix24's QUERY_LIMIT_EXCEEDED, which it sends with 503); a `Retry-After` is honoured. Any
other 4xx is the request's fault: CrmRefused at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import httpx
from aiolimiter import AsyncLimiter

log = logging.getLogger("crm.transport")
MAX_BACKOFF_SECONDS = 30.0


class CrmUnavailable(Exception):
    """The CRM did not answer usefully within the attempts (network, 5xx, rate limit)."""


class CrmRefused(Exception):
    """The CRM refused the request (4xx other than a rate limit): retrying cannot help."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


def rate_limited(response: httpx.Response) -> bool:
    return response.status_code == 429 or (
        response.status_code == 503 and b"QUERY_LIMIT_EXCEEDED" in response.content[:2000])


def _retry_after(response: httpx.Response | None) -> float | None:
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return min(float(value), MAX_BACKOFF_SECONDS) if value else None
    except ValueError:
        return None


async def call(send: Callable[[], Awaitable[httpx.Response]], limiter: AsyncLimiter, attempts: int,
               base_seconds: float, what: str, idempotent: bool = True) -> httpx.Response:
    """The first useful answer of `send()` (2xx, or 4xx raised as CrmRefused), retrying up to
    `attempts` times. `what` names the call in logs (a method, never a URL with a secret).
    A call that is not idempotent (a create) is retried only after a rate-limit answer (the
    request was refused unexecuted); a timeout or 5xx may have executed it, so it raises
    CrmUnavailable at once and the caller searches before creating again.
    Raises CrmUnavailable after the last attempt."""
    last = ""
    for attempt in range(attempts):
        async with limiter:
            response = None
            try:
                response = await send()
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}"
        if response is not None:
            if rate_limited(response):
                last = f"rate limited ({response.status_code})"
            elif response.status_code >= 500:
                last = f"HTTP {response.status_code}"
            elif response.status_code >= 400:
                raise CrmRefused(response.status_code, response.text[:1000])
            else:
                return response
        if not idempotent and (response is None or not rate_limited(response)):
            raise CrmUnavailable(f"{what}: {last} (not retried: the CRM may have executed it)")
        if attempt + 1 < attempts:
            delay = _retry_after(response) or min(base_seconds * 2 ** attempt, MAX_BACKOFF_SECONDS)
            log.warning("CRM call retried", extra={"call": what, "reason": last, "attempt": attempt + 1,
                                                   "delay_seconds": delay})
            await asyncio.sleep(delay)
    raise CrmUnavailable(f"{what}: {last} after {attempts} attempts")
