"""Per-item batch semantics, shared by every adapter: each item of a batch stands alone.

Platforms post batches (a Segment `batch`, a SendGrid array, a list of canonical events) and
retry the WHOLE request when the answer says so. If one unusable item made the answer an
error, the retry would carry the same unusable item and the good ones would never land. So:

- An adapter validates and maps every item on its own with `each_item`. An item that does
  not fit the platform's format becomes `Rejected` (the field paths at fault, relative to the
  request body, e.g. `batch.3.timestamp`); one that fits but cannot become a canonical event
  stays `Unmapped` (adapters/results.py). Both carry the item's index in the request.
  Neither claims its id in the dedupe store: a corrected resend under the same id lands.
- The API (app.py `accept`) writes the good items to Kafka and every Rejected and Unmapped
  item to the ingest dead-letter topic (bg.ingest.dlq.v1) with its reason, and answers with
  `failed`: one entry per such item, `{index, event_id, reason, errors: [{field, message}]}`.
- Only the envelope (not JSON, not the platform's container shape, over the batch limit) or
  auth fails the request as a whole (4xx naming the field).
- An event too large for one Kafka message is Rejected with the reason `too_large`, whichever
  route it came by (`each_item` checks each item; `refuse_oversized` every event once ingest's
  own corrections are applied, which also covers the single-item routes). A request refused as
  a whole because every item is too large answers 413 (`refusal`), as a body over the limit does.

The status code follows what each platform does with it (`Reply`), so that no platform
retries good data forever:

- Segment: 2xx is success; most 4xx are dropped, not retried (408, 410, 429, 460 and 5xx are
  retried). Source: Twilio Segment support, "Understanding Segment Retry Logic for HTTP
  Status Codes". A batch with at least one usable item answers 202; one where every item is
  rejected answers 422 with every item's errors and writes nothing (a retry cannot help).
- SendGrid Event Webhook: any non-2xx is retried "until we receive a 2xx response or the
  maximum time has expired", for up to 24 hours (SendGrid docs, "Troubleshooting the Event
  Webhook"). So every item-level outcome answers 2xx (202), even when every item is
  rejected: the rejected items are in the dead-letter topic with the reason, not in a retry
  loop.
- Zoom: success is 200 or 204 within three seconds; anything else is retried three times and
  then the app stops receiving notifications for the event (Zoom developer blog, "Resolving
  webhook delays"). One webhook is one item: answered 200 whatever the item's fate, with a
  rejected or unmapped item dead-lettered.
- Canonical API (our own clients): 202 when anything was usable, 422 when nothing was (as
  Segment, a client that sent only bad data must see an error).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from services.ingest.adapters.results import MapResult, PayloadError, Rejected, Unmapped
from services.ingest.errors import ApiError, field_errors, invalid
from services.ingest.limits import too_large
from shared.schemas.text import identifier
from shared.schemas.touch import IdentityEvent, TouchEvent


@dataclass(frozen=True)
class Reply:
    """How a platform wants its request answered (see the module docstring for the sources).

    success: the status of a request whose items were taken (written, dead-lettered, ignored).
    refuse_when_all_rejected: when every item is Rejected, answer 422 and write nothing,
    instead of dead-lettering them and answering `success`.
    """

    success: int = 202
    refuse_when_all_rejected: bool = True


CANONICAL = Reply(202, refuse_when_all_rejected=True)
SEGMENT = Reply(202, refuse_when_all_rejected=True)
SENDGRID = Reply(202, refuse_when_all_rejected=False)
ZOOM = Reply(200, refuse_when_all_rejected=False)


def _id_of(item: Any, id_field: str | None, id_prefix: str) -> str | None:
    if id_field is None or not isinstance(item, dict):
        return None
    value = item.get(id_field)
    if isinstance(value, str):
        try:
            identifier(value)  # an id that is not text (a NUL, a lone surrogate) cannot key Redis nor Kafka
        except ValueError:
            return None
    return f"{id_prefix}{value}" if isinstance(value, (str, int)) and value != "" else None


def each_item(items: Iterable[Any], parse_one: Callable[[Any], MapResult | list[MapResult]], *,
              field: str | None = "", id_field: str | None = None, id_prefix: str = "") -> list[MapResult]:
    """Map every item of a batch on its own; a bad item never takes its neighbours down.

    items: the batch's raw items (as decoded from JSON), in request order.
    parse_one: validates and maps ONE raw item; raises pydantic's ValidationError or
        PayloadError when the item does not fit the platform's format.
    field: the path of the batch in the request body ("batch" for Segment, "" for a bare
        array), so that errors read `batch.3.timestamp`; None when the body is the one item
        (a Zoom webhook), so that errors read `payload.object.id`.
    id_field, id_prefix: where a raw item keeps its platform id (Segment "messageId",
        SendGrid "sg_event_id") and the prefix of our event ids ("segment:"), so that the
        answer names a rejected item by its id when it has one.

    An event too large for one Kafka message (limits.too_large) is Rejected too, with the
    reason "too_large": refused before anything is claimed or written.

    Returns the results in order; Rejected and Unmapped results carry their item's index.
    """
    prefix = f"{field}." if field else ""
    out: list[MapResult] = []
    for index, item in enumerate(items):
        at = "" if field is None else f"{prefix}{index}."
        try:
            mapped = parse_one(item)
        except ValidationError as exc:
            out.append(Rejected(index=index, errors=field_errors(exc, at), item=item,
                                dedupe_id=_id_of(item, id_field, id_prefix)))
            continue
        except PayloadError as exc:
            out.append(Rejected(index=index, errors=[{"field": f"{at}{exc.field}", "message": exc.message}],
                                item=item, dedupe_id=_id_of(item, id_field, id_prefix)))
            continue
        for result in mapped if isinstance(mapped, list) else [mapped]:
            if isinstance(result, TouchEvent | IdentityEvent) and (why := too_large(result)) is not None:
                result = Rejected(index=index, errors=[{"field": at.rstrip(".") or "(body)", "message": why}],
                                  item=item, dedupe_id=result.event_id, reason="too_large")
            out.append(replace(result, index=index) if isinstance(result, Unmapped) else result)
    return out


def refuse_oversized(results: list[MapResult]) -> list[MapResult]:
    """Every event that cannot be one Kafka message becomes Rejected("too_large").

    For the events `each_item` did not check (Tilda, Calltouch and Roistat map their one item
    themselves) and for any that ingest's corrections (time_adjustments, the automated flag)
    made larger after the check. The field is "(body)" for a request of one result, else the
    event's id; the dead letter quotes the event (limits.quoted cuts it to 64 KiB).
    """
    out: list[MapResult] = []
    for position, result in enumerate(results):
        if isinstance(result, TouchEvent | IdentityEvent) and (why := too_large(result)) is not None:
            field = "(body)" if len(results) == 1 else f"(event {result.event_id})"
            result = Rejected(index=position, errors=[{"field": field, "message": why}],
                              item=result.model_dump(mode="json"), dedupe_id=result.event_id, reason="too_large")
        out.append(result)
    return out


def refusal(results: list[MapResult]) -> ApiError:
    """The error refusing a request whose every item is Rejected: 413 payload_too_large when
    every one of them is too large for Kafka (RFC 9110 15.5.14: the content is larger than the
    server will process), else 422 validation_error. Both list every item's errors."""
    errors = [e for r in results if isinstance(r, Rejected) for e in r.errors]
    if all(isinstance(r, Rejected) and r.reason == "too_large" for r in results):
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:3])
        return ApiError(413, "payload_too_large", f"too large for one Kafka message: {summary}", errors)
    return invalid(errors)


def all_rejected(results: list[MapResult]) -> bool:
    """True when the request had items and every one of them was Rejected."""
    return bool(results) and all(isinstance(r, Rejected) for r in results)


def failure_entry(result: Rejected | Unmapped) -> dict[str, Any]:
    """One entry of the response's `failed` list: which item, why, the fields at fault."""
    if isinstance(result, Rejected):
        errors = result.errors
    else:
        errors = [{"field": "(item)" if result.index is None else str(result.index), "message": result.detail}]
    return {"index": result.index, "event_id": result.dedupe_id, "reason": result.reason, "errors": errors}
