"""An erasure through grouping's and scoring's reducers: the person leaves every opportunity,
their touches stop counting, a replay of the log ends the same, and later events are dropped."""

from __future__ import annotations

import pytest

from services.grouping.config import GroupingConfig, load
from services.grouping.domain.accounts import person_id
from services.scoring.config import load_config
from shared.schemas.opportunity import MemberRemoved, TouchAttributed
from shared.schemas.privacy import PersonErased
from tests.unit.grouping.harness import Pipeline, at, fold, romashka_story, touch
from tests.unit.scoring.stories import Story, day, krasnaya_romashka, last_score, replay, signals_of

CONFIG = load_config()


@pytest.fixture(scope="module")
def config() -> GroupingConfig:
    return load({})


def erasure(minute: float, *emails: str, identifiers: tuple[str, ...] = ()) -> PersonErased:
    return PersonErased(event_id=f"erase:{minute}", occurred_at=at(minute),
                        person_ids=tuple(person_id(e) for e in emails), identifiers=identifiers)


def test_grouping_removes_an_erased_member_and_drops_what_comes_later(config) -> None:
    pipeline = Pipeline(config)
    story = romashka_story("romashka.ru", "kr")
    before = pipeline.feed(*story)
    [opportunity] = fold(before)[0].values()
    olga = person_id("o.petrova@hr.romashka.ru")
    assert olga in opportunity.members and len(opportunity.members) == 4

    removed = pipeline.feed(erasure(200, olga))
    assert [(type(e).__name__, e.opportunity_id) for e in removed] == [
        ("MemberRemoved", opportunity.opportunity_id), ("MemberRemoved", None)]
    assert all(e.member.person_id == olga and e.erased and e.author == "privacy" for e in removed)
    # Event ids end up in the projection's rows: none names her, even by pseudonym.
    assert not [e for e in removed if olga in e.event_id or olga in e.correction_id]
    after = pipeline.feed(touch("kr-late", 210, "download", email="o.petrova@hr.romashka.ru",
                                name="Ольга Петрова", asset_id="hr-roi-case-study"))
    assert after == []  # the profile holds the mark only, and drops the event
    assert pipeline.profiles[olga].model_dump(exclude_defaults=True) == {"person_id": olga, "erased": True}

    [view] = fold(before + removed + after)[0].values()
    assert olga not in view.members and len(view.members) == 3
    assert not any(t == "kr-6" for t in view.touches)  # her download went with her


def test_a_replay_with_the_erasure_ends_where_the_live_run_ended(config) -> None:
    story = romashka_story("romashka.ru", "kr")
    olga = person_id("o.petrova@hr.romashka.ru")
    live = Pipeline(config)
    events = live.feed(*story) + live.feed(erasure(200, olga))
    replayed = Pipeline(config).feed(*story, erasure(200, olga))
    assert replayed == events
    assert olga not in next(iter(fold(replayed)[0].values())).members


def test_an_anonymous_identity_node_is_forgotten_with_its_held_visits(config) -> None:
    pipeline = Pipeline(config)
    pipeline.feed(touch("a-1", 0, anonymous_id="ym:p1", url="https://vendor.example/solutions/hr/pricing"))
    assert pipeline.nodes["anon:ym:p1"].held
    pipeline.feed(erasure(5, identifiers=("anon:ym:p1",)))
    assert pipeline.nodes["anon:ym:p1"].held == [] and pipeline.nodes["anon:ym:p1"].erased
    # A link naming an email later releases nothing: the visits went with the erasure.
    emitted = pipeline.feed(touch("a-2", 10, email="elena@romashka.ru", anonymous_id="ym:p1",
                                  job_title="HR-менеджер", url="https://vendor.example/solutions/hr/leave-automation"))
    attributed = {e.touch.event_id for e in emitted if isinstance(e, TouchAttributed)}
    assert attributed == {"a-2"}


def test_scoring_scores_again_without_the_erased_member() -> None:
    story = Story()
    opp = krasnaya_romashka(story)
    events = story.in_time_order()
    before = last_score(replay(events, CONFIG), opp)
    olga = "o.petrova@romashka.ru"
    assert olga in {m.person_id for m in before.breakdown.members}
    version = max(e.version for e in events if getattr(e, "opportunity_id", None) == opp) + 1
    last = events[-1]
    card = next(e.member for e in events if getattr(e, "member", None) and e.member.person_id == olga)
    removal = MemberRemoved(event_id=f"{opp}@{version}", opportunity_id=opp, solution="hr", account=last.account,
                            version=version, occurred_at=day(12, 2), member=card, correction_id="erase:1",
                            author="privacy", erased=True)
    outputs = replay(events + [removal], CONFIG)
    after = last_score(outputs, opp)
    assert olga not in {m.person_id for m in after.breakdown.members}
    assert len(after.breakdown.members) == len(before.breakdown.members) - 1
    assert after.score < before.score
    # The group is still formed by the three left (HR, IT, the CEO), and no fact is announced again.
    assert after.status == "formed" and after.formed_at == day(10, 6)  # formed again, by Иван's touch
    assert len(signals_of(outputs, opp, "group_formed")) == 1


@pytest.mark.parametrize("clock", [None, day(11), day(20), day(40)],
                         ids=["no clock", "clock behind the erasure", "rescored past it", "stalled before it"])
def test_an_erasure_is_scored_after_every_earlier_score_wherever_the_clock_is(clock) -> None:
    """The re-score of an erasure supersedes every score sent before it, in the order the
    projection keeps scores, (version, as_of): also when scoring's clock had already rescored
    the group past the erasure's own time (a backlog, a replay), and whatever rescores follow."""
    story = Story()
    opp = krasnaya_romashka(story)
    if clock is not None:
        story.tick(clock)
    events = story.in_time_order()
    olga = "o.petrova@romashka.ru"
    version = max(e.version for e in events if getattr(e, "opportunity_id", None) == opp) + 1
    card = next(e.member for e in events if getattr(e, "member", None) and e.member.person_id == olga)
    removal = MemberRemoved(event_id=f"{opp}@{version}", opportunity_id=opp, solution="hr", account=events[0].account,
                            version=version, occurred_at=day(12, 2), member=card, correction_id="erase:1",
                            author="privacy", erased=True)
    before = [o for o in replay(events, CONFIG) if o.type == "score" and o.opportunity_id == opp]
    outputs = replay(events + [removal], CONFIG)
    after = [o for o in outputs if o.type == "score" and o.opportunity_id == opp][len(before):]
    assert after, "the erasure is scored"
    last = max(before, key=lambda s: (s.version, s.as_of))
    assert (after[0].version, after[0].as_of) > (last.version, last.as_of)
    assert after[0].as_of >= last.as_of and after[0].score < last.score
    assert all(olga not in {m.person_id for m in s.breakdown.members} for s in after)
