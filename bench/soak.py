"""Soak: a long run through the whole pipeline, with memory and throughput over time.

    .venv/bin/python -m bench.soak [--companies 16000] [--store rocksdb://] [--cache-entries 10000]
                                   [--max-seconds 14400] [--png docs/soak.png]
    .venv/bin/python -m bench.soak --from-samples bench-results/soak.csv   # figures of a stopped run

One worker per service (bench.pipeline.Services, fresh topics and schema), grouping and
scoring on the table store a production deployment of that market would use (`--store`,
`--cache-entries`: BG_TABLE_STORE and BG_STATE_CACHE_ENTRIES, shared/table_store.py). After a
warm-up (bench.pipeline.warm_up, groups_stable: the services' start is not measured), the
events of `--companies` companies (`bench.load.market`, about 6.2 events each) are POSTed to
ingest as fast as it takes them; every `--interval` seconds the script records each
service's resident memory (VmRSS, and the peak so far, VmHWM), the size of grouping's and
scoring's state directories, the events ingest has accepted and the touch rows PostgreSQL
holds, until every event has its row.

Each sample is appended to bench-results/soak.csv as it is taken (the run's settings in
bench-results/soak.meta.json), so a run stopped by `--max-seconds`, SIGTERM or Ctrl-C still
gives its figures and plot, marked partial; one killed outright gets them from
`--from-samples`. Figures: touch rows/s over the run, in its first and last 10% and quarter
of time, peak RSS per service against the 1 GiB bound of issue 12, state on disk. They go to
bench-results/soak.json, docs/benchmarks.json and the plot (--png). At the end the run's
topics, schema and state directories are deleted (a 1M-event run leaves gigabytes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import logging
import os
import shutil
import signal
import time
import uuid
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from aiokafka.errors import KafkaError
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from bench.common import RESULTS, cpu_seconds, fresh_namespace, peak_rss_mib, record, rss_mib, save
from bench.load import market
from bench.pipeline import BATCH, Services, groups_stable, post_all, warm_up
from bench.scale import Progress
from services.projection import db
from services.projection import schema as tables
from shared.settings import DatabaseSettings
from tests.support.kafka import delete_namespaces
from tests.support.processes import ROOT

SERVICES = ("ingest", "grouping", "scoring", "projection")
STATEFUL = ("grouping", "scoring")  # the services with faust tables, so a state directory
RSS_BOUND_MIB = 1024  # issue 12: under 1 GiB per service
SAMPLES = RESULTS / "soak.csv"
META = RESULTS / "soak.meta.json"
FIELDS = ["seconds", "posted", "grouped", "touches",
          *(f"{s}_rss_mib" for s in SERVICES), *(f"{s}_hwm_mib" for s in SERVICES),
          *(f"{s}_cpu_s" for s in SERVICES), *(f"{s}_disk_mib" for s in STATEFUL)]


def value_at(samples: list[dict], t: float, column: str = "touches") -> float:
    """A column's value (default: touch rows) at `t` seconds into the run, linear between the
    two samples around it.

    samples: dicts with `seconds` (ascending, the first at 0) and `column`; `t` outside their
    span takes the nearest end's value."""
    if t <= samples[0]["seconds"]:
        return float(samples[0][column])
    for before, after in zip(samples, samples[1:], strict=False):
        if after["seconds"] >= t:
            span = after["seconds"] - before["seconds"]
            share = (t - before["seconds"]) / span if span else 1.0
            return before[column] + share * (after[column] - before[column])
    return float(samples[-1][column])


def window_delta(samples: list[dict], start: float, end: float, column: str = "touches") -> float:
    """How much a column grew between fractions `start` and `end` (0 <= start < end <= 1) of
    the run's duration (the last sample's `seconds`). Raises ValueError for an empty window."""
    if not 0 <= start < end <= 1:
        raise ValueError(f"window [{start}, {end}] is not within [0, 1]")
    duration = samples[-1]["seconds"]
    if duration <= 0:
        raise ValueError("the samples span no time")
    return value_at(samples, end * duration, column) - value_at(samples, start * duration, column)


def window_rate(samples: list[dict], start: float, end: float) -> float:
    """Touch rows/s between fractions `start` and `end` of the run's duration (window_delta)."""
    return window_delta(samples, start, end) / ((end - start) * samples[-1]["seconds"])


