"""POST /v1/events: our own canonical format, one event, a list, or {"events": [...], "sent_at"?}.

Events of a list or an envelope stand alone (batch.each_item). `sent_at`, the client's clock
when it sent the request, lets ingest remove the client's clock skew from every event's
`occurred_at` the way Segment does (timing.corrected).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from services.ingest.adapters.batch import each_item
from services.ingest.adapters.results import MapResult, check_batch_size
from services.ingest.timing import corrected
from shared.schemas.touch import IdentityEvent, PersonEvent, TouchEvent

_single: TypeAdapter[PersonEvent] = TypeAdapter(PersonEvent)
_list = TypeAdapter(Annotated[list[Any], Field(min_length=1)])


class Batch(BaseModel):
    """The envelope: events, and optionally the client's clock at sending."""

    model_config = ConfigDict(extra="forbid")
    events: Annotated[list[PersonEvent], Field(min_length=1)]
    sent_at: AwareDatetime | None = None


class _Envelope(Batch):
    events: Annotated[list[Any], Field(min_length=1)]  # type: ignore[assignment]


def _deskewed(result: MapResult, sent_at: datetime, received_at: datetime) -> MapResult:
    if not isinstance(result, TouchEvent | IdentityEvent):
        return result
    time = corrected(result.occurred_at, sent_at, received_at)
    if time.original is None and time.occurred_at == result.occurred_at:
        return result
    return result.model_copy(update={
        "occurred_at": time.occurred_at,
        "original_occurred_at": result.original_occurred_at or time.original,
        "time_adjustments": (*result.time_adjustments, *time.adjustments),
    })


def parse(body: Any, max_batch: int, received_at: datetime | None = None) -> list[MapResult]:
    """received_at: ingest's clock at receipt (needed only when the envelope has sent_at)."""
    if isinstance(body, list):
        items = _list.validate_python(body)
        check_batch_size("(body)", len(items), max_batch)
        return each_item(items, _single.validate_python, id_field="event_id")
    if isinstance(body, dict) and "events" in body:
        envelope = _Envelope.model_validate(body)
        check_batch_size("events", len(envelope.events), max_batch)
        results = each_item(envelope.events, _single.validate_python, field="events", id_field="event_id")
        if envelope.sent_at is not None and received_at is not None:
            results = [_deskewed(r, envelope.sent_at, received_at) for r in results]
        return results
    return each_item([body], _single.validate_python, field=None, id_field="event_id")
