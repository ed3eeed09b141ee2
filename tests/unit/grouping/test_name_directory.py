"""The names stage's table: changes reach it only when the batch's outputs were acknowledged."""

from __future__ import annotations

from services.grouping.domain.directory import DirectoryEntry, lookup, register
from services.grouping.domain.messages import AccountMerge, NameLookup, NameRegistration
from services.grouping.name_directory import NameDirectory
from shared.codec import Codec
from shared.schemas.opportunity import AccountRef
from tests.unit.grouping.harness import at

ROMASHKA = AccountRef(account_id="romashka.ru", name="Красная ромашка", domains=("romashka.ru",))
NAME = "красная ромашка"
REGISTRATION = NameRegistration(occurred_at=at(1), name=NAME, account=ROMASHKA)


def looked_up(table: dict[bytes, bytes], names) -> None:
    """A free-mail person's lookup made the name an account of its own, written."""
    directory = NameDirectory(table)
    ask = NameLookup(lookup_id="p|x", occurred_at=at(0), person_id="p@gmail.com", name=NAME, display_name="Х")
    updates, _ = lookup(directory.matchable(NAME), ask, names)
    for name, entry in updates.items():
        directory.put(name, entry, None)
    directory.snapshot()()


def registered(directory: NameDirectory, names) -> list:
    updates, outputs = register(directory.registrable(NAME), REGISTRATION, names)
    for name, entry in updates.items():
        directory.put(name, entry, None)
    return outputs


def test_a_registration_whose_merge_was_not_acknowledged_merges_again_when_read_again(config) -> None:
    names = config.people.accounts.names
    table: dict[bytes, bytes] = {}
    looked_up(table, names)
    directory = NameDirectory(table)
    [merge] = registered(directory, names)
    assert isinstance(merge.message, AccountMerge) and merge.key == f"name:{NAME}"
    assert directory.get(NAME).origin == "domain"  # the batch goes on with its own change
    directory.snapshot()  # the batch ended; its outputs were never acknowledged (a crash)
    assert Codec(DirectoryEntry).decode(table[NAME.encode()]).origin == "name"
    # The worker restarts and reads the registration again: the same merge, not nothing.
    assert registered(NameDirectory(table), names) == [merge]


def test_a_batch_s_changes_reach_the_table_at_its_write(config) -> None:
    names = config.people.accounts.names
    table: dict[bytes, bytes] = {}
    looked_up(table, names)
    directory = NameDirectory(table)
    registered(directory, names)
    write = directory.snapshot()
    assert directory.get(NAME).origin == "domain" and len(directory.block(NAME)) == 1
    write()
    assert Codec(DirectoryEntry).decode(table[NAME.encode()]).origin == "domain"
    assert registered(NameDirectory(table), names) == []  # taken over once


def test_a_registration_reads_only_the_names_made_from_names_of_its_block(config) -> None:
    """A block grows with the market (the soak's 160,000 companies); a registration must not
    decode the domains' names of its block, which it skips, and answers as over the whole block."""
    names = config.people.accounts.names
    table: dict[bytes, bytes] = {}
    looked_up(table, names)  # "красная ромашка": an account of its own name
    codec = Codec(DirectoryEntry)
    letters = "абвгдежзиклмнопрстуфхцчшщэюя"
    for i in range(500):  # domains' names in the same block ("krasnaya ..." in the match key)
        word = "система" + letters[i // len(letters)] + letters[i % len(letters)]
        ref = AccountRef(account_id=f"krasnaya{i}.ru", name=f"Красная {word}", domains=(f"krasnaya{i}.ru",))
        table[f"красная {word}".encode()] = codec.encode(DirectoryEntry(account=ref, origin="domain"))
    directory = NameDirectory(table)
    view = directory.registrable(NAME)
    assert sorted(view) == [NAME]
    assert len(directory.block(NAME)) == 501
    assert register(view, REGISTRATION, names) == register(NameDirectory(table).block(NAME), REGISTRATION, names)
    # Taken over, the name is a domain's now: a later registration reads nothing more of the block.
    registered(directory, names)
    assert directory.get(NAME).origin == "domain"
    assert sorted(directory.registrable("красная системаав")) == ["красная системаав"]
    assert sorted(directory.registrable("красная новая")) == []  # a name the directory does not hold


def test_a_lookup_reads_only_the_names_of_its_block_with_the_same_numbers(config) -> None:
    """best_match never answers a name whose numbers differ ('Экспресс-1' is not 'Экспресс-2'):
    a lookup reads only its block's names with the same distinguishing words, and answers as
    over the whole block."""
    names = config.people.accounts.names
    codec = Codec(DirectoryEntry)
    table: dict[bytes, bytes] = {}
    for i in range(300):  # "компания 0" ... "компания 299": one block ("0", "1", "2" ... first)
        ref = AccountRef(account_id=f"company{i}.ru", name=f"Компания {i}", domains=(f"company{i}.ru",))
        table[f"компания {i}".encode()] = codec.encode(DirectoryEntry(account=ref, origin="domain"))
    directory = NameDirectory(table)
    ask = NameLookup(lookup_id="p|y", occurred_at=at(0), person_id="q@mail.ru", name="компани 17",
                     display_name="Компани 17")
    assert sorted(directory.matchable("компани 17")) == ["компания 17"]
    assert lookup(directory.matchable("компани 17"), ask, names) == lookup(directory.block("компани 17"), ask, names)
    updates, [reply] = lookup(directory.matchable("компани 17"), ask, names)
    assert reply.message.account.account_id == "company17.ru" and updates["компани 17"].origin == "domain"
