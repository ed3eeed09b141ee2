"""The scoring worker, crashing where it hurts most: it kills itself (SIGKILL) once the table
writes of the batch holding the message that emits a chosen signal have reached Kafka, while
the outputs of that message (and of the batch's later messages) were never sent. Run as
`python -m tests.component.scoring.crashing_worker`.

    BG_TEST_CRASH_AT     signal ids, comma-separated; each one crashes the worker once
    BG_TEST_CRASH_MARKS  a directory that remembers, across restarts, which ones did
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from services.scoring import main as worker
from services.scoring.__main__ import main

CRASH_AT = {s for s in os.environ["BG_TEST_CRASH_AT"].split(",") if s}
MARKS = Path(os.environ["BG_TEST_CRASH_MARKS"])
armed: list[str] = []
_process = worker.processor.process
_flush = worker.flush


last_offsets: dict[int, int] = {}


def process(partition, offset, message):
    if last_offsets.get(partition, -2) + 1 != offset:
        # Where each partition starts after a (re)start, and any jump: a redelivery goes back.
        print(f"crashing_worker: partition {partition} at offset {offset}, after {last_offsets.get(partition)}",
              file=sys.stderr, flush=True)
    last_offsets[partition] = offset
    outputs = _process(partition, offset, message)
    due = [o.signal_id for o in outputs
           if o.type == "signal" and o.signal_id in CRASH_AT and not (MARKS / o.signal_id).exists()]
    if due:
        print(f"crashing_worker: {due} at partition {partition} offset {offset}", file=sys.stderr, flush=True)
        armed.extend(due)
    return outputs


def lost_once_armed(send):
    """The worker sends a batch's outputs before writing its table: once armed, they are what
    the crash loses."""
    async def send_unless_armed(*args, **kwargs):
        if not armed:
            return await send(*args, **kwargs)

    return send_unless_armed


async def flush_then_crash(last_of):
    await _flush(last_of)
    if armed:
        producer = worker.app.producer
        # faust's flush gives up after 0.1 s without progress; the crash must come after
        # the table writes are in the changelog, or it tests nothing.
        while producer.buffer.size:
            await producer.flush()
        await producer.flush()
        MARKS.mkdir(parents=True, exist_ok=True)
        for signal_id in armed:
            (MARKS / signal_id).touch()
        print("crashing_worker: table writes flushed, killing", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


worker.processor.process = process
worker.flush = flush_then_crash
worker.scores_topic.send = lost_once_armed(worker.scores_topic.send)
worker.signals_topic.send = lost_once_armed(worker.signals_topic.send)

if __name__ == "__main__":
    main()
