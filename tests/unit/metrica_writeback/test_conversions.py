"""Which ClientIDs belong to whom, and the offline-conversions file for a group's members."""

from __future__ import annotations

from datetime import UTC, datetime

from services.metrica_writeback.domain import Goals, Link, conversions, csv_body, links
from shared.schemas.crm import StageChanged
from shared.schemas.scoring import Signal
from shared.schemas.touch import TouchEvent

AT = datetime(2026, 10, 9, 12, 0, tzinfo=UTC)


def touch(**person) -> TouchEvent:
    return TouchEvent(event_id="e1", occurred_at=AT, source="form", kind="form_submitted", person=person)


def test_links_from_forms_calls_and_registrations():
    form = touch(email="E.Sokolova+hr@Romashka.ru", anonymous_id="ym:1727770000123456789")
    call = touch(user_id="tel:+79165550234", anonymous_id="ym:1727770000987654321")
    registration = touch(email="s.volkov@romashka.ru", user_id="tel:+79165550234")
    assert links(form) == [Link("person_client", "e.sokolova@romashka.ru", "1727770000123456789")]
    assert links(call) == [Link("phone_client", "tel:+79165550234", "1727770000987654321")]
    assert links(registration) == [Link("person_phone", "s.volkov@romashka.ru", "tel:+79165550234")]
    assert links(touch(email="x@y.ru", anonymous_id="anon-segment-1")) == []  # not a Metrica ClientID


def test_group_formed_and_won_become_conversions_per_clientid():
    signal = Signal(signal_id="romashka.ru:hr:group_formed:1", signal="group_formed", opportunity_id="romashka.ru:hr",
                    account_id="romashka.ru", solution="hr", occurred_at=AT, score=71.0, tier="A")
    owned = {"e.sokolova@romashka.ru": {"111", "222"}, "s.volkov@romashka.ru": {"333"}, "o.petrova@romashka.ru": set()}
    got = conversions(signal, owned, Goals())
    assert [(c.client_id, c.target) for c in got] == [("111", "bg_group_formed"), ("222", "bg_group_formed"),
                                                      ("333", "bg_group_formed")]
    assert csv_body(got).decode().splitlines() == ["ClientId,Target,DateTime", "111,bg_group_formed,1791547200",
                                                   "222,bg_group_formed,1791547200", "333,bg_group_formed,1791547200"]
    won = StageChanged(event_id="crm-1", opportunity_id="romashka.ru:hr", account_id="romashka.ru", solution="hr",
                       stage="contract", outcome="won", amount=1500000, currency="RUB", changed_at=AT)
    assert csv_body(conversions(won, {"p": {"111"}}, Goals())).decode().splitlines() == [
        "ClientId,Target,DateTime,Price,Currency", "111,bg_opportunity_won,1791547200,1500000,RUB"]
    assert conversions(signal.model_copy(update={"signal": "group_forming"}), owned, Goals()) == []
