"""How grouping's cost grows with the market: the same load shape at 100, 1,000 and 10,000 companies.

    .venv/bin/python -m bench.scale [--companies 100 1000 10000] [--workers 1] [--samples bench-results/scale.csv]
                                    [--stores memory:// rocksdb://]

Grouping is the stage whose work depends on the market: its tables hold every person, every
account and every company name, and a free-mail person's name is matched against the names
known. This script measures that stage alone, so the larger markets fit in a run: for each
market size it writes the companies' touch events (`bench.load.market`: the same shape per
company; a tenth of the people on free mail, matched by company name) straight to a fresh
`bg.person-events.v1`, starts that many grouping workers, and waits until the worker group has
committed everything it read on every stage (input and internal topics). It reports:
- events/s: input events / seconds from the first partition assignment to that point;
- CPU seconds per event (user + system of the workers) and their peak RSS;
- state per person and per account: the encoded size of what the tables hold (the same
  reducers run in memory over the same events, `tests/unit/grouping/harness.py`), and that
  size extrapolated to 1M persons and 100k accounts;
- the ceiling: a bare aiokafka produce+consume pass of as many messages, in the same run.
A sample of RSS and progress every 0.25 s goes to --samples (CSV); `--png FILE` plots the
largest market's samples (RSS and events/s over time). `--stores` runs every market once per
faust table store (BG_TABLE_STORE, shared/table_store.py), the first being the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import logging
import os
import statistics
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from rich.console import Console
from rich.table import Table

from bench.common import cpu_seconds, fresh_namespace, peak_rss_mib, record, rss_mib, save
from bench.load import market
from bench.pipeline import passthrough
from services.grouping.config import load
from services.grouping.stages import Stored
from shared import topics
from shared.codec import encode
from shared.schemas.touch import TouchEvent
from shared.settings import kafka_settings
from shared.table_store import DEFAULT_STATE_CACHE_ENTRIES, state_cache_entries
from tests.component.grouping.conftest import Worker

console = Console(width=140)
STAGES = ("persons", "names", "accounts")


@dataclass
class Result:
    companies: int
    events: int
    workers: int
    store: str = "memory://"
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss_mib: float = 0.0
    state: dict[str, float] = field(default_factory=dict)
    samples: list[tuple[float, float, float]] = field(default_factory=list)  # (t, events done, RSS MiB)

    @property
    def rate(self) -> float:
        return self.events / self.seconds


async def write_input(events: list[dict]) -> None:
    producer = AIOKafkaProducer(**kafka_settings().aiokafka_kwargs(), acks="all", enable_idempotence=True,
                                linger_ms=5)
    await producer.start()
    try:
        for raw in events:
            event = TouchEvent.model_validate(raw)
            await producer.send(topics.PERSON_EVENTS.name, key=event.key().encode(), value=encode(event))
        await producer.flush()
    finally:
        await producer.stop()


class Progress:
    """The worker group's committed offsets against the ends of every topic it reads."""

    def __init__(self, namespace: str) -> None:
        self.group = f"{namespace}bg-grouping"
        self.names = [topics.PERSON_EVENTS.name] + [f"{namespace}bg-grouping-{s}" for s in STAGES]
        self.consumer = AIOKafkaConsumer(**kafka_settings().aiokafka_kwargs(), group_id=self.group,
                                         enable_auto_commit=False)

    async def __aenter__(self) -> Progress:
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.consumer.stop()

    def _partitions(self, name: str) -> list[TopicPartition]:
        # Every topic of the project has the configured partition count; asking the cluster's
        # metadata instead reads every topic of the broker (thousands on a shared one).
        return [TopicPartition(name, p) for p in range(kafka_settings().topic_partitions)]

    async def committed(self, name: str) -> tuple[int, int]:
        """(committed, end) summed over the topic's partitions."""
        tps = self._partitions(name)
        ends = await self.consumer.end_offsets(tps)
        done = 0
        for tp in tps:
            done += (await self.consumer.committed(tp)) or 0
        return done, sum(ends.values())

    async def input_done(self) -> int:
        return (await self.committed(self.names[0]))[0]

    async def settled(self, events: int) -> bool:
        """Everything read and committed; False also when the broker did not answer in time."""
        try:
            return await self._settled(events)
        except KafkaError:  # a busy broker: ask again at the next poll
            return False

    async def _settled(self, events: int) -> bool:
        done, end = await self.committed(self.names[0])
        if done < events:
            return False
        for name in self.names[1:]:
            done, end = await self.committed(name)
            if done < end:
                return False
        return True


