"""Crashes and a shared consumer group, through real Kafka: downstream keeps exactly what it
kept from the uninterrupted run of the same log in its own namespace (the `replayed` fixture)."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from services.scoring.config import load_config
from services.scoring.processor import Processor
from shared import topics
from shared.codec import scoring_messages
from shared.schemas.opportunity import ClockTick
from shared.settings import kafka_settings
from tests.component.scoring.conftest import (
    WALL,
    WALL_MS,
    Replayed,
    create_namespace,
    decoded,
    partition_of,
    topic_in,
)
from tests.support.kafka import collect, new_namespace, produce, wait_for
from tests.support.processes import ServiceProcess
from tests.unit.scoring.stories import positions

pytestmark = pytest.mark.component

# faust reads these from the environment. A worker killed with SIGKILL stays in its consumer
# group until its session times out, and a restarted one waits for that (60 s by default).
QUICK_GROUP = {"BROKER_SESSION_TIMEOUT": "6", "BROKER_HEARTBEAT_INTERVAL": "1"}
CRASHING_WORKER = "tests.component.scoring.crashing_worker"


def kept(signals: list[bytes], scores: list[bytes]) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """What downstream keeps: each signal id once, each opportunity's score of the highest
    (version, as_of). Every copy of one signal id, or of one (version, as_of), must be the same bytes."""
    by_id: dict[str, bytes] = {}
    for raw, signal_ in zip(signals, decoded(signals), strict=True):
        assert by_id.setdefault(signal_.signal_id, raw) == raw, f"two versions of {signal_.signal_id}"
    seen: dict[tuple, bytes] = {}
    latest: dict[str, tuple] = {}
    for raw, score in zip(scores, decoded(scores), strict=True):
        order = (score.version, score.as_of)
        key = (score.opportunity_id, *order)
        assert seen.setdefault(key, raw) == raw, f"two versions of {key}"
        if score.opportunity_id not in latest or order > latest[score.opportunity_id][0]:
            latest[score.opportunity_id] = (order, raw)
    return by_id, {key: raw for key, (_, raw) in latest.items()}


async def collect_until_kept(name: str, expected: tuple[dict, dict]) -> tuple[dict, dict]:
    """Read the namespace's outputs until they hold every expected signal id and score version."""
    signal_ids, scores = expected
    orders = {key: (m.version, m.as_of) for key, m in ((k, scoring_messages.decode(raw)) for k, raw in scores.items())}

    def complete_scores(raw: list[bytes]) -> bool:
        latest: dict[str, tuple] = {}
        for score in decoded(raw):
            latest[score.opportunity_id] = max(latest.get(score.opportunity_id, (0, score.as_of)),
                                               (score.version, score.as_of))
        return all(key in latest and latest[key] >= order for key, order in orders.items())

    signals = await collect(topic_in(name, topics.SIGNALS), timeout=60, settle=2,
                            until=lambda raw: {s.signal_id for s in decoded(raw)} >= set(signal_ids))
    score_log = await collect(topic_in(name, topics.SCORES), until=complete_scores, timeout=30, settle=1)
    return kept(signals, score_log)


def baseline(replayed: Replayed) -> tuple[dict, dict]:
    run = replayed.runs[0]
    return kept(run.signals, run.scores)


def crash_points(replayed: Replayed) -> tuple[str, str, int]:
    """A signal an opportunity's own event emits, one a tick fires on another opportunity (its
    timer, due when the tick moves the partition's clock), and a log position between them."""
    processor = Processor(load_config(), {})
    emitted = [(n, event, processor.process(partition, event, WALL))
               for n, (partition, _, event) in enumerate(positions(replayed.events, partition_of))]
    own = next((n, o.signal_id) for n, event, outputs in emitted for o in outputs
               if o.type == "signal" and o.signal == "group_formed" and o.opportunity_id == event.opportunity_id)
    fired = next(o.signal_id for n, event, outputs in emitted if isinstance(event, ClockTick)
                 for o in outputs if o.type == "signal")
    return own[1], fired, own[0] + 1


