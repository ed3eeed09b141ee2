"""The read API's errors and bearer check, shared by its routers (api.py, correction_api.py).

Every error is JSON {"error", "message", "errors": [{"field", "message"}]}; `field` names the
part of the request at fault (path.opportunity_id, body.role, ...).
"""

from __future__ import annotations

import hmac

from fastapi.security import HTTPAuthorizationCredentials


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": error, "message": message,
                     "errors": [{"field": field, "message": message}] if field else []}
        self.headers = headers


def bearer_token(credentials: HTTPAuthorizationCredentials | None, allowed: list[str]) -> str:
    """The presented token when it is one of `allowed` (constant-time compare); else 401."""
    if credentials is None:
        raise ApiError(401, "unauthorized", "a bearer token is required (Authorization: Bearer <token>)",
                       headers={"WWW-Authenticate": "Bearer"})
    if not any(hmac.compare_digest(credentials.credentials.encode(), a.encode()) for a in allowed):
        raise ApiError(401, "unauthorized", "the bearer token is not valid",
                       headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return credentials.credentials
