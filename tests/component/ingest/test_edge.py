"""Issue 19's edge cases through the running ingest service and the real Kafka and Redis: each
quoted case with the right value (items 1 to 7)."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from services.ingest.adapters import zoom
from services.ingest.settings import DEV_ZOOM_SECRET
from shared import topics
from shared.codec import dead_letters
from shared.schemas.text import MAX_JSON_DEPTH
from tests.support.kafka import written
from tests.support.privacy import revealed
from tests.support.processes import ROOT, ServiceProcess, free_port

API = {"X-API-Key": "dev-api-key", "content-type": "application/json"}
SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())
SENDGRID_PUBLIC = base64.b64encode(SENDGRID_KEY.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()


@pytest.fixture(scope="module")
def edge_url(topic_namespace: str) -> Iterator[str]:
    """Ingest with SendGrid's signed webhook on and short HTTP deadlines (1 s head, 2 s body)."""
    port = free_port()
    env = {"BG_INGEST_PORT": str(port), "INGEST_SENDGRID_PUBLIC_KEY": SENDGRID_PUBLIC,
           "BG_HTTP_HEADER_TIMEOUT_SECONDS": "1", "BG_HTTP_BODY_TIMEOUT_SECONDS": "2"}
    with ServiceProcess("ingest-edge", ["-m", "services.ingest"], env=env,
                        health_url=f"http://127.0.0.1:{port}/readyz"):
        yield f"http://127.0.0.1:{port}"


def touch(tag: str, n: int, **overrides) -> dict:
    return {"event_id": f"{tag}-{n}", "occurred_at": "2026-10-01T10:00:00Z", "source": "web", "kind": "page_view",
            "person": {"email": f"elena@romashka{tag}.ru"}, **overrides}


