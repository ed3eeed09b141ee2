"""The scoring worker, crashing where it hurts most: it kills itself (SIGKILL) once the table
writes of the message that emits a chosen signal have reached Kafka, before any output of
that message is sent. Run as `python -m tests.component.scoring.crashing_worker`.

    BG_TEST_CRASH_AT     signal ids, comma-separated; each one crashes the worker once
    BG_TEST_CRASH_MARKS  a directory that remembers, across restarts, which ones did
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from services.scoring import main as worker
from services.scoring.__main__ import main

CRASH_AT = {s for s in os.environ["BG_TEST_CRASH_AT"].split(",") if s}
MARKS = Path(os.environ["BG_TEST_CRASH_MARKS"])
armed: list[str] = []
_process = worker.processor.process


def process(partition, offset, message):
    outputs = _process(partition, offset, message)
    armed.extend(o.signal_id for o in outputs
                 if o.type == "signal" and o.signal_id in CRASH_AT and not (MARKS / o.signal_id).exists())
    return outputs


def crash_before(send):
    async def send_unless_armed(*args, **kwargs):
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
            os.kill(os.getpid(), signal.SIGKILL)
        return await send(*args, **kwargs)

    return send_unless_armed


worker.processor.process = process
worker.scores_topic.send = crash_before(worker.scores_topic.send)
worker.signals_topic.send = crash_before(worker.signals_topic.send)

if __name__ == "__main__":
    main()
