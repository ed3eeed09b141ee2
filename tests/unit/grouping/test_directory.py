"""The company-name directory (names stage): lookups, registrations, precedence."""

from __future__ import annotations

from services.grouping.domain.directory import DirectoryEntry, lookup, register, shard_key
from services.grouping.domain.messages import AccountAssigned, NameLookup, NameRegistration
from shared.schemas.opportunity import AccountRef
from tests.unit.grouping.harness import at

ROMASHKA = AccountRef(account_id="romashka.ru", name="Красная ромашка", domains=("romashka.ru",))


def ask(name: str, person: str = "p@gmail.com") -> NameLookup:
    return NameLookup(lookup_id=f"{person}|{name}", occurred_at=at(0), person_id=person, name=name,
                      display_name=name.title())


def test_registered_names_answer_exact_and_fuzzy_lookups(config) -> None:
    names = config.people.accounts.names
    directory: dict[str, DirectoryEntry] = {}
    directory.update(register(directory, NameRegistration(occurred_at=at(0), name="красная ромашка",
                                                          account=ROMASHKA), names)[0])
    updates, [reply] = lookup(directory, ask("красная ромашка"), names)
    assert updates == {} and reply.to == "people" and reply.key == "p@gmail.com"
    assert isinstance(reply.message, AccountAssigned) and reply.message.account == ROMASHKA
    updates, [reply] = lookup(directory, ask("красная ромашко"), names)
    assert reply.message.account == ROMASHKA
    assert updates["красная ромашко"].account == ROMASHKA  # the same misspelling answers the same way later


def test_an_unknown_name_becomes_a_name_account_and_stays_one(config) -> None:
    names = config.people.accounts.names
    directory: dict[str, DirectoryEntry] = {}
    updates, [reply] = lookup(directory, ask("синяя лилия"), names)
    assert reply.message.account.account_id == "name:синяя лилия"
    assert updates["синяя лилия"].origin == "name"
    directory.update(updates)
    _, [again] = lookup(directory, ask("синяя лилия", "q@mail.ru"), names)
    assert again.message.account.account_id == "name:синяя лилия"


def test_a_domain_account_takes_a_name_over_but_never_the_other_way(config) -> None:
    names = config.people.accounts.names
    directory: dict[str, DirectoryEntry] = {}
    directory.update(lookup(directory, ask("красная ромашка"), names)[0])
    updates, [merge] = register(directory, NameRegistration(occurred_at=at(1), name="красная ромашка",
                                                            account=ROMASHKA), names)
    directory.update(updates)
    assert directory["красная ромашка"] == DirectoryEntry(account=ROMASHKA, origin="domain")
    assert merge.key == "name:красная ромашка" and merge.message.into == ROMASHKA
    other = AccountRef(account_id="romashka.com", domains=("romashka.com",))
    assert register(directory, NameRegistration(occurred_at=at(2), name="красная ромашка", account=other),
                    names) == ({}, [])


def test_a_latin_spelling_finds_the_cyrillic_name_and_numbers_keep_companies_apart(config) -> None:
    names = config.people.accounts.names
    skvorechnik = AccountRef(account_id="skvorechnik.ru", name="ООО «Скворечник Технологии»",
                             domains=("skvorechnik.ru",))
    kvarc = AccountRef(account_id="kvarcmontazh31.ru", name="Кварцмонтаж-31", domains=("kvarcmontazh31.ru",))
    directory: dict[str, DirectoryEntry] = {}
    for name, account in (("скворечник технологии", skvorechnik), ("кварцмонтаж 31", kvarc)):
        directory.update(register(directory, NameRegistration(occurred_at=at(0), name=name, account=account), names)[0])
    _, [reply] = lookup(directory, ask(names.normalise("OOO Skvorechnik Tekhnologii")), names)
    assert reply.message.account == skvorechnik
    updates, [reply] = lookup(directory, ask(names.normalise("АО «Кварцмонтаж-32»")), names)
    assert reply.message.account.account_id == "name:кварцмонтаж 32"
    assert updates["кварцмонтаж 32"].origin == "name"


def test_names_alike_share_a_block_so_they_land_on_one_partition(config) -> None:
    names = config.people.accounts.names
    spellings = ["ООО «Красная Ромашка»", "красная ромашко", "Ромашка Красная", "АО Красная ромашка",
                 "OOO Krasnaya Romashka"]
    assert len({shard_key(names.normalise(s)) for s in spellings}) == 1
    assert shard_key("синяя лилия") != shard_key("красная ромашка")
    assert shard_key("") == "names:"