def nested(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def post(url: str, body, headers: dict | None = None) -> httpx.Response:
    return httpx.post(f"{url}/v1/events", content=orjson.dumps(body), headers=headers or API, timeout=30)


def test_nul_in_a_name_is_422_naming_person_name(edge_url):
    tag = uuid.uuid4().hex[:8]
    r = post(edge_url, touch(tag, 1, person={"email": f"nul@romashka{tag}.ru", "name": "Nul\u0000Name"}))
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["person.name"]


@pytest.mark.parametrize(("event", "field"), [
    (b'{"event_id": "s-1", "occurred_at": "2026-10-01T10:00:00Z", "source": "web", "kind": "page_view", '
     b'"person": {"email": "a@romashka.ru", "name": "half \\ud800 pair"}}', "person.name"),
    (b'{"event_id": "s-2", "occurred_at": "2026-10-01T10:00:00Z", "source": "web", "kind": "page_view", '
     b'"person": {"email": "a@romashka.ru"}, "properties": {"k": ["\\udfff"]}}', "properties"),
    (b'{"event_id": "s-\\ud800", "occurred_at": "2026-10-01T10:00:00Z", "source": "web", "kind": "page_view", '
     b'"person": {"email": "a@romashka.ru"}}', "event_id"),
])
def test_a_lone_surrogate_is_422_naming_the_field(edge_url, event, field):
    r = httpx.post(f"{edge_url}/v1/events", content=event, headers=API)
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == [field]
    batch = httpx.post(f"{edge_url}/v1/events", content=b"[" + event + b"]", headers=API)
    assert batch.status_code == 422 and [e["field"] for e in batch.json()["errors"]] == [f"0.{field}"]


def test_domains_must_be_host_names_and_keep_one_form(edge_url):
    tag = uuid.uuid4().hex[:8]
    identity = {"type": "identity", "event_id": f"{tag}-i", "occurred_at": "2026-10-01T10:00:00Z",
                "person": {"email": f"olga@romashka{tag}.ru"}}
    r = post(edge_url, {**identity, "company": {"domain": "<script>'\"/.ru"}})
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["company.domain"]
    r = post(edge_url, {**identity, "company": {"domain": "ЛАСТОЧКА.РФ"}})
    assert r.status_code == 202, r.text


async def test_an_event_over_kafkas_limit_fails_alone_and_retries_write_nothing_twice(edge_url):
    # Issue 19, item 2: [A (small), B (about 1.1 MB of properties)] was a 503, and three posts
    # wrote A three times and B never.
    tag = uuid.uuid4().hex[:8]
    batch = [touch(tag, 1), touch(tag, 2, properties={"blob": "x" * 1_100_000})]
    answers = [post(edge_url, batch) for _ in range(3)]
    first = answers[0]
    assert first.status_code == 202, first.text
    assert first.json()["accepted"] == 1 and first.json()["event_ids"] == [f"{tag}-1"]
    [failed] = first.json()["failed"]
    assert (failed["index"], failed["event_id"], failed["reason"]) == (1, f"{tag}-2", "too_large")
    assert failed["errors"][0]["field"] == "1" and "1,048,576" in failed["errors"][0]["message"]
    for retry in answers[1:]:
        assert retry.status_code == 202 and retry.json()["accepted"] == 0 and retry.json()["duplicates"] == 2
    # Three posts, each answered after Kafka acknowledged: to the topic's end, once each.
    landed = await written(topics.PERSON_EVENTS.name, 1, revealed, lambda e: e.event_id.startswith(tag))
    assert [e.event_id for e in landed] == [f"{tag}-1"]
    [letter] = await written(topics.INGEST_DLQ.name, 1, dead_letters.decode, lambda d: d.key == f"{tag}-2")
    assert letter.reason == "too_large" and len(letter.payload) < 70_000


def test_one_event_over_kafkas_limit_is_413_single_or_as_a_batch_of_one(edge_url):
    # A request refused as a whole because its only event cannot be one Kafka message is 413,
    # as a body over the limit is (it was 422, which says "fix the fields").
    tag = uuid.uuid4().hex[:8]
    big = touch(tag, 1, properties={"blob": "x" * 1_100_000})
    for body, field in ((big, "(body)"), ([big], "0"), ({"events": [big]}, "events.0")):
        r = post(edge_url, body)
        assert r.status_code == 413, r.text
        assert r.json()["error"] == "payload_too_large" and [e["field"] for e in r.json()["errors"]] == [field]


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 250, 600, 1000])
def test_properties_deeper_than_the_pipeline_carries_are_422_naming_properties(edge_url, depth):
    # Issue 19, item 3: 600 deep was a 500, 250 deep was accepted then dead-lettered downstream.
    # Written by hand: orjson itself writes at most 254 levels.
    event = orjson.dumps(touch(uuid.uuid4().hex[:8], 1, properties={}))
    properties = b'{"a":' * (depth - 1) + b'{"leaf": 1}' + b"}" * (depth - 1)
    body = event.replace(b'"properties":{}', b'"properties":' + properties)
    r = httpx.post(f"{edge_url}/v1/events", content=body, headers=API, timeout=30)
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["properties"]


def test_json_deeper_than_the_parser_takes_is_422(edge_url):
    body = b'{"a":' * 1100 + b"1" + b"}" * 1100
    r = httpx.post(f"{edge_url}/v1/events", content=body, headers=API, timeout=30)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "(body)"


async def test_the_deepest_accepted_properties_reach_kafka(edge_url):
    tag = uuid.uuid4().hex[:8]
    r = post(edge_url, touch(tag, 1, properties=nested(MAX_JSON_DEPTH)))
    assert r.status_code == 202, r.text
    [event] = await written(topics.PERSON_EVENTS.name, 1, revealed, lambda e: e.event_id.startswith(tag))
    assert event.properties == nested(MAX_JSON_DEPTH)


