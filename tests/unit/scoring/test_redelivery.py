"""A crash between the table write and the sends: redelivered messages send again what they emitted.

The table is a dict that records its writes in order, as faust's changelog does; a crash
keeps a prefix of them, and a restart is a new Processor over what that prefix restores.
The processor writes once per batch (flush), as the worker does before acknowledging one.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from services.scoring.config import load_config
from services.scoring.domain.state import OpportunityState
from services.scoring.processor import Processor
from services.scoring.redelivery import KEEP_AT_MOST, WINDOW, ResendIndex, kept_at, remember
from shared.codec import encode
from tests.unit.scoring.stories import Story, day, krasnaya_romashka, positions, replay, severny_veter

pytestmark = pytest.mark.unit
CONFIG = load_config()


class Changelog(dict):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[bytes, bytes]] = []

    def __setitem__(self, key: bytes, value: bytes) -> None:
        super().__setitem__(key, value)
        self.writes.append((key, value))


def story_log() -> list:
    """One partition: timers fire on one opportunity when the other's events or a tick move the
    watermark (role_gap and stalled), and on an opportunity's own events (formation)."""
    story = Story()
    krasnaya_romashka(story)
    severny_veter(story, start=1)
    story.account_touch("tick.example", day(60))
    return positions(story.in_time_order())


def run(processor: Processor, log: list, batch: int = 1) -> list[list]:
    outputs = []
    for n, (partition, offset, event) in enumerate(log, 1):
        outputs.append(processor.process(partition, offset, event))
        if n % batch == 0 or n == len(log):
            processor.flush(partition)  # the story's log is one partition
    return outputs


def uninterrupted(log: list, batch: int = 1) -> tuple[list[list], Changelog, list[int]]:
    """Outputs per message, the table, and how many writes the table had once each message's
    batch was flushed."""
    table = Changelog()
    processor = Processor(CONFIG, table)
    outputs, writes_after = [], []
    for n, (partition, offset, event) in enumerate(log, 1):
        outputs.append(processor.process(partition, offset, event))
        if n % batch == 0 or n == len(log):
            processor.flush(partition)
            writes_after += [len(table.writes)] * (n - len(writes_after))
    return outputs, table, writes_after


def flat(outputs: list[list]) -> list:
    return [o for message in outputs for o in message]


def signals_by_opportunity(outputs: list) -> dict[str, list[bytes]]:
    grouped = defaultdict(list)
    for o in outputs:
        if o.type == "signal":
            grouped[o.opportunity_id].append(encode(o))
    return dict(grouped)


def final(outputs: list) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """What downstream keeps: signals deduplicated by id, the highest score version per opportunity.
    Fails if two copies of one signal id or of one score version differ."""
    signals: dict[str, bytes] = {}
    scores: dict[str, tuple[int, bytes]] = {}
    for o in outputs:
        raw = encode(o)
        if o.type == "signal":
            assert signals.setdefault(o.signal_id, raw) == raw, o.signal_id
        else:
            version, kept = scores.get(o.opportunity_id, (0, raw))
            if o.version == version:
                assert kept == raw, (o.opportunity_id, o.version)
            if o.version >= version:
                scores[o.opportunity_id] = (o.version, raw)
    return signals, {key: raw for key, (_, raw) in scores.items()}


@pytest.mark.parametrize("tail", [1, 2, 3, 8, 22])
def test_a_restart_sends_again_exactly_the_signals_the_redelivered_messages_emitted(tail: int) -> None:
    log = story_log()
    outputs, table, _ = uninterrupted(log)
    lost = flat(outputs[-tail:])
    assert any(o.type == "signal" for o in lost)

    again = flat(run(Processor(CONFIG, dict(table)), log[-tail:]))

    assert signals_by_opportunity(again) == signals_by_opportunity(lost)
    # Plus, for every redelivered event of an opportunity, its current score: the last one it emitted.
    last_scores = {o.opportunity_id: encode(o) for o in flat(outputs) if o.type == "score"}
    redelivered = [e.opportunity_id for _, _, e in log[-tail:] if e.opportunity_id is not None]
    assert [encode(o) for o in again if o.type == "score"] == [last_scores[key] for key in redelivered]


