""""Why is this person here, in this role?": the basis grouping records on each member (issue 16)."""

from __future__ import annotations

from tests.unit.grouping.harness import Pipeline, fold, romashka_story, touch


def test_each_member_says_which_rule_put_them_in_their_account_solution_and_role(config) -> None:
    pipeline = Pipeline(config)
    events = pipeline.feed(*romashka_story("romashka.ru", "kr"))
    events += pipeline.feed(touch("fm-1", 300, "download", email="lawyer.romashka@gmail.com", job_title="Юрист",
                                  company="ООО «Красная Ромашка»", asset_id="hr-security-whitepaper"))
    members = fold(events)[0]["romashka.ru:hr"].members
    elena, olga, lawyer = (members[p].why for p in (
        "elena.sokolova@romashka.ru", "o.petrova@hr.romashka.ru", "lawyerromashka@gmail.com"))
    assert (elena.account.rule, elena.account.detail) == ("domain", "romashka.ru")
    # Elena's first touch was a page under the HR solution's URLs.
    assert elena.solution.rule == "content" and elena.solution.detail.startswith("url /solutions/hr/")
    assert elena.role.rule == "title" and "«HR-менеджер»" in elena.role.detail
    assert olga.solution.detail.startswith("asset hr-roi-case-study")
    assert olga.role.rule == "title" and "финансовый директор" in olga.role.detail
    # Free mail: the account is the company name's, matched to the domain account of colleagues.
    assert lawyer.account.rule == "company_name" and "Красная Ромашка" in lawyer.account.detail
    assert lawyer.solution.detail.startswith("asset hr-security-whitepaper")


def test_a_stated_role_and_a_keyword_say_so(config) -> None:
    events = Pipeline(config).feed(
        touch("s-1", 0, "webinar_registered", "webinar", email="anna@romashka.ru", stated_role="Decision Maker",
              topic="Автоматизация кадрового учёта"))
    [view] = fold(events)[0].values()
    why = view.members["anna@romashka.ru"].why
    assert (why.role.rule, why.role.detail) == ("stated", "stated «Decision Maker»")
    assert why.solution.detail.startswith(("topic «", "keyword «"))
