"""Fixtures for the grouping worker run as its own process against the real Kafka."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from aiokafka import AIOKafkaConsumer

from services.grouping.config import GroupingConfig, load
from shared import topics
from shared.codec import encode, opportunity_log
from shared.schemas.opportunity import ClockTick
from shared.settings import kafka_settings
from tests.support.kafka import new_namespace, produce
from tests.support.processes import ServiceProcess

# A killed worker keeps its partitions until its session times out; keep that short here. A
# partition whose head message faust lost after an assignment is read again by the liveness
# check (shared/liveness.py) after BG_STALL_SECONDS: 60 s by default, more than the tests'
# 90 s waits leave after a rebalance (the two-worker test failed so in CI at 8ed2ee7).
WORKER_ENV = {"BG_GROUPING_SESSION_TIMEOUT": "8", "BG_STALL_SECONDS": "10"}


class Worker(ServiceProcess):
    def __init__(self, name: str) -> None:
        super().__init__(name, ["-m", "services.grouping"], env=WORKER_ENV)
        self._log_start = 0

    def start(self, timeout: float = 60.0) -> Worker:
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        super().start(timeout)
        return self

    def assigned(self) -> list[str] | None:
        """The partitions of this run's last assignment, None before the first one."""
        text = self.log_path.read_text(errors="replace")[self._log_start:]
        found = None
        for line in text.splitlines():
            if '"partitions assigned"' in line:
                found = json.loads(line)["partitions"]
        return found

    def wait_assigned(self, timeout: float = 60.0, at_least: int = 1) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}: {self.tail()}")
            parts = self.assigned()
            if parts is not None and len(parts) >= at_least:
                return parts
            time.sleep(0.2)
        raise AssertionError(f"{self.name} got no partitions in {timeout}s: {self.tail()}")


@pytest.fixture(scope="module")
def grouping_config() -> GroupingConfig:
    return load()


@pytest.fixture(scope="module")
def worker(topic_namespace: str) -> Iterator[Worker]:
    """One grouping worker in the session's topic namespace, for the story tests."""
    process = Worker("grouping").start()
    process.wait_assigned()
    yield process
    process.stop()
    assert process.proc is not None and process.proc.returncode == 0, process.tail()


@contextlib.asynccontextmanager
async def fresh_namespace() -> AsyncIterator[str]:
    """A namespace of its own (topics, consumer group, changelogs) for a test that kills workers."""
    previous = os.environ.get("BG_TOPIC_NAMESPACE", "")
    namespace = new_namespace()
    os.environ["BG_TOPIC_NAMESPACE"] = namespace
    try:
        await topics.ensure_topics(wait_seconds=30)
        yield namespace
    finally:
        os.environ["BG_TOPIC_NAMESPACE"] = previous


async def send(events) -> None:
    await produce(topics.PERSON_EVENTS.name, [(e.key(), encode(e)) for e in events])


class OutputReader:
    """Reads bg.opportunity.v1 from the beginning in the background, keeping every event."""

    def __init__(self) -> None:
        self.events: list = []
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> OutputReader:
        consumer = AIOKafkaConsumer(
            topics.OPPORTUNITY_EVENTS.name, **kafka_settings().aiokafka_kwargs(),
            group_id=f"test-{uuid.uuid4().hex}", auto_offset_reset="earliest", enable_auto_commit=False,
        )
        await consumer.start()

        async def run() -> None:
            try:
                while True:
                    batches = await consumer.getmany(timeout_ms=200)
                    for records in batches.values():
                        decoded = (opportunity_log.decode(r.value) for r in records)
                        self.events += [m for m in decoded if not isinstance(m, ClockTick)]
            finally:
                await consumer.stop()

        self._task = asyncio.create_task(run())
        return self

    async def __aexit__(self, *exc) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def wait(self, predicate, timeout: float = 60.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self.events):
            if time.monotonic() > deadline:
                why = getattr(predicate, "why", "")  # what the predicate last found wrong, if it says
                raise AssertionError(f"{what} not met within {timeout}s; {len(self.events)} events read"
                                     + (f"; {why}" if why else ""))
            await asyncio.sleep(0.1)
