"""Issue 13's field cases through the running ingest service and the real Kafka, with the right values."""

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import orjson

from shared import topics
from shared.schemas.touch import IdentityEvent, TouchEvent
from tests.support.kafka import written
from tests.support.payloads import load
from tests.support.privacy import revealed, unsealed_letter

SEGMENT = {"X-API-Key": "dev-segment-key", "content-type": "application/json"}
SENDGRID = {"X-API-Key": "dev-sendgrid-key", "content-type": "application/json"}


# Exactly `count` match: ingest answered after Kafka acknowledged what it wrote.
async def events_where(predicate, count: int) -> list:
    return await written(topics.PERSON_EVENTS.name, count, revealed, predicate)


async def letters_where(predicate, count: int) -> list:
    return await written(topics.INGEST_DLQ.name, count, unsealed_letter, predicate)


def post(url: str, body, headers: dict) -> httpx.Response:
    return httpx.post(url, content=orjson.dumps(body), headers=headers, timeout=30)


async def test_segment_batch_items_stand_alone(ingest_url):
    tag = uuid.uuid4().hex[:8]
    calls = [
        # RudderStack's anonymous visitor: "" means no user id.
        {"type": "identify", "messageId": f"{tag}-1", "userId": "", "anonymousId": f"anon-{tag}",
         "traits": {"email": f"anna@berezka{tag}.ru"}, "timestamp": "2026-11-25T09:00:00Z"},
        {"type": "track", "messageId": f"{tag}-2", "anonymousId": f"anon-{tag}", "event": "Brochure Downloaded",
         "timestamp": "2026-11-25T09:01:00+0300"},
        # No offset: UTC, marked as assumed.
        {"type": "page", "messageId": f"{tag}-3", "anonymousId": f"anon-{tag}", "timestamp": "2026-11-25T09:05:00"},
        {"type": "page", "messageId": f"{tag}-4", "anonymousId": f"anon-{tag}", "timestamp": "yesterday"},
    ]
    r = post(f"{ingest_url}/v1/sources/segment", {"batch": calls}, SEGMENT)
    assert r.status_code == 202, r.text
    body = r.json()
    assert (body["accepted"], body["dead_lettered"]) == (3, 1)
    [failed] = body["failed"]
    assert (failed["index"], failed["event_id"], failed["reason"]) == (3, f"segment:{tag}-4", "invalid_item")
    assert [e["field"] for e in failed["errors"]] == ["batch.3.timestamp"]

    identify, track, page = await events_where(lambda e: tag in e.event_id, 3)
    assert isinstance(identify, IdentityEvent) and identify.person.user_id is None
    assert identify.person.email == f"anna@berezka{tag}.ru"
    assert isinstance(track, TouchEvent) and track.occurred_at.isoformat() == "2026-11-25T06:01:00+00:00"
    assert track.time_adjustments == ()
    assert page.occurred_at.isoformat() == "2026-11-25T09:05:00+00:00" and page.time_adjustments == ("assumed_utc",)
    [letter] = await letters_where(lambda d: f"{tag}-4" in d.payload, 1)
    assert letter.reason == "invalid_item" and "batch.3.timestamp" in letter.detail


async def test_segment_batch_with_only_bad_calls_is_refused_and_writes_nothing(ingest_url):
    tag = uuid.uuid4().hex[:8]
    calls = [{"type": "page", "messageId": f"{tag}-{i}", "anonymousId": "a", "timestamp": "soon"} for i in range(2)]
    r = post(f"{ingest_url}/v1/sources/segment", {"batch": calls}, SEGMENT)
    assert r.status_code == 422  # Segment does not retry a 422: nothing good is held back
    assert [e["field"] for e in r.json()["errors"]] == ["batch.0.timestamp", "batch.1.timestamp"]


