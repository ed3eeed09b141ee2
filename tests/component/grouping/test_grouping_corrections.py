"""Corrections through the grouping worker and the real Kafka, with the worker killed mid-stream
(issue 16).

Corrections (bg.correction.v1) and touches (bg.person-events.v1) are two topics the worker reads
in whatever interleaving; hand-set facts are an overlay on the rules, so the group each
opportunity ends with is the one the reducers chained in memory give, whatever that order and
however often the worker is killed: the same members, roles and stances, no version gap and no
event id with two contents on the output.
"""

from __future__ import annotations

import uuid

from services.grouping.domain import corrections
from shared import topics
from shared.codec import encode
from tests.component.grouping.conftest import OutputReader, Worker, fresh_namespace, send
from tests.component.grouping.test_grouping_faults import scenario
from tests.support.kafka import produce
from tests.unit.grouping.harness import Pipeline, fold, groups, hand_set


def settled(expected: dict, tag: str):
    def check(events) -> bool:
        try:
            return groups(events, tag) == expected
        except AssertionError:  # a version gap while output is still arriving
            return False
    return check


async def test_corrections_and_touches_in_any_order_and_a_killed_worker_give_the_reducers_result(
        grouping_config) -> None:
    tag = uuid.uuid4().hex[:8]
    events = scenario(tag, companies=6, people=5, touches=3)
    memory = Pipeline(grouping_config)
    before, _ = fold(memory.feed(*events))
    fixes = hand_set(before, tag)
    assert len(fixes) >= 20
    solutions = grouping_config.opportunities.solutions
    memory.send([out for c in fixes for out in corrections.route(c, solutions)])
    expected = groups([o.message for o in memory.sent if o.to == "opportunities"], tag)
    assert memory.refused == []
    assert any(m[2] == "blocker" for g in expected.values() for m in g.values())

    half = len(events) // 2
    async with fresh_namespace() as namespace:
        worker = Worker(f"grouping-{namespace}corr").start()
        try:
            worker.wait_assigned()
            async with OutputReader() as out:
                await send(events[:half])
                # The corrections are read while half the touches are still to come: some wait
                # for their opportunity to open, and the worker dies in the middle of them.
                await produce(topics.CORRECTIONS.name, [(c.key(), encode(c)) for c in fixes])
                await out.wait(lambda got: len(got) >= 40, what="output before the kill")
                worker.kill()
                worker.start()
                await send(events[half:])
                try:
                    await out.wait(settled(expected, tag), timeout=120, what="the reducers' groups")
                except AssertionError as exc:
                    got = groups(out.events, tag)
                    differ = {o: (expected.get(o), got.get(o)) for o in expected.keys() | got.keys()
                              if expected.get(o) != got.get(o)}
                    raise AssertionError(f"{exc}; differing groups (expected, got): {differ}; "
                                         f"worker log: {worker.tail(15)}") from None
        finally:
            worker.stop()
    assert groups(out.events, tag) == expected
