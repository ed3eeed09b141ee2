"""POST each source's real-format payloads to the running ingest service; read them back from Kafka."""

import base64
import time
import uuid

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.ingest.adapters import zoom
from services.ingest.settings import DEV_ZOOM_SECRET
from shared import topics
from shared.schemas.touch import IdentityEvent, TouchEvent
from tests.support.docs import assert_docs_self_hosted
from tests.support.kafka import written
from tests.support.payloads import load
from tests.support.privacy import revealed, unsealed_letter

API = {"X-API-Key": "dev-api-key"}
SENDGRID = {"X-API-Key": "dev-sendgrid-key"}


def unique(payload: object, tag: str) -> bytes:
    """The fixture payload with every id made unique for this test run."""
    return orjson.dumps(payload).replace(b"romashka", f"romashka{tag}".encode()).replace(
        b"sg-", f"sg-{tag}-".encode()).replace(b"ajs-next", f"ajs-{tag}".encode()).replace(
        b"4444AAA", f"4444AAA{tag}".encode()).replace(b"abcdefghij0", f"abcdefghij0{tag}".encode())


def zoom_headers(body: bytes, secret: str = DEV_ZOOM_SECRET) -> dict[str, str]:
    ts = str(int(time.time()))
    return {"x-zm-request-timestamp": ts, "x-zm-signature": zoom.signature(secret, ts, body),
            "content-type": "application/json"}


async def person_events_for(predicate, count: int) -> list:
    """Exactly `count` person events match: ingest answered after Kafka acknowledged them."""
    return await written(topics.PERSON_EVENTS.name, count, revealed, predicate)


async def test_segment_batch_lands_in_order_on_the_session_key(ingest_url):
    tag = uuid.uuid4().hex[:8]
    body = unique(load("segment_batch.json"), tag)
    basic = base64.b64encode(b"dev-segment-key:").decode()
    r = httpx.post(f"{ingest_url}/v1/sources/segment", content=body,
                   headers={"Authorization": f"Basic {basic}", "content-type": "application/json"})
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 4
    got = await person_events_for(lambda e: tag in e.event_id, 4)
    # page, track and identify share the anonymous id and so the partition: their order holds.
    session = [e for e in got if e.person.anonymous_id]
    assert [type(e) for e in session] == [TouchEvent, TouchEvent, IdentityEvent]
    assert [e.event_id.split("-")[-1] for e in session] == ["1", "2", "3"]
    assert session[2].person.email == f"elena.sokolova@romashka{tag}.ru"
    [group] = [e for e in got if not e.person.anonymous_id]
    assert isinstance(group, IdentityEvent) and group.company.group_id == f"romashka{tag}.ru"


async def test_sendgrid_events_touches_ignored_and_dead_lettered(ingest_url):
    tag = uuid.uuid4().hex[:8]
    body = unique(load("sendgrid_events.json"), tag)
    r = httpx.post(f"{ingest_url}/v1/sources/sendgrid", content=body, headers=SENDGRID)
    assert r.status_code == 202, r.text
    result = r.json()
    assert (result["accepted"], result["dead_lettered"], len(result["ignored"])) == (2, 1, 1)
    got = await person_events_for(lambda e: tag in e.event_id, 2)
    assert {e.kind for e in got} == {"email_open", "email_click"}
    [letter] = await written(topics.INGEST_DLQ.name, 1, unsealed_letter, lambda d: tag in d.payload)
    assert letter.reason == "invalid_email" and "not-an-address" in letter.detail


