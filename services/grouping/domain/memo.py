"""Idempotence under at-least-once delivery.

After a crash faust replays input from the last committed offset, while the table changelog
may already hold the state those inputs produced. A reducer therefore remembers which inputs
it applied and, for the most recent ones, what it emitted: a replayed input re-emits exactly
the same outputs (same ids and versions) instead of being applied twice or emitting nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


@dataclass(frozen=True)
class MemoLimits:
    applied: int = 2000  # input ids remembered for dedupe
    outputs: int = 64  # most recent inputs whose outputs are kept for replay


class Memo(BaseModel, Generic[T]):
    applied: list[str] = Field(default_factory=list)  # oldest first
    outputs: dict[str, list[T]] = Field(default_factory=dict)  # insertion order = age

    def recall(self, input_id: str) -> list[T] | None:
        """None for a new input; otherwise the outputs to re-emit (empty once aged out)."""
        if input_id not in self.outputs and input_id not in self.applied:
            return None
        return list(self.outputs.get(input_id, ()))

    def remember(self, input_id: str, outputs: list[T], limits: MemoLimits) -> None:
        self.applied.append(input_id)
        if len(self.applied) > limits.applied:
            del self.applied[: len(self.applied) - limits.applied]
        if outputs:
            self.outputs[input_id] = list(outputs)
            while len(self.outputs) > limits.outputs:
                del self.outputs[next(iter(self.outputs))]