async def test_sendgrid_click_lands_beside_unsubscribe_without_id_and_a_broken_open(ingest_url):
    tag = uuid.uuid4().hex[:8]
    events = [
        {"email": f"o.petrova@romashka{tag}.ru", "timestamp": 1764061200, "event": "click",
         "sg_event_id": f"sg-{tag}-click", "url": "https://vendor.example/solutions/hr/roi"},
        {"email": f"o.petrova@romashka{tag}.ru", "timestamp": 1764061300, "event": "group_unsubscribe",
         "asm_group_id": 42},
        {"email": f"o.petrova@romashka{tag}.ru", "timestamp": 1764061400, "event": "open"},
    ]
    r = post(f"{ingest_url}/v1/sources/sendgrid", events, SENDGRID)
    assert r.status_code == 202, r.text
    body = r.json()
    assert (body["accepted"], body["dead_lettered"], len(body["ignored"])) == (1, 1, 1)
    assert body["failed"][0]["index"] == 2
    assert body["failed"][0]["errors"] == [{"field": "2.sg_event_id", "message": "Field required"}]
    [click] = await events_where(lambda e: tag in e.event_id, 1)
    assert click.event_id == f"sendgrid:sg-{tag}-click" and click.kind == "email_click"
    [letter] = await letters_where(lambda d: f"romashka{tag}" in d.payload, 1)
    assert letter.reason == "invalid_item" and "2.sg_event_id" in letter.detail


async def test_sendgrid_batch_of_only_bad_events_is_acknowledged_and_dead_lettered(ingest_url):
    # SendGrid retries anything but 2xx for 24 hours: the bad items go to the DLQ instead.
    tag = uuid.uuid4().hex[:8]
    events = [{"email": f"x@bad{tag}.ru", "event": "click", "timestamp": 1764061400}]
    r = post(f"{ingest_url}/v1/sources/sendgrid", events, SENDGRID)
    assert r.status_code == 202 and r.json()["dead_lettered"] == 1
    [letter] = await letters_where(lambda d: f"bad{tag}" in d.payload, 1)
    assert "0.sg_event_id" in letter.detail


async def test_segment_call_from_a_clock_a_year_ahead_is_corrected_and_clamped(ingest_url):
    """Issue 11 item 4: originalTimestamp and sentAt a year ahead, receivedAt now, no timestamp."""
    tag = uuid.uuid4().hex[:8]
    now = datetime.now(UTC).replace(microsecond=0)
    ahead = now + timedelta(days=365)
    skewed = {"type": "track", "messageId": f"{tag}-skew", "anonymousId": f"anon-{tag}", "event": "Demo Requested",
              "originalTimestamp": (ahead - timedelta(seconds=30)).isoformat(), "sentAt": ahead.isoformat(),
              "receivedAt": now.isoformat()}
    # No sentAt: nothing to correct from, so the time is clamped to ingest's clock.
    unfixable = {"type": "page", "messageId": f"{tag}-ahead", "anonymousId": f"anon-{tag}",
                 "originalTimestamp": ahead.isoformat()}
    r = post(f"{ingest_url}/v1/sources/segment", {"batch": [skewed, unfixable]}, SEGMENT)
    assert r.status_code == 202 and r.json()["accepted"] == 2, r.text
    corrected, clamped = await events_where(lambda e: tag in e.event_id, 2)
    # receivedAt - (sentAt - originalTimestamp) = now - 30 s
    assert corrected.occurred_at == now - timedelta(seconds=30)
    assert corrected.original_occurred_at == ahead - timedelta(seconds=30)
    assert corrected.time_adjustments == ("skew_corrected",)
    assert clamped.original_occurred_at == ahead and clamped.time_adjustments == ("clamped_to_receipt",)
    assert now - timedelta(minutes=1) <= clamped.occurred_at <= datetime.now(UTC)


def tagged(name: str, tag: str) -> bytes:
    """A fixture with its people, message, webinar and registrant ids made unique to this run."""
    raw = orjson.dumps(load(name))
    for old in (b"romashka", b"berezka", b"berkut", b"sg-fc", b"fc0001", b"ajs-fc", b"4444AAA", b"abcdefghij0"):
        raw = raw.replace(old, old + tag.encode())
    return raw


