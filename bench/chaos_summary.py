"""The figures of one or more chaos series, from the runs they recorded.

    .venv/bin/python -m bench.chaos_summary bench-results/chaos-runs.jsonl [more.jsonl ...] [--record]

bench/chaos.py appends each run's outcome to bench-results/chaos-runs.jsonl as soon as it is
measured, so series run side by side (BG_CHAOS_STACK) or cut short by a deadline still add
up. Prints the issue 19 figures (faults injected by kind, runs identical to their fault-free
run, events lost, touches duplicated, facts re-announced, alerts lost and duplicated,
consumers stuck, restart -> partitions assigned per service, timer facts differing and judged
on partial data) and, with --record, puts the headline ones into docs/benchmarks.json.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path
from statistics import median

from bench.common import record


def load(paths: list[Path]) -> list[dict]:
    """Every run recorded in `paths` (JSON lines of bench/chaos.py's run_summary)."""
    return [json.loads(line) for path in paths for line in path.read_text().splitlines() if line.strip()]


def fault_kind(text: str) -> str:
    """' 17.4 s  restart kafka' -> 'restart kafka'; '  4.4 s  kill ingest (down 5.1 s)' -> 'kill ingest'."""
    what = re.sub(r"^\s*[\d.]+ s\s+", "", text)
    return re.sub(r"\s*\(down [\d.]+ s\)$", "", what)


def figures(runs: list[dict]) -> dict:
    """The figures over `runs`; shapes: counts are ints, delays {service: [seconds]}."""
    delays: dict[str, list[float]] = {}
    for r in runs:
        for service, values in r["assignment_seconds"].items():
            delays.setdefault(service, []).extend(values)
    return {
        "runs": len(runs),
        "seeds": [r["seed"] for r in runs],
        "faults": Counter(fault_kind(f) for r in runs for f in r["faults"]),
        "faults_failed": sum(len(r.get("fault_errors", [])) for r in runs),
        "identical": sum(r["identical"] for r in runs),
        "lost_events": sum(r["lost_events"] for r in runs),
        "duplicated_touches": sum(r["duplicated_touches"] for r in runs),
        "reannounced": sum(r["reannounced"] for r in runs),
        "formation_missing": sum(r["signals_missing"] for r in runs),
        "formation_extra": sum(r["signals_extra"] for r in runs),
        "timer_facts_differing": sum(r["timer_facts_differing"] for r in runs),
        "timer_facts_partial": sum(r.get("timer_facts_partial", 0) for r in runs),
        "alerts_lost": sum(r["alerts_lost"] for r in runs),
        "alerts_duplicated": sum(r["alerts_duplicated"] for r in runs),
        "stuck": [(r["seed"], s) for r in runs for s in r["stuck"]],
        "wedged": [(r["seed"], r["wedged"]) for r in runs if r["wedged"]],
        "supervisor_restarts": sum(r["supervisor_restarts"] for r in runs),
        "delays": delays,
    }


def main(paths: list[Path], keep: bool) -> None:
    f = figures(load(paths))
    every = [d for ds in f["delays"].values() for d in ds]
    print(f"runs with faults: {f['runs']} (seeds {', '.join(map(str, f['seeds']))})")
    print("faults injected: " + ", ".join(f"{k} x{n}" for k, n in sorted(f["faults"].items()))
          + f" ({f['faults_failed']} could not be struck)")
    for key in ("identical", "lost_events", "duplicated_touches", "reannounced", "formation_missing",
                "formation_extra", "timer_facts_differing", "timer_facts_partial", "alerts_lost",
                "alerts_duplicated", "supervisor_restarts"):
        print(f"{key}: {f[key]}")
    print(f"consumers stuck: {f['stuck'] or 'none'}; runs wedged: {f['wedged'] or 'none'}")
    for service, ds in sorted(f["delays"].items()):
        print(f"restart -> partitions assigned, {service}: median {median(ds):.1f} s, max {max(ds):.1f} s "
              f"({len(ds)} restarts)")
    if keep:
        command = f".venv/bin/python -m bench.chaos_summary {' '.join(str(p) for p in paths)} --record"
        record("chaos_runs_with_faults", f["runs"], "runs", None, command)
        record("chaos_runs_identical", f["identical"], "runs", f["runs"], command)
        record("chaos_events_lost", f["lost_events"], "events", None, command)
        record("chaos_touches_duplicated", f["duplicated_touches"], "touches", None, command)
        record("chaos_signals_reannounced", f["reannounced"], "signals", None, command)
        record("chaos_alerts_lost", f["alerts_lost"], "alerts", None, command)
        record("chaos_alerts_duplicated", f["alerts_duplicated"], "alerts", None, command)
        record("chaos_runs_with_a_consumer_stuck", len({seed for seed, _ in f["stuck"]}), "runs", f["runs"], command)
        if every:
            record("chaos_restart_to_assignment_median", round(median(every), 2), "s", None, command)
            record("chaos_restart_to_assignment_max", round(max(every), 2), "s", None, command)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--record", action="store_true", help="put the headline figures into docs/benchmarks.json")
    args = parser.parse_args()
    main(args.paths, args.record)
