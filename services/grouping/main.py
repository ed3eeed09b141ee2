"""Composition root of the grouping worker: faust app, topics, tables and agents.

    python -m services.grouping          (or: faust -A services.grouping.main worker --without-web)

Agents only move data: decode with shared.codec, read the key's state, call the domain
reducer, send what it returns, keep the new state. A message they cannot use goes to the
grouping dead-letter topic with the reason; nothing is dropped silently.

Every stage takes its input in batches (`take_events`): a batch's outputs are sent with a
stamp (services/grouping/stages.py), one producer batch per partition, and acknowledged by
Kafka, then its states, kept decoded in a StateCache, are written to their tables (so to the
changelogs) once, and only then are its offsets acked; the next batch is processed while a
batch waits for its acknowledgements (shared.streaming.InOrderBatches).

Stages and keys (every table is keyed like the topic its agent reads, so two workers split
the partitions and reach the same result as one; no stage has fewer partitions than the rest):

    bg.person-events.v1 --route--> grouping-persons (anon:/user: id -> table `identities`,
                                                     person        -> table `people`)
    grouping-persons <---> grouping-names (name block, table `directory`: company names)
    grouping-persons ----> grouping-accounts (account id, table `accounts`) --> bg.opportunity.v1
    bg.correction.v1 --corrections--> grouping-accounts (the account of the corrected opportunity)
    grouping-names, bg.correction.v1 --> grouping-accounts (merges of accounts, domain/merge.py)

Corrections people make are routed (domain/corrections.py) to the account stage that owns
their opportunity, which applies them in its own order with the touches; what grouping cannot
apply goes to bg.correction.dlq.v1 with the reason.

A corporate person's touch crosses route, persons and accounts: the account stage needs its
own key, the person stage needs the person's (the input is keyed by cookie or raw email), and
route is where the input is read: it keeps the input partitions' watermarks (`watermarks`),
which `_tick` sends as ClockTick messages to every partition of the persons topic. The persons
and accounts stages forward them in band, each to every partition of the next topic, once the
minimum over the previous stage's partitions advances (`stage_marks`, clock.py): the accounts
stage's ticks on bg.opportunity.v1 are scoring's clock (docs/time.md).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import faust
import orjson
from faust.types import TP, EventT, StreamT, TableT, TopicT

from services.grouping import clock
from services.grouping.config import GroupingConfig, load
from services.grouping.domain import corrections, directory, identity, merge, opportunities, people
from services.grouping.domain.messages import (
    CorrectionRefused,
    Outbound,
    Refused,
    account_inputs,
    names_inputs,
    persons_inputs,
)
from services.grouping.name_directory import NameDirectory
from services.grouping.stages import KeyedStage, stamp_headers
from shared import topics
from shared.codec import DecodeError, encode, person_log
from shared.codec import corrections as correction_codec
from shared.schemas.opportunity import ClockTick
from shared.streaming import DeadLetterSink, InOrderBatches, Outbox, make_app, raw_topic
from shared.table_store import state_cache_entries, table_options

SERVICE = "grouping"
log = logging.getLogger("services.grouping")

# A batch ends at this many events, or when no new event came for BATCH_WITHIN seconds. Its
# states are written once, and its offsets acked only after that; a bigger batch writes less
# often but holds more unacked input through a rebalance.
BATCH_SIZE = 500
BATCH_WITHIN = 0.05


def _no_identifier(raw: bytes) -> bool:
    """True when the payload is a person event whose person carries no identifier at all."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    person = data.get("person") if isinstance(data, dict) else None
    return isinstance(person, dict) and not any(person.get(k) for k in ("email", "anonymous_id", "user_id"))


def _failover_options() -> dict[str, float]:
    """BG_GROUPING_SESSION_TIMEOUT (seconds): how soon a crashed worker's partitions move.

    make_app gives every worker 15 s; the broker accepts down to group.min.session.timeout.ms (6 s).
    """
    timeout = os.environ.get("BG_GROUPING_SESSION_TIMEOUT")
    if not timeout:
        return {}
    seconds = float(timeout)
    return {"broker_session_timeout": seconds, "broker_heartbeat_interval": min(3.0, seconds / 4)}


def _clock_options() -> tuple[float, timedelta, timedelta]:
    """BG_CLOCK_TICK_SECONDS (default 5): how often ticks are sent; BG_CLOCK_IDLE_SECONDS
    (default 30): how long a live input partition is quiet, with nothing left to read, before
    its watermark follows the wall clock; BG_CLOCK_HISTORY_IDLE_SECONDS (default 300): the same
    for a partition reading history (its latest event time more than an hour old), so that a
    paused backfill keeps its clock (docs/time.md)."""
    return (float(os.environ.get("BG_CLOCK_TICK_SECONDS", "5")),
            timedelta(seconds=float(os.environ.get("BG_CLOCK_IDLE_SECONDS", "30"))),
            timedelta(seconds=float(os.environ.get("BG_CLOCK_HISTORY_IDLE_SECONDS", "300"))))


