"""One input message in, scores and signals out: the orchestration the agent runs per message.

Storage is any mutable mapping (the faust tables in the worker, dicts in tests), so this is
the same code in both; it does no I/O of its own.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from datetime import datetime

from services.scoring.config import ScoringConfig
from services.scoring.domain.signals import Step, advance, next_due, step
from services.scoring.domain.state import OpportunityState, PartitionClock
from services.scoring.timers import TimerIndex
from shared.schemas.opportunity import AccountTouch, OpportunityEvent
from shared.schemas.scoring import OpportunityScore, Signal


class Processor:
    def __init__(self, config: ScoringConfig, opportunities: MutableMapping[bytes, bytes],
                 clocks: MutableMapping[bytes, bytes], timers: TimerIndex | None = None) -> None:
        self.config = config
        self.opportunities = opportunities
        self.clocks = clocks
        self.timers = timers or TimerIndex()

    def process(self, partition: int, message: OpportunityEvent) -> list[OpportunityScore | Signal]:
        self._index(partition)
        watermark = self._watermark(partition, message.occurred_at)
        outputs: list[OpportunityScore | Signal] = []
        if not isinstance(message, AccountTouch) and message.opportunity_id is not None:
            result = step(self._load(message.opportunity_id), message, watermark, partition, self.config)
            if result.changed:
                self._save(result.state)
            outputs += self._outputs(result)
        # Any event on the partition moves its watermark, and with it the other opportunities' timers.
        for key in self.timers.pop_due(partition, watermark):
            state = self._load(key)
            if state is not None:
                result = advance(state, watermark, message.event_id, self.config)
                self._save(result.state)
                outputs += self._outputs(result)
        return outputs

    @staticmethod
    def _outputs(result: Step) -> list[OpportunityScore | Signal]:
        return [*result.scores, *result.signals]

    def _load(self, key: str) -> OpportunityState | None:
        raw = self.opportunities.get(key.encode())
        return OpportunityState.model_validate_json(raw) if raw is not None else None

    def _save(self, state: OpportunityState) -> None:
        self.opportunities[state.opportunity_id.encode()] = state.model_dump_json().encode()
        self.timers.schedule(state.partition, state.opportunity_id, next_due(state, self.config))

    def _index(self, partition: int) -> None:
        if self.timers.knows(partition):
            return
        due = []
        for raw in self.opportunities.values():
            state = OpportunityState.model_validate_json(raw)
            if state.partition == partition:
                due.append((state.opportunity_id, next_due(state, self.config)))
        self.timers.rebuild(partition, due)

    def _watermark(self, partition: int, occurred_at: datetime) -> datetime:
        key = f"p{partition}".encode()
        raw = self.clocks.get(key)
        clock = PartitionClock.model_validate_json(raw) if raw is not None else PartitionClock()
        clock, watermark = clock.observe(occurred_at, self.config.timers.allowed_lateness)
        self.clocks[key] = clock.model_dump_json().encode()
        return watermark
