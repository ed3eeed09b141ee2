"""Yandex Metrica Logs API importer: visits (and optionally pageviews) as anonymous touches.

The Logs API is an asynchronous export (https://yandex.ru/dev/metrika/ru/logs/practice/quick-start):
evaluate a date range, create a log request, poll it until `processed`, download its TSV
parts, clean it. Each run imports the complete days from where the last run stopped up to
yesterday (the API exports whole past days only), one source at a time, and keeps its
position in a state file after every step: a run that dies mid-way resumes the same log
request and skips the parts it already sent (ingest dedupes by event id, so a part sent
twice is written once).

A visit becomes a page_view of its landing page (`ym:s:startURL`) at `ym:s:dateTime`; a
pageview (source `hits`) a page_view of `ym:pv:URL` with `ym:pv:title`. Both are keyed by the
visitor's ClientID (`anonymous_id = ym:<ClientID>`): anonymous until a Tilda form (`_ym_uid`),
a Calltouch call (`yaClientId`) or another source names the ClientID's owner, when grouping
releases them to that person. Metrica's `dateTime` fields are in the counter's time zone
(METRICA_TIMEZONE). Import one of the two sources for touches, not both, or a visit's landing
page counts twice.

    python -m services.importers metrica [--until YYYY-MM-DD] [--every SECONDS] [--no-progress]

`--every` keeps it running as the scheduler: a run, then a pause, again (a cron job or a
systemd timer calling it without `--every` does the same).
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import httpx
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from rich.progress import Progress

from services.importers.ingest_client import IngestClient, Totals
from services.ingest.adapters.ids import metrica_anonymous_id
from shared.schemas.touch import Source, TouchEvent, TouchKind
from shared.settings import WorkerSettings

LogSource = Literal["visits", "hits"]
FIELDS: dict[str, list[str]] = {
    "visits": ["ym:s:visitID", "ym:s:clientID", "ym:s:date", "ym:s:dateTime", "ym:s:startURL",
               "ym:s:pageViews", "ym:s:goalsID", "ym:s:UTMSource", "ym:s:UTMMedium", "ym:s:UTMCampaign",
               "ym:s:UTMContent", "ym:s:UTMTerm"],
    "hits": ["ym:pv:watchID", "ym:pv:clientID", "ym:pv:date", "ym:pv:dateTime", "ym:pv:URL", "ym:pv:title"],
}


class MetricaSettings(BaseSettings):
    """METRICA_* from the environment."""

    model_config = SettingsConfigDict(env_prefix="METRICA_", extra="ignore")

    api_url: str = "https://api-metrika.yandex.net"
    token: str = ""  # OAuth token with metrika:read (and metrika:write for the write-back)
    counter_id: int = 0
    timezone: str = "Europe/Moscow"  # the counter's time zone: dateTime fields are in it
    sources: list[LogSource] = Field(default_factory=lambda: ["visits"])
    start_date: date | None = None  # the first day to import when there is no state yet
    max_days: int = Field(31, ge=1, le=365)  # days per log request (the API allows up to a year)
    poll_seconds: float = Field(10.0, ge=0)
    poll_timeout_seconds: float = Field(3600.0, gt=0)
    state_file: Path = Field(default_factory=lambda: WorkerSettings().state_dir / "metrica-logs.json")
    ingest_url: str = Field("http://127.0.0.1:8081", validation_alias="BG_INGEST_URL")
    ingest_api_key: str = "dev-api-key"


class LogsApiError(RuntimeError):
    pass


class LogsApi:
    """The Logs API's five calls (Authorization: OAuth <token>)."""

    def __init__(self, base_url: str, token: str, counter_id: int, timeout: float = 60.0) -> None:
        self.http = httpx.Client(base_url=f"{base_url}/management/v1/counter/{counter_id}", timeout=timeout,
                                 headers={"Authorization": f"OAuth {token}"})

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        r = self.http.request(method, path, **kwargs)
        if r.status_code >= 300:
            raise LogsApiError(f"{method} {path}: {r.status_code} {r.text[:300]}")
        return r

    @staticmethod
    def _params(source: str, date1: date, date2: date) -> dict[str, str]:
        return {"date1": date1.isoformat(), "date2": date2.isoformat(), "source": source,
                "fields": ",".join(FIELDS[source])}

    def evaluate(self, source: str, date1: date, date2: date) -> dict:
        """-> {"possible": bool, "max_possible_day_quantity": int}"""
        return self._call("GET", "/logrequests/evaluate",
                          params=self._params(source, date1, date2)).json()["log_request_evaluation"]

    def create(self, source: str, date1: date, date2: date) -> int:
        return self._call("POST", "/logrequests", params=self._params(source, date1, date2)).json()[
            "log_request"]["request_id"]

    def info(self, request_id: int) -> dict:
        """-> {"status": "created" | "processed" | ..., "parts": [{"part_number", "size"}], ...}"""
        return self._call("GET", f"/logrequest/{request_id}").json()["log_request"]

    def download(self, request_id: int, part: int) -> str:
        return self._call("GET", f"/logrequest/{request_id}/part/{part}/download").text

    def clean(self, request_id: int) -> None:
        self._call("POST", f"/logrequest/{request_id}/clean")

    def close(self) -> None:
        self.http.close()


