"""The names stage's table, the company-name directory (domain/directory.py), as it reads it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, MutableMapping

from faust.types import EventT

from services.grouping.domain import directory
from services.grouping.domain.accounts import distinguishing
from shared.codec import Codec
from shared.streaming import StateCache


class NameDirectory:
    """The directory table as the names stage reads it: by block, decoded entries.

    Which names each block holds, by their distinguishing words (numbers, roman numerals:
    accounts.distinguishing; two names match only when these agree), and which of them are
    accounts made from the name alone (origin "name"), is indexed in memory from the table on
    first use after an assignment. A lookup or a registration reads only the names it could
    match, not its whole block, which grows with the market (bench/soak.py);
    names of other blocks never count, so the answer does not depend on which other partitions
    (or standby copies) this worker happens to hold. Changes wait in a StateCache until the
    batch's `snapshot` is written, like a KeyedStage's states.
    """

    def __init__(self, table: MutableMapping[bytes, bytes], max_entries: int = 50_000) -> None:
        self._table = table
        self._codec = Codec(directory.DirectoryEntry)
        self._entries = StateCache(table, self._codec, max_entries)
        self._blocks: dict[str, set[str]] | None = None
        self._alike: dict[tuple[str, tuple[str, ...]], set[str]] = {}  # by (block, distinguishing words)
        self._made_from_names: dict[tuple[str, tuple[str, ...]], set[str]] = {}  # the same, origin "name"

    def block(self, name: str) -> Mapping[str, directory.DirectoryEntry]:
        """Every name of `name`'s block (shard_key)."""
        return _Block(self, self._indexed().get(directory.shard_key(name), set()))

    def matchable(self, name: str) -> Mapping[str, directory.DirectoryEntry]:
        """What a lookup of `name` reads (directory.lookup): the names of its block with the same
        distinguishing words, the only ones CompanyNames.best_match may answer."""
        self._indexed()
        return _Block(self, self._alike.get(_alike_key(name), set()))

    def registrable(self, name: str) -> Mapping[str, directory.DirectoryEntry]:
        """What a registration of `name` reads (directory.register): the names of its block made
        into accounts from the name alone, and `name` itself. The rest of the block are domains'
        names, which register skips: read whole, a registration decoded every name of its block,
        and a block grows with the market (the soak of 160,000 companies fell from 300 to 15
        events/s in grouping, 99% of it here, with the block larger than the state cache)."""
        known = self._indexed().get(directory.shard_key(name), set())
        return _Block(self, self._made_from_names.get(_alike_key(name), set()) | ({name} & known))

    def _indexed(self) -> dict[str, set[str]]:
        if self._blocks is None:
            self._blocks, self._alike, self._made_from_names = {}, {}, {}
            for key, value in self._table.items():  # once per assignment: the origin of every name
                self._index(key.decode(), self._codec.decode(value))
        return self._blocks

    def get(self, name: str) -> directory.DirectoryEntry | None:
        return self._entries.get(name.encode())

    def put(self, name: str, entry: directory.DirectoryEntry, event: EventT | None) -> None:
        """Change an entry; the table (its changelog partition: the event's) gets it at the write."""
        self._entries.put(name.encode(), entry, event)
        if self._blocks is not None:
            self._index(name, entry)

    def snapshot(self) -> Callable[[], int]:
        """Encode the batch's changes now; the call returned writes them to the table."""
        entries = self._entries.snapshot()
        return lambda: self._entries.write(entries)

    def drop(self) -> None:
        self._entries.drop()
        self._blocks = None
        self._alike, self._made_from_names = {}, {}

    def _index(self, name: str, entry: directory.DirectoryEntry) -> None:
        assert self._blocks is not None
        self._blocks.setdefault(directory.shard_key(name), set()).add(name)
        alike = _alike_key(name)
        self._alike.setdefault(alike, set()).add(name)
        made = self._made_from_names.setdefault(alike, set())
        if entry.origin == "name":
            made.add(name)
        else:
            made.discard(name)


def _alike_key(name: str) -> tuple[str, tuple[str, ...]]:
    return directory.shard_key(name), distinguishing(name)


class _Block(Mapping[str, directory.DirectoryEntry]):
    def __init__(self, directory_: NameDirectory, names: set[str]) -> None:
        self._directory = directory_
        self._names = names

    def __getitem__(self, name: str) -> directory.DirectoryEntry:
        entry = self._directory.get(name) if name in self._names else None
        if entry is None:
            raise KeyError(name)
        return entry

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._names))

    def __len__(self) -> int:
        return len(self._names)
