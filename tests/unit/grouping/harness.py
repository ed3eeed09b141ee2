"""Test helpers: the grouping stages chained in memory, and a fold of opportunity events.

The in-memory chain runs the same reducers the faust agents run, in one FIFO queue, so unit
tests can tell stories end to end without a broker; component tests use `fold` and
`roles_of` on what the real worker wrote to Kafka.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from services.grouping.config import GroupingConfig
from services.grouping.domain import directory, identity, merge, people
from services.grouping.domain.messages import Outbound
from shared.schemas.correction import (
    CorrectionUndone,
    MemberLinked,
    MemberRoleSet,
    MemberStanceSet,
    MemberUnlinked,
)
from shared.schemas.opportunity import (
    AccountTouch,
    MemberAdded,
    MemberRemoved,
    MemberRoleChanged,
    MemberStanceChanged,
    OpportunityCreated,
    OpportunityMerged,
    TouchAttributed,
)
from shared.schemas.touch import CompanyTraits, Content, IdentityEvent, Person, TouchEvent


@dataclass
class Pipeline:
    config: GroupingConfig
    nodes: dict[str, Any] = field(default_factory=dict)
    profiles: dict[str, Any] = field(default_factory=dict)
    names: dict[str, Any] = field(default_factory=dict)
    accounts: dict[str, Any] = field(default_factory=dict)
    sent: list[Outbound] = field(default_factory=list)  # every internal message, in order
    refused: list[Any] = field(default_factory=list)  # corrections refused (CorrectionRefused), in order

    def feed(self, *events: Any) -> list[Any]:
        """Push person events through every stage; returns the opportunity events emitted."""
        return self.send([out for event in events for out in identity.route(event)])

    def send(self, outbound: list[Outbound]) -> list[Any]:
        """Push internal messages (a routed correction) through the stages; the opportunity events emitted."""
        queue: deque[Outbound] = deque(outbound)
        emitted = []
        while queue:
            out = queue.popleft()
            self.sent.append(out)
            if out.to == "opportunities":
                emitted.append(out.message)
            elif out.to == "correction_dlq":
                self.refused.append(out.message)
            else:
                queue.extend(self._apply(out))
        return emitted

    def _apply(self, out: Outbound) -> list[Outbound]:
        cfg = self.config
        if out.to == "identity":
            self.nodes[out.key], result = identity.step(self.nodes.get(out.key), out.key, out.message, cfg.identity)
        elif out.to == "people":
            self.profiles[out.key], result = people.step(self.profiles.get(out.key), out.key, out.message, cfg.people)
        elif out.to == "names":
            if isinstance(out.message, directory.NameLookup):
                updates, result = directory.lookup(self.names, out.message, cfg.people.accounts.names)
            else:
                updates, result = directory.register(self.names, out.message, cfg.people.accounts.names)
            self.names.update(updates)
        else:
            self.accounts[out.key], result = merge.step(
                self.accounts.get(out.key), out.key, out.message, cfg.opportunities)
        return result


@dataclass
class OpportunityView:
    opportunity_id: str
    account_id: str
    solution: str
    origin: str | None = None
    members: dict[str, Any] = field(default_factory=dict)  # person_id -> MemberRef
    touches: set[str] = field(default_factory=set)
    touch_people: dict[str, str] = field(default_factory=dict)  # touch id -> person id
    versions: list[int] = field(default_factory=list)
    merged_into: str | None = None  # the opportunity it was merged into (OpportunityMerged)


def fold(events: list[Any]) -> tuple[dict[str, OpportunityView], dict[str, set[str]]]:
    """Apply opportunity events as a consumer would (by version, duplicates ignored).

    Fails when two events share an id but differ, or an opportunity's versions have a gap:
    either would mean the worker lost or changed output across a crash or a rebalance.
    Returns the opportunities and, per account, the touches attributed to the account.
    """
    by_id: dict[str, Any] = {}
    for event in events:
        if event.event_id in by_id:
            assert by_id[event.event_id] == event, f"{event.event_id} emitted twice with different content"
        by_id[event.event_id] = event
    views: dict[str, OpportunityView] = {}
    account_touches: dict[str, set[str]] = {}
    for event in sorted(by_id.values(), key=lambda e: (e.key(), e.version)):
        if isinstance(event, AccountTouch):
            account_touches.setdefault(event.account.account_id, set()).add(event.touch.event_id)
            continue
        if isinstance(event, MemberRemoved) and event.opportunity_id is None:
            continue  # the account's own touches of an erased person: no opportunity to fold
        view = views.setdefault(event.opportunity_id, OpportunityView(
            event.opportunity_id, event.account.account_id, event.solution))
        view.versions.append(event.version)
        if isinstance(event, OpportunityCreated):
            view.origin = event.origin
        elif isinstance(event, MemberAdded | MemberRoleChanged | MemberStanceChanged):
            view.members[event.member.person_id] = event.member
        elif isinstance(event, TouchAttributed):
            view.touches.add(event.touch.event_id)
            view.touch_people[event.touch.event_id] = event.touch.person_id
        elif isinstance(event, MemberRemoved):
            view.members.pop(event.member.person_id, None)
            if event.erased:  # an erased person's touches go with them (docs/privacy.md)
                view.touches -= {t for t, p in view.touch_people.items() if p == event.member.person_id}
        elif isinstance(event, OpportunityMerged):
            view.merged_into = event.merged_into
    for view in views.values():
        assert view.versions == list(range(1, len(view.versions) + 1)), (
            f"{view.opportunity_id}: versions {view.versions} have a gap")
    return views, account_touches


def roles_of(view: OpportunityView) -> dict[str, tuple[str, str]]:
    return {pid: (m.department.value, m.role.value) for pid, m in view.members.items()}


T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def touch(event_id: str, minute: float, kind: str = "page_view", source: str = "web", *,
          email: str | None = None, anonymous_id: str | None = None, user_id: str | None = None,
          name: str | None = None, job_title: str | None = None, company: str | None = None,
          stated_role: str | None = None, **content: str) -> TouchEvent:
    return TouchEvent(
        event_id=event_id, occurred_at=at(minute), source=source, kind=kind,
        person=Person(email=email, anonymous_id=anonymous_id, user_id=user_id, name=name,
                      job_title=job_title, company=company, stated_role=stated_role),
        content=Content(**content),
    )


def identify(event_id: str, minute: float, *, email: str | None = None, anonymous_id: str | None = None,
             user_id: str | None = None, name: str | None = None, job_title: str | None = None,
             company: str | None = None, company_domain: str | None = None,
             stated_role: str | None = None) -> IdentityEvent:
    traits = CompanyTraits(name=company, domain=company_domain) if company or company_domain else None
    return IdentityEvent(
        event_id=event_id, occurred_at=at(minute),
        person=Person(email=email, anonymous_id=anonymous_id, user_id=user_id, name=name,
                      job_title=job_title, stated_role=stated_role),
        company=traits,
    )


def romashka_story(domain: str, prefix: str) -> list[TouchEvent | IdentityEvent]:
    """DOMAIN.md's Красная ромашка: four people, four roles, all reading about the HR system."""
    return [
        touch(f"{prefix}-1", 0, email=f"elena.sokolova@{domain}", name="Елена Соколова", job_title="HR-менеджер",
              company="Красная ромашка", url="https://vendor.example/solutions/hr/leave-automation"),
        touch(f"{prefix}-2", 30, "webinar_registered", "webinar", email=f"elena.sokolova@{domain}",
              topic="Автоматизация кадрового учёта"),
        touch(f"{prefix}-3", 60, "download", email=f"elena.sokolova@{domain}", asset_id="hr-demo-2025"),
        touch(f"{prefix}-4", 90, email=f"s.volkov@it.{domain}", name="Сергей Волков", job_title="IT-директор",
              url="https://vendor.example/solutions/hr/integrations/api"),
        touch(f"{prefix}-5", 120, "webinar_registered", "webinar", email=f"s.volkov@it.{domain}",
              topic="Интеграция HR-системы с 1С"),
        touch(f"{prefix}-6", 150, "download", email=f"o.petrova@hr.{domain}", name="Ольга Петрова",
              job_title="финансовый директор", asset_id="hr-roi-case-study"),
        touch(f"{prefix}-7", 180, "event_registered", "event", email=f"i.mikhailov@{domain}", name="Иван Михайлов",
              job_title="генеральный директор", topic="HR Tech Forum 2025",
              url="https://vendor.example/events/hr-tech-forum"),
    ]


