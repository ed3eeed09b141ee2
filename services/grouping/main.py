"""Composition root of the grouping worker: faust app, topics, tables and agents.

    python -m services.grouping          (or: faust -A services.grouping.main worker --without-web)

Agents only move data: decode with shared.codec, read the key's state from its table, call
the domain reducer, send what it returns, write the state back. A message they cannot use
goes to the grouping dead-letter topic with the reason; nothing is dropped silently.

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
from typing import Any, TypeVar

import faust
import orjson
from faust.types import EventT, StreamT, TableT, TopicT

from services.grouping import kafka_seek
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
from shared.settings import kafka_settings
from shared.streaming import DeadLetterSink, make_app, raw_topic

SERVICE = "grouping"
log = logging.getLogger("services.grouping")
S = TypeVar("S")


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
        self.node_codec: Codec[identity.IdentityNode] = Codec(identity.IdentityNode)
        self.profile_codec: Codec[people.Profile] = Codec(people.Profile)
        self.entry_codec: Codec[directory.DirectoryEntry] = Codec(directory.DirectoryEntry)
        self.account_codec: Codec[opportunities.AccountState] = Codec(opportunities.AccountState)

        agent = self.app.agent
        agent(self.person_events, name="route", concurrency=1)(self._route)
        agent(self.topics["identity"], name="stitch", concurrency=1)(self._stitch)
        agent(self.topics["people"], name="profile", concurrency=1)(self._profile)
        agent(self.topics["names"], name="names", concurrency=1)(self._names)
        agent(self.topics["accounts"], name="reduce", concurrency=1)(self._reduce)
        self.app.task(self._precreate)
        self.app.on_partitions_assigned.connect(self._on_assigned)

    async def _send(self, outputs: list[Outbound]) -> None:
        for out in outputs:
            await self.topics[out.to].send(key=out.key.encode(), value=encode(out.message))

    async def _each(self, stream: StreamT, handle: Callable[[EventT], Any]) -> None:
        """Run `handle` per event; a failure dead-letters that event and the stream goes on."""
        async for event in stream.events():
            try:
                await handle(event)
            except DecodeError as exc:
                await self.dlq.send(event, exc.reason, exc.detail)
            except Exception as exc:
                await self.dlq.crashed(event, exc)

    def _keyed(self, table: TableT, codec: Codec[S], key: bytes,
               step: Callable[[S | None, str], tuple[S, list[Outbound]]]) -> list[Outbound]:
        raw = table.get(key)
        state, outputs = step(codec.decode(raw) if raw is not None else None, key.decode())
        table[key] = encode(state)
        return outputs

    async def _route(self, stream: StreamT) -> None:
        async def handle(event: EventT) -> None:
            try:
                message = person_events.decode(event.value)
            except DecodeError as exc:
                if _no_identifier(event.value):
                    raise DecodeError("no_identifier", exc.detail) from None
                raise
            await self._send(identity.route(message))

        await self._each(stream, handle)

    async def _stitch(self, stream: StreamT) -> None:
        limits = self.config.identity

        async def handle(event: EventT) -> None:
            message = identity_inputs.decode(event.value)
            outputs = self._keyed(self.identities, self.node_codec, event.key,
                                  lambda node, key: identity.step(node, key, message, limits))
            await self._send(outputs)

        await self._each(stream, handle)

    async def _profile(self, stream: StreamT) -> None:
        rules = self.config.people

        async def handle(event: EventT) -> None:
            message = people_inputs.decode(event.value)
            outputs = self._keyed(self.people, self.profile_codec, event.key,
                                  lambda profile, key: people.step(profile, key, message, rules))
            await self._send(outputs)

        await self._each(stream, handle)

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
            outputs = self._keyed(self.accounts, self.account_codec, event.key,
                                  lambda state, key: opportunities.step(state, key, message, rules))
            await self._send(outputs)

        await self._each(stream, handle)

    async def _precreate(self) -> None:
        seeds = opportunities.precreate_inputs(self.config.opportunities)
        await self._send(seeds)
        if seeds:
            log.info("pre-created opportunities requested", extra={"accounts": len(seeds)})

    async def _on_assigned(self, app: faust.App, assigned: set, **_: Any) -> None:
        mine = sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned if not tp.topic.endswith("-changelog"))
        log.info("partitions assigned", extra={"partitions": mine})


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


kafka_seek.install()
config = load()
grouping = Grouping(config)
app = grouping.app
