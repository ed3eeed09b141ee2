"""The DOMAIN.md stories again, told through the Russian stack instead of Segment/SendGrid/Zoom.

The same people do the same things on the same (fixed) days as in demo/stories.py, but:
- their anonymous reading is Yandex Metrica visits of a ClientID (pulled from the Logs API),
  identified later by a Tilda form whose cookies carry that `_ym_uid`;
- downloads, the demo request and the conference registration are Tilda forms;
- webinars are MTS Link registrations (webhook) and attendance (UserAPI v3 pull);
- Ольга's email is Unisender Go opens and clicks;
- Сергей reads the API docs anonymously, then calls sales (Calltouch, with the visit's
  `yaClientId` and his phone), and registers for the webinar with that phone: the phone and
  the ClientID tie the call and the reading to him.
The same opportunities must result (tests/e2e/test_ru_stack.py checks it).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

from demo.payloads import Request
from demo.payloads_ru import (
    calltouch_call,
    metrica_visit,
    mtslink_participant,
    mtslink_registration,
    session,
    tilda_form,
    unisender_event,
)
from demo.stories import SITE, day

RU_TAG = "-ru"  # the demo's Russian-stack companies: romashka-ru.ru, ... (apart from the Segment ones)


@dataclass
class RuStack:
    """What the platforms hold for the stories: webhooks they push, data the importers pull."""

    webhooks: list[Request] = field(default_factory=list)
    visits: list[dict[str, str]] = field(default_factory=list)  # Metrica Logs API rows (source visits)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)  # MTS Link event sessions
    participations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def extend(self, other: RuStack) -> RuStack:
        self.webhooks += other.webhooks
        self.visits += other.visits
        self.sessions |= other.sessions
        for k, v in other.participations.items():
            self.participations.setdefault(k, []).extend(v)
        return self

    def visit(self, who: str, tag: str, at, url: str) -> None:
        n = zlib.crc32(f"{who}{tag}{at.isoformat()}{url}".encode())
        self.visits.append(metrica_visit(n, client_id(who, tag), at, url))

    def webinar(self, session_id: str, name: str, starts, attendee: tuple[str, str] | None = None) -> None:
        self.sessions.setdefault(session_id, session(session_id, name, starts))
        if attendee:
            rows = self.participations.setdefault(session_id, [])
            rows.append(mtslink_participant(len(rows) + 1, *attendee))


def client_id(who: str, tag: str) -> str:
    """A made-up Metrica ClientID (decimal, like `_ym_uid`) per person and run tag."""
    return str(1727770000 * 10**9 + zlib.crc32(f"{who}{tag}".encode()) % 10**9)


def phone(who: str, tag: str) -> str:
    """A made-up Moscow mobile number per person and run tag (+7 916 ...)."""
    digits = f"{zlib.crc32(f'tel{who}{tag}'.encode()) % 10**7:07d}"
    return f"+7 916 {digits[:3]}-{digits[3:5]}-{digits[5:]}"


def romashka(tag: str = "") -> RuStack:
    d = f"romashka{tag}.ru"
    elena, sergey, olga, ivan = f"e.sokolova@hr.{d}", f"s.volkov@{d}", f"o.petrova@{d}", f"i.mikhailov@{d}"
    org = "ООО «Красная ромашка»"
    s = RuStack()
    # Елена reads about HR systems anonymously (Metrica), then downloads the brochure (Tilda, _ym_uid).
    s.visit(elena, tag, day(0), f"{SITE}/solutions/hr/overview")
    s.visit(elena, tag, day(0, 1), f"{SITE}/solutions/hr/leave-automation")
    s.webhooks.append(tilda_form(f"rm{tag}:1", day(0, 2), "Скачать брошюру: автоматизация отпусков", elena,
                                 "Елена Соколова", "HR-менеджер", org, f"{SITE}/solutions/hr/leave-automation",
                                 "hr-leave-automation-brochure", ym_uid=client_id(elena, tag)))
    webinar = "Кадровый учёт без бумаги: HR-система на практике"
    s.webhooks.append(mtslink_registration(f"hr-webinar{tag}", webinar, day(2), elena, "Елена Соколова",
                                           "HR-менеджер", org))
    s.webinar(f"hr-webinar{tag}", webinar, day(5), (elena, "Елена Соколова"))
    s.webhooks.append(tilda_form(f"rm{tag}:2", day(6), "Запросить демо HR-системы", elena, "Елена Соколова",
                                 "HR-менеджер", org, f"{SITE}/solutions/hr/demo", "hr-demo"))
    # Сергей reads the API docs anonymously, calls sales, registers for the integrations webinar with his phone.
    s.visit(sergey, tag, day(3), f"{SITE}/solutions/hr/integrations/api")
    s.webhooks.append(calltouch_call(f"rm{tag}-call", day(3, 1), phone(sergey, tag).replace(" ", ""),
                                     f"{SITE}/solutions/hr/integrations/api", client_id(sergey, tag)))
    integrations = "Интеграция HR-системы с 1С и ИТ-ландшафтом"
    s.webhooks.append(mtslink_registration(f"hr-integrations{tag}", integrations, day(4), sergey, "Сергей Волков",
                                           "IT-директор", org, phone=phone(sergey, tag), role="Evaluator/Recommender"))
    s.webinar(f"hr-integrations{tag}", integrations, day(4))
    # Ольга opens the ROI email and clicks through to the case study (Unisender Go).
    meta = {"name": "Ольга Петрова", "job_title": "Финансовый директор", "company": org,
            "asset_id": "hr-roi-case-study"}
    s.webhooks.append(unisender_event(f"rm{tag}-job", day(7), olga, "opened",
                                      subject="ROI HR-системы: кейс производственной компании", **meta))
    s.webhooks.append(unisender_event(f"rm{tag}-job", day(7, 1), olga, "clicked",
                                      url=f"{SITE}/solutions/hr/roi-case-study", **meta))
    # Иван registers for the conference (Tilda).
    s.webhooks.append(tilda_form(f"rm{tag}:3", day(8, 1), "Регистрация на конференцию HR Tech Forum 2026", ivan,
                                 "Иван Михайлов", "Генеральный директор", org,
                                 f"{SITE}/solutions/hr/events/hr-tech-forum"))
    return s


def gazmyasneft(tag: str = "") -> RuStack:
    who = f"p.kuznetsov@gazmyasneft{tag}.ru"
    org = "ПАО «Газмяснефть»"
    s = RuStack()
    for i in range(10):
        s.visit(who, tag, day(i, 2), f"{SITE}/solutions/hr/page-{i}")
    for i in range(5):
        s.webhooks.append(tilda_form(f"gm{tag}:d{i}", day(2 * i + 1), f"Скачать whitepaper {i + 1}", who,
                                     "Пётр Кузнецов", "Менеджер по персоналу", org,
                                     f"{SITE}/solutions/hr/whitepaper-{i}", f"hr-whitepaper-{i}",
                                     ym_uid=client_id(who, tag)))
    for i in range(3):
        sid, topic = f"gm-webinar{tag}-{i}", f"HR-система: вебинар {i + 1}"
        s.webhooks.append(mtslink_registration(sid, topic, day(3 * i + 1), who, "Пётр Кузнецов",
                                               "Менеджер по персоналу", org))
        s.webinar(sid, topic, day(3 * i + 2), (who, "Пётр Кузнецов"))
    return s


def argotrubosbyt(tag: str = "") -> RuStack:
    d = f"argotrubosbyt{tag}.ru"
    org = "АО «Арготрубосбыт»"
    people = [(f"a.orlova@{d}", "Анна Орлова", "Директор по персоналу"),
              (f"d.belov@{d}", "Дмитрий Белов", "Head of IT"), (f"m.zaitseva@{d}", "Мария Зайцева", "CFO"),
              (f"k.smirnov@{d}", "Константин Смирнов", "Генеральный директор")]
    topic = "HR-система для производственных компаний"
    s = RuStack()
    s.webinar(f"argo-webinar{tag}", topic, day(7))
    for i, (email, name, title) in enumerate(people):
        s.webhooks.append(tilda_form(f"at{tag}:{i}", day(i * 2, 1), "Скачать кейс", email, name, title, org,
                                     f"{SITE}/solutions/hr/case-{i}", f"hr-case-{i}"))
        s.webhooks.append(mtslink_registration(f"argo-webinar{tag}", topic, day(i * 2 + 1), email, name, title, org))
    return s


def all_stories(tag: str = RU_TAG) -> RuStack:
    stack = romashka(tag).extend(gazmyasneft(tag)).extend(argotrubosbyt(tag))
    stack.webhooks.sort(key=lambda r: r.at)
    return stack
