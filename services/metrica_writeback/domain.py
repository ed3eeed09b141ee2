"""What the write-back learns and what it uploads (pure functions, no I/O).

Links: the ClientIDs of a person. A person event that carries an email and a Metrica
anonymous id (a Tilda form with `_ym_uid`) gives the person's ClientID directly; one that
carries a phone and a ClientID (a Calltouch call's `yaClientId`) gives the phone's ClientID;
one with an email and a phone (a form, a webinar registration) gives the person's phone.
A person's ClientIDs are their own and those of their phones.

Conversions: `group_formed` signals and CRM stage changes to `won` become one conversion per
ClientID of each member, with the Metrica goal of that fact and its event time, uploaded
as Metrica's offline-conversions CSV (ClientId,Target,DateTime[,Price,Currency]; DateTime in
unix seconds; https://yandex.ru/dev/metrika/ru/management/offline-conv).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime

from services.grouping.domain.accounts import person_id
from services.ingest.adapters.ids import client_id_of
from shared.schemas.crm import StageChanged, StageMoved
from shared.schemas.scoring import Signal
from shared.schemas.touch import IdentityEvent, TouchEvent

PHONE_PREFIX = "tel:"


@dataclass(frozen=True)
class Link:
    """kind: "person_client" (person_id -> ClientID), "phone_client" (tel -> ClientID),
    "person_phone" (person_id -> tel)."""

    kind: str
    owner: str
    value: str


def links(event: TouchEvent | IdentityEvent) -> list[Link]:
    p = event.person
    client_id = client_id_of(p.anonymous_id)
    phone = p.user_id if p.user_id and p.user_id.startswith(PHONE_PREFIX) else None
    pid = person_id(p.email) if p.email else None
    out = []
    if client_id and pid:
        out.append(Link("person_client", pid, client_id))
    if client_id and phone:
        out.append(Link("phone_client", phone, client_id))
    if phone and pid:
        out.append(Link("person_phone", pid, phone))
    return out


@dataclass(frozen=True)
class Conversion:
    client_id: str
    target: str
    at: datetime
    price: float | None = None
    currency: str | None = None
    fact_id: str = ""  # the signal or stage change it comes from (dedupe of uploads)

    def key(self) -> str:
        return f"{self.fact_id}|{self.target}|{self.client_id}"


@dataclass(frozen=True)
class Goals:
    group_formed: str = "bg_group_formed"
    opportunity_won: str = "bg_opportunity_won"


Fact = Signal | StageChanged | StageMoved  # a won deal: a CRM's v1 change, or a v2 stage move


@dataclass(frozen=True)
class Reached:
    """A goal the opportunity reached: kept, so that a member's ClientID learnt later still gets it."""

    fact_id: str
    target: str
    at: datetime
    price: float | None = None
    currency: str | None = None

    def conversions(self, client_ids: set[str]) -> list[Conversion]:
        return [Conversion(c, self.target, self.at, self.price, self.currency, self.fact_id)
                for c in sorted(client_ids)]


def reached(message: Fact, goals: Goals) -> Reached | None:
    """The goal a signal or stage change reaches (group formed, deal won); None for the rest."""
    if isinstance(message, Signal) and message.signal == "group_formed":
        return Reached(message.signal_id, goals.group_formed, message.occurred_at)
    if isinstance(message, StageChanged | StageMoved) and message.outcome == "won":
        price = message.amount
        return Reached(message.event_id, goals.opportunity_won, message.changed_at, price,
                       message.currency if price is not None else None)
    return None


def conversions(message: Fact, client_ids: dict[str, set[str]], goals: Goals) -> list[Conversion]:
    """client_ids: member person_id -> their ClientIDs. One conversion per distinct ClientID."""
    goal = reached(message, goals)
    return [] if goal is None else goal.conversions({c for owned in client_ids.values() for c in owned})


def csv_body(batch: list[Conversion]) -> bytes:
    """Metrica's offline-conversions file: the header line, then one row per conversion."""
    with_price = any(c.price is not None for c in batch)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["ClientId", "Target", "DateTime"] + (["Price", "Currency"] if with_price else []))
    for c in batch:
        row = [c.client_id, c.target, str(int(c.at.timestamp()))]
        if with_price:
            price = "" if c.price is None else f"{c.price:.2f}".rstrip("0").rstrip(".")  # never 1.5e+06
            row += [price, c.currency or ""]
        writer.writerow(row)
    return out.getvalue().encode()
