"""The names stage's table, the company-name directory (domain/directory.py), as it reads it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, MutableMapping

from faust.types import EventT

from services.grouping.domain import directory
from shared.codec import Codec
from shared.streaming import StateCache


class NameDirectory:
    """The directory table as the names stage reads it: by block, decoded entries.

    Which names each block holds is indexed in memory from the table's keys on first use after
    an assignment; names of other blocks never count, so the answer does not depend on which
    other partitions (or standby copies) this worker happens to hold. Changes wait in a
    StateCache until the batch's `snapshot` is written, like a KeyedStage's states.
    """

    def __init__(self, table: MutableMapping[bytes, bytes], max_entries: int = 50_000) -> None:
        self._table = table
        self._entries = StateCache(table, Codec(directory.DirectoryEntry), max_entries)
        self._blocks: dict[str, set[str]] | None = None

    def block(self, name: str) -> Mapping[str, directory.DirectoryEntry]:
        if self._blocks is None:
            self._blocks = {}
            for key in self._table:
                self._index(key.decode())
        return _Block(self, self._blocks.get(directory.shard_key(name), set()))

    def get(self, name: str) -> directory.DirectoryEntry | None:
        return self._entries.get(name.encode())

    def put(self, name: str, entry: directory.DirectoryEntry, event: EventT | None) -> None:
        """Change an entry; the table (its changelog partition: the event's) gets it at the write."""
        self._entries.put(name.encode(), entry, event)
        if self._blocks is not None:
            self._index(name)

    def snapshot(self) -> Callable[[], int]:
        """Encode the batch's changes now; the call returned writes them to the table."""
        entries = self._entries.snapshot()
        return lambda: self._entries.write(entries)

    def drop(self) -> None:
        self._entries.drop()
        self._blocks = None

    def _index(self, name: str) -> None:
        assert self._blocks is not None
        self._blocks.setdefault(directory.shard_key(name), set()).add(name)


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
