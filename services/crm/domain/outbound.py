"""Us -> CRM (pure): what an opportunity's deal should hold, and the tasks signals give.

Input shapes are the read API's (`GET /v1/opportunities/{id}`: services/projection/models.py
OpportunityDetail, as JSON) and the signal schema (shared/schemas/scoring.py Signal).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal

from services.crm.domain.inbound import digest
from services.crm.domain.records import DealPlan, PlannedContact, TaskPlan
from shared.schemas.scoring import Signal
from shared.vocabulary import word

CreateFrom = Literal["created", "formed"]
TASK_SIGNALS = ("group_formed", "role_gap")
MARKER_PREFIX = "bg-signal:"

_TITLES = {
    "group_formed": {"ru": "Сформировалась группа закупки: {account}", "en": "Buying group formed: {account}"},
    "role_gap": {"ru": "Нет ключевой роли в группе: {account}", "en": "Key role missing in the group: {account}"},
}
_MISSING = {"ru": "Не хватает ролей", "en": "Missing roles"}
_MEMBERS = {"ru": "Участники", "en": "Members"}
_SCORE = {"ru": "Оценка", "en": "Score"}


def wanted(opportunity: Mapping[str, Any], create_from: CreateFrom) -> bool:
    """Whether the opportunity has a deal: always (`created`), or once its group formed
    (`formed`: a formed_at is known; a group that formed and then stalled still has one)."""
    return create_from == "created" or opportunity.get("formed_at") is not None


def deal_plan(opportunity: Mapping[str, Any], lang: str = "ru") -> DealPlan:
    """The deal of an opportunity (read API detail JSON): title "<solution> — <account>", score,
    tier, missing roles, the group as text, and the members with an address as contacts."""
    account = opportunity.get("account_name") or opportunity["account_id"]
    solution = word("solution", opportunity["solution"], lang)
    members = sorted(opportunity.get("members") or [], key=lambda m: m["person_id"])
    contacts = tuple(PlannedContact(person_id=m["person_id"], email=m.get("email"), name=m.get("name"),
                                    job_title=m.get("job_title"), role=m["role"], department=m["department"])
                     for m in members if m.get("email"))
    lines = [f"{m.get('name') or m['person_id']} — {word('role', m['role'], lang)}"
             f" ({word('dept', m['department'], lang)})" for m in members]
    missing = tuple(sorted(opportunity.get("missing_roles") or ()))
    score = opportunity.get("score")
    score = round(float(score), 1) if score is not None else None
    title = f"{solution} — {account}"
    group_text = "\n".join(lines)
    fingerprint = digest(title, score, opportunity.get("tier"), ",".join(missing), group_text,
                         "|".join(f"{c.person_id}:{c.email}:{c.role}" for c in contacts))
    return DealPlan(opportunity_id=opportunity["opportunity_id"], title=title, score=score,
                    tier=opportunity.get("tier"), missing_roles=missing, group_text=group_text,
                    contacts=contacts, fingerprint=fingerprint)


def missing_text(plan: DealPlan, lang: str = "ru") -> str:
    return ", ".join(word("role", r, lang) for r in plan.missing_roles)


def task_plan(signal: Signal, lang: str = "ru", due_after: timedelta = timedelta(days=1)) -> TaskPlan | None:
    """A task for the deal's owner on a live `group_formed` or `role_gap`; None for other
    signals and for history (`backfill: true`: nobody acts on last year's facts). The task is
    due `due_after` after the fact (event time); its description ends with a marker holding
    the signal id, by which the connector finds it again after a crash."""
    if signal.signal not in TASK_SIGNALS or signal.backfill:
        return None
    lang = "en" if lang == "en" else "ru"
    account = signal.account_name or signal.account_id
    title = _TITLES[signal.signal][lang].format(account=account)
    people = [f"{m.name or m.person_id} — {word('role', m.role, lang)}" for m in signal.members]
    lines = [f"{_SCORE[lang]}: {signal.score:.0f} ({signal.tier})"]
    if signal.missing_roles:
        lines.append(f"{_MISSING[lang]}: " + ", ".join(word("role", r, lang) for r in signal.missing_roles))
    if people:
        lines.append(f"{_MEMBERS[lang]}:\n" + "\n".join(people))
    marker = MARKER_PREFIX + signal.signal_id
    lines.append(f"[{marker}]")
    return TaskPlan(signal_id=signal.signal_id, opportunity_id=signal.opportunity_id, title=title,
                    description="\n".join(lines), marker=marker, due=signal.occurred_at + due_after)
