"""Corrections on the opportunity page (issue 16): the forms' posts and what the page shows.

    POST /web/opportunities/{id}/correct/link     a person into the group (role, department)
    POST /web/opportunities/{id}/correct/unlink   a member out of it
    POST /web/opportunities/{id}/correct/role     a member's role and department
    POST /web/opportunities/{id}/correct/stance   champion, blocker or neutral, with influence
    POST /web/opportunities/{id}/correct/note     a note and concerns
    POST /web/opportunities/{id}/correct/merge    another account merged into this one's
    POST /web/opportunities/{id}/correct/undo     undo a correction of the history
    POST /web/correct/open                        an opportunity opened by hand (the priorities page)

Each post goes through the very functions of the API's write endpoints (correction_api.
Corrections), so the page refuses exactly what the API refuses, with the same reason, and
writes only after Kafka's ack. The author is the user the correction token names: the page asks
for that token (it signs in with it, as with a read token; the cookie is HttpOnly). Cross-site
posts are refused by the edge middleware (security.py), as for every form of /web/. After a
post the browser is sent back to the page (303) with the outcome.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, get_args
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from services.projection import correcting as cr
from services.projection.correction_api import Corrections
from services.projection.errors import ApiError
from services.projection.repository import Reader
from services.projection.settings import ProjectionSettings
from services.projection.web.access import Access
from services.projection.web.i18n import Translator
from services.projection.web.views import opportunity_url
from shared.schemas.correction import Concern, Influence, Stance
from shared.schemas.roles import BuyingRole, Department

RESULTS = ("recorded", "pending", "duplicate", "refused")
STANCES = get_args(Stance)
INFLUENCES = get_args(Influence)
CONCERNS = get_args(Concern)
ROLES = tuple(r.value for r in BuyingRole)
DEPARTMENTS = tuple(d.value for d in Department)


@dataclass(frozen=True)
class HistoryRow:
    correction_id: str
    when: str
    who: str
    what: str
    why: str
    undone: str | None  # who undid it and when, else None
    undoable: bool


def _person(pid: str | None, names: Mapping[str, str]) -> str:
    return names.get(pid or "", pid or "—")


def describe(c: Mapping[str, Any], names: Mapping[str, str], t: Translator,
             others: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """What one correction of the history says, in words; an undo names what it undid when
    `others` (the history by correction id) holds it."""
    d, kind = c["detail"] or {}, c["type"]
    person = _person(c.get("person_id"), names)
    if kind == "member_linked":
        role = f" ({t.value('role', d['role'])})" if d.get("role") else ""
        return t("corr.type.member_linked", person=person, role=role)
    if kind == "member_role_set":
        role = t.value("role", d.get("role")) + (f", {t.value('dept', d['department'])}" if d.get("department")
                                                  else "")
        return t("corr.type.member_role_set", person=person, role=role)
    if kind == "member_stance_set":
        return t("corr.type.member_stance_set", person=person, stance=t.value("stance", d.get("stance")),
                 influence=t.value("influence", d.get("influence")))
    if kind == "member_note_set":
        concerns = ", ".join(t.value("concern", x) for x in d.get("concerns") or [])
        note = " · ".join(x for x in (f"«{d['note']}»" if d.get("note") else "", concerns) if x) or "—"
        return t("corr.type.member_note_set", person=person, note=note)
    if kind == "accounts_merged":
        return t("corr.type.accounts_merged", merged=d.get("merged"), into=d.get("into"))
    if kind == "correction_undone":
        target = (others or {}).get(d.get("undoes") or "")
        undid = f"«{describe(target, names, t)}»" if target and target["type"] != "correction_undone" else d.get(
            "undoes")
        return t("corr.type.correction_undone", undoes=undid)
    if kind == "member_unlinked":
        return t("corr.type.member_unlinked", person=person)
    return t("corr.type.opportunity_opened") if kind == "opportunity_opened" else kind


def history(detail: Mapping[str, Any], t: Translator) -> list[HistoryRow]:
    """The opportunity's corrections, newest first, as the page shows them."""
    names = {m["person_id"]: m["name"] or m["email"] or m["person_id"] for m in detail["members"]}
    by_id = {c["correction_id"]: c for c in detail.get("corrections") or []}
    return [HistoryRow(
        correction_id=c["correction_id"], when=t.when(c["made_at"]), who=c["author"],
        what=describe(c, names, t, by_id), why=c["reason"] or "",
        undone=t("corr.undone", who=c["undone_by"], at=t.when(c["undone_at"])) if c["undone_by_id"] else None,
        undoable=c["undone_by_id"] is None and c["type"] != "correction_undone",
    ) for c in detail.get("corrections") or []]


