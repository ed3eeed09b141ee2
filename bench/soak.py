"""Soak: a long run through the whole pipeline, with memory and throughput over time.

    .venv/bin/python -m bench.soak [--companies 16000] [--png docs/soak.png]

One worker per service (bench.pipeline.Services, fresh topics and schema). The events of
`--companies` companies (`bench.load.market`, about 6.2 events each) are POSTed to ingest as
fast as it takes them; every 2 seconds the script records each service's resident memory and
how many touch rows PostgreSQL holds, until all are there. It writes the samples
(bench-results/soak.csv), a plot of RSS and throughput over time (--png) and a summary
(bench-results/soak.json).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import logging
import time
import uuid
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from sqlalchemy import func, select

from bench.common import RESULTS, fresh_namespace, peak_rss_mib, record, rss_mib, save
from bench.load import market
from bench.pipeline import Services, post_all
from services.projection import db
from services.projection import schema as tables
from shared.settings import DatabaseSettings

SERVICES = ("ingest", "grouping", "scoring", "projection")


async def touch_rows(engine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(tables.touches)) or 0)


async def soak(companies: int) -> tuple[list[dict], dict]:
    await fresh_namespace("bench-soak-")
    schema = f"soak_{uuid.uuid4().hex[:8]}"
    events = market(companies)
    engine = db.create_engine(DatabaseSettings().database_url, schema)
    samples: list[dict] = []
    with Services(1, schema) as services:
        pids = {service: p.proc.pid for service, p in services.procs}
        started = time.monotonic()
        poster = asyncio.create_task(post_all(f"http://127.0.0.1:{services.ingest_port}", events, 0, {}, lambda: None))
        done = 0
        while done < len(events):
            await asyncio.sleep(2.0)
            done = await touch_rows(engine)
            samples.append({"seconds": round(time.monotonic() - started, 1), "touches": done,
                            **{f"{s}_rss_mib": round(rss_mib(pids[s]), 1) for s in SERVICES}})
            if poster.done() and poster.exception():
                raise poster.exception()
            if time.monotonic() - started > 4 * 3600:
                raise RuntimeError(f"{done} of {len(events)} touches after 4 hours")
        await poster
        if done != len(events):  # each event one touch row: more is a duplicate, and fails the run
            raise SystemExit(f"FAILED: {done} touch rows for {len(events)} events")
        summary = {"companies": companies, "events": len(events), "seconds": samples[-1]["seconds"],
                   "events_per_s": round(len(events) / samples[-1]["seconds"]),
                   "peak_rss_mib": {s: round(peak_rss_mib(pids[s])) for s in SERVICES}}
    await engine.dispose()
    return samples, summary


def plot(samples: list[dict], summary: dict, png: Path) -> None:
    seconds = [s["seconds"] for s in samples]
    fig, (rss, rate) = plt.subplots(2, 1, sharex=True, figsize=(9, 6))
    for service in SERVICES:
        rss.plot(seconds, [s[f"{service}_rss_mib"] for s in samples], label=service)
    rss.set_ylabel("RSS, MiB")
    rss.legend(loc="upper left")
    rss.set_title(f"Soak: {summary['events']:,} events of {summary['companies']:,} companies, "
                  f"one worker per service, {summary['events_per_s']:,} events/s overall")
    window = 5  # samples: a 10 s moving rate
    rates = [(samples[i]["touches"] - samples[max(0, i - window)]["touches"])
             / max(samples[i]["seconds"] - samples[max(0, i - window)]["seconds"], 1e-9) if i else 0.0
             for i in range(len(samples))]
    rate.plot(seconds, rates, color="black")
    rate.set_ylabel("touch rows/s (10 s window)")
    rate.set_xlabel("seconds since the first request")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)


async def main(companies: int, png: Path) -> None:
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    samples, summary = await soak(companies)
    RESULTS.mkdir(exist_ok=True)
    with (RESULTS / "soak.csv").open("w", newline="") as f:
        out = csv.DictWriter(f, fieldnames=list(samples[0]))
        out.writeheader()
        out.writerows(samples)
    plot(samples, summary, png)
    path = save("soak", summary)
    print(summary)
    print(f"saved {path}, {RESULTS / 'soak.csv'} and {png}")
    command = f"python -m bench.soak --companies {companies}"
    record("soak.events_per_s", summary["events_per_s"], "events/s", None, command)
    for service, mib in summary["peak_rss_mib"].items():
        record(f"soak.peak_rss_mib.{service}", mib, "MiB", None, command)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--companies", type=int, default=16_000)
    parser.add_argument("--png", type=Path, default=Path("docs/soak.png"))
    args = parser.parse_args()
    asyncio.run(main(args.companies, args.png))
