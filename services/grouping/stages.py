"""A keyed stage's states, and how duplicates are told apart without remembering inputs.

At-least-once delivery makes two kinds of duplicates: a stage replays its own input from the
last committed offset after a crash or a rebalance, and an upstream stage that replays re-sends
outputs a key may already have applied. Both are caught by a *stamp* every internal message
carries in its Kafka headers:

- `bg-origin`: the stage and input partition that produced it, e.g. b"people/3";
- `bg-seq`: its position there, b"<input offset>.<index among that input's outputs>".

One partition of a stage reads its input in offset order and sends in that order, and Kafka
keeps a producer's order within a partition, so a key receives each origin's stamps in
increasing order. A replayed input gives the same stamps (the reducers are pure and read only
their own key's state), so a key keeps, per origin, the last stamp it applied (`Stored.seen`)
and skips a message at or below it. The map has one entry per upstream partition, however
many messages the key receives: bounded by (stages x partitions), unlike a list of input ids.

A skipped duplicate re-emits nothing, which is safe because a batch's outputs are acknowledged
by Kafka before its states are written (`Grouping._batches`, shared.streaming.InOrderBatches):
a state never reaches the changelog ahead of the outputs it produced.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from faust.types import EventT, TableT
from pydantic import BaseModel, Field

from services.grouping.domain.messages import Outbound
from shared.codec import Codec
from shared.streaming import StateCache

S = TypeVar("S", bound=BaseModel)
Step = Callable[[S | None, str], tuple[S, list[Outbound]]]
Seq = tuple[int, int]

ORIGIN, SEQ = "bg-origin", "bg-seq"


class Stored(BaseModel, Generic[S]):
    """What a keyed table holds: the domain state and the last stamp applied per origin."""

    state: S
    seen: dict[str, Seq] = Field(default_factory=dict)


def stamp_headers(origin: str, offset: int, index: int) -> list[tuple[str, bytes]]:
    return [(ORIGIN, origin.encode()), (SEQ, f"{offset}.{index}".encode())]


def stamp_of(event: EventT) -> tuple[str, Seq] | None:
    """The (origin, (offset, index)) an internal message carries; None for one without (precreate)."""
    headers = event.headers
    if not headers:
        return None
    found = dict(headers.items() if hasattr(headers, "items") else headers)
    origin, seq = found.get(ORIGIN), found.get(SEQ)
    if origin is None or seq is None:
        return None
    offset, _, index = seq.decode().partition(".")
    return origin.decode(), (int(offset), int(index))


class KeyedStage(Generic[S]):
    """A keyed stage's states: decoded in a StateCache, written to the table at each flush.

    `apply` skips a duplicate (its stamp is not above the key's last one from that origin),
    otherwise runs the reducer step and records the stamp with the new state.
    """

    def __init__(self, table: TableT, state_type: type[S], max_entries: int) -> None:
        self._stored: type[Stored[S]] = Stored[state_type]  # type: ignore[valid-type]
        self.cache: StateCache[Stored[S]] = StateCache(table, Codec(self._stored), max_entries)
        self._batch: list[tuple[EventT, Step]] = []  # steps applied since the last flush
        self.duplicates = 0

    def apply(self, event: EventT, step: Step) -> list[Outbound]:
        """Apply `step` to the state of the event's key; returns the outputs to send."""
        key = event.key
        try:
            outputs = self._step(key, event, step)
        except Exception:
            self._rebuild(key)
            raise
        self._batch.append((event, step))
        return outputs

    def _step(self, key: bytes, event: EventT, step: Step) -> list[Outbound]:
        stored = self.cache.get(key)
        stamp = stamp_of(event)
        if stamp is not None and stored is not None and stamp[1] <= stored.seen.get(stamp[0], (-1, -1)):
            self.duplicates += 1
            return []
        state, outputs = step(stored.state if stored is not None else None, key.decode())
        if stored is None:
            stored = self._stored(state=state)
        stored.state = state
        if stamp is not None:
            stored.seen[stamp[0]] = stamp[1]
        self.cache.put(key, stored, event)
        return outputs

    def _rebuild(self, key: bytes) -> None:
        """The reducers update a state in place, so one that raised may leave it half-changed.

        The state goes back to the last snapshot (the table's, or one still to be written)
        with this batch's earlier steps of the key applied again: the reducers are pure, so
        they give the same state, and their outputs were already sent.
        """
        self.cache.discard(key)
        for event, step in [(e, s) for e, s in self._batch if e.key == key]:
            self._step(key, event, step)

    def flush(self) -> None:
        self.snapshot()()

    def snapshot(self) -> Callable[[], int]:
        """Encode the batch's changed states now; the call returned writes them to the table.

        A step that raises later rebuilds its key from this snapshot (StateCache keeps it until
        written), so the batch's steps are forgotten here."""
        entries = self.cache.snapshot()
        self._batch.clear()
        return lambda: self.cache.write(entries)

    def drop(self) -> None:
        self.cache.drop()
        self._batch.clear()

