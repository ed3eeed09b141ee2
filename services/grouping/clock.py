"""The clock grouping writes into the log: watermarks of its input, sent as ClockTick messages.

Scoring's timers (role_gap, stalled, the decay of priority) follow the clock of each
partition of bg.opportunity.v1. Event times move it while touches flow; on a quiet partition,
or a quiet system, only these ticks do (docs/time.md). They are the one place where a wall
clock enters the pipeline's decisions, and they enter it through the log: a replay reads
the same ticks and decides the same.

A watermark per input partition of bg.person-events.v1, as Flink's sources keep them: the
latest event time read from it; once the partition has been idle for `idle_after` seconds
with nothing left to read (its processed offset at the high-water mark), the wall clock
(Flink's `withIdleness`, Kafka Streams' wall-clock punctuation). A backfill on a partition
therefore holds its watermark at the history it is reading, and ticks never push scoring's
clock past data still to come from it.

A pause is not the end of a backfill: ingest restarting, a broker restart, a client waiting
out a Retry-After leave the partition quiet with nothing left to read. A partition reading
history (its latest event time more than `history_after` behind the wall clock) follows the
wall clock only after `history_idle_after` of quiet; a live one, or one not read since its
assignment (quiet since then), after `idle_after`. A worker that restarts while a backfill
pauses cannot tell the history from a quiet live partition (its state is in memory): there a
pause still ends the history's clock after `idle_after` (docs/time.md). With a single
threshold, a replay or import paused for `idle_after` (30 s: a broker restart takes longer)
jumped the clock to the present, and every timer of the history still to come was judged on
arrival instead of in the history's order. This does not help a backfill into a system whose
clock is already at the present: that history is late data from its first event (docs/time.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from shared.schemas.opportunity import ClockTick

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def wall_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Input:
    latest: datetime | None = None  # latest event time read
    next_offset: int | None = None  # offset after the last record processed
    read_at: datetime | None = None  # wall time of the last record processed
    emitted: datetime | None = None  # the last watermark sent (watermarks never go back)
    assigned_at: datetime | None = None  # wall time of the assignment (quiet since, before any read)


@dataclass
class InputWatermarks:
    """Watermarks of the input partitions this worker owns (no I/O; the clock is passed in)."""

    idle_after: timedelta = timedelta(seconds=30)
    history_idle_after: timedelta = timedelta(minutes=5)
    history_after: timedelta = timedelta(hours=1)
    _inputs: dict[int, _Input] = field(default_factory=dict)

    def assigned(self, partitions: Iterable[int], now: datetime | None = None) -> None:
        """Partitions this worker now owns; `now` (the wall clock) starts their quiet time."""
        for partition in partitions:
            self._inputs.setdefault(partition, _Input(assigned_at=now))

    def revoked(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            self._inputs.pop(partition, None)

    def read(self, partition: int, offset: int, occurred_at: datetime | None, now: datetime) -> None:
        """A record of `partition` was processed (dead-lettered ones too: they were read)."""
        state = self._inputs.setdefault(partition, _Input())
        state.next_offset = offset + 1
        state.read_at = now
        if occurred_at is not None:
            # Ingest clamps event times to its own clock; the watermark never runs ahead of ours.
            at = min(occurred_at, now)
            state.latest = at if state.latest is None else max(state.latest, at)

    def owned(self) -> list[int]:
        return sorted(self._inputs)

    def next_offset(self, partition: int) -> int | None:
        state = self._inputs.get(partition)
        return state.next_offset if state else None

    def watermarks(self, now: datetime, caught_up: Callable[[int], bool]) -> dict[int, datetime]:
        """Each owned partition's watermark; a partition with no event time yet and still
        data to read has none (it holds nothing back: scoring keeps the last it had).

        A caught-up partition quiet (since its last read, else its assignment) for `idle_after`,
        or for `history_idle_after` when its latest event time is more than `history_after`
        behind `now` (history), is at the wall clock `now`."""
        out = {}
        for partition, state in self._inputs.items():
            history = state.latest is not None and now - state.latest > self.history_after
            quiet_for = max(self.idle_after, self.history_idle_after) if history else self.idle_after
            quiet_since = state.read_at or state.assigned_at
            idle = quiet_since is None or now - quiet_since >= quiet_for
            mark = now if idle and caught_up(partition) else state.latest
            if mark is None:
                continue
            if state.emitted is not None:
                mark = max(mark, state.emitted)
            state.emitted = mark
            out[partition] = mark
        return out


async def tick_forever(watermarks: InputWatermarks, caught_up: Callable[[int], Awaitable[bool]],
                       partitions: Callable[[], Awaitable[list[int]]],
                       send: Callable[[int, ClockTick], Awaitable[None]],
                       interval: float, clock: Clock = wall_clock) -> None:
    """Every `interval` seconds, send one ClockTick to every output partition."""
    while True:
        await asyncio.sleep(interval)
        try:
            await tick_once(watermarks, caught_up, partitions, send, clock)
        except Exception:  # a tick missed is a tick late: the next one carries the same facts
            log.exception("clock tick not sent")


async def tick_once(watermarks: InputWatermarks, caught_up: Callable[[int], Awaitable[bool]],
                    partitions: Callable[[], Awaitable[list[int]]],
                    send: Callable[[int, ClockTick], Awaitable[None]], clock: Clock = wall_clock) -> ClockTick | None:
    now = clock()
    ready = {p: await caught_up(p) for p in watermarks.owned()}
    marks = watermarks.watermarks(now, ready.__getitem__)
    if not marks:
        return None
    tick = ClockTick(watermarks=marks, wall=now)
    for partition in await partitions():
        await send(partition, tick)
    return tick
