"""Faults: a worker killed with SIGKILL and restarted, and two workers sharing the work.

The expected result is what the same events give through the reducers chained in memory
(tests/unit/grouping/harness.py), i.e. an uninterrupted single run: the same opportunities,
the same members in the same roles, every touch attributed; and on the topic no version gap
and no event id with two different contents (a consumer applying by version loses nothing).
"""

from __future__ import annotations

import uuid

from tests.component.grouping.conftest import OutputReader, Worker, fresh_namespace, send
from tests.unit.grouping.harness import Pipeline, fold, identify, roles_of, touch

TITLES = ["HR-менеджер", "IT-директор", "финансовый директор", "генеральный директор", "Начальник склада",
          "руководитель отдела закупок", "Коммерческий директор", "юрист"]
PAGES = ["/solutions/hr/", "/solutions/wms/", "/solutions/crm/", "/solutions/bi/", "/solutions/hr/integrations/api",
         "/", "/careers/"]


def scenario(tag: str, companies: int, people: int, touches: int) -> list:
    """Several companies whose people read about several solutions; some visit anonymously first."""
    events = []
    for c in range(companies):
        domain = f"c{c}-{tag}.ru"
        for p in range(people):
            email, minute = f"p{p}@{'hr.' if p % 3 == 2 else ''}{domain}", c * 100 + p * 10
            if p % 4 == 1:
                cookie = f"{tag}-{c}-{p}"
                events += [touch(f"{tag}-{c}-{p}-anon{i}", minute + i, anonymous_id=cookie,
                                 url=f"https://vendor.example{PAGES[(c + p + i) % 4]}") for i in range(2)]
                events.append(identify(f"{tag}-{c}-{p}-id", minute + 2, anonymous_id=cookie, email=email,
                                       job_title=TITLES[(c + p) % len(TITLES)], company=f"Компания {c}"))
            for t in range(touches):
                events.append(touch(f"{tag}-{c}-{p}-{t}", minute + 3 + t, email=email,
                                    job_title=TITLES[(c + p) % len(TITLES)] if t == 0 else None,
                                    url=f"https://vendor.example{PAGES[(c * p + t) % len(PAGES)]}"))
    return events


def summary(events, tag: str) -> dict:
    views, account_touches = fold([e for e in events if tag in e.account.account_id])
    return {
        "opportunities": {oid: (roles_of(v), frozenset(v.touches)) for oid, v in views.items()},
        "account_touches": {a: frozenset(t) for a, t in account_touches.items()},
    }


def settled(expected: dict, tag: str):
    def check(events) -> bool:
        try:
            got = summary(events, tag)
        except AssertionError as exc:  # a version gap while output is still arriving, or a changed event
            check.why = str(exc)
            return False
        if got == expected:
            return True
        differ = sorted(o for o in expected["opportunities"].keys() | got["opportunities"].keys()
                        if expected["opportunities"].get(o) != got["opportunities"].get(o))
        check.why = f"opportunities that differ: {differ[:5]}" if differ else "account touches differ"
        return False
    check.why = ""
    return check


async def test_a_worker_killed_mid_stream_resumes_with_the_same_result(grouping_config) -> None:
    tag = uuid.uuid4().hex[:8]
    events = scenario(tag, companies=10, people=6, touches=5)
    expected = summary(Pipeline(grouping_config).feed(*events), tag)
    third = len(events) // 3
    chunks = [events[:third], events[third:2 * third], events[2 * third:]]
    kills = []
    async with fresh_namespace() as namespace:
        worker = Worker(f"grouping-{namespace}crash").start()
        try:
            worker.wait_assigned()
            async with OutputReader() as out:
                # Killed twice: early (before any offset commit) and later (commits behind the
                # changelogs); the next chunk of input arrives while the worker is down.
                for chunk, more in zip(chunks[:2], (20, 150), strict=True):
                    before = len(out.events)
                    await send(chunk)
                    await out.wait(lambda got, n=before + more: len(got) >= n, what="output before the kill")
                    worker.kill()
                    kills.append(len(out.events))
                    worker.start()
                await send(chunks[2])
                await out.wait(settled(expected, tag), timeout=120, what="the same result as an uninterrupted run")
                duplicates = len(out.events) - len({e.event_id for e in out.events})
        finally:
            worker.stop()
    print(f"\nkill -9 after {kills} output events; {len(out.events)} read in all, "
          f"{duplicates} re-emitted duplicates; {len(expected['opportunities'])} opportunities")
    assert summary(out.events, tag) == expected
    assert len(expected["opportunities"]) >= 20


async def test_two_workers_in_one_group_give_the_same_result_as_one(grouping_config) -> None:
    tag = uuid.uuid4().hex[:8]
    events = scenario(tag, companies=8, people=5, touches=4)
    expected = summary(Pipeline(grouping_config).feed(*events), tag)
    async with fresh_namespace() as namespace:
        first, second = Worker(f"grouping-{namespace}a"), Worker(f"grouping-{namespace}b")
        try:
            first.start().wait_assigned()
            second.start()
            # The input arrives as the group rebalances onto two members, the hardest moment.
            second.wait_assigned()
            async with OutputReader() as out:
                await send(events)
                await out.wait(settled(expected, tag), timeout=90, what="the same result as one worker")
            shares = [first.assigned() or [], second.assigned() or []]
        finally:
            second.stop()
            first.stop()
    assert summary(out.events, tag) == expected
    assert all(any(".bg.person-events.v1[" in p for p in share) for share in shares), shares
