"""The alert dispatcher as a process: real Kafka (the signals scoring wrote), real Redis, and a
real HTTP receiver on 127.0.0.1 that fails its first two calls. Also: a poison record is
dead-lettered and the next one delivered, an IDN domain's alert goes out, and a first start
begins at the present and skips history."""

from __future__ import annotations

import json
import socket
import uuid
from urllib.parse import unquote

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.scoring.alerts import format as fmt
from services.scoring.alerts.config import load_alerts_config
from services.scoring.alerts.dispatcher import cooldown_level
from shared import topics
from shared.codec import dead_letters, encode, scoring_messages
from shared.settings import kafka_settings
from tests.component.scoring.conftest import Replayed, decoded, topic_in
from tests.support.kafka import collect, produce, wait_for
from tests.support.processes import ServiceProcess
from tests.support.receiver import Receiver

pytestmark = pytest.mark.component

SECRET = "test-secret"
ALL_SIGNALS = ["group_forming", "group_formed", "group_expanded", "role_gap", "priority_changed",
               "stalled", "reactivated"]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def offsets_committed_to_end(topic: str, group: str) -> bool:
    consumer = AIOKafkaConsumer(**kafka_settings().aiokafka_kwargs(), group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(kafka_settings().topic_partitions)]
        end = await consumer.end_offsets(tps)
        committed = [await consumer.committed(tp) or 0 for tp in tps]
        return committed == [end[tp] for tp in tps]
    finally:
        await consumer.stop()


