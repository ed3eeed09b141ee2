"""Interface text of the funnel, forecast and analytics pages (RU default, EN), kept apart
from i18n.py's block; `FunnelTranslator` looks here first, then in i18n.TEXT. Stage, criterion
and team-role names come from the funnel's config (funnel.yaml), in both languages.
"""

from __future__ import annotations

from services.projection.funnel import Funnel
from services.projection.web.i18n import Lang, Translator

FUNNEL_TEXT: dict[str, dict[Lang, str]] = {
    "funnel.title": {"ru": "Квалификационная воронка", "en": "Qualifying funnel"},
    "funnel.lead": {"ru": "Стадии по готовности покупателя. Критерии выхода: ● из группы закупки (автоматически), "
                          "✎ отмечает человек с подтверждением.",
                    "en": "Stages follow the buyer's readiness. Exit criteria: ● derived from the buying group "
                          "(automatic), ✎ set by a person with evidence."},
    "funnel.probability": {"ru": "вероятность {p}", "en": "probability {p}"},
    "funnel.count": {"ru": "{n} шт. · {amount}", "en": "{n} · {amount}"},
    "funnel.empty": {"ru": "Пусто", "en": "Empty"},
    "funnel.proposed": {"ru": "Предложено: → {stage}", "en": "Proposed: → {stage}"},
    "funnel.closed": {"ru": "Закрытые", "en": "Closed"},
    "funnel.qualify": {"ru": "Квалификация", "en": "Qualify"},
    "funnel.members": {"ru": "вовлечено {n}", "en": "{n} engaged"},
    "funnel.close_on": {"ru": "закрытие {date}", "en": "closes {date}"},
    "funnel.by_rules": {"ru": "правила", "en": "rules"},
    "funnel.by_person": {"ru": "человек", "en": "person"},
    "funnel.by_crm": {"ru": "CRM", "en": "CRM"},
    "q.title": {"ru": "Квалификация: {name}", "en": "Qualification: {name}"},
    "q.back": {"ru": "← К воронке", "en": "← Back to the funnel"},
    "q.open_opportunity": {"ru": "Группа закупки →", "en": "Buying group →"},
    "q.stage": {"ru": "Стадия", "en": "Stage"},
    "q.criteria": {"ru": "Критерии выхода из стадии", "en": "Exit criteria of the stage"},
    "q.criteria_none": {"ru": "У этой стадии нет критериев: дальше двигают люди или CRM.",
                        "en": "This stage has no criteria: people or the CRM move it on."},
    "q.holds": {"ru": "выполнен", "en": "holds"},
    "q.not_yet": {"ru": "не выполнен", "en": "not yet"},
    "q.since": {"ru": "с {at}", "en": "since {at}"},
    "q.derived": {"ru": "из группы закупки", "en": "derived"},
    "q.by_person": {"ru": "отмечает человек", "en": "set by a person"},
    "q.history": {"ru": "История стадий", "en": "Stage history"},
    "q.history_empty": {"ru": "Стадия ещё не менялась.", "en": "The stage has not changed yet."},
    "q.when": {"ru": "Когда", "en": "When"},
    "q.move": {"ru": "Переход", "en": "Move"},
    "q.who": {"ru": "Кто", "en": "Who"},
    "q.why": {"ru": "Почему", "en": "Why"},
    "q.engaged_at": {"ru": "Вовлечено при переходе", "en": "Engaged at the move"},
    "q.team": {"ru": "Команда продавца", "en": "The seller's team"},
    "q.alerts_to": {"ru": "Оповещения получают: {who}", "en": "Alerts go to: {who}"},
    "q.nobody": {"ru": "никто", "en": "nobody"},
    "q.deal": {"ru": "Сделка", "en": "Deal"},
    "q.amount": {"ru": "Сумма", "en": "Amount"},
    "q.currency": {"ru": "Валюта", "en": "Currency"},
    "q.expected_close": {"ru": "Ожидаемое закрытие", "en": "Expected close"},
    "q.form_stage": {"ru": "Перевести на стадию", "en": "Move to a stage"},
    "q.form_mark": {"ru": "Отметить критерий", "en": "Mark a criterion"},
    "q.form_team": {"ru": "Назначить в команду", "en": "Assign to the team"},
    "q.form_deal": {"ru": "Условия сделки", "en": "Deal terms"},
    "q.your_name": {"ru": "Вы (имя или почта)", "en": "You (name or email)"},
    "q.reason": {"ru": "Причина", "en": "Reason"},
    "q.evidence": {"ru": "Подтверждение", "en": "Evidence"},
    "q.criterion": {"ru": "Критерий", "en": "Criterion"},
    "q.holds_yes": {"ru": "выполнен", "en": "holds"},
    "q.holds_no": {"ru": "не выполнен", "en": "does not hold"},
    "q.role": {"ru": "Роль", "en": "Role"},
    "q.person": {"ru": "Сотрудник", "en": "Person"},
    "q.save": {"ru": "Сохранить", "en": "Save"},
    "q.result.applied": {"ru": "Готово: изменение применено.", "en": "Done: the change is applied."},
    "q.result.stale": {"ru": "Не применено: уже есть более позднее изменение. Оно сохранено в истории.",
                       "en": "Not applied: a later change holds. It is kept in the history."},
    "q.result.duplicate": {"ru": "Это изменение уже было.", "en": "This change was made before."},
    "q.result.pending": {"ru": "Отправлено, ещё не видно: обновите страницу.",
                         "en": "Sent, not visible yet: reload the page."},
    "q.result.invalid": {"ru": "Не сохранено: {message}", "en": "Not saved: {message}"},
    "q.write_denied": {"ru": "Менять квалификацию может только токен CRM (BG_API_WRITE_TOKENS).",
                       "en": "Only a CRM token (BG_API_WRITE_TOKENS) may change the qualification."},
    "fc.title": {"ru": "Прогноз по возможностям", "en": "Forecast from opportunities"},
    "fc.lead": {"ru": "Сумма × вероятность стадии × здоровье группы закупки, по ожидаемой дате закрытия; "
                      "рядом — прогноз по числу лидов на тех же данных.",
                "en": "Amount × stage probability × buying-group health, by expected close date; next to it, "
                      "what a lead count says on the same data."},
    "fc.period": {"ru": "Период", "en": "Period"},
    "fc.month": {"ru": "месяц", "en": "month"},
    "fc.quarter": {"ru": "квартал", "en": "quarter"},
    "fc.by": {"ru": "Разрез", "en": "By"},
    "fc.by.none": {"ru": "без разреза", "en": "total"},
    "fc.by.member": {"ru": "менеджер", "en": "team member"},
    "fc.by.solution": {"ru": "решение", "en": "solution"},
    "fc.by.stage": {"ru": "стадия", "en": "stage"},
    "fc.pipeline": {"ru": "Воронка (сумма)", "en": "Pipeline"},
    "fc.weighted": {"ru": "Взвешенный", "en": "Weighted"},
    "fc.adjusted": {"ru": "С учётом здоровья группы", "en": "Adjusted by group health"},
    "fc.lead_count": {"ru": "По числу лидов", "en": "Lead count"},
    "fc.plot": {"ru": "Прогноз по периодам, млн", "en": "Forecast per period, millions"},
    "fc.lines": {"ru": "Строки прогноза", "en": "Forecast lines"},
    "fc.deals": {"ru": "Сделки и почему у них такой вес", "en": "Deals and why they weigh what they do"},
    "fc.deals_n": {"ru": "Сделок", "en": "Deals"},
    "fc.group": {"ru": "Группа", "en": "Group"},
    "fc.health": {"ru": "Здоровье", "en": "Health"},
    "fc.why": {"ru": "требуемые роли {covered}/{required}; вовлечено {engaged} при ориентире {benchmark}",
               "en": "required roles {covered}/{required}; {engaged} engaged vs {benchmark} expected"},
    "fc.lead_model": {"ru": "Модель лидов: {leads} лидов, {won} выигранных, конверсия {conversion}, "
                            "средняя сделка {amount}, цикл {cycle} дн.",
                      "en": "Lead model: {leads} leads, {won} won, conversion {conversion}, average deal {amount}, "
                            "cycle {cycle} days."},
    "fc.lead_model_none": {"ru": "Прогноз по лидам: выигранных сделок ещё нет, учиться не на чем.",
                           "en": "Lead count: no won deal yet, nothing to learn from."},
    "fc.empty": {"ru": "Нет открытых сделок.", "en": "No open deals."},
    "fc.undated": {"ru": "без даты", "en": "undated"},
    "an.title": {"ru": "Аналитика воронки", "en": "Funnel analytics"},
    "an.lead": {"ru": "Время в стадиях, конверсия, длина цикла, вовлечённость при переходах, застревание и "
                      "уроки выигранных сделок.",
                "en": "Time in stage, conversion, cycle length, engagement at each move, stalling and lessons "
                      "from won deals."},
    "an.time_in_stage": {"ru": "Дней в стадии (медиана)", "en": "Days in stage (median)"},
    "an.conversion": {"ru": "Конверсия в следующую стадию", "en": "Conversion to the next stage"},
    "an.cycle": {"ru": "Длина цикла, дней", "en": "Cycle length, days"},
    "an.cycle_won": {"ru": "выиграны: {n} шт., среднее {mean}, медиана {median}",
                     "en": "won: {n}, mean {mean}, median {median}"},
    "an.cycle_lost": {"ru": "проиграны: {n} шт., среднее {mean}, медиана {median}",
                      "en": "lost: {n}, mean {mean}, median {median}"},
    "an.engaged": {"ru": "Вовлечённых участников в момент перехода", "en": "Engaged members at the move"},
    "an.engaged_lead": {"ru": "Записано при каждом переходе; ориентир 2,5 / 4,2 / 6,3.",
                        "en": "Recorded at each move; benchmark 2.5 / 4.2 / 6.3."},
    "an.stalled": {"ru": "Доля застрявших по стадиям", "en": "Stalled share per stage"},
    "an.finance": {"ru": "Финансы вовлечены в первые {days} дней?", "en": "Finance engaged within {days} days?"},
    "an.cohort.early": {"ru": "рано", "en": "early"},
    "an.cohort.late": {"ru": "позже", "en": "later"},
    "an.cohort.never": {"ru": "не вовлечены", "en": "never"},
    "an.win_rate": {"ru": "Доля выигранных", "en": "Win rate"},
    "an.won_cycle": {"ru": "Цикл выигранных, дней", "en": "Cycle of won deals, days"},
    "an.closed": {"ru": "закрыто", "en": "closed"},
    "an.content": {"ru": "Что изучали роли в выигранных группах", "en": "What each role consumed in won groups"},
    "an.content_col": {"ru": "Материал", "en": "Content"},
    "an.touches": {"ru": "Касаний", "en": "Touches"},
    "an.won_opps": {"ru": "Выигранных групп", "en": "Won groups"},
    "an.no_data": {"ru": "Пока нет данных.", "en": "No data yet."},
}


class FunnelTranslator(Translator):
    """i18n.Translator with this module's keys and the funnel's own names."""

    def __init__(self, lang: str | None, funnel: Funnel) -> None:
        super().__init__(lang)
        self.funnel = funnel

    def __call__(self, key: str, **values: object) -> str:
        entry = FUNNEL_TEXT.get(key)
        if entry is None:
            return super().__call__(key, **values)
        return entry[self.lang].format(**values) if values else entry[self.lang]

    def stage(self, code: str | None) -> str:
        found = self.funnel.by_code.get(code or "")
        return found.name(self.lang) if found else self.value("stage", code)

    def criterion(self, code: str) -> str:
        found = self.funnel.criteria.get(code)
        return found.name(self.lang) if found else code

    def team_role(self, code: str) -> str:
        found = next((r for r in self.funnel.team.roles if r.code == code), None)
        return found.name(self.lang) if found else code
