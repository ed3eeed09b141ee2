"""The read API's privacy endpoints (write token: BG_API_WRITE_TOKENS), docs/privacy.md.

    POST /v1/privacy/export        {"email" | "user_id" | "anonymous_id": ...}  -> everything kept
    POST /v1/privacy/erase         {..., "suppress": false}                     -> what was erased
    POST /v1/privacy/suppressions  {..., "reason": "..."}                       -> put on the list
    POST /v1/privacy/unsuppress    {...}                                        -> taken off the list

Errors: 401/403 for tokens, 404 naming the identifier's field when no one is known by it, 422
naming the field for a body that does not say exactly one identifier, 503 when Redis, Kafka or
the database is away.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field, model_validator
from redis.exceptions import RedisError

from services.privacy.requests import Privacy, Subject, UnknownSubject, now
from services.projection.api import ApiError, ErrorBody, bearer
from services.projection.settings import ProjectionSettings

Value = Annotated[str, Field(min_length=1, max_length=320, pattern=r"^[^\x00-\x1f]+$")]


class SubjectBody(BaseModel):
    """Exactly one identifier of the person, as a platform gave it."""

    email: Value | None = None
    user_id: Value | None = None
    anonymous_id: Value | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SubjectBody:
        given = [k for k in ("email", "user_id", "anonymous_id") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of email, user_id, anonymous_id / укажите ровно одно из "
                             "email, user_id, anonymous_id")
        if self.email is not None and "@" not in self.email:
            raise ValueError("email: not an email address / не адрес электронной почты")
        return self

    def subject(self) -> Subject:
        kind = next(k for k in ("email", "user_id", "anonymous_id") if getattr(self, k) is not None)
        return Subject(kind, getattr(self, kind))  # type: ignore[arg-type]


class EraseBody(SubjectBody):
    suppress: bool = Field(False, description="also suppress the identifier: later touches are dropped at ingest")


class SuppressBody(SubjectBody):
    reason: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")] = "requested"


def create_privacy_router(privacy: Privacy | None, settings: ProjectionSettings) -> APIRouter:
    """`privacy` None: the routes exist (for the spec) and answer 503."""

    def write_access(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        if credentials is None:
            raise ApiError(401, "unauthorized", "a bearer token is required (Authorization: Bearer <token>)",
                           headers={"WWW-Authenticate": "Bearer"})
        token = credentials.credentials.encode()
        if not any(hmac.compare_digest(token, t.encode()) for t in settings.read_tokens):
            raise ApiError(401, "unauthorized", "the bearer token is not valid",
                           headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if not any(hmac.compare_digest(token, t.encode()) for t in settings.crm_tokens):
            raise ApiError(403, "forbidden", "personal data requests need a write token (BG_API_WRITE_TOKENS) / "
                           "запросы о персональных данных требуют токена записи")

    # Every answer a client may get is in the spec (the schemathesis test checks the API keeps to it).
    router = APIRouter(prefix="/v1/privacy", tags=["privacy"], dependencies=[Depends(write_access)],
                       responses={s: {"model": ErrorBody} for s in (401, 403, 404, 422, 503)})

    async def run(body: SubjectBody, action) -> Any:
        if privacy is None:
            raise ApiError(503, "unavailable", "privacy requests are not served by this process")
        try:
            return await action(body.subject())
        except UnknownSubject as exc:
            field = f"body.{body.subject().kind}"
            raise ApiError(404, "not_found", f"{exc} / никто не известен по этому идентификатору",
                           field=field) from None
        except (RedisError, KafkaError, OSError) as exc:
            raise ApiError(503, "unavailable", f"a store is unavailable, retry shortly: {type(exc).__name__}",
                           headers={"Retry-After": "5"}) from None

    @router.post("/export", summary="Everything kept about a person (by email, user id or anonymous id)")
    async def export(body: SubjectBody) -> dict[str, Any]:
        return await run(body, privacy.export if privacy else None)

    @router.post("/erase", summary="Erase a person everywhere, through the log; optionally suppress them too")
    async def erase(body: EraseBody) -> dict[str, Any]:
        return await run(body, lambda s: privacy.erase(s, now(), suppress=body.suppress))

    @router.post("/suppressions", summary="Suppress a person: their later touches are dropped at ingest")
    async def suppress(body: SuppressBody) -> dict[str, Any]:
        added = await run(body, lambda s: privacy.suppress(s, body.reason, "api", now()))
        return {"suppressed": True, "new": added}

    @router.post("/unsuppress", summary="Take a person off the suppression list")
    async def unsuppress(body: SubjectBody) -> dict[str, Any]:
        removed = await run(body, lambda s: privacy.unsuppress(s))
        return {"suppressed": False, "was_suppressed": removed}

    return router
