"""The timer index and the configuration loader."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from services.scoring.config import load_config
from services.scoring.timers import TimerIndex
from tests.unit.scoring.stories import day

pytestmark = pytest.mark.unit


def test_timer_index_pops_due_keys_in_order_and_honours_reschedules() -> None:
    index = TimerIndex()
    index.rebuild(0, [("b", day(2)), ("a", day(2)), ("c", day(5)), ("idle", None)])
    index.schedule(0, "c", day(1))  # moved earlier
    index.schedule(0, "b", day(9))  # moved later: the old entry must not fire
    index.schedule(1, "other", day(0))
    assert index.pop_due(0, day(3)) == ["c", "a"]
    assert index.pop_due(0, day(3)) == []
    assert index.pop_due(0, day(9)) == ["b"]
    assert index.pop_due(1, day(0)) == ["other"]
    index.schedule(0, "d", day(1))
    index.forget([0])
    assert not index.knows(0) and index.pop_due(0, day(99)) == []


def test_override_file_merges_over_the_shipped_defaults(tmp_path) -> None:
    override = tmp_path / "scoring.yaml"
    override.write_text("formation:\n  min_people: 4\ntimers:\n  stall_after: P30D\n")
    config = load_config(override)
    assert config.formation.min_people == 4
    assert config.formation.min_departments == 2  # untouched keys keep the shipped value
    assert config.timers.stall_after == timedelta(days=30)


def test_config_refuses_a_one_person_group(tmp_path) -> None:
    override = tmp_path / "scoring.yaml"
    override.write_text("formation:\n  min_people: 1\n  forming_people: 1\n")
    with pytest.raises(ValidationError):
        load_config(override)
