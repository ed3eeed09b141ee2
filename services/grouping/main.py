"""Composition root of the grouping worker: faust app, topics, tables and agents.

    python -m services.grouping          (or: faust -A services.grouping.main worker --without-web)

Agents only move data: decode with shared.codec, read the key's state, call the domain
reducer, send what it returns, keep the new state. A message they cannot use goes to the
grouping dead-letter topic with the reason; nothing is dropped silently.

The keyed stages take their input in batches: states stay decoded in a StateCache and are
written to their table (so to its changelog) once per batch, before the batch is acked.

Stages and keys (every table is keyed like the topic its agent reads, so two workers split
the partitions and reach the same result as one):

    bg.person-events.v1 --route--> grouping-identity  (anon:/user: id, table `identities`)
                        \\-------> grouping-people    (person, table `people`)
    grouping-people <---> grouping-names (1 partition, table `directory`: company names)
    grouping-people ----> grouping-accounts (account id, table `accounts`) --> bg.opportunity.v1
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from typing import Any, Generic, TypeVar

import faust
import orjson
from faust.types import TP, EventT, StreamT, TableT, TopicT
from pydantic import BaseModel

from services.grouping import clock
from services.grouping.config import GroupingConfig, load
from services.grouping.domain import directory, identity, opportunities, people
from services.grouping.domain.messages import (
    Outbound,
    account_inputs,
    identity_inputs,
    names_inputs,
    people_inputs,
)
from shared import topics
from shared.codec import Codec, DecodeError, encode, person_events
from shared.schemas.opportunity import ClockTick
from shared.settings import kafka_settings
from shared.streaming import DeadLetterSink, StateCache, make_app, raw_topic

SERVICE = "grouping"
log = logging.getLogger("services.grouping")
S = TypeVar("S", bound=BaseModel)
Step = Callable[[S | None, str], tuple[S, list[Outbound]]]

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

    faust waits 60 s by default; the broker accepts down to group.min.session.timeout.ms (6 s).
    """
    timeout = os.environ.get("BG_GROUPING_SESSION_TIMEOUT")
    if not timeout:
        return {}
    seconds = float(timeout)
    return {"broker_session_timeout": seconds, "broker_heartbeat_interval": min(3.0, seconds / 4)}


def _clock_options() -> tuple[float, timedelta]:
    """BG_CLOCK_TICK_SECONDS (default 5): how often ticks are sent; BG_CLOCK_IDLE_SECONDS
    (default 30): how long an input partition is quiet, with nothing left to read, before its
    watermark follows the wall clock (docs/time.md)."""
    return (float(os.environ.get("BG_CLOCK_TICK_SECONDS", "5")),
            timedelta(seconds=float(os.environ.get("BG_CLOCK_IDLE_SECONDS", "30"))))


