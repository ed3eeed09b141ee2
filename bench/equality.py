"""Identical final projection through the whole pipeline (issue 11): one market, four ways.

    .venv/bin/python -m bench.equality [--accounts 24] [--variants clean replay kill two_workers]

Needs the local stack (bash deploy/stack.sh up). One fixed market (`bench/load.py`'s
`canonical_market`) goes through ingest -> grouping -> scoring -> projection (PostgreSQL), each
variant in a topic namespace, a database schema and a state directory of its own:
- clean: one worker per service, the market POSTed to ingest;
- replay: the clean run's `bg.person-events.v1` copied (keys, partitions, timestamps) into a
  new namespace and read by fresh grouping, scoring and projection (fresh consumer groups,
  fresh state): the same log processed a second time;
- kill: like clean, the market sent at 60 events/s; grouping killed (SIGKILL) once a sixth of
  it has touch rows and restarted 3 s later, then scoring killed once half has touch rows and
  restarted 3 s later, both while the market is still arriving;
- two_workers: two grouping and two scoring workers (partitions split between them), started
  and stable before the market is sent.

Each variant's final projection (once every touch has a row, every opportunity's score is at
its latest version and nothing changed for `--quiet` seconds) is compared with the clean run's,
opportunity by opportunity and field by field: members (a person named by their first touch's
id, as person ids are pseudonyms drawn per namespace) with department, role, role source and
touch count; status, formed_at, score, tier and the score's own record (status, formed_at,
stalled_since, as_of); member and touch counts, departments, covered and missing roles.
Differences are printed per opportunity and field; exit 1 when any variant's projection differs.

Apart, and not a condition of the exit status: the ids of the signals each opportunity
announced. The record is a function of the touch set; the announcements are what was known
when each message was processed (docs/time.md), so where grouping's partitions interleave
differently (a restart, two workers) a group's expansions can be announced in other batches
and a score between two touches can cross a tier at another moment.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
import uuid
from collections.abc import Callable

import aiohttp
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from bench.common import fresh_namespace, record, save
from bench.load import canonical_market
from bench.pipeline import Services, groups_stable, post_all
from services.projection import db
from services.projection import schema as tables
from shared import topics
from shared.settings import DatabaseSettings
from tests.support.kafka import copy_log

console = Console()
VARIANTS = ("clean", "replay", "kill", "two_workers")
# What is compared of an opportunity row (members apart).
OPPORTUNITY_FIELDS = ("status", "formed_at", "score", "tier", "score_status", "score_formed_at",
                      "score_stalled_since", "score_as_of", "members_count", "touches_count", "departments",
                      "covered_roles", "missing_roles")
Snapshot = dict[str, dict[str, object]]
# The workers as deploy/services.sh runs them: static membership (BG_WORKER_ID), so a restarted
# worker takes its partitions back without waiting for the dead one's session to end. As the
# component tests: a head message faust lost after a rebalance is read again within 10 s, not 60
# (shared/liveness.py, issue 19). The clock's idle times are bench/pipeline.py's (Services).
RUN_AS = {"static_membership": True, "stall_seconds": 10.0}


async def snapshot(engine, opportunities: str = "%") -> Snapshot:
    """The projection's opportunities whose id is LIKE `opportunities`:
    {opportunity id: {field: value, "members": [...], "signals": [signal id, ...]}}."""
    o, m, s = tables.opportunities.c, tables.opportunity_members.c, tables.signals.c
    async with engine.connect() as conn:
        first_touch = dict((await conn.execute(select(
            tables.touches.c.person_id, func.min(tables.touches.c.touch_id),
        ).group_by(tables.touches.c.person_id))).all())
        members = (await conn.execute(select(m.opportunity_id, m.person_id, m.department, m.role, m.role_source,
                                             m.touches_count).where(m.opportunity_id.like(opportunities)))).all()
        rows = (await conn.execute(select(o.opportunity_id, *(o[f] for f in OPPORTUNITY_FIELDS))
                                   .where(o.opportunity_id.like(opportunities)))).mappings().all()
        signals = (await conn.execute(select(s.opportunity_id, s.signal_id, s.signal, s.detail)
                                      .where(s.opportunity_id.like(opportunities)))).all()
    out: Snapshot = {r["opportunity_id"]: {f: r[f] for f in OPPORTUNITY_FIELDS} | {"members": [], "signals": []}
                     for r in rows}
    for opp, signal_id, kind, detail in signals:
        if kind == "group_expanded":
            # Its id digests person ids, pseudonyms drawn per namespace: named by what it adds.
            people = sorted(first_touch.get(p, p) for p in detail.get("new_members", "").split(",") if p)
            signal_id = f"{opp}:group_expanded:{'+'.join(people)}#{detail.get('new_roles', '')}"
        out.setdefault(opp, {"members": [], "signals": []})["signals"].append(signal_id)
    for opp, person, department, role, source, count in members:
        out.setdefault(opp, {"members": [], "signals": []})["members"].append(
            (first_touch.get(person, person), department, role, source, count))
    for row in out.values():
        row["members"], row["signals"] = sorted(row["members"]), sorted(row["signals"])
    return out


async def settled(engine, events: int, quiet: float, timeout: float = 900.0, opportunities: str = "%",
                  event_ids: str = "%") -> Snapshot:
    """The snapshot (of the opportunities LIKE `opportunities`) once `events` events LIKE
    `event_ids` have a touch row, every such opportunity's score is at its latest version, and
    two readings `quiet` seconds apart are the same. AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Snapshot | None = None
    o = tables.opportunities.c
    while time.monotonic() < deadline:
        async with engine.connect() as conn:
            # A touch row's touch_id is the input event's id (its event_id the opportunity event's).
            touched = await conn.scalar(select(func.count(func.distinct(tables.touches.c.touch_id)))
                                        .where(tables.touches.c.touch_id.like(event_ids)))
            behind = await conn.scalar(select(func.count()).where(
                o.opportunity_id.like(opportunities), o.version > func.coalesce(o.score_version, 0)))
        now = await snapshot(engine, opportunities) if touched >= events and behind == 0 else None
        if now is not None and now == last:
            return now
        last = now
        await asyncio.sleep(quiet)
    raise AssertionError(f"the projection did not settle in {timeout}s ({touched} of {events} events have a "
                         f"touch row, {behind} opportunities' scores behind)")


