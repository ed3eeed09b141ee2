"""What the opportunity page says about corrections (issue 16), without servers: the history in
words, the badges and notes of the group picture, and "why is this person here"."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.projection.web.correction_pages import history
from services.projection.web.i18n import Translator
from services.projection.web.views import group_picture, member_why

pytestmark = pytest.mark.unit

AT = datetime(2026, 11, 30, 9, 15, tzinfo=UTC)


def member(pid: str, name: str, **extra) -> dict:
    return {"person_id": pid, "name": name, "email": pid, "job_title": None, "department": "it",
            "role": "technical_validator", "engagement": 1.0, "touches_count": 1, **extra}


def correction(cid: str, kind: str, detail: dict, person: str | None = "it@r.ru", **extra) -> dict:
    return {"correction_id": cid, "type": kind, "detail": detail, "person_id": person, "author": "Мария",
            "made_at": AT, "reason": None, "undone_by_id": None, "undone_by": None, "undone_at": None, **extra}


def test_the_history_in_words_in_both_languages():
    detail = {"members": [member("it@r.ru", "Сергей Волков")], "corrections": [
        correction("c3", "correction_undone", {"undoes": "c1", "subject": "r.ru:hr"}, person=None),
        correction("c2", "member_note_set", {"note": "1С", "concerns": ["integration_security"]}),
        correction("c1", "member_stance_set", {"stance": "blocker", "influence": "high"},
                   undone_by_id="c3", undone_by="Пётр", undone_at=AT, reason="против"),
        correction("c0", "accounts_merged", {"into": "r.ru", "merged": "name:ромашка"}, person=None),
    ]}
    ru = history(detail, Translator("ru"))
    assert [r.what for r in ru] == ["Отмена правки «Сергей Волков: Блокирующий, влияние высокое»",
                                    "Сергей Волков: заметка «1С» · Интеграция и безопасность",
                                    "Сергей Волков: Блокирующий, влияние высокое",
                                    "Компания name:ромашка объединена с r.ru"]
    assert [r.undoable for r in ru] == [False, True, False, True]
    assert ru[2].undone == "отменена: Пётр, 30.11.2026 09:15" and ru[2].why == "против"
    en = history(detail, Translator("en"))
    assert en[2].what == "Сергей Волков: Blocker, high influence" and en[2].undone == "undone by Пётр, 2026-11-30 09:15"


def test_the_group_picture_shows_stance_note_concerns_and_why():
    why = {"account": {"rule": "domain", "detail": "r.ru"},
           "role": {"rule": "correction", "correction_id": "c9", "author": "Мария"}}
    detail = {"members": [member("it@r.ru", "Сергей Волков", stance="champion", influence="high", note="Нужен API",
                                 concerns=["integration_security"], why=why)],
              "required_roles": [], "expected_roles": ["technical_validator"], "missing_roles": []}
    seat = group_picture(detail, Translator("ru")).departments[0].seats[0]
    assert (seat.stance_code, seat.stance, seat.influence, seat.note, seat.concerns) == (
        "champion", "Чемпион", "высокое", "Нужен API", ("Интеграция и безопасность",))
    assert seat.why == ("Компания: домен email · r.ru", "Роль: правка вручную · правка Мария")
    assert member_why(None, Translator("en")) == ()
