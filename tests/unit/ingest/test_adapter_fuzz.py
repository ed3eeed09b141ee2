"""Fuzz targets for the ingest adapters (issue 19): whatever a platform posts, an adapter either
refuses the request the API turns into a 4xx (pydantic's ValidationError, PayloadError) or
maps every item to a result; every event it makes is one the consumers decode to the same
event, and every item it gives up on can be quoted in a dead letter. Never another exception
(that was a 500)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from services.ingest.adapters import canonical, segment, sendgrid, zoom
from services.ingest.adapters.results import Ignored, PayloadError, Rejected, Unmapped
from services.ingest.limits import quoted
from shared.codec import encode, person_events
from shared.schemas.touch import IdentityEvent, TouchEvent
from tests.support.fuzz import json_values, mutated
from tests.support.payloads import load

RECEIVED = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), database=None)
CANONICAL = {"events": [{"event_id": "c-1", "occurred_at": "2026-10-01T10:00:00Z", "source": "web",
                         "kind": "download", "person": {"email": "elena@romashka.ru", "name": "Елена"},
                         "content": {"url": "https://vendor.example/hr", "title": "HR"},
                         "properties": {"a": [1, {"b": "c"}]}},
                        {"type": "identity", "event_id": "i-1", "occurred_at": "2026-10-01T10:00:00Z",
                         "person": {"email": "olga@romashka.ru"}, "company": {"domain": "romashka.ru"}}]}


def holds(parse) -> None:
    try:
        results = parse()
    except (ValidationError, PayloadError):
        return  # the API answers 422 naming the field
    for result in results:
        if isinstance(result, TouchEvent | IdentityEvent):
            assert person_events.decode(encode(result)) == result
        elif isinstance(result, Unmapped | Rejected):
            assert isinstance(quoted(result.item), str) and result.detail
        else:
            assert isinstance(result, Ignored)


def bodies(payload: Any) -> st.SearchStrategy[Any]:
    # What orjson.loads can give: JSON text holds no lone surrogate (orjson refuses one with
    # 422 before any adapter runs; the schemas refuse them too, tests/unit/shared/test_text.py).
    return mutated(payload, surrogates=False) | json_values(surrogates=False)


@FUZZ
@given(bodies(load("segment_batch.json")))
def test_segment_never_raises_what_the_api_cannot_answer(body):
    holds(lambda: segment.parse(body, RECEIVED, max_batch=100))


@FUZZ
@given(bodies(load("sendgrid_events.json")))
def test_sendgrid_never_raises_what_the_api_cannot_answer(body):
    holds(lambda: sendgrid.parse(body, max_batch=100))


@FUZZ
@given(bodies(load("zoom_registration_created.json")) | bodies(load("zoom_participant_joined.json")))
def test_zoom_never_raises_what_the_api_cannot_answer(body):
    holds(lambda: zoom.parse(body))


@FUZZ
@given(bodies(CANONICAL))
def test_canonical_never_raises_what_the_api_cannot_answer(body):
    holds(lambda: canonical.parse(body, max_batch=100, received_at=RECEIVED))
