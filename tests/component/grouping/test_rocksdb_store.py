"""Grouping with its tables in RocksDB (`BG_TABLE_STORE=rocksdb://`, shared/table_store.py),
through the real Kafka: the state is on disk, and a worker that starts on another machine (an
empty state directory) rebuilds it from the changelogs and goes on where the first one stopped.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.component.grouping.conftest import OutputReader, Worker, fresh_namespace, send
from tests.unit.grouping.harness import fold, roles_of, romashka_story


def on_rocksdb(name: str, state_dir: Path) -> Worker:
    worker = Worker(name)
    worker.env.update({"BG_TABLE_STORE": "rocksdb://", "BG_STATE_DIR": str(state_dir)})
    return worker


def touches(events, opportunity_id: str) -> int:
    view = fold(events)[0].get(opportunity_id)
    return len(view.touches) if view else 0


async def test_the_state_is_on_disk_and_a_worker_on_another_machine_goes_on_from_the_changelog(
        tmp_path: Path) -> None:
    domain = f"romashka-{uuid.uuid4().hex[:8]}.ru"
    opportunity_id = f"{domain}:hr"
    story = romashka_story(domain, domain)
    first_disk, second_disk = tmp_path / "first", tmp_path / "second"
    async with fresh_namespace() as namespace, OutputReader() as out:
        first = on_rocksdb("grouping-rocksdb-1", first_disk).start()
        first.wait_assigned()
        await send(story[:4])
        await out.wait(lambda events: touches(events, opportunity_id) == 4, what="the first four touches")
        first.stop()
        assert first.proc is not None and first.proc.returncode == 0, first.tail()
        # One RocksDB database per table and partition, under the worker's state directory.
        databases = {p.name for p in (first_disk / f"{namespace}grouping").glob("v1/tables/*.db")}
        assert {"people-0.db", "accounts-0.db"} <= databases, databases

        second = on_rocksdb("grouping-rocksdb-2", second_disk).start()
        try:
            second.wait_assigned()
            await send(story[4:])
            await out.wait(lambda events: touches(events, opportunity_id) == 7, what="all seven touches")
        finally:
            second.stop()
    views, _ = fold(out.events)
    # Sergey's second touch and the two people after him joined what the first worker had built.
    assert [o for o in views if domain in o] == [opportunity_id]  # (accounts.yaml precreates others)
    assert roles_of(views[opportunity_id]) == {
        f"elena.sokolova@{domain}": ("hr", "initiator"),
        f"s.volkov@it.{domain}": ("it", "technical_validator"),
        f"o.petrova@hr.{domain}": ("finance", "budget_holder"),
        f"i.mikhailov@{domain}": ("executive", "decision_maker"),
    }
    assert (second_disk / f"{namespace}grouping").is_dir()