def hand_set(views: dict, tag: str) -> list:
    """Corrections of the opportunities the touches open: a link of someone who never touched,
    an unlink, a role, a stance, and the undo of a role, made after the touches."""
    made = T0 + timedelta(days=1)
    found = []
    for n, (oid, view) in enumerate(sorted(views.items())):
        people = sorted(view.members)
        if tag not in oid or len(people) < 3:
            continue

        def fix(kind, i: int, n: int = n, oid: str = oid, **fields):
            return kind(correction_id=f"{tag}-{n}-{i}", author="Мария", made_at=made + timedelta(minutes=n * 10 + i),
                        opportunity_id=oid, **fields)

        domain = view.account_id
        found += [fix(MemberLinked, 1, person_id=f"boss@{domain}", role="decision_maker", department="executive"),
                  fix(MemberUnlinked, 2, person_id=people[0]),
                  fix(MemberRoleSet, 3, person_id=people[1], role="legal"),
                  fix(MemberStanceSet, 4, person_id=people[2], stance="blocker", influence="high")]
        if n % 2:
            found.append(CorrectionUndone(correction_id=f"{tag}-{n}-5", author="Мария", made_at=made + timedelta(
                minutes=n * 10 + 5), undoes=f"{tag}-{n}-3", subject=oid))
    return found


def groups(events, tag: str) -> dict:
    views, _ = fold([e for e in events if tag in e.account.account_id])
    return {oid: {p: (m.role.value, m.role_source.value, m.stance) for p, m in v.members.items()}
            for oid, v in views.items()}
