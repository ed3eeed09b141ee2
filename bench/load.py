"""A deterministic load of canonical touch events for the performance benchmark.

Not the quality benchmark's market (demo/market.py, with ground truth and noise of every
kind): here every account grows a buying group on one solution, so that the pipeline does
its full work (identity, account, roles, opportunity, score, signals) for most events.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

SOLUTIONS = ("hr", "wms", "crm", "bi")
TITLES = ("HR-менеджер", "IT-директор", "Финансовый директор", "Генеральный директор", "CIO", "CFO",
          "Head of People", "Руководитель отдела закупок", "Юрист", "Системный администратор",
          "Директор по персоналу", "Главный бухгалтер")
KINDS = (("page_view", "web"), ("page_view", "web"), ("page_view", "web"), ("download", "web"),
         ("email_open", "email"), ("email_click", "email"), ("webinar_registered", "webinar"))
# A year and more in the past: every opportunity's record rests at the end of its rescore grid
# (docs/time.md) whenever a benchmark runs, so runs compare equal.
START = datetime(2025, 9, 1, tzinfo=UTC)


def canonical_market(accounts: int, seed: int = 11, tag: str = "") -> list[dict]:
    """Touch events of `accounts` companies, each with 4-8 people on one solution, in event-time order."""
    rng = random.Random(seed)
    events: list[dict] = []
    for a in range(accounts):
        domain = f"company{a}{tag}.ru"
        solution = SOLUTIONS[a % len(SOLUTIONS)]
        begins = START + timedelta(days=rng.uniform(0, 60))
        for p in range(rng.randint(4, 8)):
            email = f"person{p}@{domain}"
            title = TITLES[rng.randrange(len(TITLES))]
            for t in range(rng.randint(3, 10)):
                kind, source = KINDS[rng.randrange(len(KINDS))]
                at = begins + timedelta(days=rng.uniform(0, 20), seconds=t)
                events.append({
                    "event_id": f"load-{tag}-{a}-{p}-{t}", "occurred_at": at.isoformat().replace("+00:00", "Z"),
                    "source": source, "kind": kind, "platform": "bench",
                    "person": {"email": email, "job_title": title, "company": f"Компания {a}"},
                    "content": {"url": f"https://vendor.example/solutions/{solution}/page-{t}",
                                "asset_id": f"{solution}-asset-{t}" if kind == "download" else None},
                })
    events.sort(key=lambda e: e["occurred_at"])
    return events


def market(companies: int, seed: int = 5) -> list[dict]:
    """The scale benchmark's market: the same shape for every company, in event-time order.

    Per company: 3 people on its corporate domain, 2 touches each on one solution; every tenth
    company also a colleague on free mail, 2 touches, found by the company's name (the names
    directory). About 6.2 events per company.
    """
    rng = random.Random(seed)
    events: list[dict] = []
    for a in range(companies):
        solution = SOLUTIONS[a % len(SOLUTIONS)]
        begins = START + timedelta(days=rng.uniform(0, 60))
        people = [f"person{p}@company{a}.ru" for p in range(3)]
        if a % 10 == 0:
            people.append(f"company{a}.colleague@mail.ru")
        for p, email in enumerate(people):
            for t in range(2):
                kind, source = KINDS[rng.randrange(len(KINDS))]
                events.append({
                    "event_id": f"scale-{a}-{p}-{t}",
                    "occurred_at": (begins + timedelta(days=rng.uniform(0, 20), seconds=t)).isoformat()
                    .replace("+00:00", "Z"),
                    "source": source, "kind": kind, "platform": "bench",
                    "person": {"email": email, "job_title": TITLES[(a + p) % len(TITLES)],
                               "company": f"Компания {a}"},
                    "content": {"url": f"https://vendor.example/solutions/{solution}/page-{t}"},
                })
    events.sort(key=lambda e: e["occurred_at"])
    return events
