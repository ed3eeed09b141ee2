"""CRM -> us (pure): what a changed deal or company means to the engine.

- A deal that carries our opportunity id and whose stage, outcome or amount changed becomes a
  stage report for the read API (`POST /v1/opportunities/{id}/stage`, which writes it to
  bg.crm-stage.* for the projection's funnel and attribution).
- A company becomes a `CrmCompany` on bg.crm-links.v1 with its INN, when valid.
- A contact on a deal that the connector did not attach itself was linked by a person: a
  `CrmContactLinked` on bg.crm-links.v1, and, when the deal is one of our opportunities and the
  contact has an address, a `MemberLinked` correction on bg.correction.v1, which grouping
  applies like a link made on our own page (DOMAIN.md: manual work outranks the rules).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml

from services.crm.domain.records import Company, Contact, Deal
from shared.inn import inn as valid_inn
from shared.schemas.correction import MemberLinked
from shared.schemas.crm_sync import CrmCompany, CrmContactLinked

STAGES_FILE = Path(__file__).resolve().parents[1] / "config" / "stages.yaml"
_PIPELINE_PREFIX = re.compile(r"^C\d+:")


def digest(*parts: object) -> str:
    """A short stable digest of the parts (ids of facts that a retry must repeat exactly)."""
    return hashlib.sha256("\x1f".join("" if p is None else str(p) for p in parts).encode()).hexdigest()[:16]


class UnmappedStage(ValueError):
    """The deal's stage has no entry in the stage map: an operator must add it."""


@dataclass(frozen=True)
class StageMap:
    """CRM stage id -> the stage name reported to the read API."""

    by_id: Mapping[str, str]

    def stage_of(self, deal: Deal) -> str:
        """'won' / 'lost' from the deal's semantic, else the mapped name of its stage (a
        Bitrix24 pipeline's "C1:X" tried as is, then as "X"). Raises UnmappedStage."""
        if deal.semantic != "open":
            return deal.semantic
        for key in (deal.stage_id, _PIPELINE_PREFIX.sub("", deal.stage_id)):
            if key in self.by_id:
                return self.by_id[key]
        raise UnmappedStage(f"{deal.crm} stage {deal.stage_id!r} of deal {deal.deal_id} is not in the stage map "
                            "(services/crm/config/stages.yaml, CRM_STAGE_MAP)")


def load_stage_map(crm: str, overrides: Mapping[str, str] | None = None, path: Path = STAGES_FILE) -> StageMap:
    shipped = (yaml.safe_load(path.read_text()) or {}).get(crm) or {}
    return StageMap({str(k): str(v) for k, v in {**shipped, **(overrides or {})}.items()})


@dataclass(frozen=True)
class StageReport:
    """The body of POST /v1/opportunities/{opportunity_id}/stage, and the state it reports
    (`state`: what the connector remembers per deal to report each change once)."""

    opportunity_id: str
    stage: str
    amount: float | None
    currency: str | None
    changed_at: datetime
    source: str
    state: str
    send: bool = True  # False: only remember the state (a deal's first stage is nobody's move)

    def body(self) -> dict:
        out = {"stage": self.stage, "changed_at": self.changed_at.isoformat(), "source": self.source}
        if self.amount is not None:
            out["amount"] = self.amount
            if self.currency:
                out["currency"] = self.currency
        return out


def stage_report(deal: Deal, stages: StageMap, last_state: str | None, now: datetime) -> StageReport | None:
    """The report of a deal's change, or None when the deal is not one of ours (no opportunity
    id) or nothing reported changed since `last_state`. The amount goes with a won deal or an
    open one that has it (the CRM owns the deal's value); `changed_at` is when the stage moved
    (else the modification), never later than `now` (the API refuses future times; a CRM's
    clock ahead of ours is clamped here, at the edge). A deal seen for the first time that never
    left the stage it was created in gives a report with `send` False: the pipeline's first stage
    is the CRM's default, not a salesperson's move. Raises UnmappedStage."""
    if not deal.opportunity_id:
        return None
    stage = stages.stage_of(deal)
    amount = deal.amount if deal.amount else None
    currency = deal.currency.upper() if amount is not None and deal.currency else None
    state = digest(stage, amount, currency)
    if state == last_state:
        return None
    changed_at = min(deal.moved_at or deal.modified_at, now)
    send = not (last_state is None and deal.never_moved and deal.semantic == "open")
    return StageReport(deal.opportunity_id, stage, amount, currency, changed_at, deal.crm, state, send)


def company_message(company: Company) -> CrmCompany:
    """The company with its requisites; an INN that fails its checksum is left out (a mistyped
    INN must never join two companies), as are KPP and OGRN that are not digits."""
    inn = valid_inn(company.inn) if company.inn else None
    kpp = company.kpp if company.kpp and company.kpp.isdigit() and len(company.kpp) == 9 else None
    ogrn = company.ogrn if company.ogrn and company.ogrn.isdigit() and len(company.ogrn) in (13, 15) else None
    websites = tuple(dict.fromkeys(w.strip() for w in company.websites if w and w.strip()))
    return CrmCompany(
        event_id=f"{company.crm}:company:{company.company_id}:"
                 + digest(company.name, inn, kpp, ogrn, websites, company.modified_at.isoformat()),
        crm=company.crm, company_id=company.company_id, name=company.name or None, inn=inn, kpp=kpp, ogrn=ogrn,
        domains=websites, changed_at=company.modified_at)


def manual_links(deal: Deal, contacts: Iterable[Contact], attached: set[str],
                 company_inn: Mapping[str, str | None]) -> list[CrmContactLinked]:
    """The deal's contacts the connector did not attach (`attached`: the contact ids it wrote
    to this deal) as links made by a person. `company_inn`: company id -> its valid INN. The
    event id is the deal, the contact and the person's data, so re-reading the same deal
    repeats the same ids."""
    out = []
    for contact in sorted(contacts, key=lambda c: c.contact_id):
        if contact.contact_id in attached or contact.contact_id not in deal.contact_ids:
            continue
        email = contact.emails[0] if contact.emails else None
        inn = company_inn.get(contact.company_id) if contact.company_id else None
        out.append(CrmContactLinked(
            event_id=f"{deal.crm}:deal:{deal.deal_id}:contact:{contact.contact_id}:"
                     + digest(deal.opportunity_id, email, contact.name, contact.job_title, contact.company_id, inn),
            crm=deal.crm, deal_id=deal.deal_id, opportunity_id=deal.opportunity_id, contact_id=contact.contact_id,
            email=email, name=contact.name or None, job_title=contact.job_title or None,
            company_id=contact.company_id, company_inn=inn, linked_at=deal.modified_at))
    return out


def member_link(link: CrmContactLinked, person_id: str | None) -> MemberLinked | None:
    """The correction a salesperson's link in the CRM stands for: the contact joins the deal's
    opportunity by hand (author: the CRM's name; role: the one the rules give the person).
    `person_id`: the contact's address as the log carries it (its pseudonym, docs/privacy.md).
    None when the deal is not one of ours (no opportunity id) or the contact has no address
    (grouping knows people by their address). The correction id is the link's event id, so a
    re-read of the same deal is a duplicate."""
    if link.opportunity_id is None or link.email is None or person_id is None:
        return None
    return MemberLinked(
        correction_id=link.event_id, opportunity_id=link.opportunity_id, person_id=person_id,
        author=link.crm, made_at=link.linked_at,
        reason=f"привязан к сделке {link.deal_id} в {link.crm} / linked to deal {link.deal_id} in {link.crm}")
