"""INN as an account key: one INN is one account, different INNs are never merged by name."""

from __future__ import annotations

import pytest

from services.grouping.domain.accounts import NeedsLookup, Resolved, Unresolved, by_inn
from shared.inn import inn
from shared.schemas.opportunity import AccountRef

# Checksum-valid INNs: two of legal entities from the public register (ЕГРЮЛ) and a 12-digit
# one from python-stdnum's documentation.
SBER, PERSON, OTHER = "7707083893", "500100732259", "7736207543"


def test_checksum_of_ten_and_twelve_digits() -> None:
    assert inn(SBER) == SBER and inn(PERSON) == PERSON and inn(OTHER) == OTHER
    assert inn("7707 083 893") == SBER
    assert inn("7707083894") is None  # last digit off
    assert inn("500100732258") is None  # second check digit off
    assert inn("12345") is None and inn("77070838930") is None and inn("") is None
    assert inn("77070838ЭЗ") is None and inn(None) is None and inn(True) is None
    assert inn(7707083893) == SBER


def test_same_inn_merges_two_name_based_accounts(config) -> None:
    rules = config.people.accounts
    known: dict[str, AccountRef] = {}
    first = by_inn(rules.resolve("elena@gmail.com", "Красная ромашка"), SBER, known)
    assert isinstance(first, Resolved) and first.account.account_id == f"inn:{SBER}"
    known[SBER] = first.account
    # A different spelling that no name match would join: the INN makes it the same account.
    second = by_inn(rules.resolve("olga@mail.ru", "КР Софт Групп"), SBER, known)
    assert isinstance(second, Resolved) and second.account == first.account


def test_same_name_different_inns_stay_apart(config) -> None:
    rules = config.people.accounts
    known: dict[str, AccountRef] = {}
    a = by_inn(rules.resolve("ivan@gmail.com", "ООО Ромашка"), SBER, known)
    known[SBER] = a.account
    b = by_inn(rules.resolve("petr@yandex.ru", "Ромашка"), OTHER, known)
    assert isinstance(rules.resolve("petr@yandex.ru", "Ромашка"), NeedsLookup)  # by name alone: one company
    assert a.account.account_id == f"inn:{SBER}" and b.account.account_id == f"inn:{OTHER}"
    assert a.account.name == "ООО Ромашка" and b.account.name == "Ромашка"


def test_domain_account_keeps_its_id_and_a_known_inn_joins_a_second_domain(config) -> None:
    rules = config.people.accounts
    first = by_inn(rules.resolve("cfo@romashka.ru", "Красная ромашка"), SBER, {})
    assert isinstance(first, Resolved) and first.by_domain and first.account.account_id == "romashka.ru"
    second = by_inn(rules.resolve("it@krasnaya-romashka.com"), SBER, {SBER: first.account})
    assert second.account.account_id == "romashka.ru" and not second.by_domain


@pytest.mark.parametrize("bad", [None, "7707083894", "not an inn"])
def test_no_valid_inn_changes_nothing(config, bad) -> None:
    rules = config.people.accounts
    found = rules.resolve("ivan@gmail.com", "Ромашка")
    assert by_inn(found, bad, {SBER: AccountRef(account_id="x.ru")}) == found
    assert by_inn(Unresolved("no company"), SBER, {}) == Unresolved("no company")


def _account_of(config, pid: str, *messages) -> str | None:
    from services.grouping.domain import people
    from services.grouping.domain.messages import AccountActivity
    profile, found = None, []
    for message in messages:
        profile, out = people.step(profile, pid, message, config.people)
        found += [o.message.account.account_id for o in out if isinstance(o.message, AccountActivity)]
    return found[-1] if found else None


def test_people_stage_takes_the_inn_of_a_form_or_an_identify(config) -> None:
    from services.grouping.domain.accounts import CompanyNames
    from shared.schemas.touch import CompanyTraits, IdentityEvent, Person, TouchEvent
    from tests.unit.grouping.harness import at

    def form(n: int, email: str, company: str, inn_value: str | None) -> TouchEvent:
        return TouchEvent(event_id=f"f{n}", occurred_at=at(n), source="form", kind="form_submitted",
                          person=Person(email=email, company=company, inn=inn_value))

    # Two spellings no name match joins, one INN: one account.
    a = _account_of(config, "ivan@gmail.com", form(1, "ivan@gmail.com", "Красная ромашка", SBER))
    b = _account_of(config, "olga@mail.ru", form(2, "olga@mail.ru", "КР Софт Групп", SBER))
    assert a == b == f"inn:{SBER}"
    assert CompanyNames().best_match("кр софт групп", ["красная ромашка"]) is None
    # One name, two INNs: two accounts (by name alone the directory would have joined them).
    c = _account_of(config, "petr@yandex.ru", form(3, "petr@yandex.ru", "Ромашка", OTHER))
    d = _account_of(config, "anna@yandex.ru", form(4, "anna@yandex.ru", "Ромашка", SBER))
    assert (c, d) == (f"inn:{OTHER}", f"inn:{SBER}")
    # The INN of an identify call's company traits counts too; a wrong checksum does not.
    pid = "gleb@gmail.com"
    e = _account_of(config, pid, IdentityEvent(event_id="i1", occurred_at=at(5), person=Person(email=pid),
                                               company=CompanyTraits(name="Ромашка", inn=OTHER)),
                    TouchEvent(event_id="t1", occurred_at=at(6), source="web", kind="page_view",
                               person=Person(email=pid)))
    assert e == f"inn:{OTHER}"
    assert _account_of(config, "x@gmail.com", form(7, "x@gmail.com", "Ромашка", "7707083894")) is None  # waits
    # A corporate domain stays the account (the INN does not move a person off their domain).
    assert _account_of(config, "cfo@romashka.ru", form(8, "cfo@romashka.ru", "Ромашка", OTHER)) == "romashka.ru"
