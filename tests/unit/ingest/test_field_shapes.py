"""Issue 13's new payload shapes (tests/fixtures/payloads/*field_cases*, zoom_*), mapped purely."""

from datetime import UTC, datetime, timedelta

from services.ingest.adapters import sendgrid, zoom
from services.ingest.adapters.results import Ignored, Rejected, Unmapped
from services.ingest.automation import flag_bot, is_bot
from shared.schemas.touch import TouchEvent, TouchKind
from tests.support.payloads import load

WINDOW = timedelta(seconds=10)


def test_sendgrid_machine_open_and_scanner_click_are_flagged_a_late_click_is_not():
    delivered, scanner, machine, person, unsubscribe, broken = sendgrid.parse(
        load("sendgrid_field_cases.json"), max_batch=100, scanner_window=WINDOW)
    assert isinstance(delivered, TouchEvent) and not delivered.automated
    assert (scanner.automated, scanner.automated_reason) == (True, "link_scanner")
    assert (machine.automated, machine.automated_reason) == (True, "machine_open")
    assert isinstance(person, TouchEvent) and not person.automated and person.kind is TouchKind.email_click
    assert isinstance(unsubscribe, Ignored)
    assert isinstance(broken, Rejected) and broken.errors[0]["field"] == "5.sg_event_id"


def test_sendgrid_scanner_click_judged_against_a_delivery_of_an_earlier_request():
    events = load("sendgrid_field_cases.json")
    remembered = sendgrid.deliveries(events[:1])
    [scanner] = sendgrid.parse(events[1:2], max_batch=10, delivered_at=remembered, scanner_window=WINDOW)
    assert scanner.automated_reason == "link_scanner"
    [unknown] = sendgrid.parse(events[1:2], max_batch=10, scanner_window=WINDOW)
    assert not unknown.automated


def test_bot_user_agents():
    assert is_bot("Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)")
    assert not is_bot("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36")
    touch = TouchEvent(event_id="b-1", occurred_at=datetime(2026, 11, 1, tzinfo=UTC), source="web",
                       kind="page_view", person={"anonymous_id": "a"},
                       context={"user_agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"})
    flagged = flag_bot(touch)
    assert (flagged.automated, flagged.automated_reason) == (True, "bot_user_agent")


def _known_after(*names: str) -> zoom.Known:
    """Memory as the API builds it from these webhooks, in order."""
    registrants: dict = {}
    sessions: dict = {}
    for name in names:
        body = load(name)
        learned_r, learned_s = zoom.remember(body, zoom.Known(registrants, sessions))
        registrants |= learned_r
        sessions |= learned_s
    return zoom.Known(registrants, sessions)


def test_zoom_join_with_empty_email_is_the_registrant():
    known = _known_after("zoom_registration_created.json")
    [joined] = zoom.parse(load("zoom_participant_joined_empty_email.json"), known)
    assert isinstance(joined, TouchEvent)
    assert joined.person.email == "s.volkov@romashka.ru" and joined.person.job_title == "IT-директор"
    [lost] = zoom.parse(load("zoom_participant_joined_empty_email.json"))
    assert isinstance(lost, Unmapped) and lost.reason == "no_identifier"


def test_zoom_reconnect_and_hashed_email_are_one_attendance_of_the_registrant():
    known = _known_after("zoom_registration_created.json")
    first, again, hashed = (zoom.parse(load(n), known)[0] for n in (
        "zoom_participant_joined.json", "zoom_participant_joined_empty_email.json",
        "zoom_participant_joined_hashed_email.json"))
    assert first.event_id == again.event_id == hashed.event_id
    assert hashed.person.email == "s.volkov@romashka.ru"
    assert first.occurred_at == datetime(2026, 10, 15, 10, 1, tzinfo=UTC)


def test_zoom_leave_gives_the_session_duration():
    known = _known_after("zoom_registration_created.json", "zoom_participant_joined.json",
                         "zoom_participant_joined_empty_email.json")
    [left] = zoom.parse(load("zoom_participant_left.json"), known)
    assert left.kind is TouchKind.webinar_left and left.person.email == "s.volkov@romashka.ru"
    # The latest session began at the reconnect, 10:20; the leave is at 11:00.
    assert left.properties["session_seconds"] == 40 * 60
    [unknown] = zoom.parse(load("zoom_participant_left.json"), _known_after("zoom_registration_created.json"))
    assert isinstance(unknown, Unmapped) and unknown.reason == "unknown_session"
