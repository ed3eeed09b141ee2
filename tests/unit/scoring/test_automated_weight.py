"""Issue 13: an automated touch (machine open, link scanner, bot) is kept but weighs nothing."""

from __future__ import annotations

import pytest

from services.scoring.config import load_config
from services.scoring.domain.signals import step
from shared.schemas.opportunity import TouchAttributed
from tests.unit.scoring.stories import Story, day

pytestmark = pytest.mark.unit
CONFIG = load_config()


def test_an_automated_touch_is_recorded_with_weight_zero_and_no_engagement() -> None:
    story = Story()
    opp = story.opportunity("berezka.ru", "Берёзка")
    story.touch(opp, "olga", "email_click", day(0))
    story.touch(opp, "olga", "email_click", day(0, 1))
    scanner = story.events[-1]
    story.events[-1] = scanner.model_copy(update={"touch": scanner.touch.model_copy(update={"automated": True})})
    state = None
    for event in story.events:
        result = step(state, event, event.occurred_at, None, 0, CONFIG)
        state = result.state
    person, automated = state.touches
    assert person.weight == CONFIG.weight("email_click") > 0
    assert automated.weight == 0.0
    assert state.last_touch_at == day(0)  # the machine's click does not refresh recency
    assert isinstance(story.events[-1], TouchAttributed)
