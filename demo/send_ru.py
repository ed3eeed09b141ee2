"""Sends the Russian stack's stories: webhooks to ingest as each platform posts them, then the two
pulls (Metrica Logs API visits, MTS Link attendance) from the loopback contract server, which
stands in for Yandex Metrica and MTS Link (they cannot be reached from here)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path

from demo.send import send_all
from demo.stories_ru import RuStack
from services.importers.ingest_client import IngestClient
from services.importers.loopback import Loopback, Served, create_app
from services.importers.metrica_logs import Importer, LogsApi, MetricaSettings
from services.importers.mtslink_attendance import UserApi, pull


def send_ru_stack(ingest_url: str, stack: RuStack, api_key: str = "dev-api-key",
                  on_step: Callable[[str], None] | None = None) -> dict[str, int]:
    """Webhooks first, then the Metrica import and the MTS Link pull. Returns the ingest totals."""
    totals = send_all(ingest_url, stack.webhooks, on_sent=lambda r: on_step and on_step(r.platform))
    state = Loopback(rows={"visits": stack.visits, "hits": []}, sessions=stack.sessions,
                     participations=stack.participations, rows_per_part=10)
    ingest = IngestClient(ingest_url, api_key)
    with Served(create_app(state)) as url, tempfile.TemporaryDirectory() as tmp:
        first = min(date.fromisoformat(v["ym:s:date"]) for v in stack.visits)
        last = max(date.fromisoformat(v["ym:s:date"]) for v in stack.visits)
        settings = MetricaSettings(api_url=url, token=state.metrica_token, counter_id=state.counter_id,
                                   poll_seconds=0.1, start_date=first, state_file=Path(tmp) / "metrica.json")
        report = Importer(settings, LogsApi(url, settings.token, settings.counter_id), ingest).run(until=last)
        if on_step:
            on_step("metrica")
        _, pulled = pull(UserApi(url, state.mtslink_token), ingest, sorted(stack.sessions))
        if on_step:
            on_step("mtslink-attendance")
    ingest.close()
    for t in (report.totals, pulled):
        totals["accepted"] += t.accepted
        totals["duplicates"] += t.duplicates
        totals["dead_lettered"] += t.dead_lettered
    totals["requests"] += report.requests + len(stack.sessions)
    return totals
