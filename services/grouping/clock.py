"""The clock grouping writes into the log: watermarks, carried through its stages as ClockTick
messages in band with the data (docs/time.md).

Scoring's timers (role_gap, stalled, the decay of priority) follow the clock of each
partition of bg.opportunity.v1: the minimum over the account stage's partitions of the
watermarks they forward. Route sends its input watermarks to every partition of the persons
topic (`tick_once`); the persons and the accounts stage each forward the minimum over the
previous stage's partitions heard on one of their input partitions to every partition of the
next topic (`StageWatermarks`, `forward`), behind the outputs of what they read before it, so
no tick overtakes data still inside grouping. The ticks are the one place where a wall clock
enters the pipeline's decisions, and they enter it through the log: a replay reads the same
ticks and decides the same.

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

from services.grouping.domain.messages import Outbound
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


@dataclass
class StageWatermarks:
    """The watermarks a downstream stage (persons, accounts) forwards: per partition of its
    input, the latest watermark each upstream partition sent on it, and their minimum once
    every upstream partition has been heard from (Flink's operators take the minimum over their
    input channels the same way). In memory: a worker that (re)starts hears every upstream
    partition again within a tick interval, and downstream keeps the maximum per partition, so
    nothing goes back. No I/O."""

    _heard: dict[int, dict[int, datetime]] = field(default_factory=dict)
    _sent: dict[int, datetime] = field(default_factory=dict)

    def observe(self, partition: int, tick: ClockTick) -> datetime | None:
        """A tick of the upstream stage read on this stage's input `partition`.

        Returns the partition's new watermark (UTC) when it advanced: the minimum over the
        upstream stage's `tick.of` partitions, each at the latest watermark it sent here. None
        while one of them has not been heard from (it holds the others back, as a source that
        is behind holds a Flink watermark), when it did not advance, or for a tick that does not
        say how many partitions its stage has (written before ticks were forwarded)."""
        heard = self._heard.setdefault(partition, {})
        for upstream, at in tick.watermarks.items():
            heard[upstream] = max(at, heard.get(upstream, at))
        if tick.of is None or any(upstream not in heard for upstream in range(tick.of)):
            return None
        mark = min(heard[upstream] for upstream in range(tick.of))
        if partition in self._sent and mark <= self._sent[partition]:
            return None
        self._sent[partition] = mark
        return mark

    def forget(self, partitions: Iterable[int]) -> None:
        """Partitions revoked or (re)assigned: what was heard on them is heard again."""
        for partition in partitions:
            self._heard.pop(partition, None)
            self._sent.pop(partition, None)


def forward(stage: str, partition: int, mark: datetime, stage_partitions: int, wall: datetime,
            outputs: Iterable[int], to: str) -> list[Outbound]:
    """The ticks `stage` sends when its input `partition` reached watermark `mark`: one to each
    of the downstream topic's `outputs` partitions (destination `to`), queued after the outputs
    of every record read before the tick, so they stay behind the data. `stage_partitions`: how
    many input partitions `stage` has; `wall`: the wall clock the route tick started with."""
    tick = ClockTick(stage=stage, watermarks={partition: mark}, wall=wall, of=stage_partitions)
    return [Outbound(to=to, key=tick.key(), message=tick, partition=out) for out in outputs]


async def tick_forever(watermarks: InputWatermarks, caught_up: Callable[[int], Awaitable[bool]],
                       partitions: Callable[[], Awaitable[tuple[int, list[int]]]],
                       send: Callable[[int, ClockTick], Awaitable[None]],
                       interval: float, clock: Clock = wall_clock) -> None:
    """Every `interval` seconds, send one route ClockTick to every partition of the persons topic."""
    while True:
        await asyncio.sleep(interval)
        try:
            await tick_once(watermarks, caught_up, partitions, send, clock)
        except Exception:  # a tick missed is a tick late: the next one carries the same facts
            log.exception("clock tick not sent")


async def tick_once(watermarks: InputWatermarks, caught_up: Callable[[int], Awaitable[bool]],
                    partitions: Callable[[], Awaitable[tuple[int, list[int]]]],
                    send: Callable[[int, ClockTick], Awaitable[None]], clock: Clock = wall_clock) -> ClockTick | None:
    """Send the owned input partitions' watermarks to every output partition. `partitions()`:
    (how many partitions the input topic has, the output topic's partitions)."""
    now = clock()
    ready = {p: await caught_up(p) for p in watermarks.owned()}
    marks = watermarks.watermarks(now, ready.__getitem__)
    if not marks:
        return None
    inputs, outputs = await partitions()
    tick = ClockTick(watermarks=marks, wall=now, of=inputs)
    for partition in outputs:
        await send(partition, tick)
    return tick
