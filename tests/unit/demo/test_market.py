"""The synthetic market: reproducible, realistic in shape, and its truth agrees with its events."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from demo.market import (
    CONTENT,
    FREE_MAIL,
    MarketData,
    dump_requests,
    formation,
    generate,
    load_requests,
    normalised_email,
    write,
)
from demo.payloads import Request

pytestmark = pytest.mark.unit

T0 = datetime(2026, 9, 1, tzinfo=UTC)
_TOPICS = {t: slug for slug, c in CONTENT.items() for t in (*c.webinars, c.technical_webinar)}


@pytest.fixture(scope="module")
def market() -> MarketData:
    return generate(accounts=60, months=3, seed=7)


def t(day: float) -> datetime:
    return T0 + timedelta(days=day)


def solution_of(url: str | None, asset: str | None, topic: str | None) -> str | None:
    """Read back from the payload by the vendor's content conventions, not from the generator's state."""
    if url and "/solutions/" in url:
        rest = url.split("/solutions/", 1)[1]
        return rest.split("/", 1)[0] if "/" in rest else None
    for slug in CONTENT:
        if asset and asset.startswith(f"{slug}-"):
            return slug
    return _TOPICS.get(topic or "")


def touches(requests: list[Request]) -> list[tuple[datetime, str, str | None, bool]]:
    """(time, person, solution, engaged) of every touch whose person is named, anonymous visits included."""
    links = {r.body["anonymousId"]: normalised_email(r.body["traits"]["email"]) for r in requests
             if r.platform == "segment" and r.body["type"] == "identify" and "anonymousId" in r.body}
    out = []
    for r in requests:
        b = r.body
        if r.platform == "segment" and b["type"] in ("page", "track"):
            email = b.get("context", {}).get("traits", {}).get("email")
            person = normalised_email(email) if email else links.get(b.get("anonymousId"))
            props = b["properties"]
            solution = solution_of(props.get("url"), props.get("asset_id"), props.get("topic"))
            if person:
                out.append((r.at, person, solution, True))
        elif r.platform == "sendgrid":
            e = b[0]
            out.append((r.at, normalised_email(e["email"]), solution_of(e.get("url"), e.get("asset_id"), None),
                        e["event"] != "delivered"))
        elif r.platform == "zoom":
            obj = b["payload"]["object"]
            who = obj.get("registrant") or obj.get("participant")
            out.append((r.at, normalised_email(who["email"]), _TOPICS[obj["topic"]], True))
    return out


def test_the_same_seed_gives_the_same_bytes_and_another_seed_another_market(market: MarketData) -> None:
    again = generate(accounts=60, months=3, seed=7)
    assert dump_requests(again.requests) == dump_requests(market.requests)
    assert json.dumps(again.truth, ensure_ascii=False) == json.dumps(market.truth, ensure_ascii=False)
    other = generate(accounts=60, months=3, seed=8)
    assert dump_requests(other.requests) != dump_requests(market.requests)


def test_files_round_trip(market: MarketData, tmp_path: Path) -> None:
    events, truth = write(market, tmp_path)
    assert load_requests(events) == market.requests
    assert json.loads(truth.read_text(encoding="utf-8")) == market.truth


def test_requests_are_in_event_time_order_within_the_period(market: MarketData) -> None:
    times = [r.at for r in market.requests]
    assert times == sorted(times)
    assert times[0] >= T0 and times[-1] < datetime(2026, 12, 1, tzinfo=UTC)
    assert all(r.at.microsecond == 0 for r in market.requests)  # SendGrid carries whole seconds
    assert set(Counter(r.platform for r in market.requests)) == {"segment", "sendgrid", "zoom"}


def test_groups_are_realistic_in_size_and_span_departments(market: MarketData) -> None:
    groups = market.truth["groups"]
    sizes = [g["planned_size"] for g in groups]
    assert all(4 <= s <= 13 for s in sizes)
    assert min(sizes) <= 5 and max(sizes) >= 10 and len(set(sizes)) >= 6
    for g in groups:
        departments = {m["department"] for m in g["members"]}
        assert len(g["members"]) < 2 or len(departments) >= 2, g["group_id"]
    assert max(len(g["members"]) for g in groups) >= 8
    assert {g["outcome"] for g in groups} == {"bought", "stalled", "open"}
    assert {g["solution"] for g in groups} == set(CONTENT)
    assert any(g["formed_at"] is None for g in groups)  # some stall before they form


def test_noise_and_hard_cases_are_present(market: MarketData) -> None:
    truth = market.truth
    accounts = {a["account_id"]: a for a in truth["accounts_list"]}
    assert {"buyer", "lone_researcher", "small_team", "competitor", "university"} <= {a["kind"] for a in
                                                                                      accounts.values()}
    assert all(a["noise"] == (a["kind"] in ("competitor", "university")) for a in accounts.values())
    people = truth["persons"]
    kinds = Counter(p["kind"] for p in people)
    assert kinds["student"] and kinds["lone_researcher"] and kinds["competitor"] and kinds["small_team"]
    assert all(p["account_id"] is None or accounts[p["account_id"]]["kind"] == "university"
               for p in people if p["kind"] == "student")
    # Buyers on free mail name their company their own way.
    free_buyers = [p for p in people if p["kind"] == "group_member" and p["free_mail"]]
    assert free_buyers and all(p["email"].rpartition("@")[2] in FREE_MAIL for p in free_buyers)
    assert any(p["company_as_given"] != accounts[p["account_id"]]["name"] for p in free_buyers)
    # Corporate mail from a subdomain of the account's domain.
    assert any(p["email"].rpartition("@")[2].endswith("." + p["account_id"]) for p in people if p["account_id"])
    assert any(p["anonymous_first"] for p in people if p["kind"] == "group_member")
    titles = [p["title"] for p in people if p["title"]]
    assert any(t.isascii() for t in titles) and any(not t.isascii() for t in titles)
    assert any(p["title"] is None for p in people if p["kind"] == "group_member")


def test_company_names_are_spelled_across_scripts_and_numbered_names_are_other_companies() -> None:
    market = generate(accounts=200, months=3, seed=7)
    accounts = {a["account_id"]: a["name"] for a in market.truth["accounts_list"]}
    given = [p["company_as_given"] for p in market.truth["persons"] if p["free_mail"] and p["account_id"]
             and not accounts[p["account_id"]].isascii()]
    latin = [g for g in given if g.isascii()]
    mixed = [g for g in given if not g.isascii() and any(c.isascii() and c.isalpha() for c in g.split("«")[-1])]
    assert latin and mixed  # Latin spellings of Cyrillic names; Latin look-alikes inside Cyrillic words
    numbered: dict[str, set[str]] = {}
    for name in accounts.values():
        stem, dash, number = name.rstrip("»").rpartition("-")
        if dash and number.isdigit():
            numbered.setdefault(stem.split("«")[-1], set()).add(number)
    assert any(len(numbers) > 1 for numbers in numbered.values())  # siblings: Кварцмонтаж-31 and -32


def test_a_role_in_the_truth_is_the_role_in_the_group_s_solution(market: MarketData) -> None:
    for group in market.truth["groups"]:
        for member in group["members"]:
            if member["department"] == "sales":
                assert member["role"] == ("initiator" if group["solution"] in ("crm", "bi") else "influencer")
            if member["department"] == "hr":
                assert member["role"] == ("initiator" if group["solution"] == "hr" else "influencer")


def test_truth_agrees_with_the_events(market: MarketData) -> None:
    truth = market.truth
    seen = touches(market.requests)
    people = {p["person_id"]: p for p in truth["persons"]}
    named = {person for _, person, _, _ in seen}
    assert set(people) <= named  # every person of the truth has events carrying their email
    engaged: dict[tuple[str, str], list[tuple[datetime, str, str]]] = {}
    for at, person, solution, is_engaged in seen:
        if solution and is_engaged and person in people and people[person]["account_id"]:
            p = people[person]
            engaged.setdefault((p["account_id"], solution), []).append((at, person, p["department"] or "none"))
    groups = {(g["account_id"], g["solution"]): g for g in truth["groups"]}
    for key, g in groups.items():
        mine = [x for x in engaged[key] if x[1] in {m["person_id"] for m in g["members"]}]
        assert {m["person_id"] for m in g["members"]} == {person for _, person, _ in mine}, g["group_id"]
        assert g["started_at"] == min(mine)[0].isoformat().replace("+00:00", "Z")
        formed = formation(mine)
        assert g["formed_at"] == (formed[0].isoformat().replace("+00:00", "Z") if formed else None), g["group_id"]
        assert g["formation_members"] == (list(formed[1]) if formed else [])
    # Lone researchers, small teams, competitors and students never meet the definition.
    for key, rows in engaged.items():
        if key not in groups:
            assert formation(rows) is None, key


def test_formation_needs_three_people_of_two_departments_within_the_window() -> None:
    hr, it, fin = "hr", "it", "finance"
    assert formation([(t(0), "a", hr), (t(3), "b", it), (t(9), "c", fin), (t(10), "d", hr)]) == \
        (t(9), ("a", "b", "c"))
    assert formation([(t(0), "a", hr), (t(1), "b", hr), (t(2), "c", hr)]) is None  # one department
    assert formation([(t(0), "a", hr), (t(1), "b", it), (t(1.5), "b", it)]) is None  # two people
    # 'a' engaged 22 days before 'c': out of the window, until 'a' engages again.
    spread = [(t(0), "a", hr), (t(10), "b", it), (t(22), "c", fin)]
    assert formation(spread) is None
    assert formation([*spread, (t(25), "a", hr)]) == (t(25), ("a", "b", "c"))
    # The window includes its start: exactly 21 days apart still counts.
    assert formation([(t(0), "a", hr), (t(5), "b", it), (t(21), "c", hr)]) == (t(21), ("a", "b", "c"))
    assert formation([(t(0), "a", hr), (t(1), "b", it)], people=2) == (t(1), ("a", "b"))


def test_every_group_has_a_deal_won_lost_or_open_with_what_the_crm_was_told():
    data = generate(accounts=150, months=6, seed=7)
    end = datetime.fromisoformat(data.truth["end"].replace("Z", "+00:00"))
    outcomes = Counter()
    for g in data.truth["groups"]:
        deal = g["deal"]
        outcomes[deal["outcome"]] += 1
        assert deal["amount"] > 0 and deal["crm"]["amount"] > 0 and deal["currency"] == "RUB"
        closed = deal["closed_at"] and datetime.fromisoformat(deal["closed_at"].replace("Z", "+00:00"))
        assert (closed is None) == (deal["outcome"] == "open")
        assert closed is None or closed < end
        assert deal["outcome"] != "won" or g["outcome"] == "bought"
        assert deal["outcome"] != "lost" or g["outcome"] == "stalled"
        assert deal["crm"]["expected_close_on"] >= deal["crm"]["reported_at"][:10]
    assert outcomes["won"] >= 10 and outcomes["lost"] >= 10 and outcomes["open"] >= 10


def test_deals_do_not_change_the_events(market: MarketData):
    """The deals come from a generator of their own: the same seed gives the same requests."""
    again = generate(accounts=60, months=3, seed=7)
    assert dump_requests(again.requests) == dump_requests(market.requests)
    assert [g["deal"] for g in again.truth["groups"]] == [g["deal"] for g in market.truth["groups"]]