def cpu_ms_per_row(samples: list[dict], service: str, start: float = 0.0, end: float = 1.0) -> float | None:
    """A service's CPU milliseconds per touch row between fractions of the run; None when no
    row arrived in the window."""
    rows = window_delta(samples, start, end)
    return 1000 * window_delta(samples, start, end, f"{service}_cpu_s") / rows if rows > 0 else None


def moving_rates(samples: list[dict], window_seconds: float, column: str = "touches") -> list[float]:
    """For each sample, how fast a column (default: touch rows) grew per second over the
    `window_seconds` before it (fewer at the start; 0.0 for the first sample)."""
    rates = []
    for s in samples:
        t0 = max(samples[0]["seconds"], s["seconds"] - window_seconds)
        span = s["seconds"] - t0
        rates.append((s[column] - value_at(samples, t0, column)) / span if span > 0 else 0.0)
    return rates


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def summarize(samples: list[dict], meta: dict) -> dict:
    """The run's figures from its samples (FIELDS) and settings (`meta`: companies, events,
    store, cache_entries; `events_done`, the events with a touch row at the end, once known).

    Rates over time are touch rows/s: a touch that counts for two scopes (an account and an
    opportunity) has two rows, so rows run slightly ahead of events; the overall rate is
    events/s when `events_done` is known. `finished`: every event has its row; a partial
    run's figures are over what it did. Memory in MiB, CPU in ms per touch row."""
    last = samples[-1]
    seconds = last["seconds"]
    done = meta.get("events_done")
    posted_all = next((s["seconds"] for s in samples if s["posted"] >= meta["events"]), None)
    grouped_all = next((s["seconds"] for s in samples if s["grouped"] >= meta["events"]), None)
    return {
        **meta,
        "finished": (done if done is not None else last["touches"]) >= meta["events"],
        "touch_rows": int(last["touches"]),
        "seconds": seconds,
        "posted_all_at_seconds": posted_all,
        "grouped_all_at_seconds": grouped_all,
        "events_per_s": round((done if done is not None else last["touches"]) / seconds, 1),
        "rows_per_s_first_10pct": round(window_rate(samples, 0, 0.1), 1),
        "rows_per_s_last_10pct": round(window_rate(samples, 0.9, 1), 1),
        "rows_per_s_first_quarter": round(window_rate(samples, 0, 0.25), 1),
        "rows_per_s_last_quarter": round(window_rate(samples, 0.75, 1), 1),
        # VmHWM only grows: its largest sample is the peak up to the last sample.
        "peak_rss_mib": {s: round(max(x[f"{s}_hwm_mib"] for x in samples)) for s in SERVICES},
        "final_rss_mib": {s: round(last[f"{s}_rss_mib"]) for s in SERVICES},
        "cpu_ms_per_row": {s: _round(cpu_ms_per_row(samples, s), 3) for s in SERVICES},
        "cpu_ms_per_row_first_10pct": {s: _round(cpu_ms_per_row(samples, s, 0, 0.1), 3) for s in SERVICES},
        "cpu_ms_per_row_last_10pct": {s: _round(cpu_ms_per_row(samples, s, 0.9, 1), 3) for s in SERVICES},
        "state_on_disk_mib": {s: round(last[f"{s}_disk_mib"], 1) for s in STATEFUL},
        "rss_bound_mib": RSS_BOUND_MIB,
    }


def dir_mib(path: Path) -> float:
    """Bytes of every file under `path` (apparent sizes), in MiB; 0.0 when it does not exist.
    Files vanishing while it walks (RocksDB compactions) are skipped."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                continue
    return total / 2**20


def read_samples(path: Path) -> list[dict]:
    with path.open() as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


async def touch_rows(engine) -> int:
    """Touch rows in the projection (all scopes): cheap enough to count every few seconds."""
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(tables.touches)) or 0)


async def events_with_rows(engine) -> int:
    """The market's events (ids `scale-*`, bench.load.market) with at least one touch row. A
    row's `touch_id` is the input event's id (its `event_id` is the opportunity log's)."""
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count(func.distinct(tables.touches.c.touch_id)))
                                     .where(tables.touches.c.touch_id.like("scale-%"))) or 0)


