"""Building blocks of every message schema."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, StringConstraints

from shared.schemas import text

# A pragmatic address check (one @, no spaces or control characters before it, a valid host
# name after it, Unicode domains allowed: почта@пример.рф). email-validator's full RFC check
# cost a third of ingest's CPU.
_LOCAL = re.compile(r"[^@\s\x00-\x1f\x7f-\x9f\ud800-\udfff]{1,64}")


def _email(value: str) -> str:
    local, at, domain = value.strip().lower().rpartition("@")
    if not at or len(value) > 254 or not _LOCAL.fullmatch(local):
        raise ValueError("value is not a valid email address")
    try:
        domain = text.hostname(domain)
    except ValueError as exc:
        raise ValueError(f"value is not a valid email address: {exc}") from None
    return f"{local}@{domain}"


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


# Event time: must carry a timezone, stored in UTC.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
# Stored lower-cased, the domain in the one form of text.hostname(): addresses are matched
# case-insensitively everywhere.
Email = Annotated[str, AfterValidator(_email)]
# Every string of every message is one of these (shared/schemas/text.py says why):
# display text on one line (tabs and line breaks become a space; other control characters,
# lone surrogates refused) ...
NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
                        AfterValidator(text.line)]
# ... ids, codes and keys (no control character at all, never cleaned) ...
ShortStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
                     AfterValidator(text.identifier)]
Identifier = Annotated[str, AfterValidator(text.identifier)]
# ... free text (tab and line breaks kept) ...
Text = Annotated[str, AfterValidator(text.text)]
# ... host and domain names (lower case, IDNs in Unicode) ...
Hostname = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=253),
                     AfterValidator(text.hostname)]
# ... and free-form JSON objects (keys and strings as Text, bounded depth).
JsonObject = Annotated[dict[str, Any], AfterValidator(text.json_object)]


class Message(BaseModel):
    """Immutable, strict about unknown fields: a typo in a producer is an error, not a silent drop."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)
