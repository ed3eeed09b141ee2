"""A message a service could not use, with the reason (every *.dlq.v1 topic)."""

from __future__ import annotations

from typing import Literal

from shared.schemas.base import Message, UtcDatetime

SCHEMA_VERSION = 1


class DeadLetter(Message):
    schema_version: Literal[1] = SCHEMA_VERSION
    type: Literal["dead_letter"] = "dead_letter"
    service: str
    reason: str  # short machine-readable cause, e.g. "invalid_schema", "no_identifier"
    detail: str  # human-readable explanation, with the field at fault where known
    failed_at: UtcDatetime  # wall-clock time of the failure (diagnostics only)
    source_topic: str | None = None
    source_partition: int | None = None
    source_offset: int | None = None
    key: str | None = None
    payload: str  # the original bytes, decoded as UTF-8 with replacement
