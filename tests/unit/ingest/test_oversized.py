"""Issue 19, item 2, every route: an event too large for one Kafka message is refused alone,
and a request refused as a whole for it answers 413, not 422 (the API side:
tests/component/ingest/test_edge.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from services.ingest.adapters import batch, calltouch, canonical, sendgrid
from services.ingest.adapters.results import Rejected
from services.ingest.limits import MAX_MESSAGE_BYTES
from shared.schemas.touch import TouchEvent
from tests.support.payloads import load

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
BIG = "x" * 1_100_000  # about 1.1 MB: over one Kafka message, under the 5 MiB body limit
EVENT = {"event_id": "c-1", "occurred_at": "2026-10-01T10:00:00Z", "source": "web", "kind": "page_view",
         "person": {"email": "a@romashka.ru"}}


def checked(results):
    """What app.accept does with an adapter's results before deciding the answer."""
    return batch.refuse_oversized(results)


def test_one_oversized_canonical_event_is_413_alone_or_as_a_batch_of_one():
    big = {**EVENT, "properties": {"blob": BIG}}
    for body, field in ((big, "(body)"), ([big], "0"), ({"events": [big]}, "events.0")):
        results = checked(canonical.parse(body, max_batch=10))
        assert batch.all_rejected(results)
        refusal = batch.refusal(results)
        assert (refusal.status, refusal.error) == (413, "payload_too_large")
        assert [e["field"] for e in refusal.errors] == [field]
        assert f"{MAX_MESSAGE_BYTES:,}" in refusal.errors[0]["message"]


def test_a_batch_of_only_oversized_events_is_413_and_a_mixed_refusal_422():
    big = {**EVENT, "properties": {"blob": BIG}}
    both_big = checked(canonical.parse([big, {**big, "event_id": "c-2"}], max_batch=10))
    assert batch.refusal(both_big).status == 413
    # Every item refused, for different reasons: the client must fix the content, 422 lists all.
    mixed = checked(canonical.parse([big, {**EVENT, "event_id": "c-3", "person": {"email": "broken@"}}],
                                    max_batch=10))
    refusal = batch.refusal(mixed)
    assert (refusal.status, [e["field"] for e in refusal.errors]) == (422, ["0", "1.person.email"])
    # One good item: nothing is refused as a whole, the big one fails alone.
    ok, failed = checked(canonical.parse([EVENT, big], max_batch=10))
    assert isinstance(ok, TouchEvent) and not batch.all_rejected([ok, failed])
    assert isinstance(failed, Rejected) and (failed.reason, failed.index) == ("too_large", 1)


def test_sendgrid_dead_letters_an_oversized_event_alone():
    # SendGrid retries any non-2xx for 24 hours: the item is dead-lettered, the answer 202
    # (batch.SENDGRID never refuses), whatever the other items.
    [event] = load("sendgrid_events.json")[:1]
    [rejected] = checked(sendgrid.parse([{**event, "campaign": BIG}], max_batch=10))
    assert isinstance(rejected, Rejected) and rejected.reason == "too_large"
    assert rejected.dedupe_id == f"sendgrid:{event['sg_event_id']}"
    assert not batch.SENDGRID.refuse_when_all_rejected


def test_a_single_item_route_that_maps_its_item_itself_is_checked_too():
    # Calltouch (like Tilda and Roistat) maps its one item without each_item: its oversized
    # event used to reach the producer, fail, and answer 503 to every retry.
    [event] = calltouch.parse({**load("calltouch_call.json"), "ctClientId": BIG}, NOW)
    assert isinstance(event, TouchEvent)
    [rejected] = checked([event])
    assert isinstance(rejected, Rejected) and rejected.reason == "too_large"
    assert rejected.errors[0]["field"] == "(body)" and rejected.dedupe_id == event.event_id
    assert batch.refusal([rejected]).status == 413
    # The item the dead letter quotes is the event itself (cut to 64 KiB when quoted).
    assert rejected.item["event_id"] == event.event_id


def test_an_event_under_the_limit_passes_unchanged():
    [event] = canonical.parse(EVENT, max_batch=10)
    assert checked([event]) == [event]