async def soak(companies: int, interval: float, max_seconds: float, stop: asyncio.Event,
               keep: bool = False) -> tuple[list[dict], dict]:
    namespace = await fresh_namespace("bench-soak-")
    schema = f"soak_{uuid.uuid4().hex[:8]}"
    events = market(companies)
    meta = {"companies": companies, "events": len(events), "store": os.environ["BG_TABLE_STORE"],
            "cache_entries": int(os.environ["BG_STATE_CACHE_ENTRIES"]), "interval_seconds": interval,
            "namespace": namespace, "schema": schema}
    RESULTS.mkdir(exist_ok=True)
    SAMPLES.unlink(missing_ok=True)  # an earlier run's samples must not be reported as this one's
    META.write_text(json.dumps(meta, indent=2))
    engine = db.create_engine(DatabaseSettings().database_url, schema)
    samples: list[dict] = []
    state_dirs: list[Path] = []
    try:
        async with contextlib.AsyncExitStack() as stack:
            services = stack.enter_context(Services(1, schema))
            out = stack.enter_context(SAMPLES.open("w", newline=""))
            pids = {service: p.proc.pid for service, p in services.procs}
            state_dirs = [ROOT / p.env["BG_STATE_DIR"] / f"{namespace}{service}"
                          for service, p in services.procs if service in STATEFUL]
            disk = dict(zip(STATEFUL, state_dirs, strict=True))
            url = f"http://127.0.0.1:{services.ingest_port}"
            print(f"{len(events):,} events of {companies:,} companies; {meta['store']}, "
                  f"{meta['cache_entries']:,} states per cache; topics {namespace}*, schema {schema}", flush=True)
            warm_events = await warm_up(url, engine)
            await groups_stable(("grouping", "scoring"), 1)
            warm_rows = await touch_rows(engine)
            grouping = await stack.enter_async_context(Progress(namespace))
            print(f"warmed up ({warm_rows} touch rows); sending", flush=True)
            writer = csv.DictWriter(out, fieldnames=FIELDS)
            writer.writeheader()
            posted = [0]

            def sample(seconds: float, grouped: int, touches: int) -> dict:
                row = {"seconds": round(seconds, 1), "posted": posted[0], "grouped": grouped, "touches": touches,
                       **{f"{s}_rss_mib": round(rss_mib(pids[s]), 1) for s in SERVICES},
                       **{f"{s}_hwm_mib": round(peak_rss_mib(pids[s]), 1) for s in SERVICES},
                       **{f"{s}_cpu_s": round(cpu_seconds(pids[s]), 2) for s in SERVICES},
                       **{f"{s}_disk_mib": round(dir_mib(disk[s]), 1) for s in STATEFUL}}
                samples.append(row)
                writer.writerow(row)
                out.flush()
                return row

            def accepted() -> None:  # post_all calls it once per batch accepted (the last one shorter)
                posted[0] = min(len(events), posted[0] + BATCH)

            sample(0.0, 0, 0)
            started = time.monotonic()
            poster = asyncio.create_task(post_all(url, events, 0, {}, accepted))
            done, grouped, rows, next_report = 0, 0, 0, 30.0
            while done < len(events) and not stop.is_set():
                with contextlib.suppress(TimeoutError):  # woken early by a signal
                    await asyncio.wait_for(stop.wait(), interval)
                elapsed = time.monotonic() - started
                with contextlib.suppress(SQLAlchemyError, OSError):  # a busy database: the last value stays
                    rows = await touch_rows(engine) - warm_rows
                with contextlib.suppress(KafkaError):  # a busy broker: the last value stays
                    # The topics are the run's own: warm-up and market events only.
                    grouped = max(0, await grouping.input_done() - warm_events)
                row = sample(elapsed, grouped, rows)
                if poster.done() and poster.exception():
                    raise poster.exception()
                # Rows run ahead of events (a touch counting for two scopes): the exact count,
                # which sorts every id, only near the end.
                if rows >= 0.98 * len(events):
                    done = await events_with_rows(engine)
                if elapsed >= next_report or done >= len(events):
                    next_report += 30.0
                    recent = moving_rates(samples, 60.0)[-1]
                    print(f"{elapsed:7.0f} s  posted {row['posted']:>9,}  grouped {grouped:>9,}  "
                          f"rows {rows:>9,} ({rows / len(events):6.1%})  "
                          f"{recent:6.0f} rows/s (last 60 s)  RSS MiB " +
                          " ".join(f"{s} {row[f'{s}_rss_mib']:.0f}" for s in SERVICES) + "  on disk MiB " +
                          " ".join(f"{s} {row[f'{s}_disk_mib']:.0f}" for s in STATEFUL), flush=True)
                if elapsed > max_seconds:
                    print(f"stopping: {max_seconds:.0f} s reached (--max-seconds)", flush=True)
                    break
            if stop.is_set():
                print("stopping: signal received", flush=True)
            if not poster.done():
                poster.cancel()
            meta["events_done"] = await events_with_rows(engine)
            META.write_text(json.dumps(meta, indent=2))
    finally:
        if keep:
            print(f"kept: topics {namespace}*, schema {schema}, state {[str(p) for p in state_dirs]}")
            await engine.dispose()
        else:
            await cleanup(namespace, engine, schema, state_dirs)
    return samples, meta


