"""A crash anywhere in a batch loses nothing and changes nothing downstream (docs/exactly-once.md).

The worker's commit policy: a batch's outputs are sent and acknowledged, then its states are
written to the table, then its offsets are committed. A crash keeps a prefix of the table's
writes (faust's changelog writes in order); a restart is a new Processor over that prefix,
reading again from an offset committed at or before the first message not wholly written.
Outputs are deterministic with ids of their own, so sending some twice is harmless: sinks
keep a signal per id and a score per (version, as_of).
"""

from __future__ import annotations

import pytest

from services.scoring.config import load_config
from services.scoring.processor import Processor
from shared.codec import encode
from tests.unit.scoring.stories import Story, day, krasnaya_romashka, positions, severny_veter

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
    clock (role_gap, stalled, rescores), and on an opportunity's own events (formation)."""
    story = Story()
    krasnaya_romashka(story)
    severny_veter(story, start=1)
    story.tick(day(60))
    return positions(story.in_time_order())


def run(processor: Processor, log: list, batch: int) -> tuple[list[list], list[int]]:
    """Outputs per message, and the table's write count once each message's batch was flushed."""
    outputs, writes_after = [], []
    for n, (partition, _, event) in enumerate(log, 1):
        outputs.append(processor.process(partition, event))
        if n % batch == 0 or n == len(log):
            processor.flush(partition)  # the story's log is one partition
            writes_after += [len(getattr(processor.table, "writes", ()))] * (n - len(writes_after))
    return outputs, writes_after


def flat(outputs: list[list]) -> list:
    return [o for message in outputs for o in message]


def downstream(outputs: list) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """What sinks keep: signals by id, each opportunity's score of the highest (version, as_of).
    Fails if two copies of one signal id, or of one (version, as_of), differ."""
    signals: dict[str, bytes] = {}
    scores: dict[tuple, bytes] = {}
    for o in outputs:
        raw = encode(o)
        key = o.signal_id if o.type == "signal" else (o.opportunity_id, o.version, o.as_of)
        kept = (signals if o.type == "signal" else scores).setdefault(key, raw)
        assert kept == raw, key
    best: dict[str, tuple] = {}
    for opp, version, as_of in scores:
        best[opp] = max(best.get(opp, (0, as_of)), (version, as_of))
    return signals, {opp: scores[(opp, *best[opp])] for opp in best}


@pytest.mark.parametrize("batch", [1, 4])
def test_a_crash_at_any_table_write_loses_and_changes_nothing_downstream(batch: int) -> None:
    log = story_log()
    table = Changelog()
    outputs, writes_after = run(Processor(CONFIG, table), log, batch)
    expected = downstream(flat(outputs))
    assert expected[0] and expected[1]
    starts = [([0, *sorted(set(writes_after))][sorted(set(writes_after)).index(n)]) for n in writes_after]
    for cut in range(len(table.writes) + 1):
        written = sum(1 for n in writes_after if n <= cut)  # messages wholly written
        # A batch's outputs were all acknowledged before its first write.
        sent = sum(1 for start in starts if start <= cut)
        for committed in sorted({written, max(0, written - 4)}):
            restarted = Processor(CONFIG, dict(table.writes[:cut]))
            again, _ = run(restarted, log[committed:], batch)
            assert downstream(flat(outputs[:sent]) + flat(again)) == expected, (cut, committed)


def test_a_crash_while_sending_a_batch_loses_nothing() -> None:
    """Some of a batch's outputs reached Kafka, none of its states were written: the batch
    comes again from the same states and emits the same outputs, the missing ones included."""
    log = story_log()
    expected = downstream(flat(run(Processor(CONFIG, {}), log, 4)[0]))
    table = Changelog()
    processor = Processor(CONFIG, table)
    first, _ = run(processor, log[:8], 4)
    batch = [processor.process(p, e) for p, _, e in log[8:12]]  # processed, half sent, crash
    half = flat(batch)[: len(flat(batch)) // 2]
    restarted = Processor(CONFIG, dict(table))
    again, _ = run(restarted, log[8:], 4)
    assert downstream(flat(first) + half + flat(again)) == expected


def test_a_rebalance_drops_an_unflushed_batch_which_then_comes_again_with_the_same_outputs() -> None:
    log = story_log()
    processor = Processor(CONFIG, {})
    outputs, _ = run(processor, log[:-3], 1)
    unflushed = [processor.process(partition, event) for partition, _, event in log[-3:]]
    processor.forget([0])
    again, _ = run(processor, log[-3:], 1)
    assert [list(map(encode, m)) for m in again] == [list(map(encode, m)) for m in unflushed]


def test_a_duplicate_further_on_in_the_log_sends_nothing() -> None:
    log = story_log()
    processor = Processor(CONFIG, {})
    run(processor, log, 1)
    _, _, event = next(entry for entry in log if getattr(entry[2], "opportunity_id", None) is not None)
    assert processor.process(0, event) == []
