"""Failover: how soon a restarted stream worker consumes again (issue 19, items 12 and 13).

    .venv/bin/python -m bench.failover [--service grouping scoring] [--faults kill term]
                                       [--rounds 4] [--second] [--patience 150]

For each service and fault, in a namespace of its own: a worker (and with --second a second
worker of the same group, which keeps running) consumes a first batch; then, per round, the
fault strikes the first worker (SIGKILL, or SIGTERM and a clean exit), a batch is written while
it is down, and it is started again. Measured per restart, from the process's launch:
- `assigned`: its first "partitions assigned" log line;
- `caught up`: the group's committed offsets on the service's input topic reached the ends the
  topic had after the batch was written (everything written before and during the outage was
  processed), or `stuck` when that did not happen within --patience seconds.
Inputs: grouping reads touch events (bench.load's market, fresh ids per round), scoring reads
clock ticks (the cheapest message its processor handles). The worker's settings are the
environment's (BG_WORKER_ID, BG_GROUPING_SESSION_TIMEOUT, BROKER_SESSION_TIMEOUT, ...), so the
same command measures before and after a change of them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from rich.console import Console
from rich.table import Table

from bench.common import fresh_namespace, save
from bench.load import canonical_market
from shared import topics
from shared.codec import encode
from shared.schemas.opportunity import ClockTick
from shared.schemas.touch import TouchEvent
from shared.settings import kafka_settings
from tests.support.processes import ServiceProcess

console = Console(width=140)
MODULES = {"grouping": "services.grouping", "scoring": "services.scoring"}
INPUTS = {"grouping": topics.PERSON_EVENTS, "scoring": topics.OPPORTUNITY_EVENTS}


@dataclass
class Restart:
    service: str
    fault: str
    second: bool
    assigned: float | None = None
    caught_up: float | None = None  # None: stuck for the whole patience


@dataclass
class Series:
    restarts: list[Restart] = field(default_factory=list)


def _stamps(text: str) -> list[float]:
    """Unix times of the "partitions assigned" lines: JSON logs, or faust's own format."""
    found = (re.findall(r'"ts": "([^"]+)"[^\n]*"partitions assigned"', text)
             + re.findall(r'^\[([^\]]+)\] \[\d+\] \[INFO\] partitions assigned', text, re.M))
    return sorted(datetime.strptime(m, "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC).timestamp() for m in found)


async def write_batch(service: str, tag: str, size: int) -> None:
    producer = AIOKafkaProducer(**kafka_settings().aiokafka_kwargs(), acks="all", enable_idempotence=True,
                                linger_ms=5)
    await producer.start()
    try:
        topic = INPUTS[service].name
        if service == "grouping":
            accounts = max(1, size // 6)
            for raw in canonical_market(accounts, tag=tag)[:size]:
                event = TouchEvent.model_validate(raw)
                await producer.send(topic, key=event.key().encode(), value=encode(event))
        else:
            partitions = sorted(await producer.partitions_for(topic))
            for i in range(size):
                tick = ClockTick(watermarks={0: datetime.now(UTC)}, wall=datetime.now(UTC))
                await producer.send(topic, key=tick.key().encode(), value=encode(tick),
                                    partition=partitions[i % len(partitions)])
        await producer.flush()
    finally:
        await producer.stop()


async def caught_up(service: str, namespace: str, patience: float) -> float | None:
    """Seconds until the group committed the input's current ends, None after `patience`."""
    started = time.monotonic()
    group = f"{namespace}bg-{service}"
    tps = [TopicPartition(INPUTS[service].name, p) for p in range(kafka_settings().topic_partitions)]
    admin = AIOKafkaAdminClient(**kafka_settings().aiokafka_kwargs())
    await admin.start()
    from aiokafka import AIOKafkaConsumer

    probe = AIOKafkaConsumer(**kafka_settings().aiokafka_kwargs(), enable_auto_commit=False)
    await probe.start()
    try:
        ends = await probe.end_offsets(tps)
        while time.monotonic() - started < patience:
            committed = await admin.list_consumer_group_offsets(group, partitions=tps)
            if all(getattr(committed.get(tp), "offset", -1) >= end for tp, end in ends.items() if end > 0):
                return time.monotonic() - started
            await asyncio.sleep(0.25)
        return None
    finally:
        await probe.stop()
        await admin.close()


def worker(service: str, namespace: str, name: str, worker_id: str) -> ServiceProcess:
    env = {"BG_STATE_DIR": f"/tmp/bg-failover/{namespace}{name}", "LOG_LEVEL": "info"}
    if worker_id:
        env["BG_WORKER_ID"] = worker_id
    return ServiceProcess(f"failover-{namespace}{name}", ["-m", MODULES[service]], env)


async def wait_assigned(proc: ServiceProcess, since: float, timeout: float) -> float | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        after = [s for s in _stamps(proc.log_path.read_text(errors="replace")) if s >= since]
        if after:
            return after[0] - since
        await asyncio.sleep(0.2)
    return None


async def one_series(service: str, fault: str, rounds: int, second: bool, size: int, patience: float) -> Series:
    namespace = await fresh_namespace(f"fo{service[0]}{fault[0]}")
    base_id = os.environ.get("BG_WORKER_ID", "")
    first = worker(service, namespace, "a", base_id)
    other = worker(service, namespace, "b", f"{base_id}b" if base_id else "") if second else None
    series = Series()
    try:
        first.start()
        if other is not None:
            other.start()
        await write_batch(service, f"{namespace}warm", size)
        if await caught_up(service, namespace, patience) is None:
            raise RuntimeError(f"{service} never consumed its first batch: {first.tail()}")
        for r in range(rounds):
            if fault == "kill":
                first.kill()
            else:
                first.stop(timeout=60)
            await write_batch(service, f"{namespace}r{r}", size)
            launched = time.time()
            first.start()
            restart = Restart(service, fault, second)
            restart.assigned = await wait_assigned(first, launched, patience)
            took = await caught_up(service, namespace, patience)
            restart.caught_up = None if took is None else time.time() - launched
            series.restarts.append(restart)
            console.print(f"{service} {fault}{' +second' if second else ''} round {r}: assigned "
                          f"{restart.assigned}, caught up {restart.caught_up}")
    finally:
        for proc in (first, other):
            if proc is not None:
                proc.stop(timeout=60)
    return series


def summarise(restarts: list[Restart]) -> dict:
    assigned = [r.assigned for r in restarts if r.assigned is not None]
    done = [r.caught_up for r in restarts if r.caught_up is not None]
    return {"restarts": len(restarts), "stuck": len(restarts) - len(done),
            "assigned_median_s": round(statistics.median(assigned), 1) if assigned else None,
            "assigned_max_s": round(max(assigned), 1) if assigned else None,
            "caught_up_median_s": round(statistics.median(done), 1) if done else None,
            "caught_up_max_s": round(max(done), 1) if done else None}


async def main(args: argparse.Namespace) -> None:
    restarts: list[Restart] = []
    for service in args.service:
        for fault in args.faults:
            for second in ([False, True] if args.second else [False]):
                restarts += (await one_series(service, fault, args.rounds, second, args.size, args.patience)).restarts
    table = Table("service", "fault", "workers", "restarts", "stuck", "assigned median / max (s)",
                  "caught up median / max (s)")
    results = {}
    for (service, fault, second) in sorted({(r.service, r.fault, r.second) for r in restarts}):
        group = [r for r in restarts if (r.service, r.fault, r.second) == (service, fault, second)]
        s = summarise(group)
        results[f"{service}/{fault}/{'2' if second else '1'}"] = s
        table.add_row(service, fault, "2" if second else "1", str(s["restarts"]), str(s["stuck"]),
                      f"{s['assigned_median_s']} / {s['assigned_max_s']}",
                      f"{s['caught_up_median_s']} / {s['caught_up_max_s']}")
    console.print(table)
    settings = {k: os.environ[k] for k in ("BG_WORKER_ID", "BG_GROUPING_SESSION_TIMEOUT", "BROKER_SESSION_TIMEOUT",
                                           "BROKER_HEARTBEAT_INTERVAL") if k in os.environ}
    path = save(f"failover-{uuid.uuid4().hex[:6]}", {"settings": settings, "results": results,
                                                      "restarts": [r.__dict__ for r in restarts]})
    console.print(f"saved {path}; settings {json.dumps(settings)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--service", nargs="+", default=["grouping", "scoring"], choices=sorted(MODULES))
    parser.add_argument("--faults", nargs="+", default=["kill", "term"], choices=["kill", "term"])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--size", type=int, default=200, help="input messages written per round")
    parser.add_argument("--second", action="store_true", help="also measure with a second worker running")
    parser.add_argument("--patience", type=float, default=150.0)
    asyncio.run(main(parser.parse_args()))
