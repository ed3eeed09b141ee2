"""What an ingest dead letter may quote of a person (docs/privacy.md), pure given the vault's keys.

A dead letter quotes the item ingest could not map, so that an operator can see what was wrong
and replay it once fixed. Quoted raw, it kept people's emails, names and phones on a topic an
erase cannot rewrite. Here the personal values of the item, its detail and its key are sealed
(shared/privacy/seal.py) before it is written:

- every email anywhere (a value, part of a value, a key of an object) under the key of that
  email's own vault entry, so that erasing its owner makes it unreadable;
- every value under a personal field name (PERSONAL_FIELD: names, phones, ids, addresses...),
  whatever its type, and everything inside such a field, under the key of the item's person:
  the entry of its first email, else of its user id, else of its anonymous id, else a key of
  the dead letter's own, which retention destroys with the other idle keys.

The rest stays in clear: the reason, the field path and message of the detail, the source, the
event type, times, URLs, job titles. A sealed value reads ``v1.<token>.<...>`` and holds
``{"v": <the raw value as text>}``; the vault opens it while its key exists (Vault.open).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from shared.privacy.seal import Identifier, normalise, pseudonym, seal
from shared.privacy.vault import Entry

# Bounded parts (RFC 5321's 64-character local part, 63-character labels): a refused item may hold
# a megabyte without an "@", and an unbounded local part made the search quadratic (a timeout).
EMAIL = re.compile(r"[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63}){0,8}\.[A-Za-z]{2,24}")
# Field names whose values name or reach a person, in the platforms' spellings (snake, camel,
# Russian transliterations): over-sealing a page's `name` costs an operator a look in the vault,
# under-sealing a phone leaves it on the topic for good.
PERSONAL_FIELD = re.compile(
    r"mail|name|fio|phone|tel|caller|contact|login|address|birth|passport|user_?id|anonymous|client_?id"
    r"|^ip$|^ip_|_ip$|^uid$|^cid$", re.IGNORECASE)
USER_FIELD = re.compile(r"^user_?id$", re.IGNORECASE)
ANONYMOUS_FIELD = re.compile(r"^anonymous_?id$", re.IGNORECASE)


def identifiers(item: Any, person_id: Callable[[str], str]) -> list[tuple[Identifier, str]]:
    """The identifiers a dead-lettered item (JSON, pruned to a bounded depth) names, each with its
    pseudonym template (as shared.privacy.person.identifiers): every email anywhere, then the user
    ids and anonymous ids under their usual field names, without repeats. The first is the item's
    person."""
    emails, users, anons = [], [], []
    for field, value in _leaves(item):
        if isinstance(value, str) and "@" in value:
            emails += EMAIL.findall(value)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            if USER_FIELD.match(field):
                users.append(str(value))
            elif ANONYMOUS_FIELD.match(field):
                anons.append(str(value))
    found: dict[Identifier, str] = {}
    for kind, values in (("email", emails), ("user", users), ("anon", anons)):
        for raw in values:
            found.setdefault(Identifier(kind, normalise(kind, raw, person_id)), pseudonym(kind, raw, "{token}"))
    return list(found.items())


def seal_dead_letter(item: Any, detail: str, key: str | None, emails: Mapping[str, Entry], person: Entry,
                     person_id: Callable[[str], str]) -> tuple[Any, str, str | None]:
    """(item, detail, key) with their personal values sealed.

    `emails`: the vault entry of each email's normalised form (identifiers' emails); `person`:
    the entry the other personal values are sealed under. An email missing from `emails` (a
    caller's bug) is sealed under `person`, never left in clear."""

    def email(match: re.Match) -> str:
        entry = emails.get(normalise("email", match.group(0), person_id), person)
        return seal(entry.token, entry.key, {"v": match.group(0)})

    def text(value: str) -> str:
        return EMAIL.sub(email, value) if "@" in value else value

    def walk(value: Any, personal: bool) -> Any:
        if isinstance(value, dict):
            return {text(str(k)): walk(v, personal or bool(PERSONAL_FIELD.search(str(k)))) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, personal) for v in value]
        if value is None or isinstance(value, bool):
            return value
        if personal:
            # orjson refuses lone surrogates (JSON may carry them; limits.quoted falls back for them).
            raw = str(value).encode("utf-8", "replace").decode()
            whole = EMAIL.fullmatch(raw.strip())
            entry = emails.get(normalise("email", whole.group(0), person_id), person) if whole else person
            return seal(entry.token, entry.key, {"v": raw})
        return text(value) if isinstance(value, str) else value

    return walk(item, False), text(detail), None if key is None else text(key)


def _leaves(value: Any, field: str = "") -> Iterator[tuple[str, Any]]:
    """(the name of the field holding it, value) of every scalar of a JSON value, depth first."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, str(k))
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v, field)
    else:
        yield field, value