async def test_each_alert_reaches_its_webhook_exactly_once_despite_failures_and_duplicates(
        replayed: Replayed, servers, tmp_path) -> None:
    run = replayed.runs[0]
    receiver = Receiver(fail_first=2)
    base = f"http://127.0.0.1:{receiver.port}"
    down = f"http://127.0.0.1:{closed_port()}/gaps"
    config_path = tmp_path / "alerts.yaml"
    config_path.write_text(json.dumps({
        "webhooks": {
            "team": {"url": f"{base}/team", "format": "json", "secret": "${ALERT_SECRET}"},
            "owner": {"url": f"{base}/owner", "format": "telegram", "chat_id": "4242", "secret": "${ALERT_SECRET}"},
            "gaps-down": {"url": down, "format": "slack",
                          "signals": ["role_gap"]},
        },
        "routing": {"default": ["team", "gaps-down"], "owners": {"anna.ivanova@vendor.example": ["owner"]},
                    "signals": ALL_SIGNALS},
        "delivery": {"attempts": 4, "backoff_initial": 0.05, "backoff_max": 0.5, "timeout": 2},
        "cooldown_seconds": 600,
        "redis_prefix": f"bg:alerts:test-{uuid.uuid4().hex[:8]}:",
        # The replayed story is all there before the dispatcher starts, and it is history.
        "start": "earliest", "include_backfill": True,
    }))
    config = load_alerts_config(config_path, environ={"ALERT_SECRET": SECRET})

    # What should arrive: per webhook, the first signal of each (opportunity, type, level); later
    # ones at the same level fall in the cooldown, tier upgrades never do. Nothing arrives at the
    # webhook that is down.
    expected, expected_dlq, first = set(), set(), set()
    for signal in decoded(run.signals):
        for name in config.route(signal):
            level = cooldown_level(signal)
            if name == "gaps-down":
                expected_dlq.add(signal.signal_id)
            elif level is None or (name, signal.opportunity_id, signal.signal, level) not in first:
                first.add((name, signal.opportunity_id, signal.signal, level))
                expected.add((f"/{name}", signal.signal_id))
    assert expected_dlq and any(path == "/owner" for path, _ in expected)

    dispatcher = ServiceProcess(f"alerts-{run.namespace.rstrip('.')}", ["-m", "services.scoring.alerts"], env={
        "BG_TOPIC_NAMESPACE": run.namespace, "BG_ALERTS_CONFIG": str(config_path),
        "REDIS_URL": servers.redis_url, "ALERT_SECRET": SECRET, "LOG_LEVEL": "warning"})
    signals_topic = topic_in(run.namespace, topics.SIGNALS)
    group = f"{run.namespace}bg-alerts"

    async def done() -> bool:
        return await offsets_committed_to_end(signals_topic, group)

    with dispatcher:
        try:
            await wait_for(done, timeout=60, interval=0.5)
        except AssertionError:
            raise AssertionError(f"dispatcher did not finish; log:\n{dispatcher.tail()}") from None

        delivered = receiver.delivered()
        assert sorted(delivered) == sorted(expected)  # each alert once: no loss, no duplicate
        failed = [(c.path, c.headers[fmt.SIGNAL_ID_HEADER]) for c in receiver.calls if c.status != 200]
        assert len(failed) == 2 and set(failed) <= set(delivered)  # retried until it got through

        for call in receiver.calls:
            timestamp = int(call.headers[fmt.TIMESTAMP_HEADER])
            assert fmt.verify(SECRET, timestamp, call.body, call.headers[fmt.SIGNATURE_HEADER])
            body = json.loads(call.body)
            if call.path == "/owner":  # Северный ветер belongs to Анна: her Telegram chat
                assert body["chat_id"] == "4242" and "Северный ветер" in body["text"]
            else:
                assert body["signal"]["signal_id"] == unquote(call.headers[fmt.SIGNAL_ID_HEADER])
                assert body["signal"]["account_owner"] is None

        letters = await collect(topic_in(run.namespace, topics.ALERTS_DLQ), decode=dead_letters.decode,
                                until=lambda k: len(k) >= len(expected_dlq), timeout=30, settle=1)
        assert {scoring_messages.decode(d.payload).signal_id for d in letters} == expected_dlq
        assert all(d.reason == "delivery_failed" and "gaps-down" in d.detail for d in letters)

        # Scoring is at-least-once: the same signals again must not alert anyone again.
        await produce(signals_topic, [(m.opportunity_id, raw) for raw, m in zip(run.signals, decoded(run.signals),
                                                                                  strict=True)])
        await wait_for(done, timeout=60, interval=0.5)
        assert sorted(receiver.delivered()) == sorted(expected)

        # The cooldown holds back a repeat of the same kind and level, never a tier upgrade:
        # C -> B, then B -> A a moment later, then group_expanded twice at tier A.
        tag = uuid.uuid4().hex[:6]
        # An opportunity of its own, so that no signal of the replayed story shares its cooldown.
        template = decoded(run.signals)[0].model_copy(update={
            "account_owner": None, "backfill": False, "opportunity_id": f"cool-{tag}.ru:hr",
            "account_id": f"cool-{tag}.ru"})
        up1, up2, again1, again2 = (template.model_copy(update={"signal_id": f"cool-{tag}-{i}", **change})
                                    for i, change in enumerate((
                                        {"signal": "priority_changed", "tier": "B", "detail": {"from": "C", "to": "B"}},
                                        {"signal": "priority_changed", "tier": "A", "detail": {"from": "B", "to": "A"}},
                                        {"signal": "group_expanded", "tier": "A"},
                                        {"signal": "group_expanded", "tier": "A"})))
        await produce(signals_topic, [(x.opportunity_id, encode(x)) for x in (up1, up2, again1, again2)])
        await wait_for(done, timeout=60, interval=0.5)
        cooled = {sid for path, sid in receiver.delivered() if path == "/team" and sid.startswith(f"cool-{tag}")}
        assert cooled == {up1.signal_id, up2.signal_id, again1.signal_id}

        # A record it cannot use, then a signal of an internationalised domain (its id cannot
        # go into a header as it is): the first is dead-lettered, the second delivered.
        idn = template.model_copy(update={
            "signal_id": "ласточка.рф:hr:group_formed:1", "signal": "group_formed", "opportunity_id": "ласточка.рф:hr",
            "account_id": "ласточка.рф", "account_name": "Ласточка", "account_owner": None})
        await produce(signals_topic, [(idn.opportunity_id, b'{"type": "signal"}'), (idn.opportunity_id, encode(idn))])
        await wait_for(lambda: ("/team", idn.signal_id) in receiver.delivered(), timeout=30)
        poisoned = await collect(topic_in(run.namespace, topics.ALERTS_DLQ), decode=dead_letters.decode,
                                 until=lambda k: any(d.reason == "invalid_schema" for d in k), timeout=30)
        assert [d.payload for d in poisoned if d.reason == "invalid_schema"] == ['{"type": "signal"}']
        call = next(c for c in receiver.calls if unquote(c.headers[fmt.SIGNAL_ID_HEADER]) == idn.signal_id)
        swallow = "%D0%BB%D0%B0%D1%81%D1%82%D0%BE%D1%87%D0%BA%D0%B0"  # ласточка, UTF-8, percent-encoded
        assert call.headers[fmt.SIGNAL_ID_HEADER] == f"{swallow}.%D1%80%D1%84:hr:group_formed:1"
        assert "Ласточка" in json.loads(call.body)["text"]
        assert dispatcher.proc.poll() is None
        # Logs name webhooks, never their URLs.
        log = dispatcher.log_path.read_text(errors="replace")
        assert "gaps-down" in log and down not in log and base not in log
    receiver.server.shutdown()


