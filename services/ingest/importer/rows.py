"""Rows of an exported table -> canonical touch events, each row on its own (pure).

Columns are matched by name, case and punctuation ignored, in Russian or English (COLUMNS).
A row needs an email and a time; the kind comes from the row's own `type` column (KIND_WORDS)
or the file's default. A time without an offset is taken in the file's time zone (`tz`), and
when none was given, as UTC and marked as assumed (timing.py). Each event's id is a hash of
what the row says, so that importing the same file twice produces every touch once.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from pydantic import ValidationError

from shared.schemas.touch import Source, TimeAdjustment, TouchEvent, TouchKind

# Canonical field -> the column names it is known by (normalised: lower case, letters and digits).
COLUMNS: dict[str, tuple[str, ...]] = {
    "email": ("email", "e-mail", "mail", "почта", "эл. почта", "электронная почта", "e-mail адрес", "емейл"),
    "name": ("name", "full name", "contact", "фио", "контакт", "имя и фамилия"),
    "first_name": ("first name", "firstname", "имя"),
    "last_name": ("last name", "lastname", "surname", "фамилия"),
    "job_title": ("title", "job title", "position", "role", "должность", "позиция"),
    "company": ("company", "organisation", "organization", "account", "компания", "организация"),
    "occurred_at": ("date", "datetime", "time", "timestamp", "occurred at", "date and time", "visited at",
                    "дата", "время", "дата и время", "дата визита", "дата звонка", "дата встречи"),
    "kind": ("kind", "type", "activity", "activity type", "тип", "действие", "тип активности"),
    "title": ("event", "subject", "topic", "event name", "мероприятие", "тема", "событие", "название"),
    "url": ("url", "link", "page", "ссылка", "страница"),
    "id": ("id", "row id", "activity id", "идентификатор"),
}

# Words of a row's `type` column -> touch kind (and the kinds' own names).
KIND_WORDS: dict[str, TouchKind] = {
    **{k.value: k for k in TouchKind},
    "call": TouchKind.call, "phone call": TouchKind.call, "звонок": TouchKind.call,
    "meeting": TouchKind.meeting, "встреча": TouchKind.meeting,
    "visit": TouchKind.event_attended, "visited": TouchKind.event_attended, "attended": TouchKind.event_attended,
    "booth visit": TouchKind.event_attended, "посетил": TouchKind.event_attended,
    "посещение": TouchKind.event_attended, "визит": TouchKind.event_attended,
    "registered": TouchKind.event_registered, "registration": TouchKind.event_registered,
    "регистрация": TouchKind.event_registered,
    "webinar": TouchKind.webinar_attended, "вебинар": TouchKind.webinar_attended,
    "demo": TouchKind.demo_requested, "демо": TouchKind.demo_requested,
}

SOURCES: dict[TouchKind, Source] = {
    TouchKind.call: Source.sales, TouchKind.meeting: Source.sales,
    TouchKind.event_attended: Source.event, TouchKind.event_registered: Source.event,
    TouchKind.webinar_attended: Source.webinar, TouchKind.webinar_registered: Source.webinar,
    TouchKind.demo_requested: Source.form, TouchKind.form_submitted: Source.form,
}

# The default kind of a file, by what it is (the --default-kind choices).
FILE_KINDS: dict[str, TouchKind] = {
    "trade_show": TouchKind.event_attended, "event_attendance": TouchKind.event_attended,
    "event_registration": TouchKind.event_registered, "calls": TouchKind.call, "meetings": TouchKind.meeting,
}


def _norm(name: Any) -> str:
    return " ".join(re.sub(r"[^\w@-]+", " ", str(name or "").lower().replace("ё", "е")).split())


_ALIASES = {_norm(alias): canonical for canonical, aliases in COLUMNS.items() for alias in aliases}


@dataclass(frozen=True)
class RowError:
    row: int  # 1-based line of the file (the header is row 1)
    field: str
    message: str


@dataclass
class Table:
    """A file's rows as {canonical field: cell}, with the header's unknown columns named."""

    rows: list[tuple[int, dict[str, Any]]]
    unknown_columns: list[str] = field(default_factory=list)


def _table(header: list[Any], body: Iterator[tuple[int, list[Any]]]) -> Table:
    fields = [_ALIASES.get(_norm(h)) for h in header]
    unknown = [str(h) for h, f in zip(header, fields, strict=True) if f is None and str(h or "").strip()]
    rows = []
    for line, cells in body:
        if not any(c not in (None, "") for c in cells):
            continue  # blank line
        kept = {f: c for f, c in zip(fields, cells, strict=False) if f is not None and c not in (None, "")}
        rows.append((line, kept))
    return Table(rows, unknown)


def read_csv(data: bytes) -> Table:
    """CSV as exported by Excel or a CRM: UTF-8 (with or without BOM) or Windows-1251, the
    delimiter sniffed among , ; and tab."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1251")
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    lines = list(csv.reader(io.StringIO(text), dialect))
    if not lines:
        return Table([])
    return _table(lines[0], ((i, cells) for i, cells in enumerate(lines[1:], start=2)))


