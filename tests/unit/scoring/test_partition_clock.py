"""Scoring's partition clock (services/scoring/domain/state.py, docs/time.md): the minimum over
grouping's account stage partitions of the watermarks they write into the log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.scoring.domain.state import PartitionClock
from shared.codec import Codec, encode
from shared.schemas.opportunity import ClockTick

pytestmark = pytest.mark.unit
T0 = datetime(2026, 10, 1, tzinfo=UTC)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def accounts(partition: int, at: datetime, of: int = 2) -> ClockTick:
    return ClockTick(stage="accounts", watermarks={partition: at}, wall=at, of=of)


def test_no_reading_until_every_account_stage_partition_has_been_heard() -> None:
    clock = PartitionClock().observe_tick(accounts(0, day(30)))
    assert clock.now() is None  # partition 1 may still be writing older events
    assert clock.observe_tick(accounts(1, day(12))).now() == day(12)


def test_the_clock_is_the_slowest_partition_and_never_goes_back() -> None:
    clock = PartitionClock()
    for tick in (accounts(0, day(30)), accounts(1, day(12)), accounts(1, day(20)), accounts(1, day(15))):
        clock = clock.observe_tick(tick)
    assert clock.now() == day(20)


def test_another_opportunitys_event_moves_no_clock_its_own_moves_its_own_time() -> None:
    clock = PartitionClock().observe_tick(accounts(0, day(10))).observe_tick(accounts(1, day(10)))
    clock = clock.observe_event(day(30), day(30))
    assert clock.now() == day(10)
    assert clock.at_event(day(30), day(30)) == day(30)  # the event's own opportunity
    assert clock.at_event(day(5), day(30)) == day(10)  # a late event sees the clock


def test_an_own_event_far_ahead_of_its_record_counts_only_the_tolerated_skew() -> None:
    assert PartitionClock().at_event(day(400), day(1)) == day(1) + timedelta(minutes=5)


def test_a_log_of_route_ticks_keeps_the_earlier_rule_until_an_account_stage_tick() -> None:
    route = ClockTick(watermarks={0: day(3), 1: day(4)}, wall=day(4))
    clock = PartitionClock().observe_event(day(8), None)
    assert clock.now() is None  # no tick at all: no clock
    clock = clock.observe_tick(route)
    assert clock.now() == day(8)  # the latest event time, ahead of the slowest input partition
    clock = clock.observe_tick(accounts(0, day(9), of=1))
    assert clock.now() == day(9)


def test_a_stored_clock_of_the_earlier_model_decodes() -> None:
    stored = b'{"max_event_time": "2026-10-09T00:00:00Z", "watermarks": {"0": "2026-10-04T00:00:00Z"}}'
    codec = Codec(PartitionClock)
    clock = codec.decode(stored)
    assert clock.now() == day(8) and clock.stage == {} and clock.stage_of is None
    assert codec.decode(encode(clock)) == clock
