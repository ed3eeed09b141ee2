"""Opportunity-event logs for the scoring tests, written the way grouping emits them.

Each opportunity's events carry a version rising by one; a person's first touch of an
opportunity is preceded by their member_added, as grouping does when it attributes it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.codec import encode
from shared.schemas.opportunity import (
    AccountRef,
    AccountTouch,
    ClockTick,
    MemberAdded,
    MemberRef,
    MemberRemoved,
    MemberRoleChanged,
    MemberStanceChanged,
    OpportunityCreated,
    TouchAttributed,
    TouchRef,
    opportunity_id,
)
from shared.schemas.roles import BuyingRole, Department, RoleSource
from shared.schemas.touch import Source, TouchKind

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)

SOURCES = {
    "page_view": Source.web, "download": Source.web, "content_engaged": Source.web,
    "webinar_registered": Source.webinar, "webinar_attended": Source.webinar,
    "event_registered": Source.event, "event_attended": Source.event,
    "form_submitted": Source.form, "demo_requested": Source.form,
    "email_delivered": Source.email, "email_open": Source.email, "email_click": Source.email,
}


def day(days: float, hour: float = 0) -> datetime:
    return T0 + timedelta(days=days, hours=hour)


class Story:
    def __init__(self, token: str = "") -> None:
        self.token = token
        self.events: list = []
        self._versions: dict[str, int] = {}
        self._accounts: dict[str, AccountRef] = {}
        self._members: dict[str, dict[str, MemberRef]] = {}
        self._touches = 0

    def _next(self, opp: str) -> int:
        self._versions[opp] = self._versions.get(opp, 0) + 1
        return self._versions[opp]

    def _base(self, opp: str, at: datetime) -> dict:
        version = self._next(opp)
        account_id, _, solution = opp.rpartition(":")
        return dict(event_id=f"{opp}@{version}", opportunity_id=opp, solution=solution,
                    account=self._accounts[opp], version=version, occurred_at=at)

    def opportunity(self, domain: str, name: str, solution: str = "hr", owner: str | None = None,
                    at: datetime = T0, expected: tuple[BuyingRole, ...] = (),
                    required: tuple[BuyingRole, ...] = ()) -> str:
        account = AccountRef(account_id=f"{domain}{self.token}", name=name, owner=owner,
                             domains=(f"{domain}{self.token}",))
        opp = opportunity_id(account.account_id, solution)
        self._accounts[opp] = account
        self._members[opp] = {}
        self.events.append(OpportunityCreated(**self._base(opp, at), expected_roles=expected,
                                              required_roles=required))
        return opp

    def touch(self, opp: str, person: str, kind: str, at: datetime, *, name: str | None = None,
              department: Department = Department.other,
              role: BuyingRole = BuyingRole.influencer) -> str:
        person_id = f"{person}@{self._accounts[opp].account_id}"
        if person_id not in self._members[opp]:
            ref = MemberRef(person_id=person_id, email=person_id, name=name, department=department,
                            role=role, role_source=RoleSource.title)
            self._members[opp][person_id] = ref
            self.events.append(MemberAdded(**self._base(opp, at), member=ref))
        self._touches += 1
        touch_id = f"touch-{self.token}-{self._touches}"
        self.events.append(TouchAttributed(**self._base(opp, at), touch=TouchRef(
            event_id=touch_id, occurred_at=at, source=SOURCES[kind], kind=TouchKind(kind),
            person_id=person_id)))
        return touch_id

    def change_role(self, opp: str, person: str, at: datetime, department: Department,
                    role: BuyingRole) -> None:
        person_id = f"{person}@{self._accounts[opp].account_id}"
        old = self._members[opp][person_id]
        ref = old.model_copy(update={"department": department, "role": role,
                                     "role_source": RoleSource.manual})
        self._members[opp][person_id] = ref
        self.events.append(MemberRoleChanged(**self._base(opp, at), member=ref, previous_role=old.role))

    def stance(self, opp: str, person: str, at: datetime, stance: str | None, influence: str | None = "medium",
               correction_id: str = "c-1") -> None:
        """A stance set by hand, as grouping forwards it (member_stance_changed)."""
        person_id = f"{person}@{self._accounts[opp].account_id}"
        old = self._members[opp][person_id]
        ref = old.model_copy(update={"stance": stance, "influence": influence if stance else None})
        self._members[opp][person_id] = ref
        self.events.append(MemberStanceChanged(**self._base(opp, at), member=ref, previous_stance=old.stance,
                                               previous_influence=old.influence, correction_id=correction_id,
                                               author="Мария"))

    def remove(self, opp: str, person: str, at: datetime, correction_id: str = "c-2") -> None:
        """A member unlinked by hand (member_removed)."""
        person_id = f"{person}@{self._accounts[opp].account_id}"
        ref = self._members[opp].pop(person_id)
        self.events.append(MemberRemoved(**self._base(opp, at), member=ref, correction_id=correction_id,
                                         author="Мария"))

    def account_touch(self, account_id: str, at: datetime) -> None:
        self._touches += 1
        account = AccountRef(account_id=account_id)
        self.events.append(AccountTouch(
            event_id=f"{account_id}@touch:{self._touches}", opportunity_id=None, solution=None,
            account=account, version=1, occurred_at=at,
            touch=TouchRef(event_id=f"tick-{self._touches}", occurred_at=at, source=Source.web,
                           kind=TouchKind.page_view, person_id=f"visitor@{account_id}")))

    def tick(self, at: datetime, wall: datetime | None = None, partitions: int = 4) -> None:
        """Clock ticks as grouping's account stage writes them: every one of its partitions'
        watermarks at `at` (one tick per partition, as each forwards its own)."""
        self.events += [ClockTick(stage="accounts", watermarks={p: at}, wall=wall or at, of=partitions)
                        for p in range(partitions)]

    def in_time_order(self) -> list:
        """The log as a replay reads it: by event time (stable, so one opportunity keeps its order)."""
        return sorted(self.events, key=lambda e: min(e.watermarks.values()) if isinstance(e, ClockTick)
                      else e.occurred_at)


def gazmyasneft(story: Story, start: float = 0) -> str:
    """ONE very active person: 5 downloads, 3 webinars, 10 visits."""
    opp = story.opportunity("gazmyasneft.ru", "Газмяснефть")
    kw = dict(name="Пётр Кузнецов", department=Department.it, role=BuyingRole.technical_validator)
    for i in range(10):
        story.touch(opp, "p.kuznetsov", "page_view", day(start + i * 0.8, 1), **kw)
    for i in range(5):
        story.touch(opp, "p.kuznetsov", "download", day(start + 1 + i * 1.5, 3), **kw)
    for i in range(3):
        story.touch(opp, "p.kuznetsov", "webinar_attended", day(start + 2 + i * 2.5, 5), **kw)
    return opp


def argotrubosbyt(story: Story, start: float = 0) -> str:
    """FOUR moderately engaged people: one download and one webinar each."""
    opp = story.opportunity("argotrubosbyt.ru", "Арготрубосбыт")
    people = [
        ("a.smirnova", "Анна Смирнова", Department.hr, BuyingRole.initiator),
        ("d.orlov", "Дмитрий Орлов", Department.it, BuyingRole.technical_validator),
        ("m.lebedeva", "Мария Лебедева", Department.finance, BuyingRole.budget_holder),
        ("k.popov", "Кирилл Попов", Department.procurement, BuyingRole.procurement),
    ]
    for i, (person, name, dept, role) in enumerate(people):
        story.touch(opp, person, "download", day(start + 2 * i, 2), name=name, department=dept, role=role)
        story.touch(opp, person, "webinar_attended", day(start + 2 * i + 1, 4), name=name,
                    department=dept, role=role)
    return opp


def krasnaya_romashka(story: Story, start: float = 0) -> str:
    """DOMAIN.md's canonical story: four people, four departments, four roles."""
    opp = story.opportunity("romashka.ru", "Красная ромашка")
    elena = dict(name="Елена Соколова", department=Department.hr, role=BuyingRole.initiator)
    sergey = dict(name="Сергей Волков", department=Department.it, role=BuyingRole.technical_validator)
    olga = dict(name="Ольга Петрова", department=Department.finance, role=BuyingRole.budget_holder)
    ivan = dict(name="Иван Михайлов", department=Department.executive, role=BuyingRole.decision_maker)
    story.touch(opp, "e.sokolova", "page_view", day(start, 1), **elena)
    story.touch(opp, "e.sokolova", "webinar_attended", day(start + 3, 2), **elena)
    story.touch(opp, "s.volkov", "page_view", day(start + 6, 1), **sergey)
    story.touch(opp, "s.volkov", "webinar_registered", day(start + 8, 1), **sergey)
    # Finance and the CEO engage the same day, after an internal meeting.
    story.touch(opp, "o.petrova", "download", day(start + 10, 1), **olga)
    story.touch(opp, "i.mikhailov", "event_registered", day(start + 10, 6), **ivan)
    story.touch(opp, "e.sokolova", "download", day(start + 12, 1), **elena)
    return opp


