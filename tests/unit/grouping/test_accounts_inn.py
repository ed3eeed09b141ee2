"""INN as an account key: one INN is one account, different INNs are never merged by name."""

from __future__ import annotations

import pytest

from services.grouping.domain.accounts import NeedsLookup, Resolved, Unresolved, by_inn
from shared.inn import inn
from shared.schemas.opportunity import AccountRef

# Checksum-valid INNs: three of legal entities from the public register (ЕГРЮЛ) and a 12-digit
# one from python-stdnum's documentation.
SBER, PERSON, OTHER, THIRD = "7707083893", "500100732259", "7736207543", "7710140679"


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
