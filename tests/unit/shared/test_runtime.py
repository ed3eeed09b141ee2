"""shared.runtime: the garbage collector's settings every service applies at start."""

import json
import subprocess
import sys

from shared.runtime import GC_THRESHOLDS


def test_tune_gc_freezes_the_start_up_heap_and_raises_the_thresholds() -> None:
    # In a process of its own: the test session's collector is not changed.
    script = ("import gc, json; from shared.runtime import tune_gc; import services.grouping.domain.opportunities; "
              "tune_gc(); print(json.dumps([gc.get_threshold(), gc.get_freeze_count()]))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    thresholds, frozen = json.loads(out.stdout)
    assert tuple(thresholds) == GC_THRESHOLDS == (50_000, 10, 10)
    assert frozen > 10_000  # the imported modules' objects, never walked again
