"""The qualification rules (services/projection/qualification.py) on the default funnel."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.projection import funnel as funnel_config
from services.projection.funnel import configured
from services.projection.qualification import Facts, Mark, MemberFact, evaluate

T0 = datetime(2026, 9, 1, 9, tzinfo=UTC)
REQUIRED = ("budget_holder", "decision_maker")


def at(days: float) -> datetime:
    return T0 + timedelta(days=days)


def facts(stage: str = "target_base", members: tuple[MemberFact, ...] = (), **kw) -> Facts:
    base = dict(opportunity_id="r.ru:hr", account_id="r.ru", solution="hr", stage=stage, stage_changed_at=None,
                stage_author=None, outcome="open", created_at=T0, formed_at=None, required_roles=REQUIRED,
                members=members, technical_touch_at=None, marks={})
    return Facts(**{**base, **kw})


ELENA = MemberFact("elena", "hr", "initiator", at(0))
SERGEY = MemberFact("sergey", "it", "technical_validator", at(4))
OLGA = MemberFact("olga", "finance", "budget_holder", at(7))
IVAN = MemberFact("ivan", "executive", "decision_maker", at(9))
SILENT = MemberFact("gleb", "procurement", "procurement", None)


def test_the_default_funnel_has_the_domain_stages_names_and_6_to_12_criteria():
    f = configured()
    assert [s.code for s in f.stages] == ["target_base", "cold", "warm", "potential_deal", "closing", "won", "lost"]
    assert f.by_code["cold"].probability == pytest.approx(0.10) and 0.7 <= f.by_code["closing"].probability <= 0.8
    assert (f.by_code["warm"].name.ru, f.by_code["warm"].name.en) == ("Тёплая", "Warm")
    assert 6 <= len(f.criteria) <= 12
    assert {c for c, x in f.criteria.items() if x.derived} >= {"group_formed", "technical_validation"}
    assert f.person_criteria and f.team_roles == ["ae", "se", "pm", "kam", "csm"]
    assert f.stage_for("Closed Won").code == "won" and f.stage_for("contract").code == "closing"


def test_a_broken_funnel_fails_naming_what_is_wrong():
    import yaml
    data = yaml.safe_load(funnel_config.DEFAULT_PATH.read_text(encoding="utf-8"))
    data["stages"][1]["exit"] = ["no_such_criterion"]
    with pytest.raises(ValueError, match="no_such_criterion"):
        funnel_config.parse(data)


def test_an_engaged_member_moves_a_target_account_to_cold_at_the_first_touch():
    result = evaluate(configured(), facts(members=(SILENT, ELENA)))
    assert result.move is not None
    assert (result.move.from_stage, result.move.stage, result.move.at) == ("target_base", "cold", at(0))
    assert evaluate(configured(), facts(members=(SILENT,))).move is None


def test_cold_moves_to_warm_when_the_group_formed_and_a_superior_engaged_at_the_later_time():
    cold = facts("cold", (ELENA, SERGEY, OLGA), stage_changed_at=at(0), stage_author="rules", formed_at=at(5))
    move = evaluate(configured(), cold).move
    assert move is not None and (move.stage, move.at) == ("warm", at(7))
    assert move.criteria == ("group_formed", "superiors_engaged")
    not_formed = evaluate(configured(), replace(cold, formed_at=None))
    assert not_formed.move is None and not_formed.missing == ("group_formed",) and not_formed.proposed is None


def test_warm_waits_for_a_person_and_proposes_the_move_naming_what_is_missing():
    warm = facts("warm", (ELENA, SERGEY, OLGA, IVAN), stage_changed_at=at(9), stage_author="rules",
                 formed_at=at(5), technical_touch_at=at(4))
    result = evaluate(configured(), warm)
    assert result.move is None and result.proposed == "potential_deal"
    assert set(result.missing) == {"pain_confirmed", "fit_confirmed"}
    marks = {"pain_confirmed": Mark(True, "call notes", "ivanov", at(12)),
             "fit_confirmed": Mark(True, "demo went well", "ivanov", at(13))}
    moved = evaluate(configured(), replace(warm, marks=marks)).move
    assert moved is not None and (moved.stage, moved.at) == ("potential_deal", at(13))
    refused = {**marks, "fit_confirmed": Mark(False, None, "ivanov", at(14))}
    assert evaluate(configured(), replace(warm, marks=refused)).move is None


def test_after_a_person_moves_it_back_the_rules_move_it_only_on_later_facts():
    back = facts("cold", (ELENA, SERGEY, OLGA), stage_changed_at=at(20), stage_author="person", formed_at=at(5))
    result = evaluate(configured(), back)
    assert result.move is None and result.proposed == "warm"
    later = replace(back, members=(*back.members, replace(IVAN, first_touch_at=at(25))), formed_at=at(25))
    move = evaluate(configured(), later).move
    assert move is not None and move.at == at(25)


def test_won_and_lost_are_final_for_the_rules():
    for outcome in ("won", "lost"):
        result = evaluate(configured(), facts("cold", (ELENA, SERGEY, OLGA), outcome=outcome, formed_at=at(5)))
        assert result == (result.__class__((), None, None, ()))


def test_an_unknown_crm_stage_is_qualified_from_the_first_stage():
    move = evaluate(configured(), facts("qualified-by-someone", (ELENA,))).move
    assert move is not None and move.from_stage == "target_base"


def test_move_ids_are_deterministic_and_a_later_stage_sorts_after_an_earlier_one_at_the_same_time():
    first = evaluate(configured(), facts(members=(ELENA,))).move
    again = evaluate(configured(), facts(members=(ELENA,))).move
    assert first is not None and again is not None
    assert first.event_id("r.ru:hr", 1) == again.event_id("r.ru:hr", 1)
    assert first.event_id("r.ru:hr", 1) < first.event_id("r.ru:hr", 2) < "stage:0"
