"""The signal state machine, driven through the worker's processor with dicts for tables."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.scoring.config import load_config
from services.scoring.domain.score import decay
from services.scoring.domain.state import OpportunityState
from services.scoring.processor import Processor
from shared.codec import encode
from shared.schemas.roles import BuyingRole, Department
from tests.unit.scoring.stories import (
    Story,
    day,
    krasnaya_romashka,
    last_score,
    positions,
    replay,
    severny_veter,
    signals_of,
)

pytestmark = pytest.mark.unit
CONFIG = load_config()
LATENESS = CONFIG.timers.allowed_lateness


def test_krasnaya_romashka_forms_once_with_its_four_members_and_roles() -> None:
    story = Story()
    opp = krasnaya_romashka(story)
    story.account_touch("tick.example", day(13))  # moves the watermark past the formation
    outputs = replay(story.in_time_order(), CONFIG)

    kinds = [s.signal for s in signals_of(outputs, opp) if s.signal.startswith("group_")]
    assert kinds == ["group_forming", "group_formed"]
    formed = signals_of(outputs, opp, "group_formed")[0]
    assert formed.signal_id == f"{opp}:group_formed:1"
    # Formation held when Ольга (the third person, second department) engaged on day 10;
    # Иван engaged within the allowed lateness, so the group announced has all four.
    assert formed.occurred_at == day(10, 1)
    assert {(m.name, m.role) for m in formed.members} == {
        ("Елена Соколова", BuyingRole.initiator), ("Сергей Волков", BuyingRole.technical_validator),
        ("Ольга Петрова", BuyingRole.budget_holder), ("Иван Михайлов", BuyingRole.decision_maker)}
    assert formed.covered_roles == (BuyingRole.initiator, BuyingRole.technical_validator,
                                    BuyingRole.budget_holder, BuyingRole.decision_maker)
    assert formed.missing_roles == ()
    assert len(formed.trigger_event_ids) == 3  # the latest touch of each person that formed it
    assert formed.account_name == "Красная ромашка"


def test_formed_waits_for_the_watermark_then_later_people_expand_the_group() -> None:
    story = Story()
    opp = story.opportunity("x.ru", "X")
    story.touch(opp, "a", "download", day(0), department=Department.hr, role=BuyingRole.initiator)
    story.touch(opp, "b", "download", day(1), department=Department.it, role=BuyingRole.technical_validator)
    story.touch(opp, "c", "download", day(2), department=Department.it, role=BuyingRole.influencer)
    before = replay(story.in_time_order(), CONFIG)
    assert signals_of(before, opp, "group_forming") and not signals_of(before, opp, "group_formed")

    story.touch(opp, "a", "page_view", day(2) + LATENESS)  # the watermark reaches day 2
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
    assert [s.signal_id for s in expanded] == [f"{opp}:group_expanded:{n}" for n in (1, 2, 3)]


def test_people_outside_the_window_do_not_form_a_group() -> None:
    story = Story()
    opp = story.opportunity("x.ru", "X")
    story.touch(opp, "a", "download", day(0), department=Department.hr, role=BuyingRole.initiator)
    story.touch(opp, "b", "download", day(15), department=Department.it, role=BuyingRole.technical_validator)
    story.touch(opp, "c", "download", day(30), department=Department.finance, role=BuyingRole.budget_holder)
    story.account_touch("tick.example", day(40))
    outputs = replay(story.in_time_order(), CONFIG)
    assert not signals_of(outputs, opp, "group_formed")


def test_role_gap_fires_when_the_watermark_passes_the_configured_delay() -> None:
    story = Story()
    opp = severny_veter(story)
    formed_at = day(2, 1)  # the third person, a second department
    due = formed_at + CONFIG.timers.role_gap_after
    story.account_touch("tick.example", due + LATENESS - timedelta(minutes=1))
    story.account_touch("tick.example", due + LATENESS)
    events = story.in_time_order()
    outputs = replay(events, CONFIG)
    assert signals_of(outputs, opp, "group_formed")[0].occurred_at == formed_at
    gaps = signals_of(outputs, opp, "role_gap")
    assert len(gaps) == 1
    gap = gaps[0]
    assert gap.occurred_at == due
    assert gap.detail["missing_required"] == "budget_holder,decision_maker"
    # Fired by the first event that moved the watermark to the due time, not the one before.
    processor = Processor(CONFIG, {})
    firing = [event for partition, offset, event in positions(events)
              if signals_of(processor.process(partition, offset, event), opp, "role_gap")]
    assert firing == [[e for e in events if e.opportunity_id is None][-1]]
    assert gap.trigger_event_ids == ()  # not the tick: which event fires a timer is not the group's
    assert set(gap.missing_roles) == {BuyingRole.budget_holder, BuyingRole.decision_maker}


def test_no_role_gap_when_the_required_roles_arrive_in_time() -> None:
    story = Story()
    opp = severny_veter(story)
    story.touch(opp, "cfo", "download", day(5), department=Department.finance, role=BuyingRole.budget_holder)
    story.touch(opp, "ceo", "event_registered", day(6), department=Department.executive,
                role=BuyingRole.decision_maker)
    story.account_touch("tick.example", day(20))
    outputs = replay(story.in_time_order(), CONFIG)
    assert not signals_of(outputs, opp, "role_gap")


def test_stalled_by_the_watermark_then_reactivated_by_a_touch() -> None:
    story = Story()
    opp = severny_veter(story)  # last touch day 4, then the IT lead returns on day 30
    events = story.in_time_order()
    outputs = replay(events, CONFIG)
    stalled = signals_of(outputs, opp, "stalled")
    assert len(stalled) == 1
    assert stalled[0].occurred_at == day(4, 1) + CONFIG.timers.stall_after
    reactivated = signals_of(outputs, opp, "reactivated")
    assert len(reactivated) == 1 and reactivated[0].occurred_at == day(30, 1)
    kinds = [s.signal for s in signals_of(outputs, opp)]
    assert kinds.index("stalled") < kinds.index("reactivated")


def test_priority_changed_on_tier_moves() -> None:
    story = Story()
    opp = krasnaya_romashka(story)
    outputs = replay(story.in_time_order(), CONFIG)
    moves = [(s.detail["from"], s.detail["to"]) for s in signals_of(outputs, opp, "priority_changed")]
    assert moves == [("C", "B"), ("B", "A")]


def test_replaying_a_log_gives_byte_identical_outputs_and_duplicates_change_nothing() -> None:
    story = Story()
    krasnaya_romashka(story)
    severny_veter(story, start=1)
    story.account_touch("tick.example", day(60))
    events = story.in_time_order()
    first = [encode(o) for o in replay(events, CONFIG)]
    assert first == [encode(o) for o in replay(events, CONFIG)]
    # Every event copied again right after itself (an upstream retry, not a redelivery of the
    # same offset, see test_redelivery) gives the same outputs once.
    doubled = [e for event in events for e in (event, event)]
    assert [encode(o) for o in replay(doubled, CONFIG)] == first


def test_old_touches_fold_into_member_totals_without_changing_the_score_much() -> None:
    story = Story()
    opp = story.opportunity("x.ru", "X")
    for i in range(30):
        story.touch(opp, "a", "download", day(i * 3), department=Department.hr, role=BuyingRole.initiator)
    processor = Processor(CONFIG, {})
    outputs = [o for offset, e in enumerate(story.in_time_order()) for o in processor.process(0, offset, e)]
    processor.flush(0)
    state = OpportunityState.model_validate_json(processor.table[opp.encode()])
    assert len(state.touches) < 30 and state.members["a@x.ru"].folded_touches > 0  # bounded
    score = [o for o in outputs if o.type == "score"][-1]
    member = score.breakdown.members[0]
    assert member.touches == 30
    assert score.as_of == day(87)  # its own latest touch
    # Folding is exact for exponential decay: the total equals the sum over every single touch.
    exact = sum(decay(3, day(i * 3), day(87), CONFIG.half_life) for i in range(30))
    assert member.engagement == pytest.approx(exact, abs=1e-3)



def per_opportunity(outputs: list) -> tuple[dict, dict]:
    """Each opportunity's final score, and its signals in order (encoded)."""
    scores = {o.opportunity_id: encode(o) for o in outputs if o.type == "score"}
    signals: dict[str, list[bytes]] = {}
    for o in signals_of(outputs):
        signals.setdefault(o.opportunity_id, []).append(encode(o))
    return scores, signals


