"""Live time through real Kafka (issue 11): grouping and scoring as processes on an otherwise
idle system. Three people of a new company touch HR pages now; the group forms at once, and
with role_gap_after and stall_after set to seconds, role_gap and stalled arrive within a
minute of their due time although nothing else happens: grouping's clock ticks move time.
Then the opportunity log, ticks included, is copied into a fresh namespace and read by a
fresh scoring worker: the same signals, byte for byte.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from shared import topics
from shared.codec import scoring_messages
from shared.settings import kafka_settings
from tests.component.scoring.conftest import create_namespace, topic_in
from tests.support.kafka import collect, copy_log, new_namespace, produce
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.component

EXAMPLE = Path(__file__).resolve().parents[3] / "shared" / "examples" / "person-events.touch.v1.json"
ROLE_GAP_AFTER = timedelta(seconds=8)
STALL_AFTER = timedelta(seconds=20)
CLOCK = {"BG_CLOCK_TICK_SECONDS": "1", "BG_CLOCK_IDLE_SECONDS": "2"}


def touch(domain: str, person: str, title: str, at: datetime) -> tuple[str, bytes]:
    event = json.loads(EXAMPLE.read_text())
    event.update(event_id=f"live-{uuid.uuid4().hex}", occurred_at=at.isoformat(), original_occurred_at=None,
                 time_adjustments=[])
    event["person"].update(email=f"{person}@{domain}", anonymous_id=None, job_title=title,
                           company=f"ООО «{domain}»")
    return event["person"]["email"], json.dumps(event).encode()


async def test_timers_fire_on_an_idle_system_within_a_minute_and_a_replay_gives_the_same_signals(
        servers, tmp_path) -> None:
    name = new_namespace()
    replay_name = new_namespace()
    for ns in (name, replay_name):
        await create_namespace(ns)
    config = tmp_path / "scoring.yaml"
    config.write_text(f"timers:\n  role_gap_after: PT{ROLE_GAP_AFTER.seconds}S\n"
                      f"  stall_after: PT{STALL_AFTER.seconds}S\n  rescore_every: PT5S\n  rescore_for: PT30S\n")
    scoring_env = {"BG_SCORING_CONFIG": str(config), "LOG_LEVEL": "warn"}
    grouping = ServiceProcess(f"grouping-live-{name.rstrip('.')}", ["-m", "services.grouping"], env={
        "BG_TOPIC_NAMESPACE": name, "BG_STATE_DIR": str(tmp_path / "grouping"), **CLOCK})
    scoring = ServiceProcess(f"scoring-live-{name.rstrip('.')}", ["-m", "services.scoring"], env={
        "BG_TOPIC_NAMESPACE": name, "BG_STATE_DIR": str(tmp_path / "scoring"), **scoring_env})
    fresh = ServiceProcess(f"scoring-replay-{replay_name.rstrip('.')}", ["-m", "services.scoring"], env={
        "BG_TOPIC_NAMESPACE": replay_name, "BG_STATE_DIR": str(tmp_path / "replay"), **scoring_env})
    domain = f"live-{uuid.uuid4().hex[:6]}.ru"
    try:
        grouping.start()
        scoring.start()
        now = datetime.now(UTC)
        # HR, IT and finance, no decision maker: the default profile requires one (role_gap).
        people = [touch(domain, "hr", "HR-директор", now), touch(domain, "it", "ИТ-директор", now),
                  touch(domain, "cfo", "Финансовый директор", now + timedelta(seconds=1))]
        await produce(topic_in(name, topics.PERSON_EVENTS), people)

        def kinds(raw: list[bytes]) -> set[str]:
            return {scoring_messages.decode(r).signal for r in raw}

        signals = await collect(topic_in(name, topics.SIGNALS), until=lambda raw: {"role_gap", "stalled"} <= kinds(raw),
                                timeout=150)
        decoded = [scoring_messages.decode(r) for r in signals]
        by_kind = {s.signal: s for s in decoded}
        formed = by_kind["group_formed"]
        assert formed.occurred_at == now + timedelta(seconds=1) and formed.backfill is False
        assert by_kind["role_gap"].occurred_at == formed.occurred_at + ROLE_GAP_AFTER
        assert by_kind["stalled"].occurred_at == formed.occurred_at + STALL_AFTER

        # Within a minute of due, measured on the signals' own record timestamps.
        arrival = await _record_times(topic_in(name, topics.SIGNALS))
        for kind in ("role_gap", "stalled"):
            late = arrival[by_kind[kind].signal_id] - by_kind[kind].occurred_at
            assert timedelta(0) <= late < timedelta(seconds=60), (kind, late)

        # The log, ticks included, read again by a fresh worker: the same signals. Grouping stops
        # first, so that the log no longer grows and the live worker has read all of it.
        grouping.stop()
        original = await collect(topic_in(name, topics.SIGNALS), until=lambda raw: len(raw) >= len(signals),
                                 settle=4)
        copied = await copy_log(topic_in(name, topics.OPPORTUNITY_EVENTS),
                                topic_in(replay_name, topics.OPPORTUNITY_EVENTS))
        fresh.start()
        ids = {s.signal_id for s in decoded}
        replayed = await collect(topic_in(replay_name, topics.SIGNALS), timeout=90, settle=3,
                                 until=lambda raw: len(raw) >= len(original))
        assert ids <= {scoring_messages.decode(r).signal_id for r in replayed}
        assert sorted(replayed) == sorted(original), f"{copied} records copied"
    except AssertionError as exc:
        logs = "\n".join(f"{p.name}:\n{p.tail()}" for p in (grouping, scoring, fresh))
        raise AssertionError(f"{exc}\n{logs}") from None
    finally:
        for process in (grouping, scoring, fresh):
            process.stop()


async def _record_times(topic: str) -> dict[str, datetime]:
    consumer = AIOKafkaConsumer(topic, **kafka_settings().aiokafka_kwargs(), group_id=f"t-{uuid.uuid4().hex}",
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    times: dict[str, datetime] = {}
    try:
        while batches := await consumer.getmany(timeout_ms=1500):
            for records in batches.values():
                for r in records:
                    times[scoring_messages.decode(r.value).signal_id] = datetime.fromtimestamp(r.timestamp / 1000, UTC)
    finally:
        await consumer.stop()
    return times
