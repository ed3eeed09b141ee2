"""Fuzz targets for every platform endpoint through the running ingest service (issue 19):
Segment and SendGrid with their keys, Zoom with a valid signature on every body so that its
parser is reached. Whatever arrives, the answer is never a 5xx, and it is JSON."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.ingest.adapters import zoom
from services.ingest.settings import DEV_ZOOM_SECRET
from tests.support.fuzz import json_values, mutated
from tests.support.payloads import load

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def bodies(*payloads: Any) -> st.SearchStrategy[bytes]:
    values = st.one_of(*(mutated(p, surrogates=False) for p in payloads), json_values(surrogates=False))
    # The standard library writes what orjson refuses (integers beyond 64 bits).
    return values.map(lambda v: json.dumps(v, ensure_ascii=False).encode()) | st.binary(max_size=200)


def answered(r: httpx.Response) -> None:
    assert r.status_code < 500, r.text
    assert isinstance(r.json(), dict)


@FUZZ
@given(body=bodies(load("segment_batch.json"), load("segment_field_cases.json")))
def test_segment_never_answers_5xx(ingest_url, body):
    answered(httpx.post(f"{ingest_url}/v1/sources/segment", content=body, timeout=30,
                        headers={"X-API-Key": "dev-segment-key", "content-type": "application/json"}))


@FUZZ
@given(body=bodies(load("sendgrid_events.json"), load("sendgrid_field_cases.json")))
def test_sendgrid_never_answers_5xx(ingest_url, body):
    answered(httpx.post(f"{ingest_url}/v1/sources/sendgrid", content=body, timeout=30,
                        headers={"X-API-Key": "dev-sendgrid-key", "content-type": "application/json"}))


@FUZZ
@given(body=bodies(load("zoom_registration_created.json"), load("zoom_participant_joined.json"),
                   {"event": "endpoint.url_validation", "event_ts": 1, "payload": {"plainToken": "t"}}))
def test_zoom_never_answers_5xx_with_a_valid_signature(ingest_url, body):
    ts = str(int(time.time()))
    answered(httpx.post(f"{ingest_url}/v1/sources/zoom", content=body, timeout=30, headers={
        "x-zm-request-timestamp": ts, "x-zm-signature": zoom.signature(DEV_ZOOM_SECRET, ts, body),
        "content-type": "application/json"}))


def with_surrogates(*payloads: Any) -> st.SearchStrategy[bytes]:
    """Bodies whose strings may hold lone surrogates, written as JSON escapes (the canonical
    API parses them, so that the schemas name the field)."""
    values = st.one_of(*(mutated(p) for p in payloads), json_values())
    return values.map(lambda v: json.dumps(v).encode())


@FUZZ
@given(body=with_surrogates({"events": [{"event_id": "f-2", "occurred_at": "2026-10-01T10:00:00Z", "source": "web",
                                         "kind": "download", "person": {"email": "elena@romashka.ru"}}]}))
def test_canonical_with_lone_surrogates_never_answers_5xx(ingest_url, body):
    answered(httpx.post(f"{ingest_url}/v1/events", content=body, timeout=30,
                        headers={"X-API-Key": "dev-api-key", "content-type": "application/json"}))


@FUZZ
@given(body=bodies({"events": [{"event_id": "f-1", "occurred_at": "2026-10-01T10:00:00Z", "source": "web",
                                "kind": "download", "person": {"email": "elena@romashka.ru"},
                                "properties": {"a": [1, {"b": "c"}]}}]}))
def test_canonical_never_answers_5xx(ingest_url, body):
    answered(httpx.post(f"{ingest_url}/v1/events", content=body, timeout=30,
                        headers={"X-API-Key": "dev-api-key", "content-type": "application/json"}))
