"""Mutation check of issue 20's promises: each patch in bench/mutations/ breaks one promise the docs
make, and some test must go red with it applied (and green without it).

    .venv/bin/python -m bench.mutations [--only NAME ...] [--no-baseline]

For each mutation: `git apply` the patch, run the tests named for it, record which failed,
`git apply -R` (always, also on Ctrl-C). A patch that no longer applies (the code moved) stops
the run with its name: remake it against the code as it is. The tests first run once unpatched
(the baseline): a test that is red already proves nothing. Not part of the normal suite: the
component tests it runs start services and take minutes. It needs the servers the tests need (TEST_* variables,
tests/support/servers.py). Exit status 1 when the baseline fails or a mutation survives.
Results and the command: docs/testing.md.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATCHES = ROOT / "bench" / "mutations"


@dataclass(frozen=True)
class Mutation:
    name: str  # bench/mutations/<name>.patch
    breaks: str  # the promise it breaks, in the words of the docs
    tests: tuple[str, ...]  # the tests that must catch it


MUTATIONS = (
    Mutation("wrong_hmac", "Zoom's x-zm-signature is HMAC-SHA256 of 'v0:{timestamp}:{body}' (the patch drops 'v0:')",
             ("tests/unit/ingest/test_signature_vectors.py",)),
    Mutation("drop_loses_state", "StateCache.drop() writes unsaved states before forgetting them "
             "(the patch throws them away)", ("tests/unit/shared/test_state_cache.py",)),
    Mutation("ack_before_write", "ingest answers 202 only after Kafka acknowledged (the patch answers "
             "before the write is done)", ("tests/component/ingest/test_ingest_faults.py",
                                           "tests/component/ingest/test_broker_faults.py")),
    Mutation("lost_release", "a failed write releases its dedupe claims, so the platform's retry is "
             "written (the patch keeps them)", ("tests/component/ingest/test_ingest_faults.py",
                                                "tests/component/ingest/test_broker_faults.py")),
    # Not one of issue 20's four: the fault tests found it (a 500 for events already written).
    Mutation("redis_after_write", "the answer follows Kafka: Redis failing after the write is logged, the "
             "events were written, 202 (the patch lets the error through: a 500)",
             ("tests/component/ingest/test_broker_faults.py",)),
)


def git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)


def pytest(tests: tuple[str, ...]) -> tuple[int, list[str]]:
    """(exit status, the node ids that failed or errored)."""
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfE", *tests],
                         cwd=ROOT, capture_output=True, text=True)
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", run.stdout, re.M)
    return run.returncode, failed


def check(mutation: Mutation) -> list[str]:
    """The tests that failed with the mutation applied (empty: it survived)."""
    patch = PATCHES / f"{mutation.name}.patch"
    applied = git("apply", str(patch))
    if applied.returncode != 0:
        raise SystemExit(f"{mutation.name}: the patch no longer applies (the code moved; remake it): "
                         f"{applied.stderr.strip()}")
    try:
        _, failed = pytest(mutation.tests)
        return failed
    finally:
        reverted = git("apply", "-R", str(patch))
        if reverted.returncode != 0:
            raise SystemExit(f"{mutation.name}: could not revert {patch}: {reverted.stderr.strip()}; "
                             "`git diff` shows what is still applied")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=[m.name for m in MUTATIONS], help="these mutations only")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unpatched run")
    args = parser.parse_args()
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only]
    # The patches are undone with `git apply -R`: a file already changed by hand would be left
    # in a mixed state, so the touched files must be as committed.
    touched = sorted({line[6:] for m in chosen for line in (PATCHES / f"{m.name}.patch").read_text().splitlines()
                      if line.startswith("+++ b/")})
    if dirty := git("status", "--porcelain", "--", *touched).stdout.strip():
        raise SystemExit(f"commit or stash these first, the mutations patch them:\n{dirty}")
    if not args.no_baseline:
        tests = tuple(dict.fromkeys(t for m in chosen for t in m.tests))
        status, failed = pytest(tests)
        if status != 0:
            print(f"baseline: the tests fail without any mutation ({failed or status}); nothing is proved", flush=True)
            return 1
        print(f"baseline: {len(tests)} test files green without the mutations", flush=True)
    survived = []
    print("| mutation | the promise it breaks | caught by | seconds |\n|---|---|---|---|", flush=True)
    for mutation in chosen:
        started = time.monotonic()
        failed = check(mutation)
        caught = ", ".join(f"`{t}`" for t in failed) if failed else "**nothing: survived**"
        print(f"| `{mutation.name}` | {mutation.breaks} | {caught} | {time.monotonic() - started:.0f} |", flush=True)
        if not failed:
            survived.append(mutation.name)
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
