"""Grouping and scoring killed mid-stream end as a rebuild from the log (issue 11).

A module of its own, so its pipeline's log holds this market alone. Run after a test that sent
DOMAIN.md's stories (October 2026) into the same topics, this October 2025 market was history
sent to a system whose log is already past it (docs/time.md, "What is still not promised", 1),
and CI in random order once saw two groups "stalled" rebuilt and "formed" live. The likely
cause, read from the code and not reproduced (5 local runs passed): the rebuild's clock is the
minimum over the input partitions of the latest event time read (October 2026 once the stories
reached every partition), while the live grouping, killed before its last watermarks were
forwarded, forgets them (route's watermarks are in memory) and, with the idle clock held, stays
at the market's time. The other failure seen since is the xfail's reason below.
"""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import func, select

from bench.equality import differences, settled
from bench.load import canonical_market
from services.projection import db
from services.projection.schema import touches
from shared import topics
from shared.settings import DatabaseSettings
from tests.e2e.conftest import Pipeline
from tests.e2e.replay import rebuilt


@pytest.mark.xfail(strict=False, raises=AssertionError, reason=(
    "open defect (issue 19): in 1 of 3 CI runs at 8ca244a, in this module alone, one of 141 events "
    "never got its touch row within 180 s after grouping was SIGKILLed mid-stream and restarted "
    "(140 of 141): a loss or a stall the liveness check did not end; not reproduced or explained yet"))
async def test_grouping_and_scoring_killed_mid_stream_end_as_a_rebuild_from_the_log(pipeline: Pipeline,
                                                                                   topic_namespace: str):
    """Issue 11: grouping killed (SIGKILL) while it works through a market, restarted while a
    second third waits, then scoring killed the same way: the final projection equals, field by
    field, a rebuild that read the same log once without faults (fresh grouping, scoring and
    projection). bench/equality.py measures the same on a larger market, with a replay and two
    workers."""
    tag = uuid.uuid4().hex[:6]
    events = canonical_market(3, tag=tag)
    ours, their_events = f"company%{tag}.ru:%", f"load-{tag}-%"
    third = len(events) // 3
    engine = db.create_engine(DatabaseSettings().database_url, pipeline.db_schema)

    def post(chunk: list[dict]) -> None:
        r = httpx.post(f"{pipeline.ingest_url}/v1/events", json={"events": chunk},
                       headers={"X-API-Key": "dev-api-key"}, timeout=30)
        assert r.status_code == 202, r.text

    async def touched() -> int:
        async with engine.connect() as conn:
            return await conn.scalar(select(func.count(func.distinct(touches.c.touch_id)))
                                     .where(touches.c.touch_id.like(their_events)))

    async def reached(count: int) -> None:
        for _ in range(600):
            if await touched() >= count:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"{await touched()} of {count} touch rows after 60 s")

    try:
        post(events[:third])
        await reached(1)
        pipeline.services["grouping"].kill()  # while the first third is on its way
        post(events[third:2 * third])
        pipeline.services["grouping"].start(timeout=90)
        await reached(third + 1)
        pipeline.services["scoring"].kill()
        post(events[2 * third:])
        pipeline.services["scoring"].start(timeout=90)
        live = await settled(engine, len(events), quiet=3, timeout=180, opportunities=ours, event_ids=their_events)
    finally:
        await engine.dispose()
    label = f"k{tag}"
    async with rebuilt(pipeline, topic_namespace, [topics.PERSON_EVENTS], label):
        engine = db.create_engine(DatabaseSettings().database_url, f"{pipeline.db_schema}_{label}")
        try:
            again = await settled(engine, len(events), quiet=3, timeout=180, opportunities=ours,
                                  event_ids=their_events)
        finally:
            await engine.dispose()
    assert len(live) == 3 and all(r["formed_at"] and r["score"] and r["members"] for r in live.values())
    assert differences(again, live) == []
