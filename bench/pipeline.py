"""End-to-end performance: ingest -> grouping -> scoring -> projection, with a pass-through ceiling.

    .venv/bin/python -m bench.pipeline [--accounts 400] [--workers 1 2] [--latency-rate 200]

Needs the local stack (bash deploy/stack.sh up). For each worker count it starts its own
services in a fresh topic namespace and PostgreSQL schema (ingest and projection: one
process; grouping and scoring: that many processes each, partitions split between them),
then measures:
- sustained throughput: canonical events POSTed as fast as ingest takes them (batches of
  500), until every event's touch row is in PostgreSQL: events / elapsed seconds;
- latency from touch to group_formed: a second run paced at --latency-rate events/s; for each
  group_formed signal, the time Kafka stamped on the signal minus the time ingest
  acknowledged the touch that completed the group (p50/p95/p99);
- peak resident memory of every service process (VmHWM);
- CPU per event of each service: its CPU seconds (user + system, all its workers) from the
  first request until the projection settled, less what its workers use idle (measured over
  IDLE_SECONDS with no event flowing, just before the load) over that span; the idle rate is
  reported apart, per second (the shared servers: from the first request to the last touch
  row, nothing taken out);
- the final projection's fingerprint (opportunities, members, roles, scores, tiers, whether
  the group formed), which must be the same for every worker count.
The ceiling is a bare aiokafka produce-then-consume pass of as many messages on the same broker.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import shutil
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.admin import DescribeGroupsRequest_v1
from aiokafka.protocol.api import Request
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import func, select

from bench.common import cpu_seconds, fresh_namespace, peak_rss_mib, record, records_in, save, servers_cpu
from bench.load import canonical_market
from bench.profiles import Profiler
from services.projection import db
from services.projection import schema as tables
from shared import topics
from shared.codec import DecodeError, encode, scoring_messages
from shared.schemas.touch import TouchEvent
from shared.settings import DatabaseSettings, WorkerSettings, kafka_settings
from tests.support.processes import ServiceProcess, free_port

console = Console()
BATCH = 500


@dataclass
class Run:
    workers: int
    events: int
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    peak_rss_mib: dict[str, float] = field(default_factory=dict)
    # Per service, all its workers: CPU seconds the run's events cost (idle cost over the span taken out),
    # CPU seconds per second while idle, and every CPU second of the span (first request -> settled).
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    idle_cpu_per_s: dict[str, float] = field(default_factory=dict)
    cpu_span_seconds: dict[str, float] = field(default_factory=dict)
    fingerprint: str = ""
    startup_seconds: float = 0.0  # services started until the warm-up market was in PostgreSQL
    records: dict[str, int] = field(default_factory=dict)  # Kafka records per topic at the end, warm-up included

    @property
    def records_per_event(self) -> float:
        return sum(self.records.values()) / self.events

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1] if len(values) > 1 else values[0]


@dataclass
class Ceiling:
    rate: float  # messages/s
    kafka_cpu_per_record_us: float  # the broker's CPU per message of the pass
    client_cpu_per_record_us: float  # this process's CPU per message: one produce and one consume

    def floor_rate(self, records_per_event: float) -> float:
        """Events/s of a pipeline whose services only moved records, as cheaply as this pass
        did, `records_per_event` per input event each produced and consumed once, with no
        database: every core of the machine (os.cpu_count) busy, nothing else running. An
        upper bound on what the real pipeline can reach on the same machine."""
        per_event_us = records_per_event * (self.kafka_cpu_per_record_us + self.client_cpu_per_record_us)
        return (os.cpu_count() or 1) * 1e6 / per_event_us


async def passthrough(n: int) -> Ceiling:
    """Ceiling: produce n messages of a touch's size with acks=all, then consume them all; the
    broker's CPU is read around it (servers_cpu), the price of a record in big batches."""
    await fresh_namespace("bench-ceiling-")
    topic = topics.PERSON_EVENTS.name
    settings = kafka_settings()
    value = encode(TouchEvent.model_validate(canonical_market(1)[0]))  # a real message's bytes
    producer = AIOKafkaProducer(**settings.aiokafka_kwargs(), acks="all", enable_idempotence=True, linger_ms=2)
    consumer = AIOKafkaConsumer(topic, **settings.aiokafka_kwargs(), group_id=f"ceiling-{uuid.uuid4().hex[:6]}",
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await producer.start()
    await consumer.start()
    try:
        started, kafka_before, own_before = time.perf_counter(), servers_cpu()["kafka"], cpu_seconds(os.getpid())
        sends = [await producer.send(topic, key=f"k{i % 997}".encode(), value=value) for i in range(n)]
        await asyncio.gather(*sends)
        seen = 0
        while seen < n:
            for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                for record in records:
                    orjson.loads(record.value)
                    seen += 1
        return Ceiling(n / (time.perf_counter() - started), 1e6 * (servers_cpu()["kafka"] - kafka_before) / n,
                       1e6 * (cpu_seconds(os.getpid()) - own_before) / n)
    finally:
        await producer.stop()
        await consumer.stop()


class Services:
    """The pipeline's services as processes in the current topic namespace and the PostgreSQL
    `schema`: ingest (unless `ingest=False`) and projection, one process each, and `workers`
    grouping and scoring processes each (partitions split between them).

    `name` prefixes the processes' names (their logs: tests/artifacts/<name>-<service>[-<w>].log).
    `static_membership`: worker w runs with BG_WORKER_ID=w, as deploy/services.sh runs them (a
    restarted worker takes its partitions back at once). `stall_seconds`: BG_STALL_SECONDS,
    unset leaving the services' default (60 s). Each grouping and scoring worker has a state
    directory of its own, under a temporary one in BG_STATE_DIR (default .stack/state) removed
    on exit. `procs`: (service, process) pairs; `process(service, w)` one of them."""

    def __init__(self, workers: int, schema: str, *, name: str = "bench", ingest: bool = True,
                 static_membership: bool = False, stall_seconds: float | None = None) -> None:
        self.ingest_port, self.api_port = free_port(), free_port()
        env = {"BG_INGEST_PORT": str(self.ingest_port), "BG_API_PORT": str(self.api_port),
               "PROJECTION_DB_SCHEMA": schema, "LOG_LEVEL": "warn",
               # The clock reaches the present seconds after the load ends, before the projection
               # is read as final (docs/time.md): every run's records are then as of now.
               "BG_CLOCK_IDLE_SECONDS": "3", "BG_CLOCK_HISTORY_IDLE_SECONDS": "3", "BG_CLOCK_TICK_SECONDS": "1"}
        if stall_seconds is not None:
            env["BG_STALL_SECONDS"] = str(stall_seconds)
        root = WorkerSettings().state_dir
        root.mkdir(parents=True, exist_ok=True)
        self.state = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=root)).resolve()
        self.procs: list[tuple[str, ServiceProcess]] = []
        if ingest:
            self.procs.append(("ingest", ServiceProcess(f"{name}-ingest", ["-m", "services.ingest"], env,
                                                        health_url=f"{self.ingest_url}/readyz")))
        self.procs.append(("projection", ServiceProcess(f"{name}-projection", ["-m", "services.projection"], env,
                                                        health_url=f"http://127.0.0.1:{self.api_port}/readyz")))
        for service in ("grouping", "scoring"):
            for w in range(workers):
                # A state directory of its own: two workers of one service on one host.
                worker = {**env, "BG_STATE_DIR": str(self.state / f"w{w}")}
                if static_membership:
                    worker["BG_WORKER_ID"] = str(w)
                self.procs.append((service, ServiceProcess(f"{name}-{service}-{w}", ["-m", f"services.{service}"],
                                                           worker)))

    @property
    def ingest_url(self) -> str:
        return f"http://127.0.0.1:{self.ingest_port}"

    def process(self, service: str, worker: int = 0) -> ServiceProcess:
        """The `worker`th process of `service` (IndexError when there is none)."""
        return [p for s, p in self.procs if s == service][worker]

    def __enter__(self) -> Services:
        for _, p in self.procs:
            p.start(timeout=180)
        return self

    def __exit__(self, *exc) -> None:
        for _, p in self.procs:
            p.stop()
        shutil.rmtree(self.state, ignore_errors=True)

    def cpu(self) -> dict[str, float]:
        """CPU seconds (user + system) used so far per service, summed over its workers."""
        out: dict[str, float] = {}
        for service, p in self.procs:
            out[service] = out.get(service, 0.0) + cpu_seconds(p.proc.pid)
        return out

    def memory(self) -> dict[str, float]:
        """Peak RSS per service; with several workers, the largest of them."""
        out: dict[str, float] = {}
        for service, p in self.procs:
            out[service] = max(out.get(service, 0.0), peak_rss_mib(p.proc.pid))
        return out


