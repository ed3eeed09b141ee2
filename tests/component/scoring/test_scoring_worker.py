"""The scoring worker as a process against real Kafka: a replayed log in, scores and signals out."""

from __future__ import annotations

from collections import defaultdict

import pytest

from services.scoring.config import load_config
from shared.codec import dead_letters, encode
from shared.schemas.roles import BuyingRole
from tests.component.scoring.conftest import Replayed, decoded
from tests.unit.scoring.stories import day

pytestmark = pytest.mark.component
CONFIG = load_config()


def signals(replayed: Replayed, key: str, kind: str | None = None) -> list:
    opp = replayed.opportunities[key]
    return [s for s in decoded(replayed.runs[0].signals)
            if s.opportunity_id == opp and (kind is None or s.signal == kind)]


def latest_score(replayed: Replayed, key: str):
    """The opportunity's record as a projection keeps it: the score of the highest (version, as_of)."""
    opp = replayed.opportunities[key]
    return max((s for s in decoded(replayed.runs[0].scores) if s.opportunity_id == opp),
               key=lambda s: (s.version, s.as_of))


def score_at_last_event(replayed: Replayed, key: str):
    opp = replayed.opportunities[key]
    version = latest_score(replayed, key).version
    return min((s for s in decoded(replayed.runs[0].scores) if s.opportunity_id == opp and s.version == version),
               key=lambda s: s.as_of)


async def test_argotrubosbyt_outranks_gazmyasneft(replayed: Replayed) -> None:
    argo, gaz = score_at_last_event(replayed, "argo"), score_at_last_event(replayed, "gaz")
    assert argo.score > gaz.score
    assert (argo.tier, argo.breakdown.engaged_members) == ("A", 4)
    assert gaz.tier != "A" and gaz.breakdown.breadth == 0
    assert signals(replayed, "gaz") == []  # one person alone: no forming, no group, no alert


async def test_krasnaya_romashka_forms_once_and_the_ceo_expands_it_to_four_roles(replayed: Replayed) -> None:
    formed = signals(replayed, "romashka", "group_formed")
    assert len(formed) == 1
    # Announced by Ольга's touch, which met the criteria (no hold for late data) ...
    assert {(m.name, m.department, m.role) for m in formed[0].members} == {
        ("Елена Соколова", "hr", BuyingRole.initiator),
        ("Сергей Волков", "it", BuyingRole.technical_validator),
        ("Ольга Петрова", "finance", BuyingRole.budget_holder),
    }
    assert formed[0].missing_roles == (BuyingRole.decision_maker,)
    assert len(signals(replayed, "romashka", "group_forming")) == 1
    # ... and Иван, five hours later, completes the four roles.
    (expanded,) = signals(replayed, "romashka", "group_expanded")
    assert set(expanded.covered_roles) == {BuyingRole.initiator, BuyingRole.technical_validator,
                                           BuyingRole.budget_holder, BuyingRole.decision_maker}
    assert expanded.detail["new_roles"] == "decision_maker"
    assert latest_score(replayed, "romashka").formed_at == formed[0].occurred_at


async def test_role_gap_and_stalled_fire_at_the_configured_times(replayed: Replayed) -> None:
    formed = signals(replayed, "veter", "group_formed")
    assert len(formed) == 1 and formed[0].occurred_at == day(3, 1)  # third person, on day 1 + 2

    due = formed[0].occurred_at + CONFIG.timers.role_gap_after
    (gap,) = signals(replayed, "veter", "role_gap")
    assert gap.occurred_at == due
    assert set(gap.missing_roles) >= {BuyingRole.budget_holder, BuyingRole.decision_maker}

    # Last touch on day 1 + 4, then silence until day 1 + 30: stalled 14 days after that touch.
    stalled = signals(replayed, "veter", "stalled")
    first_due = day(5, 1) + CONFIG.timers.stall_after
    assert stalled[0].occurred_at == first_due
    (back,) = signals(replayed, "veter", "reactivated")
    assert back.occurred_at == day(31, 1)
    # Quiet again after the return; the day-60 tick on its partition passes the second due time.
    assert stalled[1].occurred_at == day(31, 1) + CONFIG.timers.stall_after
    assert [s.signal_id for s in stalled] == [f"{replayed.opportunities['veter']}:stalled:{at:%Y%m%dT%H%M%S}"
                                              for at in (first_due, day(31, 1) + CONFIG.timers.stall_after)]
    assert all(s.backfill for s in stalled)  # the log was written a day after the story: history
    assert latest_score(replayed, "veter").status == "stalled"


async def test_replaying_the_same_log_twice_gives_identical_signals(replayed: Replayed) -> None:
    first, second = replayed.runs
    assert first.namespace != second.namespace

    def per_opportunity(raw: list[bytes]) -> dict[str, list[bytes]]:
        grouped = defaultdict(list)
        for value, message in zip(raw, decoded(raw), strict=True):
            grouped[message.opportunity_id].append(value)
        return dict(grouped)

    # Byte for byte, in order per opportunity (the order across partitions is Kafka's to choose).
    assert per_opportunity(first.signals) == per_opportunity(second.signals)
    assert per_opportunity(first.scores) == per_opportunity(second.scores)
    # And the same as the pure processor gives for that log in-process.
    expected = [encode(o) for o in replayed.expected if o.type == "signal"]
    assert per_opportunity(first.signals) == per_opportunity(expected)


async def test_a_message_scoring_cannot_use_is_dead_lettered_with_the_reason(replayed: Replayed) -> None:
    for run in replayed.runs:
        (letter,) = [dead_letters.decode(raw) for raw in run.dead_letters]
        assert letter.service == "scoring" and letter.reason == "invalid_schema"
        assert letter.key == replayed.opportunities["gaz"]
        # ...and the next records are processed: the events of the same opportunity that came
        # after it in the log are scored, up to its last version.
        gaz = replayed.opportunities["gaz"]
        after = [e for e in replayed.events[len(replayed.events) // 2:] if e.key() == gaz]
        scored = [s for s in decoded(run.scores) if s.opportunity_id == gaz]
        assert after and max(s.version for s in scored) == max(e.version for e in replayed.events if e.key() == gaz)
