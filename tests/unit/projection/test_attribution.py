"""Multi-touch attribution: how a won deal's credit is spread over its members' touches."""

from __future__ import annotations

import pytest

from services.projection.domain import TouchForCredit, attribute, content_key, credit_groups
from tests.unit.projection.stories import day

pytestmark = pytest.mark.unit

TOUCHES = [TouchForCredit(f"t{i}", day(i)) for i in range(5)]


@pytest.mark.parametrize("model", ["linear", "first_touch", "last_touch", "position_based", "time_decay"])
def test_shares_sum_to_one(model):
    shares = attribute(TOUCHES, model)
    assert set(shares) == {t.touch_id for t in TOUCHES}
    assert sum(shares.values()) == pytest.approx(1.0)


def test_models_place_the_credit():
    assert attribute(TOUCHES, "linear") == pytest.approx({f"t{i}": 0.2 for i in range(5)})
    assert attribute(TOUCHES, "first_touch")["t0"] == 1.0
    assert attribute(TOUCHES, "last_touch")["t4"] == 1.0
    position = attribute(TOUCHES, "position_based")
    assert position["t0"] == position["t4"] == pytest.approx(0.4)
    assert position["t2"] == pytest.approx(0.2 / 3)
    decay = attribute(TOUCHES, "time_decay")
    assert decay["t0"] < decay["t1"] < decay["t4"]


def test_touches_after_the_win_earn_nothing():
    shares = attribute(TOUCHES, "linear", until=day(2))
    assert shares == pytest.approx({"t0": 1 / 3, "t1": 1 / 3, "t2": 1 / 3})


def test_order_of_input_and_ties_do_not_matter():
    tied = [TouchForCredit("b", day(1)), TouchForCredit("a", day(1)), TouchForCredit("c", day(0))]
    assert attribute(tied, "last_touch") == {"c": 0.0, "a": 0.0, "b": 1.0}
    assert attribute(list(reversed(tied)), "last_touch") == attribute(tied, "last_touch")


def test_no_touches_no_credit():
    assert attribute([], "linear") == {}


def test_credit_groups_sum_credit_and_value():
    credited = [
        {"person_id": "a", "asset_id": "roi", "url": None, "credit": 0.5, "value": 50.0},
        {"person_id": "b", "asset_id": None, "url": "/hr", "credit": 0.3, "value": 30.0},
        {"person_id": "a", "asset_id": None, "url": "/hr", "credit": 0.2, "value": 20.0},
    ]
    by_person = credit_groups(credited, lambda t: t["person_id"])
    assert by_person == [{"key": "a", "credit": 0.7, "value": 70.0, "touches": 2},
                         {"key": "b", "credit": 0.3, "value": 30.0, "touches": 1}]
    by_content = credit_groups(credited, content_key)
    # Equal credit (0.5 each): ordered by key.
    assert [(g["key"], g["touches"]) for g in by_content] == [("/hr", 2), ("roi", 1)]


def test_value_is_unknown_when_any_touch_has_none():
    credited = [{"k": "x", "credit": 0.5, "value": None}, {"k": "x", "credit": 0.5, "value": 10.0}]
    assert credit_groups(credited, lambda t: t["k"])[0]["value"] is None
