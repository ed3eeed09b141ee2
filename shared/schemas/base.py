"""Building blocks of every message schema."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, StringConstraints


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


# Event time: must carry a timezone, stored in UTC.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
ShortStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class Message(BaseModel):
    """Immutable, strict about unknown fields: a typo in a producer is an error, not a silent drop."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)
