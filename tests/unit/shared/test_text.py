"""The one check of text, host names and free-form JSON that every message schema shares (issue 19)."""

from datetime import UTC, datetime

import orjson
import pytest
from pydantic import ValidationError

from services.grouping.domain.messages import Outbound, persons_inputs
from services.ingest.adapters import canonical, segment, zoom
from services.ingest.adapters.results import Rejected, Unmapped
from shared.codec import encode, person_events
from shared.schemas import text
from shared.schemas.touch import CompanyTraits, IdentityEvent, TouchEvent

RECEIVED = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)


def touch(**overrides) -> dict:
    event = {"event_id": "t-1", "occurred_at": "2026-10-01T10:00:00Z", "source": "web", "kind": "page_view",
             "person": {"email": "elena@romashka.ru", "name": "Елена"}}
    return {**event, **overrides}


def nested(depth: int) -> dict:
    """An object `depth` levels deep, counting itself: nested(1) == {"leaf": 1}."""
    value: dict = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def refused(payload: dict) -> list[dict[str, str]]:
    """The errors of one canonical event that ingest refuses (the API answers 422 with them)."""
    [result] = canonical.parse(payload, max_batch=10)
    assert isinstance(result, Rejected), result
    return result.errors


def test_nul_in_a_name_is_refused_naming_person_name():
    # Issue 19, item 1: PostgreSQL cannot store the NUL, so it froze the opportunity's projection.
    [error] = refused(touch(person={"email": "elena@romashka.ru", "name": "Nul\u0000Name"}))
    assert error["field"] == "person.name"
    assert "U+0000" in error["message"]


@pytest.mark.parametrize(("field", "value"), [
    ("name", "bell\u0007"), ("name", "c1\u0085c1"), ("name", "c1\u0091"), ("name", "del\u007f"),
    ("job_title", "lone \ud800 half"),
    ("company", "\udfff"), ("anonymous_id", "id\twith tab"), ("user_id", "line\nbreak"),
])
def test_control_characters_and_lone_surrogates_are_refused_naming_the_field(field, value):
    errors = refused(touch(person={"email": "elena@romashka.ru", field: value}))
    assert [e["field"] for e in errors] == [f"person.{field}"]


def test_layout_whitespace_in_display_text_becomes_one_space():
    [event] = canonical.parse(touch(person={"email": "elena@romashka.ru", "name": "Елена\tСоколова",
                                             "job_title": "HR-\r\nменеджер"}), max_batch=10)
    assert (event.person.name, event.person.job_title) == ("Елена Соколова", "HR- менеджер")


def test_text_in_properties_keeps_tabs_and_refuses_nul_with_its_path():
    [event] = canonical.parse(touch(properties={"note": "a\tb\nc"}), max_batch=10)
    assert event.properties == {"note": "a\tb\nc"}
    [error] = refused(touch(properties={"form": {"fields": ["ok", "bad\u0000"]}}))
    assert error["field"] == "properties"
    assert "at form.fields.1" in error["message"] and "U+0000" in error["message"]
    [error] = refused(touch(properties={"key\u0000": 1}))
    assert error["field"] == "properties"


@pytest.mark.parametrize(("given", "kept"), [
    ("romashka.ru", "romashka.ru"),
    ("Romashka.RU.", "romashka.ru"),
    ("ласточка.рф", "ласточка.рф"),
    ("ЛАСТОЧКА.РФ", "ласточка.рф"),
    ("xn--80aa3acqrh5b.xn--p1ai", "ласточка.рф"),
    ("hr.ласточка.рф", "hr.ласточка.рф"),
])
def test_host_names_keep_one_form(given, kept):
    assert text.hostname(given) == kept
    assert CompanyTraits(domain=given).domain == kept


