"""The projection's rows about people (PostgreSQL): what an export reads and an erase deletes.

Functions take a connection of the projection's engine (its schema on the search path) and
pseudonymous person ids (grouping's person ids, as the rows hold them).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.projection.repository import ERASE_MEMBER, refresh


def _rows(result: Any) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in result]


async def rows_about(conn: AsyncConnection, person_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """{contacts, memberships, touches, signals}: every projection row naming these people."""
    ids = {"ids": person_ids}
    return {
        "contacts": _rows(await conn.execute(text(
            "SELECT * FROM contacts WHERE person_id = ANY(CAST(:ids AS text[])) ORDER BY person_id"), ids)),
        "memberships": _rows(await conn.execute(text(
            "SELECT * FROM opportunity_members WHERE person_id = ANY(CAST(:ids AS text[])) "
            "ORDER BY opportunity_id"), ids)),
        "touches": _rows(await conn.execute(text(
            "SELECT * FROM touches WHERE person_id = ANY(CAST(:ids AS text[])) ORDER BY occurred_at, touch_id"),
            ids)),
        "signals": _rows(await conn.execute(text(
            "SELECT signal_id, opportunity_id, signal, occurred_at, tier, score FROM signals s "
            "WHERE EXISTS (SELECT 1 FROM jsonb_array_elements(s.members) m "
            "              WHERE m->>'person_id' = ANY(CAST(:ids AS text[]))) ORDER BY occurred_at"), ids)),
    }


async def erase_rows(conn: AsyncConnection, person_ids: list[str]) -> int:
    """Delete these people's memberships, touches and contact cards, and their entries in stored
    signals and score breakdowns; recompute the opportunities' derived columns. Returns the
    number of (scope, person) pairs erased."""
    pairs = (await conn.execute(text("""
        SELECT DISTINCT scope, opportunity_id, person_id FROM touches WHERE person_id = ANY(CAST(:ids AS text[]))
        UNION SELECT opportunity_id, opportunity_id, person_id FROM opportunity_members
              WHERE person_id = ANY(CAST(:ids AS text[]))
        UNION SELECT s.opportunity_id, s.opportunity_id, p FROM signals s, unnest(CAST(:ids AS text[])) p
              WHERE position(p in s.members::text || s.detail::text || coalesce(s.breakdown::text, '')) > 0
        UNION SELECT h.opportunity_id, h.opportunity_id, p FROM score_history h, unnest(CAST(:ids AS text[])) p
              WHERE position(p in h.breakdown::text) > 0
        """), {"ids": person_ids})).all()
    for scope, opportunity_id, person_id in pairs:
        for statement in ERASE_MEMBER:
            await conn.execute(statement, {"scope": scope, "opportunity_id": opportunity_id, "person_id": person_id})
    await conn.execute(text("DELETE FROM contacts WHERE person_id = ANY(CAST(:ids AS text[]))"), {"ids": person_ids})
    await refresh(conn, {o for _, o, _ in pairs if o is not None})
    return len(pairs)


async def forget_raw_values(conn: AsyncConnection, person_ids: list[str]) -> int:
    """Retention: the raw values of these people (email, name, job title) go from the contact
    cards and memberships; the rows stay, under their pseudonymous ids, so that the
    opportunities still count them anonymously. Returns the number of rows changed."""
    ids = {"ids": person_ids}
    changed = 0
    for table in ("contacts", "opportunity_members"):
        result = await conn.execute(text(
            f"UPDATE {table} SET email = NULL, name = NULL, job_title = NULL "
            "WHERE person_id = ANY(CAST(:ids AS text[])) "
            "AND (email IS NOT NULL OR name IS NOT NULL OR job_title IS NOT NULL)"), ids)
        changed += result.rowcount
    return changed
