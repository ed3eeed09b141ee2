"""The write endpoints of corrections (issue 16), part of the read API's process.

Each endpoint checks the request against the projection (404 for an unknown opportunity, person
or account; 409 with the reason for a conflict: correcting.py), builds one bg.correction.v1
message with the author the write token carries and the API's clock as `made_at`, produces it
with acks=all and answers 202 with the correction id only after Kafka acknowledged it; then it
waits a moment (PROJECTION_STAGE_WAIT_SECONDS) for the history to show it, and says so
(`recorded` or `pending`). Kafka away: 503 and nothing written (the producer's request timeout
is shorter than the wait, so a message given up on is never sent later).

    POST /v1/opportunities                                   opportunity_opened
    POST /v1/opportunities/{id}/members                      member_linked
    POST /v1/opportunities/{id}/members/{person}/unlink      member_unlinked
    PUT  /v1/opportunities/{id}/members/{person}/role        member_role_set
    PUT  /v1/opportunities/{id}/members/{person}/stance      member_stance_set
    PUT  /v1/opportunities/{id}/members/{person}/note        member_note_set
    POST /v1/accounts/merges                                 accounts_merged
    POST /v1/corrections/{correction_id}/undo                correction_undone
    GET  /v1/corrections/{correction_id}                     one correction of the history (read token)

Tokens: BG_API_CORRECTION_TOKENS ({user name: token}); without a token 401, with a read or CRM
token 403.
"""

from __future__ import annotations

import asyncio
import logging
import pathlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import httpx
import yaml
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, Path
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from redis.exceptions import RedisError

from services.grouping import config as grouping_config
from services.projection import correcting as cr
from services.projection.errors import ApiError, bearer_token
from services.projection.models import NO_CONTROL, CorrectionOut, ErrorBody
from services.projection.repository import Reader
from services.projection.settings import ProjectionSettings
from shared import topics
from shared.codec import encode
from shared.privacy.seal import is_token, seal
from shared.privacy.vault import Vault
from shared.producers import close_retired
from shared.schemas.correction import CorrectionMessage, MemberNoteSet
from shared.settings import KafkaSettings

log = logging.getLogger("projection.corrections")

Publish = Callable[[CorrectionMessage], Awaitable[None]]
Id = Annotated[str, Path(min_length=1, max_length=200, pattern=NO_CONTROL)]
ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": ErrorBody} for s in (401, 403, 404, 409, 422, 503)}
bearer = HTTPBearer(auto_error=False, description="a correction token (BG_API_CORRECTION_TOKENS)")
# Below the API's own wait: a batch the producer has not sent by then fails (aiokafka expires
# it), so a 503 never turns into a message written later.
REQUEST_TIMEOUT_MS = 10_000
PUBLISH_WAIT_SECONDS = 15


