"""The connectors' pure core: CRM deals to stage reports, companies with INN, manual links;
opportunities to deal plans, signals to tasks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.crm.domain.inbound import (
    StageMap,
    UnmappedStage,
    company_message,
    load_stage_map,
    manual_links,
    member_link,
    stage_report,
)
from services.crm.domain.outbound import deal_plan, missing_text, task_plan, wanted
from services.crm.domain.records import Company, Contact, Deal
from shared.schemas.scoring import MemberContribution, Signal

T = datetime(2026, 10, 20, 9, 0, tzinfo=UTC)
NOW = T + timedelta(hours=1)


def deal(**kw) -> Deal:
    base = dict(crm="bitrix24", deal_id="7", title="HR", stage_id="PREPARATION", semantic="open",
                modified_at=T, moved_at=T - timedelta(minutes=5), amount=None, currency="RUB",
                opportunity_id="romashka.ru:hr", contact_ids=("19", "21"), company_id="3", owner_id="1")
    return Deal(**{**base, **kw})


def test_shipped_stage_map_maps_bitrix24_default_pipeline_and_its_copies() -> None:
    stages = load_stage_map("bitrix24")
    assert stages.stage_of(deal()) == "proposal"
    assert stages.stage_of(deal(stage_id="C4:EXECUTING")) == "contract"  # another pipeline: prefix dropped
    assert stages.stage_of(deal(stage_id="C4:LOSE", semantic="lost")) == "lost"
    assert load_stage_map("bitrix24", {"C4:EXECUTING": "closing"}).stage_of(deal(stage_id="C4:EXECUTING")) == "closing"
    with pytest.raises(UnmappedStage, match="C4:UC_1X2Y"):
        stages.stage_of(deal(stage_id="C4:UC_1X2Y"))
    # amoCRM: won and lost are 142 and 143 in every pipeline; open statuses are the account's own
    amo = load_stage_map("amocrm", {"38307946": "new"})
    assert amo.stage_of(deal(crm="amocrm", stage_id="142", semantic="won")) == "won"
    assert amo.stage_of(deal(crm="amocrm", stage_id="38307946")) == "new"


def test_stage_report_once_per_change_with_the_move_time_and_the_amount() -> None:
    stages = StageMap({"PREPARATION": "proposal"})
    first = stage_report(deal(), stages, None, NOW)
    assert first is not None and first.body() == {
        "stage": "proposal", "changed_at": (T - timedelta(minutes=5)).isoformat(), "source": "bitrix24"}
    assert stage_report(deal(modified_at=T + timedelta(minutes=9)), stages, first.state, NOW) is None  # our own write
    won = stage_report(deal(stage_id="WON", semantic="won", amount=1_500_000.0, moved_at=T), stages, first.state, NOW)
    assert won is not None and won.body() == {"stage": "won", "changed_at": T.isoformat(), "source": "bitrix24",
                                              "amount": 1_500_000.0, "currency": "RUB"}
    assert stage_report(deal(opportunity_id=None), stages, None, NOW) is None  # not one of ours


def test_a_crm_clock_ahead_is_clamped_to_now() -> None:
    ahead = deal(moved_at=NOW + timedelta(minutes=3))
    assert stage_report(ahead, StageMap({"PREPARATION": "proposal"}), None, NOW).changed_at == NOW


def test_company_keeps_a_valid_inn_only() -> None:
    good = company_message(Company("bitrix24", "3", T, "ООО «Красная ромашка»", "7707083893", "773601001",
                                   "1027700132195", ("romashka.ru",)))
    assert (good.inn, good.kpp, good.ogrn, good.domains) == ("7707083893", "773601001", "1027700132195",
                                                             ("romashka.ru",))
    bad = company_message(Company("bitrix24", "3", T, "Ромашка", "7707083894", "12", "x"))
    assert (bad.inn, bad.kpp, bad.ogrn) == (None, None, None)
    assert bad.event_id != good.event_id
    assert company_message(Company("bitrix24", "3", T, "ООО «Красная ромашка»", "7707 083 893", "773601001",
                                   "1027700132195", ("romashka.ru",))).event_id == good.event_id


def test_contacts_a_person_linked_are_the_ones_the_connector_did_not_attach() -> None:
    contacts = [Contact("bitrix24", "19", "Елена Соколова", ("e.sokolova@romashka.ru",), "HR", "3"),
                Contact("bitrix24", "21", "Ольга Петрова", ("o.petrova@romashka.ru",), "CFO", "3")]
    links = manual_links(deal(), contacts, attached={"19"}, company_inn={"3": "7707083893"})
    assert [(x.contact_id, x.email, x.company_inn, x.opportunity_id) for x in links] == [
        ("21", "o.petrova@romashka.ru", "7707083893", "romashka.ru:hr")]
    again = manual_links(deal(modified_at=T), contacts, attached={"19"}, company_inn={"3": "7707083893"})
    assert again[0].event_id == links[0].event_id


def test_a_contact_linked_in_the_crm_is_a_link_by_hand_of_ours() -> None:
    contacts = [Contact("bitrix24", "21", "Ольга Петрова", ("o.petrova@romashka.ru",), "CFO", "3"),
                Contact("bitrix24", "22", "Без почты", (), "CEO", "3")]
    with_address, without = manual_links(deal(contact_ids=("21", "22")), contacts, attached=set(), company_inn={})
    pseudonym = "p0123456789abcdef0123@romashka.ru"  # her address as the log carries it (docs/privacy.md)
    fix = member_link(with_address, pseudonym)
    assert (fix.type, fix.opportunity_id, fix.person_id, fix.author, fix.correction_id, fix.made_at, fix.role) == (
        "member_linked", "romashka.ru:hr", pseudonym, "bitrix24", with_address.event_id,
        with_address.linked_at, None)
    assert "o.petrova" not in fix.model_dump_json()  # the raw address never goes on the log
    assert member_link(without, None) is None  # grouping knows people by their address
    assert member_link(with_address.model_copy(update={"opportunity_id": None}), pseudonym) is None  # not our deal


OPPORTUNITY = {
    "opportunity_id": "romashka.ru:hr", "account_id": "romashka.ru", "account_name": "Красная ромашка",
    "solution": "hr", "score": 71.04, "tier": "A", "formed_at": None,
    "missing_roles": ["decision_maker"],
    "members": [
        {"person_id": "s.volkov@romashka.ru", "email": "s.volkov@romashka.ru", "name": "Сергей Волков",
         "job_title": "IT-директор", "department": "it", "role": "technical_validator"},
        {"person_id": "user:42", "email": None, "name": None, "job_title": None, "department": "unknown",
         "role": "unknown"},
        {"person_id": "e.sokolova@romashka.ru", "email": "e.sokolova@romashka.ru", "name": "Елена Соколова",
         "job_title": "HR-менеджер", "department": "hr", "role": "initiator"},
    ],
}


def test_deal_plan_of_an_opportunity() -> None:
    plan = deal_plan(OPPORTUNITY, "ru")
    assert plan.title.endswith("— Красная ромашка") and plan.score == 71.0 and plan.tier == "A"
    assert [c.email for c in plan.contacts] == ["e.sokolova@romashka.ru", "s.volkov@romashka.ru"]  # with an address
    assert plan.group_text.splitlines()[0].startswith("Елена Соколова — Инициатор")
    assert missing_text(plan, "ru") == "Принимает решение" and missing_text(plan, "en") == "Decision maker"
    assert deal_plan({**OPPORTUNITY, "score": 71.01}).fingerprint == plan.fingerprint  # same written value
    assert deal_plan({**OPPORTUNITY, "score": 75.0}).fingerprint != plan.fingerprint
    assert wanted(OPPORTUNITY, "created") and not wanted(OPPORTUNITY, "formed")
    assert wanted({**OPPORTUNITY, "formed_at": T.isoformat()}, "formed")


def signal(kind: str, backfill: bool = False) -> Signal:
    member = MemberContribution(person_id="e.sokolova@romashka.ru", name="Елена Соколова", department="hr",
                                role="initiator", engagement=3.0, touches=3)
    return Signal(signal_id=f"romashka.ru:hr:{kind}", signal=kind, opportunity_id="romashka.ru:hr",
                  account_id="romashka.ru", account_name="Красная ромашка", solution="hr", occurred_at=T,
                  score=71.0, tier="A", members=(member,), missing_roles=("budget_holder",), backfill=backfill)


def test_tasks_for_live_group_formed_and_role_gap_only() -> None:
    formed = task_plan(signal("group_formed"), "ru")
    assert formed is not None and formed.title == "Сформировалась группа закупки: Красная ромашка"
    assert formed.description.endswith("[bg-signal:romashka.ru:hr:group_formed]")
    assert "Владелец бюджета" in formed.description and formed.due == T + timedelta(days=1)
    gap = task_plan(signal("role_gap"), "en", timedelta(hours=4))
    assert gap.title == "Key role missing in the group: Красная ромашка" and gap.due == T + timedelta(hours=4)
    assert task_plan(signal("group_formed", backfill=True)) is None
    assert task_plan(signal("stalled")) is None and task_plan(signal("group_forming")) is None


def test_a_deal_never_moved_from_its_first_stage_is_remembered_not_reported() -> None:
    stages = StageMap({"NEW": "new", "PREPARATION": "proposal"})
    fresh = stage_report(deal(stage_id="NEW", never_moved=True), stages, None, NOW)
    assert fresh is not None and not fresh.send
    moved = stage_report(deal(stage_id="PREPARATION"), stages, fresh.state, NOW)
    assert moved is not None and moved.send
    # Seen first after it moved and came back: a salesperson's move, reported.
    assert stage_report(deal(stage_id="NEW"), stages, None, NOW).send
