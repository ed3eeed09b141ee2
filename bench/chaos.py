"""Chaos: a fixed market through the whole pipeline while a seeded schedule of faults strikes.

    .venv/bin/python -m bench.chaos [--runs 20] [--accounts 30] [--seed 1] [--faults 6]

It brings up a stack of its own (Kafka, PostgreSQL and Redis under /tmp/bg-chaos, on ports
29092/25432/26379, so that it may restart them without harming anything else), then runs
the same market once without faults (the baseline) and `--runs` times with faults. Each
run has its own topic namespace, PostgreSQL schema and state directories, and runs ingest,
grouping, scoring, projection and the alert dispatcher (to a webhook receiver on 127.0.0.1)
as processes. While the market is sent (paced batches, retried when refused, as a platform
retries), the schedule, drawn from `seed + run`, does at random moments:
SIGKILL and restart, SIGTERM and restart (of every service), a Kafka broker restart, a
PostgreSQL restart, a Redis flush. Every run prints its seed and schedule, so a divergence
can be replayed with `--only RUN`.

Measured per run: whether the final projection (opportunities with members, roles, status,
formed_at, score, tier) is identical to the fault-free run's; events lost (sent, no touch row);
touches duplicated (one touch attributed under two versions); facts re-announced (a
formation or role gap of an opportunity, or a stall at one moment, under a second id);
formation signals missing or extra against the fault-free run; timer facts (role_gap,
stalled, reactivated) differing from it, which a fast backfill may judge on partial data
(docs/time.md); alerts lost or duplicated (every signal the run wrote must reach the
webhook receiver exactly once); consumers stuck (records other than clock ticks waiting
behind a group's committed offset once the run settled); services that exited by themselves and were restarted;
and the time from a restarted consumer's start (grouping, scoring, projection, the alert
dispatcher: the process launched) to its partitions' assignment (its "partitions assigned"
log line). Results: docs/benchmarks.md, docs/benchmarks.json, bench-results/chaos.json; each
run's outcome is also appended to bench-results/chaos-runs.jsonl as soon as it is known, so
an interrupted series keeps what it measured. The script exits non-zero when a run diverges.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import random
import re
import subprocess
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from statistics import median

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
# BG_CHAOS_STACK=<dir>:<kafka port>:<controller port>:<postgresql port>:<redis port> runs a
# second series beside the first on a stack of its own (from another checkout, so that the
# services' logs under tests/artifacts stay apart).
VAULT_DB = 1
_DIR, _KAFKA, _CONTROLLER, _PG, _REDIS = os.environ.get(
    "BG_CHAOS_STACK", "/tmp/bg-chaos:29092:29093:25432:26379").split(":")
STACK = {"BG_STACK_DIR": _DIR, "BG_KAFKA_PORT": _KAFKA, "BG_KAFKA_CONTROLLER_PORT": _CONTROLLER,
         "BG_PG_PORT": _PG, "BG_REDIS_PORT": _REDIS, "BG_STACK_SKIP_PYTHON": "1"}
os.environ.update(STACK)
os.environ.update({"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{_KAFKA}",
                   "DATABASE_URL": f"postgresql+asyncpg://bg:bg@127.0.0.1:{_PG}/buyinggroups",
                   "REDIS_URL": f"redis://127.0.0.1:{_REDIS}/0", "BG_ENV": "development",
                   # The privacy vault in a Redis database of its own, as production keeps it apart
                   # (docs/privacy.md): a Redis flush fault flushes ingest's dedupe claims and the
                   # dispatcher's keys, never the vault, which nobody may flush.
                   "BG_VAULT_REDIS_URL": f"redis://127.0.0.1:{_REDIS}/{VAULT_DB}"})

from bench import chaos_timers  # noqa: E402
from bench.chaos_diff import person_labels  # noqa: E402
from bench.common import RESULTS, fresh_namespace, record, save  # noqa: E402  (the stack's addresses first)
from bench.load import canonical_market  # noqa: E402
from services.projection import db  # noqa: E402
from services.scoring.config import load_config  # noqa: E402
from shared import topics  # noqa: E402
from shared.codec import DecodeError, opportunity_log, scoring_messages  # noqa: E402
from shared.schemas.opportunity import ClockTick  # noqa: E402
from shared.settings import DatabaseSettings, kafka_settings  # noqa: E402
from tests.support.processes import ServiceProcess, free_port  # noqa: E402

console = Console()
scoring_config = load_config()
SERVICES = ("ingest", "grouping", "scoring", "projection", "alerts")
CONSUMERS = ("grouping", "scoring", "projection", "alerts")  # services that are assigned partitions
ONCE = ("group_forming", "group_formed", "role_gap")
# Facts an event decides (the same in every run of the same market), and facts the clock
# decides: those may be judged on partial data in a fast backfill (docs/time.md, "Backfill").
EVENT_FACTS = ("group_forming", "group_formed")
TIMER_FACTS = ("role_gap", "stalled", "reactivated")
FAULTS = ("kill", "term", "kafka", "postgresql", "redis")
BATCH = 20
# BG_CLOCK_HISTORY_IDLE_SECONDS of the run's grouping (--history-idle): a pause of the input
# longer than this, while history is sent, moves the clock to the present (docs/time.md).
HISTORY_IDLE = 3.0
CLOCK_KEY = ClockTick(watermarks={}, wall=datetime.now(UTC)).key().encode()


def stack(*args: str) -> None:
    subprocess.run(["bash", str(ROOT / "deploy" / "stack.sh"), *args], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Receiver:
    """The alert webhook: records every delivery's signal id."""

    def __init__(self) -> None:
        self.delivered: list[str] = []
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the stdlib's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with lock:
                    receiver.delivered.append(json.loads(body)["signal"]["signal_id"])
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@dataclass
class Fault:
    at: float  # seconds after the send began
    kind: str
    service: str | None = None
    down: float = 0.0  # seconds the service stays down

    def __str__(self) -> str:
        what = f"{self.kind} {self.service} (down {self.down:.1f} s)" if self.service else f"restart {self.kind}"
        if self.kind == "redis":
            what = "flush redis"
        return f"{self.at:5.1f} s  {what}"