async def test_sendgrid_machine_open_and_link_scanner_are_kept_but_flagged(ingest_url):
    tag = uuid.uuid4().hex[:8]
    events = orjson.loads(tagged("sendgrid_field_cases.json", tag))
    # The delivery comes in one request, the scanner's click three seconds later in another.
    for part in (events[:1], events[1:]):
        r = httpx.post(f"{ingest_url}/v1/sources/sendgrid", content=orjson.dumps(part), headers=SENDGRID)
        assert r.status_code == 202, r.text
    body = r.json()
    assert (body["accepted"], body["dead_lettered"], len(body["ignored"])) == (3, 1, 1)
    got = {e.event_id.split(":")[1]: e for e in await events_where(lambda e: tag in e.event_id, 4)}
    assert (got[f"sg-fc{tag}-scanner-click-2"].automated_reason, got[f"sg-fc{tag}-machine-open-3"].automated_reason) \
        == ("link_scanner", "machine_open")
    assert not got[f"sg-fc{tag}-click-4"].automated and not got[f"sg-fc{tag}-delivered-1"].automated


async def test_zoom_reconnect_empty_and_hashed_email_are_one_attendance_with_a_duration(ingest_url):
    from tests.component.ingest.test_ingest_to_kafka import zoom_headers

    tag = uuid.uuid4().hex[:8]
    answers = []
    for name in ("zoom_registration_created.json", "zoom_participant_joined.json",
                 "zoom_participant_joined_empty_email.json", "zoom_participant_joined_hashed_email.json",
                 "zoom_participant_left.json"):
        body = tagged(name, tag)
        r = httpx.post(f"{ingest_url}/v1/sources/zoom", content=body, headers=zoom_headers(body))
        assert r.status_code == 200, r.text  # Zoom takes only 200 or 204 as delivered
        answers.append(r.json())
    # The two reconnects are the same attendance: acknowledged as duplicates, not written again.
    assert [(a["accepted"], a["duplicates"]) for a in answers] == [(1, 0), (1, 0), (0, 1), (0, 1), (1, 0)]
    got = await events_where(lambda e: tag in (e.person.email or ""), 3)
    assert [e.kind for e in got] == ["webinar_registered", "webinar_attended", "webinar_left"]
    assert {e.person.email for e in got} == {f"s.volkov@romashka{tag}.ru"}
    assert got[2].properties["session_seconds"] == 30 * 60  # latest join 10:30, left 11:00


