"""The worker's keyed-stage state handling, without Kafka: a table is a dict here."""

from __future__ import annotations

import pytest

from services.grouping.domain.identity import IdentityNode
from services.grouping.stages import KeyedStage, Stored, stamp_headers
from shared.codec import Codec, encode

STORED = Codec(Stored[IdentityNode])


class Event:
    """What KeyedStage reads of a faust event: key, partition, headers."""

    def __init__(self, key: bytes, origin: str | None = None, offset: int = 0, index: int = 0) -> None:
        self.key = key
        self.message = type("Message", (), {"partition": 0, "offset": offset})()
        self.headers = stamp_headers(origin, offset, index) if origin else []


def add_alias(alias: str, fail: bool = False):
    """A step that updates the node in place, as the reducers do, and may raise half-way."""

    def step(node: IdentityNode | None, key: str):
        node = node or IdentityNode(identifier=key)
        node.aliases = [*node.aliases, alias]
        if fail:
            raise RuntimeError("bug after a change")
        return node, []

    return step


def aliases(table: dict[bytes, bytes], key: bytes = b"k") -> list[str]:
    return STORED.decode(table[key]).state.aliases


def test_a_raising_step_leaves_the_state_as_the_batch_made_it_before():
    table = {b"k": encode(Stored[IdentityNode](state=IdentityNode(identifier="k", aliases=["a"])))}
    keyed = KeyedStage(table, IdentityNode, max_entries=10)
    keyed.apply(Event(b"k", "route/0", 1), add_alias("b"))
    with pytest.raises(RuntimeError):
        keyed.apply(Event(b"k", "route/0", 2), add_alias("x", fail=True))
    keyed.apply(Event(b"k", "route/0", 3), add_alias("c"))
    keyed.flush()
    assert aliases(table) == ["a", "b", "c"]


def test_states_reach_the_table_only_at_flush():
    table: dict[bytes, bytes] = {}
    keyed = KeyedStage(table, IdentityNode, max_entries=10)
    for offset, alias in enumerate("abc"):
        keyed.apply(Event(b"k", "route/0", offset), add_alias(alias))
    assert table == {}
    keyed.flush()
    assert aliases(table) == ["a", "b", "c"]


def test_a_message_at_or_below_the_last_stamp_of_its_origin_is_a_duplicate():
    table: dict[bytes, bytes] = {}
    keyed = KeyedStage(table, IdentityNode, max_entries=10)
    keyed.apply(Event(b"k", "route/0", 5, 0), add_alias("a"))
    keyed.apply(Event(b"k", "route/0", 5, 1), add_alias("b"))  # the same input's second output
    keyed.apply(Event(b"k", "route/0", 5, 0), add_alias("dup"))  # re-sent by a replaying upstream
    keyed.apply(Event(b"k", "route/1", 2, 0), add_alias("c"))  # another origin counts on its own
    keyed.apply(Event(b"k", "route/0", 4, 3), add_alias("old"))
    keyed.apply(Event(b"k", "route/0", 6, 0), add_alias("d"))
    keyed.flush()
    assert aliases(table) == ["a", "b", "c", "d"]
    assert keyed.duplicates == 2
    assert STORED.decode(table[b"k"]).seen == {"route/0": (6, 0), "route/1": (2, 0)}


def test_the_stamps_survive_a_restart_with_the_state():
    table: dict[bytes, bytes] = {}
    first = KeyedStage(table, IdentityNode, max_entries=10)
    first.apply(Event(b"k", "persons/2", 10), add_alias("a"))
    first.flush()
    # A new worker reads the table (the changelog) and gets the same input again: skipped.
    second = KeyedStage(table, IdentityNode, max_entries=10)
    second.apply(Event(b"k", "persons/2", 10), add_alias("again"))
    second.apply(Event(b"k", "persons/2", 11), add_alias("b"))
    second.flush()
    assert aliases(table) == ["a", "b"]


def test_an_unstamped_message_is_always_applied():
    table: dict[bytes, bytes] = {}
    keyed = KeyedStage(table, IdentityNode, max_entries=10)
    keyed.apply(Event(b"k"), add_alias("a"))
    keyed.apply(Event(b"k"), add_alias("b"))
    keyed.flush()
    assert aliases(table) == ["a", "b"]
    assert STORED.decode(table[b"k"]).seen == {}


def test_the_stamp_map_is_bounded_by_origins_not_by_inputs():
    table: dict[bytes, bytes] = {}
    keyed = KeyedStage(table, IdentityNode, max_entries=10)
    for offset in range(2000):
        keyed.apply(Event(b"k", f"persons/{offset % 4}", offset), lambda node, key: (node or IdentityNode(
            identifier=key), []))
    keyed.flush()
    assert len(table[b"k"]) < 200
    assert len(STORED.decode(table[b"k"]).seen) == 4
