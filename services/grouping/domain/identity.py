"""Identity stitching: anonymous and user ids -> the person's email.

Every person event is routed (`route`, stateless): one with an email goes straight to the
people stage and tells the nodes of its anonymous and user ids which email they belong to;
one without goes to the node of its first identifier. A node (one per "anon:<id>" or
"user:<id>") holds the events it cannot attribute yet, bounded in number and by a TTL in
event time, and releases them with the email once a link names it (identify call, form,
webinar registration), so pre-form visits count for the group. Nodes tell their aliases
about an email they learn, so anon -> user -> email chains resolve whatever the order.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from services.grouping.domain.accounts import person_id
from services.grouping.domain.messages import IdentityInput, IdentityLink, Outbound
from shared.schemas.privacy import PersonErased
from shared.schemas.touch import IdentityEvent, Person, TouchEvent

PersonEvent = TouchEvent | IdentityEvent


@dataclass(frozen=True)
class IdentityLimits:
    ttl: timedelta = timedelta(days=30)  # an anonymous event older than this (event time) is let go
    max_held: int = 200
    max_aliases: int = 20


def identifiers(person: Person) -> list[str]:
    ids = []
    if person.anonymous_id:
        ids.append(f"anon:{person.anonymous_id}")
    if person.user_id:
        ids.append(f"user:{person.user_id}")
    return ids


def _link_id(*parts: str) -> str:
    return "l:" + hashlib.sha1("\x1f".join(parts).encode()).hexdigest()[:24]


def _to_people(event: PersonEvent, email: str) -> Outbound:
    return Outbound(to="people", key=person_id(email), message=event)


def route(event: PersonEvent | PersonErased) -> list[Outbound]:
    """Where a person event goes first (the router stage keeps no state). An erasure goes to the
    profile of each person id and the node of each identifier it names."""
    if isinstance(event, PersonErased):
        return ([Outbound(to="people", key=person_id(p), message=event) for p in event.person_ids]
                + [Outbound(to="identity", key=i, message=event) for i in event.identifiers])
    ids = identifiers(event.person)
    email = event.person.email
    if email:
        return [_to_people(event, email)] + [
            Outbound(to="identity", key=i, message=IdentityLink(
                link_id=_link_id(event.event_id, i), occurred_at=event.occurred_at, identifier=i,
                email=email, aliases=tuple(a for a in ids if a != i),
            ))
            for i in ids
        ]
    primary, others = ids[0], ids[1:]
    return [Outbound(to="identity", key=primary, message=event)] + [
        Outbound(to="identity", key=i, message=IdentityLink(
            link_id=_link_id(event.event_id, i), occurred_at=event.occurred_at, identifier=i,
            aliases=tuple(a for a in ids if a != i),
        ))
        for i in others
    ]


class IdentityNode(BaseModel):
    identifier: str
    email: str | None = None
    email_at: datetime | None = None  # event time of the link that named the email
    aliases: list[str] = Field(default_factory=list)
    held: list[TouchEvent | IdentityEvent] = Field(default_factory=list)
    watermark: datetime | None = None  # latest event time seen by this node
    # Erased (docs/privacy.md): the node keeps nothing but this mark, and drops what comes later.
    erased: bool = Field(False, exclude_if=lambda erased: not erased)  # left out of the state while False


def _release(event: PersonEvent, email: str) -> Outbound:
    # Its sealed identifiers do not hold the email it is released with: the profile keeps those
    # of an event that named the email itself (docs/privacy.md).
    person = event.person.model_copy(update={"email": email, "sealed": None})
    return _to_people(event.model_copy(update={"person": person}), email)


def _tell(node: IdentityNode, email: str, at: datetime, alias: str, origin: str) -> Outbound:
    return Outbound(to="identity", key=alias, message=IdentityLink(
        link_id=_link_id(origin, alias), occurred_at=at, identifier=alias,
        email=email, aliases=(node.identifier,),
    ))


def step(node: IdentityNode | None, identifier: str, message: IdentityInput,
         limits: IdentityLimits) -> tuple[IdentityNode, list[Outbound]]:
    """Apply one event or link to the node of `identifier`. Updates `node` in place."""
    node = node or IdentityNode(identifier=identifier)
    if isinstance(message, PersonErased):
        return IdentityNode(identifier=identifier, erased=True), []
    if node.erased:
        return node, []
    input_id = message.link_id if isinstance(message, IdentityLink) else message.event_id
    if node.watermark is None or message.occurred_at > node.watermark:
        node.watermark = message.occurred_at
    seen = (message.aliases if isinstance(message, IdentityLink)
            else tuple(i for i in identifiers(message.person) if i != identifier))
    new_aliases = [a for a in seen if a != identifier and a not in node.aliases]
    node.aliases = (node.aliases + new_aliases)[-limits.max_aliases:]

    outputs: list[Outbound] = []
    email_changed = False
    if isinstance(message, IdentityLink):
        if message.email and (node.email_at is None
                              or (message.occurred_at, message.email) > (node.email_at, node.email or "")):
            email_changed = message.email != node.email
            node.email, node.email_at = message.email, message.occurred_at
    elif node.email is None:
        node.held.append(message)
    else:
        outputs.append(_release(message, node.email))

    node.held = [e for e in node.held if node.watermark - e.occurred_at <= limits.ttl]
    node.held.sort(key=lambda e: (e.occurred_at, e.event_id))
    del node.held[: max(0, len(node.held) - limits.max_held)]
    if node.email is not None and node.email_at is not None:
        outputs.extend(_release(e, node.email) for e in node.held)
        node.held = []
        # The identifiers a link names got the same link (router) or sent it (propagation).
        told = [a for a in node.aliases if a not in seen] if email_changed else new_aliases
        outputs.extend(_tell(node, node.email, node.email_at, alias, input_id) for alias in told)
    return node, outputs
