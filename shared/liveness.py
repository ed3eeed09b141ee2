"""Liveness of a faust worker's stream partitions: one that stalls is read again.

A stalled partition has records waiting (its head, shared.streaming's `head`: the committed
offset, or the first offset of a partition never committed, below its high-water mark), none of
its messages in flight in a stream, and a head that has not moved for BG_STALL_SECONDS. The
worker then seeks it back to its head, so the message blocking the commit is fetched and handed
to the streams again; what was processed after it comes again too (at-least-once; every sink is
idempotent, docs/exactly-once.md).

Why (issue 19, item 12, docs/exactly-once.md "A stalled partition"): right after an assignment
faust can lose a partition's head message between its fetcher and its streams (it fetches
while its recovery still pauses and seeks the partitions). The later messages are processed
and acknowledged, but no commit may pass the missing one (shared.streaming's
`_new_offset_after_the_head`), and nothing fetches it again: the worker looked idle with
partitions assigned and lag for minutes, until it was restarted. Measured with
`bench/failover.py`: 1 to 2 restarts in 16 when a static member (BG_WORKER_ID) rejoins
within its session and gets its partitions back at once.

What counts as in flight is a message a stream has not acknowledged yet: faust's pending set
(`Consumer.unacked`) also keeps, until they are garbage-collected, messages acknowledged a
second time (faust's recovery seek delivers a partition's messages again) or below the committed
offset, which faust's `ack` never removes from it. Counted as in flight, they hid every stall
after such a re-delivery: the restart test's worker sat at its lost heads for 150 s with no
alarm (docs/exactly-once.md, "A stalled partition after a restart").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping

import faust
from faust.types import TP, Message

from shared.settings import WorkerSettings

log = logging.getLogger(__name__)


def stall_seconds() -> float:
    """BG_STALL_SECONDS (default 60): how long a partition with records waiting and nothing in
    flight may keep its head (the committed offset, or the first offset of a partition never
    committed) before it is read again from there. The default is
    long enough that a busy stage's queue (faust buffers up to 4,096 messages per topic before
    a stream takes them, untracked) drains first; a false alarm only reads messages again."""
    return WorkerSettings().stall_seconds


class Stalls:
    """Which partitions stalled: pure bookkeeping over what the consumer reports, in seconds."""

    def __init__(self, after: float) -> None:
        self.after = after
        self._since: dict[TP, tuple[int, float]] = {}  # head, since when (monotonic s)

    def observe(self, tp: TP, head: int | None, highwater: int | None, in_flight: bool, now: float) -> bool:
        """True when `tp` is due to be read again from `head` (the offset it must be read from
        next, None while unknown): records waiting, nothing in flight, and the same head for
        `after` seconds. Once due, the next alarm for the same offset comes `after` seconds later."""
        if head is None or highwater is None or head >= highwater or in_flight:
            self._since.pop(tp, None)
            return False
        seen = self._since.get(tp)
        if seen is None or seen[0] != head:
            self._since[tp] = (head, now)
            return False
        if now - seen[1] < self.after:
            return False
        self._since[tp] = (head, now)
        return True

    def keep(self, tps: Iterable[TP]) -> None:
        """Forget partitions no longer assigned."""
        kept = set(tps)
        for tp in [tp for tp in self._since if tp not in kept]:
            del self._since[tp]


def _highwater(consumer, tp: TP) -> int | None:
    try:
        return consumer.highwater(tp)
    except AssertionError:  # revoked meanwhile on the consumer's thread (aiokafka asserts it is assigned)
        return None


def in_flight(pending: Iterable[Message]) -> set[TP]:
    """The partitions of the messages in `pending` (faust's `Consumer.unacked`) that a stream
    has not acknowledged yet; acknowledged ones faust kept in the set are not in flight."""
    return {message.tp for message in pending if not message.acked}


def unfetched(streamed: Iterable[TP], highwater: Mapping[TP, int | None], active: Collection[TP]) -> list[TP]:
    """The partitions of `streamed` faust does not fetch (not in its `active` set) or has fetched
    nothing of since their assignment (no `highwater` known): their high-water mark must be asked
    of the broker, or a partition that never gets a fetch request would never look stalled
    (faust-streaming issues 523 and 629)."""
    return [tp for tp in streamed if tp not in active or highwater.get(tp) is None]


def watch(app: faust.App, head: Callable[[faust.types.ConsumerT, TP], int | None],
          after: float | None = None) -> Stalls:
    """Check the app's stream partitions every few seconds; seek a stalled one back to its head
    (`head(consumer, tp)`: the offset no commit passes, shared.streaming's `head`; on the
    consumer's thread, which resets faust's read offset too), and let faust fetch it again if it
    had stopped fetching it outside a recovery. `after`: seconds, default BG_STALL_SECONDS."""
    stalls = Stalls(stall_seconds() if after is None else after)

    @app.timer(max(1.0, stalls.after / 6))
    async def _liveness() -> None:
        consumer = app.consumer
        if app.rebalancing or not consumer.flow_active:
            return  # a rebalance or a table recovery: partitions are paused and sought on purpose
        changelogs = app.tables.changelog_topics
        streamed = [tp for tp in consumer.assignment() if tp.topic not in changelogs]
        stalls.keep(streamed)
        active = consumer._get_active_partitions()
        highwater = {tp: _highwater(consumer, tp) for tp in streamed}
        if ask := unfetched(streamed, highwater, active):
            try:
                highwater.update(await consumer.highwaters(*ask))
            except Exception as exc:  # the broker is away: the next check asks again
                log.warning("high-water marks not known", extra={"error": repr(exc)})
        busy = in_flight(consumer.unacked)
        now = time.monotonic()
        due = {}
        for tp in streamed:
            offset = head(consumer, tp)
            if stalls.observe(tp, offset, highwater.get(tp), tp in busy, now):
                due[tp] = offset
        if not due:
            return
        idle = sorted(tp for tp in due if tp not in active)
        log.error("partitions stalled with records waiting and nothing in flight; reading them again",
                  extra={"partitions": {f"{tp.topic}[{tp.partition}]": (offset, highwater.get(tp))
                                        for tp, offset in due.items()},
                         "not_fetched": [f"{tp.topic}[{tp.partition}]" for tp in idle],
                         "after_seconds": stalls.after})
        try:
            await consumer.seek_wait(due)
        except Exception as exc:  # moved away or the broker is away: the next check sees it again
            log.warning("seek back of stalled partitions not done", extra={"error": repr(exc)})
            return
        if idle:
            # Flow is on and no recovery runs, so nothing should keep them paused any more.
            consumer.resume_partitions(idle)

    return stalls
