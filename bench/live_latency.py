"""Live latency: touch -> group_formed when event time is now (issue 11).

    .venv/bin/python -m bench.live_latency [--accounts 200] [--fraction 0.5]

Needs the local stack (bash deploy/stack.sh up). In one run, with one worker per service in
a fresh namespace and PostgreSQL schema:
1. the sustained rate: the canonical market (bench/load.py) POSTed as fast as ingest takes it,
   until every touch row is in PostgreSQL (events/s), the baseline;
2. live pacing at `--fraction` of that rate: a fresh market whose every event is stamped with
   the moment it is sent (`occurred_at` = now), in requests of 10 events; for each
   group_formed signal, the time Kafka stamped on the signal minus the time ingest
   acknowledged the touch that completed the group;
3. the same market replayed at full speed with its original (months old) event times, the
   accelerated replay the old benchmark measured, as a second, labelled line.
Figures go to docs/benchmarks.json (live p50/p99, sustained rate) and bench-results/.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import time
import uuid
from datetime import UTC, datetime

import aiohttp
import orjson
from rich.console import Console
from rich.progress import Progress

from bench.common import fresh_namespace, record, run, save
from bench.load import canonical_market
from bench.pipeline import BATCH, Services, groups_stable, post_all, quantile, touches_in_db, warm_up, watch_formed
from services.projection import db
from shared.settings import DatabaseSettings

console = Console()
LIVE_BATCH = 10


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


async def post_live(url: str, events: list[dict], rate: float, acked_at: dict[str, float], progress) -> None:
    """POST in requests of LIVE_BATCH at `rate` events/s, one after another, as a platform's
    sender does; each event is stamped when it is sent, and a refused connection is retried."""
    started = time.perf_counter()
    async with aiohttp.ClientSession(url, headers={"X-API-Key": "dev-api-key",
                                                   "content-type": "application/json"}) as client:
        for i in range(0, len(events), LIVE_BATCH):
            chunk = events[i:i + LIVE_BATCH]
            await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
            for attempt in range(3):
                stamped = [{**e, "occurred_at": _now()} for e in chunk]
                try:
                    async with client.post("/v1/events", data=orjson.dumps({"events": stamped})) as r:
                        answer = await r.json()
                        assert r.status == 202, answer
                    break
                except aiohttp.ClientOSError:
                    if attempt == 2:
                        raise
            now = time.time()
            for e in chunk:
                acked_at[e["event_id"]] = now
            progress()


async def measure(accounts: int, rate: float, live: bool, tag: str) -> tuple[float, list[float], int]:
    """(seconds until every touch row is in PostgreSQL, latencies in ms, events) of one run."""
    await fresh_namespace(f"bench-live-{tag}-")
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    events = canonical_market(accounts, tag=tag)
    if live:  # people of many companies interleave, as they do live
        random.Random(5).shuffle(events)
    engine = db.create_engine(DatabaseSettings().database_url, schema)
    formed: list[tuple[float, tuple[str, ...]]] = []
    acked_at: dict[str, float] = {}
    with Services(1, schema) as services:
        url = f"http://127.0.0.1:{services.ingest_port}"
        warm = await warm_up(url, engine)  # a running system, not one still starting
        await groups_stable(("grouping", "scoring"), 1)
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch_formed(stop, formed))
        label = f"live at {rate:.0f} events/s" if live else "full speed (event times months old)"
        size = LIVE_BATCH if live else BATCH
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task(label, total=len(events) // size + 1)
            started = time.time()
            if live:
                await post_live(url, events, rate, acked_at, lambda: bar.advance(task))
            else:
                await post_all(url, events, 0, acked_at, lambda: bar.advance(task))
        done = await touches_in_db(engine, warm + len(events), timeout=900)
        await asyncio.sleep(2)  # the last signals trail the touch rows
        stop.set()
        await watcher
    await engine.dispose()
    latencies = [(ts - max(acked_at[t] for t in triggers if t in acked_at)) * 1000
                 for ts, triggers in formed if any(t in acked_at for t in triggers)]
    return done - started, latencies, len(events)


async def main(accounts: int, fraction: float) -> None:
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    seconds, replay_lat, n = await measure(accounts, 0, live=False, tag="s")
    sustained = n / seconds
    console.print(f"sustained: {n} events in {seconds:.1f} s = {sustained:,.0f} events/s (one worker per service)")
    rate = sustained * fraction
    _, live_lat, _ = await measure(accounts, rate, live=True, tag="l")
    if not live_lat or not replay_lat:
        raise SystemExit("no group_formed signal was matched to its touches: the benchmark measured nothing")
    p = {q: quantile(live_lat, q) for q in (.5, .95, .99)}
    r = {q: quantile(replay_lat, q) for q in (.5, .99)}
    console.print(f"live, occurred_at = now, at {rate:,.0f} events/s ({fraction:.0%} of sustained), "
                  f"{len(live_lat)} groups: touch -> group_formed p50 {p[.5]:,.0f} ms, p95 {p[.95]:,.0f} ms, "
                  f"p99 {p[.99]:,.0f} ms")
    console.print(f"accelerated replay (months of event time at full speed), {len(replay_lat)} groups: "
                  f"p50 {r[.5]:,.0f} ms, p99 {r[.99]:,.0f} ms")
    command = f".venv/bin/python -m bench.live_latency --accounts {accounts} --fraction {fraction}"
    # Half the sustained rate is issue 11's criterion; other fractions are kept under their own names.
    suffix = {0.5: "", 0.25: "_quarter_rate"}.get(fraction, f"_at_{fraction:g}_of_sustained")
    record(f"live_formed_latency_p50{suffix}", p[.5], "ms", None, command)
    record(f"live_formed_latency_p99{suffix}", p[.99], "ms", 1000.0, command)
    record(f"live_sustained_rate{suffix}", sustained, "events/s", None, command)
    path = save("live_latency", {
        "accounts": accounts, "events": n, "sustained_events_per_s": round(sustained),
        "live": {"rate": round(rate), "groups": len(live_lat), "p50_ms": round(p[.5]), "p95_ms": round(p[.95]),
                 "p99_ms": round(p[.99])},
        "accelerated_replay": {"groups": len(replay_lat), "p50_ms": round(r[.5]), "p99_ms": round(r[.99])},
    })
    console.print(f"saved {path}")
    if p[.99] >= 1000:
        raise SystemExit(f"live p99 {p[.99]:.0f} ms is not under 1 s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--fraction", type=float, default=0.5, help="live rate as a fraction of the sustained rate")
    args = parser.parse_args()
    run(main(args.accounts, args.fraction))