async def wait_crashed(worker: ServiceProcess, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while worker.proc.poll() is None:
        assert time.monotonic() < deadline, f"{worker.name} did not crash; log:\n{worker.tail()}"
        await asyncio.sleep(0.2)
    assert worker.proc.returncode == -signal.SIGKILL, f"{worker.name} exited otherwise; log:\n{worker.tail()}"


async def test_a_worker_killed_mid_stream_and_restarted_gives_what_an_uninterrupted_run_gave(
        replayed: Replayed, tmp_path) -> None:
    name = new_namespace()
    await create_namespace(name)
    source = topic_in(name, topics.OPPORTUNITY_EVENTS)
    own, fired, split = crash_points(replayed)
    worker = ServiceProcess(f"scoring-crash-{name.rstrip('.')}", ["-m", CRASHING_WORKER], env={
        "BG_TOPIC_NAMESPACE": name, "BG_STATE_DIR": str(tmp_path / "state"), "LOG_LEVEL": "warn",
        "BG_TEST_CRASH_AT": f"{own},{fired}", "BG_TEST_CRASH_MARKS": str(tmp_path / "crashed"),
        # Nothing is committed before a crash: each restart gets every message again.
        "BROKER_COMMIT_INTERVAL": "60", **QUICK_GROUP})
    try:
        worker.start()
        await produce(source, replayed.log[:split], WALL_MS)
        await wait_crashed(worker)  # while sending the batch of the event that formed a group
        worker.start()
        # The restarted worker processes that batch again from the states before it.
        await collect(topic_in(name, topics.SIGNALS), until=lambda raw: own in {s.signal_id for s in decoded(raw)},
                      timeout=60)
        worker.kill()  # mid-stream, from outside: the log so far is in the changelog, not committed
        worker.start()
        await produce(source, replayed.log[split:], WALL_MS)
        await wait_crashed(worker)  # before sending what a tick fired on another opportunity
        worker.start()
        assert await collect_until_kept(name, baseline(replayed)) == baseline(replayed)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nworker log:\n{worker.tail()}") from None
    finally:
        worker.stop()


async def input_partitions_by_member(group: str, topic: str) -> list[set[int]] | None:
    """Each member's partitions of `topic`; None while the group is not stable (a rebalance)."""
    admin = AIOKafkaAdminClient(**kafka_settings().aiokafka_kwargs())
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    _, _, state, _, _, members, *_ = response.groups[0]
    if state != "Stable":
        return None
    split = []
    for *_, assignment in members:
        decoded_assignment = ConsumerProtocolMemberAssignment.decode(assignment)
        split.append({p for t, partitions in decoded_assignment.assignment if t == topic for p in partitions})
    return split


async def test_two_workers_in_one_group_split_the_partitions_and_give_what_one_gave(
        replayed: Replayed, tmp_path) -> None:
    name = new_namespace()
    await create_namespace(name)
    source = topic_in(name, topics.OPPORTUNITY_EVENTS)
    workers = [ServiceProcess(f"scoring-pair{n}-{name.rstrip('.')}", ["-m", "services.scoring"], env={
        "BG_TOPIC_NAMESPACE": name, "BG_STATE_DIR": str(tmp_path / f"state{n}"), "LOG_LEVEL": "warn",
        **QUICK_GROUP}) for n in (1, 2)]
    every_partition = set(range(kafka_settings().topic_partitions))

    async def split_between_two() -> bool:
        split = await input_partitions_by_member(f"{name}bg-scoring", source)
        return split is not None and len(split) == 2 and all(split) and split[0] | split[1] == every_partition

    try:
        for worker in workers:
            worker.start()
        await wait_for(split_between_two, timeout=45, interval=0.5)
        await produce(source, replayed.log, WALL_MS)
        assert await collect_until_kept(name, baseline(replayed)) == baseline(replayed)
        # Both still share the partitions (a rebalance in between may have moved some: the
        # result must not depend on it).
        await wait_for(split_between_two, timeout=30, interval=0.5)
    except AssertionError as exc:
        logs = "\n".join(f"{w.name}:\n{w.tail()}" for w in workers)
        raise AssertionError(f"{exc}\nworker logs:\n{logs}") from None
    finally:
        for worker in workers:
            worker.stop()