def read_xlsx(path: Path, sheet: str | None = None) -> Table:
    """The named sheet (default: the first); its first row is the header."""
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True, data_only=True)
    try:
        ws = book[sheet] if sheet else book.worksheets[0]
        lines = ws.iter_rows(values_only=True)
        header = next(lines, None)
        if header is None:
            return Table([])
        return _table(list(header), ((i, list(cells)) for i, cells in enumerate(lines, start=2)))
    finally:
        book.close()


def read(path: Path, sheet: str | None = None) -> Table:
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return read_xlsx(path, sheet)
    return read_csv(path.read_bytes())


def _time(value: Any, tz: ZoneInfo | None) -> tuple[datetime, bool]:
    """(aware time, UTC assumed). Cells may be datetimes (XLSX), dates, or ISO/Russian text."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time())
    else:
        text = str(value).strip()
        for fmt in ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y"):
            try:
                parsed = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        else:
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                raise ValueError(f"'{text[:40]}' is not a date (ISO 8601 or ДД.ММ.ГГГГ ЧЧ:ММ)") from None
    if parsed.tzinfo is not None:
        return parsed, False
    if tz is not None:
        return parsed.replace(tzinfo=tz), False
    return parsed.replace(tzinfo=ZoneInfo("UTC")), True


def _kind(value: Any, default: TouchKind | None) -> TouchKind:
    if value in (None, ""):
        if default is None:
            raise ValueError("no type column value and no --default-kind")
        return default
    kind = KIND_WORDS.get(_norm(value))
    if kind is None:
        raise ValueError(f"'{str(value)[:40]}' is not a known type (e.g. call, meeting, visit, registered)")
    return kind


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def to_event(line: int, row: Mapping[str, Any], default_kind: TouchKind | None, tz: ZoneInfo | None,
             source_name: str) -> TouchEvent | list[RowError]:
    """One row -> a canonical touch, or the row's errors (field = the canonical field)."""
    errors: list[RowError] = []
    if not _text(row.get("email")):
        errors.append(RowError(line, "email", "required"))
    occurred, assumed = None, False
    if row.get("occurred_at") in (None, ""):
        errors.append(RowError(line, "occurred_at", "required (a date column)"))
    else:
        try:
            occurred, assumed = _time(row["occurred_at"], tz)
        except ValueError as exc:
            errors.append(RowError(line, "occurred_at", str(exc)))
    try:
        kind = _kind(row.get("kind"), default_kind)
    except ValueError as exc:
        errors.append(RowError(line, "kind", str(exc)))
    if errors:
        return errors
    name = _text(row.get("name")) or " ".join(filter(None, (_text(row.get("first_name")),
                                                           _text(row.get("last_name"))))) or None
    person = {k: v for k, v in (("email", _text(row["email"])), ("name", name),
                                 ("job_title", _text(row.get("job_title"))),
                                 ("company", _text(row.get("company")))) if v}
    title = _text(row.get("title"))
    content = {k: v for k, v in (("title", title), ("topic", title), ("url", _text(row.get("url")))) if v}
    identity = _text(row.get("id")) or orjson.dumps(
        [person.get("email", "").lower(), kind.value, occurred.isoformat(), title], option=orjson.OPT_SORT_KEYS
    ).decode()
    digest = hashlib.sha256(f"{source_name}\x00{identity}".encode()).hexdigest()[:32]
    try:
        return TouchEvent(
            event_id=f"import:{digest}", occurred_at=occurred, source=SOURCES.get(kind, Source.web), kind=kind,
            platform="import", person=person, content=content,
            time_adjustments=(TimeAdjustment.assumed_utc,) if assumed else (),
            properties={"imported_from": source_name, "row": line},
        )
    except ValidationError as exc:
        return [RowError(line, ".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]


@dataclass
class Mapped:
    events: list[tuple[int, TouchEvent]]
    errors: list[RowError]
    unknown_columns: list[str]


def map_table(table: Table, default_kind: TouchKind | None, tz: ZoneInfo | None, source_name: str) -> Mapped:
    """Every row on its own: the good ones become events, the bad ones errors naming row and field."""
    events, errors = [], []
    for line, row in table.rows:
        result = to_event(line, row, default_kind, tz, source_name)
        if isinstance(result, TouchEvent):
            events.append((line, result))
        else:
            errors.extend(result)
    return Mapped(events, errors, table.unknown_columns)
