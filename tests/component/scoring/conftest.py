"""One replayed log of opportunity events, scored by two scoring workers in two fresh
namespaces; the tests of this folder read what they wrote to the real topics."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import pytest
from aiokafka.partitioner import DefaultPartitioner
from pydantic import Field

from services.scoring.config import load_config
from shared import topics
from shared.codec import encode, scoring_messages
from shared.schemas.opportunity import ClockTick
from shared.settings import kafka_settings
from shared.topics import ensure_topics
from tests.support.kafka import collect, namespace, new_namespace, produce
from tests.support.processes import ServiceProcess
from tests.unit.scoring.stories import (
    Story,
    argotrubosbyt,
    day,
    gazmyasneft,
    krasnaya_romashka,
    replay,
    severny_veter,
)

BAD_MESSAGE = b'{"type": "member_added", "version": 0}'
# The log's wall clock: every record is stamped as written a day after the story's end, so a
# worker and the in-process processor mark the same signals as backfill.
WALL = day(61)
WALL_MS = int(WALL.timestamp() * 1000)


def partition_of(key: str) -> int:
    """The partition Kafka's default partitioner (murmur2, as aiokafka's) gives a key."""
    partitions = list(range(kafka_settings().topic_partitions))
    return DefaultPartitioner()(key.encode(), partitions, partitions)


@dataclass
class Run:
    namespace: str
    signals: list  # raw bytes, in the order read
    scores: list
    dead_letters: list
    worker: ServiceProcess


@dataclass
class Replayed:
    story: Story
    events: list
    log: list[tuple[str, bytes]]  # what was produced: the events, with a message scoring cannot use amid them
    opportunities: dict[str, str]
    expected: list  # what the worker's processor gives in-process for the same log
    runs: list[Run]


def build_story(token: str) -> tuple[Story, dict[str, str]]:
    story = Story(token)
    opportunities = {
        "gaz": gazmyasneft(story),
        "argo": argotrubosbyt(story),
        "romashka": krasnaya_romashka(story),
        "veter": severny_veter(story, start=1),
    }
    # The log ends two months in, on every partition, so that every due timer fires: an account
    # touch, then the account stage's ticks at day 60 (its every partition's watermark), which
    # move the clock (another account's touch does not).
    count = kafka_settings().topic_partitions
    partitions = set(range(count))
    n = 0
    while partitions:
        account = f"tick{n}{token}.example"
        if (p := partition_of(account)) in partitions:
            partitions.discard(p)
            story.account_touch(account, day(60))
            story.events.append(RoutedTick(routing_key=account, stage="accounts", watermarks=dict.fromkeys(
                range(count), day(60, 1)), wall=day(60, 1), of=count))
        n += 1
    return story, opportunities


class RoutedTick(ClockTick):
    """A tick written under a key of the partition it is for (grouping names the partition)."""

    routing_key: str = Field(exclude=True)

    def key(self) -> str:
        return self.routing_key


def topic_in(name: str, topic: topics.Topic) -> str:
    return f"{name}{topic.base_name}"


async def create_namespace(name: str) -> None:
    with namespace(name):
        await ensure_topics(wait_seconds=30)


async def run_worker(name: str, log: list[tuple[str, bytes]], expected_signals: int,
                     expected_scores: int, tmp_path) -> Run:
    worker = ServiceProcess(f"scoring-{name.rstrip('.')}", ["-m", "services.scoring"], env={
        "BG_TOPIC_NAMESPACE": name, "BG_STATE_DIR": str(tmp_path / name), "LOG_LEVEL": "warn"})
    worker.start()
    await produce(topic_in(name, topics.OPPORTUNITY_EVENTS), log, WALL_MS)
    try:
        signals = await collect(topic_in(name, topics.SIGNALS), until=lambda k: len(k) >= expected_signals,
                                timeout=90, settle=2)
        scores = await collect(topic_in(name, topics.SCORES), until=lambda k: len(k) >= expected_scores,
                               timeout=30, settle=1)
        dead = await collect(topic_in(name, topics.SCORING_DLQ), until=lambda k: len(k) >= 1, timeout=30)
    except AssertionError as exc:
        worker.stop()
        raise AssertionError(f"{exc}\nworker log:\n{worker.tail()}") from None
    return Run(name, signals, scores, dead, worker)


@pytest.fixture(scope="session")
async def replayed(servers, tmp_path_factory) -> Replayed:
    token = f"-{uuid.uuid4().hex[:6]}"
    story, opportunities = build_story(token)
    events = story.in_time_order()
    expected = replay(events, load_config(), partition_of, WALL)
    # A message scoring cannot use, in the middle of the log: the events after it, of its own
    # opportunity among them, are still scored (the replay-twice test compares every signal).
    middle = len(events) // 2
    log = ([(e.key(), encode(e)) for e in events[:middle]] + [(opportunities["gaz"], BAD_MESSAGE)]
           + [(e.key(), encode(e)) for e in events[middle:]])
    n_signals = sum(o.type == "signal" for o in expected)
    n_scores = len(expected) - n_signals
    tmp = tmp_path_factory.mktemp("scoring")
    names = [new_namespace(), new_namespace()]
    # Two fresh namespaces, one worker each, the same log: the replay-twice check.
    for name in names:
        await create_namespace(name)
    runs = await asyncio.gather(*(run_worker(n, log, n_signals, n_scores, tmp) for n in names))
    yield Replayed(story, events, log, opportunities, expected, list(runs))
    for run in runs:
        run.worker.stop()


def decoded(raw: list[bytes]) -> list:
    return [scoring_messages.decode(r) for r in raw]