async def cleanup(namespace: str, engine, schema: str, state_dirs: list[Path]) -> None:
    """Delete the run's topics, schema and state directories (measured already)."""
    await delete_namespaces({namespace})
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await engine.dispose()
    for path in state_dirs:
        shutil.rmtree(path, ignore_errors=True)


def plot(samples: list[dict], summary: dict, png: Path) -> None:
    """RSS per service and state on disk (MiB) over time above; below, touch rows/s and the
    input events/s grouping committed (the gap between them is the pipeline's backlog)."""
    minutes = [s["seconds"] / 60 for s in samples]
    fig, (rss, rate) = plt.subplots(2, 1, sharex=True, figsize=(10, 6.5), height_ratios=(3, 2))
    for service in SERVICES:
        rss.plot(minutes, [s[f"{service}_rss_mib"] for s in samples], label=f"{service} RSS")
    for service in STATEFUL:
        rss.plot(minutes, [s[f"{service}_disk_mib"] for s in samples], linestyle="--",
                 label=f"{service} state on disk")
    rss.axhline(RSS_BOUND_MIB, color="red", linewidth=0.8, linestyle=":", label="1 GiB bound (RSS)")
    rss.set_ylabel("MiB")
    rss.set_ylim(bottom=0)
    rss.legend(loc="upper left", fontsize="small", ncol=2)
    done = "" if summary["finished"] else \
        f", stopped at {summary.get('events_done', summary['touch_rows']):,} (partial)"
    rss.set_title(f"Soak: {summary['events']:,} events of {summary['companies']:,} companies{done}\n"
                  f"one worker per service, {summary['store']} with {summary['cache_entries']:,} states per cache; "
                  f"{summary['events_per_s']:,.0f} events/s overall", fontsize=10)
    window = max(10.0, summary["seconds"] / 80)
    rate.plot(minutes, moving_rates(samples, window, "grouped"), color="tab:orange", linewidth=0.8,
              label="input events committed by grouping")
    rate.plot(minutes, moving_rates(samples, window), color="black", linewidth=1, label="touch rows in PostgreSQL")
    if summary["posted_all_at_seconds"] is not None:
        rate.axvline(summary["posted_all_at_seconds"] / 60, color="grey", linestyle="--", linewidth=0.8,
                     label="ingest has accepted every event")
    rate.set_ylabel(f"per second ({window:.0f} s window)")
    rate.set_ylim(bottom=0)
    rate.set_xlabel("minutes since the first request")
    rate.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)


