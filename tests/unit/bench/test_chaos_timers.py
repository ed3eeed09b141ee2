"""bench/chaos_timers.py and the clock it checks (docs/time.md, "Timer facts and data still in
grouping"): another account's day-30 touch written before Красная ромашка's day-12 one used to
move the clock past the stall due after day 10 (judged at day 24 instead of day 26). Scoring's
clock is now the minimum over grouping's account stage partitions, carried in band by their
ticks, so it waits for the day-12 touch; a log of the earlier model still shows the fault."""

from __future__ import annotations

from bench.chaos_timers import Record, judge
from services.scoring.config import load_config
from shared.codec import encode
from shared.schemas.opportunity import ClockTick
from tests.unit.scoring.stories import Story, day, krasnaya_romashka

CONFIG = load_config()
ROMASHKA_PARTITION, OTHER_PARTITION = 0, 1  # of grouping's account stage (two partitions here)


def log(events) -> dict[int, list[Record]]:
    return {0: [Record(offset, None, encode(e)) for offset, e in enumerate(events)]}


def story() -> tuple[Story, str, str]:
    s = Story("-judge")
    romashka = krasnaya_romashka(s)  # formed by day 10, last touch day 12 (Елена's download)
    other = s.opportunity("other.ru", "Другая")
    for d in (5, 20, 30):
        s.touch(other, "someone", "download", day(d, 1))
    return s, romashka, other


def skewed(s: Story, romashka: str) -> tuple[list, object]:
    """The log in event-time order, but for Красная ромашка's last touch (day 12), which grouping
    wrote after the other account's day-30 touch: the two came from different partitions of its
    account stage."""
    ordered = s.in_time_order()
    last_touch = max((e for e in ordered if getattr(e, "opportunity_id", None) == romashka),
                     key=lambda e: e.occurred_at)
    return [e for e in ordered if e is not last_touch], last_touch


def accounts_tick(partition: int, at) -> ClockTick:
    """A tick as the account stage writes it: the watermark of one of its partitions."""
    return ClockTick(stage="accounts", watermarks={partition: at}, wall=at, of=2)


def test_the_account_stage_watermarks_hold_the_clock_for_a_touch_still_in_grouping():
    s, romashka, other = story()
    before, last_touch = skewed(s, romashka)
    # The other account's partition has written its day-30 touch and says so; Красная ромашка's
    # has written up to day 10: the clock (their minimum) stays at day 10 until its day-12 touch.
    written = [*before, accounts_tick(OTHER_PARTITION, day(30, 1)), accounts_tick(ROMASHKA_PARTITION, day(10, 6)),
               last_touch, accounts_tick(ROMASHKA_PARTITION, day(30, 1))]
    findings = judge(log(written), CONFIG)
    assert findings and not any(f.partial for f in findings)
    [stall] = [f for f in findings if f.signal_id.startswith(f"{romashka}:stalled")]
    assert stall.due == day(12, 1) + CONFIG.timers.stall_after  # day 26, not day 24
    assert stall.moved_by.startswith("a clock tick at offset")


def test_another_opportunitys_event_moves_no_timer():
    s, romashka, _ = story()
    before, last_touch = skewed(s, romashka)
    findings = judge(log([*before, last_touch]), CONFIG)  # no tick: the clock has not moved
    assert not [f for f in findings if f.signal_id.startswith(f"{romashka}:")]


def test_in_a_log_of_the_earlier_clock_model_the_stall_is_judged_on_partial_data_and_named():
    s, romashka, other = story()
    before, last_touch = skewed(s, romashka)
    route_tick = ClockTick(watermarks={0: day(0)}, wall=day(0))  # route's watermarks, no stage
    findings = judge(log([route_tick, *before, last_touch]), CONFIG)
    first = [f for f in findings if f.signal_id.startswith(f"{romashka}:stalled")][0]
    assert first.partial and first.due == day(10, 6) + CONFIG.timers.stall_after
    assert first.moved_by.startswith(f"another opportunity's event {other}@")
    assert f"(event time {day(30, 1):%Y-%m-%d %H:%M})" in first.moved_by  # its day-30 touch
    assert first.late[0].startswith(last_touch.event_id)
