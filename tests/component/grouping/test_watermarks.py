"""Watermarks carried in band through grouping's stages, through the real Kafka (docs/time.md).

History (two months of touches of twelve companies, in event-time order) is sent in chunks to a
grouping worker whose idle clock is held, so its watermarks follow the history. What it writes to
bg.opportunity.v1 must keep the promise scoring's clock relies on: on every partition, no
opportunity event comes after a tick of the account stage whose watermarks (their minimum over
the stage's partitions) have passed its event time. Scoring's processor, replaying that log
(bench/chaos_timers.py), then judges no timer fact on partial data.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from statistics import quantiles

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.partitioner import DefaultPartitioner

from bench.chaos_timers import Record, judge
from services.scoring.config import load_config
from services.scoring.domain.state import PartitionClock
from shared import topics
from shared.codec import opportunity_log
from shared.schemas.opportunity import AccountTouch, ClockTick
from shared.settings import kafka_settings
from tests.component.grouping.conftest import Worker, fresh_namespace, send
from tests.unit.grouping.harness import touch

pytestmark = pytest.mark.component
DAY = 24 * 60  # minutes
# Ticks every half second; the idle clock held, so only the history's event times move it.
CLOCK = {"BG_CLOCK_TICK_SECONDS": "0.5", "BG_CLOCK_IDLE_SECONDS": "3600", "BG_CLOCK_HISTORY_IDLE_SECONDS": "3600"}
TITLES = ["HR-менеджер", "IT-директор", "финансовый директор", "генеральный директор"]


def history(tag: str, companies: int = 12) -> list:
    """Company c's four people (HR, IT, finance, CEO) read about HR systems from day 4c, a day
    apart, then fall silent: each group forms, then stalls 14 days later, while the companies
    after it keep time moving. In event-time order, as a backfill sends it."""
    events = []
    for c in range(companies):
        for p, title in enumerate(TITLES):
            for t in range(2):
                events.append(touch(f"{tag}-{c}-{p}-{t}", (4 * c + p) * DAY + t * 60, email=f"p{p}@c{c}-{tag}.ru",
                                    job_title=title, url="https://vendor.example/solutions/hr/"))
    return sorted(events, key=lambda e: e.occurred_at)


def input_partition(event) -> int:
    partitions = list(range(kafka_settings().topic_partitions))
    return DefaultPartitioner()(event.key().encode(), partitions, partitions)


async def read_log(until_clock, timeout: float = 120.0) -> dict[int, list]:
    """bg.opportunity.v1 by partition, (record, decoded) in offset order, read until every
    partition's clock (PartitionClock over its ticks) has reached `until_clock`."""
    consumer = AIOKafkaConsumer(topics.OPPORTUNITY_EVENTS.name, **kafka_settings().aiokafka_kwargs(),
                                group_id=f"test-{uuid.uuid4().hex}", auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    log: dict[int, list] = defaultdict(list)
    clocks: dict[int, PartitionClock] = defaultdict(PartitionClock)
    partitions = range(kafka_settings().topic_partitions)
    try:
        async with asyncio.timeout(timeout):
            while not all((now := clocks[p].now()) is not None and now >= until_clock for p in partitions):
                for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                    for record in records:
                        message = opportunity_log.decode(record.value)
                        log[tp.partition].append((record, message))
                        if isinstance(message, ClockTick):
                            clocks[tp.partition] = clocks[tp.partition].observe_tick(message)
    except TimeoutError:
        raise AssertionError(f"clocks not at {until_clock} in {timeout}s: "
                             f"{ {p: clocks[p].now() for p in partitions} }") from None
    finally:
        await consumer.stop()
    return log


async def test_no_opportunity_event_comes_after_a_tick_that_passed_it_and_no_timer_is_judged_on_partial_data(
        ) -> None:
    tag = uuid.uuid4().hex[:8]
    events = history(tag)
    # The clock the history ends at: each input partition's watermark is its latest event time.
    latest: dict[int, object] = {}
    for event in events:
        latest[input_partition(event)] = event.occurred_at
    assert len(latest) == kafka_settings().topic_partitions  # every input partition reads history
    async with fresh_namespace() as namespace:
        worker = Worker(f"grouping-{namespace}watermarks")
        worker.env.update(CLOCK)
        worker.start()
        try:
            worker.wait_assigned()
            # In chunks, so that ticks interleave with the data at every stage.
            for n in range(0, len(events), 16):
                await send(events[n:n + 16])
                await asyncio.sleep(0.3)
            log = await read_log(min(latest.values()))
        finally:
            worker.stop()

    count = kafka_settings().topic_partitions
    lags = []
    for partition, records in log.items():
        clock = PartitionClock()
        for record, message in records:
            if isinstance(message, ClockTick):
                # Only the account stage writes ticks here, each saying how many partitions it has.
                assert (message.stage, message.of) == ("accounts", count)
                clock = clock.observe_tick(message)
                lags.append(record.timestamp / 1000 - message.wall.timestamp())
                continue
            now = clock.now()
            assert now is None or message.occurred_at >= now, (
                f"{message.event_id} ({message.occurred_at}) after the clock reached {now} on partition {partition}")
    assert sum(isinstance(m, AccountTouch) or getattr(m, "type", "") == "touch_attributed"
               for records in log.values() for _, m in records) >= len(events) // 2

    findings = judge({p: [Record(r.offset, r.timestamp, r.value) for r, _ in records] for p, records in log.items()},
                     load_config())
    assert [f.signal_id for f in findings if f.kind == "stalled"], "the history's stalls fired"
    assert not [f for f in findings if f.partial]
    # The ticks' way from route's wall clock to the account stage's record (two stage hops and
    # two Kafka round trips), for docs/time.md; not asserted (a loaded machine varies).
    p50, p99 = quantiles(lags, n=100)[49], quantiles(lags, n=100)[98]
    print(f"\n{len(findings)} timer facts, none partial; {len(lags)} account stage ticks, "
          f"route -> bg.opportunity.v1 p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")
