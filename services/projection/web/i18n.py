"""Every piece of interface text of the web pages, in Russian (the default: the first users
speak it) and English. Templates and plots ask for a key; a missing key is a bug the unit
tests catch, so no page ever shows a raw key.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from services.projection.web.correction_text import CORRECTION_TEXT
from shared.vocabulary import DEFAULT_LANG, LANGS, PREFIXES, WORDS, Lang, pick

__all__ = ["DEFAULT_LANG", "LANGS", "PREFIXES", "TEXT", "Lang", "Translator", "pick"]

TEXT: dict[str, dict[Lang, str]] = {
    "app.title": {"ru": "Группы закупки", "en": "Buying groups"},
    "nav.priorities": {"ru": "Приоритеты", "en": "Priorities"},
    "nav.metrics": {"ru": "Метрики", "en": "Metrics"},
    # The funnel pages' own text is in funnel_text.py; these three are in every page's header.
    "nav.funnel": {"ru": "Воронка", "en": "Funnel"},
    "nav.forecast": {"ru": "Прогноз", "en": "Forecast"},
    "nav.analytics": {"ru": "Аналитика воронки", "en": "Funnel analytics"},
    "nav.lang": {"ru": "Язык", "en": "Language"},
    "live.label": {"ru": "Живые сигналы", "en": "Live signals"},
    "live.connecting": {"ru": "подключение…", "en": "connecting…"},
    "live.open": {"ru": "онлайн", "en": "live"},
    "live.closed": {"ru": "нет связи, переподключаюсь…", "en": "disconnected, retrying…"},
    "live.empty": {"ru": "Новые сигналы появятся здесь без перезагрузки страницы.",
                   "en": "New signals will appear here without reloading the page."},
    "live.new": {"ru": "новый сигнал", "en": "new signal"},
    # priorities
    "prio.title": {"ru": "Возможности по приоритету", "en": "Opportunities by priority"},
    "prio.lead": {"ru": "Одна строка — одна компания × одно решение с её группой закупки.",
                  "en": "One row is one account × one solution, with its buying group."},
    "prio.total": {"ru": "Всего: {n}", "en": "Total: {n}"},
    "prio.empty": {"ru": "Нет возможностей по этим условиям.", "en": "No opportunities match."},
    "filter.status": {"ru": "Статус", "en": "Status"},
    "filter.tier": {"ru": "Уровень", "en": "Tier"},
    "filter.solution": {"ru": "Решение", "en": "Solution"},
    "filter.any": {"ru": "все", "en": "any"},
    "filter.search": {"ru": "Поиск: компания, домен, человек, email", "en": "Search: company, domain, person, email"},
    "filter.apply": {"ru": "Показать", "en": "Apply"},
    "filter.reset": {"ru": "Сбросить", "en": "Reset"},
    "page.prev": {"ru": "← Назад", "en": "← Previous"},
    "page.next": {"ru": "Дальше →", "en": "Next →"},
    "col.rank": {"ru": "№", "en": "#"},
    "col.account": {"ru": "Компания", "en": "Account"},
    "col.solution": {"ru": "Решение", "en": "Solution"},
    "col.stage": {"ru": "Стадия", "en": "Stage"},
    "col.status": {"ru": "Статус", "en": "Status"},
    "col.activity": {"ru": "Активность", "en": "Last activity"},
    "roles.covered": {"ru": "есть", "en": "covered"},
    "roles.missing": {"ru": "нет", "en": "missing"},
    # one opportunity
    "opp.back": {"ru": "← К приоритетам", "en": "← Back to priorities"},
    "opp.owner": {"ru": "Ответственный", "en": "Account owner"},
    "opp.merged_into": {"ru": "Компания объединена с другой; группа теперь здесь:",
                        "en": "This account was merged into another; the group is now here:"},
    "opp.merged_from": {"ru": "Включает группы объединённых компаний:",
                        "en": "Includes the groups of merged accounts:"},
    "opp.formed": {"ru": "Группа сформирована", "en": "Group formed"},
    "opp.first_touch": {"ru": "Первое касание", "en": "First touch"},
    "opp.touches": {"ru": "Касаний", "en": "Touches"},
    "opp.group": {"ru": "Группа закупки", "en": "Buying group"},
    "opp.group_lead": {"ru": "Участники по отделам; пустые места — ожидаемые роли, которых пока нет.",
                       "en": "Members by department; empty seats are expected roles nobody plays yet."},
    "opp.empty_seat": {"ru": "место свободно", "en": "empty seat"},
    "opp.missing_dept": {"ru": "Не хватает", "en": "Missing"},
    "opp.engagement": {"ru": "вовлечённость", "en": "engagement"},
    "opp.touches_n": {"ru": "касаний: {n}", "en": "touches: {n}"},
    "opp.required": {"ru": "обязательная роль", "en": "required role"},
    "opp.timeline": {"ru": "Касания по участникам", "en": "Touches per member"},
    "opp.timeline_empty": {"ru": "Касаний пока нет.", "en": "No touches yet."},
    "opp.score": {"ru": "Почему такой балл", "en": "Why this score"},
    "opp.score_none": {"ru": "Балл ещё не рассчитан.", "en": "Not scored yet."},
    "opp.score_as_of": {"ru": "на {at}", "en": "as of {at}"},
    "opp.score_members": {"ru": "Вклад участников (вовлечённость)", "en": "Members' contribution (engagement)"},
    "opp.signals": {"ru": "Сигналы", "en": "Signals"},
    "opp.signals_empty": {"ru": "Сигналов пока нет.", "en": "No signals yet."},
    "opp.not_found": {"ru": "Такой возможности нет.", "en": "No such opportunity."},
    "part.engagement": {"ru": "Вовлечённость", "en": "Engagement"},
    "part.breadth": {"ru": "Ширина группы", "en": "Breadth"},
    "part.role_coverage": {"ru": "Покрытие ролей", "en": "Role coverage"},
    "part.departments": {"ru": "Отделы", "en": "Departments"},
    "part.recency": {"ru": "Свежесть и темп", "en": "Recency and pace"},
    "why.engagement": {"ru": "касания всех участников, с затуханием; вклад одного человека ограничен",
                       "en": "every member's touches, decayed; one person's share is capped"},
    "why.breadth": {"ru": "вовлечённых участников: {n}", "en": "engaged members: {n}"},
    "why.role_coverage": {"ru": "покрыто ролей: {covered}; нет: {missing}",
                          "en": "roles covered: {covered}; missing: {missing}"},
    "why.departments": {"ru": "отделов: {n}", "en": "departments: {n}"},
    "why.recency": {"ru": "как давно и как часто были касания", "en": "how recent and how frequent the touches are"},
    "why.none": {"ru": "—", "en": "—"},
    # metrics
    "metrics.title": {"ru": "Метрики групп закупки", "en": "Buying-group metrics"},
    "metrics.period": {"ru": "Период: {since} — {until}, шаг {step}",
                       "en": "Period: {since} to {until}, step {step}"},
    "metrics.no_data": {"ru": "Данных пока нет.", "en": "No data yet."},
    "metrics.step.day": {"ru": "день", "en": "a day"},
    "metrics.step.week": {"ru": "неделя", "en": "a week"},
    "metrics.step.month": {"ru": "30 дней", "en": "30 days"},
    "metrics.identified": {"ru": "Возможностей выявлено", "en": "Opportunities identified"},
    "metrics.contacts": {"ru": "Контактов («лидов»)", "en": "Raw contacts (\"leads\")"},
    "metrics.per_opp": {"ru": "Контактов на возможность", "en": "Contacts per opportunity"},
    "metrics.engaged": {"ru": "Вовлечённых на возможность", "en": "Engaged members per opportunity"},
    "metrics.coverage": {"ru": "Покрытие ролей", "en": "Role coverage"},
    "metrics.formation": {"ru": "Дней до формирования (среднее / медиана)",
                          "en": "Days to formation (mean / median)"},
    "metrics.stalled": {"ru": "Доля застопорившихся", "en": "Stalled share"},
    "metrics.over_time": {"ru": "Возможности и контакты во времени", "en": "Opportunities vs raw contacts over time"},
    "metrics.over_time_lead": {
        "ru": "Нарастающим итогом. Лид-системы считают людей; здесь видно, сколько за ними возможностей.",
        "en": "Cumulative. Lead systems count people; this shows how many opportunities they are."},
    "metrics.cohort_lead": {"ru": "По периоду, в котором возможность выявлена.",
                            "en": "By the period in which the opportunity was identified."},
    "metrics.per_stage": {"ru": "Вовлечённых участников по стадиям", "en": "Engaged members per stage"},
    "metrics.per_stage_lead": {"ru": "Ориентир: 2,5 в начале, 4,2 при передаче в продажи, 6,3 к закрытию.",
                               "en": "Benchmark: 2.5 early, 4.2 at hand-off to sales, 6.3 at close."},
    "metrics.per_role": {"ru": "Покрытие ролей", "en": "Role coverage"},
    "metrics.formation_time": {"ru": "Время до формирования группы, дней", "en": "Time to formation, days"},
    "metrics.formation_lead": {"ru": "От первого касания до формирования, по периоду формирования.",
                               "en": "From the first touch to formation, by the period of formation."},
    "metrics.status": {"ru": "Возможности по статусам", "en": "Opportunities by status"},
    "metrics.stalled_over_time": {"ru": "Доля застопорившихся", "en": "Stalled share"},
    "metrics.opportunities": {"ru": "возможности", "en": "opportunities"},
    "metrics.raw_contacts": {"ru": "контакты", "en": "raw contacts"},
    "metrics.mean": {"ru": "среднее", "en": "mean"},
    # access
    "login.title": {"ru": "Нужен токен доступа", "en": "An access token is needed"},
    "login.lead": {"ru": "Введите токен чтения API (BG_API_TOKENS). Он сохранится в cookie этого браузера.",
                   "en": "Enter a read API token (BG_API_TOKENS). It is kept in a cookie of this browser."},
    "login.token": {"ru": "Токен", "en": "Token"},
    "login.submit": {"ru": "Войти", "en": "Sign in"},
    "login.invalid": {"ru": "Этот токен не подходит.", "en": "This token is not valid."},
    "login.dev": {"ru": "Режим разработки: страницы открыты без токена, пока действуют токены по умолчанию.",
                  "en": "Development mode: pages are open without a token while the default tokens are in use."},
    "error.unavailable": {"ru": "База данных недоступна, попробуйте чуть позже.",
                          "en": "The database is unavailable; try again shortly."},
    "time.just_now": {"ru": "только что", "en": "just now"},
    "time.never": {"ru": "—", "en": "—"},
    # --- web (issue 14): filters, export, live updates, timeline
    "error.invalid_filter": {
        "ru": "Недопустимое значение фильтра «{label}» ({field}): «{value}». Допустимо: {allowed}.",
        "en": "Invalid value of the filter \"{label}\" ({field}): \"{value}\". Allowed: {allowed}."},
    "export.list": {"ru": "Скачать CSV", "en": "Download CSV"},
    "export.group": {"ru": "Группа закупки в CSV", "en": "Buying group as CSV"},
    "export.engaged": {"ru": "Вовлечённых", "en": "Engaged"},
    "export.person": {"ru": "Участник", "en": "Person"},
    "export.job_title": {"ru": "Должность", "en": "Job title"},
    "export.department": {"ru": "Отдел", "en": "Department"},
    "export.role": {"ru": "Роль", "en": "Role"},
    "export.role_source": {"ru": "Источник роли", "en": "Role source"},
    "export.joined": {"ru": "В группе с", "en": "Joined"},
    "export.last_touch": {"ru": "Последнее касание", "en": "Last touch"},
    "roles.covered_list": {"ru": "Есть роли", "en": "Roles covered"},
    "timeline.count": {"ru": "касаний: {n}", "en": "touches: {n}"},
}

# The words for data codes (roles, stages, signals...) are shared with the alerts.
TEXT.update(WORDS)
TEXT.update(CORRECTION_TEXT)


def _ru_plural(n: int, one: str, few: str, many: str) -> str:
    if n % 10 == 1 and n % 100 != 11:
        return one
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return few
    return many


AGO: dict[str, Callable[[int], str]] = {
    "ru.m": lambda n: f"{n} {_ru_plural(n, 'минуту', 'минуты', 'минут')} назад",
    "ru.h": lambda n: f"{n} {_ru_plural(n, 'час', 'часа', 'часов')} назад",
    "ru.d": lambda n: f"{n} {_ru_plural(n, 'день', 'дня', 'дней')} назад",
    "en.m": lambda n: f"{n} minute{'s' * (n != 1)} ago",
    "en.h": lambda n: f"{n} hour{'s' * (n != 1)} ago",
    "en.d": lambda n: f"{n} day{'s' * (n != 1)} ago",
}


class Translator:
    """The text of one language, handed to templates as `t`."""

    def __init__(self, lang: str | None) -> None:
        self.lang: Lang = pick(lang)

    def __call__(self, key: str, **values: object) -> str:
        text = TEXT[key][self.lang]
        return text.format(**values) if values else text

    def value(self, prefix: str, code: str | None) -> str:
        """A data code in words: value('role', 'budget_holder') -> 'Владелец бюджета'."""
        if code is None:
            return "—"
        entry = TEXT.get(f"{prefix}.{code}")
        return entry[self.lang] if entry else code

    def number(self, value: float | None, digits: int = 1) -> str:
        if value is None:
            return "—"
        text = f"{value:,.{digits}f}".replace(",", "\u202f")
        return text.replace(".", ",") if self.lang == "ru" else text

    def percent(self, share: float | None) -> str:
        return "—" if share is None else f"{self.number(share * 100, 0)}\u202f%"

    def when(self, at: datetime | None) -> str:
        return at.strftime("%d.%m.%Y %H:%M") if at and self.lang == "ru" else (
            at.strftime("%Y-%m-%d %H:%M") if at else "—")

    def date(self, at: datetime | None) -> str:
        return at.strftime("%d.%m.%Y") if at and self.lang == "ru" else (at.strftime("%Y-%m-%d") if at else "—")

    def ago(self, at: datetime | None, now: datetime) -> str:
        if at is None:
            return self("time.never")
        age = now - at
        if age < timedelta(minutes=1):
            return self("time.just_now")
        if age < timedelta(hours=1):
            return AGO[f"{self.lang}.m"](int(age.total_seconds() // 60))
        if age < timedelta(days=1):
            return AGO[f"{self.lang}.h"](int(age.total_seconds() // 3600))
        return AGO[f"{self.lang}.d"](age.days)
