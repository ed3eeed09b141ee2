"""A restarted grouping worker consumes again (issue 19, item 12: consumers idle after a restart).

faust lost a partition's head message between its fetcher and its streams after some restarts;
no commit may pass it, nothing fetched it again, and the worker sat with partitions and lag
until restarted by hand. The worker here (losing_worker.py) loses each input partition's head
message after its restart; the liveness check (shared/liveness.py) must read the partition
again, so that everything written while the worker was down is processed and committed.
"""

from __future__ import annotations

import uuid

import pytest

from shared import topics
from tests.component.grouping.conftest import Worker, fresh_namespace, send
from tests.component.grouping.test_grouping_faults import scenario
from tests.support.kafka import drained

# A stall is noticed after this many seconds (BG_STALL_SECONDS); the waits below are generous
# bounds far under the minutes a stuck worker sat, never expected durations.
STALL_SECONDS = "10"


class LosingWorker(Worker):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.args = ["-m", "tests.component.grouping.losing_worker"]
        self.env["BG_STALL_SECONDS"] = STALL_SECONDS

    def lost(self) -> int:
        """How many head messages this worker's processes lost on purpose so far."""
        return self.log_path.read_text(errors="replace").count("losing_worker: lost")


@pytest.mark.parametrize("fault", ["kill", "term"])
async def test_a_restarted_worker_processes_what_came_while_it_was_down(fault: str) -> None:
    tag = uuid.uuid4().hex[:8]
    before, during = scenario(f"{tag}a", companies=4, people=4, touches=3), scenario(f"{tag}b", 4, 4, 3)
    async with fresh_namespace() as namespace:
        group = f"{namespace}bg-grouping"
        worker = LosingWorker(f"grouping-{namespace}restart-{fault}").start()
        try:
            worker.wait_assigned()
            await send(before)
            await drained(group, topics.PERSON_EVENTS.name, timeout=120)
            if fault == "kill":
                worker.kill()
            else:
                worker.stop()
            await send(during)
            worker.env["BG_TEST_LOSE_HEAD"] = "1"
            worker.start()
            worker.wait_assigned()
            # Everything written before and during the outage processed: the group committed the
            # input's ends, which no commit reaches past a message never processed.
            await drained(group, topics.PERSON_EVENTS.name, timeout=150)
            lost = worker.lost()
        finally:
            worker.stop()
    assert lost >= 1, "the restarted worker lost no head message: the fault was not injected"
    assert "partitions stalled" in worker.log_path.read_text(errors="replace")
