"""Building blocks of every message schema."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, StringConstraints

# A pragmatic address check (one @, a dotted domain, no spaces), Unicode domains allowed
# (почта@пример.рф). email-validator's full RFC check cost a third of ingest's CPU.
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+")


def _email(value: str) -> str:
    value = value.strip().lower()
    if len(value) > 254 or not _EMAIL.fullmatch(value):
        raise ValueError("value is not a valid email address")
    return value


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


# Event time: must carry a timezone, stored in UTC.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
# Stored lower-cased: addresses are matched case-insensitively everywhere.
Email = Annotated[str, AfterValidator(_email)]
NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
ShortStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class Message(BaseModel):
    """Immutable, strict about unknown fields: a typo in a producer is an error, not a silent drop."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)
