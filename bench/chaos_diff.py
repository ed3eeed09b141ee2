"""Where a chaos run's projection differs from the fault-free run's, column by column.

    .venv/bin/python -m bench.chaos_diff --db postgresql://bg:bg@127.0.0.1:25432/buyinggroups \
        BASELINE_SCHEMA RUN_SCHEMA [RUN_SCHEMA ...]

bench/chaos.py keeps each run's projection schema (`chaos_<hex>`, in creation order; the first
of a series is its fault-free run, and chaos-runs.jsonl names each run's schema). For each
run schema this prints, per opportunity, the columns of `opportunities` whose values differ
from the baseline's (the fingerprint's columns and the score's: version, as_of, breakdown,
lifecycle), and the members that differ, so a run that is "not identical" says why.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Iterable

import asyncpg

# The columns a run of the same market should agree on; `created_at` and the other arrival
# times are wall-clock and differ between any two runs.
COLUMNS = ("status", "formed_at", "score", "tier", "score_version", "score_as_of", "score_status",
           "score_formed_at", "score_stalled_since", "members_count", "engaged_members", "touches_count",
           "first_touch_at", "last_activity_at", "covered_roles", "missing_roles", "version", "breakdown")


def person_labels(touches: Iterable[tuple[str, str]]) -> dict[str, str]:
    """{person id: the smallest touch id (ingest's event id) of their touches}, from (person id,
    touch id) pairs: a name for a person that does not depend on the run's vault."""
    label: dict[str, str] = {}
    for person, touch in touches:
        if person not in label or touch < label[person]:
            label[person] = touch
    return label


async def rows(conn: asyncpg.Connection, schema: str) -> tuple[dict[str, dict], set[tuple]]:
    """({opportunity_id: {column: value}}, {(opportunity_id, person_id, department, role)})."""
    cols = ", ".join(COLUMNS)
    opps = {r[0]: dict(zip(COLUMNS, list(r)[1:], strict=True)) for r in await conn.fetch(
        f'select opportunity_id, {cols} from "{schema}".opportunities')}
    # Person ids are pseudonyms of each run's own vault: named
    # by their smallest touch id, as bench/chaos.py's fingerprint does.
    label = person_labels((r[0], r[1]) for r in await conn.fetch(
        f'select person_id, touch_id from "{schema}".touches'))
    members = {(r[0], label.get(r[1], r[1]), r[2], r[3]) for r in await conn.fetch(
        f'select opportunity_id, person_id, department, role from "{schema}".opportunity_members')}
    for values in opps.values():
        breakdown = json.loads(values["breakdown"] or "{}")
        for member in breakdown.get("members", []):
            member["person_id"] = label.get(member.get("person_id"), member.get("person_id"))
        values["breakdown"] = json.dumps(breakdown, sort_keys=True)
    return opps, members


def diff(base: tuple[dict, set], run: tuple[dict, set]) -> list[str]:
    """Lines naming each differing opportunity and column, `baseline -> run`."""
    out = []
    (bo, bm), (ro, rm) = base, run
    for opp in sorted(bo.keys() | ro.keys()):
        if opp not in bo or opp not in ro:
            out.append(f"{opp}: only in {'run' if opp in ro else 'baseline'}")
            continue
        for col in COLUMNS:
            b, r = bo[opp].get(col), ro[opp].get(col)
            if b != r:
                if col == "breakdown":
                    b, r = _breakdown_diff(b, r)
                out.append(f"{opp}: {col} {b} -> {r}")
    for m in sorted(bm - rm):
        out.append(f"member only in baseline: {m}")
    for m in sorted(rm - bm):
        out.append(f"member only in run: {m}")
    return out


def _breakdown_diff(b: str | None, r: str | None) -> tuple[str, str]:
    """The breakdown's differing top-level keys only (it is large)."""
    b, r = json.loads(b or "{}"), json.loads(r or "{}")
    keys = sorted(k for k in b.keys() | r.keys() if b.get(k) != r.get(k))
    return (json.dumps({k: b.get(k) for k in keys}, default=str)[:400],
            json.dumps({k: r.get(k) for k in keys}, default=str)[:400])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="postgresql://bg:bg@127.0.0.1:25432/buyinggroups")
    parser.add_argument("baseline")
    parser.add_argument("runs", nargs="+")
    args = parser.parse_args()

    async def main() -> None:
        conn = await asyncpg.connect(args.db)
        try:
            base = await rows(conn, args.baseline)
            for schema in args.runs:
                lines = diff(base, await rows(conn, schema))
                print(f"== {schema}: {len(lines)} differences")
                for line in lines:
                    print("  " + line)
        finally:
            await conn.close()

    asyncio.run(main())
