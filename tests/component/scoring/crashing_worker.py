"""The scoring worker, crashing where it hurts most: once it has processed the message that
emits a chosen signal, the rest of that batch's outputs never reach Kafka and it kills
itself (SIGKILL) before writing the batch's states. Run as
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


def process(partition, message, wall=None):
    outputs = _process(partition, message, wall)
    due = [o.signal_id for o in outputs
           if o.type == "signal" and o.signal_id in CRASH_AT and not (MARKS / o.signal_id).exists()]
    if due:
        print(f"crashing_worker: {due} at partition {partition}", file=sys.stderr, flush=True)
        armed.extend(due)
    return outputs


class LosingOutbox(worker.Outbox):
    """Once armed, the batch's remaining outputs are what the crash loses in flight."""

    async def add(self, *args, **kwargs) -> None:
        if not armed:
            await super().add(*args, **kwargs)


def crash_before_writing(writes):
    if armed:
        MARKS.mkdir(parents=True, exist_ok=True)
        for signal_id in armed:
            (MARKS / signal_id).touch()
        print("crashing_worker: outputs partly sent, states not written: killing", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    _write(writes)


_write = worker.write
worker.processor.process = process
worker.write = crash_before_writing
worker.Outbox = LosingOutbox

if __name__ == "__main__":
    main()
