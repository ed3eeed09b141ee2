"""Event time as the platforms give it, made safe for the stream's clocks (pure functions).

Three rules, in this order:
1. A time without an offset is UTC, and marked as assumed (Segment's spec: "timestamps
   without a timezone are treated as UTC").
2. A client's clock skew is removed with the platform's own fields. Segment: `timestamp`
   when present (Segment already corrected it), else
   `receivedAt - (sentAt - originalTimestamp)` (Segment spec, "Timestamps"); the canonical
   API accepts the same `sent_at` on its envelope. SendGrid's `timestamp` and Zoom's
   `event_ts`/`join_time` come from the platforms' servers, not a client's clock.
3. What is still ahead of ingest's own clock by more than `max_ahead` is clamped to the
   receive time (default) or refused (dead-lettered), so that no event pushes a partition's
   clock past the present (issue 11). The platform's value stays in `original_occurred_at`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from services.ingest.adapters.results import Unmapped
from shared.schemas.touch import IdentityEvent, TimeAdjustment, TouchEvent

# A sent_at/originalTimestamp difference below this is transport delay, not a wrong clock:
# the time is still corrected, but not flagged.
_NOTABLE_SKEW = timedelta(seconds=1)


@dataclass(frozen=True)
class EventTime:
    """occurred_at in UTC; original = the platform's value when ingest changed it."""

    occurred_at: datetime
    original: datetime | None = None
    adjustments: tuple[TimeAdjustment, ...] = ()

    def fields(self) -> dict:
        """The canonical event's time fields."""
        return {"occurred_at": self.occurred_at, "original_occurred_at": self.original,
                "time_adjustments": self.adjustments}


def as_utc(value: datetime) -> tuple[datetime, bool]:
    """(value in UTC, True when it had no offset and UTC was assumed)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC), True
    return value.astimezone(UTC), False


def corrected(claimed: datetime, sent_at: datetime | None, received_at: datetime) -> EventTime:
    """Segment's skew rule: claimed - (sent_at - received_at), i.e. received - (sent - claimed).

    claimed: the client's event time (Segment originalTimestamp); sent_at: the client's clock
    when it sent the request; received_at: the receiver's clock then (Segment receivedAt, else
    ingest's own). Without sent_at nothing can be corrected. Naive values are taken as UTC.
    """
    claimed, assumed = as_utc(claimed)
    flags = (TimeAdjustment.assumed_utc,) if assumed else ()
    if sent_at is None:
        return EventTime(claimed, None, flags)
    sent, sent_assumed = as_utc(sent_at)
    received, _ = as_utc(received_at)
    if sent_assumed and not assumed:
        flags = (*flags, TimeAdjustment.assumed_utc)
    skew = sent - received
    if abs(skew) < _NOTABLE_SKEW:
        return EventTime(claimed - skew, None, flags)
    return EventTime(claimed - skew, claimed, (*flags, TimeAdjustment.skew_corrected))


def segment_time(timestamp: datetime | None, original_timestamp: datetime | None, sent_at: datetime | None,
                 received_at: datetime | None, now: datetime) -> EventTime:
    """A Segment call's event time (see the module docstring); now = ingest's receive time."""
    if timestamp is not None:
        value, assumed = as_utc(timestamp)
        return EventTime(value, None, (TimeAdjustment.assumed_utc,) if assumed else ())
    if original_timestamp is not None:
        return corrected(original_timestamp, sent_at, received_at or now)
    value, assumed = as_utc(received_at or now)
    return EventTime(value, None, (TimeAdjustment.assumed_utc,) if assumed else ())


Event = TouchEvent | IdentityEvent


def bound_future(event: Event, now: datetime, max_ahead: timedelta, refuse: bool) -> Event | Unmapped:
    """Clamp (or refuse) an event time more than max_ahead past ingest's clock `now`.

    Clamped: occurred_at = now, original_occurred_at keeps the value the platform gave (or
    the one it had before an earlier correction), `clamped_to_receipt` is added.
    Refused: Unmapped("future_event_time"), dead-lettered with both times.
    """
    if event.occurred_at <= now + max_ahead:
        return event
    if refuse:
        return Unmapped("future_event_time",
                        f"occurred_at: {event.occurred_at.isoformat()} is more than {max_ahead} ahead of "
                        f"ingest's clock ({now.isoformat()})",
                        event.model_dump(mode="json"), event.event_id)
    return event.model_copy(update={
        "occurred_at": now,
        "original_occurred_at": event.original_occurred_at or event.occurred_at,
        "time_adjustments": (*event.time_adjustments, TimeAdjustment.clamped_to_receipt),
    })