def state_sizes(events: list[dict]) -> dict[str, float]:
    """Mean encoded bytes per person (identity node + profile) and per account, as stored."""
    from tests.unit.grouping.harness import Pipeline  # the same reducers, chained in memory

    pipeline = Pipeline(load())
    pipeline.feed(*(TouchEvent.model_validate(e) for e in events))

    def size(states: dict) -> list[int]:
        return [len(encode(Stored[type(s)](state=s, seen={f"persons/{i}": (10**6, 0) for i in range(4)})))
                for s in states.values()]

    persons = size(pipeline.profiles) + size(pipeline.nodes)
    accounts = size(pipeline.accounts)
    per_person = sum(persons) / len(pipeline.profiles)
    per_account = statistics.fmean(accounts)
    return {"persons": len(pipeline.profiles), "accounts": len(accounts), "bytes_per_person": round(per_person),
            "bytes_per_account": round(per_account), "max_account_bytes": max(accounts),
            "names": len(pipeline.names),
            "gib_at_1m_persons": round(per_person * 1e6 / 2**30, 3),
            "gib_at_100k_accounts": round(per_account * 1e5 / 2**30, 3)}


async def one_run(companies: int, workers: int, store: str = "memory://") -> Result:
    namespace = await fresh_namespace(f"bench-scale-{companies}-")
    events = market(companies)
    result = Result(companies, len(events), workers, store)
    os.environ["BG_TABLE_STORE"] = store  # the workers' environment is taken from this one
    procs = []
    for w in range(workers):
        os.environ["BG_STATE_DIR"] = f".stack/state/bench-scale-{uuid.uuid4().hex[:6]}"  # one per worker
        procs.append(Worker(f"bench-scale-grouping-{w}"))
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.wait_assigned(timeout=120)
        # Measured from here: started, assigned, tables recovered; the input arrives as it would.
        cpu_before = sum(cpu_seconds(p.proc.pid) for p in procs)
        started = time.monotonic()
        async with Progress(namespace) as progress:
            writer = asyncio.create_task(write_input(events))
            while not (writer.done() and await progress.settled(len(events))):
                await asyncio.sleep(0.25)
                if any(p.proc.poll() is not None for p in procs):
                    raise RuntimeError(f"a grouping worker exited: {procs[0].tail()}")
                rss = sum(rss_mib(p.proc.pid) for p in procs)
                with contextlib.suppress(KafkaError):
                    result.samples.append((time.monotonic() - started, await progress.input_done(), rss))
                if time.monotonic() - started > 3600:
                    raise RuntimeError("not done within an hour")
            await writer
        result.seconds = time.monotonic() - started
        result.cpu_seconds = sum(cpu_seconds(p.proc.pid) for p in procs) - cpu_before
        result.peak_rss_mib = max(peak_rss_mib(p.proc.pid) for p in procs)
    finally:
        for p in procs:
            p.stop()
    result.state = state_sizes(events) if companies <= 2000 else {}
    return result


