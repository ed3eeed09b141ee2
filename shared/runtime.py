"""Process-wide settings of the Python runtime, applied once by each service's entry point."""

from __future__ import annotations

import gc

# Collections of the youngest generation after this many more allocations than deallocations
# of container objects (CPython's default: 700), then of the middle one after 10 of those and
# of the oldest after 10 middle ones (CPython: 10, 10; the oldest also waits until a quarter
# of the long-lived objects are new).
GC_THRESHOLDS = (50_000, 10, 10)


def tune_gc() -> None:
    """Freeze what start-up made and collect less often, once the service's modules and
    configuration are loaded.

    A stream worker allocates a few hundred objects per event (decoded messages, pydantic
    models, faust events) and keeps tens of thousands alive (its state caches, faust's and
    aiokafka's structures), so with CPython's thresholds a grouping worker ran about 16
    collections per 100 events, each young one walking survivors and the older ones the whole
    heap: 8% of its CPU, scoring's 5% (bench.pipeline with `--accounts 300`, a gc.callbacks
    probe). With these thresholds and the start-up heap frozen (gc.freeze: moved to a
    generation no collection walks, the objects that live as long as the process) the same run
    spent under 1% in collections. Garbage in reference cycles is still collected, later: the
    young generation holds up to GC_THRESHOLDS[0] new objects before a pass.

    Source of the method: CPython's gc module documentation (gc.freeze, gc.set_threshold) and
    the pattern described in "Dismissing Python Garbage Collection at Instagram" (2017)."""
    gc.collect()  # what start-up left as garbage is not frozen with the rest
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
