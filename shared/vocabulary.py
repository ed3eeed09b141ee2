"""The words for the data's codes (signals, statuses, stages, roles, departments, kinds of
touch, solutions), in Russian and English: ONE vocabulary for the web pages and the alerts,
so that a salesperson reads the same word in a chat as on the opportunity's page.

    word("signal", "stalled", "ru") -> "Группа застопорилась"

A code nobody translated yet (a new CRM stage, a new solution) comes back as it is, rather
than hidden.
"""

from __future__ import annotations

from typing import Literal

Lang = Literal["ru", "en"]
LANGS: tuple[Lang, ...] = ("ru", "en")
DEFAULT_LANG: Lang = "ru"

WORDS: dict[str, dict[Lang, str]] = {
    "status.forming": {"ru": "формируется", "en": "forming"},
    "status.formed": {"ru": "сформирована", "en": "formed"},
    "status.stalled": {"ru": "застопорилась", "en": "stalled"},
    "status.won": {"ru": "выиграна", "en": "won"},
    "status.lost": {"ru": "проиграна", "en": "lost"},
    # Stages: the engine's own (identified) and the usual ones CRMs report (DOMAIN.md's funnel).
    "stage.identified": {"ru": "выявлена", "en": "identified"},
    # The default funnel's (services/projection/config/funnel.yaml) besides the ones below.
    "stage.target_base": {"ru": "целевая база", "en": "target base"},
    "stage.potential_deal": {"ru": "потенциальная сделка", "en": "potential deal"},
    "stage.qualified": {"ru": "квалифицирована", "en": "qualified"},
    "stage.cold": {"ru": "холодная", "en": "cold"},
    "stage.warm": {"ru": "тёплая", "en": "warm"},
    "stage.proposal": {"ru": "предложение", "en": "proposal"},
    "stage.negotiation": {"ru": "переговоры", "en": "negotiation"},
    "stage.closing": {"ru": "закрытие", "en": "closing"},
    "stage.contract": {"ru": "договор", "en": "contract"},
    "stage.won": {"ru": "выиграна", "en": "won"},
    "stage.lost": {"ru": "проиграна", "en": "lost"},
    "role.initiator": {"ru": "Инициатор", "en": "Initiator"},
    "role.technical_validator": {"ru": "Технический эксперт", "en": "Technical validator"},
    "role.budget_holder": {"ru": "Владелец бюджета", "en": "Budget holder"},
    "role.decision_maker": {"ru": "Принимает решение", "en": "Decision maker"},
    "role.procurement": {"ru": "Закупки", "en": "Procurement"},
    "role.legal": {"ru": "Юрист", "en": "Legal"},
    "role.influencer": {"ru": "Влияет на решение", "en": "Influencer"},
    "dept.hr": {"ru": "HR", "en": "HR"},
    "dept.it": {"ru": "ИТ", "en": "IT"},
    "dept.finance": {"ru": "Финансы", "en": "Finance"},
    "dept.executive": {"ru": "Руководство", "en": "Executive"},
    "dept.procurement": {"ru": "Закупки", "en": "Procurement"},
    "dept.legal": {"ru": "Юридический отдел", "en": "Legal"},
    "dept.operations": {"ru": "Операции", "en": "Operations"},
    "dept.sales": {"ru": "Продажи", "en": "Sales"},
    "dept.marketing": {"ru": "Маркетинг", "en": "Marketing"},
    "dept.other": {"ru": "Другое", "en": "Other"},
    "signal.group_forming": {"ru": "Группа формируется", "en": "Group forming"},
    "signal.group_formed": {"ru": "Группа сформирована", "en": "Group formed"},
    "signal.group_expanded": {"ru": "Группа расширилась", "en": "Group expanded"},
    "signal.role_gap": {"ru": "Не хватает ключевой роли", "en": "Key role missing"},
    "signal.priority_changed": {"ru": "Приоритет изменился", "en": "Priority changed"},
    "signal.stalled": {"ru": "Группа застопорилась", "en": "Group stalled"},
    "signal.reactivated": {"ru": "Группа снова активна", "en": "Group reactivated"},
    "signal.role_blocked": {"ru": "Ключевую роль занимает только противник сделки",
                            "en": "A key role is held only by a blocker"},
    "kind.page_view": {"ru": "просмотр страницы", "en": "page view"},
    "kind.download": {"ru": "скачивание", "en": "download"},
    "kind.email_delivered": {"ru": "письмо доставлено", "en": "email delivered"},
    "kind.email_open": {"ru": "письмо открыто", "en": "email opened"},
    "kind.email_click": {"ru": "клик в письме", "en": "email click"},
    "kind.webinar_registered": {"ru": "регистрация на вебинар", "en": "webinar registration"},
    "kind.webinar_attended": {"ru": "участие в вебинаре", "en": "webinar attended"},
    "kind.webinar_left": {"ru": "вышел из вебинара", "en": "left the webinar"},
    "kind.meeting": {"ru": "встреча", "en": "meeting"},
    "kind.form_submitted": {"ru": "заполнена форма", "en": "form submitted"},
    "kind.event_registered": {"ru": "регистрация на мероприятие", "en": "event registration"},
    "kind.event_attended": {"ru": "участие в мероприятии", "en": "event attended"},
    "kind.demo_requested": {"ru": "запрос демо", "en": "demo requested"},
    "kind.content_engaged": {"ru": "работа с материалом", "en": "content engaged"},
    "kind.call": {"ru": "звонок", "en": "call"},
    "solution.hr": {"ru": "HR-система", "en": "HR system"},
    "solution.wms": {"ru": "WMS", "en": "WMS"},
    "solution.crm": {"ru": "CRM", "en": "CRM"},
    "solution.bi": {"ru": "BI-аналитика", "en": "BI analytics"},
    # Shared by the pages' labels and the alerts' lines.
    "col.score": {"ru": "Балл", "en": "Score"},
    "col.tier": {"ru": "Уровень", "en": "Tier"},
    "col.members": {"ru": "Участники", "en": "Members"},
    "col.roles": {"ru": "Роли", "en": "Roles"},
    "roles.missing_list": {"ru": "Не хватает", "en": "Missing"},
    "signal.backfill": {"ru": "из истории", "en": "from history"},
    "opp.open": {"ru": "Открыть возможность", "en": "Open the opportunity"},
}

# Values from the data arrive as codes under these prefixes.
PREFIXES = ("status", "stage", "role", "dept", "signal", "kind", "solution")


def pick(lang: str | None) -> Lang:
    """The language asked for when it is one of LANGS, else the default (Russian)."""
    return lang if lang in LANGS else DEFAULT_LANG  # type: ignore[return-value]


def word(prefix: str, code: str | None, lang: str | None) -> str:
    """A data code in words: word("role", "budget_holder", "ru") -> "Владелец бюджета";
    "—" for None; the code itself when nobody translated it."""
    if code is None:
        return "—"
    entry = WORDS.get(f"{prefix}.{code}")
    return entry[pick(lang)] if entry else code


def number(value: float | None, lang: str | None, digits: int = 1) -> str:
    """79.25 -> "79,3" (ru) or "79.3" (en); thin spaces between thousands; "—" for None."""
    if value is None:
        return "—"
    text = f"{value:,.{digits}f}".replace(",", "\u202f")
    return text.replace(".", ",") if pick(lang) == "ru" else text