def severny_veter(story: Story, start: float = 0) -> str:
    """A group without budget holder or decision maker that goes quiet, then comes back."""
    opp = story.opportunity("sever-veter.ru", "Северный ветер", owner="anna.ivanova@vendor.example",
                            expected=(BuyingRole.initiator, BuyingRole.technical_validator,
                                      BuyingRole.budget_holder, BuyingRole.decision_maker),
                            required=(BuyingRole.budget_holder, BuyingRole.decision_maker))
    story.touch(opp, "hr", "download", day(start, 1), name="Алина Ковалёва",
                department=Department.hr, role=BuyingRole.initiator)
    story.touch(opp, "it", "page_view", day(start + 1, 1), name="Олег Зайцев",
                department=Department.it, role=BuyingRole.technical_validator)
    story.touch(opp, "ops", "webinar_attended", day(start + 2, 1), name="Игорь Белов",
                department=Department.operations, role=BuyingRole.influencer)
    story.touch(opp, "hr", "download", day(start + 4, 1), department=Department.hr,
                role=BuyingRole.initiator)
    # Silence from day 4 to day 30, then the IT lead comes back.
    story.touch(opp, "it", "download", day(start + 30, 1), department=Department.it,
                role=BuyingRole.technical_validator)
    return opp


def positions(events: list, partition_of=lambda key: 0) -> list[tuple[int, int, object]]:
    """(partition, offset, event): where each event lands when the log is produced in this order."""
    offsets: dict[int, int] = {}
    placed = []
    for event in events:
        partition = partition_of(event.key())
        offsets[partition] = offsets.get(partition, -1) + 1
        placed.append((partition, offsets[partition], event))
    return placed


def replay(events: list, config, partition_of=lambda key: 0, wall=None) -> list:
    """Run events through the worker's processor with a dict for its table: (scores + signals)
    in order. `wall`: the record timestamp of every message (None: the log has none)."""
    from services.scoring.processor import Processor

    processor = Processor(config, {})
    outputs: list = []
    for partition, _, event in positions(events, partition_of):
        outputs += processor.process(partition, event, wall)
    return outputs


def signals_of(outputs: list, opportunity: str | None = None, kind: str | None = None) -> list:
    return [o for o in outputs if o.type == "signal"
            and (opportunity is None or o.opportunity_id == opportunity) and (kind is None or o.signal == kind)]


def last_score(outputs: list, opportunity: str):
    return [o for o in outputs if o.type == "score" and o.opportunity_id == opportunity][-1]


def final_records(outputs: list) -> dict:
    """Each opportunity's record as a projection keeps it: the score of the highest (version, as_of)."""
    best: dict = {}
    for o in outputs:
        if o.type == "score" and (o.opportunity_id not in best
                                  or (o.version, o.as_of) > (best[o.opportunity_id].version,
                                                            best[o.opportunity_id].as_of)):
            best[o.opportunity_id] = o
    return {k: encode(v) for k, v in best.items()}
