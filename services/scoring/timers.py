"""Which opportunities of a partition have a timer due: an in-memory index over the table.

The index is derived data: the opportunity table (with its changelog) is the truth, and the
index of a partition is rebuilt from it the first time that partition is processed after
an assignment. Keeping it out of the table avoids rewriting a whole partition's timer list
to the changelog on every touch.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from datetime import datetime


class TimerIndex:
    def __init__(self) -> None:
        self._heaps: dict[int, list[tuple[datetime, str]]] = {}
        self._due: dict[str, datetime] = {}

    def knows(self, partition: int) -> bool:
        return partition in self._heaps

    def rebuild(self, partition: int, due: Iterable[tuple[str, datetime | None]]) -> None:
        heap = []
        for key, at in due:
            if at is not None:
                self._due[key] = at
                heap.append((at, key))
        heapq.heapify(heap)
        self._heaps[partition] = heap

    def schedule(self, partition: int, key: str, at: datetime | None) -> None:
        if at is None:
            self._due.pop(key, None)
            return
        if self._due.get(key) == at:
            return
        self._due[key] = at
        heapq.heappush(self._heaps.setdefault(partition, []), (at, key))

    def pop_due(self, partition: int, watermark: datetime) -> list[str]:
        """Keys whose timer the watermark has passed, earliest first (ties by key: deterministic)."""
        heap = self._heaps.get(partition, [])
        fired = []
        while heap and heap[0][0] <= watermark:
            at, key = heapq.heappop(heap)
            # Entries superseded by a later schedule() are dropped here, not searched for there.
            if self._due.get(key) == at:
                del self._due[key]
                fired.append(key)
        return fired

    def forget(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            for _, key in self._heaps.pop(partition, []):
                self._due.pop(key, None)