def plot(samples: Path, png: Path) -> None:
    """RSS and input events/s over time of the largest market in a samples CSV, one line per store."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with samples.open() as f:
        rows = [{k: v if k == "store" else float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    biggest = max(r["companies"] for r in rows)
    rows = [r for r in rows if r["companies"] == biggest]
    window = 20  # samples of 0.25 s: a 5 s moving rate
    fig, (rss, rate) = plt.subplots(2, 1, sharex=True, figsize=(9, 6))
    for store in dict.fromkeys(r.get("store", "memory://") for r in rows):
        mine = [r for r in rows if r.get("store", "memory://") == store]
        seconds = [r["seconds"] for r in mine]
        rates = [(mine[i]["events_done"] - mine[max(0, i - window)]["events_done"])
                 / max(mine[i]["seconds"] - mine[max(0, i - window)]["seconds"], 1e-9) if i else 0.0
                 for i in range(len(mine))]
        rss.plot(seconds, [r["rss_mib"] for r in mine], label=store)
        rate.plot(seconds, rates, label=store)
    rss.set_ylabel("grouping RSS, MiB")
    rss.set_ylim(bottom=0)
    rss.legend(title="BG_TABLE_STORE")
    rss.set_title(f"grouping alone, {int(biggest):,} companies, {int(rows[-1]['events_done']):,} input events")
    rate.set_ylabel("input events committed/s (5 s window)")
    rate.set_xlabel("seconds since the input started")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)


def write_samples(path: Path, results: list[Result]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["companies", "store", "seconds", "events_done", "rss_mib"])
        for r in results:
            for t, done, rss in r.samples:
                out.writerow([r.companies, r.store, round(t, 2), done, round(rss, 1)])


async def main(companies: list[int], workers: int, samples: Path, stores: list[str]) -> None:
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    biggest = len(market(max(companies)))
    ceiling = await passthrough(min(biggest, 50_000))
    console.print(f"ceiling: bare aiokafka produce+consume: {ceiling:,.0f} msg/s")
    results = []
    for n in companies:
        for store in stores:
            r = await one_run(n, workers, store)
            console.print(f"{n} companies, {store}: {r.events} events in {r.seconds:.1f}s = {r.rate:,.0f} events/s, "
                          f"CPU {1000 * r.cpu_seconds / r.events:.2f} ms/event, peak RSS {r.peak_rss_mib:.0f} MiB")
            results.append(r)
    # State per key does not depend on the market's size (each company has the same shape), so it
    # is measured on the smaller markets, where the in-memory replay is quick.
    state = next((r.state for r in reversed(results) if r.state), {})
    smallest = {store: next(r for r in results if r.store == store) for store in stores}
    table = Table(title=f"grouping alone, {workers} worker(s); ceiling {ceiling:,.0f} msg/s")
    for col in ("companies", "store", "events", "events/s", "vs smallest", "vs ceiling", "CPU ms/event",
                "peak RSS MiB"):
        table.add_column(col)
    for r in results:
        table.add_row(str(r.companies), r.store, f"{r.events:,}", f"{r.rate:,.0f}",
                      f"{r.rate / smallest[r.store].rate:.0%}", f"{r.rate / ceiling:.1%}",
                      f"{1000 * r.cpu_seconds / r.events:.2f}", f"{r.peak_rss_mib:.0f}")
    console.print(table)
    console.print(f"state: {state}")
    write_samples(samples, results)
    path = save("scale", {
        "workers": workers, "ceiling_msgs_per_s": round(ceiling), "state": state,
        "runs": [{"companies": r.companies, "store": r.store, "events": r.events, "events_per_s": round(r.rate),
                  "vs_smallest": round(r.rate / smallest[r.store].rate, 3), "vs_ceiling": round(r.rate / ceiling, 4),
                  "cpu_ms_per_event": round(1000 * r.cpu_seconds / r.events, 3),
                  "peak_rss_mib": round(r.peak_rss_mib)} for r in results],
    })
    console.print(f"saved {path} and {samples}")
    command = (f"python -m bench.scale --companies {' '.join(map(str, companies))} --workers {workers} "
               f"--stores {' '.join(stores)}")
    cache = state_cache_entries()
    if cache != DEFAULT_STATE_CACHE_ENTRIES:  # another bound on the decoded states: figures of their own
        command = f"BG_STATE_CACHE_ENTRIES={cache} {command}"
    for r in results:
        store = "" if r.store.startswith("memory") else ".rocksdb"  # memory:// keeps the earlier names
        if cache != DEFAULT_STATE_CACHE_ENTRIES:
            store += f".cache{cache}"
        # Against the smallest market on the same store: how much of its rate is left at this size.
        record(f"scale.grouping.events_per_s.{r.companies}_companies.{workers}_worker{store}", r.rate, "events/s",
               smallest[r.store].rate, command)
        # RSS against the first store's at the same size (the baseline, memory:// by default).
        baseline = next(b for b in results if b.companies == r.companies and b.store == stores[0])
        record(f"scale.grouping.peak_rss_mib.{r.companies}_companies.{workers}_worker{store}", r.peak_rss_mib, "MiB",
               None if baseline is r else baseline.peak_rss_mib, command)
    if state:
        record("scale.grouping.state_bytes_per_person", state["bytes_per_person"], "bytes", None, command)
        record("scale.grouping.state_bytes_per_account", state["bytes_per_account"], "bytes", None, command)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--companies", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--samples", type=Path, default=Path("bench-results/scale.csv"))
    parser.add_argument("--stores", nargs="+", default=["memory://"],
                        help="faust table stores to run each market on, the first the baseline (memory:// rocksdb://)")
    parser.add_argument("--png", type=Path, help="only plot the largest market of --samples into this PNG")
    args = parser.parse_args()
    if args.png:
        plot(args.samples, args.png)
    else:
        asyncio.run(main(args.companies, args.workers, args.samples, args.stores))
