"""The pure parts of crypto-shredding: digests, pseudonyms, sealing, and protecting an event."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.grouping.domain.accounts import person_id
from shared.codec import encode, person_events
from shared.privacy.person import identifiers, protect, reveal
from shared.privacy.seal import (
    SealError,
    digest,
    is_sealed,
    new_key,
    new_token,
    normalise,
    open_sealed,
    pseudonym,
    seal,
    token_of,
)
from shared.privacy.vault import Entry
from shared.schemas.touch import Content, Context, Person, TouchEvent

PEPPER = b"unit-test-pepper"


def event(**person) -> TouchEvent:
    return TouchEvent(event_id=f"zoom:registration:81234:{person.get('email', 'x')}",
                      occurred_at=datetime(2026, 10, 1, 9, 0, tzinfo=UTC), source="webinar",
                      kind="webinar_registered", person=Person(**person),
                      content=Content(topic="Автоматизация кадрового учёта"),
                      context=Context(ip="203.0.113.7", user_agent="Mozilla/5.0"))


def test_a_mailbox_has_one_digest_whatever_its_spelling():
    spellings = ["Elena.Sokolova+news@gmail.com", "elenasokolova@googlemail.com", " elena.sokolova@Gmail.com "]
    digests = {digest(PEPPER, identifiers(Person(email=e), person_id)[0][0]) for e in spellings}
    assert len(digests) == 1
    assert digest(b"another-pepper", identifiers(Person(email=spellings[0]), person_id)[0][0]) not in digests


def test_pseudonyms_keep_the_company_domain_and_the_scheme_only():
    token = new_token()
    assert pseudonym("email", "Elena.Sokolova@Romashka.ru", token) == f"{token}@romashka.ru"
    assert pseudonym("anon", "ym:1700000000123", token) == f"ym:{token}"
    assert pseudonym("user", "tel:+79165550345", token) == f"tel:{token}"
    assert pseudonym("user", "U-42", token) == token
    assert normalise("email", " Elena@Romashka.ru ") == "elena@romashka.ru"


def test_a_sealed_value_opens_only_with_its_key_and_under_its_token():
    token, key = new_token(), new_key()
    sealed = seal(token, key, {"email": "elena@romashka.ru", "name": "Елена Соколова"})
    assert token_of(sealed) == token and "elena" not in sealed and "Елена" not in sealed
    assert open_sealed(sealed, key) == {"email": "elena@romashka.ru", "name": "Елена Соколова"}
    with pytest.raises(SealError):
        open_sealed(sealed, new_key())  # the key destroyed and another one in its place: nothing opens
    moved = sealed.replace(token, new_token())  # the token is the cipher's associated data
    with pytest.raises(SealError):
        open_sealed(moved, key)
    with pytest.raises(SealError):
        token_of("v2.p00.abc")


def test_a_protected_event_carries_no_raw_value_and_reveals_them_with_its_key():
    raw = event(email="Elena.Sokolova@romashka.ru", anonymous_id="ym:1700000000123", user_id="tel:+79165550345",
                name="Елена Соколова", job_title="HR-менеджер", company="Красная ромашка")
    entries = [Entry(new_token(), new_key()) for _ in identifiers(raw.person, person_id)]
    logged = protect(raw, entries)
    wire = encode(logged).decode()
    for value in ("Elena.Sokolova", "elena.sokolova", "1700000000123", "79165550345", "Елена", "203.0.113.7"):
        assert value not in wire
    # The company's domain, the title, the company and what was read stay: grouping decides by them.
    assert logged.person.email == f"{entries[0].token}@romashka.ru"
    assert logged.person.anonymous_id == f"ym:{entries[2].token}" and logged.person.user_id == f"tel:{entries[1].token}"
    assert logged.person.job_title == "HR-менеджер" and logged.content.topic == raw.content.topic
    # A platform id naming the person (Zoom's registrant by email) carries the pseudonym instead.
    assert logged.event_id == f"zoom:registration:81234:{entries[0].token}@romashka.ru"
    assert person_events.decode(wire) == logged
    opened = open_sealed(logged.person.sealed, entries[0].key)
    assert opened["ip"] == "203.0.113.7" and "name" not in opened
    # The name is sealed on its own, so that grouping keeps the newest name given, as any trait.
    assert is_sealed(logged.person.name) and not is_sealed("Елена Соколова")
    name = open_sealed(logged.person.name, entries[0].key)
    assert name == {"name": "Елена Соколова"}
    back = reveal(logged.person, opened, name)
    assert (back.email, back.user_id, back.anonymous_id, back.name) == (
        "elena.sokolova@romashka.ru", "tel:+79165550345", "ym:1700000000123", "Елена Соколова")
    # Erased: the pseudonyms stay, the sealed name goes, nothing else is known.
    assert reveal(logged.person, None, None) == logged.person.model_copy(update={"name": None})


def test_protect_refuses_entries_that_do_not_match_the_person():
    with pytest.raises(ValueError):
        protect(event(email="elena@romashka.ru", anonymous_id="a-1"), [Entry(new_token(), new_key())])
