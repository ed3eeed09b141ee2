"""py-spy profiles of the service processes during a benchmark run, and their summary.

    .venv/bin/python -m bench.profiles bench-results/profiles/grouping-0.txt [--top 25]

`Profiler` attaches `py-spy record --format raw` (collapsed stacks, one line per distinct stack
with its sample count) to running processes and stops it when the run ends; `summary` reads
such a file and ranks functions by their share of the samples, inclusive (the function or
anything it called) and self (the innermost frame). Idle time (the event loop waiting in
select/epoll) is counted apart so that the shares are of busy time.
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path

IDLE = re.compile(r"\b(select|poll|epoll|_run_once \(asyncio/base_events|wait \(threading|_worker \(concurrent)")


class Profiler:
    """One py-spy recorder per process: `attach(name, pid)` during the run, `stop()` after it."""

    def __init__(self, directory: Path, rate: int = 67) -> None:
        self.directory = directory
        self.rate = rate
        self.procs: list[subprocess.Popen] = []
        directory.mkdir(parents=True, exist_ok=True)
        if shutil.which("py-spy") is None and not Path(".venv/bin/py-spy").exists():
            raise RuntimeError("py-spy is not installed (uv sync --dev)")

    def attach(self, name: str, pid: int) -> None:
        exe = shutil.which("py-spy") or ".venv/bin/py-spy"
        out = self.directory / f"{name}.txt"
        self.procs.append(subprocess.Popen(
            [exe, "record", "--pid", str(pid), "--rate", str(self.rate), "--format", "raw", "--nonblocking",
             "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def stop(self) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            proc.wait(30)
        self.procs.clear()


def _frames(stack: str) -> list[str]:
    # "thread (idle);frame (file:line);frame (file:line)"; the line number is dropped so that
    # one function is one entry.
    return [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]


def summary(path: Path, top: int = 25) -> str:
    """Inclusive and self shares of the busy samples in a py-spy raw file, as a text table."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    busy = idle = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = _frames(stack)
        if IDLE.search(frames[-1]):
            idle += n
            continue
        busy += n
        own[frames[-1]] += n
        for frame in set(frames[1:]):
            inclusive[frame] += n
    total = busy + idle
    lines = [f"{path.name}: {busy} busy samples of {total} ({busy / max(total, 1):.0%} busy)",
             "inclusive % of busy | function"]
    lines += [f"{n / busy:6.1%} | {f}" for f, n in inclusive.most_common(top)]
    lines += ["self % of busy | function"]
    lines += [f"{n / busy:6.1%} | {f}" for f, n in own.most_common(top)]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    for file in args.files:
        print(summary(file, args.top))
