"""What an adapter makes of one item of a source payload."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from shared.codec import describe_errors
from shared.schemas.touch import IdentityEvent, TouchEvent


class PayloadError(ValueError):
    """The payload does not fit the platform's format in a way pydantic does not see (422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def check_batch_size(field: str, size: int, max_batch: int) -> None:
    if size > max_batch:
        raise PayloadError(field, f"at most {max_batch} items per request, got {size}")


@dataclass(frozen=True)
class Unmapped:
    """Fits the platform's format but cannot become a canonical event: dead-lettered."""

    reason: str
    detail: str
    item: Any
    # The item's event id when it has one: named in the answer and keys the dead letter. Not
    # claimed in the dedupe store (a corrected resend under the same id must land).
    dedupe_id: str | None = None
    index: int | None = None  # the item's position in the request (set by batch.each_item)


@dataclass(frozen=True)
class Rejected:
    """One item of a batch does not fit the platform's format: dead-lettered alone (batch.py).

    errors: [{"field": path from the request body's root, "message"}].
    """

    index: int
    errors: list[dict[str, str]]
    item: Any
    dedupe_id: str | None = None  # as Unmapped.dedupe_id
    reason: str = "invalid_item"

    @property
    def detail(self) -> str:
        return "; ".join(f"{e['field']}: {e['message']}" for e in self.errors)


@dataclass(frozen=True)
class Ignored:
    """A valid platform event that is not a marketing touch (a bounce, a webinar ending)."""

    reason: str


MapResult = TouchEvent | IdentityEvent | Unmapped | Rejected | Ignored


def build(factory: Callable[[], TouchEvent | IdentityEvent], item: Any, dedupe_id: str | None = None) -> MapResult:
    """Run factory; a canonical-schema violation becomes Unmapped with the fields at fault."""
    try:
        return factory()
    except ValidationError as exc:
        return Unmapped("invalid_canonical_event", describe_errors(exc), item, dedupe_id)


def from_unix(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def compact(**values: Any) -> dict[str, Any]:
    """Drop empty values so that optional canonical fields stay unset."""
    return {k: v for k, v in values.items() if v not in (None, "", {}, [])}
