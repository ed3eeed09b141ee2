"""Grouping's input watermarks, the clock it writes into the log (services/grouping/clock.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.grouping.clock import InputWatermarks, StageWatermarks, forward, tick_once
from shared.schemas.opportunity import ClockTick

pytestmark = pytest.mark.unit
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
IDLE = timedelta(seconds=30)


def marks(w: InputWatermarks, now: datetime, caught_up: set[int]) -> dict[int, datetime]:
    return w.watermarks(now, lambda p: p in caught_up)


def test_an_active_partition_is_at_its_latest_event_time_and_an_idle_caught_up_one_at_the_wall_clock() -> None:
    w = InputWatermarks(idle_after=IDLE)
    w.assigned([0, 1])
    w.read(0, 10, NOW - timedelta(days=90), NOW)  # a backfill: history
    assert marks(w, NOW + timedelta(seconds=5), {0, 1}) == {0: NOW - timedelta(days=90), 1: NOW + timedelta(seconds=5)}


def test_an_idle_partition_with_data_left_to_read_holds_its_watermark() -> None:
    w = InputWatermarks(idle_after=IDLE)
    w.assigned([0])
    w.read(0, 10, NOW - timedelta(days=3), NOW)
    later = NOW + timedelta(minutes=5)
    assert marks(w, later, set()) == {0: NOW - timedelta(days=3)}  # not caught up: no jump to now
    assert marks(w, later, {0}) == {0: later}


def test_a_partition_never_read_and_not_caught_up_holds_nothing_back() -> None:
    w = InputWatermarks(idle_after=IDLE)
    w.assigned([0, 1])
    w.read(0, 1, NOW, NOW)
    assert marks(w, NOW + timedelta(seconds=1), set()) == {0: NOW}


def test_an_event_time_ahead_of_the_wall_clock_never_moves_the_watermark_past_it() -> None:
    """Issue 11: a client clock a year ahead must not push any clock past the present."""
    w = InputWatermarks(idle_after=IDLE)
    w.read(0, 1, NOW + timedelta(days=365), NOW)
    assert marks(w, NOW + timedelta(seconds=1), set()) == {0: NOW}


def test_watermarks_never_go_back() -> None:
    w = InputWatermarks(idle_after=IDLE)
    w.assigned([0])
    assert marks(w, NOW, {0}) == {0: NOW}  # idle: the wall clock
    w.read(0, 1, NOW - timedelta(days=1), NOW + timedelta(seconds=1))  # then an old event arrives
    assert marks(w, NOW + timedelta(seconds=2), set()) == {0: NOW}


def test_a_revoked_partition_is_no_longer_ticked() -> None:
    w = InputWatermarks(idle_after=IDLE)
    w.assigned([0, 1])
    w.revoked([1])
    assert set(marks(w, NOW, {0, 1})) == {0}


async def test_one_tick_goes_to_every_persons_partition_with_the_wall_clock_and_the_input_count() -> None:
    w = InputWatermarks(idle_after=IDLE)
    w.assigned([0, 1])
    sent: list[tuple[int, ClockTick]] = []

    async def caught_up(partition: int) -> bool:
        return True

    async def partitions() -> tuple[int, list[int]]:
        return 2, [0, 1, 2, 3]

    async def send(partition: int, tick: ClockTick) -> None:
        sent.append((partition, tick))

    tick = await tick_once(w, caught_up, partitions, send, clock=lambda: NOW)
    assert tick == ClockTick(watermarks={0: NOW, 1: NOW}, wall=NOW, of=2)
    assert [p for p, _ in sent] == [0, 1, 2, 3] and all(t == tick for _, t in sent)


def test_a_paused_backfill_keeps_its_history_clock_until_the_history_idle_time() -> None:
    # A replay or an import of history paused by a fault (ingest restarting, a broker restart)
    # longer than the live idle time used to jump the clock to the present mid-history.
    w = InputWatermarks(idle_after=timedelta(seconds=3), history_idle_after=timedelta(seconds=60))
    w.assigned([0], NOW - timedelta(minutes=1))
    history = NOW - timedelta(days=57)
    w.read(0, 10, history, NOW)
    assert marks(w, NOW + timedelta(seconds=30), {0}) == {0: history}  # a pause: the history's clock
    assert marks(w, NOW + timedelta(seconds=60), {0}) == {0: NOW + timedelta(seconds=60)}  # its end


def test_a_live_partition_follows_the_wall_clock_after_the_short_idle_time() -> None:
    w = InputWatermarks(idle_after=timedelta(seconds=3), history_idle_after=timedelta(seconds=60))
    w.assigned([0], NOW - timedelta(minutes=1))
    w.read(0, 10, NOW - timedelta(minutes=20), NOW)  # live: within the hour
    assert marks(w, NOW + timedelta(seconds=3), {0}) == {0: NOW + timedelta(seconds=3)}


def test_a_partition_not_read_since_its_assignment_is_quiet_since_then() -> None:
    # Nothing is known of its history (a restarted worker): it counts as live, from the assignment.
    w = InputWatermarks(idle_after=timedelta(seconds=3), history_idle_after=timedelta(seconds=60))
    w.assigned([0], NOW)
    assert marks(w, NOW + timedelta(seconds=2), {0}) == {}  # holds nothing back, moves nothing
    assert marks(w, NOW + timedelta(seconds=3), {0}) == {0: NOW + timedelta(seconds=3)}


# The stages after route forward the minimum over their upstream partitions (Flink's operators).

def route_tick(marks: dict[int, datetime], of: int = 2) -> ClockTick:
    return ClockTick(watermarks=marks, wall=NOW, of=of)


def test_a_stage_forwards_nothing_until_it_has_heard_every_upstream_partition() -> None:
    s = StageWatermarks()
    assert s.observe(0, route_tick({0: NOW})) is None  # upstream partition 1 may still hold data
    assert s.observe(0, route_tick({1: NOW - timedelta(days=3)})) == NOW - timedelta(days=3)


def test_a_stage_forwards_the_minimum_and_only_when_it_advances() -> None:
    s = StageWatermarks()
    assert s.observe(2, route_tick({0: day(10), 1: day(30)})) == day(10)
    assert s.observe(2, route_tick({1: day(31)})) is None  # the slowest partition did not move
    assert s.observe(2, route_tick({0: day(5)})) is None  # an older watermark never goes back
    assert s.observe(2, route_tick({0: day(12)})) == day(12)


def test_each_input_partition_keeps_its_own_upstream_watermarks() -> None:
    # Partition 0 hears route partition 1 late: its data is still on its way there.
    s = StageWatermarks()
    s.observe(0, route_tick({0: day(30), 1: day(10)}))
    assert s.observe(1, route_tick({0: day(30), 1: day(30)})) == day(30)
    assert s.observe(0, route_tick({0: day(30)})) is None


def test_a_tick_that_does_not_say_how_many_partitions_its_stage_has_moves_nothing() -> None:
    assert StageWatermarks().observe(0, ClockTick(watermarks={0: NOW}, wall=NOW)) is None


def test_a_forgotten_partition_starts_over() -> None:
    s = StageWatermarks()
    s.observe(0, route_tick({0: day(30), 1: day(30)}))
    s.forget([0])
    assert s.observe(0, route_tick({0: day(31)})) is None
    assert s.observe(0, route_tick({1: day(31)})) == day(31)


def test_a_forwarded_tick_goes_to_every_downstream_partition_with_its_stage_and_partition_count() -> None:
    out = forward("accounts", 3, day(12), 4, NOW, [0, 1, 2, 3], "opportunities")
    assert [(o.to, o.partition, o.key) for o in out] == [("opportunities", p, "#clock") for p in range(4)]
    assert all(o.message == ClockTick(stage="accounts", watermarks={3: day(12)}, wall=NOW, of=4) for o in out)


def day(n: int) -> datetime:
    return datetime(2025, 9, 1, tzinfo=UTC) + timedelta(days=n)