async def test_zoom_webhooks_signed_and_url_validation(ingest_url):
    tag = uuid.uuid4().hex[:8]
    for name in ("zoom_registration_created.json", "zoom_participant_joined.json"):
        body = unique(load(name), tag)
        r = httpx.post(f"{ingest_url}/v1/sources/zoom", content=body, headers=zoom_headers(body))
        assert r.status_code == 200, r.text  # Zoom takes only 200 or 204 as delivered
    got = await person_events_for(lambda e: tag in (e.person.email or ""), 2)
    assert [e.kind for e in got] == ["webinar_registered", "webinar_attended"]
    assert got[0].person.stated_role == "Evaluator/Recommender" and got[0].person.job_title == "IT-директор"

    challenge = orjson.dumps({"event": "endpoint.url_validation", "event_ts": 1,
                              "payload": {"plainToken": "plain-123"}})
    r = httpx.post(f"{ingest_url}/v1/sources/zoom", content=challenge, headers=zoom_headers(challenge))
    assert r.status_code == 200
    assert r.json() == zoom.url_validation_response(DEV_ZOOM_SECRET, "plain-123")

    forged = zoom_headers(challenge, secret="someone-else")
    r = httpx.post(f"{ingest_url}/v1/sources/zoom", content=challenge, headers=forged)
    assert r.status_code == 403 and r.json()["error"] == "forbidden"


async def test_duplicates_are_acknowledged_but_produced_once(ingest_url):
    tag = uuid.uuid4().hex[:8]
    event = {"event_id": f"dup-{tag}", "occurred_at": "2026-10-01T10:00:00Z", "source": "web",
             "kind": "download", "person": {"email": f"a@dup{tag}.ru"},
             "content": {"url": "https://vendor.example/solutions/hr/brochure"}}
    first = httpx.post(f"{ingest_url}/v1/events", json=event, headers=API)
    again = httpx.post(f"{ingest_url}/v1/events", json=[event, event], headers=API)
    assert first.json()["accepted"] == 1
    assert again.status_code == 202 and again.json() == {
        "accepted": 0, "duplicates": 2, "dead_lettered": 0, "ignored": [], "event_ids": [], "failed": []}
    sendgrid_body = unique(load("sendgrid_events.json")[:1], tag)
    for _ in range(3):
        r = httpx.post(f"{ingest_url}/v1/sources/sendgrid", content=sendgrid_body, headers=SENDGRID)
        assert r.status_code == 202
    got = await person_events_for(lambda e: tag in e.event_id, 2)
    assert sorted(e.event_id for e in got) == sorted([f"dup-{tag}", f"sendgrid:sg-{tag}-open-petrova-0001"])


async def test_batch_of_a_thousand_is_accepted_and_one_more_is_refused(ingest_url):
    tag = uuid.uuid4().hex[:8]
    events = [{"event_id": f"b-{tag}-{i}", "occurred_at": "2026-10-01T10:00:00Z", "source": "web",
               "kind": "page_view", "person": {"anonymous_id": f"anon-{tag}-{i % 50}"}} for i in range(1001)]
    r = httpx.post(f"{ingest_url}/v1/events", json={"events": events}, headers=API, timeout=30)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "events"
    r = httpx.post(f"{ingest_url}/v1/events", json={"events": events[:1000]}, headers=API, timeout=30)
    assert r.status_code == 202 and r.json()["accepted"] == 1000
    got = await person_events_for(lambda e: e.event_id.startswith(f"b-{tag}-"), 1000)
    assert len({e.event_id for e in got}) == 1000


