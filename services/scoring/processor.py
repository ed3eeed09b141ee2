"""One input message in, scores and signals out: the orchestration the agent runs per message.

Storage is any mutable mapping (the faust table in the worker, a dict in tests), so this is
the same code in both; it does no I/O of its own and reads no clock of its own: time comes
from the messages (event times, record timestamps, clock ticks; docs/time.md).

States and partition clocks are kept decoded between messages and written to the storage by
flush(partition), once per batch. The worker sends a batch's outputs and waits for Kafka to
acknowledge them before it flushes, and flushes before the batch's offsets are committed
(docs/exactly-once.md): a crash then loses no output, and a redelivered message, processed
again from the same stored state, emits the same outputs under the same ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, MutableMapping
from datetime import datetime

from services.scoring.config import ScoringConfig
from services.scoring.domain.signals import Step, advance, next_due, step
from services.scoring.domain.state import OpportunityState, PartitionClock
from services.scoring.timers import TimerIndex
from shared.codec import Codec, encode
from shared.schemas.opportunity import AccountTouch, ClockTick, OpportunityLogMessage
from shared.schemas.scoring import OpportunityScore, Signal
from shared.streaming import StateCache
from shared.table_store import state_cache_entries

# Partition clocks share the opportunities' table under keys no opportunity id takes (those
# start with an account id: a domain, or "name:...").
CLOCK_PREFIX = b"#clock:"


class Processor:
    def __init__(self, config: ScoringConfig, table: MutableMapping[bytes, bytes],
                 timers: TimerIndex | None = None) -> None:
        self.config = config
        self.table = table
        self.timers = timers or TimerIndex()
        # One cache per input partition: faust writes a table entry to the changelog partition
        # of the event current at the write, so the worker flushes each partition's states
        # under one of that partition's events (services.scoring.main).
        self._states: dict[int, StateCache[OpportunityState]] = {}
        self._clocks: dict[int, PartitionClock] = {}
        self._moved: set[int] = set()  # partitions whose clock is not written yet

    def process(self, partition: int, message: OpportunityLogMessage,
                wall: datetime | None = None) -> list[OpportunityScore | Signal]:
        """Apply one message of `partition`; `wall` is its record timestamp (the writer's clock)."""
        self._index(partition)
        clock = self._clock(partition)
        if isinstance(message, ClockTick):
            clock = clock.observe_tick(message)
        else:
            clock = clock.observe_event(message.occurred_at, wall)
        now = clock.now()
        outputs: list[OpportunityScore | Signal] = []
        if not isinstance(message, AccountTouch | ClockTick) and message.opportunity_id is not None:
            # The opportunity's own event moves its own time, never the other opportunities'.
            result = step(self._load(partition, message.opportunity_id), message,
                          clock.at_event(message.occurred_at, wall), clock.wall, partition, self.config)
            if result.changed:
                self._save(partition, result)
                outputs += result.outputs
        # A tick (or, in a log written before the account stage forwarded them, any message)
        # moves the partition's clock, and with it the other opportunities' timers.
        for key in self.timers.pop_due(partition, now) if now is not None else ():
            state = self._load(partition, key)
            if state is not None:
                result = advance(state, now, clock.wall, self.config)
                self._save(partition, result)
                outputs += result.outputs
        self._clocks[partition] = clock
        self._moved.add(partition)
        return outputs

    def flush(self, partition: int) -> None:
        """Write the partition's changed states, then its clock, to the storage."""
        self.snapshot(partition)()

    def snapshot(self, partition: int) -> Callable[[], None]:
        """Encode the partition's changed states and its clock now; the call returned writes
        them to the storage (the worker calls it once the batch's outputs are acknowledged,
        while it already processes the next batch; until then the caches serve them).

        The clock last: faust writes a partition's table changes to one changelog partition
        in order, so a crash keeps a prefix of them and the clock survives only with every
        opportunity its batch moved."""
        cache = self._states.get(partition)
        states = cache.snapshot() if cache is not None else []
        clock = None
        if partition in self._moved:
            self._moved.discard(partition)
            clock = encode(self._clocks[partition])

        def write() -> None:
            if cache is not None:
                cache.write(states)
            if clock is not None:
                self.table[_clock_key(partition)] = clock

        return write

    def forget(self, partitions: Iterable[int]) -> None:
        """Drop what is derived from the table for these partitions; rebuilt at their next message.

        Unflushed changes are dropped too, as a crash would drop them: their messages were not
        acknowledged, so they come again (the worker flushes every batch before its ack, and
        faust waits for that before it reassigns partitions)."""
        partitions = list(partitions)
        self.timers.forget(partitions)
        for partition in partitions:
            self._states.pop(partition, None)
            self._clocks.pop(partition, None)
            self._moved.discard(partition)

    def _load(self, partition: int, key: str) -> OpportunityState | None:
        return self._cache(partition).get(key.encode())

    def _save(self, partition: int, result: Step) -> None:
        state = result.state
        self._cache(partition).put(state.opportunity_id.encode(), state)
        self.timers.schedule(state.partition, state.opportunity_id, next_due(state, self.config))

    def _cache(self, partition: int) -> StateCache[OpportunityState]:
        cache = self._states.get(partition)
        if cache is None:
            cache = self._states[partition] = StateCache(self.table, _STATE, state_cache_entries())
        return cache

    def _index(self, partition: int) -> None:
        if self.timers.knows(partition):
            return
        due = []
        for key, raw in self.table.items():
            if key.startswith(CLOCK_PREFIX):
                continue
            state = OpportunityState.model_validate_json(raw)
            if state.partition == partition:
                due.append((state.opportunity_id, next_due(state, self.config)))
        self.timers.rebuild(partition, due)

    def _clock(self, partition: int) -> PartitionClock:
        clock = self._clocks.get(partition)
        if clock is None:
            raw = self.table.get(_clock_key(partition))
            clock = PartitionClock.model_validate_json(raw) if raw is not None else PartitionClock()
        return clock


_STATE: Codec[OpportunityState] = Codec(OpportunityState)


def _clock_key(partition: int) -> bytes:
    return CLOCK_PREFIX + str(partition).encode()