def differences(expected: Snapshot, got: Snapshot) -> list[tuple[str, str, object, object]]:
    """(opportunity, field, expected, got) for every field that differs, members as one field
    per person."""
    out = []
    for opp in sorted(expected.keys() | got.keys()):
        a, b = expected.get(opp), got.get(opp)
        if a is None or b is None:
            out.append((opp, "(row)", "present" if a else "absent", "present" if b else "absent"))
            continue
        for f in OPPORTUNITY_FIELDS:
            if a.get(f) != b.get(f):
                out.append((opp, f, a.get(f), b.get(f)))
        ma, mb = {x[0]: x[1:] for x in a["members"]}, {x[0]: x[1:] for x in b["members"]}
        for person in sorted(ma.keys() | mb.keys()):
            if ma.get(person) != mb.get(person):
                out.append((opp, f"member {person} (department, role, source, touches)", ma.get(person),
                            mb.get(person)))
    return out


def signal_differences(expected: Snapshot, got: Snapshot) -> dict[str, dict[str, list[str]]]:
    """{opportunity: {"only_expected": ids, "only_got": ids}} where the announced signal ids differ."""
    out = {}
    for opp in sorted(expected.keys() & got.keys()):
        a, b = set(expected[opp]["signals"]), set(got[opp]["signals"])
        if a != b:
            out[opp] = {"only_expected": sorted(a - b), "only_got": sorted(b - a)}
    return out


def _kind(signal_id: str) -> str:
    """group_expanded, priority_changed, ... from `<account>:<solution>:<kind>[:...]`."""
    return signal_id.split(":")[2]


