"""Issue 13, item 1: each item of a batch stands alone (pure mapping; the API side is in
tests/component/ingest/test_field_cases.py)."""

from datetime import UTC, datetime

from services.ingest.adapters import batch, canonical, segment, sendgrid, zoom
from services.ingest.adapters.results import Ignored, Rejected, Unmapped
from shared.schemas.touch import IdentityEvent, TimeAdjustment, TouchEvent

RECEIVED = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TRACK = {"type": "track", "messageId": "m-track", "anonymousId": "a-1", "event": "Brochure Downloaded",
         "timestamp": "2026-11-25T09:00:00Z"}


def test_segment_empty_user_id_means_no_user_id():
    identify = {"type": "identify", "messageId": "m-id", "userId": "", "anonymousId": "a-1",
                "traits": {"email": "anna@berezka.ru"}}
    ident, track = segment.parse({"batch": [identify, TRACK]}, RECEIVED, max_batch=10)
    assert isinstance(ident, IdentityEvent) and ident.person.user_id is None
    assert ident.person.anonymous_id == "a-1" and ident.person.email == "anna@berezka.ru"
    assert isinstance(track, TouchEvent)


def test_segment_timestamp_without_offset_is_utc_and_marked_assumed():
    naive = {**TRACK, "messageId": "m-naive", "timestamp": "2026-11-25T09:05:00"}
    plus = {**TRACK, "messageId": "m-plus", "timestamp": "2026-11-25T12:05:00+0300"}
    colon = {**TRACK, "messageId": "m-colon", "timestamp": "2026-11-25T12:05:00+03:00"}
    got = segment.parse({"batch": [naive, plus, colon]}, RECEIVED, max_batch=10)
    assert [e.occurred_at for e in got] == [datetime(2026, 11, 25, 9, 5, tzinfo=UTC)] * 3
    assert [e.time_adjustments for e in got] == [(TimeAdjustment.assumed_utc,), (), ()]


def test_segment_bad_call_is_rejected_alone_with_its_path():
    bad = {**TRACK, "messageId": "m-bad", "timestamp": "yesterday"}
    good, rejected = segment.parse({"batch": [TRACK, bad]}, RECEIVED, max_batch=10)
    assert isinstance(good, TouchEvent)
    assert isinstance(rejected, Rejected) and rejected.index == 1 and rejected.dedupe_id == "segment:m-bad"
    assert [e["field"] for e in rejected.errors] == ["batch.1.timestamp"]


def test_sendgrid_non_touch_event_needs_no_sg_event_id():
    click = {"email": "o.petrova@romashka.ru", "timestamp": 1764061200, "event": "click",
             "sg_event_id": "sg-click-1", "url": "https://vendor.example/hr"}
    unsubscribe = {"email": "o.petrova@romashka.ru", "timestamp": 1764061300, "event": "group_unsubscribe",
                   "asm_group_id": 42}
    touch, ignored = sendgrid.parse([click, unsubscribe], max_batch=10)
    assert isinstance(touch, TouchEvent) and touch.event_id == "sendgrid:sg-click-1"
    assert isinstance(ignored, Ignored) and "group_unsubscribe" in ignored.reason


def test_zoom_webhook_that_does_not_fit_is_rejected_not_raised():
    [rejected] = zoom.parse({"event": "webinar.participant_joined", "event_ts": 1, "payload": {"object": {}}})
    assert isinstance(rejected, Rejected)
    assert [e["field"] for e in rejected.errors] == ["payload.object.id"]


def test_canonical_batch_items_stand_alone():
    good = {"event_id": "c-1", "occurred_at": "2026-10-01T10:00:00Z", "source": "web", "kind": "page_view",
            "person": {"email": "a@romashka.ru"}}
    bad = {**good, "event_id": "c-2", "person": {"email": "broken@"}}
    ok, rejected = canonical.parse({"events": [good, bad]}, max_batch=10)
    assert isinstance(ok, TouchEvent)
    assert isinstance(rejected, Rejected) and rejected.dedupe_id == "c-2"
    assert rejected.errors[0]["field"] == "events.1.person.email"
    assert batch.failure_entry(rejected)["index"] == 1
    assert not batch.all_rejected([ok, rejected]) and batch.all_rejected([rejected])


def test_segment_skew_rule_and_future_bound():
    from datetime import timedelta

    from services.ingest.timing import bound_future

    ahead = RECEIVED + timedelta(days=365)
    call = {"type": "page", "messageId": "m-skew", "anonymousId": "a-1",
            "originalTimestamp": (ahead - timedelta(seconds=30)).isoformat(), "sentAt": ahead.isoformat(),
            "receivedAt": RECEIVED.isoformat()}
    [event] = segment.parse(call, RECEIVED, max_batch=10)
    assert event.occurred_at == RECEIVED - timedelta(seconds=30)
    assert event.original_occurred_at == ahead - timedelta(seconds=30)
    # timestamp, when present, is Segment's corrected time and wins.
    [event] = segment.parse({**call, "timestamp": "2026-11-25T11:00:00Z"}, RECEIVED, max_batch=10)
    assert event.occurred_at == datetime(2026, 11, 25, 11, 0, tzinfo=UTC) and event.time_adjustments == ()
    # The batch's sentAt applies to calls without their own.
    no_sent = {k: v for k, v in call.items() if k != "sentAt"}
    [event] = segment.parse({"batch": [no_sent], "sentAt": ahead.isoformat()}, RECEIVED, max_batch=10)
    assert event.occurred_at == RECEIVED - timedelta(seconds=30)

    [future] = segment.parse(no_sent, RECEIVED, max_batch=10)
    tolerance = timedelta(minutes=5)
    clamped = bound_future(future, RECEIVED, tolerance, refuse=False)
    assert clamped.occurred_at == RECEIVED and clamped.original_occurred_at == ahead - timedelta(seconds=30)
    assert clamped.time_adjustments == (TimeAdjustment.clamped_to_receipt,)
    refused = bound_future(future, RECEIVED, tolerance, refuse=True)
    assert isinstance(refused, Unmapped) and refused.reason == "future_event_time"
    near = future.model_copy(update={"occurred_at": RECEIVED + timedelta(minutes=4)})
    assert bound_future(near, RECEIVED, tolerance, refuse=True) is near


def test_canonical_envelope_sent_at_removes_client_skew():
    from datetime import timedelta

    event = {"event_id": "c-skew", "occurred_at": "2027-11-25T11:59:00Z", "source": "web", "kind": "page_view",
             "person": {"email": "a@romashka.ru"}}
    [fixed] = canonical.parse({"events": [event], "sent_at": "2027-11-25T12:00:00Z"}, 10, RECEIVED)
    assert fixed.occurred_at == RECEIVED - timedelta(minutes=1)
    assert fixed.time_adjustments == (TimeAdjustment.skew_corrected,)
