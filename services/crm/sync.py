"""The connector's loops, around the pure core (domain/) and one CRM client (adapters/).

CRM -> us
- `receive`: a webhook's notices go to Redis (`pending`) before the answer, so a crash loses none;
  `drain` handles them: fetch the record, map it, report or publish it, then forget the notice.
- `reconcile` (every CRM_RECONCILE_SECONDS): every deal modified since the last pass (less an
  overlap) is handled the same way, so a webhook that never came (Bitrix24 does not repeat
  deliveries) is recovered.
- A deal with our opportunity id whose stage, outcome or amount changed is reported through the
  read API's stage endpoint; the state reported is remembered only after the API accepted it.
  Companies (with a valid INN) and contacts a person linked to a deal go to bg.crm-links.v1,
  acknowledged by Kafka before the digest is remembered.

Us -> CRM (docs/exactly-once.md: effects with their own identity, acknowledged before state)
- `follow_feed`: the read API's change feed; each changed opportunity that should have a deal
  (CRM_CREATE_DEALS_FROM) is written: the deal found by our opportunity id in its field
  (searched in the CRM before any create, so a crash between the CRM's create and our
  bookkeeping never makes a second deal), created if none, updated when a written field
  changed; the group's members attached as contacts (found by address, else created). The
  cursor moves only after the page's writes were acknowledged.
- `on_signals`: live `group_formed` and `role_gap` signals (bg.signal.v1) make a task for the
  deal's owner; the task's description holds the signal id, searched before creating; the
  offsets are committed after the batch's tasks exist.

What the connector cannot use goes to bg.crm.dlq.v1 with the reason, and it goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import httpx
from aiokafka import AIOKafkaProducer
from pydantic import ValidationError

from services.crm.adapters.base import CrmClient
from services.crm.domain.inbound import (
    StageMap,
    UnmappedStage,
    company_message,
    manual_links,
    member_link,
    stage_report,
)
from services.crm.domain.outbound import deal_plan, task_plan, wanted
from services.crm.domain.records import Deal, Notice, Written
from services.crm.readapi import ReadApi, ReadApiError
from services.crm.settings import ConnectorSettings
from services.crm.state import State
from services.crm.transport import CrmRefused, CrmUnavailable
from services.grouping.domain.accounts import person_id
from shared import topics
from shared.codec import encode
from shared.privacy.person import protected_contact
from shared.privacy.vault import Vault
from shared.schemas.deadletter import DeadLetter
from shared.schemas.scoring import Signal

log = logging.getLogger("crm.sync")


class NotYetVisible(Exception):
    """The read API does not show the opportunity (or its formed group) yet: the projection
    reads the same topics and will."""


# What a later attempt may get past: the CRM (after its own retries), the read API, the network,
# the projection catching up.
RETRYABLE = (CrmUnavailable, httpx.HTTPError, OSError, NotYetVisible)
Clock = Callable[[], datetime]
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # the first reconciliation reads every deal


class Connector:
    def __init__(self, crm: CrmClient, api: ReadApi, state: State, producer: AIOKafkaProducer,
                 settings: ConnectorSettings, stages: StageMap, vault: Vault,
                 clock: Clock = lambda: datetime.now(UTC)) -> None:
        self.crm = crm
        self.vault = vault
        self.api = api
        self.state = state
        self.producer = producer
        self.s = settings
        self.stages = stages
        self.clock = clock  # the edge's clock: clamps CRM times, dates reconciliation passes
        self.locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.service = f"crm-{crm.name}"

    # ---------------------------------------------------------------- dead letters
    async def dead_letter(self, reason: str, detail: str, key: str, payload: str) -> None:
        letter = DeadLetter(service=self.service, reason=reason, detail=detail[:2000], failed_at=self.clock(),
                            key=key, payload=payload[:100_000])
        await self.producer.send_and_wait(topics.CRM_DLQ.name, key=key.encode(), value=encode(letter))
        log.warning("dead-lettered", extra={"reason": reason, "key": key})

    async def guarded(self, key: str, work: Awaitable[object]) -> bool:
        """Run one record's work; an outage (RETRYABLE) propagates, so the record stays to be
        done; anything else (the CRM refusing the request, a record that does not map) is
        dead-lettered with the reason and the caller goes on. -> whether it was done."""
        try:
            await work
            return True
        except RETRYABLE:
            raise
        except CrmRefused as exc:
            await self.dead_letter("crm_refused", f"the CRM refused the request: {exc}", key, key)
        except ReadApiError as exc:
            await self.dead_letter("read_api_refused", f"the read API refused the request: {exc}", key, key)
        except Exception as exc:  # one bad record must not stop the connector
            log.exception("record not usable", extra={"key": key})
            await self.dead_letter("unusable_record", repr(exc), key, key)
        return False

    # ---------------------------------------------------------------- CRM -> us
    async def receive(self, notices: list[Notice]) -> None:
        await self.state.add_pending([f"{n.entity}:{n.record_id}" for n in notices if not n.deleted])

    async def drain(self) -> int:
        """Handle the pending notices. A CRM or read-API outage (RETRYABLE) stops the pass and
        leaves them pending; a record the CRM refuses to give is dead-lettered. -> handled."""
        handled = 0
        for item in await self.state.pending():
            await self.guarded(f"{self.crm.name}:{item}", self._notice(item))
            await self.state.done_pending(item)
            handled += 1
        return handled

    async def _notice(self, item: str) -> None:
        entity, _, record_id = item.partition(":")
        if entity == "deal":
            deal = await self.crm.get_deal(record_id)
            if deal is not None:
                await self.on_deal(deal)
        elif entity == "company":
            await self.on_company(record_id)
        # a contact alone changes nothing we keep: its links are read through its deals

    async def reconcile(self) -> int:
        """One pass over the deals modified since the last pass. -> deals handled."""
        started = self.clock()
        last = await self.state.reconciled_until()
        since = last - timedelta(seconds=self.s.reconcile_overlap_seconds) if last else EPOCH
        count = 0
        async for deal in self.crm.changed_deals(since):
            await self.guarded(f"{deal.crm}:deal:{deal.deal_id}", self.on_deal(deal))
            count += 1
        await self.state.set_reconciled_until(started)
        return count

    async def on_deal(self, deal: Deal) -> None:
        """A webhook and a reconciliation pass may see one deal at once: one at a time per deal."""
        async with self.locks[f"deal:{deal.deal_id}"]:
            await self._on_deal(deal)

    async def _on_deal(self, deal: Deal) -> None:
        if deal.opportunity_id:  # a deal the connector is writing: after its baseline (write_deal)
            async with self.locks[deal.opportunity_id]:
                await self._report(deal)
        await self._links(deal)

    async def _report(self, deal: Deal) -> None:
        try:
            report = stage_report(deal, self.stages, await self.state.reported(deal.deal_id), self.clock())
        except UnmappedStage as exc:
            await self.dead_letter("unmapped_stage", str(exc), f"{deal.crm}:deal:{deal.deal_id}", repr(deal))
            report = None
        if report is not None and not report.send:
            await self.state.set_reported(deal.deal_id, report.state)
        elif report is not None:
            try:
                answer = await self.api.report_stage(report.opportunity_id, report.body())
                log.info("stage reported", extra={"deal_id": deal.deal_id, "opportunity_id": report.opportunity_id,
                                                  "stage": report.stage, "result": answer.get("result")})
            except ReadApiError as exc:
                await self.dead_letter("stage_refused", f"the read API refused the stage change: {exc}",
                                       f"{deal.crm}:deal:{deal.deal_id}", str(report.body()))
            await self.state.set_reported(deal.deal_id, report.state)

    async def _links(self, deal: Deal) -> None:
        """The deal's company (with its INN) and the contacts a person linked, to bg.crm-links.v1."""
        company_inn: dict[str, str | None] = {}
        if deal.company_id:
            company_inn[deal.company_id] = await self.on_company(deal.company_id)
        attached = await self.state.attached(deal.deal_id)
        foreign = [c for c in deal.contact_ids if c not in attached]
        if not foreign:
            return
        contacts = await self.crm.get_contacts(foreign)
        for contact in contacts:
            if contact.company_id and contact.company_id not in company_inn:
                company_inn[contact.company_id] = await self.on_company(contact.company_id)
        try:
            links = manual_links(deal, contacts, attached, company_inn)
        except ValidationError as exc:
            await self.dead_letter("invalid_contact", str(exc), f"{deal.crm}:deal:{deal.deal_id}", repr(contacts))
            return
        for link in links:
            # The log carries the contact's pseudonym (grouping knows people by it) and their
            # address and name sealed under their key, never in clear; a contact without an
            # address has no key to seal a name under, and nobody to link: the name stays off.
            person, sealed = (await protected_contact(self.vault, link.email, link.name, person_id)
                              if link.email else (None, None))
            on_log = link.model_copy(update={"email": person, "name": None, "sealed": sealed})
            await self._publish(f"link:{deal.deal_id}:{link.contact_id}", on_log, link.event_id)
            if (correction := member_link(link, person)) is not None:
                await self._publish(f"member:{deal.deal_id}:{link.contact_id}", correction, correction.correction_id,
                                    topics.CORRECTIONS)

    async def on_company(self, company_id: str) -> str | None:
        """Publish the company when it changed; -> its valid INN (None when none)."""
        company = await self.crm.get_company(company_id)
        if company is None:
            return None
        try:
            message = company_message(company)
        except ValidationError as exc:
            await self.dead_letter("invalid_company", str(exc), f"{self.crm.name}:company:{company_id}", repr(company))
            return None
        await self._publish(f"company:{company_id}", message, message.event_id)
        return message.inn

    async def _publish(self, key: str, message, message_id: str, topic: topics.Topic = topics.CRM_LINKS) -> None:
        """Write `message` to `topic` unless the same content was written under `key` before:
        `message_id` is its event or correction id, a digest of the content."""
        if await self.state.published(key) == message_id:
            return
        await self.producer.send_and_wait(topic.name, key=message.key().encode(), value=encode(message))
        await self.state.set_published(key, message_id)

    # ---------------------------------------------------------------- us -> CRM
    async def follow_feed(self) -> int:
        """One page of the change feed. -> opportunities written."""
        cursor = await self.state.cursor()
        page = await self.api.changes(cursor)
        written = 0
        for item in page["items"]:
            if wanted(item, self.s.create_deals_from) and await self.guarded(
                    item["opportunity_id"], self.write_deal(item["opportunity_id"])):
                written += 1
        if page["next_cursor"] != cursor:
            await self.state.set_cursor(page["next_cursor"])
        return written

    async def write_deal(self, opportunity_id: str) -> Written | None:
        """Create or update the opportunity's deal and attach its group. None when the read API
        does not know the opportunity (yet) or it should have no deal yet."""
        async with self.locks[opportunity_id]:
            detail = await self.api.opportunity(opportunity_id)
            if detail is None or not wanted(detail, self.s.create_deals_from):
                return None
            plan = deal_plan(detail, self.s.lang)
            deal_id = await self.state.deal_of(opportunity_id) or await self.crm.find_deal(opportunity_id)
            created = updated = False
            if deal_id is None:
                deal_id = await self.crm.create_deal(plan, self.s.lang)
                created = True
                log.info("deal created", extra={"deal_id": deal_id, "opportunity_id": opportunity_id})
            await self.state.set_deal_of(opportunity_id, deal_id)
            if await self.state.reported(deal_id) is None:
                await self._baseline(deal_id)
            if not created and await self.state.fingerprint(opportunity_id) != plan.fingerprint:
                await self.crm.update_deal(deal_id, plan, self.s.lang)
                updated = True
            contact_ids = []
            for contact in plan.contacts:  # deal_plan keeps the members with an address
                cid = await self.crm.find_contact(contact.email or "") or await self.crm.create_contact(
                    contact, self.s.lang)
                contact_ids.append(cid)
            # Ours before the CRM write: a crash after it must not make them look linked by a person.
            await self.state.add_attached(deal_id, contact_ids)
            if contact_ids:
                deal = await self.crm.get_deal(deal_id)
                if deal is not None:
                    await self.crm.link_contacts(deal, contact_ids)
            await self.state.set_fingerprint(opportunity_id, plan.fingerprint)
            return Written(deal_id, created, updated, tuple(contact_ids))

    async def _baseline(self, deal_id: str) -> None:
        """The stage a deal the connector made starts in (its pipeline's first) is the CRM's
        default, not a salesperson's move: remembered as reported, so only later moves are."""
        deal = await self.crm.get_deal(deal_id)
        if deal is None:
            return
        try:
            report = stage_report(deal, self.stages, None, self.clock())
        except UnmappedStage:
            return  # reported (and dead-lettered) when it moves
        if report is not None:
            await self.state.set_reported(deal_id, report.state)

    async def on_signal(self, signal: Signal) -> str | None:
        """The task of a live group_formed / role_gap signal, once. -> the task id (None: no task)."""
        plan = task_plan(signal, self.s.lang, timedelta(hours=self.s.task_due_hours))
        if plan is None or await self.state.task_done(signal.signal_id):
            return None
        written = await self.write_deal(signal.opportunity_id)
        deal_id = written.deal_id if written else await self.state.deal_of(signal.opportunity_id)
        if deal_id is None:
            raise NotYetVisible(f"the read API shows no deal-worthy opportunity {signal.opportunity_id!r} yet")
        deal = await self.crm.get_deal(deal_id)
        if deal is None:
            raise LookupError(f"deal {deal_id} of {signal.opportunity_id!r} is gone from the CRM")
        task_id = await self.crm.find_task(deal_id, plan.marker)
        if task_id is None:
            task_id = await self.crm.create_task(deal, plan)
            log.info("task created", extra={"task_id": task_id, "deal_id": deal_id, "signal_id": signal.signal_id})
        await self.state.set_task_done(signal.signal_id)
        return task_id


