"""Erasure on the person log (bg.person-events.v1), and what a person's data request carries.

An erasure is a message in the person's own stream, after everything they did, so that
grouping removes them where they are and a replay of the log removes them again at the same
point: a rebuild never brings an erased person back (docs/privacy.md). It names the person
by pseudonyms only; the keys that opened their values are destroyed when it is written.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Tag, model_validator

from shared.schemas.base import Message, ShortStr, UtcDatetime
from shared.schemas.touch import IdentityEvent, TouchEvent

SCHEMA_VERSION = 1


class PersonErased(Message):
    """Remove a person: their profile, identity nodes, memberships and touches, everywhere."""

    schema_version: Literal[1] = SCHEMA_VERSION
    type: Literal["erasure"] = "erasure"
    event_id: ShortStr  # "erase:<request id>"
    occurred_at: UtcDatetime  # when the erase was requested
    # Grouping's person ids (the normalised pseudonymous emails) and the "anon:"/"user:"
    # identifiers (pseudonymous) of the person.
    person_ids: tuple[ShortStr, ...] = ()
    identifiers: tuple[ShortStr, ...] = ()

    @model_validator(mode="after")
    def _names_someone(self) -> PersonErased:
        if not (self.person_ids or self.identifiers):
            raise ValueError("an erasure names at least one person id or identifier")
        return self

    def key(self) -> str:
        return f"email:{self.person_ids[0]}" if self.person_ids else self.identifiers[0]


def _type_of(value: Any) -> str:
    if isinstance(value, dict):
        return value.get("type", "touch")
    return getattr(value, "type", "touch")


# Everything on bg.person-events.v1: what ingest writes, and erasures.
PersonLogMessage = Annotated[
    Annotated[TouchEvent, Tag("touch")] | Annotated[IdentityEvent, Tag("identity")]
    | Annotated[PersonErased, Tag("erasure")],
    Discriminator(_type_of),
]