class Grouping:
    """The worker's wiring; one instance per process, built at import for faust's CLI."""

    def __init__(self, config: GroupingConfig) -> None:
        self.config = config
        self.app = make_app(SERVICE, **_failover_options())
        namespace = os.environ.get("BG_TOPIC_NAMESPACE", "")

        def internal(name: str) -> TopicT:
            return self.app.topic(f"{namespace}bg-{SERVICE}-{name}", key_type=bytes, value_type=bytes,
                                  key_serializer="raw", value_serializer="raw", internal=True)

        def table(name: str) -> TableT:
            # bytes types make faust use the raw codec; a `schema=` argument would be
            # overridden with json serializers, and the changelog would not decode on recovery.
            return self.app.Table(name, key_type=bytes, value_type=bytes, options=table_options())

        persons = internal("persons")
        self.topics: dict[str, TopicT] = {
            "persons": persons,
            "identity": persons,
            "people": persons,
            "names": internal("names"),
            "accounts": internal("accounts"),
            "opportunities": raw_topic(self.app, topics.OPPORTUNITY_EVENTS),
        }
        self.person_events = raw_topic(self.app, topics.PERSON_EVENTS)
        self.corrections = raw_topic(self.app, topics.CORRECTIONS)
        self.directory = table("directory")
        self.dlq = DeadLetterSink(self.app, SERVICE, topics.GROUPING_DLQ)
        self.correction_dlq = DeadLetterSink(self.app, SERVICE, topics.CORRECTIONS_DLQ)
        # Watermarks of bg.person-events.v1's partitions, kept by route, sent as clock ticks.
        self.tick_interval, idle_after, history_idle_after = _clock_options()
        self.watermarks = clock.InputWatermarks(idle_after=idle_after, history_idle_after=history_idle_after)
        # Route reads whose outputs are not in the producer yet: a tick must not overtake them.
        self._unsent_reads: list[tuple[int, int, datetime | None]] = []
        # The watermarks the persons and accounts stages heard on their input partitions.
        self.stage_marks = {"persons": clock.StageWatermarks(), "accounts": clock.StageWatermarks()}
        # Decoded states take a few times their JSON (an account a few KB to tens of KB, a
        # profile or an identity node a few KB); a key evicted is decoded again on next use.
        # Accounts are fewer than people and larger: 2/5 of the entries.
        entries = state_cache_entries()
        self.nodes = KeyedStage(table("identities"), identity.IdentityNode, max_entries=entries)
        self.profiles = KeyedStage(table("people"), people.Profile, max_entries=entries)
        self.account_states = KeyedStage(table("accounts"), opportunities.AccountState,
                                         max_entries=max(1, entries * 2 // 5))
        self.names = NameDirectory(self.directory, max_entries=entries)

        agent = self.app.agent
        agent(self.person_events, name="route", concurrency=1)(self._route)
        agent(persons, name="persons", concurrency=1)(self._persons)
        agent(self.topics["names"], name="names", concurrency=1)(self._names)
        agent(self.topics["accounts"], name="reduce", concurrency=1)(self._reduce)
        agent(self.corrections, name="corrections", concurrency=1)(self._corrections)
        self.app.task(self._precreate)
        self.app.task(self._tick)
        self.app.on_partitions_assigned.connect(self._on_assigned)
        self.app.on_partitions_revoked.connect(self._on_revoked)

    async def _queue(self, outbox: Outbox, stage: str, event: EventT | None,
                     outputs: list[Outbound]) -> list[Awaitable]:
        """Queue `outputs` in `outbox`, stamped with their origin (stages.py; unstamped without
        an event); a refused correction goes to the corrections' dead-letter topic. Returns the
        dead letters' acknowledgements."""
        letters = []
        headers = None
        origin = f"{stage}/{event.message.partition}" if event is not None else ""
        for index, out in enumerate(outputs):
            if isinstance(out.message, CorrectionRefused):
                refusal = out.message
                letters.append(await self.correction_dlq.send(event, refusal.reason, refusal.detail,
                                                              payload=encode(refusal.correction), key=out.key))
                continue
            if event is not None:
                headers = stamp_headers(origin, event.message.offset, index)
            await outbox.add(self.topics[out.to].get_topic_name(), out.key.encode(), encode(out.message), headers,
                             out.partition)
        return letters

    async def _batches(self, stream: StreamT, stage: str, handle: Callable[[EventT], list[Outbound]],
                       keyed: tuple[KeyedStage | NameDirectory, ...] = (), dlq: DeadLetterSink | None = None,
                       sent: Callable[[], None] | None = None) -> None:
        """Run `handle` per event of each batch and send its outputs, stamped with their origin
        (stages.py), in one producer batch per partition; a failure dead-letters that event (to
        `dlq`, by default grouping's) and the stream goes on. `sent` runs once the batch's
        outputs are in the producer, ahead of anything sent later to the same partitions. The
        batch's outputs are acknowledged by Kafka before its states are written, and both
        before its offsets are released (InOrderBatches), while the next batch is processed."""
        dlq = dlq or self.dlq
        batches = InOrderBatches(f"grouping.{stage}", self.app)
        async for taken in stream.take_events(BATCH_SIZE, BATCH_WITHIN):
            events = await batches.hold(taken)  # a batch a stop interrupts is read again
            outbox = Outbox(self.app.producer._ensure_producer())
            letters = []
            for event in events:
                try:
                    letters += await self._queue(outbox, stage, event, handle(event))
                except (DecodeError, Refused) as exc:
                    letters.append(await dlq.send(event, exc.reason, exc.detail))
                except Exception as exc:
                    letters.append(await dlq.crashed(event, exc))
            acks = [*await outbox.send(), *letters]
            if sent is not None:
                sent()
            await batches.complete(events, acks, [states.snapshot() for states in keyed])

    async def _route(self, stream: StreamT) -> None:
        def handle(event: EventT) -> list[Outbound]:
            occurred_at = None
            try:
                message = person_log.decode(event.value)
                occurred_at = message.occurred_at
            except DecodeError as exc:
                if _no_identifier(event.value):
                    raise DecodeError("no_identifier", exc.detail) from None
                raise
            finally:
                # The route stage reads the input: it keeps the input's watermarks for the clock
                # ticks (a dead-lettered record was read too), once the outputs are sent.
                self._unsent_reads.append((event.message.partition, event.message.offset, occurred_at))
            return identity.route(message)

        def sent() -> None:
            # The batch's outputs are in the producer: a tick sent from now on goes behind them
            # on every persons partition (a producer keeps its order within a partition).
            now = clock.wall_clock()
            for partition, offset, occurred_at in self._unsent_reads:
                self.watermarks.read(partition, offset, occurred_at, now)
            self._unsent_reads.clear()

        await self._batches(stream, "route", handle, sent=sent)

    async def _tick(self) -> None:
        await clock.tick_forever(self.watermarks, self._caught_up, self._tick_partitions,
                                 self._send_tick, self.tick_interval)

    async def _caught_up(self, partition: int) -> bool:
        """Nothing left to read on this input partition: processed up to its high-water mark."""
        tp = TP(self.person_events.get_topic_name(), partition)
        try:
            highwater = self.app.consumer.highwater(tp)
            position = self.watermarks.next_offset(partition)
            if position is None:  # nothing processed since the assignment
                position = await self.app.consumer.position(tp)
        except Exception:  # not (or no longer) assigned, no fetch yet: not known to be caught up
            return False
        return highwater is not None and position is not None and position >= highwater

    async def _partitions_of(self, topic: TopicT) -> list[int]:
        producer = self.app.producer._ensure_producer()
        return sorted(await producer.partitions_for(topic.get_topic_name()))

    async def _tick_partitions(self) -> tuple[int, list[int]]:
        """(how many partitions grouping's input has, the persons topic's partitions)."""
        return len(await self._partitions_of(self.person_events)), await self._partitions_of(self.topics["persons"])

    async def _send_tick(self, partition: int, tick: ClockTick) -> None:
        # Through the same aiokafka producer as route's outputs, so it goes behind those already
        # in it (faust's topic.send may hold a record back until the current event is acked).
        outbox = Outbox(self.app.producer._ensure_producer())
        await outbox.add(self.topics["persons"].get_topic_name(), tick.key().encode(), encode(tick),
                         partition=partition)
        await asyncio.gather(*await outbox.send())

    async def _forwarding(self, stage: str, to: str) -> Callable[[EventT, ClockTick], list[Outbound]]:
        """How `stage` forwards the ticks it reads: to every partition of the topic `to`, with
        how many input partitions `stage` has (clock.StageWatermarks, clock.forward)."""
        own = len(await self._partitions_of(self.topics[stage]))
        outputs = await self._partitions_of(self.topics[to])
        marks = self.stage_marks[stage]

        def on_tick(event: EventT, tick: ClockTick) -> list[Outbound]:
            partition = event.message.partition
            mark = marks.observe(partition, tick)
            return [] if mark is None else clock.forward(stage, partition, mark, own, tick.wall, outputs, to)

        return on_tick

    async def _persons(self, stream: StreamT) -> None:
        limits, rules = self.config.identity, self.config.people
        on_tick = await self._forwarding("persons", "accounts")

        def handle(event: EventT) -> list[Outbound]:
            message = persons_inputs.decode(event.value)
            if isinstance(message, ClockTick):
                return on_tick(event, message)
            if event.key.startswith((b"anon:", b"user:")):
                return self.nodes.apply(event, lambda node, key: identity.step(node, key, message, limits))
            return self.profiles.apply(event, lambda profile, key: people.step(profile, key, message, rules))

        await self._batches(stream, "persons", handle, (self.nodes, self.profiles))

    async def _names(self, stream: StreamT) -> None:
        names = self.config.people.accounts.names

        def handle(event: EventT) -> list[Outbound]:
            # Lookups and registrations give the same answers when read again from the same
            # directory (answers are sticky): no stamp check needed. The directory's changes
            # are written after the batch's outputs are acknowledged, as every stage's states:
            # a registration written first and read again after a crash took over its names
            # already and emitted no merge (issue 19).
            message = names_inputs.decode(event.value)
            if isinstance(message, directory.NameLookup):
                updates, outputs = directory.lookup(self.names.matchable(message.name), message, names)
            else:  # a name account the registration takes over is merged into the domain's (issue 15)
                updates, outputs = directory.register(self.names.registrable(message.name), message, names)
            for name, entry in updates.items():
                self.names.put(name, entry, event)
            return outputs

        await self._batches(stream, "names", handle, (self.names,))

    async def _reduce(self, stream: StreamT) -> None:
        rules = self.config.opportunities
        on_tick = await self._forwarding("accounts", "opportunities")

        def handle(event: EventT) -> list[Outbound]:
            message = account_inputs.decode(event.value)
            if isinstance(message, ClockTick):
                return on_tick(event, message)
            return self.account_states.apply(event, lambda state, key: merge.step(state, key, message, rules))

        await self._batches(stream, "accounts", handle, (self.account_states,))

    async def _corrections(self, stream: StreamT) -> None:
        solutions = self.config.opportunities.solutions

        def handle(event: EventT) -> list[Outbound]:
            return corrections.route(correction_codec.decode(event.value), solutions)

        await self._batches(stream, "corrections", handle, dlq=self.correction_dlq)

    async def _precreate(self) -> None:
        seeds = opportunities.precreate_inputs(self.config.opportunities)
        outbox = Outbox(self.app.producer._ensure_producer())
        letters = await self._queue(outbox, "precreate", None, seeds)  # unstamped: pre-creation is idempotent
        await asyncio.gather(*await outbox.send(), *letters)
        if seeds:
            log.info("pre-created opportunities requested", extra={"accounts": len(seeds)})

    def _drop_states(self) -> None:
        # A partition that moves away may come back later with a state another worker changed;
        # from now on the tables (recovered from the changelogs) are read again.
        for keyed in (self.nodes, self.profiles, self.account_states):
            keyed.drop()
        self.names.drop()

    def _input_partitions(self, tps: set, topic: TopicT | None = None) -> list[int]:
        """Partitions of `topic` (default: grouping's input) among `tps`."""
        name = (topic or self.person_events).get_topic_name()
        return [tp.partition for tp in tps if tp.topic == name]

    def _forget_stage_marks(self, tps: set) -> None:
        # Ticks before the committed offset are not read again: a partition that moves starts
        # over and hears every upstream partition within a tick interval.
        for stage, marks in self.stage_marks.items():
            marks.forget(self._input_partitions(tps, self.topics[stage]))

    async def _on_revoked(self, app: faust.App, revoked: set, **_: Any) -> None:
        self._drop_states()
        self.watermarks.revoked(self._input_partitions(revoked))
        self._forget_stage_marks(revoked)

    async def _on_assigned(self, app: faust.App, assigned: set, **_: Any) -> None:
        self._drop_states()
        self.watermarks.assigned(self._input_partitions(assigned), clock.wall_clock())
        self._forget_stage_marks(assigned)
        mine = sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned if not tp.topic.endswith("-changelog"))
        log.info("partitions assigned", extra={"partitions": mine})


config = load()
grouping = Grouping(config)
app = grouping.app