def rows(tsv: str) -> Iterator[dict[str, str]]:
    """A downloaded part: a header line of field names, then tab-separated rows."""
    yield from csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE)


def _utm(row: dict[str, str]) -> dict[str, str]:
    names = {"ym:s:UTMSource": "utm_source", "ym:s:UTMMedium": "utm_medium", "ym:s:UTMCampaign": "utm_campaign",
             "ym:s:UTMContent": "utm_content", "ym:s:UTMTerm": "utm_term"}
    return {utm: row[f] for f, utm in names.items() if row.get(f)}


class BadRow(ValueError):
    """A row that does not fit the requested fields (no id, a time that is not a time)."""


def to_touch(source: str, row: dict[str, str], zone: ZoneInfo) -> TouchEvent | None:
    """One Logs API row -> an anonymous page_view touch; None without a usable ClientID.

    Raises BadRow when the row lacks its id or its dateTime is not 'YYYY-MM-DD HH:MM:SS'.
    """
    p = "ym:s:" if source == "visits" else "ym:pv:"
    anonymous = metrica_anonymous_id(row.get(f"{p}clientID"))
    if anonymous is None:
        return None
    if not row.get("ym:s:visitID" if source == "visits" else "ym:pv:watchID"):
        raise BadRow(f"{p}{'visitID' if source == 'visits' else 'watchID'}: missing")
    try:
        at = datetime.strptime(row.get(f"{p}dateTime") or "", "%Y-%m-%d %H:%M:%S").replace(tzinfo=zone)
    except ValueError:
        raise BadRow(f"{p}dateTime: {row.get(f'{p}dateTime')!r} is not 'YYYY-MM-DD HH:MM:SS'") from None
    if source == "visits":
        goals = row.get("ym:s:goalsID", "").strip("[]")
        return TouchEvent(
            event_id=f"ym:visit:{row['ym:s:visitID']}", occurred_at=at, source=Source.web,
            kind=TouchKind.page_view, platform="metrica", person={"anonymous_id": anonymous},
            content={"url": row["ym:s:startURL"]} if row.get("ym:s:startURL") else {},
            context={"utm": _utm(row)},
            properties={k: v for k, v in (("page_views", row.get("ym:s:pageViews")),
                                          ("goals", goals)) if v},
        )
    return TouchEvent(
        event_id=f"ym:hit:{row['ym:pv:watchID']}", occurred_at=at, source=Source.web, kind=TouchKind.page_view,
        platform="metrica", person={"anonymous_id": anonymous},
        content={k: v for k, v in (("url", row.get("ym:pv:URL")), ("title", row.get("ym:pv:title"))) if v},
    )


@dataclass
class State:
    """Where the import stands, per source: the next day to import and the request in flight."""

    path: Path

    def load(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}

    def save(self, data: dict[str, Any]) -> None:
        # Write then rename: a crash never leaves half a state file.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        tmp.replace(self.path)


@dataclass
class ImportReport:
    requests: int = 0
    parts: int = 0
    rows: int = 0
    skipped_rows: int = 0  # rows without a ClientID (anonymous even to Metrica)
    bad_rows: list[str] = field(default_factory=list)  # rows that do not fit the fields, with why
    totals: Totals | None = None


