"""Detection quality: a generated market replayed through the running system, against its truth.

    .venv/bin/python -m bench.quality [--accounts 60] [--months 3] [--seed 7]

Needs the local stack and all services running (bash deploy/services.sh start): ingest at
http://127.0.0.1:${BG_INGEST_PORT:-8081}, the read API at http://127.0.0.1:${BG_API_PORT:-8082}.
Steps: generate the market (demo/market.py; the files go to --out), send every request through
the ingest API in its platform's format, wait until the read API's change feed has been quiet
for --settle seconds, read every opportunity with its members and signals, and compare with the
ground truth (bench/quality_metrics.py defines each figure), next to a lead-centric MQL
baseline computed from the same requests. Results: bench-results/quality.json.

The comparison is only meaningful on a system that has seen nothing else: the run stops if the
read API already holds opportunities, unless --allow-existing (then only opportunities with a
member of this market count, and earlier company names may still sway matching).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.common import RESULTS, save
from bench.quality_metrics import (
    DEFAULT_THRESHOLD,
    DEFAULT_WEIGHTS,
    Member,
    MqlModel,
    Opportunity,
    Truth,
    evaluate,
    parse_time,
    person_key,
)
from demo.market import generate, write
from demo.send import send_all

console = Console()


class Api:
    def __init__(self, url: str, token: str) -> None:
        self.client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    def get(self, path: str, **params: Any) -> Any:
        r = self.client.get(path, params=params)
        if r.status_code != 200:
            raise RuntimeError(f"GET {path} answered {r.status_code}: {r.text[:300]}")
        return r.json()

    def total(self) -> int:
        return self.get("/v1/opportunities", limit=1)["total"]

    def drain_changes(self, cursor: str) -> tuple[str, int]:
        """Reads the change feed from cursor to its end; returns the new cursor and how many changed."""
        changed = 0
        while True:
            page = self.get("/v1/changes", cursor=cursor, limit=1000)
            changed += len(page["items"])
            cursor = page["next_cursor"]
            if not page["has_more"]:
                return cursor, changed

    def opportunities(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            page = self.get("/v1/opportunities", limit=200, offset=len(items))
            items += page["items"]
            if not page["items"] or len(items) >= page["total"]:
                return items

    def detail(self, opportunity_id: str) -> dict[str, Any]:
        return self.get(f"/v1/opportunities/{quote(opportunity_id, safe='')}", timeline_limit=1)


def to_opportunity(detail: dict[str, Any]) -> Opportunity:
    """formed_at: the group_formed signal's event time (the opportunity's own field otherwise)."""
    formed = [parse_time(s["occurred_at"]) for s in detail["signals"] if s["signal"] == "group_formed"]
    if not formed and detail.get("formed_at"):
        formed = [parse_time(detail["formed_at"])]
    return Opportunity(
        opportunity_id=detail["opportunity_id"], account_id=detail["account_id"], solution=detail["solution"],
        members=tuple(Member(m["person_id"], m["department"], m["role"]) for m in detail["members"]),
        formed_at=min(formed) if formed else None,
    )


def ready(url: str, what: str) -> None:
    try:
        r = httpx.get(f"{url}/readyz", timeout=5)
    except httpx.HTTPError as exc:
        sys.exit(f"{what} is not reachable at {url} ({exc}); start it: bash deploy/services.sh start")
    if r.status_code != 200:
        sys.exit(f"{what} at {url} is not ready ({r.status_code}: {r.text[:200]})")


def wait_until_quiet(api: Api, cursor: str, settle: float, timeout: float) -> str:
    """Polls the change feed until nothing has changed for `settle` seconds."""
    started = quiet_since = time.monotonic()
    seen = 0
    with console.status("waiting for the pipeline to catch up") as status:
        while time.monotonic() - quiet_since < settle:
            if time.monotonic() - started > timeout:
                sys.exit(f"the pipeline still changes opportunities after {timeout:.0f} s; see .stack/logs/")
            time.sleep(1)
            cursor, changed = api.drain_changes(cursor)
            if changed:
                seen += changed
                quiet_since = time.monotonic()
            status.update(f"waiting for the pipeline to catch up: {seen} opportunity changes so far, "
                          f"quiet for {time.monotonic() - quiet_since:.0f}/{settle:.0f} s")
    return cursor


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _days(stats: dict[str, Any]) -> str:
    if not stats["n"]:
        return "—"
    return f"{stats['median']:.1f} / {stats['p90']:.1f}  (n={stats['n']})"


def table(report: dict[str, Any]) -> Table:
    s, b = report["system"], report["baseline"]
    sf, t = s["formation"], report["truth"]
    out = Table(title=f"Detection quality: {t['groups']} true groups, {t['formed']} formed, {t['people']} people")
    out.add_column("measure")
    out.add_column("buying-group system", justify="right")
    out.add_column(f"lead baseline (MQL >= {b['threshold']:g})", justify="right")
    out.add_row("account matching precision", _pct(s["accounts"]["precision"]), "oracle (given)")
    out.add_row("account matching recall", _pct(s["accounts"]["recall"]), "oracle (given)")
    out.add_row("account matching F1", _pct(s["accounts"]["f1"]), "oracle (given)")
    out.add_row("  of which free-mail people", _pct(s["accounts"]["free_mail_recall"]), "oracle (given)")
    out.add_row("role accuracy", _pct(s["roles"]["role_accuracy"]), "—")
    out.add_row("department accuracy", _pct(s["roles"]["department_accuracy"]), "—")
    out.add_row("group formation precision (account + solution)", _pct(sf["precision"]), "— (solution-blind)")
    out.add_row("group formation recall", _pct(sf["recall"]), _pct(b["recall"]))
    out.add_row("account-level precision", _pct(sf["account_level"]["precision"]),
                _pct(b["account_level"]["precision"]))
    out.add_row("account-level recall", _pct(sf["account_level"]["recall"]), _pct(b["account_level"]["recall"]))
    out.add_row("days from true start to detection, median / p90", _days(sf["delay_days_from_start"]),
                _days(b["delay_days_from_start"]))
    out.add_row("days after true formation, median / p90", _days(sf["lag_days_after_true_formation"]),
                _days(b["lag_days_after_true_formation"]))
    p = report["paired"]
    out.add_row("groups both detected: earlier in", f"{p['system_earlier']} of {p['groups_detected_by_both']}",
                f"{p['baseline_earlier']} of {p['groups_detected_by_both']}")
    out.add_row("detections / leads", f"{sf['detections']} formed of {s['opportunities']} opportunities",
                f"{b['mql_people']} MQLs")
    return out


def parse_weights(values: list[str]) -> dict[str, float]:
    weights = dict(DEFAULT_WEIGHTS)
    for item in values:
        kind, _, points = item.partition("=")
        if kind not in weights or not points:
            raise SystemExit(f"--mql-weight {item!r}: expected KIND=POINTS with KIND one of {', '.join(weights)}")
        weights[kind] = float(points)
    return weights


def main(args: argparse.Namespace) -> None:
    data = generate(args.accounts, args.months, args.seed)
    events, truth_path = write(data, args.out)
    console.print(f"market: {len(data.requests)} requests, {len(data.truth['persons'])} people, "
                  f"{len(data.truth['groups'])} true groups -> {events.parent}")
    ready(args.ingest_url, "ingest")
    ready(args.api_url, "the read API")
    api = Api(args.api_url, args.token)
    existing = api.total()
    if existing and not args.allow_existing:
        sys.exit(f"the read API already holds {existing} opportunities; run on a system that has seen nothing "
                 "else (a fresh BG_TOPIC_NAMESPACE and PROJECTION_DB_SCHEMA), or pass --allow-existing: harmless "
                 "after the DOMAIN.md stories alone, whose companies are not in the market, but not after "
                 "another market (other seeds reuse company names)")
    cursor, _ = api.drain_changes("0")

    columns = (TextColumn("sending"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("send", total=len(data.requests))
        started = time.perf_counter()
        totals = send_all(args.ingest_url, data.requests, on_sent=lambda _: progress.advance(task))
        sent_seconds = time.perf_counter() - started
    console.print(f"sent in {sent_seconds:.1f} s: {totals}")
    wait_until_quiet(api, cursor, args.settle, args.timeout)

    truth = Truth.from_json(data.truth)
    details = [api.detail(item["opportunity_id"]) for item in api.opportunities()]
    # With --allow-existing, what came from elsewhere has no member of this market.
    opportunities = [to_opportunity(d) for d in details
                     if any(person_key(m["person_id"]) in truth.persons for m in d["members"])]
    model = MqlModel(parse_weights(args.mql_weight), args.mql_threshold)
    report = evaluate(truth, opportunities, data.requests, model)
    console.print(table(report))
    fp = report["system"]["formation"]["false_positives"]
    if fp:
        console.print(f"system false positives by cause: {fp}")
    path = save("quality", {
        "command": " ".join(["python -m bench.quality", *sys.argv[1:]]),
        "market": {"accounts": args.accounts, "months": args.months, "seed": args.seed,
                   "requests": len(data.requests), "requests_by_platform": data.truth["requests_by_platform"],
                   "events": str(events), "truth": str(truth_path)},
        "ingest": totals, "send_seconds": round(sent_seconds, 1), **report,
    })
    console.print(f"saved {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=60)
    parser.add_argument("--months", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=RESULTS / "quality-market",
                        help="where the generated events.jsonl and truth.json go")
    parser.add_argument("--ingest-url", default=f"http://127.0.0.1:{os.environ.get('BG_INGEST_PORT', '8081')}")
    parser.add_argument("--api-url", default=f"http://127.0.0.1:{os.environ.get('BG_API_PORT', '8082')}")
    parser.add_argument("--token", default=os.environ.get("BG_API_TOKEN", "dev-read-token"),
                        help="a read token of the API (BG_API_TOKENS of the projection)")
    parser.add_argument("--settle", type=float, default=15.0,
                        help="seconds without any opportunity change that mean the pipeline caught up")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--mql-threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--mql-weight", action="append", default=[], metavar="KIND=POINTS",
                        help=f"override a baseline weight (repeatable); defaults: {DEFAULT_WEIGHTS}")
    parser.add_argument("--allow-existing", action="store_true")
    main(parser.parse_args())
