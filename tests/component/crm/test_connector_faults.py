"""The connector's loops against the loopback Bitrix24 and the real Redis, with a read API
stand-in: what it does when a record cannot be used, the CRM is down, a deal should wait for
its group, or a task's bookkeeping was lost in a crash."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from services.crm.adapters.bitrix24 import Bitrix24
from services.crm.domain.inbound import load_stage_map
from services.crm.loopback import Bucket, CrmLoopback, create_app
from services.crm.settings import Bitrix24Settings, ConnectorSettings
from services.crm.state import State
from services.crm.sync import RETRYABLE, Connector
from services.importers.loopback import Served
from shared.codec import dead_letters
from shared.privacy.settings import vault_in
from shared.schemas.scoring import Signal
from shared.settings import RedisSettings

pytestmark = pytest.mark.component
T = datetime(2026, 10, 20, 9, 0, tzinfo=UTC)


class Producer:
    """Kafka's producer as the connector uses it (send_and_wait), keeping what was sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    async def send_and_wait(self, topic: str, key: bytes, value: bytes) -> None:
        self.sent.append((topic, value))

    def letters(self) -> list[Any]:
        return [dead_letters.decode(v) for t, v in self.sent if t.endswith("bg.crm.dlq.v1")]


class ReadApi:
    """The read API's change feed and opportunities, as a list the test edits."""

    def __init__(self) -> None:
        self.opportunities: dict[str, dict[str, Any]] = {}
        self.feed: list[str] = []
        self.reported: list[tuple[str, dict]] = []

    def add(self, opp: str, formed: bool = True) -> None:
        self.opportunities[opp] = {
            "opportunity_id": opp, "account_id": opp.split(":")[0], "account_name": opp, "solution": "hr",
            "score": 50.0, "tier": "B", "formed_at": T.isoformat() if formed else None, "missing_roles": [],
            "members": [{"person_id": f"a@{opp.split(':')[0]}", "email": f"a@{opp.split(':')[0]}", "name": "Анна",
                         "job_title": "HR", "department": "hr", "role": "initiator"}]}
        self.feed.append(opp)

    async def changes(self, cursor: int, limit: int = 100) -> dict[str, Any]:
        items = [{**self.opportunities[o], "change_seq": i + 1} for i, o in enumerate(self.feed) if i + 1 > cursor]
        return {"items": items[:limit], "next_cursor": items[:limit][-1]["change_seq"] if items else cursor,
                "has_more": len(items) > limit}

    async def opportunity(self, opp: str) -> dict[str, Any] | None:
        return self.opportunities.get(opp)

    async def report_stage(self, opp: str, body: dict) -> dict:
        self.reported.append((opp, body))
        return {"result": "applied"}


@pytest.fixture
async def rig(servers):
    state = CrmLoopback(hang_seconds=1.0)
    state.b24_bucket = Bucket(size=1000, per_second=1000.0)
    redis = RedisSettings().client()
    with Served(create_app(state)) as url:
        client = Bitrix24(Bitrix24Settings(webhook_url=SecretStr(f"{url}/rest/1/{state.b24_code}/"),
                                           bucket_size=1000, requests_per_second=1000.0),
                          attempts=2, retry_base_seconds=0.01, timeout=2.0)
        api, producer = ReadApi(), Producer()

        def make(**settings: Any) -> Connector:
            return Connector(client, api, State(redis, f"f{uuid.uuid4().hex[:6]}.", "bitrix24"), producer,
                             ConnectorSettings(**settings), load_stage_map("bitrix24"), vault_in(redis))
        yield state, api, producer, make
        await client.close()
    await redis.aclose()


async def test_a_deal_deleted_in_the_crm_is_dead_lettered_and_the_feed_goes_on(rig) -> None:
    state, api, producer, make = rig
    connector = make()
    api.add("berezka.ru:hr")
    await connector.follow_feed()
    [deal_id] = state.deals
    del state.deals[deal_id]  # a salesperson deleted it
    api.opportunities["berezka.ru:hr"]["score"] = 60.0
    api.feed.append("berezka.ru:hr")
    api.add("topol.ru:hr")
    assert await connector.follow_feed() == 1  # topol's deal; berezka's refused
    assert [d["UF_CRM_BG_OPPORTUNITY"] for d in state.deals.values()] == ["topol.ru:hr"]
    [letter] = producer.letters()
    assert letter.reason == "crm_refused" and letter.key == "berezka.ru:hr" and "Not found" in letter.detail
    assert await connector.state.cursor() == 3


async def test_a_crm_outage_leaves_the_cursor_and_the_next_pass_writes(rig) -> None:
    state, api, producer, make = rig
    connector = make()
    api.add("berezka.ru:hr")
    state.fail["crm.deal.list"] = ["500", "500"]
    with pytest.raises(RETRYABLE):
        await connector.follow_feed()
    assert await connector.state.cursor() == 0 and not state.deals
    assert await connector.follow_feed() == 1 and len(state.deals) == 1


async def test_with_formed_a_deal_waits_for_the_group(rig) -> None:
    state, api, producer, make = rig
    connector = make(create_deals_from="formed")
    api.add("berezka.ru:hr", formed=False)
    assert await connector.follow_feed() == 0 and not state.deals
    api.opportunities["berezka.ru:hr"]["formed_at"] = T.isoformat()
    api.feed.append("berezka.ru:hr")
    assert await connector.follow_feed() == 1 and len(state.deals) == 1


def signal(opp: str, kind: str, backfill: bool = False) -> Signal:
    return Signal(signal_id=f"{opp}:{kind}", signal=kind, opportunity_id=opp, account_id=opp.split(":")[0],
                  solution="hr", occurred_at=T, score=64.0, tier="A", missing_roles=("decision_maker",),
                  backfill=backfill)


async def test_one_task_per_live_signal_even_when_its_bookkeeping_was_lost(rig) -> None:
    state, api, producer, make = rig
    connector = make()
    api.add("berezka.ru:hr")
    assert await connector.on_signal(signal("berezka.ru:hr", "group_formed", backfill=True)) is None
    assert await connector.on_signal(signal("berezka.ru:hr", "stalled")) is None
    task_id = await connector.on_signal(signal("berezka.ru:hr", "group_formed"))
    assert task_id is not None and await connector.on_signal(signal("berezka.ru:hr", "group_formed")) is None
    # A crash after the CRM made the task and before it was recorded: a fresh state finds it.
    fresh = make()  # knows neither the deal nor the task: both are found in the CRM
    assert await fresh.on_signal(signal("berezka.ru:hr", "group_formed")) == task_id
    assert len(state.tasks) == 1 and len(state.deals) == 1
    gap = await connector.on_signal(signal("berezka.ru:hr", "role_gap"))
    assert gap != task_id and len(state.tasks) == 2


async def test_an_unmapped_stage_is_dead_lettered_and_other_deals_go_on(rig) -> None:
    state, api, producer, make = rig
    connector = make()
    api.add("berezka.ru:hr")
    api.add("topol.ru:hr")
    await connector.follow_feed()
    first, second = sorted(state.deals)
    state.b24_change_deal(first, STAGE_ID="C3:UC_CUSTOM")
    state.b24_change_deal(second, STAGE_ID="WON", OPPORTUNITY="900000.00")
    assert await connector.reconcile() == 2
    assert [(o, b["stage"], b.get("amount")) for o, b in api.reported] == [("topol.ru:hr", "won", 900000.0)]
    [letter] = producer.letters()
    assert letter.reason == "unmapped_stage" and "C3:UC_CUSTOM" in letter.detail
