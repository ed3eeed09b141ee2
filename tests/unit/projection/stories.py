"""The DOMAIN.md stories as the messages the projection reads: opportunity events (as grouping
writes them), scores and signals (as scoring writes them). Ids carry a token, so that every
test has its own accounts, people and touches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from shared import topics
from shared.codec import encode
from shared.schemas.crm import StageChanged
from shared.schemas.opportunity import (
    AccountRef,
    AccountTouch,
    MemberAdded,
    MemberRef,
    MemberRoleChanged,
    OpportunityCreated,
    TouchAttributed,
    TouchRef,
    opportunity_id,
)
from shared.schemas.roles import BuyingRole, Department, RoleSource
from shared.schemas.scoring import MemberContribution, OpportunityScore, ScoreBreakdown, Signal
from shared.schemas.touch import Source, TouchKind

T0 = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)
HR_PROFILE = (BuyingRole.initiator, BuyingRole.technical_validator, BuyingRole.budget_holder,
              BuyingRole.decision_maker)
SOURCE_OF = {
    TouchKind.page_view: Source.web, TouchKind.download: Source.web, TouchKind.webinar_registered: Source.webinar,
    TouchKind.webinar_attended: Source.webinar, TouchKind.event_registered: Source.event,
    TouchKind.email_click: Source.email, TouchKind.demo_requested: Source.form,
}


def day(days: float, hours: float = 0) -> datetime:
    return T0 + timedelta(days=days, hours=hours)


@dataclass
class Person:
    local: str
    name: str
    title: str
    department: Department
    role: BuyingRole


@dataclass
class Log:
    """Messages in the order their producers would write them, with their topic and key."""

    token: str
    messages: list[tuple[str, str, object]] = field(default_factory=list)  # (topic base name, key, message)
    versions: dict[str, int] = field(default_factory=dict)
    accounts: dict[str, AccountRef] = field(default_factory=dict)
    members: dict[str, dict[str, MemberRef]] = field(default_factory=dict)
    touches: dict[str, list[tuple[str, datetime]]] = field(default_factory=dict)
    # Per opportunity, the lifecycle its signals so far announced, which its next score carries
    # (scoring emits a step's signals before its score: docs/time.md).
    lifecycles: dict[str, dict] = field(default_factory=dict)
    counter: int = 0

    def domain(self, base: str) -> str:
        return f"{base.removesuffix('.ru')}-{self.token}.ru"

    def _emit(self, topic: topics.Topic, message) -> None:
        self.messages.append((topic.base_name, message.key(), message))

    def _base(self, opp: str, at: datetime) -> dict:
        self.versions[opp] = self.versions.get(opp, 0) + 1
        version = self.versions[opp]
        return dict(event_id=f"{opp}@{version}", opportunity_id=opp, solution=opp.rsplit(":", 1)[1],
                    account=self.accounts[opp], version=version, occurred_at=at)

    def opportunity(self, base_domain: str, name: str, solution: str = "hr", at: datetime = T0,
                    owner: str | None = "a.ivanov@vendor.example") -> str:
        domain = self.domain(base_domain)
        account = AccountRef(account_id=domain, name=name, domains=(domain,), owner=owner)
        opp = opportunity_id(domain, solution)
        self.accounts[opp], self.members[opp], self.touches[opp] = account, {}, []
        self._emit(topics.OPPORTUNITY_EVENTS, OpportunityCreated(
            **self._base(opp, at), expected_roles=HR_PROFILE, required_roles=HR_PROFILE[2:]))
        return opp

    def person_id(self, opp: str, person: Person) -> str:
        return f"{person.local}@{self.accounts[opp].account_id}"

    def touch(self, opp: str, person: Person, kind: TouchKind, at: datetime, url: str | None = None,
              asset_id: str | None = None) -> str:
        pid = self.person_id(opp, person)
        if pid not in self.members[opp]:
            ref = MemberRef(person_id=pid, email=pid, name=person.name, job_title=person.title,
                            department=person.department, role=person.role, role_source=RoleSource.title)
            self.members[opp][pid] = ref
            self._emit(topics.OPPORTUNITY_EVENTS, MemberAdded(**self._base(opp, at), member=ref))
        self.counter += 1
        touch_id = f"t-{self.token}-{self.counter}"
        self._emit(topics.OPPORTUNITY_EVENTS, TouchAttributed(**self._base(opp, at), touch=TouchRef(
            event_id=touch_id, occurred_at=at, source=SOURCE_OF[kind], kind=kind, person_id=pid, url=url,
            asset_id=asset_id)))
        self.touches[opp].append((pid, at))
        return touch_id

    def change_role(self, opp: str, person: Person, role: BuyingRole, at: datetime) -> None:
        pid = self.person_id(opp, person)
        old = self.members[opp][pid]
        ref = old.model_copy(update={"role": role, "role_source": RoleSource.manual})
        self.members[opp][pid] = ref
        self._emit(topics.OPPORTUNITY_EVENTS, MemberRoleChanged(**self._base(opp, at), member=ref,
                                                                previous_role=old.role))

    def account_touch(self, opp: str, local: str, at: datetime) -> None:
        account = self.accounts[opp]
        self.counter += 1
        self._emit(topics.OPPORTUNITY_EVENTS, AccountTouch(
            event_id=f"{account.account_id}@touch:{self.counter}", opportunity_id=None, solution=None,
            account=account, version=1, occurred_at=at,
            touch=TouchRef(event_id=f"t-{self.token}-{self.counter}", occurred_at=at, source=Source.web,
                           kind=TouchKind.page_view, person_id=f"{local}@{account.account_id}", url="/careers")))

    def breakdown(self, opp: str) -> ScoreBreakdown:
        members = tuple(
            MemberContribution(person_id=pid, name=m.name, department=m.department, role=m.role,
                               engagement=float(sum(1 for p, _ in self.touches[opp] if p == pid)),
                               touches=sum(1 for p, _ in self.touches[opp] if p == pid))
            for pid, m in sorted(self.members[opp].items()))
        covered = tuple(sorted({m.role for m in self.members[opp].values()}))
        return ScoreBreakdown(
            engagement=sum(m.engagement for m in members), breadth=float(len(members)),
            role_coverage=len(set(covered) & set(HR_PROFILE)) / len(HR_PROFILE),
            departments=float(len({m.department for m in self.members[opp].values()})), recency=1.0,
            members=members, covered_roles=covered,
            missing_roles=tuple(r for r in HR_PROFILE if r not in covered))

    def score(self, opp: str, value: float, tier: str, at: datetime) -> OpportunityScore:
        account = self.accounts[opp]
        score = OpportunityScore(opportunity_id=opp, account_id=account.account_id, solution=opp.rsplit(":", 1)[1],
                                 version=self.versions[opp], as_of=at, score=value, tier=tier,
                                 breakdown=self.breakdown(opp), **self.lifecycles.get(opp, {}))
        self._emit(topics.SCORES, score)
        return score

    def signal(self, opp: str, kind: str, at: datetime, score: float, tier: str) -> Signal:
        account = self.accounts[opp]
        breakdown = self.breakdown(opp)
        signal = Signal(signal_id=f"{opp}:{kind}:{self.versions[opp]}", signal=kind, opportunity_id=opp,
                        account_id=account.account_id, account_name=account.name, account_owner=account.owner,
                        solution=opp.rsplit(":", 1)[1], occurred_at=at, score=score, tier=tier,
                        members=breakdown.members, covered_roles=breakdown.covered_roles,
                        missing_roles=breakdown.missing_roles, breakdown=breakdown)
        self._emit(topics.SIGNALS, signal)
        life = self.lifecycles.setdefault(opp, {})
        if kind == "group_formed":
            life.update(status="formed", formed_at=life.get("formed_at") or at)
        elif kind == "stalled":
            life.update(status="stalled", stalled_since=at)
        elif kind == "reactivated":
            life.update(status="formed" if life.get("formed_at") else "forming", stalled_since=None)
        return signal

    def stage(self, opp: str, stage: str, outcome: str, at: datetime, amount: float | None = None) -> None:
        account = self.accounts[opp]
        self._emit(topics.CRM_STAGES, StageChanged(
            event_id=f"stage:{opp}:{stage}", opportunity_id=opp, account_id=account.account_id,
            solution=opp.rsplit(":", 1)[1], stage=stage, outcome=outcome, amount=amount, changed_at=at))

    def encoded(self, start: int = 0) -> dict[str, list[tuple[str, bytes]]]:
        """Per topic (base name), (key, value) pairs in production order, from message `start` on."""
        out: dict[str, list[tuple[str, bytes]]] = {}
        for topic, key, message in self.messages[start:]:
            out.setdefault(topic, []).append((key, encode(message)))
        return out


ELENA = Person("elena.sokolova", "Елена Соколова", "HR-менеджер", Department.hr, BuyingRole.initiator)
SERGEY = Person("sergey.volkov", "Сергей Волков", "IT-директор", Department.it, BuyingRole.technical_validator)
OLGA = Person("olga.petrova", "Ольга Петрова", "Финансовый директор", Department.finance, BuyingRole.budget_holder)
IVAN = Person("ivan.mikhailov", "Иван Михайлов", "Генеральный директор", Department.executive,
              BuyingRole.decision_maker)


def krasnaya_romashka(log: Log, start: float = 0) -> str:
    """Four people of one company, four roles: ONE opportunity with a formed buying group."""
    opp = log.opportunity("romashka.ru", "Красная ромашка", at=day(start))
    log.touch(opp, ELENA, TouchKind.page_view, day(start), url="/solutions/hr/overview")
    log.touch(opp, ELENA, TouchKind.webinar_attended, day(start + 2))
    log.touch(opp, ELENA, TouchKind.download, day(start + 3), asset_id="hr-demo")
    log.touch(opp, SERGEY, TouchKind.page_view, day(start + 4), url="/solutions/hr/api")
    log.touch(opp, SERGEY, TouchKind.webinar_registered, day(start + 5))
    log.score(opp, 38.0, "B", day(start + 5))
    log.signal(opp, "group_forming", day(start + 5), 38.0, "B")
    log.touch(opp, OLGA, TouchKind.download, day(start + 7), asset_id="hr-roi-case")
    log.touch(opp, IVAN, TouchKind.event_registered, day(start + 9))
    log.account_touch(opp, "visitor", day(start + 9, 2))
    log.signal(opp, "group_formed", day(start + 9), 81.5, "A")
    log.score(opp, 81.5, "A", day(start + 9))
    return opp


def argotrubosbyt(log: Log, start: float = 0) -> str:
    """FOUR people, moderate: one download and one webinar each."""
    opp = log.opportunity("argotrubosbyt.ru", "Арготрубосбыт", at=day(start))
    people = [Person("anna", "Анна Смирнова", "HR-директор", Department.hr, BuyingRole.initiator),
              Person("boris", "Борис Орлов", "CIO", Department.it, BuyingRole.technical_validator),
              Person("vera", "Вера Зайцева", "CFO", Department.finance, BuyingRole.budget_holder),
              Person("gleb", "Глеб Попов", "Руководитель отдела закупок", Department.procurement,
                     BuyingRole.procurement)]
    for i, person in enumerate(people):
        log.touch(opp, person, TouchKind.download, day(start + i), asset_id="hr-brochure")
        log.touch(opp, person, TouchKind.webinar_attended, day(start + i + 0.5))
    log.signal(opp, "group_formed", day(start + 3), 64.0, "A")
    log.score(opp, 64.0, "A", day(start + 4))
    return opp


def gazmyasneft(log: Log, start: float = 0) -> str:
    """ONE very active person: 5 downloads, 3 webinars, 10 visits."""
    opp = log.opportunity("gazmyasneft.ru", "Газмяснефть", at=day(start))
    petr = Person("p.kuznetsov", "Пётр Кузнецов", "HR-менеджер", Department.hr, BuyingRole.initiator)
    for i in range(10):
        log.touch(opp, petr, TouchKind.page_view, day(start + i * 0.8), url=f"/solutions/hr/page-{i}")
    for i in range(5):
        log.touch(opp, petr, TouchKind.download, day(start + 1 + i), asset_id=f"hr-asset-{i}")
    for i in range(3):
        log.touch(opp, petr, TouchKind.webinar_attended, day(start + 2 + i * 2))
    log.score(opp, 31.0, "C", day(start + 8))
    return opp
