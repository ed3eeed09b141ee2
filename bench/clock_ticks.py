"""What carrying watermarks through grouping's stages costs: clock ticks per stage per tick interval.

    .venv/bin/python -m bench.clock_ticks [--workers 1] [--seconds 60]

Needs the local stack (bash deploy/stack.sh up). Starts `--workers` grouping workers in a fresh
namespace on an idle system (ticks every second, inputs idle after two), waits `--seconds`, then
counts the ClockTick records on each topic they travel (route -> persons topic, persons ->
accounts topic, accounts -> bg.opportunity.v1) and their bytes, per route tick interval, and the
lag of the account stage's ticks (their record timestamp minus the wall clock route started them
with: the two hops a timer waits for besides the interval). docs/time.md states the result.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import uuid
from collections import defaultdict
from statistics import quantiles

from bench.common import fresh_namespace
from shared.codec import DecodeError, opportunity_log
from shared.schemas.opportunity import ClockTick

TICK_SECONDS = 1.0


async def count_ticks(topic: str) -> list[tuple[ClockTick, int, int]]:
    """Every ClockTick on `topic`: (tick, record timestamp in ms, value size in bytes)."""
    from aiokafka import AIOKafkaConsumer

    from shared.settings import kafka_settings

    consumer = AIOKafkaConsumer(topic, **kafka_settings().aiokafka_kwargs(), group_id=f"ticks-{uuid.uuid4().hex}",
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    found = []
    try:
        while batches := await consumer.getmany(timeout_ms=3000, max_records=5000):
            for records in batches.values():
                for record in records:
                    try:
                        message = opportunity_log.decode(record.value)
                    except DecodeError:
                        continue
                    if isinstance(message, ClockTick):
                        found.append((message, record.timestamp, len(record.value)))
    finally:
        await consumer.stop()
    return found


async def main(workers: int, seconds: float) -> None:
    from shared import topics
    from tests.support.processes import ServiceProcess

    namespace = await fresh_namespace("ticks")
    env = {"BG_CLOCK_TICK_SECONDS": str(TICK_SECONDS), "BG_CLOCK_IDLE_SECONDS": "2", "LOG_LEVEL": "warn"}
    state = os.environ.get("BG_STATE_DIR", ".stack/state")
    procs = [ServiceProcess(f"bench-ticks-{w}", ["-m", "services.grouping"],
                            {**env, "BG_STATE_DIR": f"{state}/bench-ticks-{w}"}) for w in range(workers)]
    for proc in procs:
        proc.start(timeout=120)
    try:
        await asyncio.sleep(seconds)
    finally:
        for proc in procs:
            proc.stop()
    stages = {"route": f"{namespace}bg-grouping-persons", "persons": f"{namespace}bg-grouping-accounts",
              "accounts": topics.OPPORTUNITY_EVENTS.name}
    found = {stage: await count_ticks(topic) for stage, topic in stages.items()}
    # Route ticks (one per worker per interval, each to every persons partition): the intervals.
    walls = {tick.wall for tick, _, _ in found["route"]}
    intervals = len(walls) / workers
    print(f"{workers} grouping worker(s), {seconds:.0f} s, {len(walls)} route ticks "
          f"({intervals:.0f} intervals of {TICK_SECONDS:.0f} s)")
    for stage, ticks in found.items():
        by_stage = defaultdict(int)
        for tick, _, _ in ticks:
            by_stage[tick.stage] += 1
        size = sum(n for _, _, n in ticks)
        print(f"  {stage:>8} ticks: {len(ticks)} ({len(ticks) / intervals:.1f} per interval), "
              f"{size / max(len(ticks), 1):.0f} bytes each")
    lags = [ts / 1000 - tick.wall.timestamp() for tick, ts, _ in found["accounts"]]
    if len(lags) >= 2:
        cuts = quantiles(lags, n=100)
        print(f"  route -> bg.opportunity.v1: p50 {cuts[49] * 1000:.0f} ms, p99 {cuts[98] * 1000:.0f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    asyncio.run(main(args.workers, args.seconds))