async def linkable(reader: Reader, detail: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(person id, how to show them) of the account's contacts who are not members yet."""
    account = await reader.account(detail["account_id"])
    members = {m["person_id"] for m in detail["members"]}
    return [(c["person_id"], " · ".join(x for x in (c["name"], c["email"], c["job_title"]) if x) or c["person_id"])
            for c in (account or {}).get("contacts", []) if c["person_id"] not in members]


def outcome(request: Request, t: Translator) -> tuple[str, str] | None:
    """(result, message) of the correction just posted, from the page's address."""
    result = request.query_params.get("corr")
    if result not in RESULTS:
        return None
    if result == "refused":
        return result, t("corr.result.refused", message=request.query_params.get("message", "")[:400])
    return result, t(f"corr.result.{result}")


def _forms(raw: bytes) -> dict[str, list[str]]:
    # A plain urlencoded form, parsed here: python-multipart is not a dependency.
    found = parse_qs(raw[:16384].decode("utf-8", errors="replace"))
    return {k: [v.strip() for v in values if v.strip()] for k, values in found.items()}


def _one(form: Mapping[str, list[str]], name: str) -> str | None:
    values = form.get(name) or []
    return values[0] if values else None


def _refusal(exc: Exception) -> str | None:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:3])
    if isinstance(exc, ApiError):
        return str(exc.body["message"])
    return None


Action = Callable[[str, Mapping[str, list[str]], str], Awaitable[cr.CorrectionAccepted]]


def create_correction_pages(settings: ProjectionSettings, corrections: Corrections) -> APIRouter:
    access = Access(settings)
    router = APIRouter(include_in_schema=False)

    def back(opportunity_id: str, **query: str) -> RedirectResponse:
        return RedirectResponse(f"{opportunity_url(opportunity_id)}?{urlencode(query)}#corrections", status_code=303)

    async def post(request: Request, opportunity_id: str, action: Action) -> Response:
        author = settings.author_of(access.presented(request) or "")
        if author is None:
            t = Translator(request.query_params.get("lang") or request.cookies.get("bg_lang"))
            return back(opportunity_id, corr="refused", message=t("corr.denied"))
        try:
            answer = await action(opportunity_id, _forms(await request.body()), author)
        except (ApiError, ValidationError) as exc:
            return back(opportunity_id, corr="refused", message=_refusal(exc) or "")
        return back(opportunity_id, corr=answer.result)

    def reason(form: Mapping[str, list[str]]) -> dict[str, Any]:
        return {"reason": _one(form, "reason")}

    async def link(oid: str, form: Mapping[str, list[str]], who: str) -> cr.CorrectionAccepted:
        return await corrections.link(oid, cr.LinkRequest.model_validate({
            "person_id": _one(form, "person_id") or "", "role": _one(form, "role"),
            "department": _one(form, "department"), **reason(form)}), who)

    async def unlink(oid: str, form: Mapping[str, list[str]], who: str) -> cr.CorrectionAccepted:
        return await corrections.unlink(oid, _one(form, "person_id") or "",
                                        cr.UnlinkRequest.model_validate(reason(form)), who)

    async def role(oid: str, form: Mapping[str, list[str]], who: str) -> cr.CorrectionAccepted:
        return await corrections.role(oid, _one(form, "person_id") or "", cr.RoleRequest.model_validate({
            "role": _one(form, "role"), "department": _one(form, "department"), **reason(form)}), who)

    async def stance(oid: str, form: Mapping[str, list[str]], who: str) -> cr.CorrectionAccepted:
        return await corrections.stance(oid, _one(form, "person_id") or "", cr.StanceRequest.model_validate({
            "stance": _one(form, "stance"), "influence": _one(form, "influence") or "medium", **reason(form)}), who)

    async def note(oid: str, form: Mapping[str, list[str]], who: str) -> cr.CorrectionAccepted:
        return await corrections.note(oid, _one(form, "person_id") or "", cr.NoteRequest.model_validate({
            "note": _one(form, "note"), "concerns": form.get("concerns") or [], **reason(form)}), who)

    async def merge(oid: str, form: Mapping[str, list[str]], who: str) -> cr.CorrectionAccepted:
        return await corrections.merge(cr.MergeRequest.model_validate({
            "into": _one(form, "into") or "", "merged": _one(form, "merged") or "", **reason(form)}), who)

    async def undo(oid: str, form: Mapping[str, list[str]], who: str) -> cr.CorrectionAccepted:
        return await corrections.undo(_one(form, "correction_id") or "",
                                      cr.UndoRequest.model_validate(reason(form)), who)

    actions: dict[str, Action] = {"link": link, "unlink": unlink, "role": role, "stance": stance, "note": note,
                                  "merge": merge, "undo": undo}

    @router.post("/web/correct/open", response_model=None)
    async def open_by_hand(request: Request) -> Response:
        """An opportunity opened by hand (account x solution), from the priorities page."""
        def done(**query: str) -> RedirectResponse:
            return RedirectResponse(f"/web/?{urlencode(query)}#open-by-hand", status_code=303)
        author = settings.author_of(access.presented(request) or "")
        if author is None:
            t = Translator(request.query_params.get("lang") or request.cookies.get("bg_lang"))
            return done(corr="refused", message=t("corr.denied"))
        form = _forms(await request.body())
        try:
            answer = await corrections.open(cr.OpenRequest.model_validate({
                "account_id": _one(form, "account_id") or "", "solution": _one(form, "solution") or "",
                **reason(form)}), author)
        except (ApiError, ValidationError) as exc:
            return done(corr="refused", message=_refusal(exc) or "")
        return done(corr=answer.result)

    @router.post("/web/opportunities/{opportunity_id:path}/correct/{kind}", response_model=None)
    async def correct(request: Request, opportunity_id: str, kind: str) -> Response:
        action = actions.get(kind)
        if action is None:
            return back(opportunity_id, corr="refused", message=f"no correction {kind!r}")
        return await post(request, opportunity_id, action)

    return router