class Grouping:
    """The worker's wiring; one instance per process, built at import for faust's CLI."""

    def __init__(self, config: GroupingConfig) -> None:
        self.config = config
        self.app = make_app(SERVICE, **_failover_options())
        namespace = os.environ.get("BG_TOPIC_NAMESPACE", "")
        partitions = kafka_settings().topic_partitions

        def internal(name: str, count: int = partitions) -> TopicT:
            return self.app.topic(f"{namespace}bg-{SERVICE}-{name}", key_type=bytes, value_type=bytes,
                                  key_serializer="raw", value_serializer="raw", internal=True, partitions=count)

        def table(name: str, count: int = partitions) -> TableT:
            # bytes types make faust use the raw codec; a `schema=` argument would be
            # overridden with json serializers, and the changelog would not decode on recovery.
            return self.app.Table(name, key_type=bytes, value_type=bytes, partitions=count)

        self.topics: dict[str, TopicT] = {
            "identity": internal("identity"),
            "people": internal("people"),
            "names": internal("names", 1),
            "accounts": internal("accounts"),
            "opportunities": raw_topic(self.app, topics.OPPORTUNITY_EVENTS),
        }
        self.person_events = raw_topic(self.app, topics.PERSON_EVENTS)
        self.identities = table("identities")
        self.people = table("people")
        self.directory = table("directory", 1)
        self.accounts = table("accounts")
        self.dlq = DeadLetterSink(self.app, SERVICE, topics.GROUPING_DLQ)
        # Decoded states take about 5x their JSON: a busy account ~250 KB, a profile ~50 KB,
        # an identity node a few KB. The bounds keep the caches within a few hundred MB; a key
        # evicted is decoded again on its next use, as it was on every message before the cache.
        self.nodes = _Keyed(self.identities, Codec(identity.IdentityNode), max_entries=50_000)
        self.profiles = _Keyed(self.people, Codec(people.Profile), max_entries=10_000)
        self.account_states = _Keyed(self.accounts, Codec(opportunities.AccountState), max_entries=2_000)
        self.entry_codec: Codec[directory.DirectoryEntry] = Codec(directory.DirectoryEntry)
        self.tick_interval, idle_after = _clock_options()
        self.watermarks = clock.InputWatermarks(idle_after=idle_after)

        agent = self.app.agent
        agent(self.person_events, name="route", concurrency=1)(self._route)
        agent(self.topics["identity"], name="stitch", concurrency=1)(self._stitch)
        agent(self.topics["people"], name="profile", concurrency=1)(self._profile)
        agent(self.topics["names"], name="names", concurrency=1)(self._names)
        agent(self.topics["accounts"], name="reduce", concurrency=1)(self._reduce)
        self.app.task(self._precreate)
        self.app.task(self._tick)
        self.app.on_partitions_assigned.connect(self._on_assigned)
        self.app.on_partitions_revoked.connect(self._on_revoked)

    async def _send(self, outputs: list[Outbound]) -> None:
        for out in outputs:
            await self.topics[out.to].send(key=out.key.encode(), value=encode(out.message))

    async def _each(self, stream: StreamT, handle: Callable[[EventT], Any]) -> None:
        """Run `handle` per event; a failure dead-letters that event and the stream goes on."""
        async for event in stream.events():
            await self._dead_letter_on_failure(event, handle)

    async def _batches(self, stream: StreamT, keyed: _Keyed, handle: Callable[[EventT], Any]) -> None:
        """Like `_each`, in batches; the batch's states reach the table before take_events acks it."""
        async for events in stream.take_events(BATCH_SIZE, BATCH_WITHIN):
            for event in events:
                await self._dead_letter_on_failure(event, handle)
            keyed.flush()

    async def _dead_letter_on_failure(self, event: EventT, handle: Callable[[EventT], Any]) -> Any:
        try:
            return await handle(event)
        except DecodeError as exc:
            await self.dlq.send(event, exc.reason, exc.detail)
        except Exception as exc:
            await self.dlq.crashed(event, exc)
        return None

    async def _route(self, stream: StreamT) -> None:
        async def handle(event: EventT) -> Any:
            try:
                message = person_events.decode(event.value)
            except DecodeError as exc:
                if _no_identifier(event.value):
                    raise DecodeError("no_identifier", exc.detail) from None
                raise
            await self._send(identity.route(message))
            return message.occurred_at

        # The route stage reads the input: it keeps the input's watermarks for the clock ticks.
        async for event in stream.events():
            occurred_at = await self._dead_letter_on_failure(event, handle)
            self.watermarks.read(event.message.partition, event.message.offset, occurred_at, clock.wall_clock())

    async def _tick(self) -> None:
        await clock.tick_forever(self.watermarks, self._caught_up, self._output_partitions,
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

    async def _output_partitions(self) -> list[int]:
        producer = self.app.producer._ensure_producer()
        return sorted(await producer.partitions_for(self.topics["opportunities"].get_topic_name()))

    async def _send_tick(self, partition: int, tick: ClockTick) -> None:
        await self.topics["opportunities"].send(key=tick.key().encode(), value=encode(tick), partition=partition)

    async def _stitch(self, stream: StreamT) -> None:
        limits = self.config.identity

        async def handle(event: EventT) -> None:
            message = identity_inputs.decode(event.value)
            outputs = self.nodes.apply(event, lambda node, key: identity.step(node, key, message, limits))
            await self._send(outputs)

        await self._batches(stream, self.nodes, handle)

    async def _profile(self, stream: StreamT) -> None:
        rules = self.config.people

        async def handle(event: EventT) -> None:
            message = people_inputs.decode(event.value)
            outputs = self.profiles.apply(event, lambda profile, key: people.step(profile, key, message, rules))
            await self._send(outputs)

        await self._batches(stream, self.profiles, handle)

    async def _names(self, stream: StreamT) -> None:
        names = self.config.people.accounts.names
        entries = _DirectoryView(self.directory, self.entry_codec)

        async def handle(event: EventT) -> None:
            message = names_inputs.decode(event.value)
            if isinstance(message, directory.NameLookup):
                updates, outputs = directory.lookup(entries, message, names)
            else:
                updates, outputs = directory.register(entries, message), []
            for name, entry in updates.items():
                self.directory[name.encode()] = encode(entry)
            await self._send(outputs)

        await self._each(stream, handle)

    async def _reduce(self, stream: StreamT) -> None:
        rules = self.config.opportunities

        async def handle(event: EventT) -> None:
            message = account_inputs.decode(event.value)
            outputs = self.account_states.apply(
                event, lambda state, key: opportunities.step(state, key, message, rules))
            await self._send(outputs)

        await self._batches(stream, self.account_states, handle)

    async def _precreate(self) -> None:
        seeds = opportunities.precreate_inputs(self.config.opportunities)
        await self._send(seeds)
        if seeds:
            log.info("pre-created opportunities requested", extra={"accounts": len(seeds)})

    def _drop_states(self) -> None:
        # A partition that moves away may come back later with a state another worker changed;
        # from now on the tables (recovered from the changelogs) are read again.
        for keyed in (self.nodes, self.profiles, self.account_states):
            keyed.drop()

    def _input_partitions(self, tps: set) -> list[int]:
        return [tp.partition for tp in tps if tp.topic == self.person_events.get_topic_name()]

    async def _on_revoked(self, app: faust.App, revoked: set, **_: Any) -> None:
        self._drop_states()
        self.watermarks.revoked(self._input_partitions(revoked))

    async def _on_assigned(self, app: faust.App, assigned: set, **_: Any) -> None:
        self._drop_states()
        self.watermarks.assigned(self._input_partitions(assigned))
        mine = sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned if not tp.topic.endswith("-changelog"))
        log.info("partitions assigned", extra={"partitions": mine})


