"""Property (issue 13): a random bad item in a batch of good ones never loses a good one.

Whatever one item of a Segment, SendGrid or canonical batch is turned into (a field removed,
a field given any JSON value, the item replaced by any JSON value), every other item still
maps to its event, in order, and the batch as a whole is never refused.
"""

from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.ingest.adapters import canonical, segment, sendgrid
from services.ingest.adapters.results import Ignored, Rejected, Unmapped
from shared.schemas.touch import IdentityEvent, TouchEvent

RECEIVED = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

json_values = st.recursive(
    # 64-bit integers: what a JSON encoder (and so a platform) can send.
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)


def segment_item(i: int) -> dict:
    return {"type": "track", "messageId": f"m-{i}", "anonymousId": f"a-{i}", "event": "Brochure Downloaded",
            "timestamp": "2026-11-25T09:00:00Z", "properties": {"url": "https://vendor.example/hr"}}


def sendgrid_item(i: int) -> dict:
    return {"email": f"p{i}@romashka.ru", "timestamp": 1764061200 + i, "event": "click",
            "sg_event_id": f"sg-{i}", "url": "https://vendor.example/hr"}


def canonical_item(i: int) -> dict:
    return {"event_id": f"c-{i}", "occurred_at": "2026-11-25T09:00:00Z", "source": "web", "kind": "page_view",
            "person": {"email": f"p{i}@romashka.ru"}}


SOURCES = {
    "segment": (segment_item, lambda items: segment.parse({"batch": items}, RECEIVED, 1000), "segment:m-"),
    "sendgrid": (sendgrid_item, lambda items: sendgrid.parse(items, 1000), "sendgrid:sg-"),
    "canonical": (canonical_item, lambda items: canonical.parse({"events": items}, 1000), "c-"),
}


@st.composite
def corrupted(draw, item: dict):
    """The item with one field removed or set to any JSON value, or any JSON value instead."""
    how = draw(st.sampled_from(["drop", "set", "replace"]))
    if how == "replace":
        return draw(json_values)
    key = draw(st.sampled_from(sorted(item)))
    if how == "drop":
        return {k: v for k, v in item.items() if k != key}
    return {**item, key: draw(json_values)}


@given(data=st.data(), source=st.sampled_from(sorted(SOURCES)), size=st.integers(min_value=1, max_value=8))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_random_bad_item_never_loses_a_good_one(data, source, size):
    make, parse, id_prefix = SOURCES[source]
    good = [make(i) for i in range(size)]
    at = data.draw(st.integers(min_value=0, max_value=size), label="position")
    bad = data.draw(corrupted(make(999)), label="bad item")
    results = parse([*good[:at], bad, *good[at:]])

    assert len(results) == size + 1
    others = results[:at] + results[at + 1:]
    assert [r.event_id for r in others] == [f"{id_prefix}{i}" for i in range(size)]
    assert all(isinstance(r, TouchEvent | IdentityEvent) for r in others)
    mine = results[at]
    assert isinstance(mine, TouchEvent | IdentityEvent | Rejected | Unmapped | Ignored)
    if isinstance(mine, Rejected | Unmapped):
        assert mine.index == at
