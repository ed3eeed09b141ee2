"""The canonical stories of DOMAIN.md as the platforms would send them.

- Красная ромашка: four people, four roles, one HR-system opportunity.
- Газмяснефть: ONE very active person (5 downloads, 3 webinars, 10 visits).
- Арготрубосбыт: FOUR moderately active people (one download and one webinar each).
Event times are fixed (October 2026), so every replay gives the same result.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from demo.payloads import (
    Request,
    segment_identify,
    segment_page,
    segment_track,
    sendgrid,
    zoom_joined,
    zoom_registration,
)

SITE = "https://vendor.example"
START = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)


def day(n: float, hour: int = 0) -> datetime:
    return START + timedelta(days=n, hours=hour)


def romashka(tag: str = "") -> list[Request]:
    """Красная ромашка (about 250 staff) outgrew its HR tooling."""
    d = f"romashka{tag}.ru"
    elena, sergey, olga, ivan = f"e.sokolova@hr.{d}", f"s.volkov@{d}", f"o.petrova@{d}", f"i.mikhailov@{d}"
    anon = f"anon-elena{tag}"
    org = "ООО «Красная ромашка»"
    webinar = f"hr-webinar{tag}"
    integrations = f"hr-integrations{tag}"
    return [
        # Елена, HR-менеджер: reads about HR systems anonymously, downloads a brochure, fills a form.
        segment_page(f"rm{tag}-1", day(0), f"{SITE}/solutions/hr/overview", "HR-система: обзор", anonymous_id=anon),
        segment_page(f"rm{tag}-2", day(0, 1), f"{SITE}/solutions/hr/leave-automation",
                     "Автоматизация отпусков", anonymous_id=anon),
        segment_track(f"rm{tag}-3", day(0, 2), "Brochure Downloaded", anonymous_id=anon,
                      asset_id="hr-leave-automation-brochure", url=f"{SITE}/solutions/hr/leave-automation"),
        segment_identify(f"rm{tag}-4", day(0, 3), elena, "Елена Соколова", "HR-менеджер", org, anonymous_id=anon),
        zoom_registration(webinar, "Кадровый учёт без бумаги: HR-система на практике", day(2), elena,
                          "Елена Соколова", "HR-менеджер", org),
        zoom_joined(webinar, "Кадровый учёт без бумаги: HR-система на практике", day(5), elena, "Елена Соколова"),
        segment_track(f"rm{tag}-5", day(6), "Demo Requested", user_id=elena, email=elena,
                      url=f"{SITE}/solutions/hr/demo", asset_id="hr-demo"),
        # Сергей, IT-директор: reads the API and integration docs, registers for the integrations webinar.
        segment_page(f"rm{tag}-6", day(3), f"{SITE}/solutions/hr/integrations/api",
                     "HR-система: API и интеграция с 1С", user_id=sergey, email=sergey),
        zoom_registration(integrations, "Интеграция HR-системы с 1С и ИТ-ландшафтом", day(4), sergey,
                          "Сергей Волков", "IT-директор", org, "Evaluator/Recommender"),
        # Ольга, финансовый директор: opens the ROI email and downloads the case study.
        sendgrid(f"rm{tag}-sg-1", day(7), olga, "open", name="Ольга Петрова", job_title="Финансовый директор",
                 company=org, subject="ROI HR-системы: кейс производственной компании", asset_id="hr-roi-case-study"),
        sendgrid(f"rm{tag}-sg-2", day(7, 1), olga, "click", url=f"{SITE}/solutions/hr/roi-case-study",
                 name="Ольга Петрова", job_title="Финансовый директор", company=org, asset_id="hr-roi-case-study"),
        # Иван, генеральный директор: registers for the conference.
        segment_identify(f"rm{tag}-7", day(8), ivan, "Иван Михайлов", "Генеральный директор", org),
        segment_track(f"rm{tag}-8", day(8, 1), "Conference Registered", user_id=ivan, email=ivan,
                      url=f"{SITE}/solutions/hr/events/hr-tech-forum", topic="HR Tech Forum 2026"),
    ]


def gazmyasneft(tag: str = "") -> list[Request]:
    """Газмяснефть: one person, very active."""
    who = f"p.kuznetsov@gazmyasneft{tag}.ru"
    org = "ПАО «Газмяснефть»"
    out = [segment_identify(f"gm{tag}-0", day(0), who, "Пётр Кузнецов", "Менеджер по персоналу", org)]
    for i in range(10):
        out.append(segment_page(f"gm{tag}-v{i}", day(i, 2), f"{SITE}/solutions/hr/page-{i}",
                                f"HR-система, раздел {i}", user_id=who, email=who))
    for i in range(5):
        out.append(segment_track(f"gm{tag}-d{i}", day(2 * i + 1), "Whitepaper Downloaded", user_id=who, email=who,
                                 asset_id=f"hr-whitepaper-{i}", url=f"{SITE}/solutions/hr/whitepaper-{i}"))
    for i in range(3):
        webinar = f"gm-webinar{tag}-{i}"
        topic = f"HR-система: вебинар {i + 1}"
        out.append(zoom_registration(webinar, topic, day(3 * i + 1), who, "Пётр Кузнецов",
                                     "Менеджер по персоналу", org))
        out.append(zoom_joined(webinar, topic, day(3 * i + 2), who, "Пётр Кузнецов"))
    return out


def argotrubosbyt(tag: str = "") -> list[Request]:
    """Арготрубосбыт: four people from HR, IT, finance and the CEO's office, one download and one webinar each."""
    d = f"argotrubosbyt{tag}.ru"
    org = "АО «Арготрубосбыт»"
    people = [
        (f"a.orlova@{d}", "Анна Орлова", "Директор по персоналу"),
        (f"d.belov@{d}", "Дмитрий Белов", "Head of IT"),
        (f"m.zaitseva@{d}", "Мария Зайцева", "CFO"),
        (f"k.smirnov@{d}", "Константин Смирнов", "Генеральный директор"),
    ]
    webinar = f"argo-webinar{tag}"
    topic = "HR-система для производственных компаний"
    out = []
    for i, (email, name, title) in enumerate(people):
        out.append(segment_identify(f"at{tag}-{i}-id", day(i * 2), email, name, title, org))
        out.append(segment_track(f"at{tag}-{i}-dl", day(i * 2, 1), "Case Study Downloaded", user_id=email,
                                 email=email, asset_id=f"hr-case-{i}", url=f"{SITE}/solutions/hr/case-{i}"))
        out.append(zoom_registration(webinar, topic, day(i * 2 + 1), email, name, title, org))
    return out


def all_stories(tag: str = "") -> list[Request]:
    return sorted(romashka(tag) + gazmyasneft(tag) + argotrubosbyt(tag), key=lambda r: r.at)
