import faust.streams

from shared.codec import Codec, encode
from shared.schemas.base import Message
from shared.streaming import StateCache


class Counter(Message):
    n: int


class CountingTable(dict):
    """A dict that counts writes, standing in for a faust table (a MutableMapping of bytes)."""

    writes = 0

    def __setitem__(self, key, value):
        self.writes += 1
        super().__setitem__(key, value)


def test_one_decode_per_key_and_one_write_per_batch():
    table = CountingTable({b"a": encode(Counter(n=1))})
    cache = StateCache(table, Codec(Counter))
    for _ in range(100):
        state = cache.get(b"a")
        cache.put(b"a", Counter(n=state.n + 1))
    assert table.writes == 0 and cache.get(b"a").n == 101
    assert cache.flush() == 1 and table.writes == 1
    assert Codec(Counter).decode(table[b"a"]).n == 101
    assert cache.flush() == 0


def test_missing_key_and_drop_reads_the_table_again():
    table = CountingTable()
    cache = StateCache(table, Codec(Counter))
    assert cache.get(b"x") is None
    cache.put(b"x", Counter(n=5))
    cache.drop()  # a rebalance: flushes, forgets
    table[b"x"] = encode(Counter(n=7))  # what the table holds now (e.g. restored changelog)
    assert cache.get(b"x").n == 7


def test_drop_writes_unsaved_states_before_forgetting_them():
    # A rebalance drops the decoded states; a change not yet flushed must reach the table
    # (and so the changelog) first, or the batch that made it is lost with the partition.
    table = CountingTable({b"a": encode(Counter(n=1))})
    cache = StateCache(table, Codec(Counter))
    cache.put(b"a", Counter(n=2))
    cache.put(b"b", Counter(n=3))
    cache.drop()
    assert {k: Codec(Counter).decode(v).n for k, v in table.items()} == {b"a": 2, b"b": 3}
    assert table.writes == 2 and cache.flush() == 0
    table[b"a"] = encode(Counter(n=7))  # forgotten: the next get reads the table
    assert cache.get(b"a").n == 7


def test_eviction_keeps_unflushed_states():
    table = CountingTable()
    cache = StateCache(table, Codec(Counter), max_entries=2)
    for i in range(5):
        cache.put(f"k{i}".encode(), Counter(n=i))
    assert cache.flush() == 5  # nothing dirty was evicted before its write
    for i in range(5):
        assert cache.get(f"k{i}".encode()).n == i


class Event:
    """What the cache needs of a faust event: the message's partition, read by the table."""

    def __init__(self, partition: int) -> None:
        self.message = type("Message", (), {"partition": partition})()


class PartitionRecordingTable(dict):
    """Records the partition of faust's current event at each write, as a faust table uses it."""

    def __init__(self) -> None:
        super().__init__()
        self.partitions: dict[bytes, int | None] = {}

    def __setitem__(self, key, value):
        event = faust.streams.current_event()
        self.partitions[key] = event.message.partition if event is not None else None
        super().__setitem__(key, value)


def test_each_key_is_written_under_the_event_that_changed_it():
    table = PartitionRecordingTable()
    cache = StateCache(table, Codec(Counter))
    cache.put(b"a", Counter(n=1), Event(partition=0))
    cache.put(b"b", Counter(n=1), Event(partition=3))
    cache.put(b"a", Counter(n=2), Event(partition=0))
    cache.flush()
    assert table.partitions == {b"a": 0, b"b": 3}
    assert faust.streams.current_event() is None


def test_discard_forgets_unwritten_changes():
    table = CountingTable({b"a": encode(Counter(n=1))})
    cache = StateCache(table, Codec(Counter))
    cache.put(b"a", Counter(n=9))
    cache.discard(b"a")
    assert cache.get(b"a").n == 1 and cache.flush() == 0