# How long the idle cost of each service is measured before the load (seconds): commit timer,
# clock ticks (1 s in this benchmark), heartbeats, fetch polls; paid per worker and per second.
IDLE_SECONDS = 15.0


async def idle_rate(services: Services, seconds: float = IDLE_SECONDS) -> dict[str, float]:
    """CPU seconds per second each service uses, all its workers, while no event flows."""
    before, started = services.cpu(), time.monotonic()
    await asyncio.sleep(seconds)
    after, elapsed = services.cpu(), time.monotonic() - started
    return {k: (after[k] - before[k]) / elapsed for k in before}


async def post_all(url: str, events: list[dict], rate: float, acked_at: dict[str, float], progress) -> None:
    """POST in batches of BATCH (4 in flight), paced to `rate` events/s when rate > 0."""
    limit = asyncio.Semaphore(4)
    started = time.perf_counter()
    async with aiohttp.ClientSession(url, headers={"X-API-Key": "dev-api-key",
                                                   "content-type": "application/json"}) as client:
        async def post(i: int, chunk: list[dict]) -> None:
            if rate > 0:
                await asyncio.sleep(max(0.0, started + i * BATCH / rate - time.perf_counter()))
            async with limit, client.post("/v1/events", data=orjson.dumps({"events": chunk})) as r:
                answer = await r.json()
                assert r.status == 202, answer
            now = time.time()
            for e in chunk:
                acked_at[e["event_id"]] = now
            progress()

        chunks = [events[i:i + BATCH] for i in range(0, len(events), BATCH)]
        await asyncio.gather(*(post(i, c) for i, c in enumerate(chunks)))


