"""Identity stitching: anonymous and user ids resolved to the person's email."""

from __future__ import annotations

from datetime import timedelta

from services.grouping.domain import identity
from services.grouping.domain.identity import IdentityLimits
from shared.schemas.touch import IdentityEvent, TouchEvent
from tests.unit.grouping.harness import identify, touch


class Nodes:
    """Runs identity messages to a fixed point, collecting what leaves for the people stage."""

    def __init__(self, limits: IdentityLimits = IdentityLimits()) -> None:
        self.limits = limits
        self.nodes: dict = {}
        self.released: list[TouchEvent | IdentityEvent] = []

    def send(self, *events) -> None:
        queue = [out for e in events for out in identity.route(e)]
        while queue:
            out = queue.pop(0)
            if out.to == "people":
                self.released.append(out.message)
                continue
            self.nodes[out.key], more = identity.step(self.nodes.get(out.key), out.key, out.message, self.limits)
            queue.extend(more)

    def released_ids(self) -> list[str]:
        return [e.event_id for e in self.released]


def test_routing() -> None:
    with_email = touch("t1", 0, email="a@romashka.ru", anonymous_id="c1", user_id="u1")
    outs = identity.route(with_email)
    assert [(o.to, o.key) for o in outs] == [
        ("people", "a@romashka.ru"), ("identity", "anon:c1"), ("identity", "user:u1")]
    assert outs[1].message.email == "a@romashka.ru" and outs[1].message.aliases == ("user:u1",)
    anonymous = touch("t2", 0, anonymous_id="c1", user_id="u1")
    outs = identity.route(anonymous)
    assert [(o.to, o.key) for o in outs] == [("identity", "anon:c1"), ("identity", "user:u1")]
    assert outs[0].message is anonymous and outs[1].message.email is None


def test_anonymous_visits_are_released_with_the_email_once_a_form_names_them() -> None:
    nodes = Nodes()
    nodes.send(touch("v1", 0, anonymous_id="c1", url="/solutions/hr/"),
               touch("v2", 5, anonymous_id="c1", url="/solutions/hr/pricing"))
    assert nodes.released == []
    nodes.send(touch("f1", 10, "form_submitted", "form", email="Elena@Romashka.ru", anonymous_id="c1"))
    assert nodes.released_ids() == ["f1", "v1", "v2"]
    assert {e.person.email for e in nodes.released} == {"elena@romashka.ru"}
    nodes.send(touch("v3", 20, anonymous_id="c1"))
    assert nodes.released_ids()[-1] == "v3" and nodes.released[-1].person.email == "elena@romashka.ru"


def test_a_chain_anon_to_user_to_email_resolves_in_any_order() -> None:
    events = [
        touch("v1", 0, anonymous_id="c9"),
        identify("i1", 1, anonymous_id="c9", user_id="u9"),
        touch("v2", 2, user_id="u9"),
        identify("i2", 3, user_id="u9", email="sergey@romashka.ru"),
    ]
    for order in (events, list(reversed(events)), [events[2], events[0], events[3], events[1]]):
        nodes = Nodes()
        nodes.send(*order)
        assert sorted(nodes.released_ids()) == ["i1", "i2", "v1", "v2"]
        assert {e.person.email for e in nodes.released} == {"sergey@romashka.ru"}


def test_held_events_expire_by_event_time_and_are_bounded() -> None:
    nodes = Nodes(IdentityLimits(ttl=timedelta(days=1), max_held=2))
    nodes.send(touch("old", 0, anonymous_id="c2"))
    nodes.send(touch("a", 60 * 24 * 2, anonymous_id="c2"), touch("b", 60 * 24 * 2 + 1, anonymous_id="c2"),
               touch("c", 60 * 24 * 2 + 2, anonymous_id="c2"))
    assert [e.event_id for e in nodes.nodes["anon:c2"].held] == ["b", "c"]
    nodes.send(identify("id", 60 * 24 * 2 + 3, anonymous_id="c2", email="x@romashka.ru"))
    assert nodes.released_ids() == ["id", "b", "c"]


def test_the_latest_link_names_the_email_and_an_older_one_does_not_undo_it() -> None:
    nodes = Nodes()
    nodes.send(identify("new", 10, anonymous_id="shared-pc", email="b@romashka.ru"),
               identify("old", 5, anonymous_id="shared-pc", email="a@romashka.ru"))
    assert nodes.nodes["anon:shared-pc"].email == "b@romashka.ru"
