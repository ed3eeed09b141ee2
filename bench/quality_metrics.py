"""Detection quality, pure: the system's opportunities and a lead-centric baseline against the truth.

Inputs: the ground truth of a generated market (demo/market.py's truth.json), the opportunities
the system produced (account, solution, members with person, department and role, and the
event time of the group_formed signal), and, for the baseline, the generated requests.

Definitions (every time is event time; days are fractional, 86,400 s):

- Person ids on both sides are normalised emails (lower case, no +tag, Gmail's dots ignored).
- Account mapping. System account ids are names the system chose (a registrable domain, or
  "name:<company>" for people on free mail), so they are mapped one to one onto true accounts:
  a system account wins the true account whose domain it is; otherwise pairs are taken
  greedily by how many of the true account's people the system put in that system account.
  A system account left without a true account stays unmapped (each one its own account).
- Account matching. A person the system placed (a member of any opportunity) is matched right
  when all their opportunities are of one system account and it maps to their true account.
  Precision: right / people placed (people of the truth only). Recall: right / people of the
  truth who have a true account and engaged with a solution (whom the system should place).
  F1: their harmonic mean.
- Role and department accuracy: over (opportunity, member) pairs whose person has a true role
  (buyers, lone researchers, small teams; not students or competitors).
- Group formation (account + solution). A detection is an opportunity with a formed_at. It is
  a true positive when its mapped account and solution are a true group's that formed by the
  truth's definition; one detection per group counts (the earliest), the rest are false
  positives, as are detections of groups that never formed and of accounts without a group
  (reported by the account's kind: lone_researcher, small_team, competitor, ...).
- Account level (the only level the baseline can be judged at). Detected accounts: mapped
  accounts with a detection; true: accounts with a group that formed.
- Delay: detection time minus the group's true start (its first member's first engaged
  touch), in days, over the true positives: median and p90 (nearest rank). Lag: detection
  time minus the truth's formation time.

Lead-centric baseline (classic marketing-automation point scoring), computed from the
requests alone: each touch adds its kind's points to its person (anonymous visits count once
an identify call names the visitor, as marketing automation merges a cookie's history into the
lead); a person becomes an MQL at the event time of the touch that takes them to the threshold
(once: no decay, no recycling). To compare fairly it is given what it cannot know by itself:
the true account of every person (perfect account matching). It cannot tell a solution or a
group, so a true group counts as detected by the first MQL of ANY person of its account at or
after the group's start (generous: the MQL may come from another group of the account or from
a colleague who is not a member). Its account-level detections are the accounts with an MQL,
plus every MQL person without a true account (a lead sent to sales for nothing).
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from demo.payloads import Request

DAY = 86400.0

# Points per touch kind (the canonical kinds of shared/schemas/touch.py).
DEFAULT_WEIGHTS: dict[str, float] = {
    "page_view": 1, "email_delivered": 0, "email_open": 1, "email_click": 3, "download": 5,
    "content_engaged": 1, "form_submitted": 5, "webinar_registered": 5, "webinar_attended": 10,
    "event_registered": 5, "event_attended": 10, "demo_requested": 20,
}
DEFAULT_THRESHOLD = 30.0


def person_key(person_id: str) -> str:
    """The project's person id: lower case, no +tag, Gmail's dots ignored; other ids as they are."""
    text = person_id.strip().lower()
    if "@" not in text or text.startswith(("user:", "anon:")):
        return text
    local, _, domain = text.rpartition("@")
    local = local.split("+", 1)[0] or local
    if domain in ("gmail.com", "googlemail.com"):
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


def parse_time(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def days(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() / DAY


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TruthPerson:
    person_id: str
    account_id: str | None
    department: str | None = None
    role: str | None = None
    kind: str = "group_member"
    engaged_solutions: tuple[str, ...] = ()
    free_mail: bool = False


@dataclass(frozen=True)
class TruthGroup:
    group_id: str
    account_id: str
    solution: str
    members: tuple[str, ...]
    started_at: datetime
    formed_at: datetime | None


@dataclass(frozen=True)
class Truth:
    persons: Mapping[str, TruthPerson]
    groups: tuple[TruthGroup, ...]
    account_kinds: Mapping[str, str] = field(default_factory=dict)  # buyer, lone_researcher, competitor, ...

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Truth:
        persons = {}
        for p in data["persons"]:
            key = person_key(p["person_id"])
            persons[key] = TruthPerson(key, p["account_id"], p.get("department"), p.get("role"),
                                       p.get("kind", "group_member"), tuple(p.get("engaged_solutions", ())),
                                       bool(p.get("free_mail")))
        groups = tuple(
            TruthGroup(g["group_id"], g["account_id"], g["solution"],
                       tuple(person_key(m["person_id"]) for m in g["members"]), parse_time(g["started_at"]),
                       parse_time(g["formed_at"]) if g.get("formed_at") else None)
            for g in data["groups"]
        )
        kinds = {a["account_id"]: a["kind"] for a in data.get("accounts_list", ())}
        return cls(persons, groups, kinds)


@dataclass(frozen=True)
class Member:
    person_id: str
    department: str
    role: str


@dataclass(frozen=True)
class Opportunity:
    opportunity_id: str
    account_id: str
    solution: str
    members: tuple[Member, ...] = ()
    formed_at: datetime | None = None  # event time of its group_formed signal


# ---------------------------------------------------------------------------------------------
# Accounts
# ---------------------------------------------------------------------------------------------

def map_accounts(truth: Truth, opportunities: Sequence[Opportunity]) -> dict[str, str]:
    """System account id -> true account id, one to one (see the module docstring)."""
    people: dict[tuple[str, str], set[str]] = {}
    for opp in opportunities:
        for m in opp.members:
            person = truth.persons.get(person_key(m.person_id))
            if person is not None and person.account_id is not None:
                people.setdefault((opp.account_id, person.account_id), set()).add(person.person_id)
    true_accounts = {p.account_id for p in truth.persons.values() if p.account_id}
    system_accounts = sorted({o.account_id for o in opportunities})
    pairs = [(1, 0, s, s) for s in system_accounts if s in true_accounts]
    pairs += [(0, len(v), s, t) for (s, t), v in people.items()]
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for _, _, system, true in sorted(pairs, key=lambda x: (-x[0], -x[1], x[2], x[3])):
        if system not in mapping and true not in taken:
            mapping[system] = true
            taken.add(true)
    return mapping


def account_matching(truth: Truth, opportunities: Sequence[Opportunity],
                     mapping: Mapping[str, str]) -> dict[str, Any]:
    placed: dict[str, set[str]] = {}
    unknown: set[str] = set()
    for opp in opportunities:
        for m in opp.members:
            key = person_key(m.person_id)
            if key in truth.persons:
                placed.setdefault(key, set()).add(opp.account_id)
            else:
                unknown.add(key)

    def right(person: TruthPerson) -> bool:
        accounts = placed.get(person.person_id, set())
        return len(accounts) == 1 and person.account_id is not None and mapping.get(next(iter(accounts))) == \
            person.account_id

    correct = sum(1 for key in placed if right(truth.persons[key]))
    expected = [p for p in truth.persons.values() if p.account_id and p.engaged_solutions]
    found = sum(1 for p in expected if right(p))
    free = [p for p in expected if p.free_mail]
    precision, recall = _ratio(correct, len(placed)), _ratio(found, len(expected))
    return {
        "precision": precision, "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision and recall else None,
        "placed": len(placed), "correct": correct, "expected": len(expected),
        "free_mail_recall": _ratio(sum(1 for p in free if right(p)), len(free)), "free_mail_expected": len(free),
        "people_unknown_to_truth": len(unknown),
    }


def role_accuracy(truth: Truth, opportunities: Sequence[Opportunity]) -> dict[str, Any]:
    pairs = [(m, truth.persons[person_key(m.person_id)]) for opp in opportunities for m in opp.members
             if person_key(m.person_id) in truth.persons and truth.persons[person_key(m.person_id)].role]
    return {
        "role_accuracy": _ratio(sum(1 for m, p in pairs if m.role == p.role), len(pairs)),
        "department_accuracy": _ratio(sum(1 for m, p in pairs if m.department == p.department), len(pairs)),
        "members": len(pairs),
    }


# ---------------------------------------------------------------------------------------------
# Group formation
# ---------------------------------------------------------------------------------------------

def summary(values: Iterable[float]) -> dict[str, float | int | None]:
    """n, median and p90 (nearest rank) of the values, rounded to 0.01."""
    ordered = sorted(values)
    if not ordered:
        return {"n": 0, "median": None, "p90": None}
    return {"n": len(ordered), "median": round(statistics.median(ordered), 2),
            "p90": round(ordered[math.ceil(0.9 * len(ordered)) - 1], 2)}


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass
class _Detections:
    """What a detector found: per true group the detection time; false positives by cause."""

    found: dict[str, datetime] = field(default_factory=dict)
    false_positives: dict[str, int] = field(default_factory=dict)

    def miss(self, cause: str) -> None:
        self.false_positives[cause] = self.false_positives.get(cause, 0) + 1


def formation(truth: Truth, opportunities: Sequence[Opportunity], mapping: Mapping[str, str]) -> dict[str, Any]:
    groups = {(g.account_id, g.solution): g for g in truth.groups}
    formed = [g for g in truth.groups if g.formed_at]
    detections = sorted((o for o in opportunities if o.formed_at), key=lambda o: (o.formed_at, o.opportunity_id))
    result = _Detections()
    for opp in detections:
        account = mapping.get(opp.account_id)
        group = groups.get((account or "", opp.solution))
        if group is None:  # by the kind of account, to tell a lone researcher from a competitor
            result.miss(f"no_true_group:{truth.account_kinds.get(account or '', 'unmapped_account')}")
        elif group.formed_at is None:
            result.miss("group_never_formed")
        elif group.group_id in result.found:
            result.miss("duplicate")
        else:
            result.found[group.group_id] = opp.formed_at  # type: ignore[assignment]
    tp = len(result.found)
    out = {
        "precision": _ratio(tp, len(detections)), "recall": _ratio(tp, len(formed)),
        "detections": len(detections), "true_formed": len(formed), "true_positives": tp,
        "false_positives": dict(sorted(result.false_positives.items())),
        **_timing(formed, result.found),
    }
    detected_accounts = {mapping.get(o.account_id, f"unmapped:{o.account_id}") for o in detections}
    out["account_level"] = _account_level(formed, detected_accounts)
    return out


def _timing(formed: Sequence[TruthGroup], found: Mapping[str, datetime]) -> dict[str, Any]:
    hits = [g for g in formed if g.group_id in found]
    return {
        "delay_days_from_start": summary(days(found[g.group_id], g.started_at) for g in hits),
        "lag_days_after_true_formation": summary(days(found[g.group_id], g.formed_at) for g in hits),  # type: ignore[arg-type]
        "detected_at": {g.group_id: found[g.group_id].isoformat() for g in hits},
    }


def _account_level(formed: Sequence[TruthGroup], detected: set[str]) -> dict[str, Any]:
    true_accounts = {g.account_id for g in formed}
    tp = len(detected & true_accounts)
    return {"precision": _ratio(tp, len(detected)), "recall": _ratio(tp, len(true_accounts)),
            "detected": len(detected), "true": len(true_accounts)}


# ---------------------------------------------------------------------------------------------
# Lead-centric baseline
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MqlModel:
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    threshold: float = DEFAULT_THRESHOLD


@dataclass(frozen=True)
class LeadTouch:
    at: datetime
    person_id: str | None  # None: an anonymous visit, until an identify call names the visitor
    anonymous_id: str | None
    kind: str


# Segment track event names -> kind, the way a marketing-automation tool's activity types map.
_TRACK = tuple((re.compile(p, re.I), k) for p, k in (
    (r"webinar.*(attend|join)", "webinar_attended"), (r"webinar.*regist", "webinar_registered"),
    (r"(event|conference).*(attend|check)", "event_attended"), (r"(event|conference).*regist", "event_registered"),
    (r"demo", "demo_requested"), (r"form|sign.?up|contact", "form_submitted"),
    (r"download|brochure|whitepaper|case.?study|ebook", "download"),
))
_SENDGRID = {"open": "email_open", "click": "email_click", "delivered": "email_delivered"}
_ZOOM = {"webinar.registration_created": ("registrant", "webinar_registered"),
         "webinar.participant_joined": ("participant", "webinar_attended")}


def _email_of(value: Any) -> str | None:
    return person_key(value) if isinstance(value, str) and "@" in value else None


def lead_touches(requests: Iterable[Request]) -> tuple[list[LeadTouch], dict[str, str]]:
    """Touches read straight from the platforms' payloads, and anonymous id -> email links."""
    touches: list[LeadTouch] = []
    links: dict[str, str] = {}
    for r in requests:
        body = r.body
        if r.platform == "segment":
            traits = {**body.get("context", {}).get("traits", {}), **body.get("traits", {})}
            email = _email_of(traits.get("email")) or _email_of(body.get("userId"))
            anonymous = body.get("anonymousId")
            if body["type"] == "identify":
                if anonymous and email:
                    links.setdefault(anonymous, email)
                continue
            kind = "page_view" if body["type"] == "page" else next(
                (k for p, k in _TRACK if p.search(body.get("event", ""))), "content_engaged")
            touches.append(LeadTouch(r.at, email, anonymous, kind))
        elif r.platform == "sendgrid":
            for event in body:
                if event["event"] in _SENDGRID:
                    touches.append(LeadTouch(r.at, _email_of(event["email"]), None, _SENDGRID[event["event"]]))
        elif r.platform == "zoom" and body.get("event") in _ZOOM:
            who, kind = _ZOOM[body["event"]]
            touches.append(LeadTouch(r.at, _email_of(body["payload"]["object"][who].get("email")), None, kind))
    return touches, links


