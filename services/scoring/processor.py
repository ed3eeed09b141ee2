"""One input message in, scores and signals out: the orchestration the agent runs per message.

Storage is any mutable mapping (the faust table in the worker, a dict in tests), so this is
the same code in both; it does no I/O of its own. A message is identified by its input
partition and offset: a redelivery comes back with both, after an assignment (a restart or
a rebalance, when the worker calls forget()), and gets what it emitted the first time
(services.scoring.redelivery).
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping

from services.scoring.config import ScoringConfig
from services.scoring.domain.signals import Step, advance, current_score, next_due, step
from services.scoring.domain.state import OpportunityState, PartitionClock
from services.scoring.redelivery import ResendIndex, kept_at, remember
from services.scoring.timers import TimerIndex
from shared.schemas.opportunity import AccountTouch, OpportunityEvent
from shared.schemas.scoring import OpportunityScore, Signal

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

    def process(self, partition: int, offset: int, message: OpportunityEvent) -> list[OpportunityScore | Signal]:
        self._index(partition, offset)
        clock, watermark = self._clock(partition).observe(message.occurred_at, self.config.timers.allowed_lateness)
        outputs: list[OpportunityScore | Signal] = []
        resent = None
        if not isinstance(message, AccountTouch) and message.opportunity_id is not None:
            result = step(self._load(message.opportunity_id), message, watermark, partition, self.config)
            if result.changed:
                result.state.applied_offset = offset
                self._save(result, offset)
                outputs += [*result.scores, *result.signals]
            elif offset <= result.state.applied_offset:
                # A redelivery (a duplicate further on in the log is not one: its first copy
                # was handled and sent). The current score supersedes any it emitted.
                outputs.append(current_score(result.state, self.config))
                outputs += kept_at(result.state, offset)
                resent = message.opportunity_id
        # Any event on the partition moves its watermark, and with it the other opportunities' timers.
        for key in self.timers.pop_due(partition, watermark):
            state = self._load(key)
            if state is not None:
                result = advance(state, watermark, message.event_id, self.config)
                self._save(result, offset)
                outputs += result.signals
        for at, key in self.resends.pop(partition, offset):
            if (at, key) != (offset, resent):
                outputs += kept_at(self._load(key), at)
        # Written last: faust writes a message's table changes to one changelog partition in
        # order, so a crash keeps a prefix of them and the clock of a message survives only
        # with every opportunity it moved; its redelivery then finds the watermark it had.
        self.table[CLOCK_PREFIX + str(partition).encode()] = clock.model_dump_json().encode()
        return outputs

    def forget(self, partitions: Iterable[int]) -> None:
        """Drop what is derived from the table for these partitions; rebuilt at their next message."""
        partitions = list(partitions)
        self.timers.forget(partitions)
        self.resends.forget(partitions)

    def _load(self, key: str) -> OpportunityState | None:
        raw = self.table.get(key.encode())
        return OpportunityState.model_validate_json(raw) if raw is not None else None

    def _save(self, result: Step, offset: int) -> None:
        state = result.state
        remember(state, offset, result.signals)
        self.table[state.opportunity_id.encode()] = state.model_dump_json().encode()
        self.timers.schedule(state.partition, state.opportunity_id, next_due(state, self.config))

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
        raw = self.table.get(CLOCK_PREFIX + str(partition).encode())
        return PartitionClock.model_validate_json(raw) if raw is not None else PartitionClock()
