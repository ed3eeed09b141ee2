"""What an ingest dead letter quotes of a person: personal values sealed, each email under its
owner's key, the rest under the item's person's; reason, field paths and the item's shape in clear."""

from __future__ import annotations

import orjson
import pytest

from services.grouping.domain.accounts import person_id
from shared.privacy.dead_letters import identifiers, seal_dead_letter
from shared.privacy.seal import SealError, is_sealed, new_key, new_token, open_sealed
from shared.privacy.vault import Entry

# A Segment identify whose `timestamp` is not a time, with Ольга's mailbox, name, phone and ids;
# her colleague's mailbox in a trait.
ITEM = {
    "type": "identify", "messageId": "ajs-1", "timestamp": "вчера", "userId": "crm-olga-1",
    "anonymousId": "ym:1700000000123",
    "traits": {"email": "Olga.Petrova+hr@Romashka.ru", "firstName": "Ольга", "lastName": "Петрова",
               "phone": 79161234567, "title": "финансовый директор", "company": {"name": "Красная ромашка"},
               "assistant": "секретарь ivan.mikhailov@romashka.ru"},
    "context": {"ip": "203.0.113.7", "page": {"url": "https://vendor.example/solutions/hr/roi"}},
}
DETAIL = "batch.0.timestamp: Input should be a valid datetime (from olga.petrova@romashka.ru)"
RAW = ["Olga.Petrova+hr@Romashka.ru", "olga.petrova@romashka.ru", "Ольга", "Петрова", "79161234567",
       "ivan.mikhailov@romashka.ru", "crm-olga-1", "1700000000123", "203.0.113.7"]


def entry() -> Entry:
    return Entry(new_token(), new_key())


def sealed_values(value) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in sealed_values(v)]
    if isinstance(value, list):
        return [s for v in value for s in sealed_values(v)]
    return [value] if isinstance(value, str) and is_sealed(value) else []


def test_the_identifiers_of_an_item_are_its_emails_then_its_user_and_anonymous_ids():
    found = identifiers(ITEM, person_id)
    assert [(i.kind, i.value, template) for i, template in found] == [
        ("email", "olga.petrova@romashka.ru", "{token}@romashka.ru"),
        ("email", "ivan.mikhailov@romashka.ru", "{token}@romashka.ru"),
        ("user", "crm-olga-1", "{token}"),
        ("anon", "ym:1700000000123", "ym:{token}"),
    ]
    assert identifiers({"reason": "no person", "context": {"page": {"url": "https://x.example/"}}}, person_id) == []


def test_a_sealed_letter_quotes_nobody_and_keeps_what_an_operator_needs():
    olga, ivan = entry(), entry()
    emails = {"olga.petrova@romashka.ru": olga, "ivan.mikhailov@romashka.ru": ivan}
    item, detail, key = seal_dead_letter(ITEM, DETAIL, "ajs-1:olga.petrova@romashka.ru", emails, olga, person_id)
    written = orjson.dumps([item, detail, key]).decode()
    assert [raw for raw in RAW if raw in written or raw.lower() in written] == []
    # The shape, the reason's field path and the non-personal values are as sent.
    assert item["type"] == "identify" and item["timestamp"] == "вчера" and item["messageId"] == "ajs-1"
    assert item["traits"]["title"] == "финансовый директор"
    assert item["context"]["page"] == ITEM["context"]["page"]
    assert detail.startswith("batch.0.timestamp: Input should be a valid datetime (from v1.")
    assert key.startswith("ajs-1:v1.")
    # Each value opens with its owner's key: Иван's address with his, everything else with hers.
    assert open_sealed(item["traits"]["phone"], olga.key) == {"v": "79161234567"}
    assert open_sealed(item["traits"]["email"], olga.key) == {"v": "Olga.Petrova+hr@Romashka.ru"}
    assert open_sealed(item["context"]["ip"], olga.key) == {"v": "203.0.113.7"}
    assistant = item["traits"]["assistant"]
    assert assistant.startswith("секретарь v1.")
    with pytest.raises(SealError):
        open_sealed(assistant.removeprefix("секретарь "), olga.key)
    assert open_sealed(assistant.removeprefix("секретарь "), ivan.key) == {"v": "ivan.mikhailov@romashka.ru"}
    # A field named like a person's is sealed whole, nested values included (a company's name
    # too: over-sealing costs a look in the vault, under-sealing is for good).
    assert is_sealed(item["traits"]["company"]["name"])
    assert len(sealed_values(item)) == 8


def test_an_email_the_caller_has_no_entry_for_is_sealed_under_the_persons_key():
    person = entry()
    item, detail, _ = seal_dead_letter({"note": "write to anna@romashka.ru"}, "", None, {}, person, person_id)
    assert open_sealed(item["note"].removeprefix("write to "), person.key) == {"v": "anna@romashka.ru"}
