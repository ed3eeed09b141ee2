"""The funnel, forecast and analytics pages' pure parts (web/funnel_views.py, funnel_text.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.projection import forecast as fc
from services.projection.funnel import configured
from services.projection.web import funnel_views as fv
from services.projection.web.funnel_text import FUNNEL_TEXT, FunnelTranslator

pytestmark = pytest.mark.unit

ru, en = FunnelTranslator("ru", configured()), FunnelTranslator("en", configured())
AT = datetime(2026, 9, 10, 9, tzinfo=UTC)


def row(oid: str, stage: str, outcome: str = "open", **kw) -> dict:
    return {"opportunity_id": oid, "account_id": f"{oid}.ru", "account_name": oid.title(), "solution": "hr",
            "stage": stage, "outcome": outcome, "status": "formed", "amount": kw.get("amount"), "currency": "RUB",
            "expected_close_on": kw.get("close"), "engaged_members": 3, "team": kw.get("team", {}),
            "criteria": kw.get("criteria", []), "proposed_stage": kw.get("proposed")}


def test_every_dynamic_key_of_the_pages_exists_in_both_languages():
    keys = ([f"fc.{p}" for p in ("month", "quarter")] + [f"fc.by.{b}" for b in ("none", "member", "solution", "stage")]
            + [f"q.result.{r}" for r in ("applied", "stale", "duplicate", "pending", "invalid")]
            + [f"an.cohort.{c}" for c in ("early", "late", "never")]
            + [f"funnel.by_{a}" for a in ("rules", "person", "crm")])
    assert [k for k in keys if k not in FUNNEL_TEXT] == []
    assert ru.stage("potential_deal") == "Потенциальная сделка" and en.stage("warm") == "Warm"
    assert ru.team_role("se") == "Пресейл-инженер (SE)" and en.criterion("pain_confirmed") == "Pain confirmed"
    assert ru("nav.priorities") == "Приоритеты"  # the pages' common text still comes from i18n.py


def test_the_board_puts_each_open_opportunity_in_its_stage_and_counts_the_closed_ones():
    criteria = [{"code": "group_formed", "derived": True, "holds": True, "since": AT.isoformat()},
                {"code": "pain_confirmed", "derived": False, "holds": False, "since": None}]
    board = fv.board(configured(), [
        row("romashka", "warm", amount=1_200_000.0, close=date(2026, 11, 20), team={"ae": "orlova"},
            criteria=criteria, proposed="potential_deal"),
        row("old", "qualified-by-crm"), row("argo", "won", "won"), row("gaz", "lost", "lost")], ru)
    columns = {c.code: c for c in board.columns}
    assert list(columns) == ["target_base", "cold", "warm", "potential_deal", "closing"]
    (card,) = columns["warm"].cards
    assert (card.owner, card.amount, card.close_on, card.proposed) == (
        "orlova", "1\u202f200\u202f000 RUB", "20.11.2026", "Потенциальная сделка")
    assert [(k.label, k.holds, k.derived, k.since) for k in card.criteria] == [
        ("Группа закупки сформирована", True, True, "2026-09-10"), ("Боль подтверждена", False, False, "")]
    assert [c.opportunity_id for c in columns["target_base"].cards] == ["old"]  # unknown stage: first column
    assert board.closed == [("won", "Выиграна", 1), ("lost", "Проиграна", 1)]


def test_history_newest_first_with_who_why_and_the_group_at_the_move():
    rows = [{"changed_at": AT, "from_stage": "cold", "stage": "warm", "crm_stage": None, "author": "rules",
             "changed_by": "rules", "reason": "x", "criteria": ["group_formed"], "engaged_members": 4,
             "members_count": 4},
            {"changed_at": AT, "from_stage": "warm", "stage": "won", "crm_stage": "Closed Won", "author": "crm",
             "changed_by": "bitrix24", "reason": None, "criteria": [], "engaged_members": 5, "members_count": 6}]
    first, second = fv.history(en, rows)
    assert (first.move, first.author, first.who, first.engaged) == ("Warm → Won (Closed Won)", "CRM", "bitrix24",
                                                                    "5 / 6")
    assert (second.why, second.author) == ("Buying group formed", "rules")


def test_the_forecast_page_sums_periods_and_explains_each_deal():
    funnel = configured()
    deal = fc.Deal("r", "Ромашка", "hr", "potential_deal", 1_200_000.0, "RUB", date(2026, 11, 20), "orlova",
                   ("budget_holder",), ("budget_holder",), 5)
    lines, weighted = fc.opportunity_forecast(funnel, [deal], "quarter", "member")
    found = {"by": "member", "lines": [x.__dict__ for x in lines],
             "lead_count": [{"period": "2026-Q4", "leads": 10, "value": 300_000.0}],
             "lead_model": {"leads": 10, "won": 1, "conversion": 0.1, "average_amount": 300_000.0, "cycle_days": 49},
             "deals": [{"opportunity_id": "r", "account": "Ромашка", "solution": "hr", "stage": "potential_deal",
                        "owner": "orlova", "amount": 1_200_000.0, "currency": "RUB",
                        "expected_close_on": date(2026, 11, 20), "probability": 0.5, "weighted": 600_000.0,
                        "health": 1.0, "adjusted": 600_000.0, "role_coverage": 1.0, "required_roles": 1,
                        "covered_required_roles": 1, "engaged_members": 5, "engaged_benchmark": 4.2}]}
    page = fv.forecast_page(found, ru)
    assert page.plot is not None and "2026-Q4" in page.plot
    assert page.lines == [{"period": "2026-Q4", "group": "orlova", "deals": "1", "pipeline": "1\u202f200\u202f000",
                           "weighted": "600\u202f000", "adjusted": "600\u202f000", "lead": "300\u202f000"}]
    assert page.deals[0]["why"] == "требуемые роли 1/1; вовлечено 5 при ориентире 4,2"
    assert page.totals["fc.lead_count"] == "300\u202f000" and "конверсия 10" in page.lead_model
    none = {**found, "lead_count": [], "lead_model": {**found["lead_model"], "conversion": None}}
    assert fv.forecast_page(none, en).lead_model.startswith("Lead count: no won deal yet")