def three_interleavings() -> tuple[list[list], str, str]:
    """Two opportunities on one partition, then a tick: in event-time order, and each one's
    events all before the other's (an opportunity's own events keep their order, as grouping
    writes them to their partition)."""
    story = Story()
    romashka, veter = krasnaya_romashka(story), severny_veter(story, start=1)
    story.account_touch("tick.example", day(120))
    events = story.in_time_order()
    own = {key: [e for e in events if e.opportunity_id == key] for key in (romashka, veter)}
    tick = [e for e in events if e.opportunity_id is None]
    return [events, own[romashka] + own[veter] + tick, own[veter] + own[romashka] + tick], romashka, veter


def test_interleaving_within_the_lateness_changes_no_score_and_no_signal() -> None:
    """Each opportunity's scores and signals come from its own events: how other opportunities'
    events interleave with them (which moves the partition's watermark) does not show."""
    config = CONFIG.model_copy(update={"timers": CONFIG.timers.model_copy(
        update={"allowed_lateness": timedelta(days=40)})})  # each order is within it
    orders, romashka, veter = three_interleavings()
    runs = [per_opportunity(replay(events, config)) for events in orders]
    assert runs[1] == runs[0] and runs[2] == runs[0]
    # Not vacuous: the timers fired, on different events in each order.
    outputs = replay(orders[0], config)
    assert {"group_formed", "stalled"} <= {s.signal for s in signals_of(outputs, romashka)}
    assert {"group_formed", "role_gap", "stalled"} <= {s.signal for s in signals_of(outputs, veter)}
    for key in (romashka, veter):
        assert last_score(outputs, key).as_of == max(e.occurred_at for e in orders[0] if e.opportunity_id == key)


def test_final_scores_do_not_depend_on_the_interleaving_even_beyond_the_lateness() -> None:
    """Timers may then fire with fewer of the opportunity's own events applied (a late event
    misses the formation it belonged to), but each final score is a function of the
    opportunity's own events."""
    orders, _, _ = three_interleavings()
    finals = [per_opportunity(replay(events, CONFIG))[0] for events in orders]
    assert finals[1] == finals[0] and finals[2] == finals[0]
