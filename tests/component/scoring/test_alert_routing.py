"""Alerts go to the opportunity's seller team (issue 17): the dispatcher follows bg.crm-stage.v2's
TeamAssigned messages (real Kafka, real Redis) and routes each signal to the webhooks its team
has under `routing.owners`; an opportunity without a team keeps the default route. A replayed
older assignment never undoes a newer one."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from redis.asyncio import Redis

from services.scoring.alerts.team import TeamBook
from shared import topics
from shared.codec import encode, qualification_events, scoring_messages
from shared.topics import ensure_topics
from tests.support.kafka import namespace, new_namespace, produce, wait_for
from tests.support.processes import ServiceProcess
from tests.support.receiver import Receiver

pytestmark = pytest.mark.component

EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "examples"
ANNA, BORIS = "anna.ivanova@vendor.example", "boris.petrov@vendor.example"


def team_assigned(opportunity_id: str, person: str | None, hours: int):
    example = qualification_events.decode((EXAMPLES / "crm-stage.team_assigned.v2.json").read_bytes())
    return example.model_copy(update={
        "event_id": f"team:{uuid.uuid4().hex}", "opportunity_id": opportunity_id,
        "account_id": opportunity_id.split(":")[0], "person": person,
        "assigned_at": example.assigned_at + timedelta(hours=hours)})


async def test_team_book_keeps_the_latest_assignment_whatever_the_order(servers) -> None:
    redis = Redis.from_url(servers.redis_url)
    book = TeamBook(redis, f"bg:alerts:test-{uuid.uuid4().hex[:8]}:")
    opp = "romashka.ru:hr"
    try:
        assert await book.team(opp) == {}
        assert await book.apply(team_assigned(opp, BORIS, hours=2))
        assert not await book.apply(team_assigned(opp, ANNA, hours=1))  # older, read late: ignored
        assert await book.team(opp) == {"ae": BORIS}
        assert await book.apply(team_assigned(opp, None, hours=3))  # unassigned later
        assert not await book.apply(team_assigned(opp, ANNA, hours=2))  # a replay of the past
        assert await book.team(opp) == {"ae": None}
    finally:
        await redis.aclose()


async def test_an_opportunitys_alerts_go_to_its_seller_team(servers, tmp_path) -> None:
    ns = new_namespace()
    with namespace(ns):
        await ensure_topics(wait_seconds=30)
    receiver = Receiver(fail_first=0)
    base = f"http://127.0.0.1:{receiver.port}"
    config_path = tmp_path / "alerts.yaml"
    config_path.write_text(json.dumps({
        "webhooks": {"everyone": {"url": f"{base}/everyone", "format": "json"},
                     "anna": {"url": f"{base}/anna", "format": "json"},
                     "boris": {"url": f"{base}/boris", "format": "json"}},
        "routing": {"default": ["everyone"], "owners": {ANNA: ["anna"], BORIS: ["boris"]},
                    "signals": ["group_formed"]},
        "cooldown_seconds": 0, "redis_prefix": f"bg:alerts:test-{uuid.uuid4().hex[:8]}:",
        "start": "earliest",
    }))
    teamed, lone = f"team-{uuid.uuid4().hex[:6]}.ru:hr", f"lone-{uuid.uuid4().hex[:6]}.ru:hr"
    # Anna was the account executive, then Boris took over; the assignments are written before
    # the dispatcher starts, so it must read them before its first alert.
    await produce(f"{ns}{topics.QUALIFICATION.base_name}", [
        (teamed, encode(team_assigned(teamed, ANNA, hours=1))),
        (teamed, encode(team_assigned(teamed, BORIS, hours=2))),
    ])
    example = scoring_messages.decode((EXAMPLES / "signal.group_formed.v1.json").read_bytes())
    signals = [example.model_copy(update={"signal_id": f"{opp}:group_formed", "opportunity_id": opp,
                                          "account_id": opp.split(":")[0], "account_owner": None})
               for opp in (teamed, lone)]
    await produce(f"{ns}{topics.SIGNALS.base_name}", [(s.opportunity_id, encode(s)) for s in signals])
    dispatcher = ServiceProcess(f"alerts-team-{ns.rstrip('.')}", ["-m", "services.scoring.alerts"], env={
        "BG_TOPIC_NAMESPACE": ns, "BG_ALERTS_CONFIG": str(config_path),
        "REDIS_URL": servers.redis_url, "LOG_LEVEL": "info"})
    with dispatcher:
        try:
            await wait_for(lambda: len(receiver.delivered()) >= 2, timeout=60, interval=0.5)
        except AssertionError:
            raise AssertionError(f"alerts not delivered; log:\n{dispatcher.tail()}") from None
        assert sorted(receiver.delivered()) == sorted([("/boris", f"{teamed}:group_formed"),
                                                       ("/everyone", f"{lone}:group_formed")])
    receiver.server.shutdown()
