"""Records -> rows and dead letters: nothing is dropped silently, every offset advances."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from services.projection.api import ApiError, stage_event
from services.projection.consumer import prepare, source_decoders
from services.projection.funnel import configured
from services.projection.models import StageRequest
from services.projection.settings import ProjectionSettings
from shared import topics
from shared.codec import encode
from tests.unit.projection.stories import Log, krasnaya_romashka

pytestmark = pytest.mark.unit


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def test_good_and_bad_records():
    log = Log("p1")
    krasnaya_romashka(log)
    events = topics.OPPORTUNITY_EVENTS.name
    produced = [(k, m) for topic, k, m in log.messages if topic == topics.OPPORTUNITY_EVENTS.base_name]
    good = [Record(events, 0, i, k.encode(), encode(m)) for i, (k, m) in enumerate(produced)]
    bad = [
        Record(events, 1, 7, b"k", b"{not json"),
        Record(events, 1, 8, b"k", b'{"type": "member_added", "version": 0}'),
        Record(events, 1, 9, b"k", None),
        Record(topics.SCORES.name, 2, 3, b"k", b'{"type": "score", "score": "NaN"}'),
    ]
    prepared = prepare([*good, *bad], source_decoders())
    assert len(prepared.items) == len(good)
    assert [(d.source_offset, d.reason) for d in prepared.dead] == [
        (7, "invalid_json"), (8, "invalid_schema"), (9, "invalid_json"), (3, "invalid_schema")]
    assert all(d.service == "projection" and d.payload is not None for d in prepared.dead)
    assert "version" in prepared.dead[1].detail
    assert prepared.offsets == {(events, 0): len(good), (events, 1): 10, (topics.SCORES.name, 2): 4}


def test_stage_event_id_is_the_same_for_a_retried_change():
    funnel = configured()
    ident = {"opportunity_id": "romashka.ru:hr", "account_id": "romashka.ru", "solution": "hr", "stage": "warm"}
    body = StageRequest(stage="Won", amount=1000.0, changed_at="2026-10-01T12:00:00+03:00")
    first = stage_event(funnel, ident, body, datetime(2030, 1, 1, tzinfo=UTC))
    retried = stage_event(funnel, ident, body, datetime(2031, 1, 1, tzinfo=UTC))
    assert first.event_id == retried.event_id and first.outcome == "won"
    assert (first.stage, first.crm_stage, first.from_stage) == ("won", "Won", "warm")
    assert first.changed_at == datetime(2026, 10, 1, 9, tzinfo=UTC)
    other = stage_event(funnel, ident, StageRequest(stage="closing", changed_at="2026-10-01T12:00:00Z"),
                        datetime(2030, 1, 1, tzinfo=UTC))
    assert other.event_id != first.event_id and other.outcome == "open" and other.crm_stage is None


def test_a_stage_change_dated_in_the_future_is_refused_naming_the_field():
    """Issue 17: changed_at 2030-01-01 was accepted and locked the opportunity (the latest wins)."""
    ident = {"opportunity_id": "romashka.ru:hr", "account_id": "romashka.ru", "solution": "hr", "stage": "warm"}
    now = datetime(2026, 11, 30, 9, tzinfo=UTC)
    with pytest.raises(ApiError) as err:
        stage_event(configured(), ident, StageRequest(stage="won", changed_at="2030-01-01T00:00:00Z"), now)
    assert err.value.status == 422 and err.value.body["errors"][0]["field"] == "body.changed_at"
    # A clock a few minutes ahead is not an error; an unknown stage or a contradicting outcome is.
    assert stage_event(configured(), ident, StageRequest(stage="won", changed_at="2026-11-30T09:04:00Z"), now)
    for body, field in ((StageRequest(stage="nonsense"), "body.stage"),
                        (StageRequest(stage="won", outcome="lost"), "body.outcome")):
        with pytest.raises(ApiError) as err:
            stage_event(configured(), ident, body, now)
        assert err.value.status == 422 and err.value.body["errors"][0]["field"] == field


def test_tokens_from_the_environment(monkeypatch):
    monkeypatch.setenv("BG_API_TOKENS", " r1, r2 ,")
    monkeypatch.setenv("BG_API_WRITE_TOKENS", "crm1")
    monkeypatch.setenv("BG_API_CORRECTION_TOKENS", '{" Мария Соколова ": "m-token"}')
    settings = ProjectionSettings()
    assert settings.read_tokens == ["r1", "r2", "crm1", "m-token"] and settings.crm_tokens == ["crm1"]
    # A correction token names its user; read and CRM tokens name nobody.
    assert settings.author_of("m-token") == "Мария Соколова" and settings.author_of("crm1") is None
    assert not settings.uses_dev_tokens()
    monkeypatch.setenv("BG_API_CORRECTION_TOKENS", '{"a": "same", "b": "same"}')
    with pytest.raises(ValueError, match="share a token"):
        ProjectionSettings()
    monkeypatch.delenv("BG_API_CORRECTION_TOKENS")
    monkeypatch.setenv("BG_ENV", "production")
    assert ProjectionSettings().correction_tokens == {}  # nobody corrects unless configured
    monkeypatch.setenv("PROJECTION_DB_SCHEMA", "Robert'); DROP")
    with pytest.raises(ValueError, match="db_schema"):
        ProjectionSettings()
