"""The stages chained in memory: the DOMAIN.md stories end to end, and replays."""

from __future__ import annotations

from shared.schemas.opportunity import TouchAttributed
from tests.unit.grouping.harness import Pipeline, fold, identify, roles_of, romashka_story, touch

FOUR_ROLES = {
    "elena.sokolova@romashka.ru": ("hr", "initiator"),
    "s.volkov@it.romashka.ru": ("it", "technical_validator"),
    "o.petrova@hr.romashka.ru": ("finance", "budget_holder"),
    "i.mikhailov@romashka.ru": ("executive", "decision_maker"),
}


def test_krasnaya_romashka_is_one_opportunity_with_four_roles(config) -> None:
    views, account_touches = fold(Pipeline(config).feed(*romashka_story("romashka.ru", "kr")))
    assert list(views) == ["romashka.ru:hr"]
    assert roles_of(views["romashka.ru:hr"]) == FOUR_ROLES
    assert views["romashka.ru:hr"].touches == {f"kr-{i}" for i in range(1, 8)}
    assert account_touches == {}


def test_a_free_mail_colleague_joins_by_company_name(config) -> None:
    pipeline = Pipeline(config)
    events = pipeline.feed(*romashka_story("romashka.ru", "kr"))
    events += pipeline.feed(touch("fm-1", 300, "download", email="lawyer.romashka@gmail.com", job_title="Юрист",
                                  company="ООО «Красная Ромашка»", asset_id="hr-security-whitepaper"))
    views, _ = fold(events)
    assert list(views) == ["romashka.ru:hr"]
    assert roles_of(views["romashka.ru:hr"]) == {**FOUR_ROLES, "lawyerromashka@gmail.com": ("legal", "legal")}


def test_anonymous_visits_count_once_the_person_is_identified(config) -> None:
    pipeline = Pipeline(config)
    visits = [touch(f"anon-{i}", i, anonymous_id="cookie-1", url=f"https://vendor.example/solutions/wms/page-{i}")
              for i in range(3)]
    assert pipeline.feed(*visits) == []
    events = pipeline.feed(identify("id-1", 10, anonymous_id="cookie-1", email="logist@sklad.ru",
                                    job_title="Начальник склада"))
    views, _ = fold(events)
    assert views["sklad.ru:wms"].touches == {"anon-0", "anon-1", "anon-2"}
    assert roles_of(views["sklad.ru:wms"]) == {"logist@sklad.ru": ("operations", "initiator")}


def test_a_replay_gives_the_same_events(config) -> None:
    # Deterministic: no clock, no randomness. Duplicates never reach the reducers: the worker
    # skips them by their stamp (tests/unit/grouping/test_keyed_stage.py).
    story = romashka_story("romashka.ru", "kr")
    assert Pipeline(config).feed(*story) == Pipeline(config).feed(*story)


def test_the_result_does_not_depend_on_who_comes_first(config) -> None:
    story = romashka_story("romashka.ru", "kr")
    forward, _ = fold(Pipeline(config).feed(*story))
    backward, _ = fold(Pipeline(config).feed(*reversed(story)))
    assert roles_of(forward["romashka.ru:hr"]) == roles_of(backward["romashka.ru:hr"]) == FOUR_ROLES
    assert forward["romashka.ru:hr"].touches == backward["romashka.ru:hr"].touches


def test_a_batch_ingest_let_through_twice_is_attributed_once(config) -> None:
    # The chaos bench's doubled batch: the same 20 touches written twice to the input, named
    # and anonymous alike (an anonymous copy waits in its identity node with the original).
    story = romashka_story("romashka.ru", "kr")
    anonymous = [touch(f"anon-{i}", i, anonymous_id="cookie-1", url=f"https://vendor.example/solutions/wms/p{i}")
                 for i in range(3)]
    pipeline = Pipeline(config)
    events = pipeline.feed(*story, *anonymous)
    events += pipeline.feed(*[e.model_copy() for e in story + anonymous])
    events += pipeline.feed(identify("id-1", 10, anonymous_id="cookie-1", email="logist@sklad.ru"))
    attributed = [e.touch.event_id for e in events if isinstance(e, TouchAttributed)]
    assert sorted(attributed) == sorted({*attributed}) and len(attributed) == 7 + 3
