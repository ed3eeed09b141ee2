"""A synthetic B2B market with ground truth, in the platforms' own formats.

    python -m demo.market --accounts 60 --months 3 --seed 7 --out /tmp/market

writes `events.jsonl` (one request a line: platform, body, at; in event-time order) and
`truth.json` (every person's true account, department and role; every true buying group with
its members, the time it started and the time it formed, and its deal: won, lost or open, the
amount and close date, and the amount and expected close date the CRM was told; which
accounts are noise).

The market, per account (the shares are drawn from the seed):
- buyers: a real buying group (planned size 4-13, several departments) forms on one of the
  catalog's solutions (hr, wms, crm, bi), grows, stalls or buys; a fifth of them start a
  second group on another solution, sharing their executive and finance people;
- lone researchers: one person, sometimes very active, never a group;
- small teams: two people from two departments, or three from one department (hard negatives:
  they miss the formation definition);
- competitors: one or two people, mostly on free mail, reading across solutions;
and, besides the accounts, students on free mail (some naming their university) and anonymous
visitors that are never identified.

Realism the system has to cope with: visits before a form fill are anonymous and identified
later by a Segment identify; some buyers write from free mail and spell their company
differently (ООО «Ромашка», Romashka LLC, OOO Romashka in another transliteration, ромашка,
«Pомашкa» with Latin look-alike letters); some companies are numbered (Кварцмонтаж-31) and a
sibling of the same stem (Кварцмонтаж-32) is another company; some corporate mail comes from subdomains
(hr.company.ru); job titles are Russian or English, in any case, some abbreviated, some absent;
emails are delivered to everyone known, opened by some, clicked by fewer.

Definition used by the truth (the same as the scoring service's default): a group FORMED at the
event time of the first engaged touch at which the window [t - 21 days, t] holds touches of
>= 3 distinct members from >= 2 departments on the group's solution. Engaged touches are every
solution touch except an email delivery; anonymous visits count at their own time once the
visitor is identified (a visitor never identified counts for nothing). A group STARTED at the
first engaged touch of any member.

Event time only: the clock starts at 2026-09-01 00:00 UTC; the same seed gives the same bytes.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from demo.payloads import (
    Request,
    iso,
    segment_identify,
    segment_page,
    segment_track,
    sendgrid,
    zoom_joined,
    zoom_registration,
)
from shared.schemas.roles import BuyingRole, Department

START = datetime(2026, 9, 1, tzinfo=UTC)
SITE = "https://vendor.example"
FREE_MAIL = ("gmail.com", "mail.ru", "yandex.ru")
SOLUTIONS = ("hr", "wms", "crm", "bi")
FORMATION_PEOPLE = 3
FORMATION_DEPARTMENTS = 2
FORMATION_WINDOW = timedelta(days=21)
# A typical deal of a six-person group, in roubles, per solution (the deals of the truth).
DEAL_BASE = {"hr": 1_200_000, "wms": 3_000_000, "crm": 1_500_000, "bi": 2_000_000}

D, R = Department, BuyingRole

# ---------------------------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------------------------

_TRANSLIT = dict(zip(
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
    ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p", "r", "s", "t", "u",
     "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "yu", "ya"], strict=True))


# Another common way of writing Russian in Latin letters (passport-like, ICAO Doc 9303 and GOST
# mixed): what a person on free mail may type when the company writes itself differently.
_TRANSLIT_ALT = {**_TRANSLIT, "й": "i", "х": "h", "ц": "c", "щ": "sch", "ы": "i", "ю": "iu", "я": "ia",
                 "ж": "j"}
# Latin letters drawn like Cyrillic ones: typed by mistake in a Cyrillic word (a keyboard layout
# switched mid-word, a name pasted from a Latin source).
_LOOKALIKE = {"а": "a", "о": "o", "е": "e", "с": "c", "р": "p", "у": "y", "х": "x", "А": "A", "О": "O",
              "Е": "E", "С": "C", "Р": "P", "К": "K", "М": "M", "Т": "T", "Н": "H", "В": "B"}


def translit(text: str, table: dict[str, str] = _TRANSLIT) -> str:
    out = []
    for ch in text:
        low = ch.lower()
        latin = table.get(low, ch)
        out.append(latin.capitalize() if ch != low and latin else latin)
    return "".join(out)


MALE = ["Александр", "Алексей", "Андрей", "Антон", "Артём", "Борис", "Вадим", "Виктор", "Владимир", "Глеб",
        "Дмитрий", "Евгений", "Егор", "Иван", "Игорь", "Кирилл", "Константин", "Максим", "Михаил", "Никита",
        "Николай", "Олег", "Павел", "Пётр", "Роман", "Сергей", "Станислав", "Тимур", "Фёдор", "Юрий"]
FEMALE = ["Алина", "Анастасия", "Анна", "Валерия", "Вера", "Виктория", "Дарья", "Екатерина", "Елена", "Жанна",
          "Ирина", "Карина", "Ксения", "Лариса", "Людмила", "Марина", "Мария", "Надежда", "Наталья", "Нина",
          "Оксана", "Ольга", "Полина", "Светлана", "София", "Татьяна", "Ульяна", "Юлия", "Яна", "Элина"]
SURNAMES = ["Соколов", "Волков", "Петров", "Михайлов", "Кузнецов", "Орлов", "Белов", "Зайцев", "Смирнов",
            "Иванов", "Попов", "Лебедев", "Козлов", "Новиков", "Морозов", "Павлов", "Семёнов", "Голубев",
            "Виноградов", "Богданов", "Воробьёв", "Фёдоров", "Миронов", "Тарасов", "Беляев", "Комаров",
            "Киселёв", "Макаров", "Андреев", "Ковалёв", "Ильин", "Гусев", "Титов", "Кудрявцев", "Баранов",
            "Куликов", "Алексеев", "Степанов", "Яковлев", "Сорокин", "Никитин", "Захаров", "Зуев", "Калинин",
            "Романов", "Крылов", "Максимов", "Поляков", "Борисов", "Медведев", "Ершов", "Щербаков", "Жуков",
            "Данилов", "Фомин", "Давыдов", "Мельников", "Чернов", "Карпов", "Афанасьев", "Власов", "Маслов",
            "Исаев", "Тихонов", "Аксенов", "Гаврилов", "Родионов", "Котов", "Горбунов", "Кулагин", "Вишневский",
            "Островский", "Луговской", "Рыбин", "Одинцов", "Шубин", "Лапин", "Ефимов", "Панов", "Блинов"]


def _female_surname(surname: str) -> str:
    if surname.endswith("ский"):
        return surname[:-2] + "ая"
    if surname.endswith(("ов", "ев", "ёв", "ин")):
        return surname + "а"
    return surname


# Company names: compounds (Сибтрубпром) and adjective + noun pairs (Северная гавань), agreeing in gender.
_STEMS = ["Урал", "Сиб", "Волго", "Нева", "Северо", "Балт", "Дон", "Кама", "Амур", "Алтай", "Енисей", "Ока",
          "Байкал", "Восток", "Прим", "Вятка", "Тула", "Печора", "Ангара", "Кубань"]
_ENDINGS = ["трубпром", "снаб", "строй", "торг", "маш", "металл", "агро", "хим", "энерго", "лес", "транс",
            "фарм", "мед", "пищепром", "текстиль", "нефтегаз", "электро", "пласт", "стекло", "логистика"]
_ADJ = {"m": ["Северный", "Белый", "Золотой", "Новый", "Первый", "Южный", "Зелёный", "Синий", "Тёплый",
              "Восточный", "Янтарный", "Серебряный"],
        "f": ["Северная", "Белая", "Золотая", "Новая", "Первая", "Южная", "Зелёная", "Синяя", "Тёплая",
              "Восточная", "Янтарная", "Серебряная"]}
_NOUNS = {"m": ["берег", "ключ", "мост", "парус", "маяк", "луч", "кедр", "бор", "порт", "квадрат"],
          "f": ["звезда", "гавань", "линия", "долина", "река", "роща", "волна", "вершина", "мельница", "слобода"]}
_EN_A = ["Nordic", "Bright", "Blue", "Prime", "Smart", "Global", "Urban", "Green", "Silver", "Polar", "Baltic",
         "Summit"]
_EN_B = ["Logistics", "Retail", "Foods", "Systems", "Pharma", "Motors", "Textiles", "Energy", "Trade", "Labs",
         "Distribution", "Industries"]
_COMPETITORS = [("HRsoft", "hrsoft.ru"), ("СкладПро", "skladpro.ru"), ("Продажи Онлайн", "prodazhi-online.ru"),
                ("Аналитикс", "analitiks.ru"), ("Кадры Плюс", "kadry-plus.ru"), ("Логистик Софт", "logistik-soft.ru"),
                ("DataVision", "datavision.io"), ("CRM Мастер", "crm-master.ru")]
_UNIVERSITIES = [("МГУ им. М. В. Ломоносова", "msu.ru"), ("НИУ ВШЭ", "hse.ru"), ("СПбГУ", "spbu.ru"),
                 ("МГТУ им. Н. Э. Баумана", "bmstu.ru"), ("РАНХиГС", "ranepa.ru"), ("УрФУ", "urfu.ru")]
_LEGAL = [("ООО", 60), ("АО", 25), ("ПАО", 8), ("ЗАО", 7)]

# Job titles by department and seniority. The truth role follows the group profiles of
# services/grouping/config/profiles.yaml (executives decide, finance heads hold the budget, IT
# validates, the function that feels the solution's pain initiates, others influence): see true_role().
_TITLES: dict[tuple[Department, bool], list[str]] = {
    (D.hr, True): ["Директор по персоналу", "HR-директор", "Руководитель отдела кадров", "Начальник отдела кадров",
                   "Head of HR", "HR Director", "Head of People", "CHRO", "Руководитель службы персонала",
                   "нач. отдела кадров"],
    (D.hr, False): ["HR-менеджер", "Менеджер по персоналу", "Специалист по кадрам",
                    "Специалист по подбору персонала", "HR business partner", "HR Manager", "Recruiter",
                    "Инспектор отдела кадров", "Специалист по кадровому делопроизводству",
                    "Менеджер по обучению персонала"],
    (D.it, True): ["IT-директор", "ИТ-директор", "Директор по информационным технологиям", "CIO", "CTO",
                   "Руководитель ИТ-отдела", "Head of IT", "Начальник отдела ИТ", "IT Director",
                   "Руководитель отдела информационной безопасности"],
    (D.it, False): ["Системный администратор", "Ведущий программист 1С", "Архитектор корпоративных систем",
                    "Системный аналитик", "Руководитель группы интеграции", "DevOps engineer", "IT Manager",
                    "Software Architect", "Инженер технической поддержки", "Разработчик"],
    (D.finance, True): ["Финансовый директор", "CFO", "Главный бухгалтер", "Finance Director",
                        "Директор по экономике и финансам", "Head of FP&A", "Начальник финансового отдела",
                        "Фин. директор", "Chief Financial Officer"],
    (D.finance, False): ["Бухгалтер", "Экономист", "Финансовый аналитик", "Бухгалтер по расчёту заработной платы",
                         "Financial Analyst", "Accountant", "Ведущий экономист"],
    (D.executive, True): ["Генеральный директор", "CEO", "Управляющий директор", "Исполнительный директор",
                          "Заместитель генерального директора", "Managing Director", "COO",
                          "Операционный директор", "Ген. директор", "General Manager", "Founder & CEO"],
    (D.procurement, True): ["Руководитель отдела закупок", "Head of Procurement", "Начальник отдела снабжения",
                            "Procurement Director"],
    (D.procurement, False): ["Специалист по закупкам", "Менеджер по закупкам", "Procurement Manager",
                             "Тендерный специалист", "Purchasing Manager"],
    (D.legal, True): ["Начальник юридического отдела", "Head of Legal", "Ведущий юрист", "Legal Counsel"],
    (D.legal, False): ["Юрист", "Юрисконсульт", "Специалист по комплаенсу", "Compliance Officer"],
    (D.operations, True): ["Директор по логистике", "Начальник склада", "Руководитель складского комплекса",
                           "Head of Logistics", "Supply Chain Director", "Директор по цепям поставок",
                           "Директор по производству"],
    (D.operations, False): ["Логист", "Кладовщик", "Менеджер по логистике", "Warehouse Manager",
                            "Специалист по логистике", "Диспетчер склада", "Logistics Coordinator"],
    (D.sales, True): ["Коммерческий директор", "Руководитель отдела продаж", "Head of Sales", "Sales Director",
                      "Директор по продажам", "Руководитель направления продаж"],
    (D.sales, False): ["Менеджер по продажам", "Key Account Manager", "Account Manager",
                       "Менеджер по работе с клиентами", "Sales Manager", "Ведущий менеджер по продажам"],
    (D.marketing, True): ["Директор по маркетингу", "CMO", "Head of Marketing", "Руководитель отдела маркетинга",
                          "Marketing Director"],
    (D.marketing, False): ["Маркетолог", "Менеджер по маркетингу", "Marketing Manager", "Интернет-маркетолог",
                           "Бренд-менеджер"],
    (D.other, False): ["Руководитель проектов", "Project Manager", "Бизнес-аналитик", "Менеджер проектов",
                       "Business Analyst"],
}
_STUDENT_TITLES = ["Студент", "Student", "студентка 4 курса", "Магистрант", "Аспирант"]
_COMPETITOR_TITLES = ["Product Manager", "Менеджер продукта", "Аналитик рынка", "Маркетолог-аналитик",
                      "Пресейл-инженер", "Product Marketing Manager"]

_DEPARTMENT_ROLE = {D.hr: R.influencer, D.it: R.technical_validator, D.executive: R.decision_maker,
                    D.procurement: R.procurement, D.legal: R.legal, D.operations: R.influencer,
                    D.sales: R.influencer, D.marketing: R.influencer, D.other: R.influencer}


# Who initiates which solution (services/grouping/config/profiles.yaml, `roles`): the function
# that feels the pain; the other business functions only influence that solution's purchase.
_INITIATORS = {"hr": {D.hr}, "wms": {D.operations}, "crm": {D.sales, D.marketing},
               "bi": {D.sales, D.marketing, D.operations}}


def true_role(department: Department, senior: bool, solution: str) -> BuyingRole:
    if department is D.finance:
        return R.budget_holder if senior else R.influencer
    if department in _INITIATORS[solution]:
        return R.initiator
    return _DEPARTMENT_ROLE[department]


# Who a group on each solution brings in, in the order they usually join. The first two are
# from different departments, so every group of two or more spans two departments; procurement
# and legal come late (they join when a purchase is near).
_ROSTERS: dict[str, list[tuple[Department, bool]]] = {
    "hr": [(D.hr, True), (D.it, True), (D.finance, True), (D.executive, True), (D.hr, False), (D.finance, False),
           (D.it, False), (D.hr, False), (D.other, False), (D.operations, True), (D.it, False),
           (D.procurement, False), (D.legal, False)],
    "wms": [(D.operations, True), (D.it, True), (D.finance, True), (D.operations, False), (D.executive, True),
            (D.it, False), (D.operations, False), (D.finance, False), (D.sales, True), (D.other, False),
            (D.it, False), (D.procurement, True), (D.legal, False)],
    "crm": [(D.sales, True), (D.it, True), (D.marketing, True), (D.sales, False), (D.finance, True),
            (D.executive, True), (D.sales, False), (D.it, False), (D.marketing, False), (D.other, False),
            (D.sales, False), (D.procurement, False), (D.legal, True)],
    "bi": [(D.finance, True), (D.it, True), (D.executive, True), (D.sales, True), (D.finance, False),
           (D.it, False), (D.marketing, True), (D.operations, True), (D.other, False), (D.it, False),
           (D.finance, False), (D.procurement, False), (D.legal, False)],
}
_LATE = (D.procurement, D.legal)


# ---------------------------------------------------------------------------------------------
# The vendor's content (it matches the shipped catalog: /solutions/<slug>/..., asset ids
# prefixed with the slug, webinar topics and titles with the catalog's keywords)
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Content:
    pages: tuple[tuple[str, str], ...]  # (path under /solutions/<slug>/, title)
    pages_en: tuple[tuple[str, str], ...]
    technical: tuple[tuple[str, str], ...]
    commercial: tuple[tuple[str, str], ...]
    legal: tuple[tuple[str, str], ...]
    assets: dict[str, tuple[tuple[str, str], ...]]  # audience -> (asset id, Segment track event)
    webinars: tuple[str, ...]
    technical_webinar: str
    emails: tuple[tuple[str, str, str], ...]  # (subject, asset id, page it links to)
    conference: str


def _assets(slug: str, general: Iterable[tuple[str, str]]) -> dict[str, tuple[tuple[str, str], ...]]:
    return {
        "general": tuple((f"{slug}-{a}", e) for a, e in general),
        "finance": ((f"{slug}-roi-case-study", "Case Study Downloaded"), (f"{slug}-tco-whitepaper",
                                                                          "Whitepaper Downloaded")),
        "technical": ((f"{slug}-integration-guide", "Whitepaper Downloaded"),
                      (f"{slug}-security-whitepaper", "Whitepaper Downloaded")),
        "procurement": ((f"{slug}-tender-requirements", "Document Downloaded"),),
        "legal": ((f"{slug}-contract-template", "Document Downloaded"),),
    }


CONTENT: dict[str, Content] = {
    "hr": Content(
        pages=(("overview", "HR-система: обзор возможностей"), ("leave-automation", "Автоматизация отпусков"),
               ("recruiting", "Подбор персонала и онбординг"), ("hr-edo", "Кадровый ЭДО для сотрудников"),
               ("payroll", "Расчёт зарплаты и табель"), ("cases", "Кейсы внедрения HR-системы"),
               ("comparison", "Сравнение HR-систем")),
        pages_en=(("overview", "HR system overview"), ("recruiting", "Recruiting and onboarding"),
                  ("cases", "HR system customer stories")),
        technical=(("integrations/api", "HR-система: API и интеграция с 1С"),
                   ("integrations/1c-zup", "HR-система: интеграция с 1С:ЗУП"),
                   ("security", "HR-система: безопасность персональных данных"),
                   ("docs/sso", "HR-система: документация по SSO")),
        commercial=(("pricing", "HR-система: тарифы"), ("roi-calculator", "HR-система: калькулятор окупаемости")),
        legal=(("compliance", "HR-система: соответствие 152-ФЗ"), ("contract", "HR-система: договор и SLA")),
        assets=_assets("hr", (("leave-automation-brochure", "Brochure Downloaded"),
                              ("onboarding-checklist", "Checklist Downloaded"),
                              ("edo-guide", "Whitepaper Downloaded"))),
        webinars=("Кадровый ЭДО: переход без бумаги", "Автоматизация кадрового учёта: опыт клиентов",
                  "HR-технологии: онбординг и оценка персонала"),
        technical_webinar="Интеграция HR-системы с 1С и ИТ-ландшафтом",
        emails=(("Как сократить время на кадровые документы", "hr-nurture-edo", "hr-edo"),
                ("ROI HR-системы: кейс производственной компании", "hr-roi-case-study", "cases"),
                ("Приглашение на вебинар о кадровом ЭДО", "hr-webinar-invite", "overview")),
        conference="HR Tech Forum 2026",
    ),
    "wms": Content(
        pages=(("overview", "WMS: обзор системы управления складом"), ("address-storage", "Адресное хранение"),
               ("inventory", "Инвентаризация без остановки склада"), ("picking", "Комплектация и отгрузка"),
               ("tsd", "Работа с ТСД на складе"), ("cases", "Кейсы внедрения WMS"),
               ("comparison", "Сравнение WMS-систем")),
        pages_en=(("overview", "Warehouse management system overview"), ("picking", "Order picking and shipping"),
                  ("cases", "WMS customer stories")),
        technical=(("integrations/api", "WMS: API и интеграция с 1С"), ("integrations/erp", "WMS: интеграция с ERP"),
                   ("security", "WMS: безопасность и отказоустойчивость"),
                   ("docs/hardware", "WMS: документация по оборудованию")),
        commercial=(("pricing", "WMS: тарифы и лицензии"), ("roi-calculator", "WMS: калькулятор окупаемости")),
        legal=(("compliance", "WMS: требования маркировки"), ("contract", "WMS: договор и SLA")),
        assets=_assets("wms", (("address-storage-brochure", "Brochure Downloaded"),
                               ("inventory-checklist", "Checklist Downloaded"),
                               ("fulfillment-guide", "Whitepaper Downloaded"))),
        webinars=("Цифровой склад: адресное хранение за месяц", "Складская логистика без ошибок комплектации",
                  "Инвентаризация склада с ТСД"),
        technical_webinar="Интеграция WMS с 1С и ERP",
        emails=(("Как ускорить отгрузку на складе", "wms-nurture-picking", "picking"),
                ("ROI WMS: кейс дистрибьютора", "wms-roi-case-study", "cases"),
                ("Приглашение на вебинар «Цифровой склад»", "wms-webinar-invite", "overview")),
        conference="Форум «Цифровой склад» 2026",
    ),
    "crm": Content(
        pages=(("overview", "CRM: обзор возможностей"), ("sales-pipeline", "Воронка продаж и сделки"),
               ("leads", "Лидогенерация и работа с заявками"), ("customer-base", "Единая клиентская база"),
               ("sales-team", "CRM для отдела продаж"), ("cases", "Кейсы внедрения CRM"),
               ("comparison", "Сравнение CRM-систем")),
        pages_en=(("overview", "CRM overview"), ("sales-pipeline", "Sales pipeline management"),
                  ("cases", "CRM customer stories")),
        technical=(("integrations/api", "CRM: API и интеграция с телефонией"),
                   ("integrations/email", "CRM: интеграция с почтой"),
                   ("security", "CRM: безопасность и права доступа"),
                   ("docs/webhooks", "CRM: документация по вебхукам")),
        commercial=(("pricing", "CRM: тарифы"), ("roi-calculator", "CRM: калькулятор окупаемости")),
        legal=(("compliance", "CRM: персональные данные и 152-ФЗ"), ("contract", "CRM: договор и SLA")),
        assets=_assets("crm", (("sales-playbook", "Whitepaper Downloaded"),
                               ("pipeline-checklist", "Checklist Downloaded"),
                               ("b2b-guide", "Brochure Downloaded"))),
        webinars=("Воронка продаж под контролем: CRM для B2B", "Управление продажами в CRM: опыт клиентов",
                  "CRM для отдела продаж: быстрый старт"),
        technical_webinar="Интеграция CRM с телефонией и 1С",
        emails=(("Как не терять сделки: воронка продаж в CRM", "crm-nurture-pipeline", "sales-pipeline"),
                ("ROI CRM: кейс B2B-дистрибьютора", "crm-roi-case-study", "cases"),
                ("Приглашение на вебинар «Воронка продаж под контролем»", "crm-webinar-invite", "overview")),
        conference="Форум «Управление продажами» 2026",
    ),
    "bi": Content(
        pages=(("overview", "BI-аналитика: обзор"), ("dashboards", "Дашборды для руководителя"),
               ("management-reporting", "Управленческая отчётность за минуты"),
               ("data-warehouse", "Хранилище данных и OLAP"), ("kpi", "KPI компании на одном экране"),
               ("cases", "Кейсы внедрения BI"), ("comparison", "Сравнение BI-платформ")),
        pages_en=(("overview", "BI analytics overview"), ("dashboards", "Executive dashboards"),
                  ("cases", "BI customer stories")),
        technical=(("integrations/api", "BI: API и подключение источников"), ("integrations/1c", "BI: коннектор к 1С"),
                   ("security", "BI: безопасность и разграничение доступа"), ("docs/sql", "BI: документация по SQL")),
        commercial=(("pricing", "BI: тарифы"), ("roi-calculator", "BI: калькулятор окупаемости")),
        legal=(("compliance", "BI: хранение данных и 152-ФЗ"), ("contract", "BI: договор и SLA")),
        assets=_assets("bi", (("dashboards-brochure", "Brochure Downloaded"),
                              ("kpi-checklist", "Checklist Downloaded"),
                              ("data-driven-guide", "Whitepaper Downloaded"))),
        webinars=("Аналитика для руководителя: дашборды за неделю", "Data-driven управление: KPI и отчётность",
                  "BI для финансовой службы"),
        technical_webinar="Подключение 1С и ERP к BI",
        emails=(("Дашборды для руководителя за неделю", "bi-nurture-dashboards", "dashboards"),
                ("ROI BI: кейс розничной сети", "bi-roi-case-study", "cases"),
                ("Приглашение на вебинар «Аналитика для руководителя»", "bi-webinar-invite", "overview")),
        conference="Data-driven управление: конференция 2026",
    ),
}
NEUTRAL_PAGES = (("/", "Vendor: решения для бизнеса"), ("/about", "О компании"), ("/contacts", "Контакты"),
                 ("/careers", "Вакансии"), ("/solutions", "Решения"))
NEWSLETTER = "Дайджест vendor.example: новости и события месяца"

# What each department does on the site: action -> weight (see Market._session).
_HABITS: dict[str, dict[str, float]] = {
    "user": {"browse": 0.68, "download": 0.12, "webinar": 0.15, "neutral": 0.05},
    "it": {"technical": 0.68, "download": 0.12, "webinar": 0.15, "neutral": 0.05},
    "finance": {"commercial": 0.5, "download": 0.25, "browse": 0.2, "webinar": 0.05},
    "executive": {"browse": 0.55, "download": 0.12, "conference": 0.18, "webinar": 0.1, "neutral": 0.05},
    "procurement": {"commercial": 0.7, "download": 0.3},
    "legal": {"legal": 0.7, "download": 0.3},
    "other": {"browse": 0.7, "webinar": 0.3},
}
_AUDIENCE = {D.it: "technical", D.finance: "finance", D.procurement: "procurement", D.legal: "legal"}


def _habit(department: Department | None) -> str:
    return {D.it: "it", D.finance: "finance", D.executive: "executive", D.procurement: "procurement",
            D.legal: "legal", D.other: "other"}.get(department, "user")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Formation (the definition the truth uses; pure, so tests can check it on hand-made touches)
# ---------------------------------------------------------------------------------------------

def formation(touches: Iterable[tuple[datetime, str, str]], people: int = FORMATION_PEOPLE,
              departments: int = FORMATION_DEPARTMENTS,
              window: timedelta = FORMATION_WINDOW) -> tuple[datetime, tuple[str, ...]] | None:
    """The first (time, people in the window) at which touches (time, person, department) in
    [t - window, t] come from >= `people` distinct people of >= `departments` departments."""
    ordered = sorted(touches)
    start = 0
    for end, (at, _, _) in enumerate(ordered):
        while ordered[start][0] < at - window:
            start += 1
        inside = {person: dept for _, person, dept in ordered[start:end + 1]}
        if len(inside) >= people and len(set(inside.values())) >= departments:
            return at, tuple(sorted(inside))
    return None


# ---------------------------------------------------------------------------------------------
# The simulation
# ---------------------------------------------------------------------------------------------

@dataclass
class Company:
    account_id: str  # the registrable domain
    name: str  # without the legal form: "Северная гавань"
    legal: str  # "ООО", or "LLC" for an English-named company
    kind: str  # buyer, lone_researcher, small_team, competitor, university
    english: bool = False
    subdomains: tuple[str, ...] = ()

    @property
    def noise(self) -> bool:
        return self.kind in ("competitor", "university")

    @property
    def display(self) -> str:
        return f"{self.name} {self.legal}" if self.english else f"{self.legal} «{self.name}»"


@dataclass
class Persona:
    email: str
    name: str
    kind: str  # group_member, lone_researcher, small_team, competitor, student
    company: Company | None
    company_as_given: str | None
    title: str | None
    department: Department | None
    role: BuyingRole | None
    english: bool = False
    free_mail: bool = False
    stated_role: str | None = None  # what they answer to Zoom's role_in_purchase_process
    anonymous_id: str | None = None
    known: bool = False  # the simulation has named them (their later requests carry the email)
    identified_at: datetime | None = None  # event time of the first request that carries the email
    pending: list[tuple[datetime, str | None, bool]] = field(default_factory=list)  # anonymous touches
    webinars: list[str] = field(default_factory=list)
    solutions: list[str] = field(default_factory=list)  # solutions the vendor nurtures them about
    quiet_after: dict[str, datetime] = field(default_factory=dict)  # solution -> no engagement after


@dataclass(frozen=True)
class Touch:
    at: datetime
    email: str
    solution: str | None
    engaged: bool


@dataclass
class PlannedGroup:
    group_id: str
    company: Company
    solution: str
    planned_size: int
    outcome: str  # bought, stalled, open
    pace_days: float
    ends: datetime  # no engagement after this (purchase, stall or the end of the period)
    members: list[Persona] = field(default_factory=list)


def add_months(t: datetime, months: int) -> datetime:
    month = t.month - 1 + months
    return t.replace(year=t.year + month // 12, month=month % 12 + 1)


def normalised_email(email: str) -> str:
    """The person id the project uses: lower case, no +tag, Gmail's dots ignored."""
    local, _, domain = email.strip().lower().rpartition("@")
    local = local.split("+", 1)[0] or local
    if domain in ("gmail.com", "googlemail.com"):
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


