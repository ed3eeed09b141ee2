"""Daily rescores held while the clock replays history (signals._hold_rescores, docs/time.md).

The 1M-event soak (docs/benchmarks.md) replayed 80 days of history: every open opportunity was
rescored once per day of it, and at half way those rescores (and the RocksDB reads of the states
they woke up) were the growing part of scoring's CPU. Held, the same log gives the same facts
under the same ids and the same record once the clock has passed the grid; only the
superseded daily scores in between are not sent."""

from __future__ import annotations

import pytest

from services.scoring.config import load_config
from tests.unit.scoring.stories import Story, day, final_records, krasnaya_romashka, replay, signals_of

pytestmark = pytest.mark.unit

CONFIG = load_config()
TIMERS = CONFIG.timers


def facts(outputs: list, opp: str) -> list[tuple[str, object]]:
    return [(s.signal_id, s.occurred_at) for s in signals_of(outputs, opp)]


def idle_scores(outputs: list, opp: str) -> list:
    """The scores sent after the group's last touch (day 12, 01:00): time alone moved them."""
    return [o for o in outputs if o.type == "score" and o.opportunity_id == opp and o.as_of > day(12, 1)]


def story(wall_of) -> tuple[Story, str]:
    """Красная ромашка, then a tick a day to day 105 (past the grid's last moment, day 102),
    each tick written at wall_of(its day)."""
    s = Story()
    opp = krasnaya_romashka(s)
    for d in range(13, 106):
        s.tick(day(d), wall=wall_of(d))
    return s, opp


def test_a_backfill_sends_the_same_facts_and_record_with_a_fraction_of_the_rescores() -> None:
    live_story, opp = story(lambda d: day(d))            # the clock is the present: live
    history_story, _ = story(lambda d: day(400))          # the same days replayed a year later
    live = replay(live_story.in_time_order(), CONFIG)
    history = replay(history_story.in_time_order(), CONFIG, wall=day(400))

    assert facts(history, opp) == facts(live, opp)
    assert any(sid.startswith(f"{opp}:priority_changed") for sid, _ in facts(live, opp))  # it does fall
    assert final_records(history) == final_records(live)
    # Live: a score every day of the grid. History: the stall, each tier fall, the grid's end.
    assert len(idle_scores(live, opp)) == 90
    held = idle_scores(history, opp)
    assert len(held) <= 6
    assert held[-1].as_of == day(12, 1) + TIMERS.rescore_for


def test_daily_rescores_come_back_once_the_clock_is_within_backfill_after_of_the_wall() -> None:
    """History caught up: the ticks' wall clock is day 40 until the clock reaches it, then
    moves with it. The held rescores fire when the clock comes within an hour of the wall
    read, and from there the group is rescored every day, as live."""
    caught_up, opp = story(lambda d: max(day(d), day(40)))
    outputs = replay(caught_up.in_time_order(), CONFIG)
    as_of = [o.as_of for o in idle_scores(outputs, opp)]
    before = [a for a in as_of if a < day(39)]
    after = [a for a in as_of if a >= day(39)]
    assert len(before) <= 5  # the stall and the tier falls, no daily score
    # From day 39, 01:00 (the first grid moment the clock passed within the hour) to the grid's end.
    assert after == [day(12, 1) + k * TIMERS.rescore_every for k in range(27, 91)]
    live_story, _ = story(lambda d: day(d))
    assert final_records(outputs) == final_records(replay(live_story.in_time_order(), CONFIG))
