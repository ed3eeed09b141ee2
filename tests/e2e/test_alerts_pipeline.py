"""Issue 14: a buying group of a company on an internationalised domain (ласточка.рф) goes
through ingest -> grouping -> scoring -> the alert dispatcher, and its alert is delivered:
its id, which holds the domain, reaches the receiver percent-encoded in the header, and the
text names the company with a link to its page. The events are live (occurred_at = now), so
the dispatcher, started from the present, sends them."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote

import httpx
import pytest

from demo.payloads import segment_identify, segment_track
from demo.send import send_all
from demo.stories import SITE
from services.scoring.alerts import format as fmt
from shared.topics import ensure_topics
from tests.e2e.conftest import TOKEN, Pipeline
from tests.support.kafka import namespace, new_namespace
from tests.support.processes import ServiceProcess
from tests.support.receiver import Receiver

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def topic_namespace(servers) -> AsyncIterator[str]:
    """This module's own namespace: its dispatcher sees only this module's signals."""
    name = new_namespace("a")
    with namespace(name):
        await ensure_topics(wait_seconds=30)
        yield name


async def test_an_idn_companys_group_is_alerted(pipeline: Pipeline, topic_namespace: str, servers, tmp_path):
    receiver = Receiver(fail_first=0)
    config = tmp_path / "alerts.yaml"
    config.write_text(json.dumps({
        "webhooks": {"sales": {"url": f"http://127.0.0.1:{receiver.port}/sales", "format": "slack"}},
        "routing": {"default": ["sales"], "signals": ["group_forming", "group_formed"]},
        "redis_prefix": f"bg:alerts:e2e-{uuid.uuid4().hex[:8]}:", "web_base_url": "https://bg.example.com",
    }))
    dispatcher = ServiceProcess(f"e2e-alerts-{topic_namespace.rstrip('.')}", ["-m", "services.scoring.alerts"], env={
        "BG_TOPIC_NAMESPACE": topic_namespace, "BG_ALERTS_CONFIG": str(config), "REDIS_URL": servers.redis_url,
        "LOG_LEVEL": "info"})
    tag = uuid.uuid4().hex[:6]
    domain = f"ласточка{tag}.рф"
    with dispatcher:
        deadline = time.monotonic() + 60
        while "alerts start" not in dispatcher.log_path.read_text(errors="replace"):
            assert time.monotonic() < deadline and dispatcher.proc.poll() is None, dispatcher.tail()
            await asyncio.sleep(0.3)
        now = datetime.now(UTC) - timedelta(seconds=30)
        people = [("anna", "Анна Кадрова", "HR-директор"), ("igor", "Игорь Сетов", "IT-директор"),
                  ("fedor", "Фёдор Счётов", "Финансовый директор")]
        requests = []
        for i, (local, name, title) in enumerate(people):
            email = f"{local}@{domain}"
            at = now + timedelta(seconds=5 * i)
            requests += [segment_identify(f"idn{tag}-{i}-id", at, email, name, title, "ООО «Ласточка»"),
                         segment_track(f"idn{tag}-{i}-tr", at + timedelta(seconds=1), "Case Study Downloaded",
                                       user_id=email, email=email, asset_id="hr-compliance-checklist",
                                       url=f"{SITE}/solutions/hr/compliance-checklist")]
        await asyncio.to_thread(send_all, pipeline.ingest_url, requests)

        deadline = time.monotonic() + 90
        while not (calls := [c for c in receiver.calls if domain in json.loads(c.body)["text"]
                             or domain.encode("idna").decode() in json.loads(c.body)["text"]
                             or "Ласточка" in json.loads(c.body)["text"]]):
            assert time.monotonic() < deadline, f"no alert; dispatcher log:\n{dispatcher.tail()}"
            assert dispatcher.proc.poll() is None, dispatcher.tail()
            await asyncio.sleep(0.5)
        call = calls[0]
        signal_id = call.headers[fmt.SIGNAL_ID_HEADER]
        signal_id.encode("ascii")  # percent-encoded, so an HTTP header can carry it
        assert quote(domain, safe="") in signal_id or domain.encode("idna").decode() in signal_id
        text = json.loads(call.body)["text"]
        assert "Ласточка" in text and "<https://bg.example.com/web/opportunities/" in text
        assert dispatcher.proc.poll() is None
    # The projection took it too: the read API and the page show the opportunity.
    async with httpx.AsyncClient(base_url=pipeline.api_url, headers=TOKEN, timeout=10) as api:
        deadline = time.monotonic() + 60
        while (found := await api.get(f"/v1/accounts/{quote(domain, safe='')}")).status_code != 200:
            assert time.monotonic() < deadline, found.text
            await asyncio.sleep(0.5)
        [opportunity] = found.json()["opportunities"]
        opportunity_id = opportunity["opportunity_id"]
        assert opportunity_id in unquote(signal_id) and opportunity["members_count"] == 3
        page = await api.get(f"/web/opportunities/{quote(opportunity_id, safe='')}")
        assert page.status_code == 200 and "Ласточка" in page.text
    receiver.server.shutdown()