def schedule(seed: int, faults: int, span: float, kinds: tuple[str, ...] = FAULTS) -> list[Fault]:
    """`faults` faults of the given kinds at random moments of the send."""
    rng = random.Random(seed)
    out = []
    for _ in range(faults):
        kind = rng.choice(kinds)
        service = rng.choice(SERVICES) if kind in ("kill", "term") else None
        out.append(Fault(rng.uniform(2, span), kind, service, rng.uniform(0.5, 6)))
    return sorted(out, key=lambda f: f.at)


@dataclass
class Outcome:
    run: int
    seed: int
    faults: list[Fault]
    fingerprint: str = ""
    schema: str = ""  # the run's projection schema, kept for bench/chaos_diff
    lost_events: int = 0
    duplicated_touches: int = 0
    reannounced: int = 0
    signals_missing: int = 0
    signals_extra: int = 0
    alerts_lost: int = 0
    alerts_duplicated: int = 0
    stuck_consumers: list[str] = field(default_factory=list)
    assignment_seconds: dict[str, list[float]] = field(default_factory=dict)  # by service
    supervisor_restarts: int = 0  # services that exited by themselves (Kafka or PostgreSQL away)
    retries: int | None = None  # requests the platform had to send again
    wedged: str = ""  # why the run did not finish, if it did not
    fault_errors: list[str] = field(default_factory=list)  # faults that could not be struck, and why
    timer_facts_differing: int = 0
    timer_facts: dict[str, list[str]] = field(default_factory=dict)  # "missing"/"extra": the differing ids
    # Timer facts this run announced before an event of the opportunity with an earlier event
    # time had arrived (bench/chaos_timers.py), and a few of them as the replay names them.
    timer_facts_partial: int = 0
    partial_examples: list[str] = field(default_factory=list)
    signal_ids: set[str] = field(default_factory=set)
    signal_kinds: dict[str, str] = field(default_factory=dict)