class Market:
    def __init__(self, accounts: int, months: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.n_accounts, self.months, self.seed = accounts, months, seed
        self.end = add_months(START, months)
        self.days = (self.end - START).total_seconds() / 86400
        self.prefix = f"mk{seed}-{accounts}-{months}"
        self.requests: list[tuple[datetime, int, Request]] = []
        self.touches: list[Touch] = []
        self.people: dict[str, Persona] = {}
        self.companies: list[Company] = []
        self.groups: list[PlannedGroup] = []
        self._ids = 0
        self._names: set[str] = set()
        self._numbered: list[tuple[str, str, str]] = []  # stems of numbered names: (name, legal, domain)
        self._domains: set[str] = {d for _, d in _COMPETITORS} | {d for _, d in _UNIVERSITIES}
        self._webinars = {s: self._schedule(i, s) for i, s in enumerate(SOLUTIONS)}

    # -- helpers --------------------------------------------------------------------------

    def _next_id(self) -> str:
        self._ids += 1
        return f"{self.prefix}-{self._ids:06d}"

    def _pick(self, weights: dict[str, float]) -> str:
        return self.rng.choices(list(weights), weights=list(weights.values()))[0]

    def _day(self, day: float) -> datetime:
        """A working-hours moment of that day (09:00-19:00 Moscow), mostly on a weekday."""
        t = START + timedelta(days=math.floor(day))
        if t.weekday() >= 5 and self.rng.random() < 0.85:
            t += timedelta(days=7 - t.weekday())
        return t + timedelta(seconds=self.rng.randrange(6 * 3600, 16 * 3600))

    def _schedule(self, index: int, solution: str) -> list[tuple[str, datetime, str, bool]]:
        """Webinars: a general one every other Thursday, a technical one every fourth Tuesday."""
        out, content = [], CONTENT[solution]
        first_thursday = START + timedelta(days=(3 - START.weekday()) % 7 + 7 * (index % 2))
        for n in range(int(self.days // 14) + 3):
            at = first_thursday + timedelta(days=14 * n, hours=8)
            out.append((f"8{index}{n:03d}41{self.seed % 1000:03d}", at, content.webinars[n % len(content.webinars)],
                        False))
        first_tuesday = START + timedelta(days=(1 - START.weekday()) % 7 + 7 * index)
        for n in range(int(self.days // 28) + 3):
            out.append((f"8{index}{n:03d}52{self.seed % 1000:03d}", first_tuesday + timedelta(days=28 * n, hours=11),
                        content.technical_webinar, True))
        return sorted(out, key=lambda w: w[1])

    def _at(self, day: float) -> datetime:
        return START + timedelta(seconds=round(day * 86400))

    def _emit(self, request: Request, person: Persona | None, solution: str | None, engaged: bool,
              named: bool = True) -> None:
        """Keep a request of the period; a touch counts for the truth once its person is named."""
        if request.at >= self.end:
            return
        self.requests.append((request.at, len(self.requests), request))
        if person is None:
            return
        if named:
            self._named(person, request.at)
            self.touches.append(Touch(request.at, person.email, solution, engaged))
        else:
            person.pending.append((request.at, solution, engaged))

    def _named(self, person: Persona, at: datetime) -> None:
        person.known = True
        if person.identified_at is None or at < person.identified_at:
            person.identified_at = at

    # -- people ---------------------------------------------------------------------------

    def _company_name(self, english: bool) -> tuple[str, str, str]:
        """(name, legal form, domain), all unique within the market."""
        attempt = 0
        while True:
            if english:
                name = f"{self.rng.choice(_EN_A)} {self.rng.choice(_EN_B)}"
                legal = self.rng.choice(["LLC", "Ltd"])
                domain = name.lower().replace(" ", "-") + ".com"
            elif self.rng.random() < 0.5:
                name = self.rng.choice(_STEMS) + self.rng.choice(_ENDINGS)
                name = name[0] + name[1:].lower()
                legal = self.rng.choices([f for f, _ in _LEGAL], weights=[w for _, w in _LEGAL])[0]
                domain = translit(name).lower() + self.rng.choice([".ru", ".ru", ".ru", ".com"])
            else:
                gender = self.rng.choice(["m", "f"])
                name = f"{self.rng.choice(_ADJ[gender])} {self.rng.choice(_NOUNS[gender])}"
                legal = self.rng.choices([f for f, _ in _LEGAL], weights=[w for _, w in _LEGAL])[0]
                domain = translit(name).lower().replace(" ", "-") + ".ru"
            if attempt >= 50:  # a large market has used the plain names up: regional branches
                number = attempt // 50 + 1
                name, domain = f"{name}-{number}", domain.replace(".", f"{number}.", 1)
            elif not english and self.rng.random() < 0.15:
                # Numbered names are distinct companies (Кварцмонтаж-31 and Кварцмонтаж-32): half
                # of them take the stem of an earlier numbered company, so siblings meet.
                if self._numbered and self.rng.random() < 0.5:
                    name, legal, domain = self.rng.choice(self._numbered)
                number = self.rng.randrange(1, 40)
                self._numbered.append((name, legal, domain))
                name, domain = f"{name}-{number}", domain.replace(".", f"{number}.", 1)
            if name.lower() not in self._names and domain not in self._domains:
                self._names.add(name.lower())
                self._domains.add(domain)
                return name, legal, domain
            attempt += 1

    def _company(self, kind: str) -> Company:
        english = kind != "competitor" and self.rng.random() < 0.15
        name, legal, domain = self._company_name(english)
        subdomains = ()
        if kind == "buyer" and self.rng.random() < 0.3:
            subdomains = tuple(self.rng.sample(["hr", "msk", "spb", "corp", "mail", "ural"], 2))
        company = Company(domain, name, legal, kind, english, subdomains)
        self.companies.append(company)
        return company

    def _spelling(self, company: Company) -> str:
        """How a person writing from free mail names the company: rarely as the company does."""
        name, legal = company.name, company.legal
        if company.english:
            variants = [f"{name}", f"{name.lower()}", f"{name}, {legal}", f"ООО «{name}»"]
        else:
            plain = name.replace("ё", "е").replace("Ё", "Е")
            latin_legal = {"ООО": "LLC", "АО": "JSC", "ПАО": "PJSC", "ЗАО": "CJSC"}[legal]
            variants = [f'{legal} "{name}"', f"{name} {legal}", name.lower(), f"{legal} «{plain}»",
                        f"{translit(name).title()} {latin_legal}", f"«{name}»",
                        f"{translit(legal).upper()} {translit(name, _TRANSLIT_ALT).title()}",
                        f"{legal} «{self._lookalike(name)}»"]
        return self.rng.choice(variants)

    def _lookalike(self, name: str) -> str:
        """The name with one or two Cyrillic letters typed as their Latin look-alikes."""
        places = [i for i, ch in enumerate(name) if ch in _LOOKALIKE]
        chosen = set(self.rng.sample(places, min(len(places), self.rng.choice([1, 2]))))
        return "".join(_LOOKALIKE[ch] if i in chosen else ch for i, ch in enumerate(name))

    def _address(self, first: str, last: str, domain: str, free: bool) -> str:
        f, last_l = translit(first).lower(), translit(last).lower().replace("'", "")
        patterns = ([f"{f}.{last_l}{{n}}", f"{last_l}_{f[0]}{{n}}", f"{f}{last_l}{{n}}"] if free else
                    [f"{f[0]}.{last_l}", f"{last_l}.{f[0]}", f"{f}.{last_l}", f"{f[0]}{last_l}", f"{last_l}"])
        for attempt in range(100):
            local = self.rng.choice(patterns).format(n=self.rng.randrange(70, 100) if free or attempt else "")
            email = f"{local}@{domain}"
            if normalised_email(email) not in self.people:
                return email
        raise RuntimeError("no free email address")

    def _name(self, latin: bool) -> tuple[str, str, str]:
        female = self.rng.random() < 0.45
        first = self.rng.choice(FEMALE if female else MALE)
        last = self.rng.choice(SURNAMES)
        last = _female_surname(last) if female else last
        display = f"{translit(first)} {translit(last)}" if latin else f"{first} {last}"
        return first, last, display

    def _title(self, department: Department, senior: bool, english: bool) -> str:
        pool = _TITLES.get((department, senior)) or _TITLES[(department, not senior)]
        latin = [t for t in pool if t.isascii()]
        title = self.rng.choice(latin) if english and latin and self.rng.random() < 0.8 else self.rng.choice(pool)
        shape = self.rng.random()
        if shape < 0.08:
            return title.lower()
        if shape < 0.11:
            return title.upper()
        return title

    def _person(self, kind: str, company: Company | None, department: Department | None = None,
                senior: bool = False, free: bool = False, title: str | None = None,
                company_as_given: str | None = None, solution: str | None = None) -> Persona:
        english = bool(company and company.english)
        first, last, display = self._name(english)
        if free:
            domain = self.rng.choices(FREE_MAIL, weights=[4, 3, 3])[0]
        elif company and company.subdomains and self.rng.random() < 0.5:
            domain = f"{self.rng.choice(company.subdomains)}.{company.account_id}"
        else:
            domain = company.account_id if company else self.rng.choice(FREE_MAIL)
        role = None
        if department is not None and solution is not None and kind in ("group_member", "lone_researcher",
                                                                        "small_team"):
            role = true_role(department, senior, solution)
            if title is None and self.rng.random() > 0.08:  # some people never tell their title
                title = self._title(department, senior, english)
        if company_as_given is None and company is not None:
            company_as_given = (self._spelling(company) if free else
                                company.display if self.rng.random() < 0.75 else company.name)
        stated = None
        if role in (R.decision_maker, R.technical_validator) and self.rng.random() < 0.3:
            stated = "Decision Maker" if role is R.decision_maker else "Evaluator/Recommender"
        person = Persona(email=self._address(first, last, domain, free), name=display, kind=kind, company=company,
                         company_as_given=company_as_given, title=title, department=department, role=role,
                         english=english or (title is not None and title.isascii() and self.rng.random() < 0.5),
                         free_mail=free, stated_role=stated)
        self.people[normalised_email(person.email)] = person
        return person

    # -- touches --------------------------------------------------------------------------

    def _solution_page(self, person: Persona, solution: str, at: datetime, pool: str) -> None:
        content = CONTENT[solution]
        if pool == "browse" and person.english and self.rng.random() < 0.7:
            path, title = self.rng.choice(content.pages_en)
            url = f"{SITE}/en/solutions/{solution}/{path}"
        else:
            path, title = self.rng.choice({"browse": content.pages, "technical": content.technical,
                                           "commercial": content.commercial, "legal": content.legal}[pool])
            url = f"{SITE}/solutions/{solution}/{path}"
        self._page(person, at, url, title, solution)

    def _page(self, person: Persona, at: datetime, url: str, title: str, solution: str | None) -> None:
        if not person.known:
            self._emit(segment_page(self._next_id(), at, url, title, anonymous_id=person.anonymous_id),
                       person, solution, True, named=False)
        else:
            self._emit(segment_page(self._next_id(), at, url, title, user_id=person.email, email=person.email),
                       person, solution, True)

    def _identify(self, person: Persona, at: datetime) -> None:
        """A form fill: Segment links the visitor's anonymous id to the email, earlier visits included."""
        request = segment_identify(self._next_id(), at, person.email, person.name, person.title,
                                   person.company_as_given, anonymous_id=person.anonymous_id)
        self._emit(request, None, None, False)
        person.known = True
        if at < self.end:
            self._named(person, at)
            self.touches.extend(Touch(when, person.email, s, engaged) for when, s, engaged in person.pending)
            person.pending.clear()

    def _download(self, person: Persona, solution: str, at: datetime, audience: str) -> None:
        if not person.known:  # gated content: the form fill names the person
            self._identify(person, at)
            at += timedelta(seconds=self.rng.randrange(5, 40))
        pool = CONTENT[solution].assets[audience if audience in CONTENT[solution].assets else "general"]
        asset, event = self.rng.choice(pool)
        self._emit(segment_track(self._next_id(), at, event, user_id=person.email, email=person.email, asset_id=asset,
                                 url=f"{SITE}/solutions/{solution}/resources/{asset}"), person, solution, True)

    def _webinar(self, person: Persona, solution: str, at: datetime, technical: bool) -> None:
        upcoming = [w for w in self._webinars[solution] if w[3] == technical and w[1] > at + timedelta(hours=20)]
        if not upcoming or upcoming[0][0] in person.webinars:
            return
        webinar_id, starts, topic, _ = upcoming[0]
        person.webinars.append(webinar_id)
        self._emit(zoom_registration(webinar_id, topic, at, person.email, person.name, person.title,
                                     person.company_as_given, person.stated_role), person, solution, True)
        if self.rng.random() < 0.62 and starts < person.quiet_after.get(solution, self.end):
            joined = starts + timedelta(seconds=self.rng.randrange(0, 900))
            self._emit(zoom_joined(webinar_id, topic, joined, person.email, person.name), person, solution, True)

    def _email(self, person: Persona, at: datetime, solution: str | None, subject: str, asset: str | None,
               landing: str, open_p: float, click_p: float) -> None:
        """A campaign email: delivered to the person, maybe opened, maybe clicked."""
        args = {"subject": subject}
        if asset:
            args["asset_id"] = asset
        if person.title and person.kind != "student":
            args["job_title"] = person.title
        if person.company_as_given:
            args["company"] = person.company_as_given
        self._emit(sendgrid(self._next_id(), at, person.email, "delivered", **args), person, solution, False)
        if self.rng.random() >= open_p:
            return
        opened = at + timedelta(seconds=self.rng.randrange(300, 3 * 86400))
        self._emit(sendgrid(self._next_id(), opened, person.email, "open", **args), person, solution, True)
        if self.rng.random() < click_p:
            clicked = opened + timedelta(seconds=self.rng.randrange(5, 120))
            self._emit(sendgrid(self._next_id(), clicked, person.email, "click", url=landing + "?utm_source=email",
                                **args), person, solution, True)

    def _solution_email(self, person: Persona, solution: str, at: datetime, open_p: float, click_p: float) -> None:
        subject, asset, page = self.rng.choice(CONTENT[solution].emails)
        self._email(person, at, solution, subject, asset, f"{SITE}/solutions/{solution}/{page}", open_p, click_p)

    def _session(self, person: Persona, solution: str, at: datetime, action: str) -> None:
        """One visit or action; several page views of one visit are minutes apart."""
        if action in ("browse", "technical", "commercial", "legal"):
            if self.rng.random() < 0.12:
                path, title = self.rng.choice(NEUTRAL_PAGES[:3])
                self._page(person, at, SITE + path, title, None)
                at += timedelta(seconds=self.rng.randrange(20, 200))
            for _ in range(self.rng.choice([1, 1, 2, 2, 3, 4])):
                self._solution_page(person, solution, at, action)
                at += timedelta(seconds=self.rng.randrange(30, 400))
        elif action == "download":
            self._download(person, solution, at, _AUDIENCE.get(person.department, "general"))  # type: ignore[arg-type]
        elif action == "webinar":
            self._webinar(person, solution, at, person.department is D.it)
        elif action == "conference":
            self._emit(segment_track(self._next_id(), at, "Conference Registered", user_id=person.email,
                                     email=person.email, url=f"{SITE}/solutions/{solution}/events/forum",
                                     topic=CONTENT[solution].conference), person, solution, True)
        elif action == "demo":
            self._emit(segment_track(self._next_id(), at, "Demo Requested", user_id=person.email, email=person.email,
                                     url=f"{SITE}/solutions/{solution}/demo", asset_id=f"{solution}-demo"),
                       person, solution, True)
        elif action == "neutral":
            path, title = self.rng.choice(NEUTRAL_PAGES)
            self._page(person, at, SITE + path, title, None)

    def _enter(self, person: Persona, solution: str, day: float) -> float:
        """The person's first contact with the solution; returns the day they are known from."""
        habit = _habit(person.department)
        anonymous = 0.35 if habit in ("user", "it", "other") else 0.15
        email_first = 0.45 if habit in ("finance", "executive") else 0.1
        roll = self.rng.random()
        if person.known:
            self._session(person, solution, self._day(day), self._pick(_HABITS[habit]))
        elif roll < anonymous:
            person.anonymous_id = f"anon-{self._next_id()}"
            for _ in range(self.rng.randint(1, 3)):
                self._session(person, solution, self._day(day), "technical" if habit == "it" else "browse")
                day += self.rng.uniform(0.3, 2.0)
            self._download(person, solution, self._day(day), _AUDIENCE.get(person.department, "general"))  # type: ignore[arg-type]
        elif roll < anonymous + email_first:
            self._solution_email(person, solution, self._day(day), open_p=1.0, click_p=0.4)
        elif roll < anonymous + email_first + 0.15:
            self._webinar(person, solution, self._day(day), person.department is D.it)
            if not person.known:  # no webinar left in the period: a form fill instead
                self._download(person, solution, self._day(day), "general")
        else:
            self._download(person, solution, self._day(day), _AUDIENCE.get(person.department, "general"))  # type: ignore[arg-type]
        return day

    def _active(self, person: Persona, solution: str, begin: float, until: float, per_week: float,
                habits: dict[str, float] | None = None) -> None:
        day = begin + self.rng.expovariate(per_week / 7)
        while day < until:
            self._session(person, solution, self._day(day), self._pick(habits or _HABITS[_habit(person.department)]))
            day += self.rng.expovariate(per_week / 7)

    def _nurture(self, person: Persona) -> None:
        """The vendor's follow-up emails about the solutions a known person showed interest in."""
        if person.identified_at is None:
            return
        for solution in person.solutions:
            quiet = person.quiet_after.get(solution, self.end)
            at = person.identified_at + timedelta(days=self.rng.uniform(5, 12))
            while at < self.end:
                when = self._day((at - START).total_seconds() / 86400)
                engaged = when < quiet
                self._solution_email(person, solution, when, open_p=0.3 if engaged else 0.0, click_p=0.3)
                at += timedelta(days=self.rng.uniform(9, 16))

    # -- accounts -------------------------------------------------------------------------

    def _plan_group(self, company: Company, solution: str, shared: dict[tuple[Department, bool], Persona]) -> None:
        size = min(13, max(4, round(self.rng.triangular(4, 13, 6))))
        roster = _ROSTERS[solution]
        middle = [slot for slot in roster[2:] if slot[0] not in _LATE]
        self.rng.shuffle(middle)
        # Procurement and legal belong to the larger groups and join last; the first two slots
        # stay first so that any two members already span two departments.
        late = [slot for slot in roster if slot[0] in _LATE][:0 if size < 6 else 1 if size < 9 else 2]
        slots = (roster[:2] + middle)[:size - len(late)] + late
        started = self.rng.uniform(0, max(1.0, self.days - 10))
        pace = self.rng.choices([2.5, 5.0, 12.0], weights=[35, 45, 20])[0]
        outcome = self.rng.choices(["bought", "stalled", "open"], weights=[25, 30, 45])[0]
        joins = [started]
        for _ in slots[1:]:
            joins.append(joins[-1] + max(0.2, self.rng.expovariate(1 / pace)))
        ends = self.days
        if outcome == "stalled":
            engaged = min(len(slots), self.rng.choices([2, 3, 4, 5], weights=[40, 25, 20, 15])[0])
            ends = joins[engaged - 1] + self.rng.uniform(3, 12)
        elif outcome == "bought":
            ends = started + self.rng.uniform(40, 75)
            for i, slot in enumerate(slots):
                if slot[0] in _LATE:  # the purchase procedure brings them in shortly before the deal
                    joins[i] = max(started + 1, ends - self.rng.uniform(5, 20))
            if ends >= self.days:
                outcome = "open"
        ends = min(ends, self.days)
        group = PlannedGroup(f"g{len(self.groups) + 1:03d}", company, solution, size, outcome, pace, self._at(ends))
        self.groups.append(group)
        for (dept, senior), join in sorted(zip(slots, joins, strict=True), key=lambda x: x[1]):
            if join >= ends:
                continue
            # A second group of the account shares the first one's executive and finance people.
            person = shared.get((dept, senior)) if dept in (D.executive, D.finance) else None
            if person is None:
                free = bool(group.members) and self.rng.random() < 0.12
                person = self._person("group_member", company, dept, senior, free, solution=solution)
                shared.setdefault((dept, senior), person)
            initiator = not group.members
            group.members.append(person)
            person.solutions.append(solution)
            person.quiet_after[solution] = group.ends
            known = self._enter(person, solution, join)
            # Stakeholders differ: the initiator drives; many others look once or twice and go quiet.
            per_week = 1.8 if initiator else self.rng.choices([0.1, 0.4, 1.0], weights=[35, 35, 30])[0]
            self._active(person, solution, known, ends, per_week=per_week)
            if initiator and outcome != "stalled" and self.rng.random() < 0.6:
                demo = join + self.rng.uniform(18, 35)
                if demo < ends:
                    self._session(person, solution, self._day(demo), "demo")

    def _lone_researcher(self, company: Company) -> None:
        solution = self.rng.choice(SOLUTIONS)
        dept, senior = _ROSTERS[solution][0] if self.rng.random() < 0.7 else self.rng.choice(_ROSTERS[solution])
        person = self._person("lone_researcher", company, dept, senior, solution=solution)
        person.solutions.append(solution)
        start = self.rng.uniform(0, self.days - 7)
        until = min(self.days, start + self.rng.uniform(14, 60))
        person.quiet_after[solution] = self._at(until)
        known = self._enter(person, solution, start)
        very_active = self.rng.random() < 0.4
        habits = {"browse": 0.5, "download": 0.3, "webinar": 0.2} if very_active else None
        self._active(person, solution, known, until, per_week=4.5 if very_active else 1.0, habits=habits)

    def _small_team(self, company: Company) -> None:
        solution = self.rng.choice(SOLUTIONS)
        first = _ROSTERS[solution][0]
        slots = [first, first, (first[0], False)] if self.rng.random() < 0.5 else [first, _ROSTERS[solution][1]]
        start = self.rng.uniform(0, self.days - 10)
        until = min(self.days, start + self.rng.uniform(20, 45))
        day = start
        for dept, senior in slots:
            person = self._person("small_team", company, dept, senior, solution=solution)
            person.solutions.append(solution)
            person.quiet_after[solution] = self._at(until)
            known = self._enter(person, solution, day)
            self._active(person, solution, known, until, per_week=1.0)
            day += self.rng.uniform(1, 8)

    def _competitor(self, name: str, domain: str) -> None:
        company = Company(domain, name, "ООО", "competitor")
        self.companies.append(company)
        for _ in range(self.rng.choice([1, 1, 2])):
            free = self.rng.random() < 0.7
            given = self.rng.choice([name, f"ООО «{name}»", name.lower()])
            person = self._person("competitor", company, free=free, title=self.rng.choice(_COMPETITOR_TITLES),
                                  company_as_given=given)
            # Competitive intelligence: pricing, downloads and webinars across the catalog.
            solutions = self.rng.sample(SOLUTIONS, self.rng.randint(1, 3))
            for solution in solutions:
                person.solutions.append(solution)
                start = self.rng.uniform(0, self.days - 5)
                self._download(person, solution, self._day(start), "general")
                self._active(person, solution, start, self.days, per_week=0.6,
                              habits={"commercial": 0.4, "browse": 0.3, "download": 0.2, "webinar": 0.1})

    def _student(self, universities: dict[str, Company]) -> None:
        company = None
        if self.rng.random() < 0.3:
            name, domain = self.rng.choice(_UNIVERSITIES)
            if domain not in universities:
                universities[domain] = Company(domain, name, "", "university")
                self.companies.append(universities[domain])
            company = universities[domain]
        title = self.rng.choice(_STUDENT_TITLES) if self.rng.random() < 0.6 else None
        person = self._person("student", company, free=True, title=title,
                              company_as_given=company.name if company else None)
        solution = self.rng.choice(SOLUTIONS)
        person.solutions.append(solution)
        start = self.rng.uniform(0, self.days - 3)
        until = min(self.days, start + self.rng.uniform(7, 30))
        person.quiet_after[solution] = self._at(until)
        self._download(person, solution, self._day(start), "general")
        if self.rng.random() < 0.3:
            self._page(person, self._day(start + 1), f"{SITE}/careers", "Вакансии", None)
        self._active(person, solution, start, until, per_week=self.rng.choice([1.0, 1.0, 4.0]),
                     habits={"browse": 0.6, "download": 0.3, "webinar": 0.1})

    def _anonymous_traffic(self) -> None:
        """Visitors who never identify themselves: most of a real site's traffic."""
        for _ in range(int(self.n_accounts * self.days / 20)):
            anon = f"anon-{self._next_id()}"
            at = self._day(self.rng.uniform(0, self.days))
            for _ in range(self.rng.randint(1, 3)):
                if self.rng.random() < 0.5:
                    path, title = self.rng.choice(NEUTRAL_PAGES)
                    url = SITE + path
                else:
                    solution = self.rng.choice(SOLUTIONS)
                    path, title = self.rng.choice(CONTENT[solution].pages)
                    url = f"{SITE}/solutions/{solution}/{path}"
                self._emit(segment_page(self._next_id(), at, url, title, anonymous_id=anon), None, None, False)
                at += timedelta(seconds=self.rng.randrange(20, 300))

    def _newsletters(self) -> None:
        """A monthly digest to everyone known by then: deliveries for all, an open from a few."""
        month = 0
        while (issue := add_months(START, month) + timedelta(days=4)) < self.end:
            sent = self._day((issue - START).days)
            for person in self.people.values():
                if person.identified_at is not None and person.identified_at < sent:
                    self._email(person, sent, None, NEWSLETTER, f"newsletter-{sent:%Y-%m}", f"{SITE}/blog/digest",
                                open_p=0.15, click_p=0.2)
            month += 1

    def run(self) -> None:
        kinds = ["buyer"] * 55 + ["lone_researcher"] * 17 + ["small_team"] * 13 + ["competitor"] * 15
        competitors = list(_COMPETITORS)
        self.rng.shuffle(competitors)
        universities: dict[str, Company] = {}
        for i in range(self.n_accounts):
            kind = self.rng.choice(kinds)
            if kind == "competitor" and not competitors:
                kind = "lone_researcher"
            if i < 4:  # every market has each kind, however small
                kind = ["buyer", "lone_researcher", "small_team", "competitor"][i]
            if kind == "competitor":
                self._competitor(*competitors.pop())
                continue
            company = self._company(kind)
            if kind == "buyer":
                shared: dict[tuple[Department, bool], Persona] = {}
                first = self.rng.choice(SOLUTIONS)
                self._plan_group(company, first, shared)
                if self.rng.random() < 0.2:
                    self._plan_group(company, self.rng.choice([s for s in SOLUTIONS if s != first]), shared)
            elif kind == "lone_researcher":
                self._lone_researcher(company)
            else:
                self._small_team(company)
        for _ in range(max(2, self.n_accounts // 3)):
            self._student(universities)
        for person in list(self.people.values()):
            self._nurture(person)
        self._newsletters()
        self._anonymous_traffic()

    # -- output ---------------------------------------------------------------------------

    def _deal(self, g: PlannedGroup, started: datetime, formed: datetime | None) -> dict[str, Any]:
        """The deal behind a group: its true outcome, amount and close date, and what the CRM
        was told (an estimate of the amount and a close date the seller expects, reported when
        the group formed, else three weeks after it started). Drawn from a generator of its own,
        seeded by the market's seed and the group, so that the events stay byte for byte what
        they were without deals.

        won: a bought group closes at its purchase; lost: a stalled group is marked lost two to
        six weeks after it went quiet; the rest is open at the end of the market. The seller's
        expected close date is the true one give or take about two weeks for a deal that will
        close, and the usual 40 to 75 days from the start for one that will not: the forecaster
        cannot tell them apart by the date."""
        rng = random.Random(f"{self.seed}:deal:{g.group_id}")
        amount = round(DEAL_BASE[g.solution] * g.planned_size / 6 * rng.lognormvariate(0, 0.35), -4)
        outcome, closed = "open", None
        if g.outcome == "bought" and g.ends < self.end:
            outcome, closed = "won", g.ends
        elif g.outcome == "stalled":
            lost_at = g.ends + timedelta(days=rng.uniform(14, 45))
            if lost_at < self.end:
                outcome, closed = "lost", lost_at
        reported = formed or started + timedelta(days=21)
        guess = g.ends if outcome == "won" else started + timedelta(days=rng.uniform(40, 75))
        expected = guess + timedelta(days=rng.gauss(0, 14))
        return {
            "outcome": outcome, "amount": amount, "currency": "RUB", "closed_at": iso(closed) if closed else None,
            "crm": {"reported_at": iso(reported), "amount": round(amount * rng.lognormvariate(0, 0.2), -4),
                    "expected_close_on": max(expected, reported).date().isoformat()},
        }

    def ordered_requests(self) -> list[Request]:
        return [r for _, _, r in sorted(self.requests, key=lambda x: (x[0], x[1]))]

    def truth(self) -> dict[str, Any]:
        touches: dict[str, list[Touch]] = {}
        for t in sorted(self.touches, key=lambda t: (t.at, t.email)):
            touches.setdefault(t.email, []).append(t)
        persons = []
        for pid, p in self.people.items():
            mine = touches.get(p.email, [])
            if p.identified_at is None:
                continue
            persons.append({
                "person_id": pid, "email": p.email, "name": p.name, "kind": p.kind,
                "account_id": p.company.account_id if p.company else None,
                "department": p.department.value if p.department else None,
                "role": p.role.value if p.role else None,
                "title": p.title, "company_as_given": p.company_as_given, "free_mail": p.free_mail,
                "anonymous_first": p.anonymous_id is not None,
                "identified_at": iso(p.identified_at), "touches": len(mine),
                "engaged_solutions": sorted({t.solution for t in mine if t.solution and t.engaged}),
            })
        groups = []
        for g in self.groups:
            engaged = [(t.at, normalised_email(p.email), p.department.value)  # type: ignore[union-attr]
                       for p in g.members for t in touches.get(p.email, []) if t.solution == g.solution and t.engaged]
            if not engaged:
                continue
            first_touch: dict[str, datetime] = {}
            for at, pid, _ in sorted(engaged):
                first_touch.setdefault(pid, at)
            formed = formation(engaged)
            departments = {pid: dept for _, pid, dept in engaged}
            groups.append({
                "group_id": g.group_id, "account_id": g.company.account_id, "solution": g.solution,
                "outcome": g.outcome, "planned_size": g.planned_size, "pace_days": g.pace_days,
                "members": [{"person_id": pid, "department": departments[pid],
                             "role": self.people[pid].role.value,  # type: ignore[union-attr]
                             "first_touch_at": iso(at)} for pid, at in first_touch.items()],
                "started_at": iso(min(first_touch.values())),
                "formed_at": iso(formed[0]) if formed else None,
                "formation_members": list(formed[1]) if formed else [],
                "engagement_ends_at": iso(min(g.ends, self.end)),
                "deal": self._deal(g, min(first_touch.values()), formed[0] if formed else None),
            })
        accounts = [{"account_id": c.account_id, "name": c.display if c.legal else c.name, "kind": c.kind,
                     "noise": c.noise} for c in self.companies]
        platforms: dict[str, int] = {}
        for _, _, r in self.requests:
            platforms[r.platform] = platforms.get(r.platform, 0) + 1
        return {
            "seed": self.seed, "accounts": self.n_accounts, "months": self.months,
            "start": iso(START), "end": iso(self.end),
            "definition": {"min_people": FORMATION_PEOPLE, "min_departments": FORMATION_DEPARTMENTS,
                           "window_days": FORMATION_WINDOW.days,
                           "engaged": "every touch on the solution except an email delivery"},
            "requests": len(self.requests), "requests_by_platform": dict(sorted(platforms.items())),
            "accounts_list": accounts, "persons": persons, "groups": groups,
        }


@dataclass(frozen=True)
class MarketData:
    requests: list[Request]
    truth: dict[str, Any]


def generate(accounts: int = 60, months: int = 3, seed: int = 7) -> MarketData:
    if accounts < 4 or months < 1:
        raise ValueError("a market needs at least 4 accounts and 1 month")
    market = Market(accounts, months, seed)
    market.run()
    return MarketData(market.ordered_requests(), market.truth())


def dump_requests(requests: Iterable[Request]) -> bytes:
    return b"".join(orjson.dumps({"platform": r.platform, "body": r.body, "at": iso(r.at)}) + b"\n"
                    for r in requests)


def load_requests(path: Path) -> list[Request]:
    out = []
    for line in path.read_bytes().splitlines():
        row = orjson.loads(line)
        out.append(Request(row["platform"], row["body"], datetime.fromisoformat(row["at"].replace("Z", "+00:00"))))
    return out


def write(data: MarketData, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    events, truth = out / "events.jsonl", out / "truth.json"
    events.write_bytes(dump_requests(data.requests))
    truth.write_text(json.dumps(data.truth, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return events, truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=60)
    parser.add_argument("--months", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    started = time.perf_counter()
    data = generate(args.accounts, args.months, args.seed)
    events, truth = write(data, args.out)
    t = data.truth
    formed = sum(1 for g in t["groups"] if g["formed_at"])
    print(f"{len(data.requests)} requests {t['requests_by_platform']} -> {events}")
    print(f"{len(t['accounts_list'])} accounts, {len(t['persons'])} people, {len(t['groups'])} groups "
          f"({formed} formed) -> {truth}  [{time.perf_counter() - started:.2f} s]")


if __name__ == "__main__":
    main()