# The warm-up market: the same event ids in every run (so every run's fingerprint holds them).
WARM_UP_ACCOUNTS = 2


class _DescribeGroupsV1(Request[DescribeGroupsRequest_v1]):
    """DescribeGroups v1. aiokafka 0.14's describe_consumer_groups sends v3 and decodes the
    answer as v2 (a buffer underrun against Kafka 3.9). Rows: (error, group id, state,
    protocol type, protocol, members)."""

    API_KEY = 15

    def __init__(self, groups: list[str]) -> None:
        self._groups = groups

    def build(self, request_struct_class: type[DescribeGroupsRequest_v1]) -> DescribeGroupsRequest_v1:
        return request_struct_class(self._groups)


async def groups_stable(services: tuple[str, ...], workers: int, timeout: float = 300.0) -> None:
    """Wait until each stream service's consumer group is Stable with all `workers` members, so
    that no rebalance (a second worker joining late) falls inside the measured run."""
    namespace = os.environ.get("BG_TOPIC_NAMESPACE", "")
    ids = [f"{namespace}bg-{service}" for service in services]
    admin = AIOKafkaAdminClient(**kafka_settings().aiokafka_kwargs())
    await admin.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = []
            for group in ids:
                node = await admin.find_coordinator(group)
                rows += (await admin._client.send(node, _DescribeGroupsV1([group]))).groups
            if len(rows) == len(ids) and all(g[2] == "Stable" and len(g[5]) == workers for g in rows):
                return
            await asyncio.sleep(0.5)
        raise AssertionError(f"consumer groups not stable with {workers} member(s) each after {timeout}s: {rows}")
    finally:
        await admin.close()


async def warm_up(url: str, engine) -> int:
    """Send a small market of its own and wait until every touch row is in PostgreSQL; returns
    how many events it sent.

    A service's first seconds (imports, joining its consumer group, creating internal topics,
    recovering tables) are not what a running system costs: measured without this, the first
    touches of a run queued for 8 s behind grouping's start, and most groups of a shuffled
    market form in those seconds. The start-up is reported apart (`startup_seconds`).
    """
    events = canonical_market(WARM_UP_ACCOUNTS, seed=3, tag="warm")
    await post_all(url, events, 0, {}, lambda: None)
    await touches_in_db(engine, len(events), timeout=300)
    return len(events)