@pytest.mark.parametrize("bad", [
    "<script>.ru", 'romashka".ru', "romashka'.ru", "roma shka.ru",
    "romashka", "-romashka.ru", "romashka..ru", "a" * 64 + ".ru", "nul\u0000.ru", "romashka_hr.ru",
])
def test_what_is_not_a_host_name_is_refused(bad):
    with pytest.raises(ValueError, match="not a valid host name"):
        text.hostname(bad)
    errors = refused({"type": "identity", "event_id": "i-1", "occurred_at": "2026-10-01T10:00:00Z",
                      "person": {"email": "elena@romashka.ru"}, "company": {"domain": bad}})
    assert [e["field"] for e in errors] == ["company.domain"]


@pytest.mark.parametrize("website", ["romashka.ru/path", "https://romashka.ru", "https://www.Romashka.ru/about"])
def test_a_company_website_in_url_form_is_kept_as_its_host(website):
    # A URL is no host name (text.hostname refuses it), but a company's website is commonly
    # given as one: the company domain keeps its host (issue 13), never the URL.
    with pytest.raises(ValueError, match="not a valid host name"):
        text.hostname(website)
    assert CompanyTraits(domain=website).domain in {"romashka.ru", "www.romashka.ru"}


@pytest.mark.parametrize(("given", "kept"), [
    ("Elena@Romashka.RU", "elena@romashka.ru"),
    ("почта@ЛАСТОЧКА.рф", "почта@ласточка.рф"),
    ("olga@xn--80aa3acqrh5b.xn--p1ai", "olga@ласточка.рф"),
])
def test_email_domains_take_the_host_name_form(given, kept):
    [event] = canonical.parse(touch(person={"email": given}), max_batch=10)
    assert event.person.email == kept


@pytest.mark.parametrize("bad", ["elena@<romashka>.ru", "elena@romashka.ru/x", "el\u0000ena@romashka.ru",
                                 "elena@roma'shka.ru"])
def test_emails_with_a_bad_host_or_control_characters_are_refused(bad):
    errors = refused(touch(person={"email": bad}))
    assert [e["field"] for e in errors] == ["person.email"]


def test_depth_of_properties_is_refused_above_the_limit_naming_properties():
    # Issue 19, item 3: 600 deep was a 500 (serialisation), 250 deep was dead-lettered downstream.
    for depth in (text.MAX_JSON_DEPTH + 1, 250, 600):
        [error] = refused(touch(properties=nested(depth)))
        assert error["field"] == "properties"
        assert f"deeper than {text.MAX_JSON_DEPTH} levels" in error["message"]


def test_the_deepest_accepted_properties_cross_every_hop():
    [event] = canonical.parse(touch(properties=nested(text.MAX_JSON_DEPTH)), max_batch=10)
    assert isinstance(event, TouchEvent)
    wire = encode(event)
    assert orjson.loads(wire) == orjson.loads(orjson.dumps(orjson.loads(wire)))
    # Every consumer's decode of the touch: grouping's router and its keyed stages...
    assert person_events.decode(wire) == event
    assert persons_inputs.decode(wire) == event
    # ... and grouping's own envelope around a message it forwards.
    outbound = Outbound(to="people", key="k", message=event)
    assert Outbound.model_validate_json(encode(outbound)) == outbound


def test_platform_payloads_with_control_characters_are_dead_lettered_naming_the_field():
    call = {"type": "identify", "messageId": "m-1", "anonymousId": "a-1",
            "traits": {"email": "elena@romashka.ru", "name": "Nul\u0000Name"}}
    [result] = segment.parse(call, RECEIVED, max_batch=10)
    assert isinstance(result, Unmapped) and result.detail.startswith("person.name:")
    hook = {"event": "webinar.registration_created", "event_ts": 1759300000000,
            "payload": {"object": {"id": "1", "topic": "HR", "registrant": {
                "email": "elena@romashka.ru", "first_name": "Ел\u0000ена"}}}}
    [result] = zoom.parse(hook)
    assert isinstance(result, Unmapped) and result.detail.startswith("person.name:")


def test_identity_events_refuse_the_same_text():
    with pytest.raises(ValidationError) as caught:
        IdentityEvent(event_id="i\u0000", occurred_at=RECEIVED, person={"email": "elena@romashka.ru"})
    assert [e["loc"] for e in caught.value.errors()] == [("event_id",)]
