"""The people stage: one profile per person (keyed by normalised email).

A profile gathers what the person's events say about them, each trait kept with the event
time it was stated at so that the newest statement wins whatever the arrival order: name, job
title, company, its INN, stated role, the company domain of identify traits, and counts of content
signals (behaviour). From it come the person's account (domain/accounts.py) and their member
card (department, role, role source); each touch leaves for the account stage tagged with
its solutions. Touches wait in the profile (bounded, TTL in event time) while the account is
unknown: a free-mail person without a company name, or one whose name is being looked up.

The people stage is where every touch of a person arrives, whichever way it came (straight
from the route stage, or released by an identity node), so it is where a touch a client or
ingest sent twice is counted once (`Profile.recent`): the stamps of `stages.py` catch the
pipeline's own redelivery, not a second copy of the event at a new offset of the input (a
request retried after ingest's claim was lost to a Redis flush or a broker restart).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from services.grouping.domain.accounts import AccountRules, NeedsLookup, Resolved, by_inn
from services.grouping.domain.directory import shard_key
from services.grouping.domain.messages import (
    AccountActivity,
    AccountAssigned,
    MemberErased,
    MemberUpdate,
    NameLookup,
    NameRegistration,
    Outbound,
    PeopleInput,
)
from services.grouping.domain.roles import RoleRules
from services.grouping.domain.solutions import Catalog
from shared.schemas.opportunity import AccountRef, Basis, MemberRef, MemberWhy, TouchRef
from shared.schemas.privacy import PersonErased
from shared.schemas.touch import IdentityEvent, TouchEvent


@dataclass(frozen=True)
class PeopleLimits:
    ttl: timedelta = timedelta(days=30)  # touches waiting for an account longer than this are let go
    max_held: int = 200
    max_registered: int = 10
    # A touch id is remembered while its event time is within `dedupe_window` of the person's
    # latest event time, and among the person's `max_remembered` latest touches. The window is
    # ingest's own dedupe window (INGEST_DEDUPE_TTL_SECONDS, 7 days), so a re-send that ingest
    # lets through because its claim was lost is still caught here.
    dedupe_window: timedelta = timedelta(days=7)
    max_remembered: int = 1000


@dataclass(frozen=True)
class PeopleRules:
    accounts: AccountRules
    roles: RoleRules
    catalog: Catalog
    limits: PeopleLimits = PeopleLimits()


class Trait(BaseModel):
    value: str
    at: datetime


class Profile(BaseModel):
    person_id: str
    email: Trait | None = None  # as last written (case and +tags as the person typed them)
    name: Trait | None = None
    job_title: Trait | None = None
    company: Trait | None = None
    company_domain: Trait | None = None
    company_inn: Trait | None = None
    stated_role: Trait | None = None
    sealed: Trait | None = None  # the raw email and name, sealed by ingest (docs/privacy.md)
    signals: dict[str, int] = Field(default_factory=dict)
    account: AccountRef | None = None
    account_by_domain: bool = False
    lookup: str | None = None  # the company name asked of the directory, answer pending
    registered: list[str] = Field(default_factory=list)  # names told to the directory
    held: list[TouchEvent] = Field(default_factory=list)  # touches waiting for an account
    watermark: datetime | None = None
    last_member: MemberRef | None = None  # the member card the account stage last got
    # Touches already applied: digest of the event id -> event time (epoch seconds), bounded
    # by PeopleLimits.dedupe_window and .max_remembered (about 30 bytes of JSON each).
    recent: dict[str, int] = Field(default_factory=dict)
    # Erased (docs/privacy.md): the profile keeps nothing but this mark, and drops what comes later.
    erased: bool = Field(False, exclude_if=lambda erased: not erased)  # left out of the state while False


def _newer(current: Trait | None, value: str | None, at: datetime) -> Trait | None:
    if not value:
        return current
    if current is None or at >= current.at:
        return Trait(value=value, at=at)
    return current


def _absorb(profile: Profile, event: TouchEvent | IdentityEvent) -> None:
    at, person = event.occurred_at, event.person
    profile.email = _newer(profile.email, person.email, at)
    profile.name = _newer(profile.name, person.name, at)
    profile.job_title = _newer(profile.job_title, person.job_title, at)
    profile.company = _newer(profile.company, person.company, at)
    profile.company_inn = _newer(profile.company_inn, person.inn, at)
    profile.stated_role = _newer(profile.stated_role, person.stated_role, at)
    profile.sealed = _newer(profile.sealed, person.sealed, at)
    if isinstance(event, IdentityEvent) and event.company is not None:
        profile.company = _newer(profile.company, event.company.name, at)
        profile.company_domain = _newer(profile.company_domain, event.company.domain, at)
        profile.company_inn = _newer(profile.company_inn, event.company.inn, at)
    if profile.watermark is None or at > profile.watermark:
        profile.watermark = at


def account_basis(profile: Profile) -> Basis | None:
    """How the person's account was decided: their email's domain, a valid INN, or the company
    name they gave (free mail); None while the account is unknown."""
    account = profile.account
    if account is None:
        return None
    if profile.account_by_domain:
        return Basis(rule="domain", detail=account.account_id)
    if account.account_id.startswith("inn:"):
        return Basis(rule="inn", detail=account.account_id.removeprefix("inn:"))
    company = profile.company.value if profile.company else account.name
    return Basis(rule="company_name", detail=f"«{company}» -> {account.account_id}" if company else account.account_id)


def member_card(profile: Profile, roles: RoleRules) -> MemberRef:
    title = profile.job_title.value if profile.job_title else None
    stated = profile.stated_role.value if profile.stated_role else None
    found = roles.classify(title, stated, profile.signals)
    return MemberRef(
        person_id=profile.person_id, email=profile.email.value if profile.email else None,
        name=profile.name.value if profile.name else None, job_title=title,
        department=found.department, role=found.role, role_source=found.source, level=found.level,
        why=MemberWhy(account=account_basis(profile), role=Basis(rule=found.source.value, detail=found.basis)),
        sealed=profile.sealed.value if profile.sealed else None,
    )


def _touch_ref(event: TouchEvent, pid: str) -> TouchRef:
    return TouchRef(
        event_id=event.event_id, occurred_at=event.occurred_at, source=event.source, kind=event.kind,
        person_id=pid, url=event.content.url, title=event.content.title,
        asset_id=event.content.asset_id, topic=event.content.topic, automated=event.automated,
    )


def _resolve(profile: Profile, rules: PeopleRules, at: datetime) -> list[Outbound]:
    """Find the account if it is still unknown; may ask the directory (names stage)."""
    if profile.account is not None or profile.email is None:
        return []
    company = profile.company.value if profile.company else None
    domain = profile.company_domain.value if profile.company_domain else None
    found = rules.accounts.resolve(profile.email.value, company, domain)
    # A valid INN is the account of a company known by name only: `inn:<INN>`, whatever the
    # spelling, and never the account of a same-named company with another INN.
    found = by_inn(found, profile.company_inn.value if profile.company_inn else None, {})
    if isinstance(found, Resolved):
        profile.account, profile.account_by_domain, profile.lookup = found.account, found.by_domain, None
        return []
    if isinstance(found, NeedsLookup) and found.name != profile.lookup:
        profile.lookup = found.name
        return [Outbound(to="names", key=shard_key(found.name), message=NameLookup(
            lookup_id=f"{profile.person_id}|{found.name}", occurred_at=at, person_id=profile.person_id,
            name=found.name, display_name=found.display_name,
        ))]
    return []


def _register(profile: Profile, rules: PeopleRules, at: datetime) -> list[Outbound]:
    """Teach the directory the company name of a person whose domain names the account."""
    if profile.account is None or not profile.account_by_domain or profile.company is None:
        return []
    name = rules.accounts.names.normalise(profile.company.value)
    if not name or name in profile.registered:
        return []
    profile.registered = (profile.registered + [name])[-rules.limits.max_registered:]
    return [Outbound(to="names", key=shard_key(name),
                     message=NameRegistration(occurred_at=at, name=name, account=profile.account))]


def _deliver(profile: Profile, card: MemberRef, rules: PeopleRules, touches: list[TouchEvent]) -> list[Outbound]:
    if profile.account is None:
        return []
    profile.last_member = card
    account = profile.account
    outputs = []
    for t in touches:
        tags = rules.catalog.tag(t.content)
        outputs.append(Outbound(to="accounts", key=account.account_id, message=AccountActivity(
            input_id=t.event_id, occurred_at=t.occurred_at, account=account, member=card,
            touch=_touch_ref(t, profile.person_id), solutions=tags.solutions, solution_basis=dict(tags.reasons),
        )))
    return outputs


def touch_digest(event_id: str) -> str:
    """The key a touch id is remembered under: 8 bytes of BLAKE2b, hex (16 characters).

    A collision among one person's remembered touches (at most `max_remembered`, 1000) has a
    probability below 1e-13."""
    return hashlib.blake2b(event_id.encode(), digest_size=8).hexdigest()


def _seen_before(profile: Profile, touch: TouchEvent, limits: PeopleLimits) -> bool:
    """True when `touch` was applied to this profile already; otherwise remember it.

    Expiry goes by event time (the profile's watermark, the latest event time it has seen), so
    a replay of the same input decides the same. A touch older than the window behind the
    watermark cannot be told from a late new one and counts: a re-send is caught when its
    original is within `dedupe_window` of the person's latest event and among their
    `max_remembered` latest touches.
    """
    digest = touch_digest(touch.event_id)
    if digest in profile.recent:
        return True
    at = int(touch.occurred_at.timestamp())
    watermark = max(profile.watermark or touch.occurred_at, touch.occurred_at)
    horizon = int((watermark - limits.dedupe_window).timestamp())
    recent = {d: t for d, t in profile.recent.items() if t >= horizon}
    if at >= horizon:
        recent[digest] = at
    if len(recent) > limits.max_remembered:
        # The oldest go first; ties by digest, so every replay keeps the same ones.
        recent = dict(sorted(recent.items(), key=lambda e: (e[1], e[0]))[-limits.max_remembered:])
    profile.recent = recent
    return False


def _erase(profile: Profile, message: PersonErased) -> tuple[Profile, list[Outbound]]:
    """Forget the person; the account stage removes them from its opportunities."""
    outputs = []
    if profile.account is not None and not profile.erased:
        outputs.append(Outbound(to="accounts", key=profile.account.account_id, message=MemberErased(
            # No pseudonym in ids: the projection keeps event ids in its rows.
            input_id=f"{message.event_id}>{hashlib.sha1(profile.person_id.encode()).hexdigest()[:12]}",
            occurred_at=message.occurred_at,
            account=profile.account, person_id=profile.person_id,
        )))
    return Profile(person_id=profile.person_id, erased=True), outputs


def step(profile: Profile | None, pid: str, message: PeopleInput,
         rules: PeopleRules) -> tuple[Profile, list[Outbound]]:
    """Apply one person event (or a directory answer) to the profile of `pid`. Updates in place.

    Returns the profile and the messages to send (name lookups and registrations, the
    person's touches and member card for the account stage). A touch whose event id the
    profile has applied already (`_seen_before`) changes nothing and sends nothing.
    """
    profile = profile or Profile(person_id=pid)
    if isinstance(message, PersonErased):
        return _erase(profile, message)
    if profile.erased:
        return profile, []
    if isinstance(message, TouchEvent) and _seen_before(profile, message, rules.limits):
        return profile, []
    input_id = (f"{message.lookup_id}>{message.account.account_id}" if isinstance(message, AccountAssigned)
                else message.event_id)
    outputs: list[Outbound] = []
    touches: list[TouchEvent] = []
    if isinstance(message, AccountAssigned):
        if profile.account is None and profile.lookup == message.name:
            profile.account, profile.account_by_domain, profile.lookup = message.account, False, None
    else:
        _absorb(profile, message)
        if isinstance(message, TouchEvent):
            for signal in rules.catalog.tag(message.content).signals:
                profile.signals[signal] = profile.signals.get(signal, 0) + 1
            touches.append(message)
        outputs += _resolve(profile, rules, message.occurred_at)

    if profile.account is None:
        profile.held += touches
        if profile.watermark is not None:
            profile.held = [t for t in profile.held if profile.watermark - t.occurred_at <= rules.limits.ttl]
        profile.held.sort(key=lambda t: (t.occurred_at, t.event_id))
        del profile.held[: max(0, len(profile.held) - rules.limits.max_held)]
    else:
        waiting = sorted(profile.held + touches, key=lambda t: (t.occurred_at, t.event_id))
        profile.held = []
        card = member_card(profile, rules.roles)
        if waiting:
            outputs += _deliver(profile, card, rules, waiting)
        elif card != profile.last_member:
            profile.last_member = card
            outputs.append(Outbound(to="accounts", key=profile.account.account_id, message=MemberUpdate(
                input_id=input_id, occurred_at=message.occurred_at, account=profile.account, member=card,
            )))
        if not isinstance(message, AccountAssigned):
            outputs += _register(profile, rules, message.occurred_at)
    return profile, outputs
