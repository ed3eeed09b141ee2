"""The worker's keyed-stage state handling, without Kafka: a table is a dict here."""

from __future__ import annotations

import pytest

from services.grouping.domain.identity import IdentityNode
from services.grouping.main import _Keyed
from shared.codec import Codec, encode


class Event:
    def __init__(self, key: bytes) -> None:
        self.key = key
        self.message = type("Message", (), {"partition": 0})()


def add_alias(alias: str, fail: bool = False):
    """A step that updates the node in place, as the reducers do, and may raise half-way."""

    def step(node: IdentityNode | None, key: str):
        node = node or IdentityNode(identifier=key)
        node.aliases = [*node.aliases, alias]
        if fail:
            raise RuntimeError("bug after a change")
        return node, []

    return step


def test_a_raising_step_leaves_the_state_as_the_batch_made_it_before():
    table = {b"k": encode(IdentityNode(identifier="k", aliases=["a"]))}
    keyed = _Keyed(table, Codec(IdentityNode), max_entries=10)
    keyed.apply(Event(b"k"), add_alias("b"))
    with pytest.raises(RuntimeError):
        keyed.apply(Event(b"k"), add_alias("x", fail=True))
    keyed.apply(Event(b"k"), add_alias("c"))
    keyed.flush()
    assert Codec(IdentityNode).decode(table[b"k"]).aliases == ["a", "b", "c"]


def test_states_reach_the_table_only_at_flush():
    table: dict[bytes, bytes] = {}
    keyed = _Keyed(table, Codec(IdentityNode), max_entries=10)
    for alias in "abc":
        keyed.apply(Event(b"k"), add_alias(alias))
    assert table == {}
    keyed.flush()
    assert Codec(IdentityNode).decode(table[b"k"]).aliases == ["a", "b", "c"]
