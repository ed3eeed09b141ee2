"""Where live latency goes: the delay each hop of the pipeline adds, from the log's own stamps.

    .venv/bin/python -m bench.hops [--accounts 60] [--rate 50] [--profile DIR]

Needs the local stack (bash deploy/stack.sh up). Starts one worker per service in a fresh
topic namespace (bench.pipeline.Services), sends a shuffled canonical market live (every
event's `occurred_at` = the moment it is sent, requests of 10, bench.live_latency.post_live)
at `--rate` events/s, and reads every topic a touch crosses. Grouping's internal messages
carry the stage and input position that produced them (`bg-origin`, `bg-seq`,
services/grouping/stages.py), so each record is matched with the record it came from; the
delay of a hop is the difference of their Kafka timestamps (the producer's clock at send: it
covers the parent's acknowledgement, the fetch, the batch wait and the work). Scoring's hop
is a group_formed signal against the opportunity record of its last trigger touch.
Prints p50/p99 per hop, for the first and the second half of the run (a queue that builds
shows as a later half slower than the first). With --profile, py-spy records every service.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import uuid
from collections import defaultdict
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer
from rich.console import Console
from rich.table import Table

from bench.common import fresh_namespace, run
from bench.live_latency import post_live
from bench.load import canonical_market
from bench.pipeline import Services, groups_stable, quantile, warm_up
from bench.profiles import Profiler
from services.projection import db
from shared import topics
from shared.settings import DatabaseSettings, kafka_settings

console = Console()
# The input topic of each grouping stage, as named in the `bg-origin` stamp.
STAGE_INPUT = {"route": "person-events", "persons": "persons", "names": "names", "accounts": "accounts"}


def _topics() -> dict[str, str]:
    ns = os.environ.get("BG_TOPIC_NAMESPACE", "")
    return {"person-events": topics.PERSON_EVENTS.name, "persons": f"{ns}bg-grouping-persons",
            "names": f"{ns}bg-grouping-names", "accounts": f"{ns}bg-grouping-accounts",
            "opportunity": topics.OPPORTUNITY_EVENTS.name, "signal": topics.SIGNALS.name}


async def read_all(stop: asyncio.Event, out: dict[tuple[str, int, int], tuple[float, dict, bytes]]) -> None:
    """Every record of the topics a touch crosses: (short topic, partition, offset) -> (ts s, headers, value)."""
    names = _topics()
    short = {v: k for k, v in names.items()}
    consumer = AIOKafkaConsumer(*names.values(), **kafka_settings().aiokafka_kwargs(),
                                group_id=f"bench-hops-{uuid.uuid4().hex[:6]}", auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    try:
        while not stop.is_set():
            for tp, records in (await consumer.getmany(timeout_ms=300)).items():
                for r in records:
                    out[(short[tp.topic], tp.partition, r.offset)] = (r.timestamp / 1000, dict(r.headers), r.value)
    finally:
        await consumer.stop()


def hop_delays(records: dict[tuple[str, int, int], tuple[float, dict, bytes]],
               sent_at: dict[str, float]) -> dict[str, list[tuple[float, float]]]:
    """Per hop, (wall time of the child, delay in ms) pairs."""
    delays: dict[str, list[tuple[float, float]]] = defaultdict(list)
    opportunity_at: dict[str, float] = {}
    began = min(sent_at.values())  # the warm-up's records, which waited for the start, do not count
    for (topic, _, _), (ts, headers, value) in records.items():
        origin, seq = headers.get("bg-origin"), headers.get("bg-seq")
        if topic == "person-events":
            event_id = orjson.loads(value).get("event_id")
            if event_id in sent_at:
                delays["ingest (acked -> record)"].append((ts, (ts - sent_at[event_id]) * 1000))
        if origin and seq:
            stage, _, partition = origin.decode().partition("/")
            offset = int(seq.decode().partition(".")[0])
            parent = records.get((STAGE_INPUT.get(stage, ""), int(partition), offset))
            if parent is not None and parent[0] >= began:
                delays[f"{stage} -> {topic}"].append((ts, (ts - parent[0]) * 1000))
        if topic == "opportunity":
            touch = (orjson.loads(value).get("touch") or {}).get("event_id")
            if touch:
                opportunity_at[touch] = max(ts, opportunity_at.get(touch, 0.0))
    for (topic, _, _), (ts, _, value) in records.items():
        if topic != "signal":
            continue
        signal = orjson.loads(value)
        if signal.get("signal") != "group_formed":
            continue
        triggers = [opportunity_at[t] for t in signal.get("trigger_event_ids", ()) if t in opportunity_at]
        if triggers:
            delays["scoring: opportunity -> group_formed"].append((ts, (ts - max(triggers)) * 1000))
        acked = [sent_at[t] for t in signal.get("trigger_event_ids", ()) if t in sent_at]
        if acked:
            delays["end to end: ingest ack -> group_formed"].append((ts, (ts - max(acked)) * 1000))
    return delays


async def main(accounts: int, rate: float, profile: str | None, dump: str | None = None) -> None:
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    await fresh_namespace("bench-hops-")
    events = canonical_market(accounts, tag=uuid.uuid4().hex[:4])
    random.Random(5).shuffle(events)  # companies interleave, as they do live
    records: dict[tuple[str, int, int], tuple[float, dict, bytes]] = {}
    sent_at: dict[str, float] = {}
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    engine = db.create_engine(DatabaseSettings().database_url, schema)
    with Services(1, schema) as services:
        await warm_up(f"http://127.0.0.1:{services.ingest_port}", engine)
        await groups_stable(("grouping", "scoring"), 1)
        profiler = Profiler(Path(profile)) if profile else None
        if profiler:
            for service, p in services.procs:
                profiler.attach(service, p.proc.pid)
        stop = asyncio.Event()
        reader = asyncio.create_task(read_all(stop, records))
        await post_live(f"http://127.0.0.1:{services.ingest_port}", events, rate, sent_at, lambda: None)
        await asyncio.sleep(5)  # the last touches' signals trail them
        if profiler:
            profiler.stop()
        stop.set()
        await reader
    await engine.dispose()
    if dump:
        import pickle
        Path(dump).write_bytes(pickle.dumps((records, sent_at)))
    delays = hop_delays(records, sent_at)
    table = Table(title=f"{len(events)} events of {accounts} companies, live at {rate:.0f} events/s: "
                        "delay each hop adds (ms)")
    for col in ("hop", "n", "p50", "p99", "p50 1st half", "p50 2nd half"):
        table.add_column(col)
    for hop, pairs in sorted(delays.items()):
        values = [d for _, d in pairs]
        middle = sorted(t for t, _ in pairs)[len(pairs) // 2]
        first = [d for t, d in pairs if t < middle] or values
        second = [d for t, d in pairs if t >= middle] or values
        table.add_row(hop, str(len(values)), f"{quantile(values, .5):,.0f}", f"{quantile(values, .99):,.0f}",
                      f"{quantile(first, .5):,.0f}", f"{quantile(second, .5):,.0f}")
    console.print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=60)
    parser.add_argument("--rate", type=float, default=50, help="events/s, sent live")
    parser.add_argument("--profile", help="py-spy every service into this directory")
    parser.add_argument("--dump")
    args = parser.parse_args()
    run(main(args.accounts, args.rate, args.profile, args.dump))