async def test_a_first_start_begins_at_the_present_and_skips_history(replayed: Replayed, servers, tmp_path) -> None:
    run = replayed.runs[1]  # its own namespace: this dispatcher's group has never committed
    receiver = Receiver(fail_first=0)
    config_path = tmp_path / "alerts.yaml"
    config_path.write_text(json.dumps({
        "webhooks": {"team": {"url": f"http://127.0.0.1:{receiver.port}/team", "format": "slack", "lang": "en"}},
        "routing": {"default": ["team"], "signals": ALL_SIGNALS},
        "cooldown_seconds": 0, "redis_prefix": f"bg:alerts:test-{uuid.uuid4().hex[:8]}:",
        "web_base_url": "https://bg.example.com",
    }))
    signals_topic = topic_in(run.namespace, topics.SIGNALS)
    dispatcher = ServiceProcess(f"alerts-start-{run.namespace.rstrip('.')}", ["-m", "services.scoring.alerts"], env={
        "BG_TOPIC_NAMESPACE": run.namespace, "BG_ALERTS_CONFIG": str(config_path),
        "REDIS_URL": servers.redis_url, "LOG_LEVEL": "info"})
    old = decoded(run.signals)
    assert old
    template = old[-1]
    live = template.model_copy(update={"signal_id": f"live-{uuid.uuid4().hex[:8]}", "backfill": False})
    history = template.model_copy(update={"signal_id": f"history-{uuid.uuid4().hex[:8]}", "backfill": True})
    with dispatcher:
        # Started: its first position is pinned at the end of every partition.
        await wait_for(lambda: "alerts start" in dispatcher.log_path.read_text(errors="replace"), timeout=60,
                       interval=0.5)
        await produce(signals_topic, [(history.opportunity_id, encode(history)), (live.opportunity_id, encode(live))])
        await wait_for(lambda: receiver.delivered(), timeout=30)

        async def done() -> bool:
            return await offsets_committed_to_end(signals_topic, f"{run.namespace}bg-alerts")

        await wait_for(done, timeout=30, interval=0.5)
        # Only the live signal: none of the topic's old signals, not the backfilled one.
        assert receiver.delivered() == [("/team", live.signal_id)]
        text = json.loads(receiver.calls[0].body)["text"]
        assert text.endswith(f"<{fmt.opportunity_link('https://bg.example.com', live.opportunity_id)}"
                             "|Open the opportunity>")
    receiver.server.shutdown()