def mql_times(requests: Iterable[Request], model: MqlModel) -> dict[str, datetime]:
    """Person -> event time of the touch that took their score to the threshold."""
    touches, links = lead_touches(requests)
    scores: dict[str, float] = {}
    mql: dict[str, datetime] = {}
    for t in sorted(touches, key=lambda t: t.at):
        person = t.person_id or links.get(t.anonymous_id or "")
        if person is None or person in mql:
            continue
        scores[person] = scores.get(person, 0.0) + model.weights.get(t.kind, 0.0)
        if scores[person] >= model.threshold:
            mql[person] = t.at
    return mql


def baseline(truth: Truth, requests: Sequence[Request], model: MqlModel) -> dict[str, Any]:
    mql = mql_times(requests, model)
    by_account: dict[str, list[datetime]] = {}
    detected_accounts: set[str] = set()
    for person, at in mql.items():
        account = truth.persons[person].account_id if person in truth.persons else None
        if account is None:
            detected_accounts.add(f"person:{person}")
        else:
            by_account.setdefault(account, []).append(at)
            detected_accounts.add(account)
    formed = [g for g in truth.groups if g.formed_at]
    found = {}
    for g in formed:
        after = [t for t in by_account.get(g.account_id, []) if t >= g.started_at]
        if after:
            found[g.group_id] = min(after)
    return {
        "recall": _ratio(len(found), len(formed)), "true_formed": len(formed), "true_positives": len(found),
        "mql_people": len(mql), "threshold": model.threshold, "weights": dict(model.weights),
        **_timing(formed, found),
        "account_level": _account_level(formed, detected_accounts),
    }


