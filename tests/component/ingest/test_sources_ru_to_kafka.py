"""The Russian stack through the running ingest service into Kafka, with fixtures in each vendor's
documented shape (made-up people): Tilda, MTS Link, Unisender Go, Calltouch, Roistat."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator

import httpx
import pytest

from services.ingest.adapters import mtslink
from shared import topics
from tests.support.kafka import written
from tests.support.payloads import load
from tests.support.privacy import revealed, unsealed_letter
from tests.support.processes import ServiceProcess, free_port

MTSLINK_SECRET = "mtslink-test-secret"


# Exactly `count` match: ingest answered after Kafka acknowledged what it wrote.
async def person_events_for(predicate, count: int) -> list:
    return await written(topics.PERSON_EVENTS.name, count, revealed, predicate)


async def dead_letters_for(tag: str, count: int) -> list:
    return await written(topics.INGEST_DLQ.name, count, unsealed_letter, lambda d: tag in d.payload)


def unisender_body(body: dict, api_key: str = "dev-unisender-api-key") -> bytes:
    """Signed as Unisender Go does: MD5 of the body with the API key in `auth`, then the hash put there."""
    with_key = json.dumps({**body, "auth": api_key}, ensure_ascii=False).encode()
    return with_key.replace(f'"{api_key}"'.encode(), f'"{hashlib.md5(with_key).hexdigest()}"'.encode(), 1)


def test_tilda_form_handshake_key_and_a_form_fill(ingest_url):
    url = f"{ingest_url}/v1/sources/tilda"
    assert httpx.post(url, data={"test": "test"}).status_code == 401
    assert httpx.post(url, params={"key": "wrong"}, data={"test": "test"}).status_code == 403
    handshake = httpx.post(url, params={"key": "dev-tilda-key"}, data={"test": "test"})
    assert (handshake.status_code, handshake.text) == (200, "ok")
    missing = httpx.post(url, params={"key": "dev-tilda-key"}, data={"Email": "a@b.ru"})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "tranid"


async def test_tilda_form_lands_with_clientid_phone_and_once(ingest_url):
    tag = uuid.uuid4().hex[:8]
    fields = load("tilda_form.json") | {"tranid": f"3617283:{tag}", "Email": f"e.sokolova@hr.romashka{tag}.ru"}
    url = f"{ingest_url}/v1/sources/tilda?key=dev-tilda-key"
    first, again = httpx.post(url, data=fields), httpx.post(url, data=fields)  # Tilda retries
    assert first.status_code == 200, first.text
    assert (first.json()["accepted"], again.json()["duplicates"]) == (1, 1)
    [touch] = await person_events_for(lambda e: e.event_id == f"tilda:3617283:{tag}", 1)
    assert (touch.kind, touch.person.anonymous_id, touch.person.user_id) == (
        "download", "ym:1727770000123456789", "tel:+79165550123")
    assert touch.person.company == "ООО «Красная ромашка»"


async def test_mtslink_registration_by_key_lands(ingest_url):
    tag = uuid.uuid4().hex[:8]
    body = load("mtslink_registration.json")
    body["data"] |= {"eventSessionId": f"s-{tag}", "email": f"s.volkov@romashka{tag}.ru"}
    r = httpx.post(f"{ingest_url}/v1/sources/mtslink", params={"key": "dev-mtslink-key"}, json=body)
    assert r.status_code == 200, r.text
    [touch] = await person_events_for(lambda e: tag in e.event_id, 1)
    assert (touch.kind, touch.person.job_title, touch.person.user_id) == (
        "webinar_registered", "IT-директор", "tel:+79165550234")
    reminder = {"event": "event.beforeReminder.sent", "occurredAt": "2026-10-05T09:00:00Z", "data": {}}
    r = httpx.post(f"{ingest_url}/v1/sources/mtslink", params={"key": "dev-mtslink-key"}, json=reminder)
    assert r.status_code == 200 and r.json()["ignored"] == ["mtslink event 'event.beforeReminder.sent' is not a touch"]


@pytest.fixture(scope="module")
def signed_ingest_url(topic_namespace: str) -> Iterator[str]:
    """An ingest with MTS Link's webhook secret set: signatures are then required."""
    port = free_port()
    with ServiceProcess("ingest-mtslink-signed", ["-m", "services.ingest"],
                        env={"BG_INGEST_PORT": str(port), "INGEST_MTSLINK_WEBHOOK_SECRET": MTSLINK_SECRET},
                        health_url=f"http://127.0.0.1:{port}/readyz"):
        yield f"http://127.0.0.1:{port}"


async def test_mtslink_signed_webhook(signed_ingest_url):
    tag = uuid.uuid4().hex[:8]
    body = load("mtslink_registration.json")
    body["data"] |= {"eventSessionId": f"s-{tag}", "email": f"s.volkov@romashka{tag}.ru"}
    raw = json.dumps(body, ensure_ascii=False).encode()
    url = f"{signed_ingest_url}/v1/sources/mtslink"
    headers = {"content-type": "application/json"}
    assert httpx.post(url, content=raw, headers=headers).status_code == 401
    bad = httpx.post(url, content=raw, headers=headers | {"X-Webhook-Signature": mtslink.signature("x", raw)})
    assert bad.status_code == 403
    ok = httpx.post(url, content=raw,
                    headers=headers | {"X-Webhook-Signature": mtslink.signature(MTSLINK_SECRET, raw)})
    assert ok.status_code == 200 and ok.json()["accepted"] == 1, ok.text
    await person_events_for(lambda e: tag in e.event_id, 1)