class Importer:
    def __init__(self, settings: MetricaSettings, api: LogsApi, ingest: IngestClient,
                 progress: Progress | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.s = settings
        self.api = api
        self.ingest = ingest
        self.state = State(settings.state_file)
        self.zone = ZoneInfo(settings.timezone)
        self.progress = progress
        self.sleep = sleep

    def run(self, until: date) -> ImportReport:
        """Import every complete day up to `until` (inclusive; at most yesterday) for each source."""
        report = ImportReport(totals=Totals())
        for source in self.s.sources:
            while self._step(source, until, report):
                pass
        return report

    def _step(self, source: str, until: date, report: ImportReport) -> bool:
        """One log request of `source`; False when there is nothing left to import."""
        data = self.state.load()
        mine = data.setdefault(source, {})
        pending = mine.get("request")
        if pending is None:
            first = date.fromisoformat(mine["next_date"]) if "next_date" in mine else self.s.start_date
            if first is None:
                raise LogsApiError("no state yet: set METRICA_START_DATE (the first day to import)")
            if first > until:
                return False
            last = min(until, first + timedelta(days=self.s.max_days - 1))
            estimate = self.api.evaluate(source, first, last)
            if not estimate["possible"]:
                days = max(1, int(estimate.get("max_possible_day_quantity") or 1))
                last = min(last, first + timedelta(days=days - 1))
            pending = {"request_id": self.api.create(source, first, last), "date1": first.isoformat(),
                       "date2": last.isoformat(), "parts_done": []}
            mine["request"] = pending
            self.state.save(data)
            report.requests += 1
        info = self._wait_processed(pending["request_id"])
        parts = [p["part_number"] for p in info.get("parts", [])]
        task = self.progress.add_task(f"Metrica {source} {pending['date1']}..{pending['date2']}",
                                      total=len(parts)) if self.progress else None
        for part in parts:
            if part not in pending["parts_done"]:
                self._send_part(source, pending["request_id"], part, report)
                pending["parts_done"].append(part)
                self.state.save(data)  # a crash after this resends nothing before it
            if task is not None:
                self.progress.advance(task)
        self.api.clean(pending["request_id"])
        mine["next_date"] = (date.fromisoformat(pending["date2"]) + timedelta(days=1)).isoformat()
        del mine["request"]
        self.state.save(data)
        return True

    def _wait_processed(self, request_id: int) -> dict:
        deadline = time.monotonic() + self.s.poll_timeout_seconds
        while True:
            info = self.api.info(request_id)
            if info["status"] == "processed":
                return info
            if info["status"] not in ("created", "awaiting_retry"):
                raise LogsApiError(f"log request {request_id} is {info['status']}")
            if time.monotonic() > deadline:
                raise LogsApiError(f"log request {request_id} not processed in {self.s.poll_timeout_seconds}s")
            self.sleep(self.s.poll_seconds)

    def _send_part(self, source: str, request_id: int, part: int, report: ImportReport) -> None:
        touches, skipped = [], 0
        for row in rows(self.api.download(request_id, part)):
            try:
                touch = to_touch(source, row, self.zone)
            except BadRow as exc:
                # One bad row never stops the import; it is counted and named, the rest go on.
                report.bad_rows.append(f"{source} request {request_id} part {part}: {exc}")
                continue
            if touch is None:
                skipped += 1
            else:
                touches.append(touch)
        self.ingest.send(touches, report.totals)
        report.parts += 1
        report.rows += len(touches)
        report.skipped_rows += skipped


def main(argv: list[str] | None = None) -> int:
    import argparse

    from rich.console import Console

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--until", type=date.fromisoformat, help="last day to import (default: yesterday)")
    parser.add_argument("--every", type=float, help="run again every SECONDS (a scheduler in one process)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    settings = MetricaSettings()
    console = Console()
    while True:
        yesterday = date.today() - timedelta(days=1)
        until = min(args.until or yesterday, yesterday)
        api = LogsApi(settings.api_url, settings.token, settings.counter_id)
        ingest = IngestClient(settings.ingest_url, settings.ingest_api_key)
        try:
            with Progress(console=console, disable=args.no_progress) as progress:
                report = Importer(settings, api, ingest, progress).run(until)
        finally:
            api.close()
            ingest.close()
        t = report.totals
        console.print(f"Metrica: {report.requests} log requests, {report.parts} parts, {report.rows} touches "
                      f"({t.accepted} new, {t.duplicates} duplicates, {t.dead_lettered} dead-lettered), "
                      f"{report.skipped_rows} rows without a ClientID, {len(report.bad_rows)} bad rows")
        for bad in report.bad_rows[:20]:
            console.print(f"[red]bad row[/] {bad}")
        if not args.every:
            return 0
        time.sleep(args.every)