def catalog_solutions() -> frozenset[str] | None:
    """The solution slugs of grouping's catalog (BG_GROUPING_CATALOG, the file customers edit),
    so that opening an opportunity for a solution grouping does not know is a 422 here rather
    than a dead letter there. None when the catalog cannot be read: grouping then refuses such
    an opening with the reason (bg.correction.dlq.v1, unknown_solution)."""
    try:
        location = grouping_config.source("catalog")
        text = (httpx.get(location, timeout=10, follow_redirects=True).text
                if location.startswith(("http://", "https://")) else pathlib.Path(location).read_text(encoding="utf-8"))
        return frozenset(str(s["slug"]) for s in (yaml.safe_load(text) or {}).get("solutions", []))
    except (OSError, httpx.HTTPError, yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
        log.warning("grouping's catalog not readable: solutions are not checked", extra={"error": repr(exc)})
        return None


def sealing_notes(vault: Vault, publish: Publish) -> Publish:
    """`publish` with a note's text sealed under the member's own key first (docs/privacy.md):
    the log carries `sealed_note`, never the text. ApiError 409 naming path.person_id when the
    member's key is gone (erased, or idle past retention: a note about nobody); 503 when the
    vault's Redis is away. A person id that is no pseudonym (written before ingest made them)
    has no key to seal under: its note goes as it is."""
    async def sealed(message: CorrectionMessage) -> None:
        token = message.person_id.partition("@")[0] if isinstance(message, MemberNoteSet) else ""
        if isinstance(message, MemberNoteSet) and message.note is not None and is_token(token):
            try:
                key = (await vault.keys([token])).get(token)
            except RedisError as exc:
                raise ApiError(503, "unavailable", f"the vault is unavailable: {exc}",
                               headers={"Retry-After": "5"}) from None
            if key is None:
                raise ApiError(409, "conflict", "данные человека удалены, заметку не к кому привязать / the "
                               "member's personal data was erased or expired: a note cannot be kept",
                               field="path.person_id")
            message = message.model_copy(update={"note": None, "sealed_note": seal(token, key, {"note": message.note})})
        await publish(message)
    return sealed


class CorrectionPublisher:
    """Produces corrections to bg.correction.v1 (acks=all, idempotent), keyed by their subject.
    Starts on first use and again after a failed start, so the API comes up while Kafka is away
    and answers 503 until it is back."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self._kafka = kafka
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _started(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(**self._kafka.aiokafka_kwargs(), acks="all", enable_idempotence=True,
                                            request_timeout_ms=REQUEST_TIMEOUT_MS)
                try:
                    await asyncio.wait_for(producer.start(), timeout=PUBLISH_WAIT_SECONDS)
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def publish(self, message: CorrectionMessage) -> None:
        """Returns once Kafka acknowledged the message; raises KafkaError, OSError or TimeoutError.
        A failed write retires the producer: an idempotent producer whose numbered batch failed
        refuses every later one of that partition (docs/exactly-once.md, "A broker restart"), so
        the next correction starts a new one (a new producer id)."""
        producer = await self._started()
        try:
            await asyncio.wait_for(producer.send_and_wait(topics.CORRECTIONS.name, key=message.key().encode(),
                                                          value=encode(message)), timeout=PUBLISH_WAIT_SECONDS)
        except (KafkaError, OSError, TimeoutError):
            await self._retire(producer)
            raise

    async def _retire(self, failed: AIOKafkaProducer) -> None:
        async with self._lock:
            if self._producer is failed:
                self._producer = None
        await close_retired(failed, timeout=5)

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


@dataclass(frozen=True)
class Corrections:
    """The endpoint functions, so that the web page's forms write through the same checks."""

    open: Callable[[cr.OpenRequest, str], Awaitable[cr.CorrectionAccepted]]
    link: Callable[[str, cr.LinkRequest, str], Awaitable[cr.CorrectionAccepted]]
    unlink: Callable[[str, str, cr.UnlinkRequest, str], Awaitable[cr.CorrectionAccepted]]
    role: Callable[[str, str, cr.RoleRequest, str], Awaitable[cr.CorrectionAccepted]]
    stance: Callable[[str, str, cr.StanceRequest, str], Awaitable[cr.CorrectionAccepted]]
    note: Callable[[str, str, cr.NoteRequest, str], Awaitable[cr.CorrectionAccepted]]
    merge: Callable[[cr.MergeRequest, str], Awaitable[cr.CorrectionAccepted]]
    undo: Callable[[str, cr.UndoRequest, str], Awaitable[cr.CorrectionAccepted]]


def create_correction_router(settings: ProjectionSettings, reader: Reader, publish: Publish | None,
                             clock: Callable[[], datetime], solutions: frozenset[str] | None = None
                             ) -> tuple[APIRouter, Corrections]:
    """The router, and its write functions (author given) for the web page. `solutions`: the
    catalog's slugs an opportunity may be opened for (None: not checked here)."""
    router = APIRouter()

    def author(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> str:
        token = bearer_token(credentials, settings.read_tokens)
        name = settings.author_of(token)
        if name is None:
            raise ApiError(403, "forbidden", "этот токен может читать, но не править / this token may read but "
                           "not correct: corrections need a token of BG_API_CORRECTION_TOKENS, which names its user")
        return name

    def reader_only(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        bearer_token(credentials, settings.read_tokens)

    async def opportunity(opportunity_id: str) -> dict[str, Any]:
        found = await reader.opportunity_ident(opportunity_id)
        if found is None:
            raise ApiError(404, "not_found", f"нет такой возможности / no opportunity {opportunity_id!r}",
                           field="path.opportunity_id")
        if found.get("merged_into"):
            # Grouping refuses corrections of an absorbed account's opportunity; say so before writing.
            raise ApiError(409, "conflict", f"возможность объединена с {found['merged_into']}: правьте её / "
                           f"opportunity {opportunity_id!r} was merged into {found['merged_into']}; correct that one",
                           field="path.opportunity_id")
        return found

    async def member(opportunity_id: str, person_id: str) -> None:
        await opportunity(opportunity_id)
        if not await reader.known(person_id=person_id, member_of=opportunity_id):
            raise ApiError(404, "not_found", f"{person_id!r} не в группе / is not a member of {opportunity_id!r}",
                           field="path.person_id")

    async def submit(message: CorrectionMessage) -> cr.CorrectionAccepted:
        """Publish (after the ack only: 202), then wait a moment for the history to show it."""
        def answer(result: str, text: str) -> cr.CorrectionAccepted:
            return cr.CorrectionAccepted(correction_id=message.correction_id, type=message.type,
                                         subject=message.key(), author=message.author, made_at=message.made_at,
                                         result=result, message=text)
        if await reader.correction(message.correction_id) is not None:
            return answer("duplicate", "this correction id was recorded before; nothing written again")
        if publish is None:
            raise ApiError(503, "unavailable", "corrections are not configured in this process",
                           headers={"Retry-After": "5"})
        try:
            await publish(message)
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning("correction not acknowledged", extra={"error": repr(exc), "type": message.type})
            raise ApiError(503, "unavailable", "Kafka недоступна, правка не записана, повторите позже / Kafka did "
                           f"not acknowledge the correction; nothing was written, retry shortly ({type(exc).__name__})",
                           headers={"Retry-After": "5"}) from None
        deadline = time.monotonic() + settings.stage_wait_seconds
        while time.monotonic() < deadline:
            if await reader.correction(message.correction_id) is not None:
                return answer("recorded", "the correction is in the history")
            await asyncio.sleep(0.1)
        return answer("pending", "acknowledged by Kafka; not yet in the history: read the opportunity again")

    async def open_opportunity(body: cr.OpenRequest, who: str) -> cr.CorrectionAccepted:
        if solutions is not None and body.solution not in solutions:
            raise ApiError(422, "validation_error", f"решения {body.solution!r} нет в каталоге / solution "
                           f"{body.solution!r} is not in the catalog (known: {', '.join(sorted(solutions))})",
                           field="body.solution")
        oid = f"{body.account_id}:{body.solution}"
        if await reader.opportunity_ident(oid) is not None:
            raise ApiError(409, "conflict", f"такая возможность уже есть / opportunity {oid!r} exists already",
                           field="body.solution")
        return await submit(cr.opened(body, who, clock()))

    async def link(opportunity_id: str, body: cr.LinkRequest, who: str) -> cr.CorrectionAccepted:
        await opportunity(opportunity_id)
        if not await reader.known(person_id=body.person_id):
            raise ApiError(404, "not_found", f"такого человека нет / no person {body.person_id!r} (a person is "
                           "known once a touch of theirs arrived)", field="body.person_id")
        return await submit(cr.linked(opportunity_id, body, who, clock()))

    async def unlink(opportunity_id: str, person_id: str, body: cr.UnlinkRequest, who: str) -> cr.CorrectionAccepted:
        await member(opportunity_id, person_id)
        return await submit(cr.unlinked(opportunity_id, person_id, body, who, clock()))

    async def role(opportunity_id: str, person_id: str, body: cr.RoleRequest, who: str) -> cr.CorrectionAccepted:
        await member(opportunity_id, person_id)
        return await submit(cr.role_set(opportunity_id, person_id, body, who, clock()))

    async def stance(opportunity_id: str, person_id: str, body: cr.StanceRequest, who: str
                     ) -> cr.CorrectionAccepted:
        await member(opportunity_id, person_id)
        return await submit(cr.stance_set(opportunity_id, person_id, body, who, clock()))

    async def note(opportunity_id: str, person_id: str, body: cr.NoteRequest, who: str) -> cr.CorrectionAccepted:
        await member(opportunity_id, person_id)
        return await submit(cr.note_set(opportunity_id, person_id, body, who, clock()))

    async def merge(body: cr.MergeRequest, who: str) -> cr.CorrectionAccepted:
        if body.into == body.merged:
            raise ApiError(409, "conflict", cr.merge_conflict(body.into, body.merged, {}) or "", field="body.merged")
        for name, account in (("into", body.into), ("merged", body.merged)):
            if not await reader.known(account_id=account):
                raise ApiError(404, "not_found", f"нет такой компании / no account {account!r}",
                               field=f"body.{name}")
        if (why := cr.merge_conflict(body.into, body.merged, await reader.merges())) is not None:
            raise ApiError(409, "conflict", why, field="body.merged")
        return await submit(cr.merged(body, who, clock()))

    async def undo(correction_id: str, body: cr.UndoRequest, who: str) -> cr.CorrectionAccepted:
        found = await reader.correction(correction_id)
        if (why := cr.undo_conflict(correction_id, found)) is not None:
            raise ApiError(409, "conflict", why, field="path.correction_id")
        assert found is not None
        return await submit(cr.undone(found, body, who, clock()))

    common = {"status_code": 202, "response_model": cr.CorrectionAccepted, "responses": ERRORS}

    @router.post("/v1/opportunities", **common, summary="Open an opportunity by hand (account x solution)")
    async def post_open(body: cr.OpenRequest, who: str = Depends(author)) -> cr.CorrectionAccepted:
        return await open_opportunity(body, who)

    @router.post("/v1/opportunities/{opportunity_id}/members", **common,
                 summary="Link a known person to the buying group by hand; kept over the rules")
    async def post_link(opportunity_id: Id, body: cr.LinkRequest, who: str = Depends(author)) -> cr.CorrectionAccepted:
        return await link(opportunity_id, body, who)

    @router.post("/v1/opportunities/{opportunity_id}/members/{person_id}/unlink", **common,
                 summary="Take a member out of the buying group; later touches do not bring them back")
    async def post_unlink(opportunity_id: Id, person_id: Id, who: str = Depends(author),
                          body: cr.UnlinkRequest | None = None) -> cr.CorrectionAccepted:
        return await unlink(opportunity_id, person_id, body or cr.UnlinkRequest(), who)

    @router.put("/v1/opportunities/{opportunity_id}/members/{person_id}/role", **common,
                summary="Set a member's role (and department); a later job title does not change it")
    async def put_role(opportunity_id: Id, person_id: Id, body: cr.RoleRequest,
                       who: str = Depends(author)) -> cr.CorrectionAccepted:
        return await role(opportunity_id, person_id, body, who)

    @router.put("/v1/opportunities/{opportunity_id}/members/{person_id}/stance", **common,
                summary="Mark a member champion, blocker or neutral, with influence")
    async def put_stance(opportunity_id: Id, person_id: Id, body: cr.StanceRequest, who: str = Depends(author)
                         ) -> cr.CorrectionAccepted:
        return await stance(opportunity_id, person_id, body, who)

    @router.put("/v1/opportunities/{opportunity_id}/members/{person_id}/note", **common,
                summary="A note and the concerns of a member (replaces the previous note)")
    async def put_note(opportunity_id: Id, person_id: Id, body: cr.NoteRequest,
                       who: str = Depends(author)) -> cr.CorrectionAccepted:
        return await note(opportunity_id, person_id, body, who)

    @router.post("/v1/accounts/merges", **common,
                 summary="Merge two accounts that are one company (people, opportunities, touches move)")
    async def post_merge(body: cr.MergeRequest, who: str = Depends(author)) -> cr.CorrectionAccepted:
        return await merge(body, who)

    @router.post("/v1/corrections/{correction_id}/undo", **common,
                 summary="Undo a correction: the state before it comes back")
    async def post_undo(correction_id: Id, who: str = Depends(author),
                        body: cr.UndoRequest | None = None) -> cr.CorrectionAccepted:
        return await undo(correction_id, body or cr.UndoRequest(), who)

    @router.get("/v1/corrections/{correction_id}", response_model=CorrectionOut, dependencies=[Depends(reader_only)],
                responses={s: {"model": ErrorBody} for s in (401, 404, 422)},
                summary="One correction of the history: who, when, why, what, undone by whom")
    async def get_correction(correction_id: Id) -> CorrectionOut:
        found = await reader.correction(correction_id)
        if found is None:
            raise ApiError(404, "not_found", f"no correction {correction_id!r}", field="path.correction_id")
        return CorrectionOut.model_validate(found)

    return router, Corrections(open_opportunity, link, unlink, role, stance, note, merge, undo)
