"""Quality metrics on small hand-made truths: account mapping, roles, formation, delays, MQL baseline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bench.quality_metrics import (
    Member,
    MqlModel,
    Opportunity,
    Truth,
    TruthGroup,
    TruthPerson,
    account_matching,
    baseline,
    evaluate,
    formation,
    map_accounts,
    mql_times,
    person_key,
    role_accuracy,
    summary,
)
from demo.payloads import segment_identify, segment_page, segment_track, sendgrid, zoom_joined, zoom_registration

pytestmark = pytest.mark.unit

T0 = datetime(2026, 9, 1, 9, tzinfo=UTC)


def t(day: float) -> datetime:
    return T0 + timedelta(days=day)


def person(pid: str, account: str | None, department: str | None = "hr", role: str | None = "initiator",
           kind: str = "group_member", free: bool = False) -> TruthPerson:
    return TruthPerson(pid, account, department, role, kind, ("hr",) if account or kind == "student" else (), free)


# Romashka: four people, one on free mail. Lipa: a group on wms that never formed. Solo: a lone researcher.
TRUTH = Truth(
    persons={p.person_id: p for p in (
        person("hr@romashka.ru", "romashka.ru"),
        person("it@romashka.ru", "romashka.ru", "it", "technical_validator"),
        person("cfo@romashka.ru", "romashka.ru", "finance", "budget_holder"),
        person("olga@mail.ru", "romashka.ru", "executive", "decision_maker", free=True),
        person("a@lipa.ru", "lipa.ru"),
        person("b@lipa.ru", "lipa.ru", "it", "technical_validator"),
        person("solo@solo.ru", "solo.ru", kind="lone_researcher"),
        person("student@gmail.com", None, None, None, kind="student"),
    )},
    groups=(
        TruthGroup("g1", "romashka.ru", "hr", ("hr@romashka.ru", "it@romashka.ru", "cfo@romashka.ru",
                                               "olga@mail.ru"), started_at=t(0), formed_at=t(6)),
        TruthGroup("g2", "lipa.ru", "wms", ("a@lipa.ru", "b@lipa.ru"), started_at=t(2), formed_at=None),
    ),
    account_kinds={"romashka.ru": "buyer", "lipa.ru": "buyer", "solo.ru": "lone_researcher"},
)


def m(pid: str, department: str = "hr", role: str = "initiator") -> Member:
    return Member(pid, department, role)


def opp(account: str, solution: str, *members: Member, formed: datetime | None = None) -> Opportunity:
    return Opportunity(f"{account}:{solution}", account, solution, members, formed)


def test_person_key_follows_the_project_normalisation() -> None:
    assert person_key("Olga.Petrova+bg@GMail.com") == "olgapetrova@gmail.com"
    assert person_key("E.Sokolova+x@hr.romashka.ru") == "e.sokolova@hr.romashka.ru"
    assert person_key("user:42") == "user:42"


def test_accounts_map_one_to_one_domain_first_then_by_most_people() -> None:
    opps = [
        opp("romashka.ru", "hr", m("hr@romashka.ru"), m("it@romashka.ru")),
        # A split: the free-mail person in an account made from the company name.
        opp("name:ромашка", "hr", m("olga@mail.ru")),
        # Two lipa people in a name account, one in a wrongly named domain account.
        opp("name:липа", "wms", m("a@lipa.ru"), m("b@lipa.ru")),
        opp("lipa-old.ru", "wms", m("a@lipa.ru")),
    ]
    mapping = map_accounts(TRUTH, opps)
    assert mapping == {"romashka.ru": "romashka.ru", "name:липа": "lipa.ru"}


def test_account_matching_precision_and_recall() -> None:
    opps = [
        opp("romashka.ru", "hr", m("hr@romashka.ru"), m("IT@romashka.ru"), m("cfo@romashka.ru")),
        opp("name:ромашка", "hr", m("olga@mail.ru")),  # split from its account: wrong
        opp("solo.ru", "hr", m("solo@solo.ru")),
        opp("name:мгу", "hr", m("student@gmail.com")),  # has no true account: wrong wherever placed
        opp("lipa.ru", "wms", m("a@lipa.ru")),
        opp("solo.ru", "wms", m("b@lipa.ru")),  # placed in another company's account: wrong
    ]
    result = account_matching(TRUTH, opps, map_accounts(TRUTH, opps))
    # Placed: 8 people, right: hr, it, cfo, solo, a = 5. Expected: the 7 with an account (the
    # student has none), right among them: 5.
    assert result["placed"] == 8 and result["correct"] == 5
    assert result["precision"] == pytest.approx(5 / 8, abs=1e-4)
    assert result["recall"] == pytest.approx(5 / 7, abs=1e-4)
    assert result["free_mail_recall"] == 0.0 and result["free_mail_expected"] == 1


def test_a_person_split_over_two_accounts_is_not_matched() -> None:
    opps = [opp("romashka.ru", "hr", m("hr@romashka.ru")), opp("name:ромашка", "crm", m("hr@romashka.ru"))]
    result = account_matching(TRUTH, opps, map_accounts(TRUTH, opps))
    assert result["correct"] == 0 and result["placed"] == 1


def test_role_and_department_accuracy_over_members_with_a_true_role() -> None:
    opps = [
        opp("romashka.ru", "hr", m("hr@romashka.ru"), m("it@romashka.ru", "it", "influencer"),
            m("cfo@romashka.ru", "finance", "budget_holder"), m("olga@mail.ru", "other", "influencer")),
        opp("name:мгу", "hr", m("student@gmail.com", "other", "influencer")),  # no true role: not counted
    ]
    result = role_accuracy(TRUTH, opps)
    assert result == {"role_accuracy": 0.5, "department_accuracy": 0.75, "members": 4}


def test_formation_precision_recall_and_false_positive_causes() -> None:
    opps = [
        opp("romashka.ru", "hr", m("hr@romashka.ru"), formed=t(7.5)),
        opp("name:ромашка", "hr", m("olga@mail.ru"), formed=t(9)),  # unmapped split: no group
        opp("lipa.ru", "wms", m("a@lipa.ru"), formed=t(5)),  # the group never formed
        opp("solo.ru", "hr", m("solo@solo.ru"), formed=t(3)),  # a lone researcher
        opp("romashka.ru", "crm", m("hr@romashka.ru")),  # not formed: not a detection
    ]
    result = formation(TRUTH, opps, map_accounts(TRUTH, opps))
    assert result["detections"] == 4 and result["true_positives"] == 1 and result["true_formed"] == 1
    assert result["precision"] == 0.25 and result["recall"] == 1.0
    assert result["false_positives"] == {"group_never_formed": 1, "no_true_group:lone_researcher": 1,
                                         "no_true_group:unmapped_account": 1}
    assert result["delay_days_from_start"] == {"n": 1, "median": 7.5, "p90": 7.5}
    assert result["lag_days_after_true_formation"] == {"n": 1, "median": 1.5, "p90": 1.5}
    # Account level: romashka (right), lipa and solo (no formed group), the unmapped name account.
    assert result["account_level"] == {"precision": 0.25, "recall": 1.0, "detected": 4, "true": 1}


def test_a_second_detection_of_one_group_is_a_false_positive_and_the_earliest_counts() -> None:
    opps = [opp("romashka.ru", "hr", m("hr@romashka.ru"), formed=t(8)),
            opp("name:romashka", "hr", m("hr@romashka.ru"), m("olga@mail.ru"), formed=t(7))]
    mapping = {"romashka.ru": "romashka.ru", "name:romashka": "romashka.ru"}  # as a buggy mapper might
    result = formation(TRUTH, opps, mapping)
    assert result["false_positives"] == {"duplicate": 1}
    assert result["delay_days_from_start"]["median"] == 7.0


def test_summary_is_the_median_and_the_nearest_rank_p90() -> None:
    assert summary([]) == {"n": 0, "median": None, "p90": None}
    assert summary([3, 1, 2]) == {"n": 3, "median": 2, "p90": 3}
    assert summary(range(1, 11)) == {"n": 10, "median": 5.5, "p90": 9}
    assert summary(range(1, 21))["p90"] == 18


# --- the lead-centric baseline ----------------------------------------------------------------

def test_mql_is_the_touch_that_reaches_the_threshold() -> None:
    who = "hr@romashka.ru"
    requests = [
        segment_track("d1", t(1), "Whitepaper Downloaded", user_id=who, email=who),  # 5
        sendgrid("e1", t(2), who, "delivered"),  # 0
        sendgrid("e2", t(2.1), who, "open"),  # 1
        sendgrid("e3", t(2.2), who, "click", url="https://vendor.example/solutions/hr/x"),  # 3
        zoom_registration("w1", "HR webinar", t(3), who, "Елена"),  # 5
        zoom_joined("w1", "HR webinar", t(6), who, "Елена"),  # 10 -> 24
        segment_track("d2", t(7), "Demo Requested", user_id=who, email=who),  # 20 -> 44
        segment_track("d3", t(8), "Demo Requested", user_id=who, email=who),
    ]
    assert mql_times(requests, MqlModel()) == {who: t(7)}
    assert mql_times(requests, MqlModel(threshold=24)) == {who: t(6)}
    assert mql_times(requests, MqlModel(threshold=100)) == {}
    assert mql_times(requests, MqlModel(weights={"email_delivered": 30})) == {who: t(2)}


def test_anonymous_visits_count_for_the_lead_once_identified() -> None:
    who = "Olga@Mail.ru"
    pages = [segment_page(f"p{i}", t(i * 0.1), "https://vendor.example/solutions/hr/a", "HR", anonymous_id="c1")
             for i in range(4)]
    identify = segment_identify("id", t(1), who, anonymous_id="c1")
    stranger = segment_page("p9", t(0.5), "https://vendor.example/", "Home", anonymous_id="never-named")
    assert mql_times([*pages, identify, stranger], MqlModel(threshold=4)) == {"olga@mail.ru": t(0.3)}
    assert mql_times([*pages, stranger], MqlModel(threshold=4)) == {}


def _downloads(who: str, at: datetime, n: int) -> list:
    return [segment_track(f"{who}-{at.isoformat()}-{i}", at + timedelta(minutes=i), "Case Study Downloaded",
                          user_id=who, email=who) for i in range(n)]


def test_baseline_detects_a_group_by_any_mql_of_its_account_after_the_start() -> None:
    requests = [
        *_downloads("cfo@romashka.ru", t(4), 6),  # 30 points on day 4: romashka detected, 4 days after start
        *_downloads("a@lipa.ru", t(1), 6),  # before lipa's group started (and it never formed)
        *_downloads("solo@solo.ru", t(2), 6),  # a lone researcher
        *_downloads("student@gmail.com", t(3), 6),  # a student: a lead without an account
        *_downloads("it@romashka.ru", t(5), 2),  # below the threshold
    ]
    result = baseline(TRUTH, requests, MqlModel())
    assert result["mql_people"] == 4
    assert result["recall"] == 1.0 and result["true_positives"] == 1
    assert result["delay_days_from_start"]["median"] == 4.0
    assert result["lag_days_after_true_formation"]["median"] == -2.0  # it was before the group formed
    # Detected: romashka, lipa, solo and the student: one of four has a group that formed.
    assert result["account_level"] == {"precision": 0.25, "recall": 1.0, "detected": 4, "true": 1}


def test_baseline_misses_a_group_whose_only_mql_came_before_it_started() -> None:
    truth = Truth(TRUTH.persons, (TruthGroup("g1", "romashka.ru", "hr", ("hr@romashka.ru",), t(10), t(12)),))
    result = baseline(truth, _downloads("cfo@romashka.ru", t(4), 6), MqlModel())
    assert result["recall"] == 0.0 and result["delay_days_from_start"]["n"] == 0


def test_evaluate_pairs_the_groups_both_detected() -> None:
    opps = [opp("romashka.ru", "hr", m("hr@romashka.ru"), m("it@romashka.ru", "it", "technical_validator"),
                m("cfo@romashka.ru", "finance", "budget_holder"), formed=t(6))]
    report = evaluate(TRUTH, opps, _downloads("hr@romashka.ru", t(9), 6))
    assert report["paired"] == {"groups_detected_by_both": 1, "system_earlier": 1, "baseline_earlier": 0,
                                "system_minus_baseline_days": {"n": 1, "median": -3.0, "p90": -3.0}}
    assert report["system"]["roles"]["role_accuracy"] == 1.0
    assert report["truth"]["formation_days_from_start"]["median"] == 6.0
