"""bench/chaos_timers.py: a timer fact judged before the data that decides it is named as such,
with what moved the clock; the same facts over the log in event-time order are not."""

from __future__ import annotations

from bench.chaos_timers import Record, judge
from services.scoring.config import load_config
from shared.codec import encode
from tests.unit.scoring.stories import Story, day, krasnaya_romashka

CONFIG = load_config()


def log(events) -> dict[int, list[Record]]:
    return {0: [Record(offset, None, encode(e)) for offset, e in enumerate(events)]}


def story() -> tuple[Story, str, str]:
    s = Story("-judge")
    romashka = krasnaya_romashka(s)  # formed by day 10, last touch day 12 (Елена's download)
    other = s.opportunity("other.ru", "Другая")
    for d in (5, 20, 30):
        s.touch(other, "someone", "download", day(d, 1))
    return s, romashka, other


def test_a_stall_judged_before_the_groups_last_touch_arrived_is_partial():
    s, romashka, other = story()
    ordered = s.in_time_order()
    last_touch = max((e for e in ordered if getattr(e, "opportunity_id", None) == romashka),
                     key=lambda e: e.occurred_at)
    # Grouping wrote the other account's day-30 touch before Красная ромашка's day-12 one (the
    # two came from different partitions of its account stage): the clock passed day 24, the
    # stall due after the day-10 touches, with the day-12 touch still on its way.
    skewed = [e for e in ordered if e is not last_touch] + [last_touch]
    findings = judge(log(skewed), CONFIG)
    stalls = [f for f in findings if f.signal_id.startswith(f"{romashka}:stalled")]
    first = stalls[0]
    assert first.partial and first.due == day(10, 6) + CONFIG.timers.stall_after
    assert first.moved_by.startswith(f"another opportunity's event {other}@")
    assert f"(event time {day(30, 1):%Y-%m-%d %H:%M})" in first.moved_by  # its day-30 touch
    assert first.late[0].startswith(last_touch.event_id)


def test_in_event_time_order_no_fact_is_judged_on_partial_data():
    s, romashka, _ = story()
    findings = judge(log(s.in_time_order()), CONFIG)
    assert findings and not any(f.partial for f in findings)
    # The stall falls due after the real last touch (day 12 + 14 days).
    [stall] = [f for f in findings if f.signal_id.startswith(f"{romashka}:stalled")]
    assert stall.due == day(12, 1) + CONFIG.timers.stall_after