@pytest.mark.parametrize(("path", "headers", "status"), [
    ("/v1/events", {"X-API-Key": b"\xe9"}, 403),
    ("/v1/events", {"Authorization": b"Bearer \xe9t\xe9"}, 403),
    ("/v1/events", {"Authorization": b"Basic \xe9"}, 401),
    ("/v1/events", {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:x").decode()}, 401),
    ("/v1/sources/segment", {"X-API-Key": b"cl\xe9"}, 403),
    # "²" as HTTP sends it (ISO-8859-1): str.isdigit() said yes and int() raised.
    ("/v1/sources/zoom", {"x-zm-request-timestamp": b"\xb2", "x-zm-signature": "v0=00"}, 401),
    ("/v1/sources/zoom", {"x-zm-request-timestamp": "9" * 400, "x-zm-signature": "v0=00"}, 401),
    ("/v1/sources/sendgrid", {"X-Twilio-Email-Event-Webhook-Timestamp": b"\xb2",
                              "X-Twilio-Email-Event-Webhook-Signature": "c2ln"}, 401),
    ("/v1/sources/sendgrid", {"X-Twilio-Email-Event-Webhook-Timestamp": "1" * 400,
                              "X-Twilio-Email-Event-Webhook-Signature": "c2ln"}, 401),
    ("/v1/sources/tilda?key=cl%C3%A9", {}, 403),
])
def test_odd_credentials_are_401_or_403_never_500(edge_url, path, headers, status):
    # Issue 19, item 4: each of these was a 500 with a traceback.
    r = httpx.post(f"{edge_url}{path}", content=b"[]", headers={"content-type": "application/json", **headers})
    assert r.status_code == status, r.text


def test_a_non_ascii_zoom_signature_is_403(edge_url):
    body = b'{"event": "webinar.ended", "event_ts": 1, "payload": {}}'
    ts = str(int(time.time()))
    r = httpx.post(f"{edge_url}/v1/sources/zoom", content=body,
                   headers={"x-zm-request-timestamp": ts, "x-zm-signature": b"v0=\xe9\xe9"})
    assert r.status_code == 403, r.text


def zoom_post(url: str, body: bytes, ts: int) -> httpx.Response:
    return httpx.post(f"{url}/v1/sources/zoom", content=body, headers={
        "x-zm-request-timestamp": str(ts), "x-zm-signature": zoom.signature(DEV_ZOOM_SECRET, str(ts), body)})


def sendgrid_post(url: str, body: bytes, ts: int) -> httpx.Response:
    signature = SENDGRID_KEY.sign(str(ts).encode() + body, ec.ECDSA(hashes.SHA256()))
    return httpx.post(f"{url}/v1/sources/sendgrid", content=body, headers={
        "X-Twilio-Email-Event-Webhook-Timestamp": str(ts),
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode()})


def test_signed_timestamps_older_than_five_minutes_are_refused(edge_url):
    # Issue 19, item 7: a signed SendGrid request from 2001 got 202.
    tag = uuid.uuid4().hex[:8]
    events = orjson.dumps([{"email": f"ivan@romashka{tag}.ru", "timestamp": 1759300000, "event": "open",
                            "sg_event_id": f"sg-{tag}", "sg_message_id": f"m-{tag}"}])
    assert sendgrid_post(edge_url, events, 1_000_000_000).status_code == 401  # 2001-09-09
    assert sendgrid_post(edge_url, events, int(time.time()) - 301).status_code == 401
    # Beyond the tolerance ahead by a margin: the server checks seconds after the client's
    # clock is read on a loaded machine, which brings a timestamp 301 s ahead within 300 s.
    assert sendgrid_post(edge_url, events, int(time.time()) + 360).status_code == 401
    fresh = sendgrid_post(edge_url, events, int(time.time()) - 60)
    assert fresh.status_code == 202 and fresh.json()["accepted"] == 1, fresh.text
    hook = orjson.dumps({"event": "webinar.ended", "event_ts": 1759300000000, "payload": {"object": {"id": 1}}})
    assert zoom_post(edge_url, hook, int(time.time()) - 301).status_code == 401
    assert zoom_post(edge_url, hook, int(time.time())).status_code == 200


def raw_request(url: str, head: bytes, wait: float = 5.0) -> bytes:
    """Send `head` (and nothing more), then read what the server answers within `wait` s."""
    return exchange(url, head, wait)[0]


def exchange(url: str, head: bytes, wait: float) -> tuple[bytes, bool]:
    """Send `head` (and nothing more); what the server answered, and whether it closed the
    connection itself (True) rather than our read giving up after `wait` s of silence."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as s:
        s.sendall(head)
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            return b"".join(chunks), False
        return b"".join(chunks), True


def test_keys_are_checked_before_a_body_is_read(edge_url):
    # Issue 19, item 5: the source endpoints read 5 MB before checking the key. The answer now
    # comes while the declared body has not been sent at all.
    for path in ("/v1/events", "/v1/sources/segment", "/v1/sources/zoom"):
        answer = raw_request(edge_url, f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                       f"Content-Length: 5000000\r\n\r\n".encode())
        assert answer.startswith(b"HTTP/1.1 401"), (path, answer[:200])


def test_slow_heads_and_stalled_bodies_are_cut_off(edge_url):
    # The deadlines are 1 s (head) and 1 + 2 s (body); our reads wait far longer, so a
    # connection the server closes itself was cut by its deadline, not by our patience.
    head, closed = exchange(edge_url, b"POST /v1/events HTTP/1.1\r\nHost: x\r\n", wait=10)
    assert head.startswith(b"HTTP/1.1 408") and closed, head[:200]
    lines, _, body = head.partition(b"\r\n\r\n")
    assert f"content-length: {len(body)}".encode() in lines and orjson.loads(body)["error"] == "request_timeout"
    body, closed = exchange(edge_url, b"POST /v1/events HTTP/1.1\r\nHost: x\r\nX-API-Key: dev-api-key\r\n"
                                      b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n[", wait=10)
    assert (body == b"" or body.startswith(b"HTTP/1.1 408")) and closed, body[:200]


# Every setting the README's "Production must set" names, one missing at a time.
INGEST_SET = {"INGEST_API_KEYS": '{"api": ["k1"]}', "INGEST_UNISENDER_API_KEYS": '["u1"]',
              "INGEST_CALLTOUCH_SUBNETS": '["92.118.66.0/23"]', "INGEST_ZOOM_SECRET_TOKEN": "z1"}


@pytest.mark.parametrize(("module", "env", "named"), [
    *((["services.ingest"], {k: v for k, v in INGEST_SET.items() if k != missing}, missing) for missing in INGEST_SET),
    (["services.ingest"], {**INGEST_SET, "INGEST_CALLTOUCH_SUBNETS": '["92.118.66.0/23", "127.0.0.0/8"]'},
     "INGEST_CALLTOUCH_SUBNETS"),
    (["services.ingest"], INGEST_SET, "BG_PRIVACY_PEPPER"),
    (["services.projection"], {"BG_API_TOKENS": "secret", "BG_API_WRITE_TOKENS": "other"}, "BG_PRIVACY_PEPPER"),
    (["services.projection"], {"BG_API_TOKENS": "secret"}, "BG_API_WRITE_TOKENS"),
    (["services.projection"], {"BG_API_WRITE_TOKENS": "secret"}, "BG_API_TOKENS"),
    (["services.crm", "bitrix24"], {}, "CRM_READ_API_TOKEN"),
    (["services.crm", "amocrm"], {}, "CRM_READ_API_TOKEN"),
])
def test_services_refuse_development_secrets_outside_development_mode(module, env, named):
    # Issue 19, item 6: the default tokens opened production; now they stop the start.
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("BG_ENV", "INGEST_", "BG_API_", "CRM_", "PROJECTION_API_", "BG_PRIVACY_"))}
    done = subprocess.run([sys.executable, "-m", *module], cwd=ROOT, env={**clean, **env, "BG_ENV": "production"},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "refusing to start" in done.stderr and named in done.stderr and "BG_ENV=development" in done.stderr
