"""What the shared text checks cost per touch (issue 19): validating a typical canonical touch
(ingest) and decoding it (every consumer), best of 5 rounds of 20,000, in microseconds.

    .venv/bin/python -m bench.text_checks [--label NAME]

Run it in an older checkout the same way (PYTHONPATH=<checkout>) to compare.
"""

from __future__ import annotations

import argparse
import time

from pydantic import TypeAdapter

from shared.codec import encode, person_events
from shared.schemas.touch import PersonEvent

TOUCH = {"event_id": "segment:ajs-1700000002-romashka-2", "occurred_at": "2026-10-01T09:21:00Z", "source": "web",
         "kind": "download", "platform": "segment",
         "person": {"email": "elena.sokolova@romashka.ru", "anonymous_id": "7f3c9a1e-romashka-hr",
                    "name": "Елена Соколова", "job_title": "HR-менеджер", "company": "ООО «Красная ромашка»"},
         "content": {"url": "https://vendor.example/solutions/hr/leave-automation",
                     "title": "Автоматизация отпусков", "asset_id": "hr-leave-automation-brochure"},
         "context": {"ip": "93.184.216.34", "user_agent": "Mozilla/5.0", "utm": {"utm_source": "yandex"}},
         "properties": {"event": "Brochure Downloaded", "form": {"fields": ["a", "b"]}}}


def best_microseconds(run, n: int = 20_000, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(n):
            run()
        best = min(best, (time.perf_counter() - started) / n)
    return best * 1e6


def main(label: str) -> None:
    adapter: TypeAdapter = TypeAdapter(PersonEvent)
    wire = encode(adapter.validate_python(TOUCH))
    validate = best_microseconds(lambda: adapter.validate_python(TOUCH))
    decode = best_microseconds(lambda: person_events.decode(wire))
    print(f"{label}: validate {validate:.1f} us per touch, decode {decode:.1f} us per touch")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", default="this checkout")
    main(parser.parse_args().label)
