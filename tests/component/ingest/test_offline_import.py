"""The offline import command against the running ingest service and the real Kafka (issue 13, item 7)."""

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from shared import topics
from tests.support.kafka import written
from tests.support.privacy import revealed

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "imports" / "trade_show_hr_expo.csv"
ROOT = Path(__file__).resolve().parents[3]


def run_import(ingest_url: str, path: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "services.ingest.importer", str(path), "--url", ingest_url, "--lang", "en",
         "--tz", "Europe/Moscow", "--default-kind", "trade_show", *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})


async def test_trade_show_list_lands_row_by_row_and_twice_is_once(ingest_url, tmp_path):
    tag = uuid.uuid4().hex[:8]
    path = tmp_path / "hr_expo.csv"
    text = FIXTURE.read_text(encoding="utf-8")
    for domain in ("berezka", "sosna", "kedr", "olha"):
        text = text.replace(f"@{domain}.ru", f"@{domain}{tag}.ru")
    path.write_text(text, encoding="utf-8")

    dry = run_import(ingest_url, path, "--dry-run")
    assert dry.returncode == 1, dry.stderr  # two rows have errors
    assert "Dry run: nothing was sent" in dry.stdout and "6 rows, 4 touches" in dry.stdout
    assert "email" in dry.stdout and "not a date" in dry.stdout

    first = run_import(ingest_url, path)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "accepted 4, duplicates 0" in first.stdout
    got = await written(topics.PERSON_EVENTS.name, 4, revealed, lambda e: tag in (e.person.email or ""))
    # The dry run sent nothing: exactly the four good rows are on the topic.
    assert sorted((e.person.email.split("@")[0], e.kind) for e in got) == [
        ("anna", "event_attended"), ("maria", "meeting"), ("oleg", "event_attended"), ("petr", "call")]
    anna = next(e for e in got if e.person.email.startswith("anna"))
    assert anna.occurred_at == datetime(2026, 11, 25, 8, 30, tzinfo=UTC) and anna.platform == "import"

    again = run_import(ingest_url, path)
    assert "accepted 0, duplicates 4" in again.stdout, again.stdout