def report(samples: list[dict], meta: dict, png: Path, command: str) -> dict:
    """Summary, plot and headline figures of a run's samples; prints the summary."""
    summary = summarize(samples, meta)
    plot(samples, summary, png)
    path = save("soak", summary)
    done = summary.get("events_done", summary["touch_rows"])
    state = "finished" if summary["finished"] else f"PARTIAL: {done:,} of {summary['events']:,} events"
    print(f"\nsoak of {summary['events']:,} events ({summary['companies']:,} companies), {summary['store']}, "
          f"{summary['cache_entries']:,} states per cache: {state} in {summary['seconds']:,.0f} s")
    print(f"  events/s overall: {summary['events_per_s']:,.0f}; touch rows/s: first 10% of the time "
          f"{summary['rows_per_s_first_10pct']:,.0f}, last 10% {summary['rows_per_s_last_10pct']:,.0f}; "
          f"first quarter {summary['rows_per_s_first_quarter']:,.0f}, last quarter "
          f"{summary['rows_per_s_last_quarter']:,.0f}")
    for what, key in (("ingest had accepted", "posted_all_at_seconds"),
                      ("grouping had committed", "grouped_all_at_seconds")):
        if summary[key] is not None:
            print(f"  {what} every event at {summary[key]:,.0f} s")
    print("  peak RSS MiB (bound 1,024): " + ", ".join(f"{s} {v:,}" for s, v in summary["peak_rss_mib"].items()))
    for label, key in (("overall", "cpu_ms_per_row"), ("first 10%", "cpu_ms_per_row_first_10pct"),
                       ("last 10%", "cpu_ms_per_row_last_10pct")):
        print(f"  CPU ms per touch row, {label}: " + ", ".join(
            f"{s} {'-' if v is None else f'{v:.2f}'}" for s, v in summary[key].items()))
    print("  state on disk MiB at the end: " + ", ".join(f"{s} {v:,}" for s, v in summary["state_on_disk_mib"].items()))
    print(f"saved {path}, {SAMPLES} and {png}")
    # Throughput against the run's own start: does the pipeline slow down as its state grows?
    first = summary["rows_per_s_first_10pct"]
    record("soak.events_per_s", summary["events_per_s"], "events/s", first, command)
    record("soak.rows_per_s.last_10pct", summary["rows_per_s_last_10pct"], "touch rows/s", first, command)
    record("soak.events_done", done, "events", summary["events"], command)  # ratio < 1: a partial run
    for service, mib in summary["peak_rss_mib"].items():
        record(f"soak.peak_rss_mib.{service}", mib, "MiB", RSS_BOUND_MIB, command)
    for service, mib in summary["state_on_disk_mib"].items():
        record(f"soak.state_on_disk_mib.{service}", mib, "MiB", None, command)
    for service in SERVICES:  # CPU per row at the end against the start: cost growth
        last, start = summary["cpu_ms_per_row_last_10pct"][service], summary["cpu_ms_per_row_first_10pct"][service]
        if last is not None:
            record(f"soak.cpu_ms_per_row.last_10pct.{service}", last, "CPU ms/row", start, command)
    return summary


def command_line(meta: dict) -> str:
    return (f".venv/bin/python -m bench.soak --companies {meta['companies']} --store {meta['store']} "
            f"--cache-entries {meta['cache_entries']} --interval {meta['interval_seconds']:g}")


async def main(args: argparse.Namespace) -> None:
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    # The services' environment is taken from this process's (bench.pipeline.Services).
    os.environ["BG_TABLE_STORE"] = args.store
    os.environ["BG_STATE_CACHE_ENTRIES"] = str(args.cache_entries)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    try:
        samples, meta = await soak(args.companies, args.interval, args.max_seconds, stop, args.keep)
    except Exception:
        # What was sampled until the failure is still the run's record: report it, then fail.
        logging.exception("the soak failed; reporting the samples taken until then")
        if SAMPLES.exists() and len(samples := read_samples(SAMPLES)) >= 2:
            report(samples, json.loads(META.read_text()), args.png, command_line(json.loads(META.read_text())))
        raise SystemExit(1) from None
    if len(samples) < 2:
        raise SystemExit("no samples taken")
    report(samples, meta, args.png, command_line(meta))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--companies", type=int, default=16_000)
    parser.add_argument("--store", choices=("rocksdb://", "memory://"), default="rocksdb://",
                        help="BG_TABLE_STORE of grouping and scoring (default rocksdb://, as for a large market)")
    parser.add_argument("--cache-entries", type=int, default=10_000,
                        help="BG_STATE_CACHE_ENTRIES: decoded states per cache (default 10,000: grouping keeps 3.4 "
                             "caches' worth at about 5 KiB a state, scoring one cache per partition (4) at about "
                             "18 KiB; both then stay under 1 GiB whatever the market, docs/benchmarks.md 'Soak')")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between samples")
    parser.add_argument("--max-seconds", type=float, default=4 * 3600,
                        help="stop after this long and report what was done (partial)")
    parser.add_argument("--keep", action="store_true", help="keep the run's topics, schema and state directories")
    parser.add_argument("--png", type=Path, default=Path("docs/soak.png"))
    parser.add_argument("--from-samples", type=Path,
                        help="only report: figures and plot from a samples CSV (its .meta.json beside it)")
    args = parser.parse_args()
    if args.from_samples:
        meta = json.loads(args.from_samples.with_suffix(".meta.json").read_text())
        report(read_samples(args.from_samples), meta, args.png, command_line(meta))
    else:
        asyncio.run(main(args))