class Pipeline:
    def __init__(self, run: int, schema: str, receiver: Receiver, alerts_config: Path) -> None:
        self.ingest_port, self.api_port = free_port(), free_port()
        namespace = os.environ["BG_TOPIC_NAMESPACE"]
        state = Path(f"{_DIR}/state/run{run}")
        env = {"BG_INGEST_PORT": str(self.ingest_port), "BG_API_PORT": str(self.api_port),
               "PROJECTION_DB_SCHEMA": schema, "LOG_LEVEL": "info", "BG_TOPIC_NAMESPACE": namespace,
               "BG_ALERTS_CONFIG": str(alerts_config), "BG_WORKER_ID": "0",
               # A restarted worker finds its partitions free soon (static membership does the rest).
               "BROKER_SESSION_TIMEOUT": "10", "BROKER_HEARTBEAT_INTERVAL": "1",
               "BG_GROUPING_SESSION_TIMEOUT": "10",
               # The clock is at the present from the first tick (nothing to read yet), so the
               # market is late data, and a run's final records are as of now (docs/time.md).
               "BG_CLOCK_IDLE_SECONDS": "3", "BG_CLOCK_HISTORY_IDLE_SECONDS": str(HISTORY_IDLE),
               "BG_CLOCK_TICK_SECONDS": "1"}
        modules = {"ingest": "services.ingest", "grouping": "services.grouping", "scoring": "services.scoring",
                   "projection": "services.projection", "alerts": "services.scoring.alerts"}
        health = {"ingest": f"http://127.0.0.1:{self.ingest_port}/readyz",
                  "projection": f"http://127.0.0.1:{self.api_port}/readyz"}
        self.procs = {name: ServiceProcess(f"chaos-r{run}-{name}", ["-m", module],
                                           {**env, "BG_STATE_DIR": str(state / name)}, health_url=health.get(name))
                      for name, module in modules.items()}
        self.started_at: dict[str, list[float]] = defaultdict(list)
        self.down: set[str] = set()  # taken down on purpose by a fault
        self.supervisor_restarts = 0

    def start(self, name: str) -> None:
        """Start, and start again until it is up, as a supervisor (systemd, Kubernetes) does: a
        service may refuse to start while Kafka or PostgreSQL is being restarted."""
        deadline = time.monotonic() + 300
        while True:
            self.started_at[name].append(time.time())
            try:
                self.procs[name].start(timeout=60)
                self.down.discard(name)
                return
            except AssertionError:
                self.procs[name].kill()
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)

    def start_all(self) -> None:
        for name in self.procs:
            self.start(name)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            proc.stop()

    async def supervise(self, stop: asyncio.Event) -> None:
        """Restart any service that exited by itself (not one a fault took down)."""
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            for name, proc in self.procs.items():
                if name not in self.down and proc.proc is not None and proc.proc.poll() is not None:
                    self.supervisor_restarts += 1
                    await loop.run_in_executor(None, self.start, name)
            await asyncio.sleep(1)

    def assignment_delays(self) -> dict[str, list[float]]:
        """Per consumer service, seconds from each restart (the process launched, by a fault or by
        the supervisor) to its first "partitions assigned" log line after it. A restart whose
        process never got partitions before it was stopped again is not counted."""
        delays: dict[str, list[float]] = {}
        for name in CONSUMERS:
            text = self.procs[name].log_path.read_text(errors="replace")
            # JSON lines ("ts": ...), or faust's own format ([ts] [pid] [INFO] ...) where a
            # service leaves its logging to faust (scoring).
            stamps = (re.findall(r'"ts": "([^"]+)"[^\n]*"partitions assigned"', text)
                      + re.findall(r'^\[([^\]]+)\] \[\d+\] \[INFO\] partitions assigned', text, re.M))
            assigned = [datetime.strptime(m, "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC).timestamp() for m in stamps]
            restarts = self.started_at[name][1:]
            for i, started in enumerate(restarts):
                following = restarts[i + 1] if i + 1 < len(restarts) else float("inf")
                after = [a for a in assigned if started <= a < following]
                if after:
                    delays.setdefault(name, []).append(round(after[0] - started, 2))
        return delays


async def apply(fault: Fault, pipeline: Pipeline) -> None:
    loop = asyncio.get_running_loop()
    if fault.kind in ("kill", "term"):
        proc = pipeline.procs[fault.service]
        pipeline.down.add(fault.service)
        await loop.run_in_executor(None, proc.kill if fault.kind == "kill" else proc.stop)
        await asyncio.sleep(fault.down)
        await loop.run_in_executor(None, pipeline.start, fault.service)
    elif fault.kind == "redis":
        await loop.run_in_executor(None, lambda: subprocess.run(
            ["redis-cli", "-p", STACK["BG_REDIS_PORT"], "-n", "0", "flushdb"], check=True, stdout=subprocess.DEVNULL))
    else:
        await loop.run_in_executor(None, stack, "restart", fault.kind)


async def send(url: str, events: list[dict], span: float) -> int:
    """POST the market in paced batches; a refused or failed request is retried until taken."""
    retries = 0
    started = time.perf_counter()
    async with aiohttp.ClientSession(url, headers={"X-API-Key": "dev-api-key", "content-type": "application/json"},
                                     timeout=aiohttp.ClientTimeout(total=30)) as client:
        for i in range(0, len(events), BATCH):
            await asyncio.sleep(max(0.0, started + span * i / len(events) - time.perf_counter()))
            body = orjson.dumps({"events": events[i:i + BATCH]})
            while True:
                try:
                    async with client.post("/v1/events", data=body) as r:
                        if r.status == 202:
                            break
                except (TimeoutError, aiohttp.ClientError):
                    pass
                retries += 1
                await asyncio.sleep(0.5)
    return retries


async def read_topic(name: str) -> list:
    consumer = AIOKafkaConsumer(name, **kafka_settings().aiokafka_kwargs(), group_id=f"chaos-{uuid.uuid4().hex}",
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    out = []
    try:
        while batches := await consumer.getmany(timeout_ms=3000, max_records=5000):
            for records in batches.values():
                out += records
    finally:
        await consumer.stop()
    return out


async def projection_state(engine) -> tuple[str, set[str]]:
    """(fingerprint of the final projection, touch ids held). A person id is a pseudonym the
    run's own privacy vault drew at random (docs/privacy.md), so two runs of one market name the
    same person differently: the fingerprint names each member by the smallest id of its touches
    (the market's event ids, the same in every run) instead."""
    from sqlalchemy import select

    from services.projection import schema as t

    o, m, tc = t.opportunities.c, t.opportunity_members.c, t.touches.c
    async with engine.connect() as conn:
        opps = (await conn.execute(select(o.opportunity_id, o.members_count, o.status, o.formed_at, o.score, o.tier)
                                   .order_by(o.opportunity_id))).all()
        members = (await conn.execute(select(m.opportunity_id, m.person_id, m.department, m.role))).all()
        held = (await conn.execute(select(tc.touch_id, tc.person_id))).all()
    label = person_labels((person, touch) for touch, person in held)
    named = sorted((opp, label.get(person, person), department, role) for opp, person, department, role in members)
    blob = json.dumps([[list(map(str, r)) for r in opps], [list(map(str, r)) for r in named]])
    return hashlib.sha256(blob.encode()).hexdigest()[:16], {touch for touch, _ in held}


async def settle(engine, expected: set[str], namespace: str, timeout: float = 600) -> tuple[str, set[str]]:
    """Wait until every touch is projected, every consumer group of the run has read its
    input to the end, and the projection stopped changing for 15 s."""
    deadline = time.monotonic() + timeout
    last = None
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        try:
            state = await projection_state(engine)
        except Exception:  # PostgreSQL restarting: its pool's connections are gone for a moment
            await asyncio.sleep(2)
            continue
        if state[0] != (last[0] if last else None):
            quiet_since = time.monotonic()
        last = state
        # Quiet for longer than the history idle time: the clock has moved to the present.
        if expected <= state[1] and time.monotonic() - quiet_since >= 15 + HISTORY_IDLE:
            try:
                if not await stuck(namespace):
                    return state
            except Exception as exc:  # the broker restarting: its coordinator is not known yet
                console.print(f"  (consumer offsets not readable yet: {exc!r})")
        await asyncio.sleep(2)
    return last


async def last_state(engine, attempts: int = 30) -> tuple[str, set[str]]:
    """The projection as it is (a wedged run), read again while PostgreSQL is away."""
    for _ in range(attempts - 1):
        try:
            return await asyncio.wait_for(projection_state(engine), 60)
        except Exception:
            await asyncio.sleep(2)
    return await asyncio.wait_for(projection_state(engine), 60)


async def stuck(namespace: str) -> list[str]:
    """Consumer groups of the run whose committed offsets trail their inputs' end offsets by
    records other than clock ticks (grouping writes a tick, key "#clock", to every partition of
    its stages and of bg.opportunity.v1 every few seconds, so a healthy group is nearly always a
    few ticks behind: those are in flight, not waiting). The records between each committed
    offset and the end are read and the ticks left out. Raises the Kafka client's error when the
    broker does not answer (a restart)."""
    admin = AIOKafkaAdminClient(**kafka_settings().aiokafka_kwargs())
    await admin.start()
    consumer = AIOKafkaConsumer(**kafka_settings().aiokafka_kwargs(), enable_auto_commit=False)
    await consumer.start()
    behind = []
    try:
        groups = [g for g, _ in await admin.list_consumer_groups() if g.startswith(namespace)]
        for group in groups:
            offsets = {tp: meta.offset for tp, meta in (await admin.list_consumer_group_offsets(group)).items()
                       if not tp.topic.endswith("-changelog")}
            if not offsets:
                continue
            ends = await consumer.end_offsets(list(offsets))
            waiting = sum([await waiting_records(consumer, tp, committed, ends[tp])
                           for tp, committed in offsets.items() if ends[tp] > max(committed, 0)])
            if waiting:
                behind.append(f"{group} ({waiting} records other than clock ticks behind)")
    finally:
        await admin.close()
        await consumer.stop()
    return behind


async def waiting_records(consumer: AIOKafkaConsumer, tp, committed: int, end: int) -> int:
    """How many records of partition `tp` in [committed, end) are not clock ticks (key "#clock",
    shared/schemas/opportunity.py ClockTick.key). `committed` -1 (nothing committed) reads from
    the partition's start."""
    consumer.assign([tp])
    if committed < 0:
        await consumer.seek_to_beginning(tp)
    else:
        consumer.seek(tp, committed)
    count = 0
    while await consumer.position(tp) < end:
        batch = await consumer.getmany(tp, timeout_ms=2000, max_records=5000)
        records = batch.get(tp, [])
        if not records:
            break  # compacted or deleted away: nothing readable waits
        count += sum(r.key != CLOCK_KEY for r in records if r.offset < end)
    return count


async def one_run(run: int, seed: int, faults: int, events: list[dict], span: float, receiver: Receiver,
                  alerts_config: Path, kinds: tuple[str, ...] = FAULTS) -> Outcome:
    namespace = await fresh_namespace(f"chaos{run}-")
    schema = f"chaos_{uuid.uuid4().hex[:8]}"
    plan = schedule(seed, faults, span, kinds) if run else []
    outcome = Outcome(run, seed, plan, schema=schema)
    console.print(f"[bold]run {run}[/] seed {seed}: " + ("no faults (baseline)" if not plan else
                                                          "; ".join(str(f) for f in plan)))
    subprocess.run(["redis-cli", "-p", STACK["BG_REDIS_PORT"], "flushall"], check=True, stdout=subprocess.DEVNULL)
    receiver.delivered.clear()
    pipeline = Pipeline(run, schema, receiver, alerts_config)
    engine = db.create_engine(DatabaseSettings().database_url, schema)
    stop = asyncio.Event()
    try:
        pipeline.start_all()
        started = time.perf_counter()

        async def strike() -> None:
            for fault in plan:
                await asyncio.sleep(max(0.0, started + fault.at - time.perf_counter()))
                try:
                    await apply(fault, pipeline)
                except Exception as exc:  # a fault that could not be struck is reported, the run goes on
                    outcome.fault_errors.append(f"{fault}: {exc!r}")
                    console.print(f"  [red]fault failed[/]: {fault}: {exc!r}")

        supervisor = asyncio.create_task(pipeline.supervise(stop))
        expected = {e["event_id"] for e in events}
        try:
            # A run that does not finish sending or settle in time is reported as wedged.
            outcome.retries = (await asyncio.wait_for(asyncio.gather(
                send(f"http://127.0.0.1:{pipeline.ingest_port}", events, span), strike()), span + 240))[0]
            fingerprint, touches = await asyncio.wait_for(settle(engine, expected, namespace), 300)
        except Exception as exc:  # TimeoutError, or the bench's own reads failing: the run is reported
            outcome.wedged = (f"did not {'settle' if outcome.retries is not None else 'take the market'} in time"
                              if isinstance(exc, TimeoutError) else f"error: {exc!r}")
            console.print(f"  [red]wedged[/]: {outcome.wedged}")
            fingerprint, touches = await last_state(engine)
        await asyncio.sleep(5)  # the dispatcher trails the projection
        stop.set()
        await supervisor
        outcome.supervisor_restarts = pipeline.supervisor_restarts
        outcome.fingerprint = fingerprint
        outcome.lost_events = len(expected - touches)
        try:
            outcome.stuck_consumers = await stuck(namespace)
        except Exception as exc:
            outcome.stuck_consumers = [f"offsets not readable: {exc!r}"]
        outcome.assignment_seconds = pipeline.assignment_delays()
    finally:
        stop.set()
        pipeline.stop_all()
        await engine.dispose()

    attributed: dict[str, set[int]] = defaultdict(set)
    log = await read_topic(topics.OPPORTUNITY_EVENTS.name)
    partitions: dict[int, list[chaos_timers.Record]] = defaultdict(list)
    for r in sorted(log, key=lambda r: (r.partition, r.offset)):
        partitions[r.partition].append(chaos_timers.Record(r.offset, r.timestamp, r.value))
    partial = [f for f in chaos_timers.judge(partitions, scoring_config) if f.partial]
    outcome.timer_facts_partial = len(partial)
    outcome.partial_examples = [f"{f.signal_id}: announced at partition {f.partition} offset {f.offset}, the clock "
                                f"moved by {f.moved_by}; arrived later: {f.late[0]}" for f in partial[:5]]
    for r in log:
        try:
            message = opportunity_log.decode(r.value)
        except DecodeError:
            continue
        if message.type == "touch_attributed":
            attributed[message.touch.event_id].add(message.version)
    outcome.duplicated_touches = sum(1 for versions in attributed.values() if len(versions) > 1)
    facts: dict[tuple, set[str]] = defaultdict(set)
    for r in await read_topic(topics.SIGNALS.name):
        signal = scoring_messages.decode(r.value)
        outcome.signal_ids.add(signal.signal_id)
        outcome.signal_kinds[signal.signal_id] = signal.signal
        # One fact: a formation or role gap of an opportunity (once ever), a stall at a moment.
        if signal.signal in ONCE:
            facts[(signal.opportunity_id, signal.signal)].add(signal.signal_id)
        elif signal.signal == "stalled":
            facts[(signal.opportunity_id, signal.signal, signal.occurred_at)].add(signal.signal_id)
    outcome.reannounced = sum(len(ids) - 1 for ids in facts.values())
    counts = Counter(receiver.delivered)
    # Every signal this run wrote is routed (alerts.yaml below): each must arrive exactly once.
    outcome.alerts_lost = len(outcome.signal_ids - set(counts))
    outcome.alerts_duplicated = sum(n - 1 for n in counts.values())
    await drop_topics(namespace)
    return outcome


async def drop_topics(namespace: str) -> None:
    """Delete a measured run's topics: a broker with thousands of old partitions takes longer to
    restart than the stack waits (a Kafka restart fault then fails, and the run measures an outage)."""
    admin = AIOKafkaAdminClient(**kafka_settings().aiokafka_kwargs())
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(namespace)]
        if names:
            await admin.delete_topics(names)
    except Exception as exc:  # the topics stay; the next run is slower to restart, not wrong
        console.print(f"  (topics of {namespace} not deleted: {exc!r})")
    finally:
        await admin.close()


def alerts_yaml(port: int) -> Path:
    path = Path(f"{_DIR}/alerts.yaml")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"""webhooks:
  receiver: {{url: "http://127.0.0.1:{port}/hook", format: json, lang: en}}
routing:
  default: [receiver]
  owners: {{}}
  signals: [group_forming, group_formed, group_expanded, role_gap, priority_changed, stalled, reactivated]
delivery: {{attempts: 20, backoff_initial: 0.2, backoff_max: 2, timeout: 5}}
cooldown_seconds: 0
dedupe_ttl_seconds: 86400
redis_prefix: "bg:alerts:"
web_base_url: http://127.0.0.1:8082
start: earliest
include_backfill: true
""")
    return path


async def main(runs: int, accounts: int, seed: int, faults: int, span: float, only: int | None,
               kinds: tuple[str, ...]) -> int:
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    console.print("bringing up the chaos stack (its own Kafka, PostgreSQL and Redis)")
    stack("up")
    receiver = Receiver()
    config = alerts_yaml(receiver.port)
    events = canonical_market(accounts, tag="chaos")
    baseline = await one_run(0, seed, 0, events, span, receiver, config)
    outcomes = []
    for run in range(1, runs + 1):
        if only is not None and run != only:
            continue
        try:
            outcome = await one_run(run, seed + run, faults, events, span, receiver, config, kinds)
        except Exception as exc:  # the bench itself failed (reading a topic after a fault): reported
            console.print_exception()
            outcome = Outcome(run, seed + run, schedule(seed + run, faults, span, kinds), wedged=f"error: {exc!r}")
        kind_of = {**baseline.signal_kinds, **outcome.signal_kinds}
        differing = baseline.signal_ids ^ outcome.signal_ids
        outcome.signals_missing = sum(kind_of[i] in EVENT_FACTS for i in baseline.signal_ids - outcome.signal_ids)
        outcome.signals_extra = sum(kind_of[i] in EVENT_FACTS for i in outcome.signal_ids - baseline.signal_ids)
        outcome.timer_facts_differing = sum(kind_of[i] in TIMER_FACTS for i in differing)
        outcome.timer_facts = {
            "missing": sorted(i for i in baseline.signal_ids - outcome.signal_ids if kind_of[i] in TIMER_FACTS),
            "extra": sorted(i for i in outcome.signal_ids - baseline.signal_ids if kind_of[i] in TIMER_FACTS)}
        outcomes.append(outcome)
        same = outcome.fingerprint == baseline.fingerprint
        RESULTS.mkdir(exist_ok=True)
        with open(RESULTS / "chaos-runs.jsonl", "a") as runs_file:
            runs_file.write(json.dumps({"at": datetime.now(UTC).isoformat(timespec="seconds"), "base_seed": seed,
                                        "baseline": baseline.fingerprint, **run_summary(outcome, baseline)}) + "\n")
        console.print(f"  identical: {same}; lost {outcome.lost_events}, duplicated touches "
                      f"{outcome.duplicated_touches}, re-announced {outcome.reannounced}, formation signals missing "
                      f"{outcome.signals_missing} extra {outcome.signals_extra}, timer facts differing "
                      f"{outcome.timer_facts_differing}, alerts lost {outcome.alerts_lost} "
                      f"duplicated {outcome.alerts_duplicated}, stuck {outcome.stuck_consumers or 'none'}, "
                      f"restart -> assigned (s) {outcome.assignment_seconds or 'n/a'}, timer facts judged on "
                      f"partial data {outcome.timer_facts_partial} (fault-free run {baseline.timer_facts_partial})")
        for example in outcome.partial_examples[:2]:
            console.print(f"    {example}")
    stack("down")
    report(baseline, outcomes, runs, accounts, seed, faults, len(events), kinds)
    bad = [o for o in outcomes if o.wedged or o.fingerprint != baseline.fingerprint or o.lost_events
           or o.duplicated_touches or o.reannounced or o.signals_missing or o.signals_extra or o.alerts_lost
           or o.alerts_duplicated or o.stuck_consumers]
    return 1 if bad or baseline.lost_events or baseline.reannounced or baseline.alerts_lost else 0


def report(baseline: Outcome, outcomes: list[Outcome], runs: int, accounts: int, seed: int, faults: int,
           events: int, kinds: tuple[str, ...]) -> None:
    injected = Counter(f"{f.kind} {f.service}" if f.service else f.kind for o in outcomes for f in o.faults)
    identical = sum(o.fingerprint == baseline.fingerprint for o in outcomes)
    delays = [d for o in outcomes for ds in o.assignment_seconds.values() for d in ds]
    by_service = {name: sorted(d for o in outcomes for d in o.assignment_seconds.get(name, [])) for name in CONSUMERS}
    table = Table(title=f"Chaos: {len(outcomes)} runs with faults, {events} events of {accounts} accounts")
    for col in ("measure", "value"):
        table.add_column(col)
    rows = [("runs identical to the fault-free run", f"{identical} of {len(outcomes)}"),
            ("events lost", sum(o.lost_events for o in outcomes)),
            ("touches duplicated", sum(o.duplicated_touches for o in outcomes)),
            ("signals re-announced (same fact, new id)", sum(o.reannounced for o in outcomes)),
            ("formation signals missing / extra vs fault-free", f"{sum(o.signals_missing for o in outcomes)} / "
                                                                 f"{sum(o.signals_extra for o in outcomes)}"),
            ("timer facts differing from the fault-free run (judged on partial data in a fast backfill)",
             sum(o.timer_facts_differing for o in outcomes)),
            ("timer facts announced before an earlier event of their opportunity arrived (fault-free run: "
             f"{baseline.timer_facts_partial})", sum(o.timer_facts_partial for o in outcomes)),
            ("alerts lost / duplicated (of the run's own signals)", f"{sum(o.alerts_lost for o in outcomes)} / "
                                         f"{sum(o.alerts_duplicated for o in outcomes)}"),
            ("services that exited by themselves and were restarted", sum(o.supervisor_restarts for o in outcomes)),
            ("runs with a consumer stuck", sum(bool(o.stuck_consumers) for o in outcomes)),
            ("runs wedged (did not take the market or settle in time)", sum(bool(o.wedged) for o in outcomes)),
            ("requests retried by the sender", sum(o.retries or 0 for o in outcomes)),
            ("restart -> partitions assigned (s), median / max (restarts)",
             f"{median(delays):.1f} / {max(delays):.1f} ({len(delays)})" if delays else "n/a"),
            *((f"  {name}", f"{median(ds):.1f} / {max(ds):.1f} ({len(ds)})") for name, ds in by_service.items() if ds),
            ("faults injected", ", ".join(f"{k} x{n}" for k, n in sorted(injected.items())))]
    for name, value in rows:
        table.add_row(name, str(value))
    console.print(table)
    command = (f".venv/bin/python -m bench.chaos --runs {runs} --accounts {accounts} --seed {seed} --faults {faults}"
               f" --kinds {' '.join(kinds)} --history-idle {HISTORY_IDLE:g}")
    record("chaos_runs_identical", identical, "runs", len(outcomes), command)
    record("chaos_events_lost", sum(o.lost_events for o in outcomes), "events", None, command)
    record("chaos_alerts_duplicated", sum(o.alerts_duplicated for o in outcomes), "alerts", None, command)
    record("chaos_touches_duplicated", sum(o.duplicated_touches for o in outcomes), "touches", None, command)
    if delays:
        record("chaos_restart_to_assignment_median", round(median(delays), 2), "s", None, command)
        record("chaos_restart_to_assignment_max", round(max(delays), 2), "s", None, command)
    save("chaos", {"runs": [run_summary(o, baseline) for o in outcomes],
                   "faults_injected": dict(injected), "command": command})


def run_summary(o: Outcome, baseline: Outcome) -> dict:
    """One run's figures as bench-results/chaos.json keeps them."""
    return {"run": o.run, "seed": o.seed, "faults": [str(f) for f in o.faults],
            "identical": o.fingerprint == baseline.fingerprint, "fingerprint": o.fingerprint,
            "schema": o.schema, "baseline_schema": baseline.schema, "history_idle": HISTORY_IDLE,
            "lost_events": o.lost_events, "duplicated_touches": o.duplicated_touches, "reannounced": o.reannounced,
            "signals_missing": o.signals_missing, "signals_extra": o.signals_extra,
            "timer_facts_differing": o.timer_facts_differing, "timer_facts": o.timer_facts,
            "timer_facts_partial": o.timer_facts_partial, "partial_examples": o.partial_examples,
            "alerts_lost": o.alerts_lost, "alerts_duplicated": o.alerts_duplicated,
            "stuck": o.stuck_consumers, "assignment_seconds": o.assignment_seconds,
            "supervisor_restarts": o.supervisor_restarts, "wedged": o.wedged, "fault_errors": o.fault_errors,
            "retries": o.retries}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--accounts", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--faults", type=int, default=6, help="faults per run")
    parser.add_argument("--span", type=float, default=60.0, help="seconds over which the market is sent")
    parser.add_argument("--only", type=int, help="replay one run of the schedule (its number)")
    parser.add_argument("--kinds", nargs="+", choices=FAULTS, default=list(FAULTS), help="fault kinds to draw from")
    parser.add_argument("--history-idle", type=float, default=HISTORY_IDLE,
                        help="grouping's BG_CLOCK_HISTORY_IDLE_SECONDS (production: 300)")
    args = parser.parse_args()
    HISTORY_IDLE = args.history_idle

    async def entry() -> None:
        code = await main(args.runs, args.accounts, args.seed, args.faults, args.span, args.only, tuple(args.kinds))
        # aiokafka's background tasks may outlive a broker restart and hold asyncio's shutdown
        # (cancelling them hung a series once): leave at once, the report written.
        console.file.flush()
        os._exit(code)

    asyncio.run(entry())