# ---------------------------------------------------------------------------------------------
# Everything
# ---------------------------------------------------------------------------------------------

def evaluate(truth: Truth, opportunities: Sequence[Opportunity], requests: Sequence[Request],
             model: MqlModel | None = None) -> dict[str, Any]:
    mapping = map_accounts(truth, opportunities)
    system = {"accounts": account_matching(truth, opportunities, mapping),
              "roles": role_accuracy(truth, opportunities),
              "formation": formation(truth, opportunities, mapping),
              "opportunities": len(opportunities)}
    lead = baseline(truth, requests, model or MqlModel())
    s_found = system["formation"]["detected_at"]
    b_found = lead["detected_at"]
    both = sorted(set(s_found) & set(b_found))
    gaps = [days(parse_time(s_found[g]), parse_time(b_found[g])) for g in both]
    return {
        "truth": {"groups": len(truth.groups), "formed": sum(1 for g in truth.groups if g.formed_at),
                  "people": len(truth.persons),
                  "formation_days_from_start": summary(days(g.formed_at, g.started_at)
                                                       for g in truth.groups if g.formed_at)},
        "system": system,
        "baseline": lead,
        "paired": {"groups_detected_by_both": len(both),
                   "system_earlier": sum(1 for gap in gaps if gap < 0),
                   "baseline_earlier": sum(1 for gap in gaps if gap > 0),
                   "system_minus_baseline_days": summary(gaps)},
    }