@pytest.mark.parametrize(("path", "body", "headers", "status", "field"), [
    ("/v1/events", b'{"event_id": "x"', API, 422, "(body)"),
    ("/v1/events", b'{"event_id": "x", "occurred_at": "2026-10-01T10:00:00", "source": "web",'
                   b' "kind": "page_view", "person": {"email": "a@b.ru"}}', API, 422, "occurred_at"),
    ("/v1/events", b'{"event_id": "x", "occurred_at": "2026-10-01T10:00:00Z", "source": "tv",'
                   b' "kind": "page_view", "person": {"email": "a@b.ru"}}', API, 422, "source"),
    ("/v1/events", b'{"events": [{"event_id": "x", "occurred_at": "2026-10-01T10:00:00Z", "source": "web",'
                   b' "kind": "page_view", "person": {"email": "broken@"}}]}', API, 422, "events.0.person.email"),
    ("/v1/events", b"{}", {}, 401, None),
    ("/v1/events", b"{}", {"X-API-Key": "dev-segment-key"}, 403, None),
    ("/v1/sources/segment", b'{"type": "page", "messageId": "m"}', {"X-API-Key": "dev-segment-key"}, 422, "(body)"),
    ("/v1/sources/segment", b'{"type": "page", "messageId": "m", "anonymousId": "a", "timestamp": "yesterday"}',
     {"X-API-Key": "dev-segment-key"}, 422, "timestamp"),
    ("/v1/sources/sendgrid", b'{"email": "a@b.ru"', {"X-API-Key": "dev-sendgrid-key"}, 422, "(body)"),
    ("/v1/sources/zoom", b"{}", {}, 401, None),
])
def test_bad_input_gets_a_clear_4xx(ingest_url, path, body, headers, status, field):
    r = httpx.post(f"{ingest_url}{path}", content=body, headers={"content-type": "application/json", **headers})
    assert r.status_code == status, r.text
    payload = r.json()
    assert payload["message"]
    if field is not None:
        assert field in [e["field"] for e in payload["errors"]], payload


def test_oversized_body_is_413(ingest_url):
    r = httpx.post(f"{ingest_url}/v1/events", content=b"[" + b" " * (6 * 1024 * 1024) + b"]",
                   headers={**API, "content-type": "application/json"}, timeout=30)
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"


def accepted_by_api(ingest_url: str) -> float:
    """bg_ingest_events_total{source="api", outcome="accepted"} as /metrics tells it (0 before any)."""
    families = text_string_to_metric_families(httpx.get(f"{ingest_url}/metrics/").text)
    return sum(s.value for f in families for s in f.samples if s.name == "bg_ingest_events_total"
               and s.labels == {"source": "api", "outcome": "accepted"})


def test_health_readiness_and_metrics(ingest_url):
    assert httpx.get(f"{ingest_url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{ingest_url}/readyz").json()
    assert ready["checks"] == {"kafka": True, "redis": True}
    # The test posts its own event: what other tests of the module sent before it depends on
    # the order they run in.
    before = accepted_by_api(ingest_url)
    event = {"event_id": f"metrics-{uuid.uuid4().hex}", "occurred_at": "2026-10-01T10:00:00Z", "source": "web",
             "kind": "page_view", "person": {"email": "metrics@romashka.ru"}}
    assert httpx.post(f"{ingest_url}/v1/events", json=event, headers=API).status_code == 202
    assert accepted_by_api(ingest_url) == before + 1


async def test_domain_stories_in_platform_formats_all_land(ingest_url):
    from demo.send import send_all
    from demo.stories import all_stories

    tag = uuid.uuid4().hex[:8]
    requests = all_stories(tag)
    totals = send_all(ingest_url, requests)
    assert totals["requests"] == len(requests)
    assert totals["dead_lettered"] == 0 and totals["duplicates"] == 0
    got = await person_events_for(lambda e: tag in (e.person.email or e.person.anonymous_id or ""),
                                  totals["accepted"])
    companies = {e.person.email.split("@")[1] for e in got if e.person.email}
    assert {f"hr.romashka{tag}.ru", f"romashka{tag}.ru", f"gazmyasneft{tag}.ru", f"argotrubosbyt{tag}.ru"} <= companies


def test_docs_are_served_by_ingest_itself_and_declare_its_security(ingest_url):
    assert_docs_self_hosted(ingest_url)
    spec = httpx.get(f"{ingest_url}/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["apiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key",
                                 "description": "An API key of the source (INGEST_API_KEYS)."}
    assert {"bearer", "basic", "zoomSignature", "segmentSignature", "sendgridSignature"} <= set(schemes)
    assert spec["paths"]["/v1/events"]["post"]["security"] == [{"apiKey": []}, {"bearer": []}, {"basic": []}]
    assert spec["paths"]["/v1/sources/zoom"]["post"]["security"] == [{"zoomSignature": []}]
    assert "requestBody" in spec["paths"]["/v1/events"]["post"]  # the app's own additions stay
