"""The main job: send the DOMAIN.md stories through the ingest API, print the alerts as they fire,
then the top opportunities with their buying groups, read back from the projection's API.

    python -m demo [--wait SECONDS]      (deploy/demo.sh starts the stack and services first)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid

import httpx
from aiokafka import AIOKafkaConsumer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from demo.send import send_all
from demo.send_ru import send_ru_stack
from demo.stories import all_stories
from demo.stories_ru import RU_TAG
from demo.stories_ru import all_stories as ru_stories
from services.importers.loopback import Loopback, Served, create_app
from services.metrica_writeback.worker import WritebackSettings
from services.metrica_writeback.worker import run as run_writeback
from services.scoring.alerts.format import render_text
from shared import topics
from shared.codec import DecodeError, scoring_messages
from shared.schemas.scoring import Signal
from shared.settings import kafka_settings

console = Console()
INGEST = f"http://127.0.0.1:{os.environ.get('BG_INGEST_PORT', '8081')}"
API = f"http://127.0.0.1:{os.environ.get('BG_API_PORT', '8082')}"
TOKEN = os.environ.get("BG_DEMO_API_TOKEN", "dev-read-token")
# The stories' groups: the demo waits for their formation before it prints the table.
EXPECTED_FORMED = {"romashka.ru:hr", "argotrubosbyt.ru:hr",
                   f"romashka{RU_TAG}.ru:hr", f"argotrubosbyt{RU_TAG}.ru:hr"}


def send_stories() -> None:
    requests = all_stories()
    with Progress(console=console) as progress:
        task = progress.add_task("sending the stories through the ingest API", total=len(requests))
        totals = send_all(INGEST, requests, on_sent=lambda _: progress.advance(task))
    console.print(f"ingest: {totals['requests']} requests, {totals['accepted']} new events, "
                  f"{totals['duplicates']} duplicates (already sent by an earlier run), "
                  f"{totals['ignored']} not touches")
    # The same stories through the Russian stack, for companies of their own (romashka-ru.ru, ...):
    # Tilda forms, MTS Link webinars, Unisender Go email, a Calltouch call, and Metrica visits of a
    # ClientID that a Tilda form names later. Metrica and MTS Link are served by the loopback
    # contract server (services/importers/loopback.py): they cannot be reached from here.
    stack = ru_stories()
    steps = len(stack.webhooks) + 2
    with Progress(console=console) as progress:
        task = progress.add_task("sending the stories through the Russian stack", total=steps)
        totals = send_ru_stack(INGEST, stack, on_step=lambda _: progress.advance(task))
    console.print(f"Russian stack: {totals['accepted']} new events, {totals['duplicates']} duplicates, "
                  f"{totals['dead_lettered']} dead-lettered")


async def watch_signals(wait: float) -> list[Signal]:
    """Print every signal as scoring emits it, until the stories' groups formed or `wait` passes."""
    consumer = AIOKafkaConsumer(topics.SIGNALS.name, **kafka_settings().aiokafka_kwargs(),
                                group_id=f"demo-{uuid.uuid4().hex[:8]}", auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    seen: list[Signal] = []
    formed: set[str] = set()
    deadline = time.monotonic() + wait
    try:
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    try:
                        signal = scoring_messages.decode(record.value)
                    except DecodeError:
                        continue
                    seen.append(signal)
                    console.print(f"[bold yellow]alert[/] {render_text(signal)}")
            formed = {s.opportunity_id for s in seen if s.signal == "group_formed"}
            if formed >= EXPECTED_FORMED:
                return seen
        console.print(f"[red]waited {wait:.0f} s; groups formed so far: {sorted(formed) or 'none'}[/]")
        return seen
    finally:
        await consumer.stop()


async def write_back(opportunity_ids: set[str], wait: float = 30) -> None:
    """The write-back's offline conversions for the formed groups' members' ClientIDs, uploaded to
    the loopback Metrica (the real one cannot be reached from here), in a run of its own."""
    state = Loopback()
    with Served(create_app(state)) as url:
        settings = WritebackSettings(api_url=url, token=state.metrica_token, counter_id=state.counter_id)
        stop = asyncio.Event()
        task = asyncio.create_task(run_writeback(settings, stop, instance=f"demo-{uuid.uuid4().hex[:8]}."))
        deadline = time.monotonic() + wait
        expected = {o for o in opportunity_ids if o.startswith(f"romashka{RU_TAG}.")}  # the one with ClientIDs
        while time.monotonic() < deadline and len(state.uploads) < len(expected):
            await asyncio.sleep(0.5)
        stop.set()
        await task
    for upload in state.uploads:
        ids = ", ".join(sorted({r["ClientId"] for r in upload["rows"]}))
        console.print(f"[bold]Metrica write-back[/]: offline conversion {upload['rows'][0]['Target']} for the "
                      f"ClientIDs of the group's members: {ids} (uploading {upload['id']}, {upload['status']})")
    if not state.uploads:
        console.print("[red]Metrica write-back: nothing uploaded[/]")


def wait_for_projection(opportunity_ids: set[str], wait: float) -> None:
    deadline = time.monotonic() + wait
    with httpx.Client(base_url=API, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as client:
        def formed(opportunity_id: str) -> bool:
            r = client.get(f"/v1/opportunities/{opportunity_id}")
            return r.status_code == 200 and r.json().get("formed_at") is not None

        while time.monotonic() < deadline and not all(formed(o) for o in opportunity_ids):
            time.sleep(0.5)


def print_opportunities() -> None:
    with httpx.Client(base_url=API, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as client:
        page = client.get("/v1/opportunities", params={"limit": 10}).raise_for_status().json()
        table = Table(title=f"Top opportunities ({page['total']} in all), by priority")
        for col in ("#", "account", "solution", "tier", "score", "status", "members", "roles covered", "missing"):
            table.add_column(col)
        for o in page["items"]:
            table.add_row(str(o["rank"]), o["account_name"] or o["account_id"], o["solution"], o["tier"] or "-",
                          f"{o['score']:.1f}" if o["score"] is not None else "-", o["status"],
                          str(o["members_count"]), ", ".join(o["covered_roles"]), ", ".join(o["missing_roles"]))
        console.print(table)
        for o in page["items"][:2]:
            detail = client.get(f"/v1/opportunities/{o['opportunity_id']}").raise_for_status().json()
            group = Table(title=f"Buying group: {o['account_name'] or o['account_id']} x {o['solution']}")
            for col in ("member", "title", "department", "role", "touches", "engagement"):
                group.add_column(col)
            for m in detail["members"]:
                engagement = f"{m['engagement']:.2f}" if m.get("engagement") is not None else "-"
                group.add_row(m["name"] or m["person_id"], m["job_title"] or "-", m["department"], m["role"],
                              str(m["touches_count"]), engagement)
            console.print(group)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wait", type=float, default=120, help="seconds to wait for the groups to form")
    args = parser.parse_args()
    try:
        httpx.get(f"{INGEST}/readyz", timeout=5).raise_for_status()
    except httpx.HTTPError as exc:
        console.print(f"[red]the ingest API does not answer at {INGEST} ({exc}); run: bash deploy/demo.sh[/]")
        return 1
    send_stories()
    signals = asyncio.run(watch_signals(args.wait))
    asyncio.run(write_back({s.opportunity_id for s in signals if s.signal == "group_formed"}))
    wait_for_projection({s.opportunity_id for s in signals if s.signal == "group_formed"}, 30)
    print_opportunities()
    console.print(f"\nRead API: {API}/docs (token: Bearer {TOKEN}); ingest API: {INGEST}/docs")
    console.print("Stop everything with: bash deploy/demo.sh stop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
