"""Fuzz targets for the Russian stack's adapters: whatever Tilda, MTS Link, Unisender Go, Calltouch
or Roistat post, an adapter refuses the request with a 4xx (ValidationError, PayloadError) or maps
every item to a result the consumers decode and a dead letter can quote. Never another exception."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from services.ingest.adapters import calltouch, mtslink, roistat, tilda, unisender
from tests.support.fuzz import NASTY_TEXT
from tests.support.payloads import load
from tests.unit.ingest.test_adapter_fuzz import FUZZ, RECEIVED, bodies, holds

TEXT = st.text(max_size=40) | st.sampled_from([t for t in NASTY_TEXT if "\ud800" not in t])


def form_fields(fixture: dict[str, str]) -> st.SearchStrategy[dict[str, str]]:
    """A form body as parse_qsl gives it: the fixture with some values (and keys) replaced by any text."""
    edits = st.dictionaries(st.sampled_from(sorted(fixture)) | TEXT, TEXT, max_size=5)
    return edits.map(lambda e: {**fixture, **e}) | st.dictionaries(TEXT, TEXT, max_size=6)


@FUZZ
@given(form_fields(load("tilda_form.json")))
def test_tilda_never_raises_what_the_api_cannot_answer(fields):
    holds(lambda: [] if tilda.is_test(fields) else tilda.parse(fields, RECEIVED))


@FUZZ
@given(form_fields(load("calltouch_call.json")))
def test_calltouch_never_raises_what_the_api_cannot_answer(fields):
    holds(lambda: calltouch.parse(fields, RECEIVED))


@FUZZ
@given(bodies(load("mtslink_registration.json")))
def test_mtslink_never_raises_what_the_api_cannot_answer(body):
    holds(lambda: mtslink.parse(body))


@FUZZ
@given(bodies(load("unisender_events.json")))
def test_unisender_never_raises_what_the_api_cannot_answer(body):
    holds(lambda: unisender.parse(body, max_batch=100))


@FUZZ
@given(bodies(load("roistat_call.json")))
def test_roistat_never_raises_what_the_api_cannot_answer(body):
    holds(lambda: roistat.parse(body, ZoneInfo("Europe/Moscow"), RECEIVED))
