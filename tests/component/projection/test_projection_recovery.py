"""Crash safety: the projection killed with SIGKILL mid-stream and restarted ends with the same
rows as a clean rebuild of the topics into an empty schema; and the migrations make exactly
the tables the code describes."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine

from services.projection import db, schema
from shared.schemas.roles import BuyingRole, Department
from shared.schemas.touch import TouchKind
from tests.component.projection.conftest import Env, end_offsets, snapshot, stored_offsets, wait_caught_up
from tests.support.processes import free_port
from tests.unit.projection.stories import Log, Person, day

pytestmark = pytest.mark.component

PEOPLE = [
    Person("hr", "Анна Смирнова", "HR-директор", Department.hr, BuyingRole.initiator),
    Person("it", "Борис Орлов", "CIO", Department.it, BuyingRole.technical_validator),
    Person("cfo", "Вера Зайцева", "CFO", Department.finance, BuyingRole.budget_holder),
    Person("ceo", "Глеб Попов", "CEO", Department.executive, BuyingRole.decision_maker),
]
KINDS = [TouchKind.page_view, TouchKind.download, TouchKind.webinar_attended, TouchKind.email_click]


def busy_log(accounts: int) -> Log:
    """Many opportunities growing their groups, scored as they go, some formed, some won."""
    log = Log(uuid.uuid4().hex[:6])
    opps = [log.opportunity(f"company{i}.ru", f"Компания {i}", solution=("hr", "wms")[i % 2], at=day(i / 10))
            for i in range(accounts)]
    for step in range(12):
        for i, opp in enumerate(opps):
            person = PEOPLE[(step + i) % (1 + i % len(PEOPLE))]
            log.touch(opp, person, KINDS[step % len(KINDS)], day(i / 10 + step, step % 5),
                      url=f"/solutions/{opp.rsplit(':', 1)[1]}/{step}")
            if step % 3 == 2:
                log.score(opp, float(10 * step + i % 7), "ABC"[i % 3], day(i / 10 + step, 6))
            if step == 6 and i % 4 == 3:
                log.signal(opp, "group_formed", day(i / 10 + step, 7), 70.0, "A")
            if step == 10 and i % 8 == 7:
                log.signal(opp, "stalled", day(i / 10 + step, 8), 40.0, "B")
    for opp in opps[::5]:
        log.stage(opp, "won", "won", day(30), amount=100_000.0)
    log.change_role(opps[3], PEOPLE[0], BuyingRole.decision_maker, day(20))
    return log


async def _wait_for_progress(env: Env, engine: AsyncEngine, share: float, total: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done = sum((await stored_offsets(engine, env.consumer)).values())
        except Exception:  # the service may still be creating the schema
            done = 0
        if done >= share * total:
            return done
        await asyncio.sleep(0.02)
    raise AssertionError(f"the projection did not reach {share:.0%} of {total} messages in {timeout}s")


async def test_killed_mid_stream_then_restarted_equals_a_clean_rebuild(env: Env, engine: AsyncEngine):
    log = busy_log(accounts=80)
    port = free_port()
    # Small batches: many transactions, so that the kill lands between or inside one of them.
    live = env.service(f"projection-{env.namespace.rstrip('.')}", port, PROJECTION_BATCH_MAX_RECORDS="20")
    live.start()
    try:
        total = await env.produce(log)
        # A producer retrying a whole batch: the first 300 messages again.
        repeated = Log(log.token)
        repeated.messages = log.messages[:300]
        total += await env.produce(repeated)
        done_at_kill = await _wait_for_progress(env, engine, 0.3, total)
        live.kill()
        assert done_at_kill < total, "the projection finished before it could be killed mid-stream"
        live.start()
        await wait_caught_up(env, engine, live, timeout=120)
    finally:
        live.stop()
    # The qualification rules' moves are on bg.crm-stage.v2 too: the rebuild replays them.
    total = sum((await end_offsets(env)).values())

    rebuilt_schema = f"{env.schema}_rebuilt"
    result = env.command("rebuild", schema_name=rebuilt_schema)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"rebuilt schema '{rebuilt_schema}' from {total} messages (0 not applicable)" in result.stdout
    try:
        live_rows = await snapshot(engine, env.schema, skip_columns=("change_seq",))
        rebuilt_rows = await snapshot(engine, rebuilt_schema, skip_columns=("change_seq",))
        assert {t: len(r) for t, r in live_rows.items()} == {t: len(r) for t, r in rebuilt_rows.items()}
        assert live_rows == rebuilt_rows
        assert len(live_rows["opportunities"]) == 80
        assert len(live_rows["touches"]) == 80 * 12
        assert sum(o["outcome"] == "won" for o in live_rows["opportunities"]) == 16
        ends = await end_offsets(env)
        assert {(r["topic"], r["partition"]): r["next_offset"] for r in live_rows["consumer_offsets"]} == ends
    finally:
        await db.drop(engine, rebuilt_schema)


async def test_rebuild_refuses_a_schema_that_holds_rows(env: Env, engine: AsyncEngine):
    # A row of its own, so that the schema holds one whatever ran before (tests run in random
    # order), taken out again so that the other tests' comparisons never see it.
    held = f"held-{uuid.uuid4().hex[:6]}.ru"
    await db.migrate(engine, env.schema)  # a no-op when the projection ran in this schema already
    async with engine.begin() as conn:
        await conn.execute(schema.accounts.insert().values(account_id=held))
    try:
        result = env.command("rebuild", "--no-progress")
        assert result.returncode == 2 and "is not empty" in result.stderr
    finally:
        async with engine.begin() as conn:
            await conn.execute(schema.accounts.delete().where(schema.accounts.c.account_id == held))


async def test_migrations_create_exactly_the_described_tables(env: Env, engine: AsyncEngine):
    fresh = f"{env.schema}_migrated"
    migrated = db.create_engine(env.database_url, fresh, pool_size=1)
    try:
        await db.migrate(migrated, fresh)
        async with migrated.connect() as conn:
            diff = await conn.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), schema.metadata))
        assert [d for d in diff if not (d[0] == "remove_table" and d[1].name == "alembic_version")] == []
        await db.migrate(migrated, fresh)  # a second run is a no-op
    finally:
        await db.drop(migrated, fresh)
        await migrated.dispose()
