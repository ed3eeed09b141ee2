from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from services.ingest.adapters import canonical, segment, sendgrid, zoom
from services.ingest.adapters.results import Ignored, PayloadError, Rejected, Unmapped
from shared.schemas.touch import IdentityEvent, Source, TouchEvent, TouchKind
from tests.support.payloads import load

RECEIVED = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)


def test_segment_batch_maps_page_track_identify_group():
    results = segment.parse(load("segment_batch.json"), RECEIVED, max_batch=1000)
    page, track, identify, group = results
    assert isinstance(page, TouchEvent) and page.kind is TouchKind.page_view and page.source is Source.web
    assert page.event_id == "segment:ajs-next-1700000001-romashka-1"
    assert page.content.url == "https://vendor.example/solutions/hr/overview"
    assert page.context.utm == {"utm_source": "yandex", "utm_medium": "cpc", "utm_name": "hr-autumn"}
    assert page.occurred_at == datetime(2026, 10, 1, 9, 15, tzinfo=UTC)
    assert page.key() == "anon:7f3c9a1e-romashka-hr"
    assert isinstance(track, TouchEvent) and track.kind is TouchKind.download
    assert track.content.asset_id == "hr-leave-automation-brochure"
    assert isinstance(identify, IdentityEvent)
    assert identify.person.email == "elena.sokolova@romashka.ru"
    assert identify.person.anonymous_id == "7f3c9a1e-romashka-hr" and identify.person.user_id == "crm-lead-1001"
    assert identify.person.job_title == "HR-менеджер" and identify.person.company == "ООО «Красная ромашка»"
    assert identify.person.name == "Елена Соколова"
    # The identify call keys like the session it names, so it stays in order with its touches.
    assert identify.key() == page.key()
    assert isinstance(group, IdentityEvent) and group.company.group_id == "romashka.ru"
    assert group.company.name == "Красная ромашка" and group.company.domain == "romashka.ru"


@pytest.mark.parametrize(("name", "kind", "source"), [
    ("Webinar Registered", TouchKind.webinar_registered, Source.webinar),
    ("Webinar Attended", TouchKind.webinar_attended, Source.webinar),
    ("Demo Requested", TouchKind.demo_requested, Source.form),
    ("Form Submitted", TouchKind.form_submitted, Source.form),
    ("Whitepaper Downloaded", TouchKind.download, Source.web),
    ("Conference Registered", TouchKind.event_registered, Source.event),
    ("Pricing Calculator Used", TouchKind.content_engaged, Source.web),
])
def test_segment_track_names_map_to_kinds(name, kind, source):
    assert segment.track_kind(name) == (kind, source)


def test_segment_without_timestamp_uses_received_time():
    call = {"type": "page", "messageId": "m-1", "anonymousId": "a-1"}
    [event] = segment.parse(call, RECEIVED, max_batch=10)
    assert event.occurred_at == RECEIVED


def test_segment_call_without_any_id_is_rejected_with_field():
    with pytest.raises(ValidationError) as err:
        segment.parse({"type": "page", "messageId": "m-2"}, RECEIVED, max_batch=10)
    assert "a Segment call needs anonymousId or userId" in str(err.value)


def test_segment_batch_over_limit_names_the_field():
    body = {"batch": [{"type": "page", "messageId": f"m-{i}", "anonymousId": "a"} for i in range(3)]}
    with pytest.raises(PayloadError) as err:
        segment.parse(body, RECEIVED, max_batch=2)
    assert err.value.field == "batch"


def test_segment_bad_email_in_traits_is_unmapped_not_lost():
    call = {"type": "identify", "messageId": "m-3", "userId": "u-3", "traits": {"email": "nope@"}}
    [result] = segment.parse(call, RECEIVED, max_batch=10)
    assert isinstance(result, Unmapped)
    assert result.reason == "invalid_canonical_event" and "person.email" in result.detail
    assert result.dedupe_id == "segment:m-3"


