"""The grouping worker, losing the head message of each input partition after its start, as
faust did between its fetcher and its streams after some restarts (issue 19, docs/exactly-once.md
"A stalled partition"): the first message fetched of each partition never reaches a stream,
neither acknowledged nor tracked, while the later ones are processed. Run as
`python -m tests.component.grouping.losing_worker`.

    BG_TEST_LOSE_HEAD=1   lose them (otherwise the worker is the plain one)
"""

from __future__ import annotations

import os
import sys
import time

from faust.transport.consumer import Consumer

from services.grouping.__main__ import main
from shared import topics

INPUT = topics.PERSON_EVENTS.name
# faust itself reads a partition again now and then right after its assignment (a seek back while
# its flow was paused); the head message stays lost whenever it comes for this long, so that only
# a later read, the liveness check's, gets it through.
LOST_FOR_SECONDS = 5.0
lost: dict = {}  # partition -> (its head offset, when first lost in monotonic seconds)
_getmany = Consumer.getmany


async def getmany(self: Consumer, timeout: float):
    async for tp, message in _getmany(self, timeout):
        if tp.topic == INPUT:
            offset, since = lost.setdefault(tp, (message.offset, time.monotonic()))
            if message.offset == offset and time.monotonic() - since < LOST_FOR_SECONDS:
                print(f"losing_worker: lost {tp.topic}[{tp.partition}] offset {offset}", file=sys.stderr, flush=True)
                continue
        yield tp, message


if os.environ.get("BG_TEST_LOSE_HEAD") == "1":
    Consumer.getmany = getmany

if __name__ == "__main__":
    main()
