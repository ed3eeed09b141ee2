"""The HTTP server every API of the project runs: uvicorn, with limits on slow and idle clients.

uvicorn (0.54, h11) has a keep-alive timeout between requests but none while a request's
head or body is arriving: a client that sends half its headers, or declares a body and then
stalls, holds a connection and a task for ever (220 such connections were all still open
after 30 s, issue 19). GuardedH11Protocol closes a connection whose request head has not
arrived `header_timeout` seconds after the connection opened (or the previous response
ended), and one whose declared body has not arrived `body_timeout` seconds after that; the
client gets 408 when nothing of the response was sent yet. `max_connections` is uvicorn's
limit_concurrency: beyond it, new requests get 503 at once.

Settings (environment): BG_HTTP_HEADER_TIMEOUT_SECONDS (10), BG_HTTP_BODY_TIMEOUT_SECONDS
(60: 5 MiB at about 0.7 Mbit/s), BG_HTTP_KEEP_ALIVE_SECONDS (5), BG_HTTP_MAX_CONNECTIONS (1000).
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
import uvicorn
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from uvicorn.protocols.http.h11_impl import H11Protocol

_TIMEOUT_BODY = b'{"error": "request_timeout", "message": "the request did not arrive in time", "errors": []}'
_TIMEOUT_RESPONSE = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
                     b"content-length: %d\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY))


class HttpLimits(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BG_HTTP_", extra="ignore")

    header_timeout_seconds: float = Field(10.0, gt=0, le=300)
    body_timeout_seconds: float = Field(60.0, gt=0, le=3600)
    keep_alive_seconds: int = Field(5, ge=1, le=300)
    max_connections: int = Field(1000, ge=1)


def guarded_protocol(limits: HttpLimits) -> type[H11Protocol]:
    """uvicorn's h11 protocol with the head and body deadlines of `limits` (seconds)."""

    class GuardedH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_head()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm_head()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _arm_head(self) -> None:
            self._disarm()
            if not self.transport.is_closing():
                self._deadline = self.loop.call_later(limits.header_timeout_seconds, self._head_due, self.cycle)

        def _head_due(self, cycle_before: Any) -> None:
            self._deadline = None
            if self.cycle is cycle_before:  # no new request head since the deadline was set
                self._give_up()
            elif self.conn.their_state is h11.SEND_BODY:
                self._deadline = self.loop.call_later(limits.body_timeout_seconds, self._body_due, self.cycle)

        def _body_due(self, cycle: Any) -> None:
            self._deadline = None
            if self.cycle is cycle and self.conn.their_state is h11.SEND_BODY:
                self._give_up()

        def _give_up(self) -> None:
            if self.transport.is_closing():
                return
            if self.cycle is None or not self.cycle.response_started:
                self.transport.write(_TIMEOUT_RESPONSE)
            self.transport.close()

    return GuardedH11Protocol


def server(app: Any, host: str, port: int, limits: HttpLimits | None = None) -> uvicorn.Server:
    """A uvicorn server for `app` with the project's limits (see the module docstring)."""
    limits = limits or HttpLimits()
    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, http=guarded_protocol(limits),
        limit_concurrency=limits.max_connections, timeout_keep_alive=limits.keep_alive_seconds,
    )
    return uvicorn.Server(config)