async def touches_in_db(engine, n: int, timeout: float) -> float:
    """Wall time at which the projection holds a touch row for all n events. A row's touch_id
    is the input event's id; its event_id is the opportunity log's, one per scope a touch
    counts for, so counting those ran ahead of the events (bench/soak.py saw 0.5% more)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with engine.connect() as conn:
            count = await conn.scalar(select(func.count(func.distinct(tables.touches.c.touch_id))))
        if count >= n:
            return time.time()
        await asyncio.sleep(0.25)
    raise AssertionError(f"the projection has {count} of {n} events after {timeout}s")


async def fingerprint(engine) -> str:
    """Opportunities (members, status, formed_at, score, tier) and their members' roles:
    records scoring computes over each opportunity's full touch set (docs/time.md), so they
    must not depend on worker counts, restarts or how partitions interleave.

    A person is named by their first touch's id: person ids are pseudonyms drawn at
    random per person and per topic namespace (shared/privacy), so each run names the same
    person differently, while the market's touch ids are the same in every run."""
    async with engine.connect() as conn:
        first_touch = dict((await conn.execute(select(
            tables.touches.c.person_id, func.min(tables.touches.c.touch_id),
        ).group_by(tables.touches.c.person_id))).all())
        members = (await conn.execute(select(
            tables.opportunity_members.c.opportunity_id, tables.opportunity_members.c.person_id,
            tables.opportunity_members.c.department, tables.opportunity_members.c.role,
        ).order_by(tables.opportunity_members.c.opportunity_id, tables.opportunity_members.c.person_id))).all()
        opportunities = (await conn.execute(select(
            tables.opportunities.c.opportunity_id, tables.opportunities.c.score, tables.opportunities.c.tier,
            tables.opportunities.c.formed_at, tables.opportunities.c.status, tables.opportunities.c.members_count,
        ).order_by(tables.opportunities.c.opportunity_id))).all()
    named = sorted([o, first_touch.get(p, p), d, r] for o, p, d, r in members)
    blob = json.dumps([[list(map(str, r)) for r in named], [list(map(str, r)) for r in opportunities]])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


async def settled_fingerprint(engine, quiet: float = 10.0, timeout: float = 300.0) -> str:
    """The fingerprint once scores and signals stopped changing: they trail the touch rows."""
    deadline = time.monotonic() + timeout
    last = await fingerprint(engine)
    while time.monotonic() < deadline:
        await asyncio.sleep(quiet)
        now = await fingerprint(engine)
        if now == last:
            return now
        last = now
    raise AssertionError(f"the projection still changed after {timeout}s")