def test_a_rebalance_that_keeps_the_partition_sends_again_too() -> None:
    log = story_log()
    processor = Processor(CONFIG, {})
    outputs = run(processor, log)
    processor.forget([0])
    again = flat(run(processor, log[-3:]))
    assert signals_by_opportunity(again) == signals_by_opportunity(flat(outputs[-3:]))


def test_a_rebalance_drops_an_unflushed_batch_which_then_comes_again_as_new() -> None:
    """Changes not flushed are not in the table, like after a crash: the batch's messages are
    not acknowledged, so they come again and emit the same outputs."""
    log = story_log()
    processor = Processor(CONFIG, {})
    outputs = run(processor, log[:-3])
    unflushed = [processor.process(partition, offset, event) for partition, offset, event in log[-3:]]
    processor.forget([0])
    again = run(processor, log[-3:])
    assert [list(map(encode, message)) for message in again] == [list(map(encode, message)) for message in unflushed]
    assert final(flat(outputs + again)) == final(flat(uninterrupted(log)[0]))


@pytest.mark.parametrize("batch", [1, 4])
def test_a_crash_at_any_write_loses_and_changes_nothing_downstream(batch: int) -> None:
    """The crash keeps any prefix of the table's writes (even inside a batch's flush); the
    offset committed before it is at or before the first message not wholly written, and
    the outputs of the messages from there on are lost."""
    log = story_log()
    outputs, table, writes_after = uninterrupted(log, batch)
    expected = final(flat(outputs))
    for cut in range(len(table.writes) + 1):
        written = sum(1 for n in writes_after if n <= cut)  # messages wholly written
        for committed in sorted({written, max(0, written - 4)}):
            restarted = Processor(CONFIG, dict(table.writes[:cut]))
            delivered = flat(outputs[:committed]) + flat(run(restarted, log[committed:]))
            assert final(delivered) == expected, (cut, committed)


def test_a_duplicate_further_on_in_the_log_is_no_redelivery_and_sends_nothing() -> None:
    log = story_log()
    processor = Processor(CONFIG, {})
    run(processor, log)
    _, _, event = next(entry for entry in log if entry[2].opportunity_id is not None)
    assert processor.process(0, len(log), event) == []


def test_replays_stay_byte_identical_with_what_is_kept_for_redeliveries() -> None:
    events = [event for _, _, event in story_log()]
    first = [encode(o) for o in replay(events, CONFIG)]
    assert first == [encode(o) for o in replay(events, CONFIG)]


def test_kept_signals_are_bounded_by_offsets_and_count() -> None:
    log = story_log()
    outputs, table, _ = uninterrupted(log)
    signal = next(o for o in flat(outputs) if o.type == "signal")
    state = OpportunityState.model_validate_json(table[signal.opportunity_id.encode()])
    state.emitted = []

    remember(state, 100, [signal])
    remember(state, 100 + WINDOW - 1, [])
    assert [encode(s) for s in kept_at(state, 100)] == [encode(signal)]  # byte for byte
    remember(state, 100 + WINDOW, [])
    assert state.emitted == []

    for offset in range(KEEP_AT_MOST + 4):
        remember(state, offset, [signal])
    assert [e.offset for e in state.emitted] == list(range(4, KEEP_AT_MOST + 4))


def test_the_resend_index_gives_due_offsets_in_order_then_empties() -> None:
    index = ResendIndex()
    index.rebuild(0, [(12, "b"), (10, "a"), (12, "a"), (12, "a"), (15, "c")])
    index.rebuild(1, [(3, "z")])
    assert index.pop(0, 9) == []
    assert index.pop(0, 10) == [(10, "a")]
    # Offset 11 never comes back; 12 comes with 13, keys in order, each once.
    assert index.pop(0, 13) == [(12, "a"), (12, "b")]
    index.forget([1])
    assert index.pop(1, 3) == []
    assert index.pop(0, 20) == [(15, "c")] and index.pop(0, 21) == []