async def until(check: Callable[[], object], what: str, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {timeout}s")
        await asyncio.sleep(0.2)


async def touch_rows(engine) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(select(func.count(func.distinct(tables.touches.c.touch_id))))


async def score_rows(engine) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(select(func.count()).where(tables.opportunities.c.score_version.is_not(None)))


async def run(variant: str, events: list[dict], quiet: float, source_ns: str | None) -> tuple[Snapshot, str, dict]:
    """One variant; returns its settled snapshot, its namespace and what happened (kills)."""
    ns = await fresh_namespace(f"equality-{variant}-")
    schema = f"equality_{variant}_{uuid.uuid4().hex[:6]}"
    engine = db.create_engine(DatabaseSettings().database_url, schema)
    notes: dict = {}
    try:
        if variant == "replay":
            notes["copied"] = await copy_log(source_ns + topics.PERSON_EVENTS.base_name,
                                             ns + topics.PERSON_EVENTS.base_name)
            with Services(1, schema, name=f"equality-{variant}", ingest=False, **RUN_AS):
                return await settled(engine, len(events), quiet), ns, notes
        workers = 2 if variant == "two_workers" else 1
        with Services(workers, schema, name=f"equality-{variant}", **RUN_AS) as stack:
            if variant == "two_workers":
                await groups_stable(("grouping", "scoring"), workers)
            if variant != "kill":
                await post_all(stack.ingest_url, events, 0, {}, lambda: None)
                return await settled(engine, len(events), quiet), ns, notes
            grouping, scoring = stack.process("grouping"), stack.process("scoring")
            n = len(events)
            sending = asyncio.create_task(post_paced(stack.ingest_url, events, KILL_PACE))
            # Each killed while it works and while the market is still arriving, down for a few
            # seconds while more arrives, then restarted.
            await until(lambda: _above(touch_rows, engine, n // 6), "grouping's first touch rows")
            grouping.kill()
            notes["grouping killed at touch rows"] = await touch_rows(engine)
            await asyncio.sleep(3)
            grouping.start(timeout=180)
            await until(lambda: _above(score_rows, engine, 1), "scores")
            await until(lambda: _above(touch_rows, engine, n // 2), "touch rows after grouping's restart")
            scoring.kill()
            notes["scoring killed at touch rows, scored opportunities"] = (await touch_rows(engine),
                                                                           await score_rows(engine))
            notes["market still arriving when scoring was killed"] = not sending.done()
            await asyncio.sleep(3)
            scoring.start(timeout=180)
            await sending
            return await settled(engine, len(events), quiet), ns, notes
    finally:
        await engine.dispose()


KILL_PACE = 60.0  # events/s while the kill variant strikes: the market takes ~15 s to arrive


async def post_paced(url: str, events: list[dict], per_second: float, batch: int = 20) -> None:
    """POST `events` in batches of `batch`, at `per_second` events per second."""
    started = time.monotonic()
    async with aiohttp.ClientSession(url, headers={"X-API-Key": "dev-api-key"}) as client:
        for i in range(0, len(events), batch):
            await asyncio.sleep(max(0.0, started + i / per_second - time.monotonic()))
            async with client.post("/v1/events", json={"events": events[i:i + batch]}) as r:
                assert r.status == 202, await r.text()


async def _above(count, engine, n: int) -> bool:
    return await count(engine) >= n


async def main(accounts: int, variants: list[str], quiet: float, save_figures: bool, verbose: bool) -> bool:
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    events = canonical_market(accounts, tag="eq")
    console.print(f"market: {len(events)} touch events of {accounts} companies")
    results: dict[str, Snapshot] = {}
    notes: dict[str, dict] = {}
    clean_ns = None
    for variant in ["clean", *(v for v in variants if v != "clean")]:
        started = time.monotonic()
        results[variant], ns, notes[variant] = await run(variant, events, quiet, clean_ns)
        clean_ns = clean_ns or ns
        console.print(f"{variant}: {len(results[variant])} opportunities, settled in "
                      f"{time.monotonic() - started:.0f} s {notes[variant] or ''}")
    base = results["clean"]
    table = Table(title=f"Final projection against the clean run ({len(base)} opportunities)")
    for col in ("variant", "opportunities differing", "fields differing", "signal ids differing (opportunities)"):
        table.add_column(col)
    summary = {}
    for variant, snap in results.items():
        if variant == "clean":
            continue
        diffs, signals = differences(base, snap), signal_differences(base, snap)
        kinds: dict[str, int] = {}
        for d in signals.values():
            for signal_id in {*d["only_expected"], *d["only_got"]}:
                kinds[_kind(signal_id)] = kinds.get(_kind(signal_id), 0) + 1
        summary[variant] = {"opportunities_differing": len({d[0] for d in diffs}),
                            "differences": [list(map(str, d)) for d in diffs],
                            "signals_differing_opportunities": len(signals), "signal_ids_differing_by_kind": kinds,
                            "signal_differences": signals, "notes": notes[variant]}
        table.add_row(variant, str(summary[variant]["opportunities_differing"]), str(len(diffs)),
                      f"{len(signals)} ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items())) or '-'})")
        for opp, f, a, b in diffs:
            console.print(f"  {variant}: {opp} {f}: clean {a!s} | {variant} {b!s}")
        if verbose:
            for opp, d in signals.items():
                console.print(f"  {variant}: {opp} signals only in clean {d['only_expected']}, "
                              f"only in {variant} {d['only_got']}")
    console.print(table)
    same = all(s["opportunities_differing"] == 0 for s in summary.values())
    formed = sum(1 for r in base.values() if r["formed_at"] is not None)
    path = save("equality", {"events": len(events), "accounts": accounts, "opportunities": len(base),
                             "formed": formed, "variants": summary})
    console.print(f"projection identical in every variant: {same} ({formed} of {len(base)} opportunities formed); "
                  f"saved {path}")
    if save_figures:
        command = f".venv/bin/python -m bench.equality --accounts {accounts} --variants {' '.join(variants)} --record"
        for variant, s in summary.items():
            record(f"equality.opportunities_differing.{variant}", s["opportunities_differing"],
                   "opportunities", len(base), command)
            record(f"equality.signal_ids_differing.{variant}", s["signals_differing_opportunities"],
                   "opportunities", len(base), command)
    return same


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=24)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--quiet", type=float, default=10.0, help="seconds without change before reading")
    parser.add_argument("--record", action="store_true", help="append the figures to docs/benchmarks.json")
    parser.add_argument("--signals", action="store_true", help="print the differing signal ids")
    args = parser.parse_args()
    os.environ.setdefault("BG_STATE_DIR", "/tmp/state-equality")  # Services makes it
    if not asyncio.run(main(args.accounts, args.variants, args.quiet, args.record, args.signals)):
        console.print("[red]the final projections differ (see above)")
        raise SystemExit(1)