async def watch_formed(stop: asyncio.Event, out: list[tuple[float, tuple[str, ...]]]) -> None:
    consumer = AIOKafkaConsumer(topics.SIGNALS.name, **kafka_settings().aiokafka_kwargs(),
                                group_id=f"bench-{uuid.uuid4().hex[:6]}", auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    try:
        while not stop.is_set():
            for records in (await consumer.getmany(timeout_ms=300)).values():
                for record in records:
                    try:
                        signal = scoring_messages.decode(record.value)
                    except DecodeError:
                        continue
                    if signal.signal == "group_formed":
                        out.append((record.timestamp / 1000, signal.trigger_event_ids))
    finally:
        await consumer.stop()


async def one_run(workers: int, accounts: int, rate: float, profile: Path | None = None) -> Run:
    namespace = await fresh_namespace(f"bench-w{workers}-")
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    events = canonical_market(accounts)  # the same ids every run: the fingerprints must match
    result = Run(workers, len(events))
    engine = db.create_engine(DatabaseSettings().database_url, schema)
    formed: list[tuple[float, tuple[str, ...]]] = []
    acked_at: dict[str, float] = {}
    booted = time.time()
    with Services(workers, schema) as services:
        url = f"http://127.0.0.1:{services.ingest_port}"
        warm = await warm_up(url, engine)
        await groups_stable(("grouping", "scoring"), workers)
        result.startup_seconds = time.time() - booted
        result.idle_cpu_per_s = await idle_rate(services)
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch_formed(stop, formed))
        label = f"{workers} worker(s), " + (f"paced at {rate:.0f} events/s" if rate else "full speed")
        profiler = Profiler(profile / f"w{workers}") if profile else None
        if profiler:
            for i, (service, p) in enumerate(services.procs):
                profiler.attach(f"{service}-{i}", p.proc.pid)
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task(label, total=len(events) // BATCH + 1)
            started = time.time()
            cpu_before = services.cpu() | servers_cpu()
            await post_all(url, events, rate, acked_at, lambda: bar.advance(task))
        done = await touches_in_db(engine, warm + len(events), timeout=900)
        # The servers until the last touch row: other sessions share them, so what they use
        # idle is not theirs to take out.
        servers = {k: v - cpu_before[k] for k, v in servers_cpu().items()}
        # The services until the projection settled, not until the last touch row: scoring (and
        # the projection's scores) trail the touch rows; with one worker scoring spent about 40%
        # of its CPU for the run after the last row (docs/benchmarks.md, "Two workers: CPU per event").
        result.fingerprint = await settled_fingerprint(engine)
        span = time.time() - started
        result.cpu_span_seconds = {k: v - cpu_before[k] for k, v in services.cpu().items()}
        result.cpu_seconds = {k: v - result.idle_cpu_per_s[k] * span
                              for k, v in result.cpu_span_seconds.items()} | servers
        if profiler:
            profiler.stop()
        stop.set()
        await watcher
        result.seconds = done - started
        result.peak_rss_mib = services.memory()
    await engine.dispose()
    result.records = await records_in(namespace)
    result.latencies_ms = [(ts - max(acked_at[t] for t in triggers if t in acked_at)) * 1000
                           for ts, triggers in formed if any(t in acked_at for t in triggers)]
    return result


async def main(accounts: int, workers: list[int], latency_rate: float, profile: Path | None) -> bool:
    """Runs and prints the benchmark; False when the runs' final projections differ."""
    # Leadership settles on freshly created topics; aiokafka retries and would log each retry.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    events = len(canonical_market(accounts))
    bare = await passthrough(events)
    ceiling = bare.rate
    console.print(f"ceiling: bare aiokafka produce+consume of {events} messages: {ceiling:,.0f} msg/s; CPU per "
                  f"record: the broker {bare.kafka_cpu_per_record_us:.0f} µs, the client "
                  f"{bare.client_cpu_per_record_us:.0f} µs")
    runs = [await one_run(w, accounts, 0, profile) for w in workers]
    paced = await one_run(workers[0], accounts, latency_rate) if latency_rate else None

    table = Table(title=f"Pipeline: {events} touch events of {accounts} accounts, ingest -> PostgreSQL row")
    for col in ("workers", "events/s", "vs ceiling", "ingest MiB", "grouping MiB", "scoring MiB",
                "projection MiB", "projection fingerprint"):
        table.add_column(col)
    for r in runs:
        m = r.peak_rss_mib
        table.add_row(str(r.workers), f"{r.rate:,.0f}", f"{r.rate / ceiling:.1%}", f"{m['ingest']:.0f}",
                      f"{m['grouping']:.0f}", f"{m['scoring']:.0f}", f"{m['projection']:.0f}", r.fingerprint)
    console.print(table)
    for r in runs:
        console.print(f"start-up, {r.workers} worker(s): {r.startup_seconds:.1f} s until the warm-up market "
                      "was in PostgreSQL (not in the figures above)")
    for r in runs:
        console.print(f"CPU ms per event, {r.workers} worker(s), idle cost taken out: " + ", ".join(
            f"{k} {1000 * v / r.events:.2f}" for k, v in r.cpu_seconds.items()))
        console.print(f"  idle CPU-s per second, {r.workers} worker(s): " + ", ".join(
            f"{k} {v:.3f}" for k, v in r.idle_cpu_per_s.items()) + "; with idle cost: " + ", ".join(
            f"{k} {1000 * v / r.events:.2f}" for k, v in r.cpu_span_seconds.items()) + " ms per event")
    for r in runs:
        written = sum(r.records.values())
        console.print(f"Kafka records written per input event, {r.workers} worker(s): {written / r.events:.1f} "
                      f"(warm-up included; by topic: " + ", ".join(
                          f"{t} {n / r.events:.2f}" for t, n in sorted(r.records.items(), key=lambda x: -x[1]) if n)
                      + f"); the broker's CPU per record {1e6 * r.cpu_seconds['kafka'] / written:.0f} µs")
        floor = bare.floor_rate(r.records_per_event)
        console.print(f"upper bound, {r.workers} worker(s): services that only moved these records as cheaply as the "
                      f"ceiling pass, and no database, on all {os.cpu_count()} cores: {floor:,.0f} events/s "
                      f"({floor / ceiling:.1%} of the ceiling)")
    latency = None
    if paced is not None:
        lat = paced.latencies_ms
        latency = {"rate": latency_rate, "workers": paced.workers, "groups": len(lat),
                   "p50_ms": round(quantile(lat, .5)), "p95_ms": round(quantile(lat, .95)),
                   "p99_ms": round(quantile(lat, .99))}
        console.print(f"latency touch -> group_formed at {latency_rate:.0f} events/s ({len(lat)} groups, "
                      f"{paced.workers} worker(s)): p50 {latency['p50_ms']:,} ms, p95 {latency['p95_ms']:,} ms, "
                      f"p99 {latency['p99_ms']:,} ms")
    fingerprints = {r.workers: r.fingerprint for r in runs} | ({"paced": paced.fingerprint} if paced else {})
    same = len(set(fingerprints.values())) == 1
    console.print(f"final projection identical across runs: {same} {fingerprints}")
    path = save("pipeline", {
        "events": events, "accounts": accounts, "ceiling_msgs_per_s": round(ceiling),
        "ceiling_kafka_cpu_us_per_record": round(bare.kafka_cpu_per_record_us, 1),
        "ceiling_client_cpu_us_per_record": round(bare.client_cpu_per_record_us, 1),
        "runs": [{"workers": r.workers, "events_per_s": round(r.rate), "vs_ceiling": round(r.rate / ceiling, 4),
                  "peak_rss_mib": {k: round(v) for k, v in r.peak_rss_mib.items()},
                  "cpu_ms_per_event": {k: round(1000 * v / r.events, 3) for k, v in r.cpu_seconds.items()},
                  "idle_cpu_s_per_s": {k: round(v, 4) for k, v in r.idle_cpu_per_s.items()},
                  "cpu_ms_per_event_with_idle": {k: round(1000 * v / r.events, 3)
                                                 for k, v in r.cpu_span_seconds.items()},
                  "startup_seconds": round(r.startup_seconds, 1), "fingerprint": r.fingerprint,
                  "kafka_records": r.records,
                  "upper_bound_events_per_s": round(bare.floor_rate(r.records_per_event))} for r in runs],
        "latency": latency,
        "identical_projection": same,
    })
    console.print(f"saved {path}")
    if not same:  # figures of runs that disagree are not headline figures
        return False
    command = f".venv/bin/python -m bench.pipeline --accounts {accounts} --workers {' '.join(map(str, workers))}"
    for r in runs:
        # Against the ceiling measured in the same run: the ratio is the share of a bare Kafka pass.
        record(f"pipeline.events_per_s.{r.workers}_worker", r.rate, "events/s", ceiling, command)
        # What services that only moved the run's records, as cheaply as the ceiling, could reach.
        record(f"pipeline.upper_bound_events_per_s.{r.workers}_worker", bare.floor_rate(r.records_per_event),
               "events/s", ceiling, command)
        for service, seconds in r.cpu_seconds.items():
            record(f"pipeline.cpu_ms_per_event.{service}.{r.workers}_worker", 1000 * seconds / r.events,
                   "CPU ms/event", None, command)
            if service in r.idle_cpu_per_s:
                record(f"pipeline.idle_cpu_s_per_s.{service}.{r.workers}_worker", r.idle_cpu_per_s[service],
                       "CPU s/s", None, command)
    return same


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=400)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--latency-rate", type=float, default=200, help="0: no paced latency run")
    parser.add_argument("--profile", type=Path, help="py-spy every service in the full-speed runs into this directory")
    args = parser.parse_args()
    if not asyncio.run(main(args.accounts, args.workers, args.latency_rate, args.profile)):
        console.print("[red]FAILED: the final projections differ between runs (nothing recorded in "
                      "docs/benchmarks.json)")
        raise SystemExit(1)