async def test_unisender_auth_items_stand_alone_and_dead_letter(ingest_url):
    tag = uuid.uuid4().hex[:8]
    body = load("unisender_events.json")
    for event in body["events_by_user"][0]["events"]:
        data = event["event_data"]
        if "job_id" in data:
            data["job_id"] = f"{data['job_id']}-{tag}"
        if "@" in data.get("email", ""):
            data["email"] = data["email"].replace("romashka", f"romashka{tag}")
        elif "email" in data:
            data["email"] = f"not-an-address-{tag}"
    raw = unisender_body(body)
    url = f"{ingest_url}/v1/sources/unisender"
    assert httpx.post(url, content=unisender_body(body, "wrong-key")).status_code == 403
    assert httpx.post(url, content=raw.replace(b"opened", b"clicked", 1)).status_code == 403  # tampered
    r = httpx.post(url, content=raw)
    assert r.status_code == 200, r.text
    result = r.json()
    assert (result["accepted"], result["dead_lettered"], len(result["ignored"])) == (2, 1, 2)
    got = await person_events_for(lambda e: tag in (e.person.email or ""), 2)
    assert {e.kind for e in got} == {"email_open", "email_click"}
    [letter] = await dead_letters_for(tag, 1)
    assert letter.reason == "invalid_email" and "event_data.email" in letter.detail
    # A retried webhook writes no touch twice (whether the failed item is dead-lettered again or
    # counted a duplicate is ingest's dedupe policy for failed items, not this adapter's).
    retried = httpx.post(url, content=raw).json()
    assert retried["accepted"] == 0 and retried["duplicates"] >= 2
    assert retried["duplicates"] + retried["dead_lettered"] == 3


async def test_calltouch_call_from_the_allowed_subnet(ingest_url):
    tag = uuid.uuid4().hex[:8]
    fields = load("calltouch_call.json") | {"callId": f"5522-{tag}"}
    url = f"{ingest_url}/v1/sources/calltouch"
    assert httpx.post(url, params={"key": "wrong"}, data=fields).status_code == 403
    r = httpx.post(url, params={"key": "dev-calltouch-key"}, data=fields)
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    # Reported again when the call ends: the same call, written once.
    again = httpx.post(url, params={"key": "dev-calltouch-key"}, data=fields | {"callphase": "callconnected"})
    assert again.json()["duplicates"] == 1
    [call] = await person_events_for(lambda e: e.event_id == f"calltouch:5522-{tag}", 1)
    assert (call.kind, call.person.user_id, call.person.anonymous_id) == (
        "call", "tel:+79165550234", "ym:1727770000987654321")
    assert call.properties["target_call"] is True and call.properties["duration_seconds"] == 184


async def test_a_calltouch_call_too_large_for_kafka_is_413_and_writes_nothing(ingest_url):
    # Calltouch maps its one item itself (no batch.each_item): its oversized event used to reach
    # the producer and answer 503 to every retry.
    tag = uuid.uuid4().hex[:8]
    fields = load("calltouch_call.json") | {"callId": f"5523-{tag}", "ctClientId": "7" * 1_100_000}
    r = httpx.post(f"{ingest_url}/v1/sources/calltouch", params={"key": "dev-calltouch-key"}, data=fields,
                   timeout=30)
    assert r.status_code == 413, r.text
    assert r.json()["error"] == "payload_too_large" and [e["field"] for e in r.json()["errors"]] == ["(body)"]
    # A small call after it lands: nothing of the big one was claimed or written.
    ok = httpx.post(f"{ingest_url}/v1/sources/calltouch", params={"key": "dev-calltouch-key"},
                    data=load("calltouch_call.json") | {"callId": f"5524-{tag}"}, timeout=30)
    assert ok.status_code == 200 and ok.json()["accepted"] == 1
    got = await person_events_for(lambda e: e.event_id.startswith("calltouch:552") and tag in e.event_id, 1)
    assert [e.event_id for e in got] == [f"calltouch:5524-{tag}"]


@pytest.fixture(scope="module")
def calltouch_elsewhere_url(topic_namespace: str) -> Iterator[str]:
    """An ingest that accepts Calltouch only from Calltouch's own subnet (not loopback)."""
    port = free_port()
    with ServiceProcess("ingest-calltouch-subnet", ["-m", "services.ingest"],
                        env={"BG_INGEST_PORT": str(port), "INGEST_CALLTOUCH_SUBNETS": '["92.118.66.0/23"]'},
                        health_url=f"http://127.0.0.1:{port}/healthz"):  # refusing needs no Kafka
        yield f"http://127.0.0.1:{port}"


def test_calltouch_refuses_other_senders(calltouch_elsewhere_url):
    r = httpx.post(f"{calltouch_elsewhere_url}/v1/sources/calltouch", params={"key": "dev-calltouch-key"},
                   data=load("calltouch_call.json"))
    assert r.status_code == 403 and "INGEST_CALLTOUCH_SUBNETS" in r.json()["message"]


async def test_roistat_call_lands_and_bad_caller_dead_letters(ingest_url):
    tag = uuid.uuid4().hex[:8]
    url = f"{ingest_url}/v1/sources/roistat?key=dev-roistat-key"
    r = httpx.post(url, json=load("roistat_call.json") | {"id": f"313-{tag}"})
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    [call] = await person_events_for(lambda e: e.event_id == f"roistat:313-{tag}", 1)
    assert (call.kind, call.person.user_id, call.person.anonymous_id) == ("call", "tel:+79165550345", "roistat:123456")
    r = httpx.post(url, json=load("roistat_call.json") | {"id": f"314-{tag}", "caller": "anonymous"})
    assert r.json()["dead_lettered"] == 1
    [letter] = await dead_letters_for(f"314-{tag}", 1)
    assert letter.reason == "no_identifier"
    assert httpx.post(url, json={"caller": "79165550345"}).status_code == 422
