"""The alert dispatcher as a process: real Kafka (the signals scoring wrote), real Redis, and a
real HTTP receiver on 127.0.0.1 that fails its first two calls."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.scoring.alerts import format as fmt
from services.scoring.alerts.config import load_alerts_config
from shared import topics
from shared.codec import dead_letters, scoring_messages
from shared.settings import kafka_settings
from tests.component.scoring.conftest import Replayed, decoded, topic_in
from tests.support.kafka import collect, produce, wait_for
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.component

SECRET = "test-secret"
ALL_SIGNALS = ["group_forming", "group_formed", "group_expanded", "role_gap", "priority_changed",
               "stalled", "reactivated"]


@dataclass(frozen=True)
class Call:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int


class Receiver:
    """A webhook receiver that answers 503 to its first `fail_first` calls, then 200."""

    def __init__(self, fail_first: int) -> None:
        self.calls: list[Call] = []
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the stdlib's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with lock:
                    status = 503 if len(receiver.calls) < fail_first else 200
                    receiver.calls.append(Call(self.path, dict(self.headers), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def delivered(self) -> list[tuple[str, str]]:
        return [(c.path, c.headers[fmt.SIGNAL_ID_HEADER]) for c in self.calls if c.status == 200]


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
    config_path = tmp_path / "alerts.yaml"
    config_path.write_text(json.dumps({
        "webhooks": {
            "team": {"url": f"{base}/team", "format": "json", "secret": "${ALERT_SECRET}"},
            "owner": {"url": f"{base}/owner", "format": "telegram", "chat_id": "4242", "secret": "${ALERT_SECRET}"},
            "gaps-down": {"url": f"http://127.0.0.1:{closed_port()}/gaps", "format": "slack",
                          "signals": ["role_gap"]},
        },
        "routing": {"default": ["team", "gaps-down"], "owners": {"anna.ivanova@vendor.example": ["owner"]},
                    "signals": ALL_SIGNALS},
        "delivery": {"attempts": 4, "backoff_initial": 0.05, "backoff_max": 0.5, "timeout": 2},
        "cooldown_seconds": 600,
        "redis_prefix": f"bg:alerts:test-{uuid.uuid4().hex[:8]}:",
    }))
    config = load_alerts_config(config_path, environ={"ALERT_SECRET": SECRET})

    # What should arrive: per webhook, the first signal of each (opportunity, type); later ones
    # of the same kind fall in the cooldown. Nothing arrives at the webhook that is down.
    expected, expected_dlq, first = set(), set(), set()
    for signal in decoded(run.signals):
        for name in config.route(signal):
            if name == "gaps-down":
                expected_dlq.add(signal.signal_id)
            elif (name, signal.opportunity_id, signal.signal) not in first:
                first.add((name, signal.opportunity_id, signal.signal))
                expected.add((f"/{name}", signal.signal_id))
    assert len(expected) < sum(len(config.route(s)) for s in decoded(run.signals)) - len(expected_dlq), \
        "the log should exercise the cooldown"
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
                assert body["signal"]["signal_id"] == call.headers[fmt.SIGNAL_ID_HEADER]
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
    receiver.server.shutdown()
