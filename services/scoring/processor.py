"""One input message in, scores and signals out: the orchestration the agent runs per message.

Storage is any mutable mapping (the faust table in the worker, a dict in tests), so this is
the same code in both; it does no I/O of its own. A message is identified by its input
partition and offset: a redelivery comes back with both, after an assignment (a restart or
a rebalance, when the worker calls forget()), and gets what it emitted the first time
(services.scoring.redelivery).

States and partition clocks are kept decoded between messages and written to the storage by
flush(partition), once per batch: the caller flushes before it acknowledges the batch's
messages, so the storage holds at least what the committed offsets say was processed.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping

from services.scoring.config import ScoringConfig
from services.scoring.domain.signals import Step, advance, current_score, next_due, step
from services.scoring.domain.state import OpportunityState, PartitionClock
from services.scoring.redelivery import ResendIndex, kept_at, remember
from services.scoring.timers import TimerIndex
from shared.codec import Codec, encode
from shared.schemas.opportunity import AccountTouch, OpportunityEvent
from shared.schemas.scoring import OpportunityScore, Signal
from shared.streaming import StateCache

# Partition clocks share the opportunities' table under keys no opportunity id takes (those
# start with an account id: a domain, or "name:...").
CLOCK_PREFIX = b"#clock:"


class Processor:
    def __init__(self, config: ScoringConfig, table: MutableMapping[bytes, bytes],
                 timers: TimerIndex | None = None) -> None:
        self.config = config
        self.table = table
        self.timers = timers or TimerIndex()
        self.resends = ResendIndex()
        # One cache per input partition: faust writes a table entry to the changelog partition
        # of the event current at the write, so the worker flushes each partition's states
        # under one of that partition's events (services.scoring.main).
        self._states: dict[int, StateCache[OpportunityState]] = {}
        self._clocks: dict[int, PartitionClock] = {}
        self._moved: set[int] = set()  # partitions whose clock is not written yet

    def process(self, partition: int, offset: int, message: OpportunityEvent) -> list[OpportunityScore | Signal]:
        self._index(partition, offset)
        clock, watermark = self._clock(partition).observe(message.occurred_at, self.config.timers.allowed_lateness)
        outputs: list[OpportunityScore | Signal] = []
        resent = None
        if not isinstance(message, AccountTouch) and message.opportunity_id is not None:
            result = step(self._load(partition, message.opportunity_id), message, watermark, partition, self.config)
            if result.changed:
                result.state.applied_offset = offset
                self._save(partition, result, offset)
                outputs += [*result.scores, *result.signals]
            elif offset <= result.state.applied_offset:
                # A redelivery (a duplicate further on in the log is not one: its first copy
                # was handled and sent). The current score supersedes any it emitted.
                outputs.append(current_score(result.state, self.config))
                outputs += kept_at(result.state, offset)
                resent = message.opportunity_id
        # Any event on the partition moves its watermark, and with it the other opportunities' timers.
        for key in self.timers.pop_due(partition, watermark):
            state = self._load(partition, key)
            if state is not None:
                result = advance(state, watermark, self.config)
                self._save(partition, result, offset)
                outputs += result.signals
        for at, key in self.resends.pop(partition, offset):
            if (at, key) != (offset, resent):
                outputs += kept_at(self._load(partition, key), at)
        self._clocks[partition] = clock
        self._moved.add(partition)
        return outputs

    def flush(self, partition: int) -> None:
        """Write the partition's changed states, then its clock, to the storage.

        The clock last: faust writes a partition's table changes to one changelog partition
        in order, so a crash keeps a prefix of them and the clock survives only with every
        opportunity its batch moved."""
        cache = self._states.get(partition)
        if cache is not None:
            cache.flush()
        if partition in self._moved:
            self._moved.discard(partition)
            self.table[_clock_key(partition)] = encode(self._clocks[partition])

    def forget(self, partitions: Iterable[int]) -> None:
        """Drop what is derived from the table for these partitions; rebuilt at their next message.

        Unflushed changes are dropped too, as a crash would drop them: their messages were not
        acknowledged, so they come again (the worker flushes every batch before its ack, and
        faust waits for that before it reassigns partitions)."""
        partitions = list(partitions)
        self.timers.forget(partitions)
        self.resends.forget(partitions)
        for partition in partitions:
            self._states.pop(partition, None)
            self._clocks.pop(partition, None)
            self._moved.discard(partition)

    def _load(self, partition: int, key: str) -> OpportunityState | None:
        return self._cache(partition).get(key.encode())

    def _save(self, partition: int, result: Step, offset: int) -> None:
        state = result.state
        remember(state, offset, result.signals)
        self._cache(partition).put(state.opportunity_id.encode(), state)
        self.timers.schedule(state.partition, state.opportunity_id, next_due(state, self.config))

    def _cache(self, partition: int) -> StateCache[OpportunityState]:
        cache = self._states.get(partition)
        if cache is None:
            cache = self._states[partition] = StateCache(self.table, _STATE)
        return cache

    def _index(self, partition: int, offset: int) -> None:
        if self.timers.knows(partition):
            return
        due, kept = [], []
        for key, raw in self.table.items():
            if key.startswith(CLOCK_PREFIX):
                continue
            state = OpportunityState.model_validate_json(raw)
            if state.partition == partition:
                due.append((state.opportunity_id, next_due(state, self.config)))
                kept += [(e.offset, state.opportunity_id) for e in state.emitted if e.offset >= offset]
        self.timers.rebuild(partition, due)
        self.resends.rebuild(partition, kept)

    def _clock(self, partition: int) -> PartitionClock:
        clock = self._clocks.get(partition)
        if clock is None:
            raw = self.table.get(_clock_key(partition))
            clock = PartitionClock.model_validate_json(raw) if raw is not None else PartitionClock()
        return clock


_STATE: Codec[OpportunityState] = Codec(OpportunityState)


def _clock_key(partition: int) -> bytes:
    return CLOCK_PREFIX + str(partition).encode()
