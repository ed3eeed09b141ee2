"""Person events with pseudonyms and sealed raw values, and back (pure, given the vault's answers).

`identifiers(person)` lists what the vault must know for one event; `protect(event, entries)`
returns the event as the log may carry it; `reveal(person, values)` puts the raw values back
for a consumer that needs them (the Metrica write-back uploads real ClientIDs).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from shared.privacy.seal import Identifier, Kind, is_sealed, normalise, pseudonym, seal
from shared.privacy.vault import Entry, Vault
from shared.schemas.scoring import OpportunityScore, Signal
from shared.schemas.touch import IdentityEvent, Person, TouchEvent

E = TypeVar("E", TouchEvent, IdentityEvent)
M = TypeVar("M", OpportunityScore, Signal)
# The Person field of each identifier kind.
FIELDS: dict[Kind, str] = {"email": "email", "user": "user_id", "anon": "anonymous_id"}


def identifiers(person: Person, person_id: Callable[[str], str] | None = None) -> list[tuple[Identifier, str]]:
    """Each identifier of the person with its pseudonym template (``{token}`` in place of the
    token), email first, then user id, then anonymous id: the first one's key seals the event."""
    out = []
    for kind, field in FIELDS.items():
        raw = getattr(person, field)
        if raw:
            out.append((Identifier(kind, normalise(kind, raw, person_id)), pseudonym(kind, raw, "{token}")))
    return out


def protect(event: E, entries: Sequence[Entry]) -> E:
    """The event with its person's identifiers replaced by pseudonyms, the raw identifiers and the
    IP address sealed into `person.sealed`, and the name sealed on its own in `person.name` (so
    that grouping keeps the newest name a person gave, as it keeps every trait), all under the
    first identifier's key.

    `entries`: the vault's answer for identifiers(event.person), in that order.
    Raises ValueError when they do not match (a caller's bug, never the platform's input)."""
    person = event.person
    present = [(kind, field) for kind, field in FIELDS.items() if getattr(person, field)]
    if len(present) != len(entries):
        raise ValueError("one vault entry per identifier of the person")
    raw = {field: getattr(person, field) for _, field in present}
    if isinstance(event, TouchEvent) and event.context.ip:
        raw["ip"] = event.context.ip
    first = entries[0]
    update: dict[str, object] = {
        field: pseudonym(kind, getattr(person, field), entry.token)
        for (kind, field), entry in zip(present, entries, strict=True)
    }
    name = seal(first.token, first.key, {"name": person.name}) if person.name else None
    update |= {"name": name, "sealed": seal(first.token, first.key, raw)}
    changes: dict[str, object] = {"person": person.model_copy(update=update)}
    # Some platforms' ids name the person (Zoom's and MTS Link's registrant by email): the
    # pseudonym takes the raw value's place there too, the same for every copy of the event.
    event_id = event.event_id
    for _, field in present:
        event_id = re.sub(re.escape(raw[field]), lambda _, f=field: update[f], event_id, flags=re.IGNORECASE)
    if event_id != event.event_id:
        changes["event_id"] = event_id
    if isinstance(event, TouchEvent) and event.context.ip:
        changes["context"] = event.context.model_copy(update={"ip": None})
    return event.model_copy(update=changes)


def reveal(person: Person, values: dict[str, str] | None, name: dict[str, str] | None = None) -> Person:
    """The person with the raw values their sealed strings held (`values` of person.sealed, `name`
    of a sealed person.name, from Vault.open); what cannot be opened (erased, or never sealed)
    stays as it is, except a sealed name, which goes."""
    update = {k: values[k] for k in ("email", "user_id", "anonymous_id") if k in (values or {})}
    if person.name is not None and is_sealed(person.name):
        update["name"] = (name or {}).get("name")
    return person.model_copy(update=update) if update else person


async def named_members(vault: Vault, message: M) -> M:
    """A score or signal whose members' sealed names (scoring carries them as grouping gave them,
    docs/privacy.md) are opened with the vault, or None when they cannot be (erased, expired):
    what alerts, CRM tasks and the projection show. Raises redis.exceptions.RedisError."""
    groups = [message.members] if isinstance(message, Signal) else []
    breakdown = getattr(message, "breakdown", None)
    if breakdown is not None:
        groups.append(breakdown.members)
    sealed = [m.name for group in groups for m in group if m.name is not None and is_sealed(m.name)]
    if not sealed:
        return message
    return open_member_names(message, await vault.open(sealed))


def open_member_names(message: M, opened: Mapping[str, Mapping[str, str]]) -> M:
    """named_members' pure part: `opened` is Vault.open's answer for the sealed names."""
    def named(members: tuple) -> tuple:
        return tuple(m.model_copy(update={"name": (opened.get(m.name) or {}).get("name")})
                     if m.name is not None and is_sealed(m.name) else m for m in members)

    update: dict[str, object] = {}
    if isinstance(message, Signal):
        update["members"] = named(message.members)
    breakdown = getattr(message, "breakdown", None)
    if breakdown is not None:
        update["breakdown"] = breakdown.model_copy(update={"members": named(breakdown.members)})
    return message.model_copy(update=update)


async def protected_contact(vault: Vault, email: str, name: str | None,
                            person_id: Callable[[str], str]) -> tuple[str, str]:
    """(the address as the log carries it, ``p<20 hex>@<domain>``; the raw address and name sealed
    under its key, {"email"[, "name"]}) for a service that learns of a person outside ingest (a
    CRM contact linked by hand): the same pseudonym as the person's touches carry, and a new
    vault entry when the address was never seen (docs/privacy.md). `person_id`: grouping's
    normalisation of an address (services/grouping/domain/accounts).
    Raises redis.exceptions.RedisError when the vault is unavailable."""
    [entry] = await vault.ensure([(Identifier("email", normalise("email", email, person_id)),
                                   pseudonym("email", email, "{token}"))])
    values = {"email": email} | ({"name": name} if name else {})
    return person_id(pseudonym("email", email, entry.token)), seal(entry.token, entry.key, values)