async def test_property_a_random_bad_item_never_loses_a_good_one_through_the_service(ingest_url):
    """Hypothesis drives batches with one corrupted item through the running service; every
    good item must be accepted (then read back from Kafka), the bad one named or taken."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from tests.unit.ingest.test_batch_property import corrupted

    tag = uuid.uuid4().hex[:8]
    expected: list[str] = []
    counter = iter(range(10**6))

    @given(data=st.data(), size=st.integers(min_value=1, max_value=5))
    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
    def one_batch(data, size):
        n = next(counter)
        good = [{"email": f"p{n}-{i}@prop{tag}.ru", "timestamp": 1764061200, "event": "click",
                 "sg_event_id": f"sg-{tag}-{n}-{i}", "url": "https://vendor.example/hr"} for i in range(size)]
        at = data.draw(st.integers(min_value=0, max_value=size))
        bad = data.draw(corrupted({**good[0], "sg_event_id": f"sg-{tag}-{n}-bad", "email": f"bad{n}@prop{tag}.ru"}))
        r = post(f"{ingest_url}/v1/sources/sendgrid", [*good[:at], bad, *good[at:]], SENDGRID)
        assert r.status_code == 202, r.text
        answer = r.json()
        ids = [f"sendgrid:{g['sg_event_id']}" for g in good]
        assert set(ids) <= set(answer["event_ids"]), answer
        assert all(f["index"] == at for f in answer["failed"]), answer
        expected.extend(ids)

    one_batch()
    # The good items, each once (a corrupted item that still parses may land too: not counted).
    got = await events_where(lambda e: f"sg-{tag}-" in e.event_id and not e.event_id.endswith("-bad"), len(expected))
    assert set(expected) == {e.event_id for e in got}


async def test_segment_field_cases_fixture(ingest_url):
    """tests/fixtures/payloads/segment_field_cases.json: every new shape in one batch."""
    tag = uuid.uuid4().hex[:8]
    r = httpx.post(f"{ingest_url}/v1/sources/segment", content=tagged("segment_field_cases.json", tag),
                   headers=SEGMENT, timeout=30)
    assert r.status_code == 202, r.text
    body = r.json()
    assert (body["accepted"], [f["index"] for f in body["failed"]]) == (6, [6])
    got = {e.event_id.rsplit("-", 1)[1]: e for e in await events_where(lambda e: f"ajs-fc{tag}" in e.event_id, 6)}
    assert got["1"].person.user_id is None and got["1"].person.email == f"anna@berezka{tag}.ru"
    assert got["3"].time_adjustments == ("assumed_utc",)
    assert (got["4"].company.domain, got["5"].company.domain) == (f"www.berkut{tag}.ru", f"berkut{tag}.ru")
    assert (got["6"].automated, got["6"].automated_reason) == (True, "bot_user_agent")
    assert not got["2"].automated


async def test_refuse_policy_dead_letters_an_event_from_the_future(topic_namespace):
    """INGEST_FUTURE_POLICY=refuse: the event goes to the DLQ with both times; the rest lands."""
    from tests.support.processes import ServiceProcess, free_port

    port = free_port()
    tag = uuid.uuid4().hex[:8]
    ahead = (datetime.now(UTC) + timedelta(days=365)).isoformat()
    calls = [{"type": "page", "messageId": f"{tag}-future", "anonymousId": f"a-{tag}", "originalTimestamp": ahead},
             {"type": "page", "messageId": f"{tag}-now", "anonymousId": f"a-{tag}"}]
    with ServiceProcess("ingest-refuse", ["-m", "services.ingest"],
                        env={"BG_INGEST_PORT": str(port), "INGEST_FUTURE_POLICY": "refuse"},
                        health_url=f"http://127.0.0.1:{port}/readyz"):
        r = post(f"http://127.0.0.1:{port}/v1/sources/segment", {"batch": calls}, SEGMENT)
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 1 and r.json()["failed"][0]["reason"] == "future_event_time"
    [letter] = await letters_where(lambda d: f"{tag}-future" in d.payload, 1)
    assert letter.reason == "future_event_time" and "ahead of ingest's clock" in letter.detail
    [landed] = await events_where(lambda e: tag in e.event_id, 1)
    assert landed.event_id == f"segment:{tag}-now"


async def test_a_rejected_item_corrected_and_resent_under_the_same_id_lands(ingest_url):
    tag = uuid.uuid4().hex[:8]
    good = {"type": "page", "messageId": f"{tag}-ok", "anonymousId": f"a-{tag}", "timestamp": "2026-11-25T09:00:00Z"}
    broken = {**good, "messageId": f"{tag}-fix", "timestamp": "25/11/2026"}
    first = post(f"{ingest_url}/v1/sources/segment", {"batch": [good, broken]}, SEGMENT).json()
    assert first["failed"][0]["event_id"] == f"segment:{tag}-fix"
    fixed = {**broken, "timestamp": "2026-11-25T09:01:00Z"}
    again = post(f"{ingest_url}/v1/sources/segment", {"batch": [good, fixed]}, SEGMENT).json()
    assert (again["accepted"], again["duplicates"], again["event_ids"]) == (1, 1, [f"segment:{tag}-fix"])
    got = await events_where(lambda e: tag in e.event_id, 2)
    assert sorted(e.event_id for e in got) == [f"segment:{tag}-fix", f"segment:{tag}-ok"]
