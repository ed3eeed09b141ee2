"""Which timer facts a run judged on partial data (docs/time.md, "Backfill"), read from its own log.

    .venv/bin/python -m bench.chaos_timers NAMESPACE [NAMESPACE ...]

(on bench/chaos.py's stack, Kafka at 127.0.0.1:29092; the namespaces are the runs' topic
prefixes, e.g. `chaos3-1a2b3c.`). It replays each run's bg.opportunity.v1 through scoring's
own Processor, partition by partition in offset order (the processor is pure: the log is its
only input, so the replay announces what the run's scoring announced), and for every timer fact
announced (role_gap, stalled, reactivated) looks for an event of the same opportunity with an
event time before the fact's time that sits later in the partition: the fact was judged before
data that decides it had arrived. It names what moved the partition's clock past the fact:
a clock tick (grouping's watermarks), the opportunity's own event, or, in a log written before
grouping's account stage forwarded its watermarks, an event of another opportunity.
bench/chaos.py calls `judge` for every run it makes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.scoring.config import ScoringConfig, load_config
from services.scoring.domain.state import PartitionClock
from services.scoring.processor import Processor
from shared.codec import DecodeError, opportunity_log
from shared.schemas.opportunity import AccountTouch, ClockTick
from shared.schemas.scoring import Signal

TIMER_FACTS = ("role_gap", "stalled", "reactivated")


@dataclass(frozen=True)
class Record:
    """One record of a bg.opportunity.v1 partition: offset, writer's timestamp (ms), raw value."""

    offset: int
    timestamp_ms: int | None
    value: bytes


@dataclass
class Finding:
    """A timer fact and whether it was judged before data that decides it had arrived.

    late: the opportunity's events with an event time before the fact's that came later in
    the partition, as "<event id> (event time, offset)". moved_by: what moved the clock past
    the fact's time: a clock tick, or an event (its own opportunity's or another's) with its
    event time and offset.
    """

    signal_id: str
    kind: str
    partition: int
    offset: int  # the record whose processing announced the fact
    due: datetime
    moved_by: str
    late: list[str] = field(default_factory=list)

    @property
    def partial(self) -> bool:
        return bool(self.late)


def judge(partitions: dict[int, list[Record]], config: ScoringConfig) -> list[Finding]:
    """Every timer fact a replay of the log announces, with the events it was judged without.

    partitions: each partition's records in offset order. Records that do not decode are
    skipped (scoring dead-letters them). The partition's clock is followed beside the
    processor, as it moves it (PartitionClock), to name the record that first took it past
    each fact's time."""
    findings: list[Finding] = []
    for partition, records in sorted(partitions.items()):
        processor = Processor(config, {})
        clock = PartitionClock()
        decoded = []
        for record in records:
            try:
                decoded.append((record, opportunity_log.decode(record.value)))
            except DecodeError:
                continue
        readings: list[datetime | None] = []  # the clock after each decoded record
        for position, (record, message) in enumerate(decoded):
            wall = datetime.fromtimestamp(record.timestamp_ms / 1000, UTC) if record.timestamp_ms else None
            clock = (clock.observe_tick(message) if isinstance(message, ClockTick)
                     else clock.observe_event(message.occurred_at, wall))
            readings.append(clock.now())
            for out in processor.process(partition, message, wall):
                if not isinstance(out, Signal) or out.signal not in TIMER_FACTS:
                    continue
                # None passed it: the opportunity's own event did (its own time moves its own timers).
                passed = next((i for i, now in enumerate(readings) if now is not None and now >= out.occurred_at),
                              position)
                mover = decoded[passed][1]
                if isinstance(mover, ClockTick):
                    moved_by = f"a clock tick at offset {decoded[passed][0].offset}"
                else:
                    whose = "its own" if mover.opportunity_id == out.opportunity_id else "another opportunity's"
                    moved_by = (f"{whose} event {mover.event_id} (event time {mover.occurred_at:%Y-%m-%d %H:%M}) "
                                f"at offset {decoded[passed][0].offset}")
                late = [f"{m.event_id} ({m.occurred_at:%Y-%m-%d %H:%M}, offset {r.offset})"
                        for r, m in decoded[position + 1:]
                        if not isinstance(m, ClockTick | AccountTouch) and m.opportunity_id == out.opportunity_id
                        and m.occurred_at < out.occurred_at]
                findings.append(Finding(out.signal_id, out.signal, partition, record.offset, out.occurred_at,
                                        moved_by, late))
    return findings


async def read_partitions(topic: str) -> dict[int, list[Record]]:
    """Every record of `topic`, by partition, in offset order."""
    from aiokafka import AIOKafkaConsumer

    from shared.settings import kafka_settings

    consumer = AIOKafkaConsumer(topic, **kafka_settings().aiokafka_kwargs(), group_id=f"chaos-{uuid.uuid4().hex}",
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    out: dict[int, list[Record]] = defaultdict(list)
    try:
        while batches := await consumer.getmany(timeout_ms=3000, max_records=5000):
            for tp, records in batches.items():
                out[tp.partition] += [Record(r.offset, r.timestamp, r.value) for r in records]
    finally:
        await consumer.stop()
    return {p: sorted(rs, key=lambda r: r.offset) for p, rs in out.items()}


def summary(findings: list[Finding]) -> str:
    partial = [f for f in findings if f.partial]
    by_mover: dict[str, int] = defaultdict(int)
    for f in partial:
        by_mover["a clock tick" if f.moved_by.startswith("a clock tick") else
                 "another opportunity's event" if f.moved_by.startswith("another") else "its own event"] += 1
    return (f"{len(findings)} timer facts, {len(partial)} judged on partial data"
            + (f" (clock moved by: {', '.join(f'{k} x{n}' for k, n in sorted(by_mover.items()))})" if partial else ""))


async def main(namespaces: list[str]) -> None:
    from shared import topics

    config = load_config()
    for namespace in namespaces:
        os.environ["BG_TOPIC_NAMESPACE"] = namespace
        findings = judge(await read_partitions(topics.OPPORTUNITY_EVENTS.name), config)
        print(f"{namespace}: {summary(findings)}")
        for f in findings:
            if f.partial:
                print(f"  {f.signal_id} (due {f.due:%Y-%m-%d %H:%M}) announced at partition {f.partition} offset "
                      f"{f.offset}, clock moved by {f.moved_by}; arrived later: {'; '.join(f.late[:3])}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("namespaces", nargs="+")
    args = parser.parse_args()
    os.environ.setdefault("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092")
    asyncio.run(main(args.namespaces))
