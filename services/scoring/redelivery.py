"""Sending again what a redelivered message emitted the first time.

faust is at-least-once: after a crash it redelivers from the last committed offset, while
the table's changelog may already hold what those messages wrote. Their opportunities are
then ahead (version applied, timers fired), so processing them again emits nothing new; if
the worker died before their outputs reached Kafka, those outputs would be lost. So every
opportunity keeps the signals recent messages emitted, keyed by input offset, written in
the same table entry as the state change that made them (one changelog write: both or
neither survive). A message redelivered at offset o sends again the signals kept at o, by
whichever opportunity keeps them (a watermark moved by o fires other opportunities'
timers), and its own opportunity's current score. Downstream deduplicates signals by
signal_id and keeps the highest score version, so sending again what did arrive is harmless.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from services.scoring.domain.state import EmittedSignal, OpportunityState
from shared.codec import encode
from shared.schemas.scoring import Signal

# A signal is kept while its message may still be redelivered: the message is at most the
# partition's uncommitted tail behind. faust commits every 500 acked messages (the fetcher
# waits for that commit) or every second (shared/streaming.py), with up to 4096 fetched
# messages buffered ahead of the agent, so the tail is about 5k messages; twice that covers
# it. Offsets of the partition, not versions of the opportunity nor event time: the tail is
# counted in messages of the partition, whatever their opportunities or event times (a
# backfill packs months of event time, or hundreds of one opportunity's versions, into it).
WINDOW = 10_000
# A bound on the state whatever happens in the window (a tier flapping on every touch): one
# message emits at most a handful of signals for one opportunity, and a kept signal is 1-3 KB
# rewritten with the opportunity on each of its events.
KEEP_AT_MOST = 16


def remember(state: OpportunityState, offset: int, signals: Sequence[Signal]) -> None:
    """Keep the signals the message at `offset` emitted for this opportunity; drop the old."""
    kept = [e for e in state.emitted if offset - e.offset < WINDOW]
    kept += [EmittedSignal(offset=offset, signal=encode(s).decode()) for s in signals]
    state.emitted = kept[-KEEP_AT_MOST:]


def kept_at(state: OpportunityState, offset: int) -> list[Signal]:
    return [Signal.model_validate_json(e.signal) for e in state.emitted if e.offset == offset]


class ResendIndex:
    """Per partition, input offset -> opportunities keeping signals that message emitted.

    Built from the table at a partition's first message after an assignment, which is the
    first message faust redelivers, from kept signals at or after that offset: the
    uncommitted tail only. It empties as the tail is processed again; the opportunity of
    the message itself finds its own signals without it.
    """

    def __init__(self) -> None:
        self._pending: dict[int, dict[int, set[str]]] = {}

    def rebuild(self, partition: int, kept: Iterable[tuple[int, str]]) -> None:
        pending: dict[int, set[str]] = {}
        for offset, key in kept:
            pending.setdefault(offset, set()).add(key)
        self._pending[partition] = pending

    def pop(self, partition: int, offset: int) -> list[tuple[int, str]]:
        """(offset, key) pairs due at this message, in order. Earlier offsets that never came
        back (the input lost them to retention while the worker was down) come out too:
        sending their signals late beats losing them."""
        pending = self._pending.get(partition)
        if not pending:
            return []
        due = sorted(at for at in pending if at <= offset)
        return [(at, key) for at in due for key in sorted(pending.pop(at))]

    def forget(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            self._pending.pop(partition, None)