def test_sendgrid_events():
    opened, clicked, processed, broken = sendgrid.parse(load("sendgrid_events.json"), max_batch=1000)
    assert isinstance(opened, TouchEvent) and opened.kind is TouchKind.email_open
    assert opened.event_id == "sendgrid:sg-open-petrova-0001"
    assert opened.occurred_at == datetime.fromtimestamp(1759741200, UTC)
    assert opened.content.asset_id == "hr-roi-case-study" and opened.content.topic == "hr-roi-nurture"
    assert opened.key() == "email:o.petrova@romashka.ru"
    assert isinstance(clicked, TouchEvent) and clicked.kind is TouchKind.email_click
    assert clicked.content.url.startswith("https://vendor.example/solutions/hr/roi-case-study")
    assert isinstance(processed, Ignored) and "processed" in processed.reason
    assert isinstance(broken, Unmapped) and broken.reason == "invalid_email"
    assert broken.dedupe_id == "sendgrid:sg-open-broken-0004"


def test_sendgrid_missing_field_rejects_that_item_with_its_path():
    [rejected] = sendgrid.parse([{"email": "a@b.ru", "event": "open", "timestamp": 1}], max_batch=10)
    assert isinstance(rejected, Rejected) and rejected.index == 0
    assert rejected.errors == [{"field": "0.sg_event_id", "message": "Field required"}]


def test_zoom_registration_carries_title_org_and_stated_role():
    [event] = zoom.parse(load("zoom_registration_created.json"))
    assert isinstance(event, TouchEvent)
    assert event.kind is TouchKind.webinar_registered and event.source is Source.webinar
    assert event.person.email == "s.volkov@romashka.ru"
    assert event.person.job_title == "IT-директор" and event.person.company == "Красная ромашка"
    assert event.person.stated_role == "Evaluator/Recommender"
    assert event.content.topic == "Интеграция HR-системы с 1С и ИТ-ландшафтом"
    assert event.occurred_at == datetime(2026, 10, 7, 9, 0, tzinfo=UTC)


def test_zoom_participant_joined():
    [event] = zoom.parse(load("zoom_participant_joined.json"))
    assert event.kind is TouchKind.webinar_attended
    assert event.occurred_at == datetime(2026, 10, 15, 10, 1, tzinfo=UTC)
    assert event.person.name == "Сергей Волков"


def test_zoom_other_events_are_ignored_and_registrant_without_email_is_unmapped():
    [ignored] = zoom.parse({"event": "webinar.started", "event_ts": 1, "payload": {}})
    assert isinstance(ignored, Ignored)
    body = load("zoom_registration_created.json")
    del body["payload"]["object"]["registrant"]["email"]
    [unmapped] = zoom.parse(body)
    assert isinstance(unmapped, Unmapped) and unmapped.reason == "no_identifier"


def test_zoom_signature_and_url_validation():
    sig = zoom.signature("secret", "1700000000", b'{"a":1}')
    assert sig.startswith("v0=") and len(sig) == 3 + 64
    assert zoom.signature("secret", "1700000001", b'{"a":1}') != sig
    answer = zoom.url_validation_response("secret", "qgg8vlvZRS6UYooatFL8Aw")
    assert answer["plainToken"] == "qgg8vlvZRS6UYooatFL8Aw" and len(answer["encryptedToken"]) == 64


def test_canonical_single_list_and_envelope():
    event = {"event_id": "c-1", "occurred_at": "2026-10-01T10:00:00+03:00", "source": "web",
             "kind": "page_view", "person": {"email": "A@Romashka.RU"}}
    [single] = canonical.parse(event, max_batch=10)
    assert single.person.email == "a@romashka.ru"
    assert single.occurred_at == datetime(2026, 10, 1, 7, 0, tzinfo=UTC)
    assert len(canonical.parse([event, {**event, "event_id": "c-2"}], max_batch=10)) == 2
    assert len(canonical.parse({"events": [event]}, max_batch=10)) == 1
    with pytest.raises(PayloadError) as err:
        canonical.parse({"events": [event] * 3}, max_batch=2)
    assert err.value.field == "events"


def test_canonical_person_needs_an_identifier():
    event = {"event_id": "c-3", "occurred_at": "2026-10-01T10:00:00Z", "source": "web",
             "kind": "page_view", "person": {"name": "Аноним"}}
    [rejected] = canonical.parse(event, max_batch=10)
    assert isinstance(rejected, Rejected) and rejected.index == 0
    assert "at least one of email, user_id, anonymous_id" in rejected.detail