class _Keyed(Generic[S]):
    """A keyed stage's states: decoded in a StateCache, written to the table at each flush."""

    def __init__(self, table: TableT, codec: Codec[S], max_entries: int) -> None:
        self.cache: StateCache[S] = StateCache(table, codec, max_entries)
        self._batch: list[tuple[EventT, Step]] = []  # steps applied since the last flush

    def apply(self, event: EventT, step: Step) -> list[Outbound]:
        """Apply `step` to the state of the event's key; returns the outputs to send."""
        key = event.key
        try:
            state, outputs = step(self.cache.get(key), key.decode())
        except Exception:
            self._rebuild(key)
            raise
        self.cache.put(key, state, event)
        self._batch.append((event, step))
        return outputs

    def _rebuild(self, key: bytes) -> None:
        """The reducers update a state in place, so one that raised may leave it half-changed.

        The state goes back to the table's (the last flush) with this batch's earlier steps
        of the key applied again: the reducers are pure, so they give the same state, and
        their outputs were already sent.
        """
        self.cache.discard(key)
        state = self.cache.get(key)
        earlier = [(event, step) for event, step in self._batch if event.key == key]
        for event, step in earlier:
            state, _ = step(state, key.decode())
            self.cache.put(key, state, event)

    def flush(self) -> None:
        self.cache.flush()
        self._batch.clear()

    def drop(self) -> None:
        self.cache.drop()
        self._batch.clear()


class _DirectoryView(Mapping[str, directory.DirectoryEntry]):
    """The directory table as the names stage reads it: str keys, decoded entries."""

    def __init__(self, table: TableT, codec: Codec[directory.DirectoryEntry]) -> None:
        self._table = table
        self._codec = codec

    def __getitem__(self, name: str) -> directory.DirectoryEntry:
        raw = self._table.get(name.encode())
        if raw is None:
            raise KeyError(name)
        return self._codec.decode(raw)

    def __iter__(self) -> Iterator[str]:
        return (k.decode() for k in self._table)

    def __len__(self) -> int:
        return len(self._table)


config = load()
grouping = Grouping(config)
app = grouping.app
