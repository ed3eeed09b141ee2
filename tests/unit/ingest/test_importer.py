"""Offline import (issue 13, item 7): rows of CSV/XLSX exports -> canonical touches, per row."""

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from openpyxl import Workbook

from services.ingest.importer.rows import RowError, map_table, read, read_csv
from shared.schemas.touch import TouchKind

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "imports" / "trade_show_hr_expo.csv"
MSK = ZoneInfo("Europe/Moscow")


def test_trade_show_csv_in_russian_maps_each_row_on_its_own():
    table = read(FIXTURE)
    mapped = map_table(table, TouchKind.event_attended, MSK, FIXTURE.name)
    assert table.unknown_columns == ["Заметки"]
    by_email = {e.person.email: (line, e) for line, e in mapped.events}
    assert set(by_email) == {"anna@berezka.ru", "oleg@berezka.ru", "petr@kedr.ru", "maria@olha.ru"}
    line, anna = by_email["anna@berezka.ru"]
    assert line == 2 and anna.kind is TouchKind.event_attended and anna.source == "event"
    assert anna.occurred_at == datetime(2026, 11, 25, 8, 30, tzinfo=UTC)  # 11:30 in Moscow
    assert anna.person.job_title == "Директор по персоналу" and anna.content.title.startswith("HR Expo")
    assert anna.time_adjustments == ()
    # No type in the row: the file's default kind.
    assert by_email["oleg@berezka.ru"][1].kind is TouchKind.event_attended
    assert (by_email["petr@kedr.ru"][1].kind, by_email["petr@kedr.ru"][1].source) == (TouchKind.call, "sales")
    assert by_email["maria@olha.ru"][1].kind is TouchKind.meeting
    assert [(e.row, e.field) for e in mapped.errors] == [(4, "email"), (5, "occurred_at")]


def test_without_a_time_zone_times_are_utc_and_marked_assumed_and_ids_are_stable():
    table = read(FIXTURE)
    first = map_table(table, TouchKind.event_attended, None, FIXTURE.name)
    again = map_table(read(FIXTURE), TouchKind.event_attended, None, FIXTURE.name)
    _, anna = first.events[0]
    assert anna.occurred_at == datetime(2026, 11, 25, 11, 30, tzinfo=UTC)
    assert anna.time_adjustments == ("assumed_utc",)
    assert [e.event_id for _, e in first.events] == [e.event_id for _, e in again.events]
    assert len({e.event_id for _, e in first.events}) == 4


def test_unknown_type_and_missing_default_kind_are_row_errors():
    table = read_csv(b"email,date,type\na@b.ru,2026-11-25T10:00:00Z,fax\nc@d.ru,2026-11-25T10:00:00Z,\n")
    mapped = map_table(table, None, None, "x.csv")
    assert mapped.events == []
    assert [(e.row, e.field) for e in mapped.errors] == [(2, "kind"), (3, "kind")]
    assert isinstance(mapped.errors[0], RowError) and "fax" in mapped.errors[0].message


def test_xlsx_call_log_with_datetime_cells(tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.append(["Email", "Name", "Activity Type", "Date", "Subject"])
    sheet.append(["s.volkov@romashka.ru", "Сергей Волков", "Call", datetime(2026, 11, 26, 10, 0), "Интеграция с 1С"])
    sheet.append(["o.petrova@romashka.ru", "Ольга Петрова", "Meeting", datetime(2026, 11, 27, 14, 0), "ROI"])
    path = tmp_path / "calls.xlsx"
    book.save(path)
    mapped = map_table(read(path), None, MSK, path.name)
    assert mapped.errors == []
    assert [(e.kind, e.occurred_at) for _, e in mapped.events] == [
        (TouchKind.call, datetime(2026, 11, 26, 7, 0, tzinfo=UTC)),
        (TouchKind.meeting, datetime(2026, 11, 27, 11, 0, tzinfo=UTC))]
