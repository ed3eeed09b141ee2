"""The signal state machine, driven through the worker's processor with dicts for tables.

The time model under test (docs/time.md): a fact is decided when the message that makes it
true is processed, with no hold; timers fire when the partition's clock (event times, or the
clock ticks grouping writes) passes them; a fact is announced once under its own id.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.scoring.config import load_config
from services.scoring.domain.score import decay
from services.scoring.domain.signals import step
from services.scoring.domain.state import OpportunityState
from services.scoring.processor import Processor
from shared.codec import encode
from shared.schemas.roles import BuyingRole, Department
from tests.unit.scoring.stories import (
    Story,
    day,
    final_records,
    krasnaya_romashka,
    last_score,
    positions,
    replay,
    severny_veter,
    signals_of,
)

pytestmark = pytest.mark.unit
CONFIG = load_config()
TIMERS = CONFIG.timers


def test_krasnaya_romashka_forms_at_the_touch_that_meets_the_criteria_then_expands() -> None:
    story = Story()
    opp = krasnaya_romashka(story)
    events = story.in_time_order()
    processor = Processor(CONFIG, {})
    announced_by = {}
    for partition, _, event in positions(events):
        for signal in signals_of(processor.process(partition, event), opp):
            announced_by.setdefault(signal.signal, event)
    # Formed when Ольга (the third person, a second department) engaged on day 10, announced
    # by that very touch: no hold for lateness.
    assert announced_by["group_formed"].touch.occurred_at == day(10, 1)
    outputs = replay(events, CONFIG)
    formed = signals_of(outputs, opp, "group_formed")
    assert len(formed) == 1
    assert formed[0].signal_id == f"{opp}:group_formed"
    assert formed[0].occurred_at == day(10, 1)
    assert {(m.name, m.role) for m in formed[0].members} == {
        ("Елена Соколова", BuyingRole.initiator), ("Сергей Волков", BuyingRole.technical_validator),
        ("Ольга Петрова", BuyingRole.budget_holder)}
    assert len(formed[0].trigger_event_ids) == 3  # the latest touch of each person that formed it
    assert formed[0].account_name == "Красная ромашка"
    # Иван, five hours later, expands it with the decision maker.
    expanded = signals_of(outputs, opp, "group_expanded")
    assert [s.detail for s in expanded] == [{"new_members": "i.mikhailov@romashka.ru", "new_roles": "decision_maker"}]
    assert expanded[0].occurred_at == day(10, 6)
    final = last_score(outputs, opp)
    assert final.status == "formed" and final.formed_at == day(10, 1)


def test_expansion_ids_name_what_is_new_and_a_role_change_expands_too() -> None:
    story = Story()
    opp = story.opportunity("x.ru", "X")
    story.touch(opp, "a", "download", day(0), department=Department.hr, role=BuyingRole.initiator)
    story.touch(opp, "b", "download", day(1), department=Department.it, role=BuyingRole.technical_validator)
    story.touch(opp, "c", "download", day(2), department=Department.it, role=BuyingRole.influencer)
    story.touch(opp, "d", "download", day(3), department=Department.finance, role=BuyingRole.budget_holder)
    story.change_role(opp, "c", day(3, 1), Department.executive, BuyingRole.decision_maker)
    story.touch(opp, "e", "page_view", day(4), department=Department.it, role=BuyingRole.technical_validator)
    outputs = replay(story.in_time_order(), CONFIG)
    formed = signals_of(outputs, opp, "group_formed")
    assert len(formed) == 1 and formed[0].occurred_at == day(2) and len(formed[0].members) == 3
    expanded = signals_of(outputs, opp, "group_expanded")
    assert [s.detail for s in expanded] == [
        {"new_members": "d@x.ru", "new_roles": "budget_holder"},
        {"new_members": "", "new_roles": "decision_maker"},
        {"new_members": "e@x.ru", "new_roles": ""},
    ]
    ids = [s.signal_id for s in expanded]
    assert len(set(ids)) == 3 and all(i.startswith(f"{opp}:group_expanded:") for i in ids)


def test_people_outside_the_window_do_not_form_a_group() -> None:
    story = Story()
    opp = story.opportunity("x.ru", "X")
    story.touch(opp, "a", "download", day(0), department=Department.hr, role=BuyingRole.initiator)
    story.touch(opp, "b", "download", day(15), department=Department.it, role=BuyingRole.technical_validator)
    story.touch(opp, "c", "download", day(30), department=Department.finance, role=BuyingRole.budget_holder)
    story.tick(day(40))
    outputs = replay(story.in_time_order(), CONFIG)
    assert not signals_of(outputs, opp, "group_formed")


def test_people_of_unknown_departments_do_not_count_as_a_department() -> None:
    """Issue 15: every false positive was a small team where a person with no title
    (department "other") counted as a second department."""
    story = Story()
    opp = story.opportunity("x.ru", "X")
    story.touch(opp, "a", "download", day(0), department=Department.it, role=BuyingRole.technical_validator)
    story.touch(opp, "b", "download", day(1), department=Department.it, role=BuyingRole.influencer)
    story.touch(opp, "c", "download", day(2), department=Department.other, role=BuyingRole.influencer)
    outputs = replay(story.in_time_order(), CONFIG)
    assert signals_of(outputs, opp, "group_forming") and not signals_of(outputs, opp, "group_formed")
    # A person of a known second department forms it.
    story.touch(opp, "d", "download", day(3), department=Department.finance, role=BuyingRole.budget_holder)
    assert signals_of(replay(story.in_time_order(), CONFIG), opp, "group_formed")[0].occurred_at == day(3)


def test_a_late_touch_corrects_formed_at_without_a_second_announcement() -> None:
    story = Story()
    opp = story.opportunity("x.ru", "X")
    story.touch(opp, "a", "download", day(0), department=Department.hr, role=BuyingRole.initiator)
    story.touch(opp, "b", "download", day(1), department=Department.it, role=BuyingRole.technical_validator)
    story.touch(opp, "c", "download", day(5), department=Department.finance, role=BuyingRole.budget_holder)
    story.touch(opp, "d", "download", day(2), department=Department.executive, role=BuyingRole.decision_maker)
    events = story.events  # d's touch of day 2 arrives after c's of day 5: late
    outputs = replay(events, CONFIG)
    formed = signals_of(outputs, opp, "group_formed")
    assert len(formed) == 1 and formed[0].occurred_at == day(5)  # what was known when announced
    final = last_score(outputs, opp)
    assert final.formed_at == day(2)  # corrected over the full touch set
    # In time order the same facts give the same final record.
    assert last_score(replay(story.in_time_order(), CONFIG), opp).formed_at == day(2)


def test_role_gap_fires_on_a_quiet_partition_when_a_clock_tick_passes_the_delay() -> None:
    story = Story()
    opp = severny_veter(story)
    formed_at = day(2, 1)  # the third person, a second department
    due = formed_at + TIMERS.role_gap_after
    events = [e for e in story.in_time_order() if e.occurred_at <= day(4, 1)]
    story = Story()
    story.events = [*events]
    story.tick(due - timedelta(minutes=1))
    story.tick(due)
    log = story.events
    outputs = replay(log, CONFIG)
    assert signals_of(outputs, opp, "group_formed")[0].occurred_at == formed_at
    gaps = signals_of(outputs, opp, "role_gap")
    assert len(gaps) == 1
    gap = gaps[0]
    assert gap.signal_id == f"{opp}:role_gap" and gap.occurred_at == due
    assert gap.detail["missing_required"] == "budget_holder,decision_maker"
    # Fired by the tick that moved the clock to the due time, not the one before.
    processor = Processor(CONFIG, {})
    firing = [event for partition, _, event in positions(log)
              if signals_of(processor.process(partition, event), opp, "role_gap")]
    assert firing == [log[-1]]
    assert gap.trigger_event_ids == ()
    assert set(gap.missing_roles) == {BuyingRole.budget_holder, BuyingRole.decision_maker}


def test_a_tick_from_one_account_stage_partition_does_not_move_the_clock_past_a_slower_one() -> None:
    """The clock is the slowest account stage partition's watermark: one still writing an
    opportunity's earlier events holds time back for all (Flink's minimum over input channels)."""
    story = Story()
    opp = severny_veter(story)
    events = [e for e in story.in_time_order() if e.occurred_at <= day(4, 1)]
    due = day(2, 1) + TIMERS.role_gap_after
    from shared.schemas.opportunity import ClockTick

    ahead = [ClockTick(stage="accounts", watermarks={p: due}, wall=due, of=4) for p in (0, 1, 2)]
    behind = ClockTick(stage="accounts", watermarks={3: day(4, 1)}, wall=due, of=4)
    assert not signals_of(replay([*events, *ahead, behind], CONFIG), opp, "role_gap")
    caught_up = ClockTick(stage="accounts", watermarks={3: due}, wall=due, of=4)
    assert signals_of(replay([*events, *ahead, behind, caught_up], CONFIG), opp, "role_gap")


def test_a_log_of_route_ticks_keeps_its_clock_rule() -> None:
    """A log written before the account stage forwarded watermarks (route's ticks, no stage):
    its clock is the latest event time, or the slowest input partition's watermark."""
    story = Story()
    opp = severny_veter(story)
    events = [e for e in story.in_time_order() if e.occurred_at <= day(4, 1)]
    due = day(2, 1) + TIMERS.role_gap_after
    from shared.schemas.opportunity import ClockTick

    ahead = ClockTick(watermarks={0: due, 1: due, 2: due, 3: day(4, 1)}, wall=due)
    assert not signals_of(replay([*events, ahead], CONFIG), opp, "role_gap")
    caught_up = ClockTick(watermarks={3: due}, wall=due)
    assert signals_of(replay([*events, ahead, caught_up], CONFIG), opp, "role_gap")


def test_no_role_gap_when_the_required_roles_arrive_in_time() -> None:
    story = Story()
    opp = severny_veter(story)
    story.touch(opp, "cfo", "download", day(5), department=Department.finance, role=BuyingRole.budget_holder)
    story.touch(opp, "ceo", "event_registered", day(6), department=Department.executive,
                role=BuyingRole.decision_maker)
    story.tick(day(20))
    outputs = replay(story.in_time_order(), CONFIG)
    assert not signals_of(outputs, opp, "role_gap")


def test_stalled_by_the_clock_then_reactivated_by_a_touch() -> None:
    story = Story()
    opp = severny_veter(story)  # last touch day 4, then the IT lead returns on day 30
    outputs = replay(story.in_time_order(), CONFIG)
    since = day(4, 1) + TIMERS.stall_after
    stalled = signals_of(outputs, opp, "stalled")
    assert len(stalled) == 1 and stalled[0].occurred_at == since
    assert stalled[0].signal_id == f"{opp}:stalled:{since:%Y%m%dT%H%M%S}"
    reactivated = signals_of(outputs, opp, "reactivated")
    assert len(reactivated) == 1 and reactivated[0].occurred_at == day(30, 1)
    assert reactivated[0].signal_id == f"{opp}:reactivated:{since:%Y%m%dT%H%M%S}"
    kinds = [s.signal for s in signals_of(outputs, opp)]
    assert kinds.index("stalled") < kinds.index("reactivated")
    # The score sent when it stalled says so; the touch that came back makes it formed again.
    stall_score = [o for o in outputs if o.type == "score" and o.opportunity_id == opp and o.as_of == since]
    assert stall_score and stall_score[0].status == "stalled" and stall_score[0].stalled_since == since
    assert last_score(outputs, opp).status == "formed"


def test_a_late_old_touch_corrects_a_stall_without_reactivating_it() -> None:
    story = Story()
    opp = severny_veter(story)
    events = [e for e in story.in_time_order() if e.occurred_at <= day(4, 1)]
    log = Story()
    log.events = [*events]
    log.tick(day(25))  # stalled since day 18, 01:00
    late = Story()
    late._accounts, late._members, late._versions = story._accounts, story._members, {opp: events[-1].version}
    late._touches = 100
    late.touch(opp, "hr", "page_view", day(6), department=Department.hr, role=BuyingRole.initiator)  # late
    outputs = replay([*log.events, *late.events], CONFIG)
    assert len(signals_of(outputs, opp, "stalled")) == 1 and not signals_of(outputs, opp, "reactivated")
    final = last_score(outputs, opp)
    assert final.status == "stalled" and final.stalled_since == day(6) + TIMERS.stall_after


def test_priority_decays_with_the_clock_and_a_stalled_group_falls() -> None:
    """Issue 11: silent groups kept their peak score and a recency of 10/10."""
    story = Story()
    opp = krasnaya_romashka(story)
    story.tick(day(60))
    outputs = replay(story.in_time_order(), CONFIG)
    scores = [o for o in outputs if o.type == "score" and o.opportunity_id == opp]
    peak = max(scores, key=lambda s: s.score)
    final = scores[-1]
    assert final.status == "stalled"
    assert final.score < peak.score - 20 and final.tier != peak.tier
    assert final.breakdown.recency < 2 < peak.breakdown.recency
    assert final.as_of == day(59, 1)  # the last whole period after its last touch (day 12, 01:00)
    assert len(scores) < 60  # bounded: once a period, until timers.rescore_for after the last touch
    moves = [(s.detail["from"], s.detail["to"]) for s in signals_of(outputs, opp, "priority_changed")]
    assert moves[:2] == [("C", "B"), ("B", "A")] and moves[-1][1] in ("B", "C")


def test_signals_about_history_are_marked_backfill() -> None:
    story = Story()
    opp = krasnaya_romashka(story)
    events = story.in_time_order()
    live = signals_of(replay(events, CONFIG, wall=None), opp, "group_formed")[0]
    assert live.backfill is False
    later = signals_of(replay(events, CONFIG, wall=day(40)), opp, "group_formed")[0]
    assert later.backfill is True
    just_now = signals_of(replay(events, CONFIG, wall=day(10, 1) + timedelta(minutes=5)), opp, "group_formed")[0]
    assert just_now.backfill is False


def test_replaying_a_log_gives_byte_identical_outputs_and_duplicates_change_nothing() -> None:
    story = Story()
    krasnaya_romashka(story)
    severny_veter(story, start=1)
    story.tick(day(60))
    events = story.in_time_order()
    first = [encode(o) for o in replay(events, CONFIG)]
    assert first == [encode(o) for o in replay(events, CONFIG)]
    # Every event copied again right after itself (an upstream retry) gives the same outputs once.
    doubled = [e for event in events for e in (event, event)]
    assert [encode(o) for o in replay(doubled, CONFIG)] == first


def test_every_fact_has_one_id_however_often_the_log_is_read() -> None:
    story = Story()
    krasnaya_romashka(story)
    severny_veter(story, start=1)
    story.tick(day(90))
    outputs = replay(story.in_time_order(), CONFIG)
    ids = [s.signal_id for s in signals_of(outputs)]
    assert len(ids) == len(set(ids))


def test_old_touches_fold_into_member_totals_without_changing_the_score_much() -> None:
    story = Story()
    opp = story.opportunity("x.ru", "X")
    for i in range(30):
        story.touch(opp, "a", "download", day(i * 3), department=Department.hr, role=BuyingRole.initiator)
    processor = Processor(CONFIG, {})
    outputs = [o for e in story.in_time_order() for o in processor.process(0, e)]
    processor.flush(0)
    state = OpportunityState.model_validate_json(processor.table[opp.encode()])
    assert len(state.touches) < 30 and state.members["a@x.ru"].folded_touches > 0  # bounded
    score = [o for o in outputs if o.type == "score" and o.version == state.version][0]
    member = score.breakdown.members[0]
    assert member.touches == 30
    assert score.as_of == day(87)  # its own latest touch
    # Folding is exact for exponential decay: the total equals the sum over every single touch.
    exact = sum(decay(3, day(i * 3), day(87), CONFIG.half_life) for i in range(30))
    assert member.engagement == pytest.approx(exact, abs=1e-3)


def test_final_records_do_not_depend_on_the_interleaving() -> None:
    """Two opportunities on one partition in three interleavings (each one's own events keep
    their order, as grouping writes them), then a tick: the same final records (status,
    formed_at, stalled_since, score), and each fact announced once. When one opportunity's
    events trail the partition's clock (the third order), its timers are judged on what had
    arrived when the clock passed them; the record is corrected, not announced again
    (docs/time.md, "Backfill")."""
    story = Story()
    romashka, veter = krasnaya_romashka(story), severny_veter(story, start=1)
    story.tick(day(120))
    events = story.in_time_order()
    own = {key: [e for e in events if getattr(e, "opportunity_id", None) == key] for key in (romashka, veter)}
    tick = [e for e in events if getattr(e, "type", "") == "clock_tick"]
    orders = [events, own[romashka] + own[veter] + tick, own[veter] + own[romashka] + tick]
    runs = [replay(order, CONFIG) for order in orders]
    assert final_records(runs[1]) == final_records(runs[0]) and final_records(runs[2]) == final_records(runs[0])
    for run in runs:
        ids = [s.signal_id for s in signals_of(run)]
        assert len(ids) == len(set(ids))
        assert [s.occurred_at for s in signals_of(run, romashka, "group_formed")] == [day(10, 1)]
    kinds = {s.signal for s in signals_of(runs[0], veter)}
    assert {"group_formed", "role_gap", "stalled", "reactivated"} <= kinds
    # Without skew, the facts are the same too (priority moves depend on which scores were sent).
    facts = [{(s.signal_id, s.occurred_at) for s in signals_of(run) if s.signal != "priority_changed"}
             for run in runs[:2]]
    assert facts[1] == facts[0]


def test_an_event_time_far_ahead_of_its_record_moves_no_clock_past_the_present() -> None:
    """Issue 11: one Segment call from a client a year ahead gave every other opportunity of
    its partition role_gap and stalled at once. Ingest corrects it; should one slip through,
    another opportunity's event never moves the partition's clock (only the account stage's
    ticks do), and in a log written before those ticks the record's own timestamp bounds it."""
    story = Story()
    veter = severny_veter(story)
    events = [e for e in story.in_time_order() if e.occurred_at <= day(4, 1)]
    other = story.opportunity("future.ru", "Будущее", at=day(4, 2))
    story.touch(other, "x", "download", day(400), department=Department.hr, role=BuyingRole.initiator)
    future = [e for e in story.events if getattr(e, "opportunity_id", None) == other]
    for wall in (day(4, 3), None):
        outputs = replay([*events, *future], CONFIG, wall=wall)
        assert signals_of(outputs, veter, "group_formed")
        assert not signals_of(outputs, veter, "role_gap") and not signals_of(outputs, veter, "stalled")
    # A log of the earlier clock model (route's ticks, no stage): the latest event time moved it.
    from shared.schemas.opportunity import ClockTick

    legacy = [ClockTick(watermarks={0: day(0)}, wall=day(0)), *events, *future]
    outputs = replay(legacy, CONFIG, wall=day(4, 3))
    assert not signals_of(outputs, veter, "role_gap") and not signals_of(outputs, veter, "stalled")
    # Without the record's timestamp to bound it, the year-ahead time would have fired both.
    fired = replay(legacy, CONFIG)
    assert signals_of(fired, veter, "role_gap") and signals_of(fired, veter, "stalled")


def test_formed_at_stays_when_its_window_is_folded_away() -> None:
    """A group formed early and active for months: the touches that formed it are folded into
    per-member totals (retain_touches), and formed_at must not move to a later window."""
    story = Story()
    opp = story.opportunity("x.ru", "X")
    story.touch(opp, "a", "download", day(0), department=Department.hr, role=BuyingRole.initiator)
    story.touch(opp, "b", "download", day(1), department=Department.it, role=BuyingRole.technical_validator)
    story.touch(opp, "c", "download", day(2), department=Department.finance, role=BuyingRole.budget_holder)
    for week in range(1, 20):  # the same three stay active, week after week
        for i, person in enumerate(("a", "b", "c")):
            story.touch(opp, person, "page_view", day(7 * week + i))
    outputs = replay(story.in_time_order(), CONFIG)
    assert last_score(outputs, opp).formed_at == day(2)


def test_an_opportunity_merged_into_another_announces_nothing_until_the_merge_is_undone() -> None:
    from shared.schemas.opportunity import OpportunityMerged

    def formed_then_merged(undo_at: float | None) -> tuple[str, list]:
        story = Story()
        opp = story.opportunity("sever-veter.ru", "Северный ветер", required=(BuyingRole.budget_holder,))
        for n, (person, department) in enumerate((("hr", Department.hr), ("it", Department.it),
                                                  ("ops", Department.operations))):
            story.touch(opp, person, "download", day(n, 1), department=department)
        story.events.append(OpportunityMerged(**story._base(opp, day(3)), merged_into="romashka.ru:hr",
                                              merge_id="c-1"))
        if undo_at is not None:
            story.events.append(OpportunityMerged(**story._base(opp, day(undo_at)), merged_into=None,
                                                  merge_id="c-1"))
        story.tick(day(40))
        return opp, replay(story.events, CONFIG)

    opp, outputs = formed_then_merged(undo_at=None)
    assert {"group_forming", "group_formed"} <= {s.signal for s in signals_of(outputs, opp)}  # before the merge
    assert [s for s in signals_of(outputs, opp) if s.occurred_at >= day(3)] == []  # no stall, no role gap
    opp, outputs = formed_then_merged(undo_at=5)  # undone: its own again, and its timers run
    assert [s.occurred_at for s in signals_of(outputs, opp, "stalled")] == [day(2, 1) + TIMERS.stall_after]
    assert signals_of(outputs, opp, "role_gap")


def test_a_step_leaves_the_state_it_was_given_as_it_was() -> None:
    """Steps work on a fork (OpportunityState.fork): the state before a step, which the worker
    keeps decoded and may have to process again from, never changes, folding included."""
    story = Story()
    opp = story.opportunity("x.ru", "X")
    for i in range(30):
        story.touch(opp, "a", "download", day(i * 3), department=Department.hr, role=BuyingRole.initiator)
    events = story.in_time_order()
    state = None
    for event in events:
        if getattr(event, "opportunity_id", None) != opp:
            continue
        before = None if state is None else state.model_dump_json()
        now = event.occurred_at
        result = step(state, event, now, now, 0, CONFIG)
        if state is not None:
            assert state.model_dump_json() == before
        state = result.state
    assert state is not None and state.members["a@x.ru"].folded_touches > 0  # the fold ran


def test_a_tier_the_clock_passes_is_announced_where_it_fell_however_the_clock_got_there() -> None:
    """bench/equality.py (issue 11): the same market through the whole pipeline announced an
    idle group's fall to C at the rescore moment the clock happened to reach first (2025-11-15
    with one worker, 2025-11-17 with two, as grouping's partitions interleaved): one fact, two
    ids. The fall is announced at the first rescore moment whose score has the new tier, whether
    the clock moved a day at a time or jumped (here: A -> B -> C a day at a time, A -> C at the
    end of the grid in one jump, before the fix)."""
    daily, jump, uneven = Story(), Story(), Story()
    opp = krasnaya_romashka(daily)
    krasnaya_romashka(jump)
    krasnaya_romashka(uneven)
    for d in range(13, 101):
        daily.tick(day(d))
    jump.tick(day(100))
    for d in (20, 21, 37, 38.5, 71, 100):
        uneven.tick(day(d))
    runs = [replay(story.in_time_order(), CONFIG) for story in (daily, jump, uneven)]
    after_last_touch = [[(s.signal_id, s.occurred_at, s.detail["to"]) for s in signals_of(run, opp, "priority_changed")
                         if s.occurred_at > day(12, 1)] for run in runs]
    assert after_last_touch[0]  # the idle group does fall
    assert after_last_touch[1] == after_last_touch[0] and after_last_touch[2] == after_last_touch[0]
    assert final_records(runs[1]) == final_records(runs[0]) == final_records(runs[2])
    # Each fall lands on the rescore grid (the last touch, day 12 01:00, + whole periods).
    assert all((at - day(12, 1)) % TIMERS.rescore_every == timedelta(0) for _, at, _ in after_last_touch[0])
