"""The scheduled pulls against the loopback contract server (Metrica Logs API, MTS Link UserAPI v3),
through the running ingest service into Kafka."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest

from services.importers.ingest_client import IngestClient
from services.importers.loopback import Loopback, Served, create_app
from services.importers.metrica_logs import Importer, LogsApi, LogsApiError, MetricaSettings
from services.importers.mtslink_attendance import UserApi, pull
from shared import topics
from tests.support.kafka import written
from tests.support.privacy import revealed

TODAY = date(2026, 11, 30)


def visit(n: int, client_id: str, day: date, url: str) -> dict[str, str]:
    return {"ym:s:visitID": f"{n}", "ym:s:clientID": client_id, "ym:s:date": day.isoformat(),
            "ym:s:dateTime": f"{day.isoformat()} 12:00:00", "ym:s:startURL": url, "ym:s:pageViews": "3",
            "ym:s:goalsID": "[]", "ym:s:UTMSource": "yandex", "ym:s:UTMMedium": "cpc", "ym:s:UTMCampaign": "",
            "ym:s:UTMContent": "", "ym:s:UTMTerm": ""}


@pytest.fixture
def metrica(tmp_path: Path):
    state = Loopback(today=TODAY, rows_per_part=2)
    with Served(create_app(state)) as url:
        yield state, url


def importer(url: str, ingest_url: str, tmp_path: Path, start: date) -> Importer:
    settings = MetricaSettings(api_url=url, token="loopback-metrica-token", counter_id=44147844, poll_seconds=0,
                               start_date=start, max_days=3, state_file=tmp_path / "metrica.json",
                               ingest_url=ingest_url)
    return Importer(settings, LogsApi(url, settings.token, settings.counter_id),
                    IngestClient(ingest_url, "dev-api-key"), sleep=lambda _: None)


async def test_metrica_visits_import_resumes_after_a_failure_and_goes_on_incrementally(metrica, ingest_url, tmp_path):
    state, url = metrica
    tag = uuid.uuid4().int % 10**12
    start = TODAY - timedelta(days=5)
    ids = [f"17{tag:012d}{i:05d}" for i in range(3)]
    state.rows["visits"] = [visit(tag * 100 + i, ids[i % 3], start + timedelta(days=i % 4),
                                  f"https://vendor.example/solutions/hr/p{i}") for i in range(6)]
    broken = visit(tag * 100 + 99, ids[0], start + timedelta(days=4), "https://vendor.example/solutions/hr/x")
    state.rows["visits"].append({**broken, "ym:s:dateTime": "31.12.2026 25:00"})  # a row that is not a visit
    first = importer(url, ingest_url, tmp_path, start)
    state.fail_parts = {1}  # the second part fails: the run stops, the state keeps what was sent
    with pytest.raises(LogsApiError):
        first.run(until=start + timedelta(days=2))
    saved = first.state.load()["visits"]
    assert saved["request"]["parts_done"] == [0] and state.created() == 1

    again = importer(url, ingest_url, tmp_path, start).run(until=start + timedelta(days=2))
    assert state.created() == 1  # resumed the same log request, no new one
    # Five visits in those three days, two per part: part 0 was sent, parts 1 and 2 are left.
    assert (again.requests, again.parts, again.rows) == (0, 2, 3)
    assert [r.status for r in state.requests.values()] == ["cleaned_by_user"]

    # Incremental: the next run asks only for the days after the last one imported.
    later = importer(url, ingest_url, tmp_path, start).run(until=TODAY - timedelta(days=1))
    assert later.requests == 1 and list(state.requests.values())[-1].date1 == (start + timedelta(days=3)).isoformat()
    assert len(later.bad_rows) == 1 and "dateTime" in later.bad_rows[0]  # counted and named; the rest went on
    assert importer(url, ingest_url, tmp_path, start).run(until=TODAY - timedelta(days=1)).requests == 0

    # Every visit once: the importer's posts were answered after Kafka acknowledged them.
    got = await written(topics.PERSON_EVENTS.name, 6, revealed, lambda e: e.event_id.startswith(f"ym:visit:{tag}"))
    assert {e.person.anonymous_id for e in got} == {f"ym:{i}" for i in ids}
    assert all(e.kind == "page_view" and e.platform == "metrica" for e in got)
    assert got[0].context.utm == {"utm_source": "yandex", "utm_medium": "cpc"}


async def test_mtslink_attendance_pull(ingest_url):
    tag = uuid.uuid4().hex[:8]
    state = Loopback()
    state.sessions[f"s{tag}"] = {"id": f"s{tag}", "name": "HR-система для производственных компаний",
                                 "startsAt": "2026-10-06T11:00:00+03:00"}
    state.participations[f"s{tag}"] = [
        {"id": 60387981, "name": "Анна", "secondName": "Орлова", "email": f"a.orlova@argotrubosbyt{tag}.ru",
         "eventSessionId": f"s{tag}", "isAccepted": 1, "role": "GUEST", "userId": 1029, "visited": True,
         "additionalFieldValues": [{"label": "Компания", "value": "АО «Арготрубосбыт»"},
                                   {"label": "Должность", "value": "Директор по персоналу"}]},
        {"id": 60387982, "name": "Не", "secondName": "Пришёл", "email": f"absent@argotrubosbyt{tag}.ru",
         "isAccepted": 1, "role": "GUEST", "userId": 1030, "visited": False},
    ]
    with Served(create_app(state)) as url:
        api = UserApi(url, "loopback-mtslink-token")
        seen, totals = pull(api, IngestClient(ingest_url, "dev-api-key"), [f"s{tag}"])
        assert (seen, totals.accepted) == (2, 1)
        assert pull(api, IngestClient(ingest_url, "dev-api-key"), [f"s{tag}"])[1].duplicates == 1
    [touch] = await written(topics.PERSON_EVENTS.name, 1, revealed, lambda e: tag in e.event_id)
    assert touch.kind == "webinar_attended" and touch.person.job_title == "Директор по персоналу"
    assert touch.content.title == "HR-система для производственных компаний"
