"""python -m services.ingest.importer FILE: offline touches from CSV/XLSX through the ingest API.

Every row stands alone: the rows that map are sent in batches to POST /v1/events (so
deduplication, the dead-letter topic and the time checks are the platforms' own), the rows
that do not are listed with their line and field. --dry-run reads and maps only, and reports
what would be sent. Exit status: 0 every row landed, 1 some rows failed, 2 the file or the
API could not be used.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from services.ingest.importer.rows import FILE_KINDS, Mapped, RowError, map_table, read
from shared.schemas.touch import TouchKind

WORDS = {
    "ru": {"rows": "строк", "events": "касаний", "sent": "Отправлено", "accepted": "принято",
           "duplicates": "повторов", "failed": "Строки с ошибками", "row": "строка", "field": "поле",
           "message": "ошибка", "dry": "Проверка без отправки: ничего не отправлено", "kinds": "По видам",
           "kind": "вид", "count": "количество", "period": "Период", "unknown": "Неизвестные столбцы (пропущены)",
           "sending": "Отправка"},
    "en": {"rows": "rows", "events": "touches", "sent": "Sent", "accepted": "accepted",
           "duplicates": "duplicates", "failed": "Rows with errors", "row": "row", "field": "field",
           "message": "error", "dry": "Dry run: nothing was sent", "kinds": "By kind", "kind": "kind",
           "count": "count", "period": "Period", "unknown": "Unknown columns (skipped)", "sending": "Sending"},
}


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m services.ingest.importer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path, help="a .csv or .xlsx export")
    parser.add_argument("--default-kind", choices=[*FILE_KINDS, *(k.value for k in TouchKind)],
                        help="the kind of rows without a type column: trade_show, calls, meetings, ...")
    parser.add_argument("--tz", help="time zone of times without an offset, e.g. Europe/Moscow (default: UTC, "
                                     "marked as assumed)")
    parser.add_argument("--sheet", help="the XLSX sheet (default: the first)")
    parser.add_argument("--dry-run", action="store_true", help="read and check only, send nothing")
    parser.add_argument("--url", default=f"http://127.0.0.1:{os.environ.get('BG_INGEST_PORT', '8081')}",
                        help="the ingest API")
    parser.add_argument("--api-key", default=os.environ.get("INGEST_IMPORT_API_KEY", "dev-api-key"),
                        help="an API key of source 'api' (env INGEST_IMPORT_API_KEY)")
    parser.add_argument("--batch", type=int, default=500, help="events per request (at most the API's limit)")
    parser.add_argument("--lang", choices=["ru", "en"], default=os.environ.get("BG_LANG", "ru"))
    return parser.parse_args(argv)


def send(mapped: Mapped, url: str, api_key: str, size: int, console: Console, w: dict) -> tuple[Counter, list]:
    """POST the events in batches; the API's per-item failures come back as row errors."""
    totals: Counter = Counter()
    errors: list[RowError] = []
    with httpx.Client(base_url=url, headers={"X-API-Key": api_key}, timeout=60) as client, Progress(
            TextColumn(w["sending"]), BarColumn(), MofNCompleteColumn(), console=console) as progress:
        task = progress.add_task("send", total=len(mapped.events))
        for start in range(0, len(mapped.events), size):
            chunk = mapped.events[start:start + size]
            body = {"events": [event.model_dump(mode="json") for _, event in chunk]}
            r = client.post("/v1/events", json=body)
            if r.status_code == 422:  # every event of the batch was refused: each names its item
                failed = [{"index": int(e["field"].split(".")[1]), "errors": [e]} for e in r.json()["errors"]
                          if e["field"].startswith("events.")]
                if not failed:
                    raise RuntimeError(f"{url}/v1/events refused the batch: {r.text[:500]}")
            elif r.status_code >= 300:
                raise RuntimeError(f"{url}/v1/events answered {r.status_code}: {r.text[:500]}")
            else:
                answer = r.json()
                totals.update(accepted=answer["accepted"], duplicates=answer["duplicates"])
                failed = answer["failed"]
            for item in failed:
                line = chunk[item["index"]][0] if item.get("index") is not None else 0
                errors += [RowError(line, e["field"].partition(".")[2].partition(".")[2] or e["field"],
                                    e["message"]) for e in item["errors"]]
            progress.advance(task, len(chunk))
    return totals, errors


def report(console: Console, w: dict, mapped: Mapped, rows: int, errors: list[RowError]) -> None:
    console.print(f"{rows} {w['rows']}, {len(mapped.events)} {w['events']}")
    kinds = Table(title=w["kinds"])
    kinds.add_column(w["kind"])
    kinds.add_column(w["count"], justify="right")
    for kind, n in sorted(Counter(e.kind.value for _, e in mapped.events).items()):
        kinds.add_row(kind, str(n))
    console.print(kinds)
    if mapped.events:
        times = [e.occurred_at for _, e in mapped.events]
        console.print(f"{w['period']}: {min(times).isoformat()} — {max(times).isoformat()}")
    if mapped.unknown_columns:
        console.print(f"{w['unknown']}: {', '.join(mapped.unknown_columns)}")
    if errors:
        table = Table(title=w["failed"])
        for column in ("row", "field", "message"):
            table.add_column(w[column])
        for e in sorted(errors, key=lambda e: e.row):
            table.add_row(str(e.row), e.field, e.message)
        console.print(table)


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    console, w = Console(), WORDS[args.lang]
    try:
        tz = ZoneInfo(args.tz) if args.tz else None
        table = read(args.file, args.sheet)
    except (OSError, ValueError, KeyError, ZoneInfoNotFoundError) as exc:
        console.print(f"[red]{args.file}: {exc}[/red]")
        return 2
    default = FILE_KINDS.get(args.default_kind) or (TouchKind(args.default_kind) if args.default_kind else None)
    mapped = map_table(table, default, tz, args.file.name)
    errors = list(mapped.errors)
    if args.dry_run:
        console.print(f"[bold]{w['dry']}[/bold]")
    else:
        try:
            totals, sent_errors = send(mapped, args.url, args.api_key, args.batch, console, w)
        except (httpx.HTTPError, RuntimeError) as exc:
            console.print(f"[red]{exc}[/red]")
            return 2
        errors += sent_errors
        console.print(f"{w['sent']}: {w['accepted']} {totals['accepted']}, {w['duplicates']} {totals['duplicates']}")
    report(console, w, mapped, len(table.rows), errors)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
